//! Whether a document matches a filter (the semantics are in `mod.rs` and on [`Cond`]).

use std::cmp::Ordering;

use serde_json::Value;

use super::doc::Doc;
use super::filter::{Cond, ElemMatch, Filter};
use super::order::{compare, equal, type_rank};

impl Filter {
    /// Whether `doc` matches. Total: every document either matches or not.
    pub fn matches(&self, doc: &Doc<'_>) -> bool {
        match self {
            Filter::And(filters) => filters.iter().all(|f| f.matches(doc)),
            Filter::Or(filters) => filters.iter().any(|f| f.matches(doc)),
            Filter::Nor(filters) => !filters.iter().any(|f| f.matches(doc)),
            Filter::Field { path, conds } => {
                let reached = doc.reach(path);
                conds.iter().all(|c| c.holds(&reached))
            }
        }
    }
}

impl Cond {
    /// Whether the condition holds for a field that reached `values` (none: missing).
    pub fn holds(&self, values: &[&Value]) -> bool {
        match self {
            Cond::Eq(x) => equals(values, x),
            Cond::Ne(x) => !equals(values, x),
            Cond::Gt(x) => compares(values, x, |o| o == Ordering::Greater),
            Cond::Gte(x) if x.is_null() => equals(values, x),
            Cond::Gte(x) => compares(values, x, |o| o != Ordering::Less),
            Cond::Lt(x) => compares(values, x, |o| o == Ordering::Less),
            Cond::Lte(x) if x.is_null() => equals(values, x),
            Cond::Lte(x) => compares(values, x, |o| o != Ordering::Greater),
            Cond::In(xs) => xs.iter().any(|x| equals(values, x)),
            Cond::Nin(xs) => !xs.iter().any(|x| equals(values, x)),
            Cond::Exists(wanted) => values.is_empty() != *wanted,
            Cond::Size(n) => values.iter().any(|v| {
                v.as_array()
                    .is_some_and(|items| u64::try_from(items.len()) == Ok(*n))
            }),
            Cond::ElemMatch(m) => values.iter().any(|v| {
                v.as_array()
                    .is_some_and(|items| items.iter().any(|e| m.matches(e)))
            }),
            Cond::Not(conds) => !conds.iter().all(|c| c.holds(values)),
        }
    }
}

impl ElemMatch {
    fn matches(&self, element: &Value) -> bool {
        match self {
            ElemMatch::Conds(conds) => conds.iter().all(|c| c.holds(&[element])),
            ElemMatch::Filter(filter) => {
                element.is_object() && filter.matches(&Doc::element(element))
            }
        }
    }
}

/// `test` holds for a reached value, or for an element of one that is an array.
fn any_leaf(values: &[&Value], test: impl Fn(&Value) -> bool) -> bool {
    values
        .iter()
        .any(|v| test(v) || v.as_array().is_some_and(|items| items.iter().any(&test)))
}

/// Equality, with `null` also matching a missing field.
fn equals(values: &[&Value], x: &Value) -> bool {
    (x.is_null() && values.is_empty()) || any_leaf(values, |v| equal(v, x))
}

/// A comparison within the operand's type bracket.
fn compares(values: &[&Value], x: &Value, wanted: impl Fn(Ordering) -> bool) -> bool {
    let rank = type_rank(x);
    any_leaf(values, |v| type_rank(v) == rank && wanted(compare(v, x)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn m(filter: Value, data: Value) -> bool {
        let filter = Filter::parse(&filter, "the query").unwrap();
        filter.matches(&Doc::new("d1", &data, 3, 100, 200))
    }

    #[test]
    fn equality_paths_and_membership() {
        assert!(m(json!({"a": 1}), json!({"a": 1.0})));
        assert!(m(json!({"a.b": "x"}), json!({"a": {"b": "x"}})));
        assert!(m(json!({"tags": "x"}), json!({"tags": ["y", "x"]})));
        assert!(m(json!({"tags": ["y", "x"]}), json!({"tags": ["y", "x"]})));
        assert!(!m(json!({"tags": ["x", "y"]}), json!({"tags": ["y", "x"]})));
        assert!(m(json!({"l.n": 2}), json!({"l": [{"n": 1}, {"n": 2}]})));
        assert!(m(json!({"a": null}), json!({})));
        assert!(m(json!({"a": null}), json!({"a": null})));
        assert!(!m(json!({"a": null}), json!({"a": 0})));
        assert!(!m(json!({"a": "1"}), json!({"a": 1})));
    }

    #[test]
    fn comparisons_are_type_bracketed() {
        assert!(m(json!({"a": {"$gt": 1}}), json!({"a": 2})));
        assert!(!m(json!({"a": {"$gt": 1}}), json!({"a": "2"})));
        assert!(!m(json!({"a": {"$lt": "b"}}), json!({"a": 1})));
        assert!(m(json!({"a": {"$lt": "b"}}), json!({"a": "a"})));
        assert!(m(
            json!({"a": {"$gte": 2, "$lt": 3}}),
            json!({"a": [1, 2.5]})
        ));
        assert!(!m(json!({"a": {"$gt": 1}}), json!({})));
        assert!(m(json!({"a": {"$gte": null}}), json!({})));
        assert!(!m(json!({"a": {"$gt": null}}), json!({"a": null})));
    }

    #[test]
    fn negations_match_missing_fields() {
        assert!(m(json!({"a": {"$ne": 1}}), json!({})));
        assert!(!m(json!({"a": {"$ne": 1}}), json!({"a": [1, 2]})));
        assert!(m(json!({"a": {"$nin": [1, 2]}}), json!({"a": 3})));
        assert!(m(json!({"a": {"$nin": [1, 2]}}), json!({})));
        assert!(!m(json!({"a": {"$ne": null}}), json!({})));
        assert!(m(json!({"a": {"$not": {"$gt": 1}}}), json!({})));
        assert!(m(json!({"a": {"$not": {"$gt": 1}}}), json!({"a": 1})));
        assert!(!m(json!({"a": {"$not": {"$gt": 1}}}), json!({"a": 2})));
        assert!(m(json!({"$nor": [{"a": 1}, {"b": 1}]}), json!({"a": 2})));
    }

    #[test]
    fn exists_size_elem_match() {
        assert!(m(json!({"a": {"$exists": true}}), json!({"a": null})));
        assert!(m(json!({"a": {"$exists": false}}), json!({"b": 1})));
        assert!(m(json!({"a": {"$size": 2}}), json!({"a": [1, [2, 3]]})));
        assert!(!m(json!({"a": {"$size": 2}}), json!({"a": "ab"})));
        assert!(m(
            json!({"a": {"$elemMatch": {"x": 1, "y": {"$gt": 1}}}}),
            json!({"a": [{"x": 1, "y": 1}, {"x": 1, "y": 2}]})
        ));
        assert!(!m(
            json!({"a": {"$elemMatch": {"x": 1, "y": {"$gt": 1}}}}),
            json!({"a": [{"x": 1, "y": 1}, {"x": 2, "y": 2}]})
        ));
        assert!(m(
            json!({"a": {"$elemMatch": {"$gte": 2, "$lt": 3}}}),
            json!({"a": [1, 2, 3]})
        ));
        assert!(!m(
            json!({"a": {"$elemMatch": {"$gt": 1, "$lt": 2}}}),
            json!({"a": [1, 2]})
        ));
    }

    #[test]
    fn metadata_fields() {
        assert!(m(json!({"_id": "d1"}), json!({"_id": "other"})));
        assert!(m(json!({"_v": {"$gte": 3}}), json!({})));
        assert!(m(
            json!({"_m.ctime": 100, "_m.mtime": {"$gt": 100}}),
            json!({})
        ));
        assert!(m(json!({"_type": super::super::JSON0_TYPE_URI}), json!({})));
        assert!(!m(json!({"_v": 4}), json!({})));
    }

    #[test]
    fn data_that_is_not_an_object_has_no_fields() {
        assert!(m(json!({"a": {"$exists": false}}), json!("text")));
        assert!(!m(json!({"0": 1}), json!([1])));
    }
}
