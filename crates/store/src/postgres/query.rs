//! A ShareDB query as SQL: a `WHERE` clause over `records.data` (jsonb) that narrows the
//! rows PostgreSQL returns, with every value a bound parameter.
//!
//! # Narrowing, then deciding
//!
//! The clause is a *sieve*: every live record the query matches passes it (it may let
//! others through), and Rust then decides on each row with the one evaluator every store
//! uses (`recordsync_core::query`), and sorts, skips, limits and counts (`../query.rs`).
//! So PostgreSQL and the other stores give the same answers by construction, and the
//! differential property test (`tests/query_differential.rs`) checks the sieve never
//! drops a match. The sieve is what lets an index help:
//!
//! | condition | SQL | index that helps |
//! |---|---|---|
//! | `{a.b: v}`, `$eq`, `$in` (no `null`) | `data @> $n` for each way the path may go through arrays (`{"a":{"b":v}}`, `{"a":{"b":[v]}}`, `{"a":[{"b":v}]}`, ...; at most 4 segments) | `CREATE INDEX ON <schema>.records USING gin (data jsonb_path_ops)` |
//! | `$gt $gte` on one field, number operand | `data -> $k::text > $v` (jsonb sorts arrays, objects and booleans above numbers, so no match is lost) | `CREATE INDEX ON <schema>.records ((data -> 'field'))` |
//! | `$gt $gte $lt $lte`, number or string operand | `jsonb_path_exists(data, 'lax $."a"."b" ? (@ > $v)', ...)`: exact, type-bracketed (a jsonpath comparison of a number with a string is unknown), strings by code point | none (it filters the rows the rest selected) |
//! | `_id` equality, `$in` | `name = ANY($n)` | the primary key |
//! | `$and` / `$or` | `AND` / `OR` of the parts (an `$or` narrows only if every branch does) | |
//! | anything else (`$ne $nin $not $nor $exists $size $elemMatch`, `null` operands, `_v`, `_m`, `_type`, digit segments, ...) | nothing: decided in Rust on the rows the rest let through | |
//!
//! The collection is always a range of the primary key (`name >= 'c/' AND name < 'c0'`,
//! byte order: the column is `COLLATE "C"`), and tombstones are never returned. Sorting
//! is done in Rust (MongoDB's type order is not jsonb's); a query with `$limit` still
//! reads every row the sieve lets through.
//!
//! **Every index above also needs** the partial index `records_null_data` on `(name)
//! WHERE data IS NULL`, which the schema has (migration 5): the clause is `data IS NULL
//! OR <sieve>` (below), and PostgreSQL combines indexes for an `OR` (a `BitmapOr`) only
//! when each arm has one; without it, every query reads the collection's whole range of
//! the primary key (at 100,000 documents, 80 ms instead of 0.3 ms for `{group: "g42"}`
//! with the GIN index). The partial index holds only the rare rows jsonb cannot hold, so
//! it costs next to nothing. recordsync does not create the indexes of the table above:
//! which fields deserve one is the operator's choice. Check with `EXPLAIN`
//! (`tests/postgres.rs`, `queries_can_combine_an_index_on_data_with_the_null_data_index`,
//! does).
//!
//! An index on an expression is used only if the query's expression is the same: keys
//! are bound parameters (`data -> $3::text`), which PostgreSQL folds into the plan of an
//! unnamed statement (what `tokio-postgres` sends for a one-off query), so `data -> 'n'`
//! indexes match (checked with `EXPLAIN` on PostgreSQL 15: a `BitmapOr` of the
//! partial index and the GIN or expression index).
//!
//! # Values jsonb cannot hold
//!
//! A record whose value jsonb cannot hold (a string with `\u0000`, a number beyond
//! `numeric`) has `data` NULL: such rows always pass the sieve (`data IS NULL OR ...`)
//! and Rust evaluates their exact text (`data_json`). An operand jsonb cannot hold (or a
//! key with U+0000, which jsonpath refuses) narrows nothing.

use recordsync_core::query::{Cond, FieldPath, Filter};
use serde_json::Value;
use tokio_postgres::types::ToSql;

use super::batch::jsonb_can_hold;

/// Most containment documents one equality may become (2 per path segment: each level
/// may be an array).
const MAX_SEGMENTS: usize = 4;
/// Most containment documents one condition may become (a long `$in` narrows nothing).
const MAX_VARIANTS: usize = 64;

/// A parameter of the query: text, or an array of text. jsonb and jsonpath values are
/// sent as text and cast in SQL (`$3::text::jsonb`).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Param {
    Text(String),
    Texts(Vec<String>),
}

impl Param {
    pub(super) fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Param::Text(t) => t,
            Param::Texts(t) => t,
        }
    }
}

/// The SQL condition that narrows rows for `filter`, and its parameters, numbered from
/// `first_param`. `None`: nothing to narrow by (every row of the collection passes).
pub(super) fn sieve(
    filter: &Filter,
    prefix: &str,
    first_param: usize,
) -> (Option<String>, Vec<Param>) {
    let mut builder = Builder {
        params: Vec::new(),
        first: first_param,
        prefix,
    };
    let sql = builder.filter(filter);
    (sql, builder.params)
}

struct Builder<'a> {
    params: Vec<Param>,
    first: usize,
    prefix: &'a str,
}

impl Builder<'_> {
    /// Adds a parameter, answering its placeholder.
    fn param(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.first + self.params.len() - 1)
    }

    fn filter(&mut self, filter: &Filter) -> Option<String> {
        match filter {
            Filter::And(filters) => {
                let parts: Vec<String> = filters.iter().filter_map(|f| self.filter(f)).collect();
                join(parts, " AND ")
            }
            Filter::Or(filters) => {
                // Every branch must narrow, or the union is everything.
                let mark = self.params.len();
                let parts: Option<Vec<String>> = filters.iter().map(|f| self.filter(f)).collect();
                if parts.is_none() {
                    // A statement must use every parameter it is sent.
                    self.params.truncate(mark);
                }
                join(parts?, " OR ")
            }
            Filter::Nor(_) => None,
            Filter::Field { path, conds } => {
                let parts: Vec<String> = conds.iter().filter_map(|c| self.cond(path, c)).collect();
                join(parts, " AND ")
            }
        }
    }

    fn cond(&mut self, path: &FieldPath, cond: &Cond) -> Option<String> {
        if path.is_metadata() {
            return self.metadata(path, cond);
        }
        let segments = path.segments();
        // A digit segment may index an array: the containment documents below would not
        // say so. A key with U+0000 fits neither jsonb nor jsonpath.
        if segments
            .iter()
            .any(|s| s.bytes().all(|b| b.is_ascii_digit()) || s.contains('\0'))
        {
            return None;
        }
        match cond {
            Cond::Eq(x) => self.contains_any(segments, std::slice::from_ref(x)),
            Cond::In(xs) => self.contains_any(segments, xs),
            Cond::Gt(x) | Cond::Gte(x) | Cond::Lt(x) | Cond::Lte(x) => {
                let op = match cond {
                    Cond::Gt(_) => ">",
                    Cond::Gte(_) => ">=",
                    Cond::Lt(_) => "<",
                    _ => "<=",
                };
                self.compare(segments, op, x)
            }
            _ => None,
        }
    }

    /// `data @> doc OR ...` over every way `segments` may reach one of `values`.
    fn contains_any(&mut self, segments: &[String], values: &[Value]) -> Option<String> {
        if segments.len() > MAX_SEGMENTS
            || values.is_empty()
            || values.len() << segments.len() > MAX_VARIANTS
            || values.iter().any(|v| v.is_null())
        {
            return None;
        }
        let mut docs = Vec::new();
        for value in values {
            for doc in variants(segments, value) {
                let text = doc.to_string();
                if !jsonb_can_hold(&text) {
                    return None;
                }
                docs.push(text);
            }
        }
        let parts: Vec<String> = docs
            .into_iter()
            .map(|d| format!("data @> {}::text::jsonb", self.param(Param::Text(d))))
            .collect();
        join(parts, " OR ")
    }

    /// A type-bracketed comparison of a number or string operand.
    fn compare(&mut self, segments: &[String], op: &str, x: &Value) -> Option<String> {
        if !(x.is_number() || x.is_string()) || !jsonb_can_hold(&x.to_string()) {
            return None;
        }
        let path = segments
            .iter()
            .map(|s| serde_json::to_string(s).map(|quoted| format!(".{quoted}")))
            .collect::<Result<String, _>>()
            .ok()?;
        let jsonpath = format!("lax ${path} ? (@ {op} $x)");
        let vars = serde_json::json!({ "x": x }).to_string();
        let exact = format!(
            "jsonb_path_exists(data, {}::text::jsonpath, {}::text::jsonb)",
            self.param(Param::Text(jsonpath)),
            self.param(Param::Text(vars)),
        );
        // For a btree index on `data -> 'field'`: numbers above the operand, and what
        // jsonb sorts above every number (booleans, arrays, objects), pass.
        if segments.len() == 1 && x.is_number() && matches!(op, ">" | ">=") {
            let key = self.param(Param::Text(segments[0].clone()));
            let value = self.param(Param::Text(x.to_string()));
            return Some(format!(
                "(data -> {key}::text {op} {value}::text::jsonb AND {exact})"
            ));
        }
        Some(exact)
    }

    /// `_id` equality and `$in` as names; other metadata narrows nothing.
    fn metadata(&mut self, path: &FieldPath, cond: &Cond) -> Option<String> {
        if path.as_str() != "_id" {
            return None;
        }
        let ids: Vec<&Value> = match cond {
            Cond::Eq(x) => vec![x],
            Cond::In(xs) => xs.iter().collect(),
            _ => return None,
        };
        // An id is a string: other operands match nothing.
        let names: Vec<String> = ids
            .iter()
            .filter_map(|v| v.as_str())
            .filter(|id| !id.contains('\0'))
            .map(|id| format!("{}{id}", self.prefix))
            .collect();
        Some(format!(
            "name = ANY({}::text[])",
            self.param(Param::Texts(names))
        ))
    }
}

/// `(a SEP b ...)`, or `None` for no parts.
fn join(parts: Vec<String>, separator: &str) -> Option<String> {
    match parts.len() {
        0 => None,
        1 => parts.into_iter().next(),
        _ => Some(format!("({})", parts.join(separator))),
    }
}

/// The containment documents for `segments` reaching `value`: at the end the value
/// itself or an array holding it, and above each segment but the first an object or an
/// array holding one (MongoDB's paths go through arrays of objects).
fn variants(segments: &[String], value: &Value) -> Vec<Value> {
    let mut inner = vec![value.clone(), Value::Array(vec![value.clone()])];
    for (i, segment) in segments.iter().enumerate().rev() {
        let mut outer = Vec::with_capacity(inner.len() * 2);
        for v in inner {
            let object = Value::Object([(segment.clone(), v)].into_iter().collect());
            if i > 0 {
                outer.push(Value::Array(vec![object.clone()]));
            }
            outer.push(object);
        }
        inner = outer;
    }
    inner
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn of(query: Value) -> (Option<String>, Vec<Param>) {
        let filter = Filter::parse(&query, "the query").unwrap();
        sieve(&filter, "c/", 3)
    }

    #[test]
    fn equality_becomes_containment_through_arrays() {
        let (sql, params) = of(json!({"a.b": 1}));
        assert_eq!(
            sql.unwrap(),
            "(data @> $3::text::jsonb OR data @> $4::text::jsonb OR data @> $5::text::jsonb \
             OR data @> $6::text::jsonb)"
        );
        let docs: Vec<Value> = params
            .iter()
            .map(|p| match p {
                Param::Text(t) => serde_json::from_str(t).unwrap(),
                Param::Texts(_) => panic!("text"),
            })
            .collect();
        for d in [
            json!({"a": {"b": 1}}),
            json!({"a": {"b": [1]}}),
            json!({"a": [{"b": 1}]}),
            json!({"a": [{"b": [1]}]}),
        ] {
            assert!(docs.contains(&d), "{d}");
        }
    }

    #[test]
    fn what_cannot_be_narrowed_is_left_to_rust() {
        for q in [
            json!({"a": null}),
            json!({"a": {"$ne": 1}}),
            json!({"$nor": [{"a": 1}]}),
            json!({"a.0": 1}),
            json!({"a.b.c.d.e": 1}),
            json!({"$or": [{"a": 1}, {"b": {"$exists": true}}]}),
            json!({"a": "x\u{0}y"}),
            json!({"_v": 3}),
            json!({"a": {"$gt": true}}),
        ] {
            assert_eq!(of(q.clone()).0, None, "{q}");
        }
    }

    #[test]
    fn ranges_and_ids() {
        let (sql, params) = of(json!({"n": {"$gte": 5}, "_id": {"$in": ["x", 1]}}));
        assert_eq!(
            sql.unwrap(),
            "((data -> $5::text >= $6::text::jsonb AND jsonb_path_exists(data, \
             $3::text::jsonpath, $4::text::jsonb)) AND name = ANY($7::text[]))"
        );
        assert_eq!(params[0], Param::Text(r#"lax $."n" ? (@ >= $x)"#.into()));
        assert_eq!(params[4], Param::Texts(vec!["c/x".into()]));
    }
}
