//! PostgreSQL's answers to random queries against the core evaluator's, on random
//! documents: the SQL sieve (`src/postgres/query.rs`) must never drop a document the
//! query matches, and what PostgreSQL returns is then decided, ordered and windowed as
//! on every store.
//!
//! Needs the test server (`RECORDSYNC_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/test`); one schema of its own, dropped at the end.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use recordsync_core::query::{Doc, Query, Selection};
use recordsync_core::testing::query::{document, filter, sort};
use recordsync_store::postgres::testing::TestSchema;
use recordsync_store::{JournalEntry, PostgresStore, Store, StoredRecord, Write};
use serde_json::{Value, json};

/// One store and schema for every case (a case's collection is its own).
fn store() -> &'static (tokio::runtime::Runtime, Arc<PostgresStore>, TestSchema) {
    static STORE: OnceLock<(tokio::runtime::Runtime, Arc<PostgresStore>, TestSchema)> =
        OnceLock::new();
    STORE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let schema = TestSchema::new("query_differential");
        let store = runtime.block_on(schema.connect());
        (runtime, Arc::new(store), schema)
    })
}

fn put(name: String, version: u64, data: &Value) -> Write {
    Write::Put {
        record: StoredRecord {
            name,
            version,
            created: 0,
            deleted: false,
            data: data.to_string(),
            ctime: 1_000 + version,
            mtime: 2_000 - version,
        },
        base_version: None,
        entries: (0..=version)
            .map(|v| JournalEntry {
                version: v,
                time: 1_000 + v,
                op: r#"{"op":"create","data":{}}"#.into(),
                author: None,
                origin: None,
            })
            .collect(),
    }
}

/// What the core evaluator answers for `docs` (id `dNN`, engine version `i + 1`).
fn expected(query: &Query, docs: &[Value]) -> Selection<String> {
    let ids: Vec<String> = (0..docs.len()).map(|i| format!("d{i:02}")).collect();
    let matched = docs
        .iter()
        .zip(&ids)
        .zip(1u64..)
        // ShareDB's version is the engine's + 1; times as `put` stores them.
        .map(|((d, id), v)| (Doc::new(id, d, v + 1, 1_000 + v, 2_000 - v), id.clone()))
        .filter(|(doc, _)| query.matches(doc))
        .collect();
    query.select(matched)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn postgres_answers_as_the_core_evaluator(
        docs in prop::collection::vec(document(), 1..16),
        filters in prop::collection::vec(filter(2), 1..8),
        s in sort(),
        window in (0u64..3, 0u64..4),
    ) {
        let (runtime, store, _) = store();
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let collection = format!("c{}", COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let batch: Vec<Write> = docs
            .iter()
            .zip(1u64..)
            .enumerate()
            .map(|(i, (d, v))| put(format!("{collection}/d{i:02}"), v, d))
            .collect();
        runtime.block_on(store.commit(&batch)).unwrap();
        for (k, f) in filters.iter().enumerate() {
            // Every other filter also sorts and takes a window, every third counts.
            let mut q = f.as_object().unwrap().clone();
            if k % 2 == 1 {
                q.insert("$sort".into(), s.clone());
                q.insert("$skip".into(), json!(window.0));
                q.insert("$limit".into(), json!(window.1));
            }
            if k % 3 == 2 {
                q.insert("$count".into(), json!(true));
            }
            let q = Value::Object(q);
            let query = Query::parse(&q).unwrap();
            let ours = match runtime.block_on(store.query(&collection, &query)) {
                Ok(Selection::Items(records)) => Selection::Items(
                    records
                        .into_iter()
                        .map(|r| r.name[collection.len() + 1..].to_owned())
                        .collect(),
                ),
                Ok(Selection::Count(n)) => Selection::Count(n),
                Err(e) => return Err(TestCaseError::fail(format!("{q}: {e}"))),
            };
            prop_assert_eq!(ours, expected(&query, &docs), "query {} on {:?}", q, docs);
        }
    }
}
