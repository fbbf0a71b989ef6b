//! Quick throughput measurement of group commit on the embedded store (not a test).
//!
//! cargo test -p recordsync-store --release --test bench -- --ignored --nocapture
//!
//! Set RECORDSYNC_BENCH_DIR to measure on a particular disk (default: the temp dir).

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::sync::Arc;
use std::time::Instant;

use recordsync_store::{
    EmbeddedStore, GroupCommitter, JournalEntry, Store, StoredRecord, Write, WriteOutcome,
};

fn put(name: &str, version: u64) -> Write {
    let base = version.checked_sub(1).filter(|_| version > 1);
    Write::Put {
        record: StoredRecord {
            name: name.to_owned(),
            version,
            created: 0,
            deleted: false,
            data: format!(r#"{{"v":{version},"text":"a value of a typical small size"}}"#),
            ctime: 1,
            mtime: 1,
        },
        base_version: base,
        entries: (base.map_or(0, |b| b + 1)..=version)
            .map(|v| JournalEntry {
                version: v,
                time: 1,
                op: format!(r#"{{"set":{{"v":{v}}}}}"#),
                author: None,
                origin: None,
            })
            .collect(),
    }
}

async fn run(writers: u64, writes: u64) {
    let dir = match std::env::var_os("RECORDSYNC_BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base),
        None => tempfile::tempdir(),
    }
    .unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let committer = Arc::new(GroupCommitter::new(store));
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let committer = committer.clone();
            tokio::spawn(async move {
                let name = format!("bench/{w}");
                for v in 1..=writes {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    committer.submit(
                        put(&name, v),
                        Box::new(move |r| {
                            let _ = tx.send(r);
                        }),
                    );
                    assert_eq!(rx.await.unwrap().unwrap(), WriteOutcome::Committed);
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
        "{writers} writers x {writes} writes: {total} in {:.2} s = {:.0} writes/s; \
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a test"]
async fn group_commit_throughput() {
    run(1, 300).await; // baseline: one commit per write
    run(10, 100).await;
    run(100, 100).await;
    run(1000, 20).await;
}
