//! Dotted field paths (`address.city`, `items.0.price`) and what they reach.

use std::fmt;

use serde_json::Value;

use super::error::QueryError;

/// A dotted path into a document: non-empty segments, split at each `.`.
///
/// A segment of ASCII digits also indexes arrays (`items.0`); MongoDB reads it both as
/// an index and as a key of the array's object elements, and so does [`FieldPath::reach`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    segments: Vec<String>,
}

impl FieldPath {
    /// Parses `a.b.c`. An empty path or segment (`""`, `a..b`, `.a`) is refused, as is a
    /// segment starting with `$` (an operator where a field name belongs).
    pub fn parse(text: &str) -> Result<FieldPath, QueryError> {
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.iter().any(|s| s.is_empty() || s.starts_with('$')) {
            return Err(QueryError::BadPath {
                path: text.to_owned(),
            });
        }
        Ok(FieldPath {
            text: text.to_owned(),
            segments,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The segments, in order (never empty, none empty).
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Whether the path names a metadata field (`_id`, `_v`, `_type`, `_m...`; see
    /// [`Doc`](super::Doc)) rather than the data.
    pub fn is_metadata(&self) -> bool {
        matches!(self.segments[0].as_str(), "_id" | "_v" | "_type" | "_m")
    }

    /// Every value the path reaches in `root`, in document order; empty when the field
    /// is missing. Through an object by key; through an array by index (a digit
    /// segment) and into each element that is an object (one level: arrays directly
    /// inside arrays are not entered). The last value is not expanded: a caller that
    /// wants an array's elements (membership) looks into it itself.
    pub fn reach<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        let mut out = Vec::new();
        reach(root, &self.segments, &mut out);
        out
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn reach<'a>(value: &'a Value, segments: &[String], out: &mut Vec<&'a Value>) {
    let Some((segment, rest)) = segments.split_first() else {
        out.push(value);
        return;
    };
    match value {
        Value::Object(map) => {
            if let Some(child) = map.get(segment) {
                reach(child, rest, out);
            }
        }
        Value::Array(items) => {
            if let Some(child) = index(segment).and_then(|i| items.get(i)) {
                reach(child, rest, out);
            }
            for item in items.iter().filter(|item| item.is_object()) {
                reach(item, segments, out);
            }
        }
        _ => {}
    }
}

/// A segment as an array index: ASCII digits only (`01` too, as MongoDB reads it).
fn index(segment: &str) -> Option<usize> {
    if segment.bytes().all(|b| b.is_ascii_digit()) {
        segment.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reach_of(path: &str, doc: &Value) -> Vec<Value> {
        FieldPath::parse(path)
            .unwrap()
            .reach(doc)
            .into_iter()
            .cloned()
            .collect()
    }

    #[test]
    fn through_objects_and_arrays() {
        let doc = json!({"a": {"b": 1}, "l": [{"b": 2}, {"c": 3}, {"b": [4, 5]}, 6, [{"b": 7}]]});
        assert_eq!(reach_of("a.b", &doc), [json!(1)]);
        assert_eq!(reach_of("l.b", &doc), [json!(2), json!([4, 5])]);
        assert_eq!(reach_of("l.1", &doc), [json!({"c": 3})]);
        assert_eq!(reach_of("l.0.b", &doc), [json!(2)]);
        assert_eq!(reach_of("missing", &doc), Vec::<Value>::new());
        assert_eq!(reach_of("a.b.c", &doc), Vec::<Value>::new());
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in ["", "a..b", ".a", "a.", "$gt", "a.$b"] {
            assert!(
                matches!(FieldPath::parse(bad), Err(QueryError::BadPath { .. })),
                "{bad:?}"
            );
        }
    }
}
