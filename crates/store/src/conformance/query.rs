//! The query cases of the conformance suite: ShareDB's Mongo-style queries
//! ([`Store::query`]) answer the same on every store.
//!
//! Most cases query one fixture collection ([`fixture`]) whose documents mix types on
//! the same fields, nest objects and arrays, and lack fields, so that each operator is
//! seen with every kind of value it may meet.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use recordsync_core::query::{JSON0_TYPE_URI, Query, Selection};
use serde_json::{Value, json};

use super::{T0, commit_ok, entry};
use crate::error::StoreError;
use crate::store::{JournalEntry, Store, StoredRecord, Write};

/// A collection name no other case or run uses (no `/`: a collection holds none).
fn collection(case: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "q{}-{nanos}-{}-{case}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// `collection/id` at `version` with `data`, on top of `base` (`None`: a new name).
fn doc_write(
    name: &str,
    version: u64,
    base: Option<u64>,
    data: &str,
    (ctime, mtime): (u64, u64),
) -> Write {
    let first = base.map_or(0, |b| b + 1);
    let entries: Vec<JournalEntry> = (first..=version).map(entry).collect();
    Write::Put {
        record: StoredRecord {
            name: name.to_owned(),
            version,
            created: first,
            deleted: false,
            data: data.to_owned(),
            ctime,
            mtime,
        },
        base_version: base,
        entries,
    }
}

/// The fixture's documents: id and value. Document `i` (from 1) is stored at engine
/// version `i` (ShareDB's `_v` is `i + 1`), created at `T0 + i`, modified at
/// `T0 + 100 - i`.
const FIXTURE: [(&str, &str); 8] = [
    (
        "a",
        r#"{"n":1,"s":"x","tags":["red","blue"],"o":{"p":1,"q":[1,2]},"l":[{"k":1,"v":"a"},{"k":2,"v":"b"}]}"#,
    ),
    (
        "b",
        r#"{"n":2.0,"s":"y","tags":["green"],"o":{"p":2},"l":[{"k":3,"v":"a"}]}"#,
    ),
    ("c", r#"{"n":"3","s":null,"tags":[],"o":{"p":[1,3]}}"#),
    ("d", r#"{"n":10,"tags":"red","o":"text"}"#),
    ("e", r#"{"n":[5,20],"s":"x"}"#),
    ("f", r#"{"other":true}"#),
    ("g", r#"{"n":-1.5e0,"s":"Z","b":false}"#),
    ("h", r#"{"n":true,"s":{"x":1}}"#),
];

/// A new collection holding [`FIXTURE`].
async fn fixture(store: &Arc<dyn Store>, case: &str) -> String {
    let c = collection(case);
    let batch = FIXTURE
        .iter()
        .zip(1u64..)
        .map(|((id, data), i)| {
            doc_write(&format!("{c}/{id}"), i, None, data, (T0 + i, T0 + 100 - i))
        })
        .collect();
    commit_ok(store, batch).await;
    c
}

async fn run(store: &Arc<dyn Store>, c: &str, q: Value) -> Selection<StoredRecord> {
    let query = Query::parse(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
    store
        .query(c, &query)
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"))
}

/// The ids a query answers, in order.
async fn ids(store: &Arc<dyn Store>, c: &str, q: Value) -> Vec<String> {
    match run(store, c, q.clone()).await {
        Selection::Items(records) => records
            .iter()
            .map(|r| {
                r.name
                    .strip_prefix(&format!("{c}/"))
                    .unwrap_or_else(|| panic!("{q}: {} is not in {c}", r.name))
                    .to_owned()
            })
            .collect(),
        Selection::Count(n) => panic!("{q}: a count ({n}), not documents"),
    }
}

async fn count(store: &Arc<dyn Store>, c: &str, q: Value) -> u64 {
    match run(store, c, q.clone()).await {
        Selection::Count(n) => n,
        Selection::Items(_) => panic!("{q}: documents, not a count"),
    }
}

/// Checks each `(query, ids)`.
async fn expect(store: &Arc<dyn Store>, c: &str, cases: Vec<(Value, &[&str])>) {
    for (q, want) in cases {
        assert_eq!(ids(store, c, q.clone()).await, want, "query {q}");
    }
}

pub async fn query_equality_and_paths(store: Arc<dyn Store>) {
    let c = fixture(&store, "eq").await;
    expect(
        &store,
        &c,
        vec![
            (json!({}), &["a", "b", "c", "d", "e", "f", "g", "h"]),
            (json!({"n": 1}), &["a"]),
            (json!({"n": 2}), &["b"]),
            (json!({"n": 1.0}), &["a"]),
            (json!({"n": "3"}), &["c"]),
            (json!({"n": 3}), &[]),
            (json!({"s": "x"}), &["a", "e"]),
            (json!({"n": {"$eq": 10}}), &["d"]),
            (json!({"o.p": 2}), &["b"]),
            (json!({"o": {"p": 2}}), &["b"]),
            (json!({"o": {"p": 1}}), &[]),
            (json!({"o.q": [1, 2]}), &["a"]),
            (json!({"o.q": [2, 1]}), &[]),
            (json!({"n": 2, "s": "y"}), &["b"]),
            (json!({"n": 2, "s": "x"}), &[]),
            (json!({"nope": 1}), &[]),
            (json!({"l.0.k": 1}), &["a"]),
            (json!({"h": {"$eq": {"x": 1}}}), &[]),
            (json!({"s": {"x": 1}}), &["h"]),
        ],
    )
    .await;
}

pub async fn query_arrays(store: Arc<dyn Store>) {
    let c = fixture(&store, "arrays").await;
    expect(
        &store,
        &c,
        vec![
            (json!({"tags": "red"}), &["a", "d"]),
            (json!({"tags": ["red", "blue"]}), &["a"]),
            (json!({"tags": []}), &["c"]),
            (json!({"n": 5}), &["e"]),
            (json!({"o.p": 1}), &["a", "c"]),
            (json!({"o.q": 2}), &["a"]),
            (json!({"l.k": 3}), &["b"]),
            (json!({"l.v": "a"}), &["a", "b"]),
            (json!({"tags": {"$size": 2}}), &["a"]),
            (json!({"tags": {"$size": 0}}), &["c"]),
            (json!({"o.p": {"$size": 2}}), &["c"]),
            (json!({"tags": {"$in": ["green", "blue"]}}), &["a", "b"]),
            (
                json!({"l": {"$elemMatch": {"k": {"$gte": 2}, "v": "b"}}}),
                &["a"],
            ),
            (json!({"l": {"$elemMatch": {"k": 3, "v": "b"}}}), &[]),
            (json!({"n": {"$elemMatch": {"$gt": 10}}}), &["e"]),
            // Each condition may hold for another element (MongoDB's rule).
            (json!({"n": {"$gt": 5, "$lt": 15}}), &["d", "e"]),
        ],
    )
    .await;
}

pub async fn query_comparisons_are_type_bracketed(store: Arc<dyn Store>) {
    let c = fixture(&store, "cmp").await;
    expect(
        &store,
        &c,
        vec![
            (json!({"n": {"$gt": 1}}), &["b", "d", "e"]),
            (json!({"n": {"$gte": 1}}), &["a", "b", "d", "e"]),
            (json!({"n": {"$lt": 2}}), &["a", "g"]),
            (json!({"n": {"$lte": 2}}), &["a", "b", "g"]),
            (json!({"n": {"$gt": "2"}}), &["c"]),
            (json!({"s": {"$gt": "x"}}), &["b"]),
            (json!({"s": {"$lt": "x"}}), &["g"]),
            (json!({"n": {"$gte": -1.5, "$lt": 1}}), &["g"]),
            (json!({"b": {"$lt": true}}), &["g"]),
            (json!({"n": {"$gt": null}}), &[]),
        ],
    )
    .await;
}

pub async fn query_missing_fields(store: Arc<dyn Store>) {
    let c = fixture(&store, "missing").await;
    expect(
        &store,
        &c,
        vec![
            (json!({"s": null}), &["c", "d", "f"]),
            (json!({"s": {"$ne": null}}), &["a", "b", "e", "g", "h"]),
            (json!({"s": {"$ne": "x"}}), &["b", "c", "d", "f", "g", "h"]),
            (json!({"s": {"$exists": false}}), &["d", "f"]),
            (
                json!({"s": {"$exists": true}}),
                &["a", "b", "c", "e", "g", "h"],
            ),
            (
                json!({"n": {"$nin": [1, 2]}}),
                &["c", "d", "e", "f", "g", "h"],
            ),
            (json!({"n": {"$in": [1, "3", 20]}}), &["a", "c", "e"]),
            (json!({"s": {"$in": [null, "y"]}}), &["b", "c", "d", "f"]),
            (
                json!({"tags": {"$ne": "red"}}),
                &["b", "c", "e", "f", "g", "h"],
            ),
        ],
    )
    .await;
}

pub async fn query_logic(store: Arc<dyn Store>) {
    let c = fixture(&store, "logic").await;
    expect(
        &store,
        &c,
        vec![
            (json!({"$or": [{"n": 1}, {"s": "y"}]}), &["a", "b"]),
            (json!({"$and": [{"s": "x"}, {"n": {"$gt": 1}}]}), &["e"]),
            (
                json!({"$nor": [{"s": "x"}, {"n": 2}]}),
                &["c", "d", "f", "g", "h"],
            ),
            (
                json!({"n": {"$not": {"$gt": 1}}}),
                &["a", "c", "f", "g", "h"],
            ),
            (
                json!({"$or": [{"n": 1}, {"s": {"$exists": false}}]}),
                &["a", "d", "f"],
            ),
            (
                json!({"$or": [{"$and": [{"tags": "red"}, {"n": {"$gt": 1}}]}, {"_id": "g"}]}),
                &["d", "g"],
            ),
        ],
    )
    .await;
}

pub async fn query_sort_skip_limit_count(store: Arc<dyn Store>) {
    let c = fixture(&store, "sort").await;
    expect(
        &store,
        &c,
        vec![
            // null and missing < numbers < strings < objects < arrays < booleans; an
            // array by its smallest element ascending, its largest descending.
            (
                json!({"$sort": {"n": 1}}),
                &["f", "g", "a", "b", "e", "d", "c", "h"],
            ),
            (
                json!({"$sort": {"n": -1}}),
                &["h", "c", "e", "d", "b", "a", "g", "f"],
            ),
            // Ties on the first key go to the second, then to the id.
            (
                json!({"$sort": {"s": 1, "n": -1}}),
                &["c", "d", "f", "g", "e", "a", "b", "h"],
            ),
            (
                json!({"$sort": {"s": 1}}),
                &["c", "d", "f", "g", "a", "e", "b", "h"],
            ),
            (
                json!({"$sort": {"s": -1}}),
                &["h", "b", "a", "e", "g", "c", "d", "f"],
            ),
            (
                json!({"$sort": {"n": 1}, "$skip": 2, "$limit": 3}),
                &["a", "b", "e"],
            ),
            (json!({"$sort": {"n": 1}, "$skip": 7}), &["h"]),
            (json!({"$sort": {"n": 1}, "$skip": 9}), &[]),
            (
                json!({"$limit": 0}),
                &["a", "b", "c", "d", "e", "f", "g", "h"],
            ),
            (json!({"n": {"$gte": 1}, "$limit": 2}), &["a", "b"]),
            (
                json!({"$sort": {"o.p": -1}, "o.p": {"$exists": true}}),
                &["c", "b", "a"],
            ),
        ],
    )
    .await;
    assert_eq!(
        count(&store, &c, json!({"n": {"$gte": 1}, "$count": true})).await,
        4
    );
    assert_eq!(
        count(
            &store,
            &c,
            json!({"n": {"$gte": 1}, "$count": true, "$skip": 1, "$limit": 2})
        )
        .await,
        2
    );
    assert_eq!(
        count(&store, &c, json!({"nope": 1, "$count": true})).await,
        0
    );
}

pub async fn query_metadata(store: Arc<dyn Store>) {
    let c = fixture(&store, "meta").await;
    expect(
        &store,
        &c,
        vec![
            (json!({"_id": "c"}), &["c"]),
            (json!({"_id": {"$in": ["a", "h", "zz", 1]}}), &["a", "h"]),
            (json!({"_id": {"$gt": "f"}}), &["g", "h"]),
            (json!({"_v": 3}), &["b"]),
            (json!({"_v": {"$gte": 8}}), &["g", "h"]),
            (json!({"_m.ctime": T0 + 3}), &["c"]),
            (json!({"_m.mtime": {"$lt": T0 + 94}}), &["g", "h"]),
            (
                json!({"_type": JSON0_TYPE_URI}),
                &["a", "b", "c", "d", "e", "f", "g", "h"],
            ),
            (json!({"_type": "http://sharejs.org/types/textv1"}), &[]),
            (json!({"$sort": {"_v": -1}, "$limit": 2}), &["h", "g"]),
            (json!({"$sort": {"_m.mtime": 1}, "$limit": 1}), &["h"]),
            (json!({"_id": "c", "n": "3"}), &["c"]),
            (json!({"_id": "c", "n": 3}), &[]),
        ],
    )
    .await;
    // What comes back is the record as stored.
    let Selection::Items(records) = run(&store, &c, json!({"_id": "d"})).await else {
        panic!("documents expected")
    };
    assert_eq!(records.len(), 1);
    let d = &records[0];
    assert_eq!(
        (d.name.clone(), d.version, d.ctime, d.mtime, d.deleted),
        (format!("{c}/d"), 4, T0 + 4, T0 + 96, false)
    );
    let value: Value = serde_json::from_str(&d.data).unwrap();
    assert_eq!(value, json!({"n": 10, "tags": "red", "o": "text"}));
}

pub async fn query_excludes_deleted_and_other_collections(store: Arc<dyn Store>) {
    let c = collection("scope");
    let times = (T0, T0);
    let doc = r#"{"n":1}"#;
    commit_ok(
        &store,
        vec![
            doc_write(&format!("{c}/x1"), 1, None, doc, times),
            doc_write(&format!("{c}/x2"), 1, None, doc, times),
            doc_write(&format!("{c}/x3"), 1, None, doc, times),
            doc_write(&format!("{c}/sub/id"), 1, None, doc, times),
            doc_write(&c, 1, None, doc, times),
            doc_write(&format!("{c}c/x1"), 1, None, doc, times),
            doc_write(&format!("{c}0/x1"), 1, None, doc, times),
            doc_write(&format!("{c}.x/x1"), 1, None, doc, times),
        ],
    )
    .await;
    let tombstone = |name: String, version: u64| Write::Put {
        record: StoredRecord {
            name,
            version,
            created: 0,
            deleted: true,
            data: "null".to_owned(),
            ctime: T0,
            mtime: T0,
        },
        base_version: Some(version - 1),
        entries: vec![JournalEntry {
            op: r#"{"op":"delete"}"#.to_owned(),
            ..entry(version)
        }],
    };
    commit_ok(
        &store,
        vec![
            tombstone(format!("{c}/x2"), 2),
            tombstone(format!("{c}/x3"), 2),
        ],
    )
    .await;
    // x3 comes back; x2 stays deleted.
    commit_ok(
        &store,
        vec![doc_write(&format!("{c}/x3"), 4, Some(2), doc, times)],
    )
    .await;
    for q in [
        json!({}),
        json!({"n": 1}),
        json!({"$sort": {"n": -1}}),
        json!({"_v": {"$gte": 0}}),
        json!({"n": {"$ne": 2}}),
    ] {
        assert_eq!(
            ids(&store, &c, q.clone()).await,
            ["sub/id", "x1", "x3"],
            "{q}"
        );
    }
    assert_eq!(
        ids(&store, &c, json!({"_id": "x2"})).await,
        Vec::<String>::new()
    );
    assert_eq!(count(&store, &c, json!({"$count": true})).await, 3);
    assert_eq!(
        ids(&store, &collection("empty"), json!({})).await,
        Vec::<String>::new()
    );
}

pub async fn query_values_jsonb_cannot_hold(store: Arc<dyn Store>) {
    let c = collection("jsonb");
    let times = (T0, T0);
    commit_ok(
        &store,
        vec![
            doc_write(
                &format!("{c}/y1"),
                1,
                None,
                r#"{"s":"a\u0000b","n":1}"#,
                times,
            ),
            doc_write(
                &format!("{c}/y2"),
                1,
                None,
                r#"{"s":"ab","n":1e400}"#,
                times,
            ),
            doc_write(&format!("{c}/y3"), 1, None, r#"{"s":"ab","n":2}"#, times),
        ],
    )
    .await;
    expect(
        &store,
        &c,
        vec![
            (json!({"s": "a\u{0}b"}), &["y1"]),
            (json!({"s": "ab"}), &["y2", "y3"]),
            (json!({"n": 1}), &["y1"]),
            (json!({"n": {"$gt": 1}}), &["y2", "y3"]),
            (json!({"n": {"$gt": 1e300}}), &["y2"]),
            (json!({"s": {"$gt": "a"}}), &["y1", "y2", "y3"]),
            (json!({"$sort": {"n": -1}}), &["y2", "y3", "y1"]),
        ],
    )
    .await;
}

pub async fn query_refuses_a_collection_with_a_slash(store: Arc<dyn Store>) {
    let query = Query::parse(&json!({})).unwrap();
    for bad in ["a/b", ""] {
        assert!(
            matches!(
                store.query(bad, &query).await,
                Err(StoreError::InvalidQuery(_))
            ),
            "{bad:?}"
        );
    }
}

/// Equality queries asked again after each kind of change give what a scan gives: the
/// memory and embedded stores answer them from field indexes made by the first such
/// query (`field_index.rs`), which every later write, delete and re-create must keep
/// true — including writes to other collections and to other fields.
pub async fn query_equality_follows_writes_deletes_and_recreates(store: Arc<dyn Store>) {
    let c = collection("follow");
    let other = collection("follow-other");
    let times = (T0, T0);
    let name = |id: &str| format!("{c}/{id}");
    commit_ok(
        &store,
        vec![
            doc_write(&name("a"), 1, None, r#"{"g":"x","t":["p","q"]}"#, times),
            doc_write(&name("b"), 1, None, r#"{"g":"y","t":"p"}"#, times),
            doc_write(&name("c"), 1, None, r#"{"g":1}"#, times),
            doc_write(&format!("{other}/a"), 1, None, r#"{"g":"x"}"#, times),
        ],
    )
    .await;
    let check = |want: [(&'static str, &'static [&'static str]); 5]| {
        let store = store.clone();
        let c = c.clone();
        async move {
            for (q, ids_wanted) in want {
                let q: Value = serde_json::from_str(q).unwrap_or_else(|e| panic!("{q}: {e}"));
                assert_eq!(ids(&store, &c, q.clone()).await, ids_wanted, "query {q}");
            }
        }
    };
    let queries = [
        r#"{"g":"x"}"#,
        r#"{"g":"y"}"#,
        r#"{"t":"p","$sort":{"g":1}}"#,
        r#"{"g":{"$in":["x","y"]},"t":"q"}"#,
        r#"{"g":"x","$limit":1}"#,
    ];
    let expect_at = |answers: [&'static [&'static str]; 5]| {
        let mut pairs = [("", &[][..]); 5];
        for (i, a) in answers.into_iter().enumerate() {
            pairs[i] = (queries[i], a);
        }
        pairs
    };
    check(expect_at([&["a"], &["b"], &["a", "b"], &["a"], &["a"]])).await;
    // A field changes its value, a field is added, another collection and an unindexed
    // field change.
    commit_ok(
        &store,
        vec![
            doc_write(&name("a"), 2, Some(1), r#"{"g":"y","t":["q"]}"#, times),
            doc_write(
                &name("c"),
                2,
                Some(1),
                r#"{"g":"x","t":["p"],"n":2}"#,
                times,
            ),
            doc_write(&format!("{other}/a"), 2, Some(1), r#"{"g":"y"}"#, times),
        ],
    )
    .await;
    check(expect_at([
        &["c"],
        &["a", "b"],
        &["c", "b"],
        &["a"],
        &["c"],
    ]))
    .await;
    // A delete, then a re-create with other values.
    let tombstone = Write::Put {
        record: StoredRecord {
            name: name("c"),
            version: 3,
            created: 0,
            deleted: true,
            data: "null".to_owned(),
            ctime: T0,
            mtime: T0,
        },
        base_version: Some(2),
        entries: vec![JournalEntry {
            op: r#"{"op":"delete"}"#.to_owned(),
            ..entry(3)
        }],
    };
    commit_ok(&store, vec![tombstone]).await;
    check(expect_at([&[], &["a", "b"], &["b"], &["a"], &[]])).await;
    commit_ok(
        &store,
        vec![doc_write(
            &name("c"),
            4,
            Some(3),
            r#"{"g":"y","t":"q"}"#,
            times,
        )],
    )
    .await;
    check(expect_at([&[], &["a", "b", "c"], &["b"], &["a", "c"], &[]])).await;
    // A new document, and a write refused for its base version, which changes nothing.
    let refused = doc_write(&name("a"), 9, Some(7), r#"{"g":"x"}"#, times);
    let outcomes = store
        .commit(&[
            doc_write(&name("d"), 1, None, r#"{"g":"x","t":["p","q"]}"#, times),
            refused,
        ])
        .await
        .unwrap_or_else(|e| panic!("commit: {e}"));
    assert!(
        matches!(outcomes[1], crate::store::WriteOutcome::Conflict { .. }),
        "{outcomes:?}"
    );
    check(expect_at([
        &["d"],
        &["a", "b", "c"],
        &["d", "b"],
        &["a", "c", "d"],
        &["d"],
    ]))
    .await;
}

/// Records restored into a collection already queried by equality are found by the same
/// query (the field index made by the first query follows restores too).
pub async fn query_equality_sees_restored_records(store: Arc<dyn Store>) {
    let c = collection("restored");
    let times = (T0, T0);
    commit_ok(
        &store,
        vec![doc_write(&format!("{c}/a"), 1, None, r#"{"g":"x"}"#, times)],
    )
    .await;
    assert_eq!(ids(&store, &c, json!({"g": "x"})).await, ["a"]);
    let dump = |id: &str, data: &str, deleted: bool| crate::dump::RecordDump {
        record: StoredRecord {
            name: format!("{c}/{id}"),
            version: 3,
            created: 1,
            deleted,
            data: data.to_owned(),
            ctime: T0,
            mtime: T0,
        },
        history: None,
    };
    store
        .restore(&[
            dump("b", r#"{"g":"x"}"#, false),
            dump("c", r#"{"g":["y","x"]}"#, false),
            dump("d", "null", true),
        ])
        .await
        .unwrap_or_else(|e| panic!("restore: {e}"));
    assert_eq!(ids(&store, &c, json!({"g": "x"})).await, ["a", "b", "c"]);
    assert_eq!(ids(&store, &c, json!({"g": "y"})).await, ["c"]);
}
