//! Fetch-query latency over a 100,000-document collection on each store, and on
//! PostgreSQL with and without the indexes `postgres/query.rs` names (not a test).
//!
//! cargo test -p recordsync-store --release --test query_bench -- --ignored --nocapture
//!
//! PostgreSQL: the test server (`RECORDSYNC_TEST_POSTGRES`), a schema of its own.
//!
//! Figures of 2026-12-07 on the project's 2-core VM, shared with other builds (load
//! average 5 to 7, so scans vary by 2x between runs), medians of 15:
//!
//! | query | memory | embedded | PostgreSQL, no index | PostgreSQL, indexes |
//! |---|---|---|---|---|
//! | `{group: "g42"}` (1,000 match) | 851 ms | 359 ms | 56 ms | 7.2 ms |
//! | `{n: 7, group: "g7"}` (100) | 793 ms | 365 ms | 55 ms | 1.2 ms |
//! | `{"address.city": "city 3"}` (2,000) | 606 ms | 427 ms | 96 ms | 16 ms |
//! | `{tags: "t3", $count: true}` (22,078) | 360 ms | 638 ms | 212 ms | 173 ms |
//! | `{n: {$gt: 990}}` (900) | 351 ms | 679 ms | 66 ms | 6.3 ms |
//! | `{group: "g42", $sort: {n: -1}, $limit: 10}` | 351 ms | 688 ms | 57 ms | 11 ms |
//! | `{_id: "u012345"}` | 3 µs | 12 µs | 0.3 ms¹ | 0.4 ms¹ |
//!
//! ¹ From a later run (load higher, every other figure about 1.5x these), after ids were
//! read through the primary key outside the NULL-data fallback (before: 23 ms without
//! the partial index).
//!
//! Memory and embedded parsed and tested every document of the collection (3.5 to 8 µs
//! each here). Since `b65793b` they answer string equalities (`{group: "g42"}`,
//! `tags: "t3"`, `address.city`) from field indexes made by the first such query
//! (`src/field_index.rs`), so those rows are figures of a scan, not of today's stores;
//! not measured again yet. PostgreSQL's indexes are `USING gin (data jsonb_path_ops)`,
//! `((data -> 'n'))` and `(name) WHERE data IS NULL` (the last one made with the schema
//! since migration 5; the bench made it itself before).

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use recordsync_core::query::{Query, Selection};
use recordsync_store::postgres::testing::TestSchema;
use recordsync_store::{EmbeddedStore, JournalEntry, MemoryStore, Store, StoredRecord, Write};
use serde_json::{Value, json};

const DOCS: usize = 100_000;
const RUNS: usize = 15;

fn doc(i: usize) -> String {
    json!({
        "n": i % 1000,
        "group": format!("g{}", i % 100),
        "tags": [format!("t{}", i % 7), format!("t{}", i % 11)],
        "name": format!("user {i}"),
        "address": {"city": format!("city {}", i % 50)},
    })
    .to_string()
}

async fn load(store: &dyn Store) {
    let started = Instant::now();
    for chunk in (0..DOCS).collect::<Vec<_>>().chunks(1000) {
        let batch: Vec<Write> = chunk
            .iter()
            .map(|&i| Write::Put {
                record: StoredRecord {
                    name: format!("users/u{i:06}"),
                    version: 1,
                    created: 0,
                    deleted: false,
                    data: doc(i),
                    ctime: 1,
                    mtime: 1,
                },
                base_version: None,
                entries: (0..=1)
                    .map(|v| JournalEntry {
                        version: v,
                        time: 1,
                        op: r#"{"op":"create","data":{}}"#.into(),
                        author: None,
                        origin: None,
                    })
                    .collect(),
            })
            .collect();
        store.commit(&batch).await.unwrap();
    }
    println!("  loaded {DOCS} documents in {:?}", started.elapsed());
}

/// The queries measured: (what, query, expected answer size).
fn queries() -> Vec<(&'static str, Value, u64)> {
    vec![
        ("equality, 1,000 match", json!({"group": "g42"}), 1000),
        (
            "equality on two fields, 100 match",
            json!({"n": 7, "group": "g7"}),
            100,
        ),
        (
            "dotted equality, 2,000 match",
            json!({"address.city": "city 3"}),
            2000,
        ),
        (
            "array membership, count",
            json!({"tags": "t3", "$count": true}),
            22078,
        ),
        ("range n > 990, 900 match", json!({"n": {"$gt": 990}}), 900),
        (
            "equality, sort n desc, limit 10",
            json!({"group": "g42", "$sort": {"n": -1}, "$limit": 10}),
            10,
        ),
        ("_id", json!({"_id": "u012345"}), 1),
    ]
}

async fn measure(label: &str, store: &dyn Store) {
    println!("{label}:");
    for (what, q, size) in queries() {
        let query = Query::parse(&q).unwrap();
        let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let started = Instant::now();
            let answer = store.query("users", &query).await.unwrap();
            times.push(started.elapsed());
            let got = match answer {
                Selection::Items(items) => items.len() as u64,
                Selection::Count(n) => n,
            };
            assert_eq!(got, size, "{q}");
        }
        times.sort();
        println!(
            "  {what:<38} median {:>9.2?}  max {:>9.2?}",
            times[RUNS / 2],
            times[RUNS - 1]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a test"]
async fn query_latency() {
    let memory = MemoryStore::new();
    load(&memory).await;
    measure("memory (scan)", &memory).await;
    drop(memory);

    let dir = tempfile::tempdir().unwrap();
    let embedded = EmbeddedStore::open(dir.path()).unwrap();
    load(&embedded).await;
    measure("embedded (scan of the collection's name range)", &embedded).await;
    drop(embedded);

    let schema = TestSchema::new("query_bench");
    let postgres = Arc::new(schema.connect().await);
    load(postgres.as_ref()).await;
    let (client, connection) = tokio_postgres::connect(
        &recordsync_store::postgres::testing::test_url(),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let records = format!("{}.records", schema.schema());
    client
        .batch_execute(&format!("ANALYZE {records}"))
        .await
        .unwrap();
    measure("postgres, no index on data", postgres.as_ref()).await;
    client
        .batch_execute(&format!(
            "CREATE INDEX ON {records} USING gin (data jsonb_path_ops); \
             CREATE INDEX ON {records} ((data -> 'n')); ANALYZE {records}"
        ))
        .await
        .unwrap();
    measure(
        "postgres, GIN (data jsonb_path_ops), btree ((data -> 'n'))",
        postgres.as_ref(),
    )
    .await;
}
