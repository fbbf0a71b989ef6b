//! deepstream paths (`pets[1].fur.color`): parse, get, set, erase.
//!
//! A path addresses a place inside a record's JSON value. The rules follow deepstream's
//! own `json-path` (the server's `src/utils/json-path.ts` and the JS client's
//! `src/record/json-path.ts`), because every deepstream client applies the same path to
//! its local copy of the record: if the server resolved a path differently, its copy and
//! the clients' copies would drift apart.
//!
//! # Syntax
//!
//! - The text is split at `.`; each part is trimmed (JavaScript's `String.prototype.trim`
//!   white space, which is what deepstream uses) and empty parts are skipped, so
//!   `" a . .b "` is `a.b`.
//! - A part is a key optionally followed by indices: `pets[1][0]`. Inside brackets white
//!   space around the digits is allowed (`animals[ 1 ]`, as deepstream's tests use).
//!   Leading zeros are accepted (`a[01]` is `a[1]`, as JavaScript's `Number("01")`).
//! - A numeric *key* stays a key: `address.99` names the key `"99"`, `address[99]` the
//!   index 99. That distinction only matters when containers are created (see below).
//! - White space inside a part is kept: `a b.c` has the key `"a b"`, and `a [0]` has the
//!   key `"a "` (deepstream trims the part, not the key before a bracket).
//! - The keys `__proto__`, `constructor` and `prototype` are refused
//!   ([`PathError::ForbiddenKey`]), as deepstream's server refuses them.
//! - A path with no segments is [`PathError::Empty`]; callers treat "no path" (a write of
//!   the whole record) separately.
//!
//! Where deepstream's tokenizer silently turns malformed text into something surprising,
//! recordsync refuses the path with an error the writer can act on:
//!
//! | text                       | deepstream                                | recordsync                      |
//! |----------------------------|-------------------------------------------|---------------------------------|
//! | `a[`, `a[1`                | `a`, `a[1]`                               | [`PathError::UnclosedBracket`]  |
//! | `a[1.5]`                   | `a[1].5` (`.` splits first)               | [`PathError::UnclosedBracket`]  |
//! | `a]b`, `a[1]]`             | `a[NaN]`, `a[1]`                          | [`PathError::UnmatchedBracket`] |
//! | `a[x]`, `a[0x1]`, `a[1e2]` | `a[NaN]`, `a[1]`, `a[100]`                | [`PathError::InvalidIndex`]     |
//! | `a[-1]`                    | an invisible property (the client throws) | [`PathError::NegativeIndex`]    |
//! | `a[]`, `a[ ]`              | `a`, `a[0]`                               | [`PathError::EmptyIndex`]       |
//! | `a[1]b`, `a[1] [2]`        | `a[1][NaN]`, `a[1][0][2]`                 | [`PathError::TextAfterIndex`]   |
//! | `[0]`, `a.[0]`             | the key `""`, then the index              | [`PathError::IndexWithoutKey`]  |
//!
//! # Limits
//!
//! Setting an index pads arrays with `null`, so a short path could otherwise ask for a
//! gigantic allocation. An index may be at most [`MAX_INDEX`], and so may the sum of all
//! indices of one path ([`PathError::IndexTooLarge`], [`PathError::IndicesTooLarge`]).
//! A path has at most [`MAX_SEGMENTS`] segments ([`PathError::TooDeep`]), far below the
//! nesting limit of record values ([`crate::json::MAX_DEPTH`]); a write counts its path's
//! segments as levels of the value it writes ([`crate::WriteOp::validate`]).
//!
//! # Resolving a path
//!
//! Objects and arrays are addressed the way JavaScript's `node[token]` addresses them:
//!
//! - An index into an object uses the index as a key: `m[1]` on `{"m": {"1": true}}`
//!   finds `true` (JavaScript converts the number to the key `"1"`).
//! - A key into an array works only when the key is an array index as JavaScript
//!   understands it: `"0"` or digits without a leading zero (`list.1` is `list[1]`).
//!   Any other key (`list.foo`, `list.01`) names nothing: [`get`] returns `None`, and
//!   [`set`] and [`erase`] leave the value unchanged. (In deepstream such a write lands in
//!   a property of the JavaScript array that JSON serialisation drops, so no client ever
//!   sees it.) The same holds, for [`set`] and [`erase`], for a key index above
//!   [`MAX_INDEX`].
//!
//! [`set`] creates what is missing on the way: a missing or non-container value (null,
//! bool, number, string) at a segment is replaced by the container the *next* segment
//! needs — an array before an index, an object before a key — and arrays are padded
//! with `null` up to the index. `pets[1].fur.color` set on `{}` gives
//! `{"pets": [null, {"fur": {"color": ...}}]}`. The root follows the same rule: a root
//! that is not an object or array is replaced by the container the first segment needs
//! (a record's root is always one, so this only keeps [`set`] total).
//!
//! [`erase`] walks the path exactly like [`set`] — deepstream erases by setting
//! `undefined` through the same code, so it too creates the containers on the way, and
//! so does recordsync, to stay in step with the clients — then removes the last segment:
//! an object key is removed; an array element becomes `null`, because deepstream's
//! `delete arr[i]` leaves a hole that JSON renders as `null` (the array keeps its
//! length). Erasing an index past the end of an array changes nothing. So erasing
//! `a.b.c` on `{}` gives `{"a": {"b": {}}}`, and `a.b` on `{"a": 3}` gives `{"a": {}}`.
//!
//! None of these functions panics, whatever the path and value.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use serde_json::{Map, Value};
use thiserror::Error;

/// The largest array index a path may hold, and the largest sum of all its indices.
pub const MAX_INDEX: usize = 1_000_000;

/// The most segments a path may have.
pub const MAX_SEGMENTS: usize = 100;

/// Keys deepstream refuses because JavaScript would reach an object's prototype.
pub const FORBIDDEN_KEYS: [&str; 3] = ["__proto__", "constructor", "prototype"];

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// `.name`: an object key.
    Key(String),
    /// `[n]`: an array index.
    Index(usize),
}

/// A parsed, valid path: at least one segment, every rule of the module docs checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Path {
    segments: Vec<Segment>,
}

/// Why a path was refused. Each message says how to write the path instead. New kinds
/// may be added: match with a `_` arm.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PathError {
    #[error("the path is empty: name at least one key, like `address.street` or `items[0]`")]
    Empty,
    #[error(
        "the key {key:?} is not allowed in a path (deepstream refuses __proto__, constructor and prototype)"
    )]
    ForbiddenKey { key: String },
    #[error(
        "{part:?} has a `[` without its `]` (a `.` always ends a part, even inside brackets): write indices like `items[0]`"
    )]
    UnclosedBracket { part: String },
    #[error("{part:?} has a `]` without a `[` before it: write indices like `items[0]`")]
    UnmatchedBracket { part: String },
    #[error("{part:?} has an empty index `[]`: put the element's number inside, like `items[0]`")]
    EmptyIndex { part: String },
    #[error(
        "{part:?} has the index {index:?}, which is not a number: indices are written with digits only, like `items[3]`"
    )]
    InvalidIndex { part: String, index: String },
    #[error("{part:?} has a negative index: indices count from 0 at the start of the array")]
    NegativeIndex { part: String },
    #[error("the index {index} is too large: the maximum is {max}", max = MAX_INDEX)]
    IndexTooLarge { index: String },
    #[error("the indices of this path add up to {total}, more than the {max} allowed", max = MAX_INDEX)]
    IndicesTooLarge { total: usize },
    #[error(
        "{part:?} has text after `]`: after an index only another `[...]`, a `.` or the end of the path may follow"
    )]
    TextAfterIndex { part: String },
    #[error(
        "{part:?} starts with `[`: an index must follow a key, like `items[0]` (a path cannot index the record itself)"
    )]
    IndexWithoutKey { part: String },
    #[error("the path has more than {max} segments", max = MAX_SEGMENTS)]
    TooDeep,
    #[error(
        "the key {key:?} cannot be written in a path (keys cannot be empty, contain `.`, `[` or `]`, or start or end with white space)"
    )]
    UnwritableKey { key: String },
}

impl Path {
    /// Parses deepstream path text. See the module docs for the syntax and the errors.
    pub fn parse(text: &str) -> Result<Path, PathError> {
        let mut segments = Vec::new();
        let mut index_total = 0usize;
        for raw in text.split('.') {
            let part = js_trim(raw);
            if part.is_empty() {
                continue;
            }
            parse_part(part, &mut segments, &mut index_total)?;
        }
        if segments.is_empty() {
            return Err(PathError::Empty);
        }
        Ok(Path { segments })
    }

    /// Builds a path from segments, checking that it obeys the same rules as a parsed
    /// one — in particular that `Path::parse(&path.to_string())` gives it back.
    pub fn from_segments(segments: Vec<Segment>) -> Result<Path, PathError> {
        if segments.is_empty() {
            return Err(PathError::Empty);
        }
        if segments.len() > MAX_SEGMENTS {
            return Err(PathError::TooDeep);
        }
        if let Some(Segment::Index(index)) = segments.first() {
            return Err(PathError::IndexWithoutKey {
                part: format!("[{index}]"),
            });
        }
        let mut index_total = 0usize;
        for (n, segment) in segments.iter().enumerate() {
            match segment {
                Segment::Key(key) => {
                    let followed_by_index = matches!(segments.get(n + 1), Some(Segment::Index(_)));
                    check_writable_key(key, followed_by_index)?;
                }
                Segment::Index(index) => add_index(&mut index_total, *index)?,
            }
        }
        Ok(Path { segments })
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }
}

impl FromStr for Path {
    type Err = PathError;

    fn from_str(text: &str) -> Result<Path, PathError> {
        Path::parse(text)
    }
}

/// The canonical text: keys joined by `.`, indices as `[n]`, e.g. `pets[1].fur.color`.
impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Key(key) => {
                    if n > 0 {
                        f.write_char('.')?;
                    }
                    f.write_str(key)?;
                }
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Parses one trimmed, non-empty dot-separated part: `key`, `key[1]`, `key[1][2]`.
fn parse_part(
    part: &str,
    segments: &mut Vec<Segment>,
    index_total: &mut usize,
) -> Result<(), PathError> {
    let error_part = || part.to_owned();
    let (key, mut rest) = match part.find(['[', ']']) {
        Some(at) => part.split_at(at),
        None => (part, ""),
    };
    if rest.starts_with(']') {
        return Err(PathError::UnmatchedBracket { part: error_part() });
    }
    if key.is_empty() {
        return Err(PathError::IndexWithoutKey { part: error_part() });
    }
    if FORBIDDEN_KEYS.contains(&key) {
        return Err(PathError::ForbiddenKey {
            key: key.to_owned(),
        });
    }
    push(segments, Segment::Key(key.to_owned()))?;

    while let Some(first) = rest.chars().next() {
        match first {
            '[' => {}
            ']' => return Err(PathError::UnmatchedBracket { part: error_part() }),
            _ => return Err(PathError::TextAfterIndex { part: error_part() }),
        }
        let inside = &rest[1..];
        let close = match inside.find(['[', ']']) {
            Some(at) if inside[at..].starts_with(']') => at,
            _ => return Err(PathError::UnclosedBracket { part: error_part() }),
        };
        let index = parse_index(&inside[..close], part)?;
        add_index(index_total, index)?;
        push(segments, Segment::Index(index))?;
        rest = &inside[close + 1..];
    }
    Ok(())
}

fn push(segments: &mut Vec<Segment>, segment: Segment) -> Result<(), PathError> {
    if segments.len() >= MAX_SEGMENTS {
        return Err(PathError::TooDeep);
    }
    segments.push(segment);
    Ok(())
}

fn add_index(total: &mut usize, index: usize) -> Result<(), PathError> {
    if index > MAX_INDEX {
        return Err(PathError::IndexTooLarge {
            index: index.to_string(),
        });
    }
    *total += index;
    if *total > MAX_INDEX {
        return Err(PathError::IndicesTooLarge { total: *total });
    }
    Ok(())
}

/// Parses the text between `[` and `]`.
fn parse_index(inside: &str, part: &str) -> Result<usize, PathError> {
    let digits = js_trim(inside);
    if digits.is_empty() {
        return Err(PathError::EmptyIndex {
            part: part.to_owned(),
        });
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        let negative = digits
            .strip_prefix('-')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
        return Err(if negative {
            PathError::NegativeIndex {
                part: part.to_owned(),
            }
        } else {
            PathError::InvalidIndex {
                part: part.to_owned(),
                index: digits.to_owned(),
            }
        });
    }
    match digits.parse::<usize>() {
        Ok(index) if index <= MAX_INDEX => Ok(index),
        _ => Err(PathError::IndexTooLarge {
            index: digits.to_owned(),
        }),
    }
}

/// Checks that `key` survives `Display` then `parse` unchanged.
fn check_writable_key(key: &str, followed_by_index: bool) -> Result<(), PathError> {
    if FORBIDDEN_KEYS.contains(&key) {
        return Err(PathError::ForbiddenKey {
            key: key.to_owned(),
        });
    }
    let starts_blank = key.chars().next().is_some_and(is_js_whitespace);
    // Trailing white space survives only inside a part, i.e. before `[`.
    let ends_blank = key.chars().next_back().is_some_and(is_js_whitespace);
    if key.is_empty()
        || key.contains(['.', '[', ']'])
        || starts_blank
        || (ends_blank && !followed_by_index)
    {
        return Err(PathError::UnwritableKey {
            key: key.to_owned(),
        });
    }
    Ok(())
}

/// The white space JavaScript's `String.prototype.trim` removes (WhiteSpace and
/// LineTerminator in ECMA-262). It differs from Rust's `char::is_whitespace`: it includes
/// U+FEFF and excludes U+0085.
fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{0009}'
            | '\u{000A}'
            | '\u{000B}'
            | '\u{000C}'
            | '\u{000D}'
            | '\u{0020}'
            | '\u{00A0}'
            | '\u{1680}'
            | '\u{2000}'
            ..='\u{200A}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'
                | '\u{3000}'
                | '\u{FEFF}'
    )
}

fn js_trim(text: &str) -> &str {
    text.trim_matches(is_js_whitespace)
}

/// The array index a key names when JavaScript uses it on an array: `"0"`, or digits
/// without a leading zero, below 2³² − 1. Any other key is a plain property.
fn key_as_array_index(key: &str) -> Option<usize> {
    let canonical = !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_digit())
        && (key == "0" || !key.starts_with('0'));
    if !canonical {
        return None;
    }
    let index: u64 = key.parse().ok()?;
    if index >= u64::from(u32::MAX) {
        return None;
    }
    usize::try_from(index).ok()
}

/// The array index `segment` addresses in an array, if any and within [`MAX_INDEX`].
pub(crate) fn writable_array_index(segment: &Segment) -> Option<usize> {
    let index = match segment {
        Segment::Index(index) => *index,
        Segment::Key(key) => key_as_array_index(key)?,
    };
    (index <= MAX_INDEX).then_some(index)
}

/// The object key `segment` addresses in an object (an index is its decimal key).
pub(crate) fn object_key(segment: &Segment) -> String {
    match segment {
        Segment::Key(key) => key.clone(),
        Segment::Index(index) => index.to_string(),
    }
}

/// The value at `path`, or `None` if the path leads nowhere (a missing key, an index
/// past the end, a step into a non-container, a non-index key into an array).
pub fn get<'a>(root: &'a Value, path: &Path) -> Option<&'a Value> {
    let mut node = root;
    for segment in path.segments() {
        node = match (node, segment) {
            (Value::Object(map), Segment::Key(key)) => map.get(key)?,
            (Value::Object(map), Segment::Index(index)) => map.get(&index.to_string())?,
            (Value::Array(items), Segment::Index(index)) => items.get(*index)?,
            (Value::Array(items), Segment::Key(key)) => items.get(key_as_array_index(key)?)?,
            _ => return None,
        };
    }
    Some(node)
}

/// Sets the value at `path`, creating containers on the way (see the module docs).
pub fn set(root: &mut Value, path: &Path, value: Value) {
    set_segments(root, path.segments(), value);
}

/// [`set`] on a run of segments, which may start with an index: the part of a path below
/// some value on the way (`crate::op_json0` builds what a write creates with it, so that
/// it is exactly what [`set`] creates). No segments: `root` is replaced.
pub(crate) fn set_segments(root: &mut Value, segments: &[Segment], value: Value) {
    if let Some(slot) = walk(root, segments) {
        *slot = value;
    }
}

/// Removes the value at `path`: an object key is removed, an array element becomes
/// `null`. Containers on the way are created as [`set`] creates them (see the module docs).
pub fn erase(root: &mut Value, path: &Path) {
    erase_segments(root, path.segments());
}

/// [`erase`] on a run of segments, which may start with an index (see [`set_segments`]).
/// No segments: nothing changes.
pub(crate) fn erase_segments(root: &mut Value, segments: &[Segment]) {
    let Some((last, init)) = segments.split_last() else {
        return;
    };
    let Some(parent) = walk(root, init) else {
        return;
    };
    make_container_for(parent, last);
    match parent {
        Value::Object(map) => {
            // Not `remove`: with serde_json's `preserve_order` (which any crate in the
            // build may turn on) it swaps the last key into the hole; `retain` keeps the
            // other keys' order, as JavaScript's `delete` does.
            let key = object_key(last);
            map.retain(|k, _| *k != key);
        }
        Value::Array(items) => {
            if let Some(item) = writable_array_index(last).and_then(|i| items.get_mut(i)) {
                *item = Value::Null;
            }
        }
        _ => {}
    }
}

/// Follows `segments` from `node`, creating what is missing, and returns the slot the
/// last one names (`node` itself for no segments). `None` when a segment cannot address
/// an existing array; nothing has been changed then, since everything before that array
/// already existed.
fn walk<'v>(mut node: &'v mut Value, segments: &[Segment]) -> Option<&'v mut Value> {
    for segment in segments {
        node = child_mut(node, segment)?;
    }
    Some(node)
}

/// Replaces `node` with the empty container `segment` needs unless it is one already.
fn make_container_for(node: &mut Value, segment: &Segment) {
    if !node.is_object() && !node.is_array() {
        *node = match segment {
            Segment::Key(_) => Value::Object(Map::new()),
            Segment::Index(_) => Value::Array(Vec::new()),
        };
    }
}

/// The slot `segment` names in `node`, created as `null` (with `null` padding in an
/// array) when missing; `node` is made a container first.
fn child_mut<'v>(node: &'v mut Value, segment: &Segment) -> Option<&'v mut Value> {
    make_container_for(node, segment);
    match node {
        Value::Object(map) => Some(map.entry(object_key(segment)).or_insert(Value::Null)),
        Value::Array(items) => {
            let index = writable_array_index(segment)?;
            if index >= items.len() {
                items.resize(index + 1, Value::Null);
            }
            items.get_mut(index)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(text: &str) -> Path {
        Path::parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
    }

    fn key(k: &str) -> Segment {
        Segment::Key(k.to_owned())
    }

    fn set_on(mut root: Value, path: &str, value: Value) -> Value {
        set(&mut root, &p(path), value);
        root
    }

    fn erase_on(mut root: Value, path: &str) -> Value {
        erase(&mut root, &p(path));
        root
    }

    fn err(text: &str) -> PathError {
        Path::parse(text).expect_err(text)
    }

    // ---- parsing ----

    #[test]
    fn parses_keys_and_indices() {
        assert_eq!(
            p("pets[1].fur.color").segments(),
            [key("pets"), Segment::Index(1), key("fur"), key("color")]
        );
        assert_eq!(
            p("a[1][0]").segments(),
            [key("a"), Segment::Index(1), Segment::Index(0)]
        );
        assert_eq!(p("address.99").segments(), [key("address"), key("99")]);
    }

    #[test]
    fn trims_parts_and_skips_empty_ones() {
        assert_eq!(p(" a . .b ").segments(), [key("a"), key("b")]);
        assert_eq!(p("..a..b..").segments(), [key("a"), key("b")]);
        assert_eq!(
            p("\u{feff}a\u{3000}.\tb\n").segments(),
            [key("a"), key("b")]
        );
        // U+0085 is white space for Rust but not for JavaScript's trim.
        assert_eq!(p("a\u{85}").segments(), [key("a\u{85}")]);
    }

    #[test]
    fn keeps_inner_white_space() {
        assert_eq!(p("a b.c").segments(), [key("a b"), key("c")]);
        assert_eq!(p("a [0]").segments(), [key("a "), Segment::Index(0)]);
    }

    #[test]
    fn index_allows_spaces_and_leading_zeros() {
        assert_eq!(
            p("animals[ 1 ]").segments(),
            [key("animals"), Segment::Index(1)]
        );
        assert_eq!(p("a[007]").segments(), [key("a"), Segment::Index(7)]);
    }

    #[test]
    fn empty_paths_are_refused() {
        for text in ["", ".", " . . ", "\t"] {
            assert_eq!(err(text), PathError::Empty, "{text:?}");
        }
    }

    #[test]
    fn forbidden_keys_are_refused() {
        for text in [
            "__proto__",
            "__proto__.x",
            "a.__proto__.x",
            "constructor.prototype.x",
            "a.prototype[0]",
            " constructor ",
        ] {
            assert!(
                matches!(err(text), PathError::ForbiddenKey { .. }),
                "{text:?}"
            );
        }
        assert!(Path::parse("user_proto.foo").is_ok());
        assert!(Path::parse("__proto__x").is_ok());
    }

    #[test]
    fn malformed_brackets_are_refused() {
        let part = |s: &str| s.to_owned();
        assert_eq!(err("a["), PathError::UnclosedBracket { part: part("a[") });
        assert_eq!(err("a[1"), PathError::UnclosedBracket { part: part("a[1") });
        assert_eq!(
            err("a[[1]]"),
            PathError::UnclosedBracket {
                part: part("a[[1]]")
            }
        );
        assert_eq!(
            err("a[1[2]"),
            PathError::UnclosedBracket {
                part: part("a[1[2]")
            }
        );
        // `.` separates parts even inside brackets.
        assert_eq!(
            err("a[1.5]"),
            PathError::UnclosedBracket { part: part("a[1") }
        );
        assert_eq!(
            err("a]b"),
            PathError::UnmatchedBracket { part: part("a]b") }
        );
        assert_eq!(
            err("a[1]]"),
            PathError::UnmatchedBracket {
                part: part("a[1]]")
            }
        );
        assert_eq!(err("]"), PathError::UnmatchedBracket { part: part("]") });
        assert_eq!(err("a[]"), PathError::EmptyIndex { part: part("a[]") });
        assert_eq!(err("a[ ]"), PathError::EmptyIndex { part: part("a[ ]") });
        assert_eq!(
            err("a[1]b"),
            PathError::TextAfterIndex {
                part: part("a[1]b")
            }
        );
        assert_eq!(
            err("a[1] [2]"),
            PathError::TextAfterIndex {
                part: part("a[1] [2]")
            }
        );
        assert_eq!(err("[0]"), PathError::IndexWithoutKey { part: part("[0]") });
        assert_eq!(
            err("a.[0]"),
            PathError::IndexWithoutKey { part: part("[0]") }
        );
    }

    #[test]
    fn non_numeric_indices_are_refused() {
        for (text, index) in [
            ("a[x]", "x"),
            ("a[0x1]", "0x1"),
            ("a[+1]", "+1"),
            ("a[1e2]", "1e2"),
            ("a[--1]", "--1"),
            ("a[١]", "١"),
        ] {
            assert_eq!(
                err(text),
                PathError::InvalidIndex {
                    part: text.to_owned(),
                    index: index.to_owned()
                },
                "{text:?}"
            );
        }
    }

    #[test]
    fn negative_indices_are_refused() {
        assert_eq!(
            err("a[-1]"),
            PathError::NegativeIndex {
                part: "a[-1]".to_owned()
            }
        );
        assert_eq!(
            err("a[ -0 ]"),
            PathError::NegativeIndex {
                part: "a[ -0 ]".to_owned()
            }
        );
        assert!(err("a[-1]").to_string().contains("negative"));
    }

    #[test]
    fn huge_indices_are_refused() {
        assert!(Path::parse(&format!("a[{MAX_INDEX}]")).is_ok());
        assert_eq!(
            err(&format!("a[{}]", MAX_INDEX + 1)),
            PathError::IndexTooLarge {
                index: (MAX_INDEX + 1).to_string()
            }
        );
        let huge = "9".repeat(40);
        assert_eq!(
            err(&format!("a[{huge}]")),
            PathError::IndexTooLarge { index: huge }
        );
        assert_eq!(
            err(&format!("a[{MAX_INDEX}].b[1]")),
            PathError::IndicesTooLarge {
                total: MAX_INDEX + 1
            }
        );
        // Numeric keys are object keys and may be anything.
        assert!(Path::parse("ids.99999999999999999999").is_ok());
    }

    #[test]
    fn deep_paths_are_refused() {
        assert!(Path::parse(&vec!["a"; MAX_SEGMENTS].join(".")).is_ok());
        assert_eq!(
            err(&vec!["a"; MAX_SEGMENTS + 1].join(".")),
            PathError::TooDeep
        );
        assert_eq!(
            err(&format!("a{}", "[0]".repeat(MAX_SEGMENTS))),
            PathError::TooDeep
        );
    }

    #[test]
    fn errors_name_the_offending_part() {
        let message = err("ok.a[x].b").to_string();
        assert!(
            message.contains("a[x]") && message.contains("\"x\""),
            "{message}"
        );
        assert!(err("").to_string().contains("empty"));
    }

    #[test]
    fn display_is_canonical_and_round_trips() {
        for (text, canonical) in [
            ("pets[1].fur.color", "pets[1].fur.color"),
            (" pets [ 01 ] . fur..color ", "pets [1].fur.color"),
            ("a[1][2].3", "a[1][2].3"),
        ] {
            let path = p(text);
            assert_eq!(path.to_string(), canonical);
            assert_eq!(p(canonical), path);
        }
        assert_eq!("a.b".parse::<Path>(), Ok(p("a.b")));
    }

    #[test]
    fn from_segments_checks_the_rules() {
        let ok = Path::from_segments(vec![key("a "), Segment::Index(2)]).unwrap();
        assert_eq!(p(&ok.to_string()), ok);
        assert_eq!(Path::from_segments(vec![]), Err(PathError::Empty));
        assert_eq!(
            Path::from_segments(vec![Segment::Index(0), key("a")]),
            Err(PathError::IndexWithoutKey {
                part: "[0]".to_owned()
            })
        );
        for bad in ["", "a.b", "a[", "b]", " a", "a ", "\u{feff}"] {
            assert_eq!(
                Path::from_segments(vec![key(bad)]),
                Err(PathError::UnwritableKey {
                    key: bad.to_owned()
                }),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Path::from_segments(vec![key("constructor")]),
            Err(PathError::ForbiddenKey { .. })
        ));
        assert!(matches!(
            Path::from_segments(vec![key("a"), Segment::Index(MAX_INDEX + 1)]),
            Err(PathError::IndexTooLarge { .. })
        ));
        assert_eq!(
            Path::from_segments(vec![key("a"); MAX_SEGMENTS + 1]),
            Err(PathError::TooDeep)
        );
    }

    // ---- get ----

    #[test]
    fn get_follows_keys_and_indices() {
        let v = json!({"pets": [{"fur": {"color": "red"}}, null], "m": {"1": true}, "n": null});
        assert_eq!(get(&v, &p("pets[0].fur.color")), Some(&json!("red")));
        assert_eq!(get(&v, &p("pets[1]")), Some(&Value::Null));
        assert_eq!(get(&v, &p("n")), Some(&Value::Null));
        // An index into an object is the key "1"; a key into an array is an index.
        assert_eq!(get(&v, &p("m[1]")), Some(&json!(true)));
        assert_eq!(get(&v, &p("pets.0.fur.color")), Some(&json!("red")));
    }

    #[test]
    fn get_on_missing_paths_is_none() {
        let v = json!({"a": {"b": 1}, "list": [1, 2], "n": null});
        for text in [
            "x",
            "a.c",
            "a.b.c",
            "a[0]",
            "list[2]",
            "list.foo",
            "list.01",
            "list.length",
            "n.x",
            "n[0]",
        ] {
            assert_eq!(get(&v, &p(text)), None, "{text:?}");
        }
        assert_eq!(get(&json!(3), &p("a")), None);
    }

    // ---- set ----

    #[test]
    fn set_creates_objects_and_padded_arrays() {
        assert_eq!(
            set_on(json!({}), "pets[1].fur.color", json!("red")),
            json!({"pets": [null, {"fur": {"color": "red"}}]})
        );
        assert_eq!(
            set_on(json!({}), "items[0]", json!(51)),
            json!({"items": [51]})
        );
        assert_eq!(
            set_on(json!({}), "address.street", json!("s")),
            json!({"address": {"street": "s"}})
        );
    }

    #[test]
    fn numeric_keys_create_objects_indices_create_arrays() {
        // deepstream's spec cases.
        assert_eq!(
            set_on(json!({}), "items.0", json!(51)),
            json!({"items": {"0": 51}})
        );
        assert_eq!(
            set_on(json!({}), "address.99.street.1", json!("s")),
            json!({"address": {"99": {"street": {"1": "s"}}}})
        );
        assert_eq!(
            set_on(json!({}), "address[2].99.street[2].1", json!("s")),
            json!({"address": [null, null, {"99": {"street": [null, null, {"1": "s"}]}}]})
        );
        assert_eq!(
            set_on(json!({}), "animals[0].name", json!("Emu")),
            json!({"animals": [{"name": "Emu"}]})
        );
    }

    #[test]
    fn set_extends_existing_containers() {
        assert_eq!(
            set_on(json!({"firstname": "W"}), "lastname", json!("H")),
            json!({"firstname": "W", "lastname": "H"})
        );
        assert_eq!(
            set_on(
                json!({"animals": ["Bear", "Cow", "Ostrich"]}),
                "animals[ 1 ]",
                json!("Emu")
            ),
            json!({"animals": ["Bear", "Emu", "Ostrich"]})
        );
        assert_eq!(
            set_on(
                json!({"animals": [null, "Cow"]}),
                "animals[0].xxx",
                json!("Emu")
            ),
            json!({"animals": [{"xxx": "Emu"}, "Cow"]})
        );
        assert_eq!(
            set_on(json!({"a": [1]}), "a[3]", json!(4)),
            json!({"a": [1, null, null, 4]})
        );
        assert_eq!(
            set_on(
                json!({"addresses": [null, ["s1", "r1"], ["s2"]]}),
                "addresses[1][0]",
                json!("new")
            ),
            json!({"addresses": [null, ["new", "r1"], ["s2"]]})
        );
    }

    #[test]
    fn set_replaces_non_containers_on_the_way() {
        assert_eq!(
            set_on(json!({"animals": 3}), "animals.name", json!("Emu")),
            json!({"animals": {"name": "Emu"}})
        );
        assert_eq!(
            set_on(json!({"animals": 3}), "animals.name.length", json!(7)),
            json!({"animals": {"name": {"length": 7}}})
        );
        assert_eq!(
            set_on(json!({"animals": 3}), "animals[0]", json!(7)),
            json!({"animals": [7]})
        );
        assert_eq!(
            set_on(json!({"a": null}), "a[1]", json!(1)),
            json!({"a": [null, 1]})
        );
        assert_eq!(
            set_on(json!({"a": "s"}), "a.b", json!(1)),
            json!({"a": {"b": 1}})
        );
        // The root too.
        assert_eq!(set_on(json!(3), "a", json!(1)), json!({"a": 1}));
        assert_eq!(set_on(Value::Null, "x[0]", json!(1)), json!({"x": [1]}));
    }

    #[test]
    fn set_index_into_object_uses_the_numeric_key() {
        assert_eq!(
            set_on(json!({"m": {"a": 1}}), "m[2]", json!(true)),
            json!({"m": {"a": 1, "2": true}})
        );
        assert_eq!(
            set_on(json!({"m": {}}), "m[0].x", json!(1)),
            json!({"m": {"0": {"x": 1}}})
        );
    }

    #[test]
    fn set_key_into_array() {
        // An array-index key addresses the element, padding like an index.
        assert_eq!(
            set_on(json!({"l": [1, 2]}), "l.1", json!(9)),
            json!({"l": [1, 9]})
        );
        assert_eq!(
            set_on(json!({"l": [1]}), "l.2", json!(9)),
            json!({"l": [1, null, 9]})
        );
        assert_eq!(
            set_on(json!({"l": [1]}), "l.0.x", json!(9)),
            json!({"l": [{"x": 9}]})
        );
        // Any other key is ignored: deepstream's write would vanish from the JSON.
        for text in [
            "l.foo",
            "l.foo.bar",
            "l.01",
            "l.4294967295",
            &format!("l.{}", MAX_INDEX + 1),
        ] {
            assert_eq!(
                set_on(json!({"l": [1]}), text, json!(9)),
                json!({"l": [1]}),
                "{text:?}"
            );
        }
        assert_eq!(set_on(json!([1]), "foo", json!(9)), json!([1]));
    }

    #[test]
    fn set_at_the_largest_index_pads() {
        let v = set_on(json!({}), &format!("a[{MAX_INDEX}]"), json!(1));
        let items = v["a"].as_array().unwrap();
        assert_eq!(items.len(), MAX_INDEX + 1);
        assert_eq!(items[MAX_INDEX], json!(1));
    }

    // ---- erase ----

    #[test]
    fn erase_removes_object_keys() {
        assert_eq!(erase_on(json!({"a": 1, "b": 2}), "a"), json!({"b": 2}));
        assert_eq!(
            erase_on(json!({"a": {"b": 1, "c": 2}}), "a.b"),
            json!({"a": {"c": 2}})
        );
        assert_eq!(
            erase_on(json!({"m": {"1": 1, "x": 2}}), "m[1]"),
            json!({"m": {"x": 2}})
        );
    }

    #[test]
    fn erase_leaves_null_in_arrays() {
        assert_eq!(
            erase_on(json!({"l": [1, 2, 3]}), "l[1]"),
            json!({"l": [1, null, 3]})
        );
        assert_eq!(
            erase_on(json!({"l": [1, 2, 3]}), "l[2]"),
            json!({"l": [1, 2, null]})
        );
        assert_eq!(
            erase_on(json!({"l": [1, 2, 3]}), "l.0"),
            json!({"l": [null, 2, 3]})
        );
        assert_eq!(erase_on(json!({"l": [1]}), "l[5]"), json!({"l": [1]}));
        assert_eq!(erase_on(json!({"l": [1]}), "l.foo"), json!({"l": [1]}));
    }

    #[test]
    fn erase_creates_containers_on_the_way_like_deepstream() {
        assert_eq!(erase_on(json!({}), "a"), json!({}));
        assert_eq!(erase_on(json!({}), "a.b.c"), json!({"a": {"b": {}}}));
        assert_eq!(erase_on(json!({"a": 3}), "a.b"), json!({"a": {}}));
        assert_eq!(erase_on(json!({}), "a[2]"), json!({"a": []}));
        assert_eq!(
            erase_on(json!({"l": []}), "l[1].x"),
            json!({"l": [null, {}]})
        );
    }

    #[test]
    fn erase_then_get() {
        let mut v = json!({});
        let path = p("pets[1].fur.color");
        set(&mut v, &path, json!("red"));
        erase(&mut v, &path);
        assert_eq!(get(&v, &path), None);
        let element = p("pets[1]");
        erase(&mut v, &element);
        assert_eq!(get(&v, &element), Some(&Value::Null));
        assert_eq!(v, json!({"pets": [null, null]}));
    }

    #[test]
    fn nothing_panics_on_odd_roots() {
        for root in [
            json!(null),
            json!(true),
            json!(1.5),
            json!("s"),
            json!([]),
            json!({}),
        ] {
            for text in ["a", "a.b", "a[0]", "a[2].b", "0", "0[1]"] {
                let path = p(text);
                let mut v = root.clone();
                set(&mut v, &path, json!(1));
                let _ = get(&v, &path);
                erase(&mut v, &path);
                let _ = get(&root, &path);
            }
        }
    }
}
