//! How deeply JSON may nest, and parsing JSON within that bound.
//!
//! A record value, auth data or any other JSON a client sends may nest at most
//! [`MAX_DEPTH`] (512) levels: every object and array is one level, so `1` has depth 0,
//! `{}` and `[1]` depth 1, `{"a": [1]}` depth 2. Documents written by people or programs
//! stay far below a hundred levels. serde_json alone stops at 128, which refused documents
//! deepstream accepts; deepstream itself has no limit (V8's `JSON.parse` takes any depth),
//! but the real server (7.0.2) crashed on a record 5,000 levels deep when it serialised
//! it again, and served one of 3,000 levels.
//!
//! Why 512 and not more: parsing, cloning, comparing, serialising and dropping a
//! `serde_json::Value` recurse once per level, and a server thread's stack is 2 MiB
//! (tokio's workers). Measured per level (a thread's smallest stack that still works, at
//! 1,000 and 512 levels of objects): parsing takes 1.2 KiB in a debug build and 0.9 KiB
//! optimised, cloning or comparing 2.1 KiB and 0.5 KiB, serialising and dropping under
//! 0.1 KiB. At 1,000 levels a debug build's clone needed the whole 2 MiB; at 512 every
//! operation fits in well under two thirds of it, debug or not
//! (`tests::operations_at_the_limit_fit_in_a_worker_stack` keeps it so).
//!
//! [`parse`] checks the depth of the text first, with a scan that keeps no state but a
//! counter, and only then hands it to serde_json with its own recursion limit lifted
//! (serde_json's `unbounded_depth` feature); a 100,000-level document is refused by the
//! scan. Writes that put a value at a path nest it below the path's segments;
//! [`crate::WriteOp::validate`] counts those too, so no stored value is ever deeper than
//! [`MAX_DEPTH`], and every reader of the store can parse what it holds.

use serde::de::DeserializeOwned;
use serde_json::Value;
use thiserror::Error;

/// The deepest nesting of objects and arrays accepted in a client's JSON.
pub const MAX_DEPTH: usize = 512;

/// Why JSON text was not parsed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The text nests objects and arrays deeper than the limit; it was not parsed.
    #[error("data is nested deeper than {limit} levels")]
    TooDeep { limit: usize },
    /// The text is not valid JSON, or not of the expected shape.
    #[error("data is not valid JSON: {0}")]
    Invalid(#[from] serde_json::Error),
}

/// Parses client JSON nested at most [`MAX_DEPTH`] levels.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, JsonError> {
    parse_within(text, MAX_DEPTH)
}

/// Parses JSON nested at most `limit` levels. For text that wraps a client's value in a
/// few levels of its own (a journal entry, a bus message), pass [`MAX_DEPTH`] plus those.
pub fn parse_within<T: DeserializeOwned>(text: &str, limit: usize) -> Result<T, JsonError> {
    if text_depth_exceeds(text.as_bytes(), limit) {
        return Err(JsonError::TooDeep { limit });
    }
    let mut de = serde_json::Deserializer::from_str(text);
    // Safe: the scan above bounds the recursion to `limit` levels.
    de.disable_recursion_limit();
    let value = T::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Whether `text` opens more than `limit` objects and arrays inside one another.
///
/// Counts `[` and `{` outside strings up, `]` and `}` down, and stops as soon as the count
/// passes `limit`. On valid JSON this is exactly the nesting; on invalid JSON it agrees
/// with the parser up to the first error, where the parser stops, so it bounds the
/// parser's recursion either way.
pub fn text_depth_exceeds(text: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The nesting depth of `value` (0 for a scalar), computed without recursion: one walk
/// over its objects and arrays, with a stack of those still to visit.
pub fn depth(value: &Value) -> usize {
    let is_container = |v: &&Value| v.is_array() || v.is_object();
    let mut deepest = 0;
    let mut stack: Vec<(&Value, usize)> = Vec::new();
    if is_container(&value) {
        stack.push((value, 1));
    }
    while let Some((container, level)) = stack.pop() {
        deepest = deepest.max(level);
        let below = level + 1;
        match container {
            Value::Array(items) => {
                stack.extend(items.iter().filter(is_container).map(|c| (c, below)));
            }
            Value::Object(map) => {
                stack.extend(map.values().filter(is_container).map(|c| (c, below)));
            }
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `{"a":{"a":...1...}}`, `levels` objects deep.
    fn nested_objects(levels: usize) -> String {
        format!("{}1{}", "{\"a\":".repeat(levels), "}".repeat(levels))
    }

    fn nested_arrays(levels: usize) -> String {
        format!("{}{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn depth_counts_objects_and_arrays() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!({})), 1);
        assert_eq!(depth(&json!([1, 2])), 1);
        assert_eq!(depth(&json!({"a": [1, {"b": {}}], "c": 2})), 4);
        assert_eq!(depth(&json!([[], [[[]]], []])), 4);
    }

    #[test]
    fn the_text_scan_agrees_with_the_parsed_depth() {
        for text in [
            r#"1"#,
            r#"{}"#,
            r#"{"a":[1,{"b":{}}],"c":2}"#,
            r#"[[],[[[]]],[]]"#,
            // Brackets in strings, and escaped quotes before them, do not count.
            r#"{"[[[[":"]]]]{{{{","x\"[[":["\\",{"y":"\"{"}]}"#,
        ] {
            let value: Value = serde_json::from_str(text).unwrap();
            let d = depth(&value);
            assert!(!text_depth_exceeds(text.as_bytes(), d), "{text}");
            assert!(
                d == 0 || text_depth_exceeds(text.as_bytes(), d - 1),
                "{text}"
            );
        }
    }

    #[test]
    fn documents_at_the_limit_parse_and_deeper_ones_are_refused() {
        for text in [nested_objects(MAX_DEPTH), nested_arrays(MAX_DEPTH)] {
            let value: Value = parse(&text).unwrap();
            assert_eq!(depth(&value), MAX_DEPTH);
            assert_eq!(value.to_string(), text, "round-trips");
        }
        for text in [nested_objects(MAX_DEPTH + 1), nested_arrays(100_000)] {
            let err = parse::<Value>(&text).unwrap_err();
            assert!(matches!(err, JsonError::TooDeep { limit: MAX_DEPTH }));
            assert_eq!(err.to_string(), "data is nested deeper than 512 levels");
        }
    }

    #[test]
    fn serde_jsons_own_limit_no_longer_applies() {
        // What the limit replaces: serde_json alone refuses 128 levels.
        let text = nested_objects(200);
        assert!(serde_json::from_str::<Value>(&text).is_err());
        assert_eq!(depth(&parse::<Value>(&text).unwrap()), 200);
    }

    #[test]
    fn invalid_json_is_reported_as_such() {
        for text in ["{oops", "[1,]", "{} {}", "", "]]]]]][[[["] {
            let err = parse::<Value>(text).unwrap_err();
            assert!(matches!(err, JsonError::Invalid(_)), "{text}: {err}");
            assert!(
                err.to_string().starts_with("data is not valid JSON: "),
                "{err}"
            );
        }
    }

    #[test]
    fn a_wrapper_may_add_its_own_levels() {
        let text = format!(r#"{{"data":{}}}"#, nested_objects(MAX_DEPTH));
        assert!(parse::<Value>(&text).is_err());
        assert!(parse_within::<Value>(&text, MAX_DEPTH + 1).is_ok());
    }

    /// Runs `f` on a thread whose stack is `kib` KiB; a stack overflow aborts the test
    /// process, which fails the test.
    fn on_stack_of<T: Send + 'static>(kib: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(kib * 1024)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    }

    /// Every recursive operation on a value at the limit, on a stack of 1.25 MiB: what a
    /// 2 MiB worker thread has left with three quarters of a MiB used by whatever called
    /// it. Raising [`MAX_DEPTH`] far enough to endanger a worker fails here.
    #[test]
    fn operations_at_the_limit_fit_in_a_worker_stack() {
        const STACK_KIB: usize = 1280;
        for text in [nested_objects(MAX_DEPTH), nested_arrays(MAX_DEPTH)] {
            let probe = text.clone();
            let value = on_stack_of(STACK_KIB, move || parse::<Value>(&probe).unwrap());
            let copy = value.clone();
            let (same, written, back) = on_stack_of(STACK_KIB, move || {
                let twin = copy.clone();
                let same = twin == copy;
                let written = twin.to_string();
                drop(twin);
                let op = crate::WriteOp::Update { data: copy };
                op.validate().unwrap();
                let journal = serde_json::to_string(&op).unwrap();
                let back = crate::WriteOp::from_journal(&journal).unwrap();
                (same, written, back)
            });
            assert!(same);
            assert_eq!(written, text);
            assert_eq!(back, crate::WriteOp::Update { data: value });
        }
    }
}
