//! The total order of JSON values that sorting and comparison operators use, and the
//! equality consistent with it.
//!
//! Types order as MongoDB's BSON types do ([`type_rank`]): null < numbers < strings <
//! objects < arrays < booleans. Within a type: numbers by value (exactly, see
//! `number.rs`), strings by their UTF-8 bytes (MongoDB's binary collation, which is
//! also Unicode code point order), booleans `false < true`, arrays element by element
//! (a prefix first), objects as their entries sorted by key, compared entry by entry
//! (key, then value; a prefix first).
//!
//! Invariant: `compare(a, b) == Equal` exactly when `equal(a, b)`. Objects are compared
//! with their keys sorted so that key order never matters, as in mingo's `isEqual` and
//! in PostgreSQL's jsonb (which does not keep it).

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::number::compare_numbers;

/// The value's place in MongoDB's BSON type order (for the JSON types): its "bracket".
/// Comparison operators only compare values of the operand's bracket.
pub fn type_rank(value: &Value) -> u8 {
    match value {
        Value::Null => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Object(_) => 4,
        Value::Array(_) => 5,
        Value::Bool(_) => 6,
    }
}

/// Compares two values in the total order described above.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let o = compare(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let (x, y) = (sorted_entries(x), sorted_entries(y));
            for ((kx, vx), (ky, vy)) in x.iter().zip(&y) {
                let o = kx
                    .as_bytes()
                    .cmp(ky.as_bytes())
                    .then_with(|| compare(vx, vy));
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => type_rank(a).cmp(&type_rank(b)),
    }
}

/// Deep equality: numbers by value, objects whatever their key order.
pub fn equal(a: &Value, b: &Value) -> bool {
    compare(a, b) == Ordering::Equal
}

fn sorted_entries(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_unstable_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
    entries
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bson_type_order() {
        let sorted = [
            json!(null),
            json!(-5),
            json!(3),
            json!(""),
            json!("a"),
            json!("b"),
            json!({}),
            json!({"a": 1}),
            json!([]),
            json!([1]),
            json!(false),
            json!(true),
        ];
        for (i, a) in sorted.iter().enumerate() {
            for (j, b) in sorted.iter().enumerate() {
                assert_eq!(compare(a, b), i.cmp(&j), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn strings_by_bytes_not_locale() {
        assert_eq!(compare(&json!("B"), &json!("a")), Ordering::Less);
        assert_eq!(compare(&json!("z"), &json!("é")), Ordering::Less);
    }

    #[test]
    fn equality_ignores_key_order_and_number_spelling() {
        let a: Value = serde_json::from_str(r#"{"x":1,"y":[2.0,{"z":3}]}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"y":[2,{"z":3e0}],"x":1.00}"#).unwrap();
        assert!(equal(&a, &b));
        assert!(!equal(&json!({"x": 1}), &json!({"x": 1, "y": 2})));
        assert!(!equal(&json!([1, 2]), &json!([2, 1])));
    }
}
