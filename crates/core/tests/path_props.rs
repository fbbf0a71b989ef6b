//! Property tests for deepstream paths (`recordsync_core::path`).

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use proptest::prelude::*;
use recordsync_core::path::{self, MAX_INDEX, Path, Segment};
use serde_json::{Map, Value};

// ---- generators ----

/// Keys that collide often (short, some numeric, some array-index-like, some with inner
/// white space) so that generated paths run into the generated values.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-d]{1,2}",
        2 => "[0-9]{1,2}",
        1 => "[a-z]{1,3} [a-z]{1,3}",
        1 => "[a-z]{1,3} ",
        1 => "[a-zé€😀_\\-]{1,6}",
    ]
}

fn segment() -> impl Strategy<Value = Segment> {
    prop_oneof![
        3 => key().prop_map(Segment::Key),
        2 => (0usize..6).prop_map(Segment::Index),
        1 => (0usize..100).prop_map(Segment::Index),
    ]
}

/// Valid paths: random segments that `Path::from_segments` accepts (it refuses, e.g.,
/// a key with trailing white space at the end, which could not be written back).
fn any_path() -> impl Strategy<Value = Path> {
    prop::collection::vec(segment(), 1..7).prop_filter_map("not a writable path", |segments| {
        Path::from_segments(segments).ok()
    })
}

fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("not finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        "[a-z]{0,4}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Strings built from the characters the path grammar cares about.
fn path_like_text() -> impl Strategy<Value = String> {
    "[ab0-9\\[\\]. \t\u{a0}\u{feff}x_-]{0,24}"
}

/// A path written the sloppy ways deepstream accepts: white space around parts and
/// inside brackets, leading zeros, doubled dots. Returns the text and the path it means.
fn noisy_text() -> impl Strategy<Value = (String, Path)> {
    let ws = prop::sample::select(vec!["", "", " ", "\t", "\u{a0}", "\u{feff}", " \n "]);
    let dots = prop::sample::select(vec![".", ".", "..", ". ."]);
    let noise = (ws.clone(), ws.clone(), ws, dots, 0usize..3);
    any_path()
        .prop_flat_map(move |path| {
            let n = path.segments().len();
            (Just(path), prop::collection::vec(noise.clone(), n))
        })
        .prop_map(|(path, noise)| {
            let mut text = String::new();
            for (segment, (before, inner, after, dots, zeros)) in path.segments().iter().zip(noise)
            {
                match segment {
                    Segment::Key(k) => {
                        if !text.is_empty() {
                            text.push_str(dots);
                        }
                        text.push_str(before);
                        text.push_str(k);
                    }
                    Segment::Index(i) => {
                        text.push('[');
                        text.push_str(inner);
                        text.push_str(&"0".repeat(zeros));
                        text.push_str(&i.to_string());
                        text.push_str(after);
                        text.push(']');
                    }
                }
            }
            // White space may end the path; after a key it would be trimmed off with it.
            text.push(' ');
            (text, path)
        })
}

// ---- oracles ----

/// JavaScript's array-index rule for a property key.
fn js_array_index(key: &str) -> Option<usize> {
    let canonical = !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_digit())
        && (key == "0" || !key.starts_with('0'));
    if !canonical {
        return None;
    }
    key.parse::<u64>()
        .ok()
        .filter(|&i| i < u64::from(u32::MAX))
        .and_then(|i| usize::try_from(i).ok())
}

/// Whether `set` at `path` must leave `root` unchanged: the path, on its way through
/// existing values, addresses an array with a key that is no (small enough) array index.
fn blocked(root: &Value, path: &Path) -> bool {
    let mut node = Some(root);
    for segment in path.segments() {
        node = match (node, segment) {
            (Some(Value::Array(items)), Segment::Index(i)) => items.get(*i),
            (Some(Value::Array(items)), Segment::Key(k)) => match js_array_index(k) {
                Some(i) if i <= MAX_INDEX => items.get(i),
                _ => return true,
            },
            (Some(Value::Object(map)), Segment::Key(k)) => map.get(k),
            (Some(Value::Object(map)), Segment::Index(i)) => map.get(&i.to_string()),
            // New territory: everything from here on is created fresh, of the right kind.
            _ => None,
        };
    }
    false
}

/// deepstream's tokenizer, transcribed as behaviour: split at `.`, trim, skip empty
/// parts, split each part at `[` and `]`, keep the first piece as a key and every
/// further non-empty piece as `Number(piece)` (`None` for anything but plain digits).
#[derive(Debug, PartialEq)]
enum Token {
    Key(String),
    Number(Option<u64>),
}

fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{9}'..='\u{d}'
            | ' '
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
            | '\u{feff}'
    )
}

fn deepstream_tokens(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    for part in text.split('.') {
        let part = part.trim_matches(is_js_whitespace);
        if part.is_empty() {
            continue;
        }
        let mut pieces = part.split(['[', ']']);
        tokens.push(Token::Key(pieces.next().unwrap_or_default().to_owned()));
        for piece in pieces.filter(|p| !p.is_empty()) {
            let digits = piece.trim_matches(is_js_whitespace);
            let number = (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| digits.parse().ok())
                .flatten();
            tokens.push(Token::Number(number));
        }
    }
    tokens
}

fn as_tokens(path: &Path) -> Vec<Token> {
    path.segments()
        .iter()
        .map(|s| match s {
            Segment::Key(k) => Token::Key(k.clone()),
            Segment::Index(i) => Token::Number(Some(*i as u64)),
        })
        .collect()
}

// ---- properties ----

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn get_after_set_returns_the_value(root in any_value(), path in any_path(), x in any_value()) {
        let mut v = root.clone();
        path::set(&mut v, &path, x.clone());
        if blocked(&root, &path) {
            prop_assert_eq!(&v, &root);
            prop_assert_eq!(path::get(&v, &path), None);
        } else {
            prop_assert_eq!(path::get(&v, &path), Some(&x));
        }
    }

    #[test]
    fn set_on_an_empty_record_always_lands(path in any_path(), x in any_value()) {
        for root in [Value::Object(Map::new()), Value::Array(Vec::new())] {
            let mut v = root.clone();
            path::set(&mut v, &path, x.clone());
            // Only a key into an array root can be blocked.
            if !blocked(&root, &path) {
                prop_assert_eq!(path::get(&v, &path), Some(&x));
            }
        }
    }

    #[test]
    fn erase_after_set(root in any_value(), path in any_path(), x in any_value()) {
        let mut v = root.clone();
        path::set(&mut v, &path, x);
        let (last, parent) = path.segments().split_last().unwrap();
        let before = v.clone();
        path::erase(&mut v, &path);
        if blocked(&root, &path) {
            prop_assert_eq!(&v, &before);
            prop_assert_eq!(path::get(&v, &path), None);
            return Ok(());
        }
        // After the set, the parent exists and is a container.
        let mut expected = before;
        match get_mut_at(&mut expected, parent) {
            Some(Value::Array(items)) => {
                // deepstream's `delete arr[i]` leaves a hole that JSON renders as null.
                prop_assert_eq!(path::get(&v, &path), Some(&Value::Null));
                let index = match last {
                    Segment::Index(i) => Some(*i),
                    Segment::Key(k) => js_array_index(k),
                };
                items[index.unwrap()] = Value::Null;
            }
            Some(Value::Object(map)) => {
                prop_assert_eq!(path::get(&v, &path), None);
                let key = match last {
                    Segment::Key(k) => k.clone(),
                    Segment::Index(i) => i.to_string(),
                };
                prop_assert!(map.remove(&key).is_some());
            }
            other => prop_assert!(false, "parent after set is {:?}", other),
        }
        // Nothing but the erased place changed.
        prop_assert_eq!(v, expected);
    }

    #[test]
    fn display_then_parse_round_trips(path in any_path()) {
        let text = path.to_string();
        prop_assert_eq!(Path::parse(&text), Ok(path));
    }

    #[test]
    fn parse_never_panics(text in any::<String>()) {
        let _ = Path::parse(&text);
    }

    #[test]
    fn parsed_paths_are_canonical_and_agree_with_deepstream(text in path_like_text()) {
        if let Ok(path) = Path::parse(&text) {
            // What parse accepts is what deepstream's tokenizer reads...
            prop_assert_eq!(as_tokens(&path), deepstream_tokens(&text));
            // ...obeys the segment rules, and prints as text that parses back to it.
            prop_assert_eq!(Path::from_segments(path.segments().to_vec()), Ok(path.clone()));
            prop_assert_eq!(Path::parse(&path.to_string()), Ok(path));
        }
    }

    #[test]
    fn sloppy_text_parses_like_deepstream((text, path) in noisy_text()) {
        prop_assert_eq!(deepstream_tokens(&text), as_tokens(&path));
        prop_assert_eq!(Path::parse(&text), Ok(path));
    }

    #[test]
    fn nothing_panics_on_any_parsed_path(text in path_like_text(), root in any_value(), x in any_value()) {
        if let Ok(path) = Path::parse(&text) {
            let mut v = root;
            let _ = path::get(&v, &path);
            path::set(&mut v, &path, x);
            let _ = path::get(&v, &path);
            path::erase(&mut v, &path);
            let _ = path::get(&v, &path);
        }
    }
}

/// A test-side `get_mut` on a slice of segments, with the same addressing rules as
/// `path::get`.
fn get_mut_at<'a>(root: &'a mut Value, segments: &[Segment]) -> Option<&'a mut Value> {
    let mut node = root;
    for segment in segments {
        node = match (node, segment) {
            (Value::Object(map), Segment::Key(k)) => map.get_mut(k)?,
            (Value::Object(map), Segment::Index(i)) => map.get_mut(&i.to_string())?,
            (Value::Array(items), Segment::Index(i)) => items.get_mut(*i)?,
            (Value::Array(items), Segment::Key(k)) => items.get_mut(js_array_index(k)?)?,
            _ => return None,
        };
    }
    Some(node)
}
