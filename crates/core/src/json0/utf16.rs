//! Strings as JavaScript holds them: sequences of UTF-16 code units.
//!
//! JS clients count `si`/`sd` offsets and text lengths in UTF-16 code units: `"a😀b"`
//! has length 4, and `b` is at offset 3. text0 therefore works on code units: it turns the
//! strings it edits into [`Units`], cuts and joins those exactly as JavaScript's `slice`
//! and `+` do, and turns the results back into strings. A character outside the Basic
//! Multilingual Plane (most emoji) is two code units, a surrogate pair. Cutting between
//! the two is allowed on the way, as in JavaScript (an op may put the pair back together),
//! but a result that still holds half a character cannot be a Rust string (JavaScript
//! would keep the lone half): it is refused with [`Json0Error::HalfCharacter`].

use super::error::Json0Error;

/// A string as UTF-16 code units.
pub type Units = Vec<u16>;

/// The length of `s` in UTF-16 code units (JavaScript's `s.length`).
pub fn len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// `s` as UTF-16 code units.
pub fn units(s: &str) -> Units {
    s.encode_utf16().collect()
}

/// The string the code units spell; an error naming the first lone half of a surrogate
/// pair, if there is one.
pub fn string(units: &[u16]) -> Result<String, Json0Error> {
    String::from_utf16(units).map_err(|_| {
        let (offset, unit) = first_lone_surrogate(units);
        Json0Error::HalfCharacter { offset, unit }
    })
}

/// Where the first surrogate without its partner is (the length, if there is none).
fn first_lone_surrogate(units: &[u16]) -> (usize, u16) {
    let mut i = 0;
    while let Some(&unit) = units.get(i) {
        let high = (0xD800..0xDC00).contains(&unit);
        let low = (0xDC00..0xE000).contains(&unit);
        let pair = high
            && units
                .get(i + 1)
                .is_some_and(|n| (0xDC00..0xE000).contains(n));
        if pair {
            i += 2;
        } else if high || low {
            return (i, unit);
        } else {
            i += 1;
        }
    }
    (units.len(), 0)
}

/// JavaScript's `s.slice(start, end)`: both clamped to the length; empty if
/// `start >= end`.
pub fn slice(s: &[u16], start: usize, end: usize) -> &[u16] {
    let end = end.min(s.len());
    let start = start.min(end);
    &s[start..end]
}

/// JavaScript's `s.slice(start)`.
pub fn slice_from(s: &[u16], start: usize) -> &[u16] {
    &s[start.min(s.len())..]
}

/// `text` inserted into `s` at offset `at` (past the end: at the end), as
/// `s.slice(0, at) + text + s.slice(at)`.
pub fn inject(s: &[u16], at: usize, text: &[u16]) -> Units {
    let at = at.min(s.len());
    let mut out = Vec::with_capacity(s.len() + text.len());
    out.extend_from_slice(&s[..at]);
    out.extend_from_slice(text);
    out.extend_from_slice(&s[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &[u16]) -> String {
        string(s).unwrap()
    }

    #[test]
    fn lengths_count_utf16_code_units() {
        assert_eq!(len(""), 0);
        assert_eq!(len("abc"), 3);
        assert_eq!(len("é€"), 2);
        assert_eq!(len("a😀b"), 4);
        assert_eq!(len("👩‍👩‍👧"), 8);
        assert_eq!(len("𝄞"), 2);
        assert_eq!(units("a😀b").len(), 4);
    }

    #[test]
    fn slices_clamp_like_javascript() {
        let s = units("a😀bc");
        assert_eq!(text(slice(&s, 1, 3)), "😀");
        assert_eq!(text(slice(&s, 3, 99)), "bc");
        assert_eq!(text(slice(&s, 4, 2)), "");
        assert_eq!(text(slice(&s, 99, 100)), "");
        assert_eq!(text(slice_from(&s, 3)), "bc");
        assert_eq!(text(slice_from(&s, 9)), "");
    }

    #[test]
    fn injecting_text() {
        assert_eq!(text(&inject(&units("a😀b"), 3, &units("€"))), "a😀€b");
        assert_eq!(
            text(&inject(&units("ab"), 9, &units("😀"))),
            "ab😀",
            "past the end appends"
        );
    }

    #[test]
    fn halves_of_a_pair_may_be_cut_but_not_kept() {
        let s = units("a😀b");
        let (before, after) = (slice(&s, 0, 2), slice_from(&s, 2));
        let err = string(before).unwrap_err();
        assert!(matches!(
            err,
            Json0Error::HalfCharacter {
                offset: 1,
                unit: 0xD83D
            }
        ));
        assert_eq!(
            err.to_string(),
            "the edit leaves half a character in the string (the lone UTF-16 code unit \
             U+D83D at offset 1 of the edited text): an offset falls between the two code \
             units of a character such as an emoji; use an offset before or after it"
        );
        assert!(matches!(
            string(after),
            Err(Json0Error::HalfCharacter {
                offset: 0,
                unit: 0xDE00
            })
        ));
        // Put back together, the halves are the character again.
        assert_eq!(text(&[before, after].concat()), "a😀b");
        assert_eq!(text(&inject(&s, 2, &[])), "a😀b");
    }
}
