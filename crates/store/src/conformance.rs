//! The behaviour every [`Store`] must show, as tests written once and run against each
//! backend (in the manner of ShareDB's shared database-adapter tests).
//!
//! Enabled by the `testing` feature. A backend in another crate runs the whole suite,
//! one `#[tokio::test]` per case, with:
//!
//! ```no_run
//! // In its tests, with `recordsync-store = { ..., features = ["testing"] }` and tokio.
//! # use recordsync_store::MemoryStore as MyStore;
//! use std::sync::Arc;
//! use recordsync_store::Store;
//!
//! recordsync_store::store_conformance_tests!(async {
//!     let store: Arc<dyn Store> = Arc::new(MyStore::new());
//!     (store, ()) // the second element is dropped when the case ends (e.g. a TempDir)
//! });
//! # fn main() {}
//! ```
//!
//! or calls [`run_all`] (or single cases, all `pub async fn(Arc<dyn Store>)`).
//!
//! The cases of milestones and retention need a store opened with a given
//! [`History`]: `store_history_conformance_tests!(|history| async move { ... })` runs
//! them, calling the closure with the history each needs ([`BY_COUNT`], [`BY_AGE`],
//! [`History::keep_everything`]).
//!
//! Every case works on record names under a prefix unique to the process and case, so a
//! backend may share one database between cases and between runs (a PostgreSQL
//! database, say) without clean-up in between.

#![allow(clippy::unwrap_used, reason = "a test suite: cases fail by panicking")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

mod backup;
mod list;
mod query;

pub use backup::*;
pub use list::*;
pub use query::*;

use crate::group_commit::GroupCommitter;
use crate::history::{History, Milestone};
use crate::store::{JournalEntry, Origin, Store, StoredRecord, Write, WriteOutcome};

/// Calls `$callback!($args; case, case, ...)` with every case name: the one list that
/// both [`run_all`] and [`store_conformance_tests!`](crate::store_conformance_tests) use.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_cases {
    ($callback:ident ! ($($args:tt)*)) => {
        $crate::$callback!($($args)*;
            get_missing,
            put_new,
            put_new_at_version_0,
            malformed_writes_are_refused,
            put_new_conflicts_when_record_exists,
            put_with_right_base,
            put_with_wrong_base_conflicts,
            put_with_base_on_missing_record_conflicts,
            chained_writes_in_one_batch,
            conflict_in_a_batch_fails_later_writes_to_that_record_only,
            journal_ranges,
            journal_is_per_record,
            delete_leaves_a_tombstone_and_the_journal,
            delete_conflicts,
            recreate_after_delete,
            history_across_delete_and_recreate,
            author_and_origin_round_trip,
            large_values,
            deeply_nested_values,
            many_records,
            unusual_names_and_text,
            group_commit_concurrent_writers,
            group_commit_callbacks_in_submission_order,
            group_commit_chain_after_conflict,
            query_equality_and_paths,
            query_arrays,
            query_comparisons_are_type_bracketed,
            query_missing_fields,
            query_logic,
            query_sort_skip_limit_count,
            query_metadata,
            query_excludes_deleted_and_other_collections,
            query_equality_follows_writes_deletes_and_recreates,
            query_equality_sees_restored_records,
            query_values_jsonb_cannot_hold,
            query_refuses_a_collection_with_a_slash,
            list_prefix_edges,
            list_prefix_wildcards_are_literal,
            list_pages_give_every_live_record_once,
            backup_round_trip,
            export_reads_one_snapshot,
        );
    };
}

/// Calls `$callback!($args; (case, history), ...)` with every history case and the
/// [`History`] its store must be opened with.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_history_cases {
    ($callback:ident ! ($($args:tt)*)) => {
        $crate::$callback!($($args)*;
            (retention_by_count, $crate::conformance::BY_COUNT),
            (retention_across_delete_and_recreate, $crate::conformance::BY_COUNT),
            (keep_everything_keeps_every_entry, $crate::History::keep_everything()),
            (retention_by_age, $crate::conformance::BY_AGE),
        );
    };
}

/// One `#[tokio::test]` per history case (milestones and retention): `$make` is a closure
/// taking the [`History`] the store must keep and giving a future of
/// `(Arc<dyn Store>, guard)`, as for [`store_conformance_tests!`](crate::store_conformance_tests).
#[macro_export]
macro_rules! store_history_conformance_tests {
    ($make:expr) => {
        $crate::__store_history_cases!(__store_history_gen!($make));
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_history_gen {
    ($make:expr; $(($case:ident, $history:expr)),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, guard) = ($make)($history).await;
                $crate::conformance::$case(store).await;
                drop(guard);
            }
        )*
    };
}

/// One `#[tokio::test]` per conformance case. `$make` is an async expression giving
/// `(Arc<dyn Store>, guard)`; the guard lives until the case ends.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::__store_conformance_cases!(__store_conformance_gen!($make));
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_gen {
    ($make:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, guard) = $make.await;
                $crate::conformance::$case(store).await;
                drop(guard);
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_run {
    ($store:expr; $($case:ident),* $(,)?) => {
        $(
            ::tracing::info!(case = stringify!($case), "store conformance");
            $crate::conformance::$case($store.clone()).await;
        )*
    };
}

/// Runs every case against one store, panicking on the first failure.
pub async fn run_all(store: Arc<dyn Store>) {
    __store_conformance_cases!(__store_conformance_run!(store));
}

/// A prefix no other case or run uses.
fn unique(case: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "conformance/{}-{nanos}-{}/{case}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

const T0: u64 = 1_700_000_000_000;

fn record(name: &str, version: u64, data: &str) -> StoredRecord {
    StoredRecord {
        name: name.to_owned(),
        version,
        created: 0,
        deleted: false,
        data: data.to_owned(),
        ctime: T0,
        mtime: T0 + version,
    }
}

/// The entry of `version`: the create for 0, else a path op. Some have an author, some an
/// origin, so that every case checks those round-trip too.
fn entry(version: u64) -> JournalEntry {
    let op = if version == 0 {
        r#"{"op":"create","data":{}}"#.to_owned()
    } else {
        format!(r#"{{"op":"update","data":{{"v":{version}}}}}"#)
    };
    JournalEntry {
        version,
        time: T0 + version,
        op,
        author: (version % 2 == 1).then(|| format!("user-{version}")),
        origin: (version % 3 == 2).then(|| Origin {
            src: format!("client-{version}"),
            seq: version * 7,
        }),
    }
}

/// The entries from `base` (exclusive; from 0 for `None`) to `version`.
fn entries(base: Option<u64>, version: u64) -> Vec<JournalEntry> {
    let first = base.map_or(0, |b| b + 1);
    (first..=version).map(entry).collect()
}

/// Version `version` of `name`, on top of `version - 1`; for 1, on top of nothing (its
/// create at 0 and the op at 1, as deepstream's first write makes).
fn put(name: &str, version: u64) -> Write {
    put_on(
        name,
        version,
        version.checked_sub(1).filter(|_| version > 1),
    )
}

fn put_on(name: &str, version: u64, base: Option<u64>) -> Write {
    Write::Put {
        record: record(name, version, &format!(r#"{{"v":{version}}}"#)),
        base_version: base,
        entries: entries(base, version),
    }
}

/// The delete of `name` at `version` (on top of `version - 1`): a tombstone.
fn delete(name: &str, version: u64) -> Write {
    Write::Put {
        record: StoredRecord {
            deleted: true,
            data: "null".to_owned(),
            ..record(name, version, "null")
        },
        base_version: version.checked_sub(1),
        entries: vec![JournalEntry {
            op: r#"{"op":"delete"}"#.to_owned(),
            ..entry(version)
        }],
    }
}

/// The re-create of `name`, deleted at `tombstone`: its create at `tombstone + 1` and ops
/// up to `version`.
fn recreate(name: &str, tombstone: u64, version: u64) -> Write {
    let created = tombstone + 1;
    let mut entries = entries(Some(tombstone), version);
    entries[0].op = r#"{"op":"create","data":{}}"#.to_owned();
    Write::Put {
        record: StoredRecord {
            created,
            ..record(name, version, &format!(r#"{{"v":{version}}}"#))
        },
        base_version: Some(tombstone),
        entries,
    }
}

async fn commit(store: &Arc<dyn Store>, batch: Vec<Write>) -> Vec<WriteOutcome> {
    let outcomes = store.commit(&batch).await.expect("commit failed");
    assert_eq!(outcomes.len(), batch.len(), "one outcome per write");
    outcomes
}

async fn commit_ok(store: &Arc<dyn Store>, batch: Vec<Write>) {
    let n = batch.len();
    assert_eq!(commit(store, batch).await, vec![WriteOutcome::Committed; n]);
}

async fn get(store: &Arc<dyn Store>, name: &str) -> Option<StoredRecord> {
    store.get(name).await.expect("get failed")
}

async fn versions(store: &Arc<dyn Store>, name: &str, from: u64, to: u64) -> Vec<u64> {
    store
        .journal(name, from, to)
        .await
        .expect("journal failed")
        .iter()
        .map(|e| e.version)
        .collect()
}

fn upto(last: u64) -> Vec<u64> {
    (0..=last).collect()
}

fn conflict(current: Option<u64>) -> WriteOutcome {
    WriteOutcome::Conflict { current }
}

pub async fn get_missing(store: Arc<dyn Store>) {
    let name = unique("get_missing");
    assert_eq!(get(&store, &name).await, None);
    assert!(store.journal(&name, 0, u64::MAX).await.unwrap().is_empty());
    assert_eq!(store.milestone(&name, u64::MAX).await.unwrap(), None);
    assert_eq!(store.history_start(&name).await.unwrap(), None);
    assert_eq!(store.version_at_time(&name, u64::MAX).await.unwrap(), None);
}

pub async fn put_new(store: Arc<dyn Store>) {
    let name = unique("put_new");
    let r = StoredRecord {
        name: name.clone(),
        version: 1,
        created: 0,
        deleted: false,
        data: r#"{"a":[1,2,{"b":null}],"c":"d"}"#.to_owned(),
        ctime: T0,
        mtime: T0 + 5,
    };
    commit_ok(
        &store,
        vec![Write::Put {
            record: r.clone(),
            base_version: None,
            entries: entries(None, 1),
        }],
    )
    .await;
    assert_eq!(
        get(&store, &name).await,
        Some(r),
        "stored exactly as written"
    );
    assert_eq!(
        store.journal(&name, 0, u64::MAX).await.unwrap(),
        entries(None, 1)
    );
    assert_eq!(store.history_start(&name).await.unwrap(), Some(0));
}

pub async fn put_new_at_version_0(store: Arc<dyn Store>) {
    let name = unique("put_new_0");
    let r = record(&name, 0, "{}");
    commit_ok(
        &store,
        vec![Write::Put {
            record: r.clone(),
            base_version: None,
            entries: entries(None, 0),
        }],
    )
    .await;
    assert_eq!(get(&store, &name).await, Some(r));
    assert_eq!(versions(&store, &name, 0, u64::MAX).await, vec![0]);
    // And it can be written on top of, from version 0.
    commit_ok(&store, vec![put_on(&name, 1, Some(0))]).await;
    assert_eq!(versions(&store, &name, 0, u64::MAX).await, vec![0, 1]);
}

/// A write whose entries do not lead from its base to its version is refused as a whole
/// batch, with [`StoreError::Malformed`](crate::StoreError::Malformed).
pub async fn malformed_writes_are_refused(store: Arc<dyn Store>) {
    let name = unique("malformed");
    let other = format!("{name}-other");
    commit_ok(&store, vec![put(&name, 1)]).await;
    let with = |base: Option<u64>, version: u64, versions: &[u64]| Write::Put {
        record: record(&name, version, "{}"),
        base_version: base,
        entries: versions.iter().map(|&v| entry(v)).collect(),
    };
    for bad in [
        with(Some(1), 2, &[]),
        with(Some(1), 3, &[2]),
        with(Some(1), 3, &[3, 2]),
        with(Some(1), 2, &[2, 2]),
        with(None, 1, &[1]),
        with(None, 0, &[]),
        with(Some(u64::MAX), 0, &[0]),
        with(Some(1), 1, &[]),
    ] {
        let batch = [put(&other, 1), bad.clone()];
        match store.commit(&batch).await {
            Err(crate::StoreError::Malformed { name: n, .. }) => assert_eq!(n, name),
            result => panic!("{bad:?} gave {result:?}"),
        }
    }
    assert_eq!(get(&store, &name).await.unwrap().version, 1);
    assert_eq!(
        get(&store, &other).await,
        None,
        "nothing of the batch stored"
    );
    assert_eq!(versions(&store, &name, 0, u64::MAX).await, upto(1));
}

pub async fn put_new_conflicts_when_record_exists(store: Arc<dyn Store>) {
    let name = unique("put_new_exists");
    commit_ok(&store, vec![put(&name, 1), put(&name, 2)]).await;
    let before = get(&store, &name).await;
    assert_eq!(
        commit(&store, vec![put(&name, 1)]).await,
        vec![conflict(Some(2))]
    );
    assert_eq!(get(&store, &name).await, before);
}

pub async fn put_with_right_base(store: Arc<dyn Store>) {
    let name = unique("put_right_base");
    commit_ok(&store, vec![put(&name, 1)]).await;
    commit_ok(&store, vec![put(&name, 2)]).await;
    let r = get(&store, &name).await.expect("record exists");
    assert_eq!(r.version, 2);
    assert_eq!(r.data, r#"{"v":2}"#);
    assert_eq!(versions(&store, &name, 0, u64::MAX).await, upto(2));
}

pub async fn put_with_wrong_base_conflicts(store: Arc<dyn Store>) {
    let name = unique("put_wrong_base");
    commit_ok(&store, vec![put(&name, 1), put(&name, 2), put(&name, 3)]).await;
    let before = get(&store, &name).await;
    for base in [1, 2, 4, 100] {
        let outcome = commit(&store, vec![put_on(&name, base + 1, Some(base))]).await;
        assert_eq!(outcome, vec![conflict(Some(3))], "base {base}");
    }
    assert_eq!(
        get(&store, &name).await,
        before,
        "a conflict stores nothing"
    );
    assert_eq!(versions(&store, &name, 0, u64::MAX).await, upto(3));
}

pub async fn put_with_base_on_missing_record_conflicts(store: Arc<dyn Store>) {
    let name = unique("put_base_missing");
    assert_eq!(
        commit(&store, vec![put_on(&name, 4, Some(3))]).await,
        vec![conflict(None)]
    );
    assert_eq!(get(&store, &name).await, None);
    assert!(versions(&store, &name, 0, u64::MAX).await.is_empty());
}

pub async fn chained_writes_in_one_batch(store: Arc<dyn Store>) {
    let name = unique("chained");
    // Each write is checked against the one before it in the same batch.
    commit_ok(&store, (1..=5).map(|v| put(&name, v)).collect()).await;
    assert_eq!(get(&store, &name).await.unwrap().version, 5);
    assert_eq!(versions(&store, &name, 0, u64::MAX).await, upto(5));
    commit_ok(&store, (6..=8).map(|v| put(&name, v)).collect()).await;
    assert_eq!(get(&store, &name).await.unwrap().data, r#"{"v":8}"#);
}

pub async fn conflict_in_a_batch_fails_later_writes_to_that_record_only(store: Arc<dyn Store>) {
    let a = unique("batch_conflict_a");
    let b = unique("batch_conflict_b");
    let c = unique("batch_conflict_c");
    commit_ok(&store, vec![put(&b, 1)]).await;
    let outcomes = commit(
        &store,
        vec![
            put(&a, 1),
            put(&c, 1),
            put_on(&b, 3, Some(2)), // b is at 1
            put(&a, 2),
            put(&c, 2),
            // b's next write was built on the failed one; its base matches what is stored
            // by coincidence, and it must not land.
            put_on(&b, 2, Some(1)),
            put_on(&a, 9, Some(5)), // a is at 2 by now
            put(&a, 3),
            put(&c, 3),
        ],
    )
    .await;
    assert_eq!(
        outcomes,
        vec![
            WriteOutcome::Committed,
            WriteOutcome::Committed,
            conflict(Some(1)),
            WriteOutcome::Committed,
            WriteOutcome::Committed,
            conflict(Some(1)),
            conflict(Some(2)),
            conflict(Some(2)),
            WriteOutcome::Committed,
        ]
    );
    assert_eq!(get(&store, &a).await.unwrap().version, 2);
    assert_eq!(get(&store, &b).await.unwrap().version, 1);
    assert_eq!(get(&store, &c).await.unwrap().version, 3);
    assert_eq!(versions(&store, &a, 0, u64::MAX).await, upto(2));
    assert_eq!(versions(&store, &b, 0, u64::MAX).await, upto(1));
    assert_eq!(versions(&store, &c, 0, u64::MAX).await, upto(3));

    // The next batch starts afresh.
    commit_ok(&store, vec![put(&a, 3), put(&b, 2)]).await;

    // A batch of nothing but conflicts changes nothing.
    let outcomes = commit(&store, vec![put(&a, 1), put_on(&b, 5, Some(4))]).await;
    assert_eq!(outcomes, vec![conflict(Some(3)), conflict(Some(2))]);
    assert_eq!(get(&store, &a).await.unwrap().version, 3);
}

pub async fn journal_ranges(store: Arc<dyn Store>) {
    let name = unique("journal_ranges");
    commit_ok(
        &store,
        vec![Write::Put {
            record: record(&name, 0, "{}"),
            base_version: None,
            entries: entries(None, 0),
        }],
    )
    .await;
    // Spread over several batches, some with many entries.
    commit_ok(
        &store,
        (1..=3).map(|v| put_on(&name, v, Some(v - 1))).collect(),
    )
    .await;
    commit_ok(&store, vec![put_on(&name, 4, Some(3))]).await;
    commit_ok(
        &store,
        (5..=12).map(|v| put_on(&name, v, Some(v - 1))).collect(),
    )
    .await;

    assert_eq!(versions(&store, &name, 0, u64::MAX).await, upto(12));
    assert_eq!(
        versions(&store, &name, 1, 12).await,
        (1..=12).collect::<Vec<_>>()
    );
    assert_eq!(
        versions(&store, &name, 3, 5).await,
        vec![3, 4, 5],
        "inclusive bounds"
    );
    assert_eq!(versions(&store, &name, 7, 7).await, vec![7]);
    assert_eq!(
        versions(&store, &name, 9, u64::MAX).await,
        vec![9, 10, 11, 12]
    );
    assert_eq!(versions(&store, &name, 0, 2).await, vec![0, 1, 2]);
    assert_eq!(
        versions(&store, &name, 2, 10).await,
        (2..=10).collect::<Vec<_>>(),
        "numeric, not lexicographic, order (10 after 9)"
    );
    assert!(versions(&store, &name, 6, 5).await.is_empty(), "from > to");
    assert!(versions(&store, &name, 13, 100).await.is_empty());
    assert_eq!(versions(&store, &name, 0, 0).await, vec![0]);

    let kept = store.journal(&name, 10, 12).await.unwrap();
    assert_eq!(
        kept,
        vec![entry(10), entry(11), entry(12)],
        "time, op, author and origin kept exactly"
    );
}

pub async fn journal_is_per_record(store: Arc<dyn Store>) {
    // Names that are prefixes of one another must not see each other's entries.
    let base = unique("journal_per_record");
    let names = [
        base.clone(),
        format!("{base}a"),
        format!("{base}/x"),
        format!("{base} "),
        format!("{base}\u{1}"),
    ];
    for (i, name) in names.iter().enumerate() {
        let n = i as u64 + 1;
        commit_ok(&store, (1..=n).map(|v| put(name, v)).collect()).await;
    }
    for (i, name) in names.iter().enumerate() {
        let n = i as u64 + 1;
        assert_eq!(
            versions(&store, name, 0, u64::MAX).await,
            upto(n),
            "{name:?}"
        );
    }
    assert!(
        versions(&store, &base[..base.len() - 1], 0, u64::MAX)
            .await
            .is_empty()
    );
}

pub async fn delete_leaves_a_tombstone_and_the_journal(store: Arc<dyn Store>) {
    let name = unique("delete");
    let neighbour = format!("{name}-neighbour");
    commit_ok(&store, (1..=4).map(|v| put(&name, v)).collect()).await;
    commit_ok(&store, (1..=2).map(|v| put(&neighbour, v)).collect()).await;
    commit_ok(&store, vec![delete(&name, 5)]).await;
    let tombstone = get(&store, &name).await.expect("a tombstone is a row");
    assert_eq!(
        (
            tombstone.version,
            tombstone.deleted,
            tombstone.data.as_str(),
            tombstone.created
        ),
        (5, true, "null", 0)
    );
    assert_eq!(versions(&store, &name, 0, u64::MAX).await, upto(5));
    let last = store.journal(&name, 5, 5).await.unwrap();
    assert_eq!(last[0].op, r#"{"op":"delete"}"#);
    // Nothing else went with it.
    assert_eq!(get(&store, &neighbour).await.unwrap().version, 2);
    assert_eq!(versions(&store, &neighbour, 0, u64::MAX).await, upto(2));
}

pub async fn delete_conflicts(store: Arc<dyn Store>) {
    let name = unique("delete_conflicts");
    let missing = unique("delete_missing");
    commit_ok(&store, (1..=3).map(|v| put(&name, v)).collect()).await;
    let outcomes = commit(&store, vec![delete(&name, 3), delete(&missing, 1)]).await;
    assert_eq!(outcomes, vec![conflict(Some(3)), conflict(None)]);
    let r = get(&store, &name).await.unwrap();
    assert_eq!((r.version, r.deleted), (3, false));
    assert_eq!(versions(&store, &name, 0, u64::MAX).await, upto(3));
    assert_eq!(get(&store, &missing).await, None);
}

pub async fn recreate_after_delete(store: Arc<dyn Store>) {
    let name = unique("recreate");
    commit_ok(&store, (1..=3).map(|v| put(&name, v)).collect()).await;
    commit_ok(&store, vec![delete(&name, 4)]).await;
    // The tombstone is a row: a write from nothing conflicts with it.
    assert_eq!(
        commit(&store, vec![put(&name, 1)]).await,
        vec![conflict(Some(4))]
    );
    // A re-create continues the versions.
    commit_ok(&store, vec![recreate(&name, 4, 6)]).await;
    let r = get(&store, &name).await.unwrap();
    assert_eq!(
        (r.version, r.created, r.deleted, r.data.as_str()),
        (6, 5, false, r#"{"v":6}"#)
    );
    assert_eq!(versions(&store, &name, 0, u64::MAX).await, upto(6));

    // Delete and re-create inside one batch, then delete again: checked in order.
    let outcomes = commit(
        &store,
        vec![
            delete(&name, 7),
            recreate(&name, 7, 8),
            put(&name, 9),
            delete(&name, 10),
            delete(&name, 10),       // stale: the record is at 10
            recreate(&name, 10, 11), // after a conflict: refused too
        ],
    )
    .await;
    assert_eq!(
        outcomes,
        vec![
            WriteOutcome::Committed,
            WriteOutcome::Committed,
            WriteOutcome::Committed,
            WriteOutcome::Committed,
            conflict(Some(10)),
            conflict(Some(10)),
        ]
    );
    let r = get(&store, &name).await.unwrap();
    assert_eq!((r.version, r.deleted, r.data.as_str()), (10, true, "null"));
    assert_eq!(versions(&store, &name, 0, u64::MAX).await, upto(10));
    assert_eq!(store.history_start(&name).await.unwrap(), Some(0));
}

/// With the default [`History`] (a milestone every 100 versions, the
/// newest 1,000 entries kept), a record's whole life across deletes and re-creates stays
/// readable: its journal, its milestones (a tombstone's too), its history start, and
/// which version it had when.
pub async fn history_across_delete_and_recreate(store: Arc<dyn Store>) {
    let name = unique("history");
    let every = crate::History::DEFAULT_MILESTONE_EVERY;
    // 0..=149, deleted at 150, re-created at 151 and written to 199, deleted at 200
    // (across the milestone at 200: the tombstone's), re-created at 201 up to 260.
    let mut batch: Vec<Write> = (1..=149).map(|v| put(&name, v)).collect();
    batch.push(delete(&name, 150));
    for chunk in batch.chunks(40) {
        commit_ok(&store, chunk.to_vec()).await;
    }
    commit_ok(&store, vec![recreate(&name, 150, 170)]).await;
    commit_ok(&store, (171..=199).map(|v| put(&name, v)).collect()).await;
    commit_ok(&store, vec![delete(&name, 200)]).await;
    commit_ok(&store, vec![recreate(&name, 200, 260)]).await;

    let journal = store.journal(&name, 0, u64::MAX).await.unwrap();
    assert_eq!(
        journal.iter().map(|e| e.version).collect::<Vec<_>>(),
        upto(260)
    );
    for (v, e) in journal.iter().enumerate() {
        let v = v as u64;
        let kind = match v {
            0 | 151 | 201 => r#"{"op":"create","data":{}}"#.to_owned(),
            150 | 200 => r#"{"op":"delete"}"#.to_owned(),
            _ => entry(v).op,
        };
        assert_eq!(
            (e.time, e.op.as_str()),
            (T0 + v, kind.as_str()),
            "entry {v}"
        );
    }
    let milestone = |v| {
        let store = store.clone();
        let name = name.clone();
        async move { store.milestone(&name, v).await.unwrap() }
    };
    assert_eq!(milestone(every - 1).await, None);
    let at = |version: u64, data: &str| {
        Some(Milestone {
            version,
            data: data.to_owned(),
        })
    };
    assert_eq!(milestone(every).await, at(100, r#"{"v":100}"#));
    assert_eq!(milestone(199).await, at(100, r#"{"v":100}"#));
    // The delete at 200 crossed the multiple: the milestone is the tombstone's value.
    assert_eq!(milestone(200).await, at(200, "null"));
    // The re-create's write from 200 to 260 crossed no multiple.
    assert_eq!(milestone(u64::MAX).await, at(200, "null"));
    assert_eq!(store.history_start(&name).await.unwrap(), Some(0));
    for (time, version) in [
        (T0, Some(0)),
        (T0 + 150, Some(150)),
        (T0 + 151, Some(151)),
        (T0 + 1_000_000, Some(260)),
        (T0 - 1, None),
    ] {
        assert_eq!(
            store.version_at_time(&name, time).await.unwrap(),
            version,
            "at {time}"
        );
    }
}

/// Authors and origins (with text that is not ASCII) come back as written.
pub async fn author_and_origin_round_trip(store: Arc<dyn Store>) {
    let name = unique("author");
    let mut entries = entries(None, 2);
    entries[1].author = Some("ünïcödé 🦀 \"user\"".to_owned());
    entries[1].origin = Some(Origin {
        src: "клиент/1".to_owned(),
        seq: i64::MAX as u64,
    });
    entries[2].author = Some(String::new());
    entries[2].origin = Some(Origin {
        src: String::new(),
        seq: 0,
    });
    commit_ok(
        &store,
        vec![Write::Put {
            record: record(&name, 2, "{}"),
            base_version: None,
            entries: entries.clone(),
        }],
    )
    .await;
    assert_eq!(store.journal(&name, 0, 2).await.unwrap(), entries);
}

/// A JSON object of about `bytes` bytes, with varied content so compression or dedup in
/// a backend cannot hide a truncation.
fn big_json(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 64);
    s.push_str(r#"{"items":["#);
    let mut i = 0u64;
    while s.len() < bytes {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            r#"{{"i":{i},"s":"é{:x}"}}"#,
            i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ));
        i += 1;
    }
    s.push_str("]}");
    s
}

pub async fn large_values(store: Arc<dyn Store>) {
    let name = unique("large");
    let data = big_json(5 * 1024 * 1024);
    let op = big_json(1024 * 1024);
    let r = StoredRecord {
        name: name.clone(),
        version: 1,
        created: 0,
        deleted: false,
        data: data.clone(),
        ctime: T0,
        mtime: T0,
    };
    let e = JournalEntry { op, ..entry(1) };
    commit_ok(
        &store,
        vec![Write::Put {
            record: r.clone(),
            base_version: None,
            entries: vec![entry(0), e.clone()],
        }],
    )
    .await;
    assert!(
        get(&store, &name).await == Some(r),
        "5 MiB record round-trips"
    );
    assert!(store.journal(&name, 1, 1).await.unwrap() == vec![e]);

    // Replaced by a small value, and back to a large one: no stale tail survives.
    commit_ok(&store, vec![put(&name, 2)]).await;
    assert_eq!(get(&store, &name).await.unwrap().data, r#"{"v":2}"#);
    let mut r3 = record(&name, 3, &data);
    // Before the closing brace: still one JSON object (a backend may check the JSON).
    r3.data.insert_str(data.len() - 1, r#","tail":true"#);
    commit_ok(
        &store,
        vec![Write::Put {
            record: r3.clone(),
            base_version: Some(2),
            entries: entries(Some(2), 3),
        }],
    )
    .await;
    assert!(get(&store, &name).await == Some(r3));
}

/// The deepest JSON recordsync stores: record values nest at most 512 levels
/// (`recordsync_core::json::MAX_DEPTH`), a journal op three more. A backend that parses
/// JSON (PostgreSQL's `json` and `jsonb`) must take them and give back the same text.
pub async fn deeply_nested_values(store: Arc<dyn Store>) {
    let nested = |levels: usize| format!("{}1{}", "{\"a\":".repeat(levels), "}".repeat(levels));
    let name = unique("deep");
    let r = record(&name, 1, &nested(512));
    let e = JournalEntry {
        op: format!(r#"{{"op":"update","data":{}}}"#, nested(512 + 2)),
        ..entry(1)
    };
    commit_ok(
        &store,
        vec![Write::Put {
            record: r.clone(),
            base_version: None,
            entries: vec![entry(0), e.clone()],
        }],
    )
    .await;
    assert!(get(&store, &name).await == Some(r), "the value round-trips");
    assert!(store.journal(&name, 1, 1).await.unwrap() == vec![e]);
}

pub async fn many_records(store: Arc<dyn Store>) {
    let prefix = unique("many");
    let count = 2000u64;
    let name = |i: u64| format!("{prefix}/{i:05}");
    for chunk in (0..count).collect::<Vec<_>>().chunks(250) {
        commit_ok(&store, chunk.iter().map(|&i| put(&name(i), 1)).collect()).await;
    }
    // Every tenth gets a second version.
    commit_ok(
        &store,
        (0..count).step_by(10).map(|i| put(&name(i), 2)).collect(),
    )
    .await;
    for i in 0..count {
        let want = if i % 10 == 0 { 2 } else { 1 };
        let r = get(&store, &name(i)).await.expect("record exists");
        assert_eq!((r.name.as_str(), r.version), (name(i).as_str(), want));
    }
    assert_eq!(get(&store, &name(count)).await, None);
}

pub async fn unusual_names_and_text(store: Arc<dyn Store>) {
    let base = unique("names");
    let names = [
        format!("{base}/ünïcödé/日本語/🦀"),
        format!("{base}/with space and \"quotes\" and \\backslash"),
        format!("{base}/{}", "x".repeat(1000)),
        format!("{base}/$*?[]{{}}%_'"),
    ];
    let data = r#"{"s":"line\nbreak \"quoted\" \\ tab\t é 🦀 \u00e9","n":-1.5e300,"e":[],"o":{}}"#;
    for name in &names {
        let r = record(name, 1, data);
        commit_ok(
            &store,
            vec![Write::Put {
                record: r.clone(),
                base_version: None,
                entries: vec![
                    entry(0),
                    JournalEntry {
                        version: 1,
                        time: T0,
                        op: data.to_owned(),
                        author: Some(name.clone()),
                        origin: None,
                    },
                ],
            }],
        )
        .await;
        assert_eq!(get(&store, name).await, Some(r), "{name:?}");
        assert_eq!(store.journal(name, 1, 1).await.unwrap()[0].op, data);
    }
}

/// A store whose commits wait for permits: lets a test hold a commit open.
struct Gated {
    inner: Arc<dyn Store>,
    open: tokio::sync::Semaphore,
    held: AtomicU64,
}

#[async_trait::async_trait]
impl Store for Gated {
    fn data_set(&self) -> Option<&str> {
        self.inner.data_set()
    }

    async fn get(&self, name: &str) -> Result<Option<StoredRecord>, crate::StoreError> {
        self.inner.get(name).await
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, crate::StoreError> {
        self.inner.list(prefix, after, limit).await
    }

    async fn commit(&self, batch: &[Write]) -> Result<Vec<WriteOutcome>, crate::StoreError> {
        self.held.fetch_add(1, Ordering::SeqCst);
        drop(self.open.acquire().await.expect("the gate is never closed"));
        self.inner.commit(batch).await
    }

    async fn journal(
        &self,
        name: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<JournalEntry>, crate::StoreError> {
        self.inner.journal(name, from, to).await
    }

    async fn milestone(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Option<Milestone>, crate::StoreError> {
        self.inner.milestone(name, version).await
    }

    async fn history_start(&self, name: &str) -> Result<Option<u64>, crate::StoreError> {
        self.inner.history_start(name).await
    }

    async fn version_at_time(
        &self,
        name: &str,
        time: u64,
    ) -> Result<Option<u64>, crate::StoreError> {
        self.inner.version_at_time(name, time).await
    }
}

/// Submits through `committer` and waits for the outcome.
async fn submit(committer: &GroupCommitter, write: Write) -> WriteOutcome {
    let (tx, rx) = tokio::sync::oneshot::channel();
    committer.submit(
        write,
        Box::new(move |result| {
            let _ = tx.send(result);
        }),
    );
    rx.await
        .expect("the committer dropped a callback")
        .expect("commit failed")
}

pub async fn group_commit_concurrent_writers(store: Arc<dyn Store>) {
    let prefix = unique("concurrent");
    let (tasks, writes) = (50u64, 20u64);
    let committer = Arc::new(GroupCommitter::new(store.clone()));
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let committer = committer.clone();
            let name = format!("{prefix}/{t}");
            tokio::spawn(async move {
                for v in 1..=writes {
                    let outcome = submit(&committer, put(&name, v)).await;
                    assert_eq!(outcome, WriteOutcome::Committed, "{name} v{v}");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("writer task failed");
    }
    committer.flush().await;
    for t in 0..tasks {
        let name = format!("{prefix}/{t}");
        assert_eq!(get(&store, &name).await.unwrap().version, writes);
        assert_eq!(versions(&store, &name, 0, u64::MAX).await, upto(writes));
    }
    let stats = committer.stats();
    assert_eq!(stats.writes, tasks * writes);
    assert_eq!(stats.failed_batches, 0);
    committer.shutdown().await;

    // Sharing commits, checked deterministically: while the first commit is held open,
    // everything submitted meanwhile must go into one next batch (whether writers
    // happen to overlap above depends on scheduling, and on how fast this store is).
    let gate = Arc::new(Gated {
        inner: store.clone(),
        open: tokio::sync::Semaphore::new(0),
        held: AtomicU64::new(0),
    });
    let committer = GroupCommitter::new(gate.clone());
    let mut outcomes = Vec::new();
    let name = format!("{prefix}/gated");
    for v in 1..=writes {
        let (tx, rx) = tokio::sync::oneshot::channel();
        committer.submit(put(&name, v), Box::new(move |r| drop(tx.send(r))));
        outcomes.push(rx);
        if v == 1 {
            // Wait until the committer is inside the first commit.
            while gate.held.load(Ordering::SeqCst) == 0 {
                tokio::task::yield_now().await;
            }
        }
    }
    gate.open.add_permits(usize::MAX >> 4);
    for rx in outcomes {
        assert_eq!(rx.await.unwrap().unwrap(), WriteOutcome::Committed);
    }
    let stats = committer.stats();
    assert_eq!(
        (stats.writes, stats.batches),
        (writes, 2),
        "the queued writes shared one commit: {stats:?}"
    );
    committer.shutdown().await;
}

pub async fn group_commit_callbacks_in_submission_order(store: Arc<dyn Store>) {
    let prefix = unique("order");
    let committer = GroupCommitter::with_max_batch(store.clone(), 16);
    let seen: Arc<Mutex<Vec<(usize, WriteOutcome)>>> = Arc::default();
    let chained = format!("{prefix}/chained");
    let mut expected = Vec::new();
    // Submitted without waiting: the chain on one record succeeds only because batches
    // are committed in submission order, across batch boundaries (max 16 per batch).
    for i in 0..200usize {
        let write = if i % 2 == 0 {
            put(&chained, i as u64 / 2 + 1)
        } else {
            put(&format!("{prefix}/{i}"), 1)
        };
        let seen = seen.clone();
        committer.submit(
            write,
            Box::new(move |r| seen.lock().push((i, r.expect("commit failed")))),
        );
        expected.push((i, WriteOutcome::Committed));
        if i % 37 == 0 {
            // Let some batches go out while others are still being submitted.
            tokio::task::yield_now().await;
        }
    }
    committer.flush().await;
    assert_eq!(*seen.lock(), expected);
    assert_eq!(get(&store, &chained).await.unwrap().version, 100);
    assert!(committer.stats().batches >= 200 / 16);
    committer.shutdown().await;
}

/// What the engine must expect when it pipelines writes to one record: once one write
/// conflicts, every later write built on it conflicts too, whether it shares the batch
/// (the store's rule) or not (the committer's fence), and nothing of them is stored. A
/// write submitted after the conflict was reported goes through.
pub async fn group_commit_chain_after_conflict(store: Arc<dyn Store>) {
    for max_batch in [1, 1024] {
        let name = unique("chain_conflict");
        let other = format!("{name}-other");
        // Another node wrote version 2; this submitter believes the record is at 1.
        commit_ok(&store, vec![put(&name, 1), put(&name, 2)]).await;
        let committer = GroupCommitter::with_max_batch(store.clone(), max_batch);
        let seen: Arc<Mutex<Vec<WriteOutcome>>> = Arc::default();
        let stale = [put(&name, 2), put(&other, 1), put(&name, 3), put(&name, 4)];
        // Held while submitting, as the engine holds a record's lock, and taken by every
        // callback: all four are submitted before the first conflict is reported, so
        // all are stale.
        let engine_lock: Arc<Mutex<()>> = Arc::default();
        {
            let _held = engine_lock.lock();
            for write in stale {
                let seen = seen.clone();
                let engine_lock = engine_lock.clone();
                committer.submit(
                    write,
                    Box::new(move |r| {
                        let _held = engine_lock.lock();
                        seen.lock().push(r.expect("commit failed"));
                    }),
                );
            }
        }
        committer.flush().await;
        assert_eq!(
            *seen.lock(),
            vec![
                conflict(Some(2)),
                WriteOutcome::Committed,
                conflict(Some(2)),
                conflict(Some(2)),
            ],
            "max batch {max_batch}"
        );
        let r = get(&store, &name).await.unwrap();
        assert_eq!((r.version, r.data.as_str()), (2, r#"{"v":2}"#));
        assert_eq!(versions(&store, &name, 0, u64::MAX).await, upto(2));

        // After reloading, the submitter writes on top of what is really there.
        let outcome = submit(&committer, put_on(&name, 3, Some(r.version))).await;
        assert_eq!(outcome, WriteOutcome::Committed, "max batch {max_batch}");
        assert_eq!(get(&store, &name).await.unwrap().version, 3);
        committer.shutdown().await;
    }
}

/// The history [`retention_by_count`] and [`retention_across_delete_and_recreate`] need:
/// a milestone every 10 versions, the newest 25 entries.
pub const BY_COUNT: History = History {
    milestone_every: 10,
    keep_ops: Some(25),
    keep_age: None,
};

/// The history [`retention_by_age`] needs: a milestone every 10 versions, entries older
/// than an hour go, whatever their number.
pub const BY_AGE: History = History {
    milestone_every: 10,
    keep_ops: None,
    keep_age: Some(std::time::Duration::from_secs(3600)),
};

/// Checks what retention keeps of `name`, at `version` with data `{"v":version}` (or a
/// tombstone): the history starts at a milestone holding the value of that version, every
/// version from there is readable (the milestone, then every entry after it), nothing
/// older is, and what is kept stays within [`History::max_kept`] when every
/// write had one entry (milestones are stored at the end of a write, so writes of up to
/// `n` entries put them up to `milestone_every + n - 1` apart, and the bound grows by
/// `n - 1`).
async fn check_retention(
    store: &Arc<dyn Store>,
    name: &str,
    version: u64,
    history: History,
    largest_write: u64,
) {
    let every = history.milestone_every;
    let keep = history.keep_ops.unwrap_or(0);
    let start = store.history_start(name).await.unwrap().unwrap();
    assert_eq!(
        start % every,
        0,
        "{name}: the history starts at a milestone"
    );
    assert!(
        version - start >= keep
            && version - start < history.max_kept().unwrap_or(u64::MAX) + largest_write - 1,
        "{name}: start {start} at version {version}"
    );
    let journal = store.journal(name, 0, u64::MAX).await.unwrap();
    assert_eq!(
        journal.iter().map(|e| e.version).collect::<Vec<_>>(),
        (start + 1..=version).collect::<Vec<_>>(),
        "{name}: the entries after the start, no more"
    );
    let m = store.milestone(name, start).await.unwrap().unwrap();
    assert_eq!(m.version, start);
    assert_eq!(store.milestone(name, start - 1).await.unwrap(), None);
    // Every kept version's milestone is less than `every + largest_write - 1` below it.
    for v in start..=version {
        let m = store.milestone(name, v).await.unwrap().unwrap();
        assert!(
            m.version <= v && v - m.version < every + largest_write - 1,
            "{name}: version {v}"
        );
    }
}

/// However often a record is written, in batches of any size, it keeps its newest
/// entries from a milestone on: the store follows its retention setting, not the number
/// of writes. Other records keep their own history.
pub async fn retention_by_count(store: Arc<dyn Store>) {
    let name = unique("retention");
    let quiet = format!("{name}-quiet");
    commit_ok(&store, (1..=5).map(|v| put(&quiet, v)).collect()).await;
    let mut v = 1;
    // Batches of 1, 2, 3, ... writes, and one write of many entries.
    let mut size = 1;
    while v < 300 {
        let last = (v + size).min(300);
        commit_ok(&store, (v..last).map(|v| put(&name, v)).collect()).await;
        v = last;
        size = size % 7 + 1;
    }
    commit_ok(&store, vec![put_on(&name, 340, Some(299))]).await;
    check_retention(&store, &name, 340, BY_COUNT, 41).await;
    // Writes of fewer entries than `milestone_every` bring it back within the usual bound.
    for v in 341..=400 {
        commit_ok(&store, vec![put(&name, v)]).await;
    }
    check_retention(&store, &name, 400, BY_COUNT, 1).await;
    let m = store.milestone(&name, 400).await.unwrap().unwrap();
    assert_eq!(
        m,
        Milestone {
            version: 400,
            data: r#"{"v":400}"#.into()
        }
    );
    assert_eq!(get(&store, &name).await.unwrap().data, r#"{"v":400}"#);
    assert_eq!(versions(&store, &quiet, 0, u64::MAX).await, upto(5));
    assert_eq!(store.history_start(&quiet).await.unwrap(), Some(0));
}

/// Retention goes on across deletes and re-creates: the tombstone's history is pruned
/// like any other, and the versions never go back.
pub async fn retention_across_delete_and_recreate(store: Arc<dyn Store>) {
    let name = unique("retention_delete");
    commit_ok(&store, (1..=60).map(|v| put(&name, v)).collect()).await;
    commit_ok(&store, vec![delete(&name, 61)]).await;
    check_retention(&store, &name, 61, BY_COUNT, 60).await;
    commit_ok(&store, vec![recreate(&name, 61, 65)]).await;
    for v in 66..=130 {
        commit_ok(&store, vec![put(&name, v)]).await;
    }
    commit_ok(&store, vec![delete(&name, 131)]).await;
    check_retention(&store, &name, 131, BY_COUNT, 1).await;
    let r = get(&store, &name).await.unwrap();
    assert!(r.deleted && r.version == 131);
    for (time, version) in [(T0 + 131, Some(131)), (T0 + 1, None)] {
        assert_eq!(store.version_at_time(&name, time).await.unwrap(), version);
    }
}

/// "Keep everything" keeps every entry, and milestones still bound reading.
pub async fn keep_everything_keeps_every_entry(store: Arc<dyn Store>) {
    let name = unique("keep_everything");
    for chunk in (1..=1250).collect::<Vec<u64>>().chunks(100) {
        commit_ok(&store, chunk.iter().map(|&v| put(&name, v)).collect()).await;
    }
    assert_eq!(versions(&store, &name, 0, u64::MAX).await, upto(1250));
    assert_eq!(store.history_start(&name).await.unwrap(), Some(0));
    let every = History::DEFAULT_MILESTONE_EVERY;
    assert_eq!(store.milestone(&name, every - 1).await.unwrap(), None);
    for v in [every, 555, 1250] {
        let m = store.milestone(&name, v).await.unwrap().unwrap();
        assert_eq!(m.version, v / every * every);
        assert_eq!(m.data, format!(r#"{{"v":{}}}"#, m.version));
    }
}

/// Entries older than `keep_age` go, from the newest milestone whose entry is that old;
/// however many there are, the newer ones stay.
pub async fn retention_by_age(store: Arc<dyn Store>) {
    let name = unique("retention_age");
    let now = crate::now_ms();
    let old = now - 2 * 3600 * 1000;
    let at = |v: u64, time: u64| {
        let Write::Put {
            record,
            base_version,
            mut entries,
        } = put(&name, v);
        for e in &mut entries {
            e.time = time + e.version;
        }
        Write::Put {
            record,
            base_version,
            entries,
        }
    };
    for v in 1..=55 {
        commit_ok(&store, vec![at(v, old)]).await;
    }
    assert_eq!(store.history_start(&name).await.unwrap(), Some(50));
    for v in 56..=200 {
        commit_ok(&store, vec![at(v, now)]).await;
    }
    // Entries 51..=55 are old too, but the next milestone (60) is new: the start stays.
    assert_eq!(store.history_start(&name).await.unwrap(), Some(50));
    assert_eq!(
        versions(&store, &name, 0, u64::MAX).await,
        (51..=200).collect::<Vec<_>>()
    );
    assert_eq!(store.milestone(&name, 49).await.unwrap(), None);
    assert_eq!(
        store.milestone(&name, 50).await.unwrap().unwrap().version,
        50
    );
    assert_eq!(
        store.version_at_time(&name, old + 53).await.unwrap(),
        Some(53)
    );
    assert_eq!(store.version_at_time(&name, old).await.unwrap(), None);
}
