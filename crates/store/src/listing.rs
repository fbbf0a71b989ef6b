//! Listing live records by name prefix ([`Store::list`](crate::Store::list)): the range
//! of names a prefix covers, shared by the stores that keep names in order.
//!
//! UTF-8 keeps code point order in byte order, so redb's byte keys and PostgreSQL's
//! `COLLATE "C"` names sort alike, and the names starting with a prefix are one range of
//! either: `prefix <= name < prefix_end(prefix)`. A range needs no pattern, so a `%` or
//! `_` in a prefix is just a character (a `LIKE` would read them as wildcards).

/// The least string above every string that starts with `prefix`: `prefix` with its last
/// character that can be raised raised by one code point, and what followed it dropped.
/// `None` when there is no bound (an empty prefix, or one of U+10FFFF only): the range
/// runs to the end.
///
/// Any `s` with `prefix <= s < end` starts with `prefix`: with `prefix = q c r` (`c` the
/// raised character, `r` U+10FFFF only) and `end = q (c + 1)`, `s` starts with `q`, its
/// next character is `c`, and what follows is at least `r`, which nothing but `r` itself
/// and its extensions are.
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let raised = match last {
            char::MAX => continue,
            // The surrogates are no characters: the next one after U+D7FF is U+E000.
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(raised) = raised {
            chars.push(raised);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Where a listing starts: after `after` when that is not below `prefix`, else at
/// `prefix` itself (inclusive). The flag says whether the bound is exclusive.
pub(crate) fn list_start<'a>(prefix: &'a str, after: Option<&'a str>) -> (&'a str, bool) {
    match after {
        Some(after) if after >= prefix => (after, true),
        _ => (prefix, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_a_prefix_bounds_exactly_its_names() {
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_end("a/").as_deref(), Some("a0"));
        assert_eq!(prefix_end("é").as_deref(), Some("ê"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10FFFF}\u{10FFFF}"), None);
        assert_eq!(prefix_end("x\u{D7FF}").as_deref(), Some("x\u{E000}"));
        for (prefix, inside, outside) in [
            ("ab", "ab\u{10FFFF}\u{10FFFF}", "ac"),
            ("a\u{10FFFF}", "a\u{10FFFF}\u{10FFFF}z", "b"),
            ("日本", "日本語", "日札"),
        ] {
            let end = prefix_end(prefix).unwrap();
            assert!(inside.starts_with(prefix) && inside < end.as_str());
            assert!(!outside.starts_with(prefix) && outside >= end.as_str());
        }
    }

    #[test]
    fn a_listing_starts_after_the_cursor_only_inside_the_prefix() {
        assert_eq!(list_start("p/", None), ("p/", false));
        assert_eq!(list_start("p/", Some("a")), ("p/", false));
        assert_eq!(list_start("p/", Some("p/x")), ("p/x", true));
        assert_eq!(list_start("p/", Some("p/")), ("p/", true));
    }
}
