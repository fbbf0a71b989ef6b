//! The query evaluator against a reference evaluator written here, independently, from
//! MongoDB's documented rules, on random documents and random filters
//! (`recordsync_core::testing::query`).
//!
//! The reference works differently on purpose: it walks paths breadth-first over a
//! document that holds the metadata fields as ordinary fields, compares numbers as
//! `f64` (every number the generators make is exact in binary), and orders values by a
//! sort key of its own. Where the two disagree, one of them misreads the rules.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::cmp::Ordering;
use std::collections::BTreeMap;

use proptest::prelude::*;
use recordsync_core::query::{Doc, JSON0_TYPE_URI, Query, Selection};
use recordsync_core::testing::query::{document, filter, sort};
use serde_json::{Value, json};

/// A document with its metadata as fields (`_id`, `_v`, `_type`, `_m`), as sharedb-mongo
/// stores one.
fn with_metadata(id: &str, version: u64, data: &Value) -> Value {
    let mut doc = data.as_object().cloned().unwrap_or_default();
    doc.insert("_id".into(), json!(id));
    doc.insert("_v".into(), json!(version));
    doc.insert("_type".into(), json!(JSON0_TYPE_URI));
    doc.insert("_m".into(), json!({"ctime": 1, "mtime": 2}));
    Value::Object(doc)
}

/// What a path reaches, breadth-first: each step takes the key of every object, and of
/// every object element of an array, and the element at an index.
fn reach(doc: &Value, path: &str) -> Vec<Value> {
    let mut frontier = vec![doc.clone()];
    for step in path.split('.') {
        let mut next = Vec::new();
        for v in &frontier {
            match v {
                Value::Object(m) => next.extend(m.get(step).cloned()),
                Value::Array(items) => {
                    if step.chars().all(|c| c.is_ascii_digit())
                        && let Some(x) = step.parse::<usize>().ok().and_then(|i| items.get(i))
                    {
                        next.push(x.clone());
                    }
                    for item in items {
                        if let Value::Object(m) = item {
                            next.extend(m.get(step).cloned());
                        }
                    }
                }
                _ => {}
            }
        }
        frontier = next;
    }
    frontier
}

/// A value as something Rust orders the BSON way: (type rank, payload).
#[derive(Debug, PartialEq, PartialOrd)]
enum Key {
    Null,
    Number(f64),
    Text(Vec<u8>),
    Object(Vec<(Vec<u8>, Key)>),
    Array(Vec<Key>),
    Bool(bool),
}

fn key(v: &Value) -> Key {
    match v {
        Value::Null => Key::Null,
        Value::Bool(b) => Key::Bool(*b),
        Value::Number(n) => Key::Number(n.as_f64().expect("generated numbers are small")),
        Value::String(s) => Key::Text(s.as_bytes().to_vec()),
        Value::Array(items) => Key::Array(items.iter().map(key).collect()),
        Value::Object(m) => {
            let sorted: BTreeMap<&[u8], &Value> =
                m.iter().map(|(k, v)| (k.as_bytes(), v)).collect();
            Key::Object(
                sorted
                    .into_iter()
                    .map(|(k, v)| (k.to_vec(), key(v)))
                    .collect(),
            )
        }
    }
}

fn cmp(a: &Value, b: &Value) -> Ordering {
    // -0 and 0 are one number; PartialOrd on f64 says so too.
    key(a).partial_cmp(&key(b)).expect("no NaN")
}

fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(&key(a)) == std::mem::discriminant(&key(b))
}

/// The reached values and the elements of those that are arrays.
fn leaves(values: &[Value]) -> Vec<Value> {
    let mut out = values.to_vec();
    for v in values {
        if let Value::Array(items) = v {
            out.extend(items.iter().cloned());
        }
    }
    out
}

fn eq(values: &[Value], x: &Value) -> bool {
    if x.is_null() && values.is_empty() {
        return true;
    }
    leaves(values).iter().any(|v| cmp(v, x) == Ordering::Equal)
}

fn matches(filter: &Value, doc: &Value) -> bool {
    filter
        .as_object()
        .unwrap()
        .iter()
        .all(|(k, v)| match k.as_str() {
            "$and" => v.as_array().unwrap().iter().all(|f| matches(f, doc)),
            "$or" => v.as_array().unwrap().iter().any(|f| matches(f, doc)),
            "$nor" => !v.as_array().unwrap().iter().any(|f| matches(f, doc)),
            path => {
                let values = if doc.is_object() {
                    reach(doc, path)
                } else {
                    vec![]
                };
                field(&values, v)
            }
        })
}

fn is_operators(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| !m.is_empty() && m.keys().all(|k| k.starts_with('$')))
}

fn field(values: &[Value], cond: &Value) -> bool {
    if !is_operators(cond) {
        return eq(values, cond);
    }
    cond.as_object()
        .unwrap()
        .iter()
        .all(|(op, x)| operator(values, op, x))
}

fn operator(values: &[Value], op: &str, x: &Value) -> bool {
    let compare = |want: &dyn Fn(Ordering) -> bool| {
        leaves(values)
            .iter()
            .any(|v| same_type(v, x) && want(cmp(v, x)))
    };
    match op {
        "$eq" => eq(values, x),
        "$ne" => !eq(values, x),
        "$gt" | "$lt" if x.is_null() => false,
        "$gte" | "$lte" if x.is_null() => eq(values, x),
        "$gt" => compare(&|o| o == Ordering::Greater),
        "$gte" => compare(&|o| o != Ordering::Less),
        "$lt" => compare(&|o| o == Ordering::Less),
        "$lte" => compare(&|o| o != Ordering::Greater),
        "$in" => x.as_array().unwrap().iter().any(|x| eq(values, x)),
        "$nin" => !x.as_array().unwrap().iter().any(|x| eq(values, x)),
        "$exists" => x.as_bool().unwrap() != values.is_empty(),
        "$size" => values.iter().any(|v| {
            v.as_array()
                .is_some_and(|a| a.len() as u64 == x.as_u64().unwrap())
        }),
        "$not" => !field(values, x),
        "$elemMatch" => values.iter().any(|v| {
            v.as_array().is_some_and(|items| {
                items.iter().any(|e| {
                    let m = x.as_object().unwrap();
                    let on_element = m.keys().all(|k| {
                        k.starts_with('$') && !["$and", "$or", "$nor"].contains(&k.as_str())
                    });
                    if m.is_empty() {
                        cmp(e, x) == Ordering::Equal
                    } else if on_element {
                        field(std::slice::from_ref(e), x)
                    } else {
                        e.is_object() && matches(x, e)
                    }
                })
            })
        }),
        other => panic!("the generators made {other}"),
    }
}

/// The reference's sort: each key's smallest (ascending) or largest (descending) leaf,
/// `null` when none, then the id.
fn reference_order(docs: &[(String, Value)], sort: &Value) -> Vec<String> {
    let keys: Vec<(String, bool)> = sort
        .as_object()
        .unwrap()
        .iter()
        .map(|(p, d)| (p.clone(), d.as_i64() == Some(-1)))
        .collect();
    let sort_value = |doc: &Value, path: &str, desc: bool| {
        // Arrays reached sort by their elements, not as themselves.
        let mut all: Vec<Value> = reach(doc, path)
            .into_iter()
            .flat_map(|v| match v {
                Value::Array(items) => items,
                other => vec![other],
            })
            .collect();
        all.sort_by(cmp);
        (if desc { all.last() } else { all.first() })
            .cloned()
            .unwrap_or(Value::Null)
    };
    let mut order: Vec<&(String, Value)> = docs.iter().collect();
    order.sort_by(|(ia, a), (ib, b)| {
        for (path, desc) in &keys {
            let o = cmp(&sort_value(a, path, *desc), &sort_value(b, path, *desc));
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        ia.cmp(ib)
    });
    order.into_iter().map(|(id, _)| id.clone()).collect()
}

fn docs() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(document(), 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn filters_agree_with_the_reference(data in docs(), f in filter(2)) {
        let query = Query::parse(&f).map_err(|e| TestCaseError::fail(format!("{f}: {e}")))?;
        for (i, d) in data.iter().enumerate() {
            let id = format!("d{i}");
            let version = i as u64 + 1;
            let ours = query.matches(&Doc::new(&id, d, version, 1, 2));
            let theirs = matches(&f, &with_metadata(&id, version, d));
            prop_assert_eq!(ours, theirs, "filter {} on {}", f, d);
        }
    }

    #[test]
    fn sorted_windows_agree_with_the_reference(
        data in docs(),
        f in filter(1),
        s in sort(),
        skip in 0u64..4,
        limit in 0u64..4,
    ) {
        let mut q = f.as_object().unwrap().clone();
        q.insert("$sort".into(), s.clone());
        q.insert("$skip".into(), json!(skip));
        q.insert("$limit".into(), json!(limit));
        let q = Value::Object(q);
        let query = Query::parse(&q).map_err(|e| TestCaseError::fail(format!("{q}: {e}")))?;
        let ids: Vec<String> = (0..data.len()).map(|i| format!("d{i:02}")).collect();
        let matched = data
            .iter()
            .zip(&ids)
            .map(|(d, id)| (Doc::new(id, d, 1, 1, 2), id.clone()))
            .filter(|(doc, _)| query.matches(doc))
            .collect();
        let Selection::Items(ours) = query.select(matched) else {
            return Err(TestCaseError::fail("documents expected"));
        };
        let matching: Vec<(String, Value)> = data
            .iter()
            .zip(&ids)
            .map(|(d, id)| (id.clone(), with_metadata(id, 1, d)))
            .filter(|(_, d)| matches(&f, d))
            .collect();
        let theirs: Vec<String> = reference_order(&matching, &s)
            .into_iter()
            .skip(skip as usize)
            .take(if limit == 0 { usize::MAX } else { limit as usize })
            .collect();
        prop_assert_eq!(ours, theirs, "query {}", q);
    }
}
