//! Engine tests that need no socket: ordering, journaling, refusals and storage failures.
#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::oneshot;

use recordsync_core::{JournalOp, Version, WriteOp};
use recordsync_store::{
    JournalEntry, MemoryStore, Milestone, Store, StoreError, StoredRecord, Write, WriteOutcome,
};

use recordsync_engine::{
    Base, Engine, EngineVersion, EventKind, RecordEvent, Subscriber, WriteDone, WriteFailure,
    WriteRequest,
};
use support::{engine_on, submit};

/// Records every event it is sent.
struct Recorder {
    id: u64,
    events: Mutex<Vec<(Option<u64>, String)>>,
}

impl Recorder {
    fn new(id: u64) -> Arc<Recorder> {
        Arc::new(Recorder {
            id,
            events: Mutex::new(Vec::new()),
        })
    }

    fn versions(&self) -> Vec<u64> {
        self.events.lock().iter().filter_map(|(v, _)| *v).collect()
    }
}

impl Subscriber for Recorder {
    fn id(&self) -> u64 {
        self.id
    }

    fn deliver(&self, event: &Arc<RecordEvent>) {
        let entry = match &event.kind {
            EventKind::Changed { version, op, .. } => (Some(version.in_life()), format!("{op:?}")),
            EventKind::Deleted { .. } => (None, "deleted".into()),
            EventKind::Provider(p) => (None, format!("provider {p}")),
        };
        self.events.lock().push(entry);
    }
}

async fn write(
    engine: &Engine,
    writer: u64,
    name: &str,
    op: WriteOp,
    version: i64,
) -> Result<Version, WriteFailure> {
    let request = WriteRequest::new(writer, op, Base::Produces(version));
    Ok(submit(engine, name, request).await?.in_life())
}

fn update(v: serde_json::Value) -> WriteOp {
    WriteOp::Update { data: v }
}

#[tokio::test]
async fn a_subscriber_joining_mid_stream_sees_each_later_version_once_in_order() {
    let engine = engine_on(Arc::new(MemoryStore::new()));
    let writer = Recorder::new(1);
    engine
        .subscribe(writer.clone(), "r", true, |_, _| {})
        .await
        .unwrap();
    // Pipeline 200 writes without waiting; join halfway through.
    let mut answers = Vec::new();
    let late = Recorder::new(2);
    let mut start = None;
    for v in 1..=200i64 {
        let (tx, rx) = oneshot::channel();
        let request = WriteRequest::new(1, update(json!({ "n": v })), Base::Produces(v));
        engine
            .write("r", request, WriteDone::new(move |r| drop(tx.send(r))))
            .await;
        answers.push(rx);
        if v == 100 {
            engine
                .subscribe(late.clone(), "r", true, |snapshot, _| {
                    start = snapshot.map(|s| s.version.in_life())
                })
                .await
                .unwrap();
        }
    }
    for (i, rx) in answers.into_iter().enumerate() {
        assert_eq!(rx.await.unwrap().unwrap().in_life(), i as u64 + 1);
    }
    let start = start.expect("the record exists");
    let expected: Vec<u64> = (start + 1..=200).collect();
    assert_eq!(late.versions(), expected, "started from version {start}");
    assert!(
        writer.versions().is_empty(),
        "a writer gets no echo of its own writes"
    );
}

#[tokio::test]
async fn every_accepted_write_is_journaled() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine_on(store.clone());
    write(&engine, 1, "j", update(json!({"a": 1})), -1)
        .await
        .unwrap();
    write(
        &engine,
        1,
        "j",
        WriteOp::Patch {
            path: "b.c".into(),
            data: json!(2),
        },
        2,
    )
    .await
    .unwrap();
    write(&engine, 1, "j", WriteOp::Erase { path: "a".into() }, 3)
        .await
        .unwrap();
    assert!(write(&engine, 1, "j", update(json!({})), 2).await.is_err());
    let journal = store.journal("j", 0, 100).await.unwrap();
    let ops: Vec<JournalOp> = journal
        .iter()
        .map(|e| JournalOp::from_journal(&e.op).unwrap())
        .collect();
    assert_eq!(
        journal.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![0, 1, 2, 3],
        "the create, then one entry per write"
    );
    assert_eq!(ops[0], JournalOp::Create { data: json!({}) });
    assert_eq!(
        ops[2],
        JournalOp::Write(WriteOp::Patch {
            path: "b.c".into(),
            data: json!(2)
        })
    );
    // Replaying the journal gives the stored value.
    let mut value = None;
    for op in &ops {
        op.apply(&mut value).unwrap();
    }
    let stored = store.get("j").await.unwrap().unwrap();
    assert_eq!(
        Some(serde_json::from_str::<serde_json::Value>(&stored.data).unwrap()),
        value
    );
}

#[tokio::test]
async fn version_exists_carries_the_state_the_writer_will_have_seen() {
    let engine = engine_on(Arc::new(MemoryStore::new()));
    write(&engine, 1, "c", update(json!({"x": 1})), 1)
        .await
        .unwrap();
    match write(&engine, 2, "c", update(json!({"x": 2})), 1).await {
        Err(WriteFailure::VersionExists { version, data }) => {
            assert_eq!(version.in_life(), 1);
            assert_eq!(&*data, r#"{"x":1}"#);
        }
        other => panic!("expected VERSION_EXISTS, got {other:?}"),
    }
    assert!(matches!(
        write(&engine, 2, "c", update(json!({})), 9).await,
        Err(WriteFailure::InvalidVersion {
            requested: 9,
            current: EngineVersion {
                version: 1,
                created: 0
            }
        })
    ));
}

#[tokio::test]
async fn idle_records_leave_memory_and_come_back_from_the_store() {
    let engine = engine_on(Arc::new(MemoryStore::new()));
    let sub = Recorder::new(7);
    engine
        .subscribe(sub.clone(), "idle", true, |_, _| {})
        .await
        .unwrap();
    write(&engine, 1, "idle", update(json!({"k": true})), 1)
        .await
        .unwrap();
    engine.unsubscribe(7, "idle").await.unwrap();
    engine.flush().await;
    assert_eq!(
        engine.cached_records(),
        0,
        "nothing holds the record, so it is not cached"
    );
    let snapshot = engine.read("idle").await.unwrap().unwrap();
    assert_eq!(
        (snapshot.version.in_life(), &*snapshot.data),
        (1, r#"{"k":true}"#)
    );
}

/// A store whose commits can be made to fail, over a memory store.
struct Flaky {
    inner: MemoryStore,
    failing: AtomicBool,
}

#[async_trait]
impl Store for Flaky {
    async fn get(&self, name: &str) -> Result<Option<StoredRecord>, StoreError> {
        self.inner.get(name).await
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        self.inner.list(prefix, after, limit).await
    }

    async fn commit(&self, batch: &[Write]) -> Result<Vec<WriteOutcome>, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Io("disk on fire".into()));
        }
        self.inner.commit(batch).await
    }

    async fn journal(
        &self,
        name: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        self.inner.journal(name, from, to).await
    }

    async fn milestone(&self, name: &str, version: u64) -> Result<Option<Milestone>, StoreError> {
        self.inner.milestone(name, version).await
    }

    async fn history_start(&self, name: &str) -> Result<Option<u64>, StoreError> {
        self.inner.history_start(name).await
    }

    async fn version_at_time(&self, name: &str, time: u64) -> Result<Option<u64>, StoreError> {
        self.inner.version_at_time(name, time).await
    }
}

#[tokio::test]
async fn a_failed_commit_is_reported_and_nothing_acknowledged_is_lost() {
    let store = Arc::new(Flaky {
        inner: MemoryStore::new(),
        failing: AtomicBool::new(false),
    });
    let engine = engine_on(store.clone());
    let watcher = Recorder::new(9);
    engine
        .subscribe(watcher.clone(), "f", true, |_, _| {})
        .await
        .unwrap();
    write(&engine, 1, "f", update(json!({"good": 1})), 1)
        .await
        .unwrap();

    store.failing.store(true, Ordering::SeqCst);
    let failed = write(&engine, 1, "f", update(json!({"lost": true})), 2).await;
    // The store's own error is kept, and the message a client is sent names it.
    let Err(failure @ WriteFailure::NotStored(source)) = &failed else {
        panic!("{failed:?}");
    };
    assert_eq!(source, &StoreError::Io("disk on fire".into()));
    assert_eq!(
        failure.to_string(),
        "the write could not be stored: storage I/O failed: disk on fire"
    );
    let source = std::error::Error::source(failure).expect("the store's error is the source");
    assert!(source.downcast_ref::<StoreError>().is_some());
    assert_eq!(
        watcher.versions(),
        vec![1],
        "subscribers never see a write that was not stored"
    );

    assert!(
        !engine.healthy().await,
        "still failing: the probe commit fails too"
    );
    store.failing.store(false, Ordering::SeqCst);
    assert!(
        engine.healthy().await,
        "an idle node recovers: the probe commit succeeds"
    );
    // The engine reloads the truth: version 1 is current, so version 2 is free again.
    let head = engine.head("f").await.unwrap().map(EngineVersion::in_life);
    assert_eq!(head, Some(1));
    write(&engine, 1, "f", update(json!({"good": 2})), 2)
        .await
        .unwrap();
    let stored = store.get("f").await.unwrap().unwrap();
    assert_eq!((stored.version, stored.data.as_str()), (2, r#"{"good":2}"#));
    assert_eq!(watcher.versions(), vec![1, 2]);
    assert!(engine.healthy().await, "healthy again once the store works");
}

/// Hosts list records through the engine: acknowledged writes are listed with their
/// versions, in name order, a deleted record is not, and paging by name goes on.
#[tokio::test]
async fn list_pages_through_acknowledged_records() {
    let engine = engine_on(Arc::new(MemoryStore::new()));
    for name in ["l/b", "l/a", "l/c", "other"] {
        write(&engine, 1, name, update(json!({"n": name})), 1)
            .await
            .unwrap();
    }
    write(&engine, 1, "l/a", update(json!({"n": 2})), 2)
        .await
        .unwrap();
    let (tx, rx) = oneshot::channel();
    engine
        .delete(1, None, "l/c", WriteDone::new(move |r| drop(tx.send(r))))
        .await;
    rx.await.unwrap().unwrap();
    let page = engine.list("l/", None, 10).await.unwrap();
    let listed: Vec<(&str, u64)> = page.iter().map(|r| (r.name.as_str(), r.version)).collect();
    assert_eq!(listed, vec![("l/a", 2), ("l/b", 1)]);
    let next = engine.list("l/", Some("l/a"), 1).await.unwrap();
    assert_eq!(next[0].name, "l/b");
    assert!(engine.list("l/", Some("l/b"), 1).await.unwrap().is_empty());
}

#[tokio::test]
async fn reads_wait_for_writes_accepted_before_them() {
    let engine = engine_on(Arc::new(MemoryStore::new()));
    for v in 1..=50i64 {
        let request = WriteRequest::new(1, update(json!({ "v": v })), Base::Produces(v));
        engine.write("ryw", request, WriteDone::new(|_| {})).await;
    }
    // No acknowledgement awaited: the read still sees every write accepted before it.
    let head = engine
        .head("ryw")
        .await
        .unwrap()
        .map(EngineVersion::in_life);
    assert_eq!(head, Some(50));
    engine.delete(1, None, "ryw", WriteDone::new(|_| {})).await;
    assert_eq!(engine.head("ryw").await.unwrap(), None);
}

#[tokio::test]
async fn delete_tells_subscribers_and_a_later_subscriber_recreates() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine_on(store.clone());
    let a = Recorder::new(1);
    let b = Recorder::new(2);
    engine
        .subscribe(a.clone(), "d", true, |_, _| {})
        .await
        .unwrap();
    engine
        .subscribe(b.clone(), "d", true, |_, _| {})
        .await
        .unwrap();
    write(&engine, 1, "d", update(json!({"x": 1})), 1)
        .await
        .unwrap();
    let (tx, rx) = oneshot::channel();
    engine
        .delete(1, None, "d", WriteDone::new(move |r| drop(tx.send(r))))
        .await;
    rx.await.unwrap().unwrap();
    assert_eq!(
        b.events.lock().last().map(|e| e.1.clone()).as_deref(),
        Some("deleted")
    );
    assert!(
        !a.events.lock().iter().any(|e| e.1 == "deleted"),
        "the deleter is answered, not told"
    );
    assert_eq!(engine.head("d").await.unwrap(), None);
    let tombstone = store.get("d").await.unwrap().unwrap();
    assert!(tombstone.deleted, "the store keeps the version going");
    assert_eq!(tombstone.version, 2);
    let mut version = None;
    engine
        .subscribe(b.clone(), "d", true, |s, _| version = s.map(|s| s.version))
        .await
        .unwrap();
    assert_eq!(
        version,
        Some(EngineVersion {
            version: 3,
            created: 3
        }),
        "re-created as deepstream's version 0, continuing the engine's versions"
    );
}

/// `delete_at` deletes the record at the version named, and refuses (deleting nothing) a
/// record at another version, or one that does not exist.
#[tokio::test]
async fn a_conditional_delete_applies_only_at_its_version() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine_on(store.clone());
    async fn delete_at(engine: &Engine, name: &str, version: u64) -> Result<(), WriteFailure> {
        let (tx, rx) = oneshot::channel();
        engine
            .delete_at(
                9,
                None,
                name,
                version,
                WriteDone::new(move |r| drop(tx.send(r))),
            )
            .await;
        rx.await.unwrap().map(drop)
    }
    match delete_at(&engine, "c", 0).await {
        Err(WriteFailure::Missing { next_create: 0 }) => {}
        other => panic!("a missing record is not deleted: {other:?}"),
    }
    // created at 0, written at 1
    write(&engine, 1, "c", update(json!({"x": 1})), -1)
        .await
        .unwrap();
    match delete_at(&engine, "c", 0).await {
        Err(WriteFailure::VersionExists { version, data }) => {
            assert_eq!(version.version, 1);
            assert_eq!(&*data, r#"{"x":1}"#);
        }
        other => panic!("a stale delete is refused: {other:?}"),
    }
    assert_eq!(engine.head("c").await.unwrap().map(|v| v.version), Some(1));
    delete_at(&engine, "c", 1).await.unwrap();
    assert_eq!(engine.head("c").await.unwrap(), None);
    assert!(store.get("c").await.unwrap().unwrap().deleted);
}
