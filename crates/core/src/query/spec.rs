//! [`Query`]: a filter with ShareDB's result controls, and running it over candidates.

use std::cmp::Ordering;

use serde_json::Value;

use super::doc::Doc;
use super::error::{QueryError, type_name};
use super::filter::Filter;
use super::order::compare;
use super::path::FieldPath;

/// A parsed query: which documents, in which order, which slice of them, or how many.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub filter: Filter,
    /// Sort keys, most significant first. Ties after the last key (and every tie when
    /// there are none) are broken by document id, by bytes, so results never depend on
    /// storage order.
    pub sort: Vec<SortKey>,
    /// Documents to leave out from the start of the sorted results.
    pub skip: u64,
    /// At most this many after `skip` (`$limit: 0` is no limit, as in MongoDB and mingo).
    pub limit: Option<u64>,
    /// Answer the number of documents (after skip and limit, as sharedb-mingo-memory
    /// counts) instead of the documents.
    pub count: bool,
}

/// One `$sort` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub path: FieldPath,
    pub descending: bool,
}

/// What a query answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection<T> {
    /// The selected documents, in order.
    Items(Vec<T>),
    /// Their number (`$count`).
    Count(u64),
}

impl Query {
    /// Parses a ShareDB query object (`q` of a `qf`/`qs` message).
    pub fn parse(value: &Value) -> Result<Query, QueryError> {
        let Value::Object(map) = value else {
            return Err(QueryError::NotAnObject {
                what: "the query".to_owned(),
                found: type_name(value),
            });
        };
        let mut query = Query {
            filter: Filter::And(Vec::new()),
            sort: Vec::new(),
            skip: 0,
            limit: None,
            count: false,
        };
        let controls = ["$sort", "$orderby", "$skip", "$limit", "$count"];
        for (key, value) in map.iter().filter(|(k, _)| controls.contains(&k.as_str())) {
            match key.as_str() {
                "$sort" | "$orderby" => query.sort = parse_sort(key, value)?,
                "$skip" => query.skip = parse_count(key, value)?.unwrap_or(0),
                "$limit" => query.limit = parse_count(key, value)?.filter(|&n| n > 0),
                _ => {
                    query.count = match value {
                        Value::Bool(b) => *b,
                        Value::Null => false,
                        other => {
                            return Err(bad(key, "true or false", other));
                        }
                    }
                }
            }
        }
        query.filter =
            Filter::parse_entries(map.iter().filter(|(k, _)| !controls.contains(&k.as_str())))?;
        Ok(query)
    }

    /// Whether `doc` passes the filter.
    pub fn matches(&self, doc: &Doc<'_>) -> bool {
        self.filter.matches(doc)
    }

    /// Orders documents that passed the filter, and takes the window (or counts it).
    /// Each document comes with what the caller wants back for it.
    pub fn select<T>(&self, matched: Vec<(Doc<'_>, T)>) -> Selection<T> {
        let mut keyed: Vec<(Vec<Option<Value>>, &str, T)> = matched
            .into_iter()
            .map(|(doc, item)| (self.sort_values(&doc), doc.id(), item))
            .collect();
        keyed.sort_by(|(ka, ia, _), (kb, ib, _)| {
            self.compare_keys(ka, kb)
                .then_with(|| ia.as_bytes().cmp(ib.as_bytes()))
        });
        let skip = usize::try_from(self.skip).unwrap_or(usize::MAX);
        let limit = self
            .limit
            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        let window = keyed
            .into_iter()
            .skip(skip)
            .take(limit)
            .map(|(_, _, item)| item);
        if self.count {
            Selection::Count(window.count() as u64)
        } else {
            Selection::Items(window.collect())
        }
    }

    /// The value each sort key sorts `doc` by: of the values the path reaches, arrays
    /// opened one level, the smallest (ascending) or largest (descending); `None` (as
    /// `null`) when there is none.
    fn sort_values(&self, doc: &Doc<'_>) -> Vec<Option<Value>> {
        self.sort
            .iter()
            .map(|key| {
                let reached = doc.reach(&key.path);
                let leaves = reached.iter().flat_map(|v| match v {
                    Value::Array(items) => items.iter().collect::<Vec<_>>(),
                    other => vec![*other],
                });
                let pick = if key.descending {
                    leaves.max_by(|a, b| compare(a, b))
                } else {
                    leaves.min_by(|a, b| compare(a, b))
                };
                pick.cloned()
            })
            .collect()
    }

    fn compare_keys(&self, a: &[Option<Value>], b: &[Option<Value>]) -> Ordering {
        for ((key, x), y) in self.sort.iter().zip(a).zip(b) {
            let null = Value::Null;
            let o = compare(x.as_ref().unwrap_or(&null), y.as_ref().unwrap_or(&null));
            let o = if key.descending { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }
}

fn parse_sort(operator: &str, value: &Value) -> Result<Vec<SortKey>, QueryError> {
    let Value::Object(map) = value else {
        return Err(bad(operator, "an object of fields with 1 or -1", value));
    };
    map.iter()
        .map(|(field, direction)| {
            let descending = match direction.as_i64() {
                Some(1) => false,
                Some(-1) => true,
                _ => return Err(bad(operator, "1 or -1 for each field", direction)),
            };
            Ok(SortKey {
                path: FieldPath::parse(field)?,
                descending,
            })
        })
        .collect()
}

/// `$skip`/`$limit`: a non-negative integer, or null for none.
fn parse_count(operator: &str, value: &Value) -> Result<Option<u64>, QueryError> {
    match value {
        Value::Null => Ok(None),
        v => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(operator, "a non-negative integer", v)),
    }
}

fn bad(operator: &str, expected: &'static str, found: &Value) -> QueryError {
    let text = found.to_string();
    QueryError::BadOperand {
        operator: operator.to_owned(),
        expected,
        found: if text.len() <= 40 {
            format!("{} ({text})", type_name(found))
        } else {
            type_name(found).to_owned()
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Runs `query` over `docs` (id, data), answering ids.
    fn run(query: Value, docs: &[(&str, Value)]) -> Selection<String> {
        let query = Query::parse(&query).unwrap();
        let matched = docs
            .iter()
            .map(|(id, data)| (Doc::new(id, data, 1, 0, 0), id.to_string()))
            .filter(|(doc, _)| query.matches(doc))
            .collect();
        query.select(matched)
    }

    fn ids(list: &[&str]) -> Selection<String> {
        Selection::Items(list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn sort_skip_limit_count() {
        let docs = [
            ("e", json!({"n": 2, "s": "x"})),
            ("b", json!({"n": 1, "s": "y"})),
            ("a", json!({"n": 2, "s": "y"})),
            ("d", json!({"s": "z"})),
            ("c", json!({"n": "2"})),
        ];
        assert_eq!(run(json!({}), &docs), ids(&["a", "b", "c", "d", "e"]));
        assert_eq!(
            run(json!({"$sort": {"n": 1}}), &docs),
            ids(&["d", "b", "a", "e", "c"])
        );
        assert_eq!(
            run(json!({"$sort": {"n": -1, "s": 1}}), &docs),
            ids(&["c", "e", "a", "b", "d"])
        );
        assert_eq!(
            run(json!({"$sort": {"n": 1}, "$skip": 1, "$limit": 2}), &docs),
            ids(&["b", "a"])
        );
        assert_eq!(
            run(json!({"n": {"$gte": 1}, "$count": true}), &docs),
            Selection::Count(3)
        );
        assert_eq!(run(json!({"$limit": 0, "$skip": 4}), &docs), ids(&["e"]));
    }

    #[test]
    fn arrays_sort_by_their_smallest_or_largest_element() {
        let docs = [
            ("a", json!({"l": [5, 1]})),
            ("b", json!({"l": 3})),
            ("c", json!({"l": [2, 4]})),
        ];
        assert_eq!(
            run(json!({"$sort": {"l": 1}}), &docs),
            ids(&["a", "c", "b"])
        );
        assert_eq!(
            run(json!({"$sort": {"l": -1}}), &docs),
            ids(&["a", "c", "b"])
        );
    }

    #[test]
    fn bad_controls_are_refused() {
        let err = |v: Value| Query::parse(&v).unwrap_err().to_string();
        assert_eq!(
            err(json!({"$sort": {"a": 2}})),
            "$sort needs 1 or -1 for each field, found a number (2)"
        );
        assert_eq!(
            err(json!({"$limit": -1})),
            "$limit needs a non-negative integer, found a number (-1)"
        );
        assert_eq!(
            err(json!({"$count": 1})),
            "$count needs true or false, found a number (1)"
        );
        assert_eq!(
            err(json!("x")),
            "the query must be an object, found a string"
        );
    }
}
