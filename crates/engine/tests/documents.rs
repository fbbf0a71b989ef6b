//! What a ShareDB-style front door needs of the engine: records created with data in one
//! version, refusals that say where the record's next life begins, subscriptions that
//! follow a record through deletes, and one event per journal entry (creates included,
//! deletes with their version), so that such a door can show every version.
#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

mod support;

use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use recordsync_core::{JournalOp, WriteOp, json0};
use recordsync_engine::{
    Base, CreateRequest, Engine, EngineVersion, EventKind, OnStale, RecordEvent, RecordState,
    Subscriber, WriteDone, WriteFailure, WriteRequest,
};
use recordsync_store::{MemoryStore, Origin};
use support::{engine_on, submit};

/// One event as a [`Follower`] saw it: the engine version, the op's kind, and the
/// value after a create (or `before X`: what a write applied to).
type Seen = (Option<u64>, String, Option<String>);

/// A subscriber that records what it is told.
struct Follower {
    id: u64,
    survives: bool,
    seen: Mutex<Vec<Seen>>,
    /// The `seq` of each event's client op, where it named one.
    origins: Mutex<Vec<Option<u64>>>,
}

impl Subscriber for Follower {
    fn id(&self) -> u64 {
        self.id
    }

    fn deliver(&self, event: &Arc<RecordEvent>) {
        let seen = match &event.kind {
            EventKind::Changed {
                version,
                op,
                value,
                before,
            } => (
                Some(version.version),
                op.as_ref().map_or("jump", |op| op.kind()).to_owned(),
                Some(
                    before
                        .as_deref()
                        .map_or_else(|| value.to_string(), |b| format!("before {b}")),
                ),
            ),
            EventKind::Deleted { tomb } => (*tomb, "deleted".to_owned(), None),
            EventKind::Provider(_) => return,
        };
        self.seen.lock().push(seen);
        self.origins
            .lock()
            .push(event.origin.as_ref().map(|o| o.seq));
    }

    fn survives_delete(&self) -> bool {
        self.survives
    }
}

fn follower(id: u64, survives: bool) -> Arc<Follower> {
    Arc::new(Follower {
        id,
        survives,
        seen: Mutex::default(),
        origins: Mutex::default(),
    })
}

async fn create(
    engine: &Engine,
    name: &str,
    data: Value,
    at: Option<u64>,
    seq: u64,
) -> Result<EngineVersion, WriteFailure> {
    let (tx, rx) = oneshot::channel();
    let request = CreateRequest {
        writer: 99,
        data,
        at,
        author: None,
        origin: Some(Origin {
            src: "s".into(),
            seq,
        }),
    };
    engine
        .create(name, request, WriteDone::new(move |r| drop(tx.send(r))))
        .await;
    rx.await.unwrap()
}

async fn delete(engine: &Engine, name: &str) -> EngineVersion {
    let (tx, rx) = oneshot::channel();
    engine
        .delete(99, None, name, WriteDone::new(move |r| drop(tx.send(r))))
        .await;
    rx.await.unwrap().unwrap()
}

fn json0_write(op: Value, base: Base) -> WriteRequest {
    WriteRequest {
        writer: 99,
        op: JournalOp::Json0 {
            ops: json0::op_from_json(&op).unwrap(),
        },
        base,
        on_stale: OnStale::Transform,
        author: None,
        origin: None,
    }
}

fn json0_write_from(op: Value, base: Base, seq: u64) -> WriteRequest {
    WriteRequest {
        origin: Some(Origin {
            src: "other".into(),
            seq,
        }),
        ..json0_write(op, base)
    }
}

#[tokio::test]
async fn a_record_is_created_with_data_and_followed_through_its_deletes() {
    let engine = engine_on(Arc::new(MemoryStore::new()));
    let stays = follower(1, true);
    let leaves = follower(2, false);
    for s in [stays.clone(), leaves.clone()] {
        let mut initial = None;
        engine
            .subscribe_state(s, "c/d", |state| initial = Some(state))
            .await
            .unwrap();
        assert_eq!(initial, Some(RecordState::Missing { next_create: 0 }));
    }
    // A json0 write to a missing record is refused: it is created by a create.
    let missing = submit(
        &engine,
        "c/d",
        json0_write(json!([{"p": ["a"], "oi": 1}]), Base::Next),
    )
    .await;
    assert!(
        matches!(missing, Err(WriteFailure::Missing { next_create: 0 })),
        "{missing:?}"
    );
    // Only at the version its next life begins.
    let early = create(&engine, "c/d", json!({"a": 1}), Some(3), 1).await;
    assert!(
        matches!(early, Err(WriteFailure::Missing { next_create: 0 })),
        "{early:?}"
    );
    let created = create(&engine, "c/d", json!({"a": 1}), Some(0), 1)
        .await
        .unwrap();
    assert_eq!(created, EngineVersion::new(0, 0));
    let again = create(&engine, "c/d", json!({}), None, 2).await;
    assert!(
        matches!(again, Err(WriteFailure::Exists { version }) if version.version == 0),
        "{again:?}"
    );
    // The journal holds the create with its data and origin.
    let entries = engine.journal("c/d", 0, 0).await.unwrap();
    assert_eq!(
        JournalOp::from_journal(&entries[0].op).unwrap(),
        JournalOp::Create {
            data: json!({"a": 1})
        }
    );
    assert_eq!(entries[0].origin.as_ref().map(|o| o.seq), Some(1));

    let patch = WriteRequest::new(
        99,
        WriteOp::Patch {
            path: "a".into(),
            data: json!(2),
        },
        Base::Produces(-1),
    );
    submit(&engine, "c/d", patch).await.unwrap();
    assert_eq!(delete(&engine, "c/d").await.version, 1);
    assert_eq!(
        engine.read_state("c/d").await.unwrap(),
        RecordState::Missing { next_create: 3 }
    );
    create(&engine, "c/d", json!([]), Some(3), 3).await.unwrap();
    let expected_until_delete = vec![
        (Some(0), "create".to_owned(), Some(r#"{"a":1}"#.to_owned())),
        (
            Some(1),
            "patch".to_owned(),
            Some(r#"before {"a":1}"#.to_owned()),
        ),
        (Some(2), "deleted".to_owned(), None),
    ];
    let mut all = expected_until_delete.clone();
    all.push((Some(3), "create".to_owned(), Some("[]".to_owned())));
    assert_eq!(
        *stays.seen.lock(),
        all,
        "the subscription follows the next life"
    );
    assert_eq!(
        *leaves.seen.lock(),
        expected_until_delete,
        "deepstream's ends with the record"
    );
}

#[tokio::test]
async fn a_first_write_is_published_as_its_create_then_itself() {
    let engine = engine_on(Arc::new(MemoryStore::new()));
    let s = follower(1, true);
    engine
        .subscribe_state(s.clone(), "c/w", |_| {})
        .await
        .unwrap();
    let write = WriteRequest::new(
        99,
        WriteOp::Update {
            data: json!({"x": 1}),
        },
        Base::Produces(-1),
    );
    assert_eq!(submit(&engine, "c/w", write).await.unwrap().version, 1);
    assert_eq!(
        *s.seen.lock(),
        vec![
            (Some(0), "create".to_owned(), Some("{}".to_owned())),
            (Some(1), "update".to_owned(), Some("before {}".to_owned())),
        ]
    );
    // A stale json0 write from before a delete meets the delete.
    delete(&engine, "c/w").await;
    let stale = submit(
        &engine,
        "c/w",
        json0_write(json!([{"p": ["x"], "na": 1}]), Base::At(1)),
    )
    .await;
    assert!(
        matches!(stale, Err(WriteFailure::LifeEnded { .. })),
        "{stale:?}"
    );
    // ...and leaves no trace: the record can be created at its next version.
    assert_eq!(
        create(&engine, "c/w", json!({}), Some(3), 9)
            .await
            .unwrap()
            .version,
        3
    );
}

/// Another engine on the same store (another node whose announcements never arrived)
/// commits three ops; this engine's next write loses its race, reloads the record, and
/// its subscribers are sent the three missed ops, each with its origin, in version order,
/// not one jump to the new version: a ShareDB client can apply them one by one.
#[tokio::test]
async fn a_gap_is_healed_with_the_missed_ops_in_order() {
    let store = Arc::new(MemoryStore::new());
    let here = engine_on(store.clone());
    let elsewhere = engine_on(store);
    create(&here, "c/gap", json!({"n": 0, "l": []}), Some(0), 1)
        .await
        .unwrap();
    let s = follower(1, true);
    here.subscribe_state(s.clone(), "c/gap", |_| {})
        .await
        .unwrap();
    for i in 1..=3u64 {
        let op = json!([{"p": ["n"], "na": 1}, {"p": ["l", 0], "li": i}]);
        submit(
            &elsewhere,
            "c/gap",
            json0_write_from(op, Base::Next, 10 + i),
        )
        .await
        .unwrap();
    }
    let mine = submit(
        &here,
        "c/gap",
        json0_write(json!([{"p": ["n"], "na": 100}]), Base::Next),
    )
    .await
    .unwrap();
    assert_eq!(mine.version, 4);
    let json0 = |v: u64, before: &str| {
        (
            Some(v),
            "json0".to_owned(),
            Some(format!("before {before}")),
        )
    };
    assert_eq!(
        *s.seen.lock(),
        vec![
            json0(1, r#"{"n":0,"l":[]}"#),
            json0(2, r#"{"n":1,"l":[1]}"#),
            json0(3, r#"{"n":2,"l":[2,1]}"#),
            json0(4, r#"{"n":3,"l":[3,2,1]}"#),
        ],
        "every missed op, then this engine's own"
    );
    assert_eq!(*s.origins.lock(), vec![Some(11), Some(12), Some(13), None]);
}

/// When the journal cannot bridge the gap (the missed versions span a delete and a
/// re-create), subscribers are told of the new state in one jump, as before.
#[tokio::test]
async fn a_gap_across_a_delete_is_one_jump() {
    let store = Arc::new(MemoryStore::new());
    let here = engine_on(store.clone());
    let elsewhere = engine_on(store);
    create(&here, "c/gap2", json!({"n": 0}), Some(0), 1)
        .await
        .unwrap();
    let s = follower(1, true);
    here.subscribe_state(s.clone(), "c/gap2", |_| {})
        .await
        .unwrap();
    delete(&elsewhere, "c/gap2").await;
    create(&elsewhere, "c/gap2", json!({"m": 1}), Some(2), 5)
        .await
        .unwrap();
    submit(
        &elsewhere,
        "c/gap2",
        json0_write(json!([{"p": ["m"], "na": 1}]), Base::Next),
    )
    .await
    .unwrap();
    let mine = submit(
        &here,
        "c/gap2",
        json0_write(json!([{"p": ["x"], "oi": 1}]), Base::Next),
    )
    .await;
    let seen = s.seen.lock().clone();
    assert_eq!(
        seen.first(),
        Some(&(Some(3), "jump".to_owned(), Some(r#"{"m":2}"#.to_owned()))),
        "one jump to the new life's state ({seen:?}, own write {mine:?})"
    );
}

/// A json0 write can name a version this engine has not heard of yet: its client learned
/// of it on another node, or a transform read it from the store before that node's
/// announcement arrived here. The store decides: the record is reloaded and the write
/// applied (transformed where it is stale), never refused as newer than the document.
#[tokio::test]
async fn a_write_based_on_a_version_only_the_store_has_is_applied() {
    let store = Arc::new(MemoryStore::new());
    let here = engine_on(store.clone());
    let elsewhere = engine_on(store);
    create(&here, "c/ahead", json!({"n": 0}), Some(0), 1)
        .await
        .unwrap();
    // subscribed, so that this engine keeps its copy (an idle one is dropped)
    here.subscribe_state(follower(1, true), "c/ahead", |_| {})
        .await
        .unwrap();
    let add = |n: i64| json!([{"p": ["n"], "na": n}]);
    let first = submit(&here, "c/ahead", json0_write(add(1), Base::At(0)))
        .await
        .unwrap();
    assert_eq!(first.version, 1);
    // versions 2 and 3 are committed by another engine; this one never hears of them
    for seq in 2..=3 {
        let op = json0_write_from(add(10), Base::Next, seq);
        submit(&elsewhere, "c/ahead", op).await.unwrap();
    }
    // based on 2, which only the store has: applied on it, transformed against 3
    let reconnected = submit(&here, "c/ahead", json0_write(add(100), Base::At(2)))
        .await
        .unwrap();
    assert_eq!(reconnected.version, 4);
    // more versions elsewhere, then a stale write here: its transform reads versions
    // from the store that are newer than this engine's copy, and applies on them
    for seq in 4..=5 {
        let op = json0_write_from(add(10), Base::Next, seq);
        submit(&elsewhere, "c/ahead", op).await.unwrap();
    }
    let stale = submit(&here, "c/ahead", json0_write(add(1000), Base::At(1)))
        .await
        .unwrap();
    assert_eq!(stale.version, 7);
    let read = here.read("c/ahead").await.unwrap().unwrap();
    assert_eq!(read.version.version, 7);
    assert_eq!(&*read.data, r#"{"n":1141}"#);
    // a version nobody has is still refused
    let refused = submit(&here, "c/ahead", json0_write(add(1), Base::At(9))).await;
    assert!(
        matches!(refused, Err(WriteFailure::InvalidVersion { .. })),
        "{refused:?}"
    );
    // a document this engine holds as missing, created elsewhere: a write on its create
    // is applied too
    here.subscribe_state(follower(2, true), "c/later", |_| {})
        .await
        .unwrap();
    create(&elsewhere, "c/later", json!({"n": 0}), Some(0), 9)
        .await
        .unwrap();
    let on_create = submit(&here, "c/later", json0_write(add(1), Base::At(0)))
        .await
        .unwrap();
    assert_eq!(on_create.version, 1);
}
