//! Field indexes of the stores without an index of their own (memory, embedded): which
//! records of a collection hold a given string at a given path, so that a query with an
//! equality on that path (`{group: "g7"}`, `{"address.city": {$in: ["a", "b"]}}`) reads
//! those records instead of parsing and testing every record of the collection.
//!
//! Why: a ShareDB live query runs its whole query when it starts, and an app starts many
//! (one per list on screen, per user); a scan of a 100,000-document collection costs
//! about 0.2 s on these stores, so 1,000 live-query starts took minutes (`bench/NOTES.md`).
//!
//! What an index holds, for one collection (record name prefix `collection/`) and one
//! data path: for each live record, its *keys* — the strings the path reaches in its
//! value, and the string elements of the arrays it reaches ([`FieldPath::reach`], then
//! one level of arrays, as the evaluator's equality looks). So a record matches
//! `{path: s}` (a string `s`) exactly when `s` is one of its keys, and `{path: {$in:
//! [s1, s2]}}` when one of them is: the index's answer for a conjunct is exact, and the
//! store still tests the whole query on the records it reads, so answers are the same
//! as a scan's (the conformance suite and `tests/query_differential.rs` check it).
//! Metadata paths (`_id`, `_v`, `_m...`) are not indexed (`_id` is read by name, see
//! `query::named_ids`), nor are equalities on other types than strings.
//!
//! When: an index is made the first time a query could use it (one scan of the
//! collection, what the query would have cost anyway), then kept up to date by every
//! write, delete and restore of the store, under the store's lock that makes writes
//! visible (see each store), so it always describes the committed state a reader sees.
//! At most [`MAX_INDEXES`] per store, first come: a query that would need another scans,
//! as before. Indexes live in memory only: after a restart they are made again by the
//! first query that needs them.
//!
//! **Invariant.** For every index and every live record of its collection, the record's
//! name is under each of its keys, and the index's `keys` says which those are; no name
//! is under a key it does not have, and tombstones are under none.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use recordsync_core::query::{Cond, FieldPath, Filter};
use serde_json::Value;

/// The most field indexes one store keeps (each holds every record name of its
/// collection once, plus its keys).
pub(crate) const MAX_INDEXES: usize = 32;

/// A store's field indexes, by collection.
#[derive(Debug, Default)]
pub(crate) struct FieldIndexes {
    /// By collection prefix (`collection/`).
    by_prefix: HashMap<String, Vec<FieldIndex>>,
    count: usize,
}

/// One collection's index of one path.
#[derive(Debug)]
struct FieldIndex {
    path: FieldPath,
    /// Key → the names of the records that have it.
    names: HashMap<String, HashSet<Arc<str>>>,
    /// Name → its keys (records with none are absent).
    keys: HashMap<Arc<str>, Vec<String>>,
}

/// What the indexes can do for a query's filter.
#[derive(Debug, PartialEq)]
pub(crate) enum Plan {
    /// Nothing: the store scans the collection.
    Scan,
    /// Every record the filter matches is among these names (in no order).
    Names(Vec<String>),
    /// An index of this path would serve the filter and none exists yet: the store makes
    /// it ([`FieldIndexes::build`]) from the collection, then asks again.
    Build(FieldPath),
}

impl FieldIndexes {
    /// How `filter`, over the collection named `prefix...`, can be narrowed. The
    /// narrowing conditions are the top-level conjuncts (fields of the query object and
    /// of `$and`) that are a string equality or a `$in` of strings, on a data path; of
    /// those with an index, the one naming the fewest records is used.
    pub(crate) fn plan(&self, prefix: &str, filter: &Filter) -> Plan {
        let lookups = lookups(filter);
        if lookups.is_empty() {
            return Plan::Scan;
        }
        let indexes = self.by_prefix.get(prefix).map_or(&[][..], Vec::as_slice);
        let best = lookups
            .iter()
            .filter_map(|(path, strings)| {
                let index = indexes.iter().find(|i| i.path == **path)?;
                let sets: Vec<&HashSet<Arc<str>>> =
                    strings.iter().filter_map(|s| index.names.get(*s)).collect();
                Some(sets)
            })
            .min_by_key(|sets| sets.iter().map(|s| s.len()).sum::<usize>());
        match best {
            Some(sets) => {
                let mut names: Vec<String> = sets
                    .into_iter()
                    .flatten()
                    .map(|name| name.to_string())
                    .collect();
                // `$in` strings may share records.
                names.sort_unstable();
                names.dedup();
                Plan::Names(names)
            }
            None if self.count < MAX_INDEXES => Plan::Build(lookups[0].0.clone()),
            None => Plan::Scan,
        }
    }

    /// Makes the index of `path` over the collection named `prefix...` from its live
    /// `records` (name, value), which must be the committed state no write can change
    /// until the index is in place (the caller holds the store's write lock). Nothing if
    /// it exists or the store has [`MAX_INDEXES`].
    pub(crate) fn build<'a>(
        &mut self,
        prefix: &str,
        path: FieldPath,
        records: impl IntoIterator<Item = (&'a str, &'a Value)>,
    ) {
        let indexes = self.by_prefix.entry(prefix.to_owned()).or_default();
        if self.count >= MAX_INDEXES || indexes.iter().any(|i| i.path == path) {
            return;
        }
        let mut index = FieldIndex {
            path,
            names: HashMap::new(),
            keys: HashMap::new(),
        };
        for (name, value) in records {
            index.set(name, Some(value));
        }
        indexes.push(index);
        self.count += 1;
    }

    /// Whether a write of `name` must be told to the indexes (its collection has some).
    pub(crate) fn watches(&self, name: &str) -> bool {
        !self.by_prefix.is_empty()
            && collection_prefix(name).is_some_and(|p| self.by_prefix.contains_key(p))
    }

    /// Record `name` is now `value` (`None`: a tombstone, or gone), committed.
    pub(crate) fn update(&mut self, name: &str, value: Option<&Value>) {
        let Some(indexes) = collection_prefix(name).and_then(|p| self.by_prefix.get_mut(p)) else {
            return;
        };
        for index in indexes {
            index.set(name, value);
        }
    }

    /// Record `name` is now stored with `data` (JSON text), or is a tombstone; data that
    /// is not JSON has no keys (a query then never reads it through an index).
    pub(crate) fn update_text(&mut self, name: &str, deleted: bool, data: &str) {
        if !self.watches(name) {
            return;
        }
        let value = if deleted {
            None
        } else {
            recordsync_core::json::parse(data).ok()
        };
        self.update(name, value.as_ref());
    }

    /// Forgets every index (after a change the indexes did not follow): queries make
    /// them again.
    pub(crate) fn clear(&mut self) {
        self.by_prefix.clear();
        self.count = 0;
    }
}

impl FieldIndex {
    fn set(&mut self, name: &str, value: Option<&Value>) {
        let new = value.map(|v| keys(&self.path, v)).unwrap_or_default();
        // Most writes leave the indexed field as it was: nothing to move.
        if self
            .keys
            .get(name)
            .map_or(new.is_empty(), |old| *old == new)
        {
            return;
        }
        let old = self.keys.remove(name).unwrap_or_default();
        let shared: Arc<str> = Arc::from(name);
        for key in old.iter().filter(|k| !new.contains(k)) {
            if let Some(names) = self.names.get_mut(key) {
                names.remove(name);
                if names.is_empty() {
                    self.names.remove(key);
                }
            }
        }
        for key in &new {
            self.names
                .entry(key.clone())
                .or_default()
                .insert(shared.clone());
        }
        if !new.is_empty() {
            self.keys.insert(shared, new);
        }
    }
}

/// The keys of `value` for `path`: the strings equality finds there, sorted, once each.
fn keys(path: &FieldPath, value: &Value) -> Vec<String> {
    let mut keys = Vec::new();
    for reached in path.reach(value) {
        match reached {
            Value::String(s) => keys.push(s.clone()),
            Value::Array(items) => {
                keys.extend(items.iter().filter_map(|i| i.as_str()).map(str::to_owned))
            }
            _ => {}
        }
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// `name`'s collection prefix (up to and with its first `/`).
fn collection_prefix(name: &str) -> Option<&str> {
    name.find('/').map(|i| &name[..=i])
}

/// The conjuncts an index could answer: (data path, the strings one of which it must
/// hold).
fn lookups(filter: &Filter) -> Vec<(&FieldPath, Vec<&str>)> {
    let mut found = Vec::new();
    collect(filter, &mut found);
    found
}

fn collect<'a>(filter: &'a Filter, found: &mut Vec<(&'a FieldPath, Vec<&'a str>)>) {
    match filter {
        Filter::And(filters) => filters.iter().for_each(|f| collect(f, found)),
        Filter::Field { path, conds } if !path.is_metadata() => {
            for cond in conds {
                let strings = match cond {
                    Cond::Eq(Value::String(s)) => vec![s.as_str()],
                    Cond::In(values) => match values.iter().map(Value::as_str).collect() {
                        Some(strings) => strings,
                        None => continue,
                    },
                    _ => continue,
                };
                found.push((path, strings));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use recordsync_core::query::{Doc, Query};
    use serde_json::json;

    use super::*;

    fn filter(q: Value) -> Filter {
        Query::parse(&q).unwrap().filter
    }

    fn path(p: &str) -> FieldPath {
        FieldPath::parse(p).unwrap()
    }

    #[test]
    fn keys_are_what_string_equality_finds() {
        let v = json!({
            "g": "a",
            "tags": ["x", 1, "y", ["z"]],
            "items": [{"k": "p"}, {"k": ["q"]}, {"k": 3}],
            "n": 5,
        });
        assert_eq!(keys(&path("g"), &v), ["a"]);
        // Nested arrays are not entered, as the evaluator's equality does not.
        assert_eq!(keys(&path("tags"), &v), ["x", "y"]);
        assert_eq!(keys(&path("items.k"), &v), ["p", "q"]);
        assert!(keys(&path("n"), &v).is_empty());
        assert!(keys(&path("missing"), &v).is_empty());
        assert!(keys(&path("g"), &json!("not an object")).is_empty());
    }

    #[test]
    fn plans_use_string_equalities_on_data_paths_only() {
        let mut ix = FieldIndexes::default();
        assert_eq!(ix.plan("c/", &filter(json!({"n": 5}))), Plan::Scan);
        assert_eq!(ix.plan("c/", &filter(json!({"_id": "a"}))), Plan::Scan);
        assert_eq!(
            ix.plan("c/", &filter(json!({"$or": [{"g": "a"}, {"g": "b"}]}))),
            Plan::Scan
        );
        assert_eq!(
            ix.plan("c/", &filter(json!({"g": {"$in": ["a", 1]}}))),
            Plan::Scan
        );
        assert_eq!(
            ix.plan("c/", &filter(json!({"$and": [{"n": 1}, {"g": "a"}]}))),
            Plan::Build(path("g"))
        );
        let a = json!({"g": "a", "h": "x"});
        let b = json!({"g": "b", "h": "x"});
        ix.build("c/", path("g"), [("c/1", &a), ("c/2", &b)]);
        ix.build("c/", path("h"), [("c/1", &a), ("c/2", &b)]);
        assert_eq!(
            ix.plan("c/", &filter(json!({"g": "a"}))),
            Plan::Names(vec!["c/1".into()])
        );
        // The narrowest index wins.
        assert_eq!(
            ix.plan("c/", &filter(json!({"h": "x", "g": "b"}))),
            Plan::Names(vec!["c/2".into()])
        );
        assert_eq!(
            ix.plan("c/", &filter(json!({"g": {"$in": ["a", "b", "zz"]}}))),
            Plan::Names(vec!["c/1".into(), "c/2".into()])
        );
        assert_eq!(
            ix.plan("c/", &filter(json!({"g": "zz"}))),
            Plan::Names(vec![])
        );
        // Another collection has no index yet.
        assert_eq!(
            ix.plan("d/", &filter(json!({"g": "a"}))),
            Plan::Build(path("g"))
        );
    }

    #[test]
    fn writes_deletes_and_recreates_move_names() {
        let mut ix = FieldIndexes::default();
        ix.build("c/", path("g"), []);
        let names = |ix: &FieldIndexes, s: &str| ix.plan("c/", &filter(json!({"g": s})));
        assert!(!ix.watches("d/1") && !ix.watches("c") && ix.watches("c/1"));
        ix.update_text("c/1", false, r#"{"g":"a"}"#);
        ix.update_text("c/2", false, r#"{"g":["a","b"]}"#);
        assert_eq!(
            names(&ix, "a"),
            Plan::Names(vec!["c/1".into(), "c/2".into()])
        );
        ix.update_text("c/1", false, r#"{"g":"b"}"#);
        assert_eq!(names(&ix, "a"), Plan::Names(vec!["c/2".into()]));
        assert_eq!(
            names(&ix, "b"),
            Plan::Names(vec!["c/1".into(), "c/2".into()])
        );
        ix.update_text("c/2", true, "null");
        assert_eq!(names(&ix, "a"), Plan::Names(vec![]));
        assert_eq!(names(&ix, "b"), Plan::Names(vec!["c/1".into()]));
        ix.update_text("c/2", false, r#"{"g":"a"}"#);
        assert_eq!(names(&ix, "a"), Plan::Names(vec!["c/2".into()]));
        // Emptied keys leave nothing behind.
        ix.update_text("c/1", false, "{}");
        ix.update_text("c/2", false, "{}");
        let index = &ix.by_prefix["c/"][0];
        assert!(index.names.is_empty() && index.keys.is_empty());
        ix.clear();
        assert_eq!(names(&ix, "a"), Plan::Build(path("g")));
    }

    #[test]
    fn at_most_max_indexes() {
        let mut ix = FieldIndexes::default();
        for i in 0..MAX_INDEXES + 3 {
            ix.build("c/", path(&format!("f{i}")), []);
        }
        assert_eq!(ix.count, MAX_INDEXES);
        let f = filter(json!({format!("f{}", MAX_INDEXES + 1): "x"}));
        assert_eq!(ix.plan("c/", &f), Plan::Scan);
    }

    /// The index's names for a string are exactly the records the evaluator's equality
    /// matches, whatever the values.
    #[test]
    fn names_are_exactly_the_matches() {
        let values = [
            json!({"a": "x"}),
            json!({"a": ["x", "y"]}),
            json!({"a": [["x"]]}),
            json!({"a": {"b": "x"}}),
            json!({"a": [{"b": "x"}, {"b": ["y"]}]}),
            json!({"a": null}),
            json!({"a": 1}),
            json!({"b": "x"}),
            json!(["x"]),
            json!({"a": "X"}),
        ];
        for p in ["a", "a.b", "a.0", "a.0.b"] {
            let mut ix = FieldIndexes::default();
            let named: Vec<(String, &Value)> = values
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("c/{i}"), v))
                .collect();
            ix.build("c/", path(p), named.iter().map(|(n, v)| (n.as_str(), *v)));
            for s in ["x", "y", "X"] {
                let f = filter(json!({p: s}));
                let Plan::Names(got) = ix.plan("c/", &f) else {
                    panic!("no plan for {p}")
                };
                let want: Vec<String> = named
                    .iter()
                    .filter(|(n, v)| f.matches(&Doc::new(&n[2..], v, 1, 0, 0)))
                    .map(|(n, _)| n.clone())
                    .collect();
                assert_eq!(got, want, "{p} = {s}");
            }
        }
    }
}
