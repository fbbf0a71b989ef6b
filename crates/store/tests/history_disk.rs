//! How much disk history takes: one record written 100,000 times with 1 KB values, with
//! the default retention and with "keep everything", on the embedded store and on
//! PostgreSQL (issue 13, item 6). A measurement, not a test; run with
//! `cargo test -p recordsync-store --release --test history_disk -- --ignored --nocapture`
//! (`HISTORY_DISK_WRITES` changes the number of writes). Figures: `bench/NOTES.md`.
//! `embedded_reclaim_on_open` measures the opening that prunes a data set written keeping
//! everything, and compacts its file.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::path::Path;
use std::sync::Arc;

use recordsync_store::embedded::EmbeddedOptions;
use recordsync_store::postgres::testing::TestSchema;
use recordsync_store::{
    EmbeddedStore, History, JournalEntry, PostgresOptions, Store, StoredRecord, Write, WriteOutcome,
};

fn writes() -> u64 {
    std::env::var("HISTORY_DISK_WRITES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

/// A 1 KB value for version `v`, and the op that set it.
fn put(v: u64, base: Option<u64>) -> Write {
    let data = format!(r#"{{"v":{v},"pad":"{:0>1000}"}}"#, v);
    let entries = (base.map_or(0, |b| b + 1)..=v)
        .map(|v| JournalEntry {
            version: v,
            time: 1_700_000_000_000 + v,
            op: format!(r#"{{"op":"update","data":{data}}}"#),
            author: None,
            origin: None,
        })
        .collect();
    Write::Put {
        record: StoredRecord {
            name: "hot".into(),
            version: v,
            created: 0,
            deleted: false,
            data,
            ctime: 1,
            mtime: 1,
        },
        base_version: base,
        entries,
    }
}

/// Writes versions 0..n to `hot`, 100 chained writes per commit.
async fn write_all(store: &dyn Store, n: u64) {
    store.commit(&[put(0, None)]).await.unwrap();
    let mut v = 1;
    while v < n {
        let batch: Vec<Write> = (v..(v + 100).min(n)).map(|v| put(v, Some(v - 1))).collect();
        let outcomes = store.commit(&batch).await.unwrap();
        assert!(outcomes.iter().all(|o| *o == WriteOutcome::Committed));
        v += batch.len() as u64;
    }
}

/// The sizes of the redb file and of the write-ahead log.
fn dir_size(dir: &Path) -> (u64, u64) {
    let len = |name: &str| std::fs::metadata(dir.join(name)).unwrap().len();
    (
        len(recordsync_store::embedded::FILE_NAME),
        len(recordsync_store::embedded::WAL_FILE_NAME),
    )
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a test"]
async fn embedded_disk_use() {
    let n = writes();
    for (label, history) in [
        ("default", History::default()),
        ("keep everything", History::keep_everything()),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let options = EmbeddedOptions {
            history,
            ..EmbeddedOptions::default()
        };
        let started = std::time::Instant::now();
        let store = EmbeddedStore::open_with(dir.path(), options.clone()).unwrap();
        write_all(&store, n).await;
        let kept = store.journal("hot", 0, u64::MAX).await.unwrap().len();
        let start = store.history_start("hot").await.unwrap().unwrap();
        store.checkpoint().unwrap();
        let open = dir_size(dir.path());
        drop(store);
        let closed = dir_size(dir.path());
        let store = EmbeddedStore::open_with(dir.path(), options).unwrap();
        assert_eq!(store.get("hot").await.unwrap().unwrap().version, n - 1);
        drop(store);
        let reopened = dir_size(dir.path());
        println!(
            "embedded, {label}: {n} writes of 1 KB in {:.1} s; {kept} entries kept \
             (history from {start}); data file {} while open ({} bytes per write), {} after \
             a clean shutdown, {} after a restart; write-ahead log {}",
            started.elapsed().as_secs_f64(),
            mb(open.0),
            (open.0 / n),
            mb(closed.0),
            mb(reopened.0),
            mb(reopened.1),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a test"]
async fn postgres_disk_use() {
    let n = writes();
    let (client, connection) = tokio_postgres::connect(
        &recordsync_store::postgres::testing::test_url(),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    for (label, history) in [
        ("default", History::default()),
        ("keep everything", History::keep_everything()),
    ] {
        let schema = TestSchema::new("disk");
        let options = PostgresOptions {
            history,
            ..PostgresOptions::default()
        };
        let started = std::time::Instant::now();
        let store = Arc::new(schema.connect_with(options).await);
        write_all(store.as_ref(), n).await;
        let kept = store.journal("hot", 0, u64::MAX).await.unwrap().len();
        let s = schema.schema();
        let size_sql = format!(
            "SELECT pg_total_relation_size('{s}.records') + \
             pg_total_relation_size('{s}.journal') + pg_total_relation_size('{s}.milestones')"
        );
        let before = client
            .query_one(&size_sql, &[])
            .await
            .unwrap()
            .get::<_, i64>(0) as u64;
        client
            .batch_execute(&format!("VACUUM {s}.records, {s}.journal, {s}.milestones"))
            .await
            .unwrap();
        let vacuumed = client
            .query_one(&size_sql, &[])
            .await
            .unwrap()
            .get::<_, i64>(0) as u64;
        // And the same number of writes again: does vacuumed space get reused?
        let elapsed = started.elapsed();
        let again = std::time::Instant::now();
        let store2 = store.clone();
        {
            let mut v = n;
            while v < 2 * n {
                let batch: Vec<Write> = (v..(v + 100).min(2 * n))
                    .map(|v| put(v, Some(v - 1)))
                    .collect();
                store2.commit(&batch).await.unwrap();
                v += batch.len() as u64;
            }
        }
        let after_more = client
            .query_one(&size_sql, &[])
            .await
            .unwrap()
            .get::<_, i64>(0) as u64;
        client
            .batch_execute(&format!(
                "VACUUM FULL {s}.records, {s}.journal, {s}.milestones"
            ))
            .await
            .unwrap();
        let full = client
            .query_one(&size_sql, &[])
            .await
            .unwrap()
            .get::<_, i64>(0) as u64;
        println!(
            "postgres, {label}: {n} writes of 1 KB in {:.1} s; {kept} entries kept; tables \
             {} ({} per write), {} after VACUUM; {} more writes ({:.1} s) later: {}, {} after \
             VACUUM FULL",
            elapsed.as_secs_f64(),
            mb(before),
            before / n,
            mb(vacuumed),
            n,
            again.elapsed().as_secs_f64(),
            mb(after_more),
            mb(full)
        );
        drop(store);
        drop(store2);
    }
}

/// A data set written keeping everything, then opened with the default retention: the
/// opening prunes and compacts (`src/embedded/reclaim.rs`). Prints the sizes and how
/// long each opening took.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a test"]
async fn embedded_reclaim_on_open() {
    let n = writes();
    let dir = tempfile::tempdir().unwrap();
    let keep_everything = EmbeddedOptions {
        history: History::keep_everything(),
        ..EmbeddedOptions::default()
    };
    let store = EmbeddedStore::open_with(dir.path(), keep_everything.clone()).unwrap();
    write_all(&store, n).await;
    drop(store);
    let before = dir_size(dir.path());
    let started = std::time::Instant::now();
    let store = EmbeddedStore::open_with(dir.path(), keep_everything).unwrap();
    let plain_open = started.elapsed();
    drop(store);
    let started = std::time::Instant::now();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let reclaiming_open = started.elapsed();
    let after = dir_size(dir.path());
    let kept = store.journal("hot", 0, u64::MAX).await.unwrap().len();
    assert_eq!(store.get("hot").await.unwrap().unwrap().version, n - 1);
    drop(store);
    let started = std::time::Instant::now();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let next_open = started.elapsed();
    drop(store);
    println!(
        "embedded, keep everything then the default: {n} writes of 1 KB; data file {} \
         before, {} after the opening that reclaims ({kept} entries kept); openings: \
         {:.0} ms keeping everything, {:.0} ms reclaiming, {:.0} ms the next one",
        mb(before.0),
        mb(after.0),
        plain_open.as_secs_f64() * 1e3,
        reclaiming_open.as_secs_f64() * 1e3,
        next_open.as_secs_f64() * 1e3,
    );
}
