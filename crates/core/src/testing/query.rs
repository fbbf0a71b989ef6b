//! Generators for query property tests: small documents whose fields collide often, and
//! random filters over the same fields, as the JSON a ShareDB client sends.
//!
//! The value pool is small on purpose (three keys, a handful of numbers and strings) so
//! that random filters match some documents and not others; numbers come in several
//! spellings of the same value (`2`, `2.0`, `1e1`) and mixed with other types on one
//! field, which is where type bracketing and numeric equality are tested.

use proptest::prelude::*;
use serde_json::{Map, Value};

/// The keys documents and paths use.
const KEYS: [&str; 3] = ["a", "b", "c"];

/// Paths filters use: plain, dotted, through arrays by index, and metadata.
const PATHS: [&str; 11] = [
    "a", "b", "c", "a.b", "a.c", "b.a", "a.0", "a.b.c", "b.1", "_id", "_v",
];

fn number(text: &'static str) -> Value {
    Value::Number(text.parse().expect("a JSON number"))
}

/// A scalar from the pool.
pub fn scalar() -> impl Strategy<Value = Value> + Clone {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..=3).prop_map(Value::from),
        prop::sample::select(vec!["1.5", "2.0", "-0.5", "1e1", "10", "-0"]).prop_map(number),
        prop::sample::select(vec!["", "a", "b", "B", "ab", "d1", "d2"])
            .prop_map(|s| Value::String(s.to_owned())),
    ]
}

/// A value: scalars, and arrays and objects of them, nested up to `depth`.
pub fn value(depth: u32) -> impl Strategy<Value = Value> + Clone {
    scalar().prop_recursive(depth, 16, 3, |inner| {
        prop_oneof![
            2 => prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            1 => object_of(inner),
        ]
    })
}

fn object_of(inner: impl Strategy<Value = Value> + Clone) -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..4).prop_map(|entries| {
        Value::Object(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<Map<_, _>>(),
        )
    })
}

/// A document: an object over [`KEYS`], mostly with fields.
pub fn document() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(KEYS.to_vec()), value(2)), 1..4).prop_map(
        |entries| {
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect::<Map<_, _>>(),
            )
        },
    )
}

/// A field path (see [`PATHS`]): top-level fields half the time.
pub fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(KEYS.to_vec()),
        prop::sample::select(PATHS.to_vec()),
    ]
    .prop_map(str::to_owned)
}

/// An operand: mostly a scalar, sometimes an array or object.
fn operand() -> impl Strategy<Value = Value> + Clone {
    prop_oneof![4 => scalar(), 1 => value(1)]
}

/// An operator object or value for one field, nested operators up to `depth`.
pub fn condition(depth: u32) -> BoxedStrategy<Value> {
    let operand = operand();
    let list = prop::collection::vec(operand.clone(), 0..4).prop_map(Value::Array);
    let mut choices: Vec<BoxedStrategy<Value>> = vec![
        operand.clone().boxed(),
        operand.clone().boxed(),
        (
            prop::sample::select(vec!["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]),
            operand,
        )
            .prop_map(|(op, v)| one(op, v))
            .boxed(),
        (prop::sample::select(vec!["$in", "$nin"]), list)
            .prop_map(|(op, v)| one(op, v))
            .boxed(),
        any::<bool>()
            .prop_map(|b| one("$exists", Value::Bool(b)))
            .boxed(),
        (0u64..3).prop_map(|n| one("$size", Value::from(n))).boxed(),
        // Two comparisons on one field: each may hold for another array element.
        (scalar(), scalar())
            .prop_map(|(lo, hi)| {
                let mut m = Map::new();
                m.insert("$gte".into(), lo);
                m.insert("$lt".into(), hi);
                Value::Object(m)
            })
            .boxed(),
    ];
    if depth > 0 {
        choices.push(
            condition(depth - 1)
                .prop_filter_map("an operator object", |c| {
                    c.as_object()
                        .is_some_and(|m| !m.is_empty() && m.keys().all(|k| k.starts_with('$')))
                        .then(|| one("$not", c))
                })
                .boxed(),
        );
        choices.push(
            condition(depth - 1)
                .prop_filter_map("an operator object", |c| {
                    c.as_object()
                        .is_some_and(|m| !m.is_empty() && m.keys().all(|k| k.starts_with('$')))
                        .then(|| one("$elemMatch", c))
                })
                .boxed(),
        );
        choices.push(filter(depth - 1).prop_map(|f| one("$elemMatch", f)).boxed());
    }
    prop::strategy::Union::new(choices).boxed()
}

/// A filter object: one or two field conditions, or `$and`/`$or`/`$nor` of filters,
/// nested up to `depth`.
pub fn filter(depth: u32) -> BoxedStrategy<Value> {
    let fields = prop::collection::vec((path(), condition(depth)), 1..3)
        .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>()));
    if depth == 0 {
        return fields.boxed();
    }
    prop_oneof![
        3 => fields,
        1 => (
            prop::sample::select(vec!["$and", "$or", "$nor"]),
            prop::collection::vec(filter(depth - 1), 1..3),
        )
            .prop_map(|(op, list)| one(op, Value::Array(list))),
    ]
    .boxed()
}

/// A `$sort` object: one or two paths, each ascending or descending.
pub fn sort() -> impl Strategy<Value = Value> {
    prop::collection::vec((path(), prop::bool::ANY), 1..3).prop_map(|keys| {
        Value::Object(
            keys.into_iter()
                .map(|(p, desc)| (p, Value::from(if desc { -1 } else { 1 })))
                .collect::<Map<_, _>>(),
        )
    })
}

fn one(key: &str, value: Value) -> Value {
    let mut m = Map::new();
    m.insert(key.to_owned(), value);
    Value::Object(m)
}
