//! PostgresStore against a real PostgreSQL: the shared conformance suite, plus what only
//! a shared database has — migrations run by several nodes at once, nodes racing for
//! the same record, and the server going away and coming back.
//!
//! Needs the test server (`RECORDSYNC_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/test`); each test works in a schema of its own,
//! dropped at the end. The outage test starts a private server of its own (initdb and
//! pg_ctl from /usr/lib/postgresql/*/bin) on a spare port, so that it can stop it.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use recordsync_store::postgres::testing::TestSchema;
use recordsync_store::{
    GroupCommitter, JournalEntry, PostgresOptions, PostgresStore, Store, StoreError, StoredRecord,
    Write, WriteOutcome,
};
use support::PrivatePostgres;

mod conformance {
    use super::*;

    recordsync_store::store_conformance_tests!(async {
        let schema = TestSchema::new("conformance");
        let store = schema.connect().await;
        (Arc::new(store) as Arc<dyn Store>, schema)
    });
    mod history {
        use super::*;
        use recordsync_store::History;

        recordsync_store::store_history_conformance_tests!(|history: History| async move {
            let schema = TestSchema::new("history");
            let options = PostgresOptions {
                history,
                ..PostgresOptions::default()
            };
            let store = schema.connect_with(options).await;
            (Arc::new(store) as Arc<dyn Store>, schema)
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_on_one_shared_store() {
    let schema = TestSchema::new("run_all");
    recordsync_store::conformance::run_all(Arc::new(schema.connect().await)).await;
}

fn put(name: &str, version: u64, data: &str) -> Write {
    put_on(
        name,
        version,
        version.checked_sub(1).filter(|_| version > 1),
        data,
    )
}

/// `name` from `base` to `version` (`None`: from nothing, with its create at 0).
fn put_on(name: &str, version: u64, base: Option<u64>, data: &str) -> Write {
    Write::Put {
        record: StoredRecord {
            name: name.to_owned(),
            version,
            created: 0,
            deleted: false,
            data: data.to_owned(),
            ctime: 1_700_000_000_000,
            mtime: 1_700_000_000_000 + version,
        },
        base_version: base,
        entries: (base.map_or(0, |b| b + 1)..=version)
            .map(|v| JournalEntry {
                version: v,
                time: 1_700_000_000_000 + v,
                op: format!(r#"{{"set":{data}}}"#),
                author: None,
                origin: None,
            })
            .collect(),
    }
}

/// A plain client on the test server, for looking at the tables directly.
async fn sql_client() -> tokio_postgres::Client {
    let url = recordsync_store::postgres::testing::test_url();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("the test PostgreSQL is reachable");
    tokio::spawn(connection);
    client
}

async fn submit(committer: &GroupCommitter, write: Write) -> Result<WriteOutcome, StoreError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    committer.submit(
        write,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    rx.await.expect("the committer ran the callback")
}

/// The schema comes with the partial index of the rows whose data jsonb cannot hold
/// (migration 5), so that an index an operator adds on `data` serves queries: their
/// clause is `data IS NULL OR <sieve>`, which PostgreSQL answers from indexes (a
/// `BitmapOr`) only when both arms have one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_can_combine_an_index_on_data_with_the_null_data_index() {
    let schema = TestSchema::new("null_data_index");
    let store = schema.connect().await;
    let batch: Vec<Write> = (0..2_000)
        .map(|i| {
            put(
                &format!("users/u{i:05}"),
                1,
                &format!(r#"{{"group":"g{}"}}"#, i % 100),
            )
        })
        .collect();
    store.commit(&batch).await.unwrap();
    let mut client = sql_client().await;
    let records = format!("{}.records", schema.schema());
    let indexdef: String = client
        .query_one(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = \
             'records_null_data'",
            &[&schema.schema()],
        )
        .await
        .expect("the schema has the index")
        .get(0);
    assert!(
        indexdef.ends_with("(name) WHERE (data IS NULL)"),
        "{indexdef}"
    );
    client
        .batch_execute(&format!(
            "CREATE INDEX ON {records} USING gin (data jsonb_path_ops); ANALYZE {records}"
        ))
        .await
        .unwrap();
    // The clause the store sends for `{group: "g7"}` (postgres.rs, `Store::query`); the
    // sequential scan is turned off so that the plan shows which indexes can serve it.
    let tx = client.transaction().await.unwrap();
    tx.batch_execute("SET LOCAL enable_seqscan = off")
        .await
        .unwrap();
    let plan: Vec<String> = tx
        .query(
            &format!(
                "EXPLAIN SELECT name FROM {records} WHERE name >= 'users/' AND name < \
                 'users0' AND NOT deleted AND (data IS NULL OR data @> '{{\"group\":\"g7\"}}')"
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(
        plan.contains("BitmapOr") && plan.contains("records_null_data"),
        "{plan}"
    );
    let answer = store
        .query(
            "users",
            &recordsync_core::query::Query::parse(&serde_json::json!({"group": "g7"})).unwrap(),
        )
        .await
        .unwrap();
    let recordsync_core::query::Selection::Items(found) = answer else {
        panic!("documents")
    };
    assert_eq!(found.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_nodes_starting_together_take_turns() {
    let schema = TestSchema::new("migrate");
    // Four nodes start at once on an empty database.
    let url = schema.url();
    let stores = futures_join_all((0..4).map(|_| {
        let url = url.clone();
        async move { PostgresStore::connect(&url).await.expect("connect") }
    }))
    .await;
    let client = sql_client().await;
    let rows = client
        .query(
            &format!(
                "SELECT version, name FROM {}.schema_migrations ORDER BY version",
                schema.schema()
            ),
            &[],
        )
        .await
        .unwrap();
    let applied: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        applied,
        (1..=recordsync_store::postgres::SCHEMA_VERSION).collect::<Vec<_>>(),
        "each migration applied exactly once"
    );

    // Every node names the same data set.
    let data_set = stores[0]
        .data_set()
        .expect("a PostgreSQL store names its data set");
    assert_eq!(data_set.len(), 32, "{data_set:?}");
    for store in &stores {
        assert_eq!(store.data_set(), Some(data_set));
    }
    let data_set = data_set.to_owned();

    // Every node sees the others' writes.
    stores[0]
        .commit(&[put("shared", 1, r#"{"from":0}"#)])
        .await
        .unwrap();
    for store in &stores {
        assert_eq!(store.get("shared").await.unwrap().unwrap().version, 1);
    }
    drop(stores);

    // A restart finds the schema up to date and the data in place.
    let again = schema.connect().await;
    assert_eq!(
        again.get("shared").await.unwrap().unwrap().data,
        r#"{"from":0}"#
    );
    let count: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM {}.schema_migrations", schema.schema()),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, applied.len() as i64);
    assert_eq!(
        again.data_set(),
        Some(data_set.as_str()),
        "kept across restarts"
    );

    // Another schema is another data set.
    let other = TestSchema::new("migrate_other");
    let other_store = other.connect().await;
    assert_ne!(other_store.data_set(), Some(data_set.as_str()));
}

/// `futures::future::join_all` without the dependency.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_from_a_newer_recordsync_is_refused() {
    let schema = TestSchema::new("newer");
    drop(schema.connect().await);
    sql_client()
        .await
        .execute(
            &format!(
                "INSERT INTO {}.schema_migrations (version, name) VALUES (9999, 'future')",
                schema.schema()
            ),
            &[],
        )
        .await
        .unwrap();
    match PostgresStore::connect(&schema.url()).await {
        Err(StoreError::Database { target, reason }) => {
            assert!(target.ends_with("/test"), "{target}");
            assert!(reason.reason().contains("newer recordsync"), "{reason}");
            assert!(reason.reason().contains("9999"), "{reason}");
        }
        other => panic!("expected a Database error, got {other:?}"),
    }
}

#[tokio::test]
async fn connecting_to_nothing_fails_fast_and_clearly() {
    let port = support::free_port();
    let started = Instant::now();
    let err = PostgresStore::connect(&format!(
        "postgres://postgres:secret@127.0.0.1:{port}/test?connect_timeout=2"
    ))
    .await
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    let message = err.to_string();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    // The driver's error is kept, not only its text.
    let source = std::error::Error::source(&err).expect("an unreachable server has a source");
    assert!(
        source.downcast_ref::<tokio_postgres::Error>().is_some(),
        "{source:?}"
    );
    assert!(
        message.contains(&format!("127.0.0.1:{port}/test")),
        "{message}"
    );
    assert!(!message.contains("secret"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_order_and_number_spelling_are_kept_and_jsonb_is_queryable() {
    let schema = TestSchema::new("key_order");
    let store = schema.connect().await;
    let ordered =
        r#"{"zebra":1,"apple":{"z":true,"a":null},"n":1.50,"big":12345678901234567890,"e":1E+2}"#;
    let with_nul = r#"{"b":"x\u0000y","a":1}"#;
    let outcomes = store
        .commit(&[put("ordered", 1, ordered), put("nul", 1, with_nul)])
        .await
        .unwrap();
    assert_eq!(outcomes, vec![WriteOutcome::Committed; 2]);
    assert_eq!(store.get("ordered").await.unwrap().unwrap().data, ordered);
    assert_eq!(store.get("nul").await.unwrap().unwrap().data, with_nul);
    let journal = store.journal("nul", 1, 1).await.unwrap();
    assert_eq!(journal[0].op, format!(r#"{{"set":{with_nul}}}"#));

    // The jsonb column answers queries; it is NULL where jsonb cannot hold the value.
    let client = sql_client().await;
    let row = client
        .query_one(
            &format!(
                "SELECT data->'apple' ? 'z', (data->>'zebra')::int FROM {}.records WHERE name = 'ordered'",
                schema.schema()
            ),
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
    assert_eq!(row.get::<_, i32>(1), 1);
    let null: bool = client
        .query_one(
            &format!(
                "SELECT data IS NULL FROM {}.records WHERE name = 'nul'",
                schema.schema()
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(null);

    // Updating it to a plain value fills the jsonb column again.
    store
        .commit(&[put("nul", 2, r#"{"b":"fine"}"#)])
        .await
        .unwrap();
    let b: String = client
        .query_one(
            &format!(
                "SELECT data->>'b' FROM {}.records WHERE name = 'nul'",
                schema.schema()
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(b, "fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_postgres_cannot_store_fails_clearly_and_stores_nothing() {
    let schema = TestSchema::new("nul_name");
    let store = schema.connect().await;
    let err = store
        .commit(&[put("fine", 1, "{}"), put("bad\0name", 1, "{}")])
        .await
        .unwrap_err();
    match &err {
        StoreError::Unstorable { name, reason } => {
            assert_eq!(name, "bad\0name");
            assert!(reason.contains("U+0000"), "{reason}");
        }
        other => panic!("expected Unstorable, got {other:?}"),
    }
    assert_eq!(
        store.get("fine").await.unwrap(),
        None,
        "the batch was not stored"
    );
    assert_eq!(store.get("bad\0name").await.unwrap(), None);
    assert!(
        store
            .journal("bad\0name", 0, u64::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    // The store is fine afterwards.
    store.commit(&[put("fine", 1, "{}")]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_for_one_version_exactly_one_wins() {
    let schema = TestSchema::new("race");
    let (a, b) = tokio::join!(schema.connect(), schema.connect());
    let (a, b) = (Arc::new(a), Arc::new(b));
    let rounds = 150u64;
    let mut wins = [0u64; 2];
    for v in 1..=rounds {
        // Both build version v on v - 1 (both create, for v = 1).
        let wa = put("contested", v, &format!(r#"{{"node":"a","v":{v}}}"#));
        let wb = put("contested", v, &format!(r#"{{"node":"b","v":{v}}}"#));
        let (ra, rb) = tokio::join!(
            tokio::spawn({
                let a = a.clone();
                async move { a.commit(&[wa]).await }
            }),
            tokio::spawn({
                let b = b.clone();
                async move { b.commit(&[wb]).await }
            }),
        );
        let (ra, rb) = (ra.unwrap().unwrap()[0], rb.unwrap().unwrap()[0]);
        let conflict = WriteOutcome::Conflict { current: Some(v) };
        match (ra, rb) {
            (WriteOutcome::Committed, c) if c == conflict => wins[0] += 1,
            (c, WriteOutcome::Committed) if c == conflict => wins[1] += 1,
            other => panic!("version {v}: expected one winner, got {other:?}"),
        }
        let stored = a.get("contested").await.unwrap().unwrap();
        let winner = if ra == WriteOutcome::Committed {
            "a"
        } else {
            "b"
        };
        assert_eq!(stored.data, format!(r#"{{"node":"{winner}","v":{v}}}"#));
    }
    assert_eq!(wins[0] + wins[1], rounds);
    let journal = b.journal("contested", 0, u64::MAX).await.unwrap();
    assert_eq!(
        journal.iter().map(|e| e.version).collect::<Vec<_>>(),
        (0..=rounds).collect::<Vec<_>>()
    );
    assert_eq!(a.stats().conflict_retries + b.stats().conflict_retries, 0);
}

/// Read-modify-write increments from two nodes, several writers each, through group
/// committers: every increment that was acknowledged is in the final count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_from_two_nodes_lose_no_update() {
    let schema = TestSchema::new("increments");
    let (a, b) = tokio::join!(schema.connect(), schema.connect());
    let nodes: Vec<(Arc<dyn Store>, Arc<GroupCommitter>)> = [a, b]
        .into_iter()
        .map(|store| {
            let store: Arc<dyn Store> = Arc::new(store);
            let committer = Arc::new(GroupCommitter::new(store.clone()));
            (store, committer)
        })
        .collect();
    let counters = ["count/0", "count/1", "count/2"];
    let per_writer = 25u64;
    let acked: Arc<Mutex<HashMap<&str, u64>>> = Arc::default();
    let mut tasks = Vec::new();
    for (n, (store, committer)) in nodes.iter().enumerate() {
        for w in 0..4usize {
            let (store, committer, acked) = (store.clone(), committer.clone(), acked.clone());
            let name = counters[(n + w) % counters.len()];
            tasks.push(tokio::spawn(async move {
                let mut done = 0;
                let mut conflicts = 0u64;
                while done < per_writer {
                    let current = store.get(name).await.unwrap();
                    let (version, count) = match &current {
                        Some(r) => {
                            let v: serde_json::Value = serde_json::from_str(&r.data).unwrap();
                            (r.version, v["count"].as_u64().unwrap())
                        }
                        None => (0, 0),
                    };
                    let write = put_on(
                        name,
                        version + 1,
                        current.as_ref().map(|r| r.version),
                        &format!(r#"{{"count":{}}}"#, count + 1),
                    );
                    match submit(&committer, write).await.unwrap() {
                        WriteOutcome::Committed => {
                            done += 1;
                            *acked.lock().entry(name).or_default() += 1;
                        }
                        WriteOutcome::Conflict { .. } => conflicts += 1,
                    }
                }
                conflicts
            }));
        }
    }
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.unwrap();
    }
    for (_, committer) in &nodes {
        committer.flush().await;
    }
    let acked = acked.lock().clone();
    let store = &nodes[0].0;
    for name in counters {
        let r = store.get(name).await.unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(&r.data).unwrap();
        assert_eq!(v["count"].as_u64(), Some(acked[name]), "{name}");
        assert_eq!(r.version, acked[name], "{name}: one version per increment");
        let journal = store.journal(name, 0, u64::MAX).await.unwrap();
        assert_eq!(
            journal.iter().map(|e| e.version).collect::<Vec<_>>(),
            (0..=acked[name]).collect::<Vec<_>>()
        );
    }
    assert!(
        conflicts > 0,
        "the writers should have collided at least once"
    );
}

/// Batches locking the same records in opposite orders, from two nodes at once: the
/// store locks in one global order, so PostgreSQL never has to break a deadlock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_batches_in_opposite_orders_do_not_deadlock() {
    let schema = TestSchema::new("deadlock");
    let (a, b) = tokio::join!(schema.connect(), schema.connect());
    let (a, b) = (Arc::new(a), Arc::new(b));
    let names: Vec<String> = (0..20).map(|i| format!("lock/{i:02}")).collect();
    a.commit(&names.iter().map(|n| put(n, 1, "{}")).collect::<Vec<_>>())
        .await
        .unwrap();
    let round = |store: Arc<PostgresStore>, reverse: bool| {
        let names = names.clone();
        tokio::spawn(async move {
            for _ in 0..30 {
                let mut batch = Vec::new();
                for name in &names {
                    let current = store.get(name).await.unwrap().map(|r| r.version);
                    let next = current.map_or(1, |v| v + 1);
                    batch.push(put_on(name, next, current, "{}"));
                }
                if reverse {
                    batch.reverse();
                }
                store.commit(&batch).await.expect("no deadlock error");
            }
        })
    };
    let (ra, rb) = tokio::join!(round(a.clone(), false), round(b.clone(), true));
    ra.unwrap();
    rb.unwrap();
    assert_eq!(a.stats().conflict_retries + b.stats().conflict_retries, 0);
}

/// The server crashes (and restarts) under writers streaming through a group
/// committer: writes fail with a clear error meanwhile, every acknowledged one is there
/// afterwards, and the same store serves again without being reopened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_fails_writes_clearly_keeps_acknowledged_ones_and_recovers() {
    let mut pg = PrivatePostgres::start();
    let options = PostgresOptions {
        op_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        pool_size: 4,
        ..PostgresOptions::default()
    };
    let store: Arc<dyn Store> = Arc::new(
        PostgresStore::connect_with(&pg.url(), options)
            .await
            .expect("connect to the private server"),
    );
    let committer = Arc::new(GroupCommitter::new(store.clone()));

    // Writers: each appends to its own record, reloading after any error.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked: Arc<Mutex<HashMap<String, Vec<u64>>>> = Arc::default();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (store, committer) = (store.clone(), committer.clone());
            let (stop, acked, errors) = (stop.clone(), acked.clone(), errors.clone());
            tokio::spawn(async move {
                let name = format!("outage/{w}");
                'outer: while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let current = match store.get(&name).await {
                        Ok(r) => r.map(|r| r.version),
                        Err(e) => {
                            errors.lock().push(e.to_string());
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let mut version = current.unwrap_or(0);
                    loop {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            break 'outer;
                        }
                        let write = put_on(
                            &name,
                            version + 1,
                            (version > 0).then_some(version),
                            &format!(r#"{{"w":{w},"v":{}}}"#, version + 1),
                        );
                        match submit(&committer, write).await {
                            Ok(WriteOutcome::Committed) => {
                                version += 1;
                                acked.lock().entry(name.clone()).or_default().push(version);
                            }
                            Ok(WriteOutcome::Conflict { .. }) => continue 'outer,
                            Err(e) => {
                                errors.lock().push(e.to_string());
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                continue 'outer;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    let total_acked = |acked: &Mutex<HashMap<String, Vec<u64>>>| -> usize {
        acked.lock().values().map(Vec::len).sum()
    };

    // Some writes go through; then the server crashes (no shutdown checkpoint).
    wait_until("writes before the outage", || total_acked(&acked) >= 40).await;
    pg.stop("immediate");
    let before_restart = total_acked(&acked);

    // Meanwhile: direct calls fail fast, with a message naming the server.
    let started = Instant::now();
    let err = store.commit(&[put("direct", 1, "{}")]).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&format!("127.0.0.1:{}", pg.port)),
        "{message}"
    );
    assert!(message.contains("reconnects by itself"), "{message}");
    assert!(matches!(
        store.get("outage/0").await,
        Err(StoreError::Unavailable(_))
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        total_acked(&acked) <= before_restart + 4,
        "nothing is acknowledged while the server is down (at most the batch in flight)"
    );
    assert!(!errors.lock().is_empty(), "the writers saw errors");

    // The server comes back: the same store and committer carry on by themselves.
    pg.restart();
    let resumed_from = total_acked(&acked);
    wait_until("writes after the restart", || {
        total_acked(&acked) >= resumed_from + 40
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    committer.flush().await;

    // Every acknowledged write is stored, in its record's journal, exactly as written.
    let acked_now = acked.lock().clone();
    for (name, versions) in &acked_now {
        let w: u64 = name.trim_start_matches("outage/").parse().unwrap();
        let record = store.get(name).await.unwrap().unwrap();
        assert!(record.version >= *versions.last().unwrap(), "{name}");
        let journal: HashMap<u64, String> = store
            .journal(name, 0, u64::MAX)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.version, e.op))
            .collect();
        for v in versions {
            assert_eq!(
                journal.get(v).map(String::as_str),
                Some(format!(r#"{{"set":{{"w":{w},"v":{v}}}}}"#).as_str()),
                "{name} version {v} was acknowledged"
            );
        }
        assert_eq!(journal.len() as u64, record.version + 1, "{name}: no gaps");
    }
    let sample = errors.lock()[0].clone();
    eprintln!(
        "outage: {before_restart} writes acknowledged before the crash, {} in all; {} errors \
         while down, e.g. {sample}",
        total_acked(&acked),
        errors.lock().len()
    );
    assert!(
        sample.contains("unavailable") || sample.contains("unreachable"),
        "{sample}"
    );
    committer.shutdown().await;
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Group commit throughput on PostgreSQL (not a test):
///
/// cargo test -p recordsync-store --release --test postgres -- --ignored --nocapture throughput
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a test"]
async fn group_commit_throughput() {
    for (writers, writes) in [(1u64, 300u64), (10, 100), (100, 100), (1000, 20)] {
        let schema = TestSchema::new("bench");
        let store: Arc<dyn Store> = Arc::new(schema.connect().await);
        let committer = Arc::new(GroupCommitter::new(store));
        let start = Instant::now();
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let committer = committer.clone();
                tokio::spawn(async move {
                    let name = format!("bench/{w}");
                    for v in 1..=writes {
                        let data =
                            format!(r#"{{"v":{v},"text":"a value of a typical small size"}}"#);
                        let outcome = submit(&committer, put(&name, v, &data)).await;
                        assert_eq!(outcome.unwrap(), WriteOutcome::Committed);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let elapsed = start.elapsed();
        let stats = committer.stats();
        let total = writers * writes;
        println!(
            "postgres: {writers} writers x {writes} writes: {total} in {:.2} s = {:.0} writes/s; \
             {} commits ({:.0}/s), average batch {:.1}, largest {}",
            elapsed.as_secs_f64(),
            total as f64 / elapsed.as_secs_f64(),
            stats.batches,
            stats.batches as f64 / elapsed.as_secs_f64(),
            stats.average_batch(),
            stats.max_batch
        );
        committer.shutdown().await;
    }
}
