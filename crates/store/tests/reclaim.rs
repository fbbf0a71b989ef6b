//! A data set whose history was kept without bound is pruned to the retention settings
//! when the embedded store opens, and its file is compacted (issue 13, item 6; see
//! `src/embedded/reclaim.rs`); a crash at any step of that loses nothing.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::path::Path;
use std::process::{Command, Stdio};

use recordsync_store::embedded::{EmbeddedOptions, FILE_NAME};
use recordsync_store::{EmbeddedStore, History, JournalEntry, Store, StoredRecord, Write};

/// The 1 KB value of version `v`.
fn data(v: u64) -> String {
    format!(r#"{{"v":{v},"pad":"{:0>1000}"}}"#, v)
}

fn op(v: u64) -> String {
    format!(r#"{{"op":"update","data":{}}}"#, data(v))
}

/// `name` at `v`, from `base` (`None`: a new record, entries from 0).
fn put(name: &str, v: u64, base: Option<u64>) -> Write {
    Write::Put {
        record: StoredRecord {
            name: name.to_owned(),
            version: v,
            created: 0,
            deleted: false,
            data: data(v),
            ctime: 1,
            mtime: 1 + v,
        },
        base_version: base,
        entries: (base.map_or(0, |b| b + 1)..=v)
            .map(|v| JournalEntry {
                version: v,
                time: 1 + v,
                op: op(v),
                author: None,
                origin: None,
            })
            .collect(),
    }
}

/// Writes versions 0..n of `name`, 100 chained writes per commit.
async fn write_versions(store: &dyn Store, name: &str, n: u64) {
    store.commit(&[put(name, 0, None)]).await.unwrap();
    let mut v = 1;
    while v < n {
        let batch: Vec<Write> = (v..(v + 100).min(n))
            .map(|v| put(name, v, Some(v - 1)))
            .collect();
        store.commit(&batch).await.unwrap();
        v += batch.len() as u64;
    }
}

fn file_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join(FILE_NAME)).unwrap().len()
}

fn keep_everything() -> EmbeddedOptions {
    EmbeddedOptions {
        history: History::keep_everything(),
        ..EmbeddedOptions::default()
    }
}

/// `name` is at `n - 1` with its history bounded by the default settings, and every
/// `step`-th version of it from its history start (and the last) reads: the newest
/// milestone at or below it, then the entries after it, the last of which sets it.
async fn check_bounded(store: &dyn Store, name: &str, n: u64, step: u64) {
    let current = n - 1;
    let record = store.get(name).await.unwrap().unwrap();
    assert_eq!(record.version, current);
    assert_eq!(record.data, data(current));
    let h = History::default();
    let keep = h.keep_ops.unwrap();
    let start = store.history_start(name).await.unwrap().unwrap();
    assert!(
        current - start >= keep && current - start < h.max_kept().unwrap(),
        "{name}: history from {start} at version {current}"
    );
    let journal = store.journal(name, 0, u64::MAX).await.unwrap();
    let versions: Vec<u64> = journal.iter().map(|e| e.version).collect();
    assert_eq!(
        versions,
        (start + 1..=current).collect::<Vec<_>>(),
        "{name}: the journal is exactly the kept history"
    );
    let mut v = start;
    while v <= current {
        let milestone = store.milestone(name, v).await.unwrap().unwrap();
        assert!(milestone.version >= start && milestone.version <= v);
        assert!(v - milestone.version < h.milestone_every);
        let value = if milestone.version == v {
            milestone.data
        } else {
            let after = store.journal(name, milestone.version + 1, v).await.unwrap();
            let got: Vec<u64> = after.iter().map(|e| e.version).collect();
            assert_eq!(got, (milestone.version + 1..=v).collect::<Vec<_>>());
            let last = &after.last().unwrap().op;
            last.strip_prefix(r#"{"op":"update","data":"#)
                .and_then(|s| s.strip_suffix('}'))
                .unwrap()
                .to_owned()
        };
        assert_eq!(value, data(v), "{name} at {v}");
        v += if v + step > current && v < current {
            current - v
        } else {
            step
        };
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_set_kept_whole_is_pruned_and_compacted_when_reopened_with_a_bound() {
    const N: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    {
        let store = EmbeddedStore::open_with(dir.path(), keep_everything()).unwrap();
        write_versions(&store, "hot", N).await;
        // Short histories, below the bound: left as they are.
        write_versions(&store, "cold", 50).await;
        assert_eq!(
            store.journal("hot", 0, u64::MAX).await.unwrap().len() as u64,
            N
        );
    }
    let before = file_len(dir.path());
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let after = file_len(dir.path());
        // Live: about 1,100 entries and 11 milestones of 1 KB; before: 20,000 entries.
        assert!(
            after * 5 < before,
            "the file should shrink to the kept history: {before} bytes before, {after} after"
        );
        check_bounded(&store, "hot", N, 7).await;
        assert_eq!(store.history_start("cold").await.unwrap(), Some(0));
        assert_eq!(store.journal("cold", 0, u64::MAX).await.unwrap().len(), 50);
        // And it takes writes as usual.
        store.commit(&[put("hot", N, Some(N - 1))]).await.unwrap();
        check_bounded(&store, "hot", N + 1, 97).await;
    }
    // Nothing left to do: a third opening changes nothing.
    let again = file_len(dir.path());
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert!(file_len(dir.path()) <= again);
    check_bounded(&store, "hot", N + 1, 97).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_set_opened_with_keep_everything_is_left_whole() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = EmbeddedStore::open_with(dir.path(), keep_everything()).unwrap();
        write_versions(&store, "hot", 3_000).await;
    }
    let before = file_len(dir.path());
    let store = EmbeddedStore::open_with(dir.path(), keep_everything()).unwrap();
    assert_eq!(store.history_start("hot").await.unwrap(), Some(0));
    assert_eq!(
        store.journal("hot", 0, u64::MAX).await.unwrap().len(),
        3_000
    );
    assert!(file_len(dir.path()) >= before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_records_are_pruned_in_several_transactions() {
    // More records over the bound than one transaction of the sweep takes (1,000), with
    // a small bound so that the test stays quick.
    let small = History {
        milestone_every: 2,
        keep_ops: Some(2),
        keep_age: None,
    };
    let dir = tempfile::tempdir().unwrap();
    {
        // Milestones at 2, 4, 6 and 8, everything kept.
        let writer = EmbeddedOptions {
            history: History {
                keep_ops: None,
                ..small
            },
            ..EmbeddedOptions::default()
        };
        let store = EmbeddedStore::open_with(dir.path(), writer).unwrap();
        let mut batch = Vec::new();
        for i in 0..2_500 {
            let name = format!("r{i:05}");
            batch.push(put(&name, 0, None));
            batch.extend((1..=9).map(|v| put(&name, v, Some(v - 1))));
            if batch.len() >= 5_000 {
                store.commit(&batch).await.unwrap();
                batch.clear();
            }
        }
        store.commit(&batch).await.unwrap();
    }
    let store = EmbeddedStore::open_with(
        dir.path(),
        EmbeddedOptions {
            history: small,
            ..EmbeddedOptions::default()
        },
    )
    .unwrap();
    for i in (0..2_500).step_by(83).chain([2_499]) {
        let name = format!("r{i:05}");
        // 9 - 2 = 7: the greatest milestone at or below is 6.
        assert_eq!(store.history_start(&name).await.unwrap(), Some(6), "{name}");
        let journal = store.journal(&name, 0, u64::MAX).await.unwrap();
        assert_eq!(
            journal.iter().map(|e| e.version).collect::<Vec<_>>(),
            [7, 8, 9]
        );
        let milestone = store.milestone(&name, 9).await.unwrap().unwrap();
        assert_eq!((milestone.version, milestone.data), (8, data(8)));
    }
}

// Crashes. The children are this test binary run again with an environment variable
// naming their role.

const ROLE: &str = "RECORDSYNC_RECLAIM_CHILD";
const CHILD_DIR: &str = "RECORDSYNC_RECLAIM_DIR";
const FAULT: &str = "RECORDSYNC_STORE_FAULT";
const FAULT_DELAY: &str = "RECORDSYNC_STORE_FAULT_DELAY_US";
/// Versions the writing child writes.
const CRASH_N: u64 = 10_000;

/// Child: `write` writes `CRASH_N` versions of `hot` keeping everything, with no
/// checkpoint after the first one, and aborts (the last writes are then only in the
/// write-ahead log and in redb's non-durable state); `open` opens the directory with
/// the default history, so that it reclaims (and crashes at the armed point).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by the crash test in a child process"]
async fn reclaim_child() {
    let (Ok(role), Some(dir)) = (std::env::var(ROLE), std::env::var_os(CHILD_DIR)) else {
        return;
    };
    let dir = Path::new(&dir);
    match role.as_str() {
        "write" => {
            let options = EmbeddedOptions {
                checkpoint_bytes: u64::MAX,
                checkpoint_interval: std::time::Duration::from_secs(3600),
                ..keep_everything()
            };
            let store = EmbeddedStore::open_with(dir, options).unwrap();
            write_versions(&store, "hot", CRASH_N / 2).await;
            store.checkpoint().unwrap();
            let mut v = CRASH_N / 2;
            while v < CRASH_N {
                let batch: Vec<Write> = (v..(v + 100).min(CRASH_N))
                    .map(|v| put("hot", v, Some(v - 1)))
                    .collect();
                store.commit(&batch).await.unwrap();
                v += batch.len() as u64;
            }
            assert!(store.stats().log_bytes > 0);
            std::process::abort();
        }
        "open" => {
            let store = EmbeddedStore::open(dir).unwrap();
            drop(store);
            // A crash armed later than the opening lands here at the latest.
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        other => panic!("unknown role {other}"),
    }
}

/// Runs a child; returns whether it succeeded and its stderr.
fn run_child(dir: &Path, role: &str, env: &[(&str, String)]) -> (bool, String) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "reclaim_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(CHILD_DIR, dir)
        .env_remove(FAULT)
        .env_remove(FAULT_DELAY)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run the test binary as a child");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_while_reclaiming_loses_nothing() {
    let written = tempfile::tempdir().unwrap();
    let (success, _) = run_child(written.path(), "write", &[]);
    assert!(!success, "the writer aborts, leaving its log");
    let before = file_len(written.path());
    for (point, delay) in [
        ("reclaim-after-sweep", None),
        ("reclaim-mid-compaction", Some(0)),
        ("reclaim-mid-compaction", Some(2_000)),
        ("reclaim-mid-compaction", Some(20_000)),
        ("reclaim-after-compaction", None),
    ] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(written.path(), dir.path());
        let mut env = vec![(FAULT, format!("{point}:1"))];
        if let Some(delay) = delay {
            env.push((FAULT_DELAY, delay.to_string()));
        }
        let (success, stderr) = run_child(dir.path(), "open", &env);
        assert!(
            !success && stderr.contains(&format!("FAULT {point}")),
            "{point} ({delay:?} µs): the child should have crashed there: {stderr}"
        );
        let store = EmbeddedStore::open(dir.path()).unwrap();
        check_bounded(&store, "hot", CRASH_N, 13).await;
        drop(store);
        let after = file_len(dir.path());
        assert!(
            after * 3 < before,
            "{point}: the next opening finishes the compaction: {before} bytes before, \
             {after} after"
        );
    }
}
