//! One record through two front doors with different policies, as a deepstream client
//! and a ShareDB client would drive it at once: one refuses stale writes (deepstream's
//! VERSION_EXISTS), the other transforms them (ShareDB's json0). Both must see the same
//! versions and the same data, and the record's history must read back at every version,
//! across a delete and a re-create.
#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

mod support;

use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use recordsync_core::json0;
use recordsync_core::{JournalOp, WriteOp};
use recordsync_engine::{
    Base, Engine, EngineError, EventKind, OnStale, RecordEvent, Subscriber, WriteDone,
    WriteFailure, WriteRequest,
};
use recordsync_store::embedded::EmbeddedOptions;
use recordsync_store::postgres::testing::TestSchema;
use recordsync_store::{EmbeddedStore, History, MemoryStore, Origin, PostgresOptions};
use support::{engine_on, submit};

/// A front door's client: records the versions (engine) and values it is sent.
struct Client {
    id: u64,
    seen: Mutex<Vec<u64>>,
}

impl Subscriber for Client {
    fn id(&self) -> u64 {
        self.id
    }

    fn deliver(&self, event: &Arc<RecordEvent>) {
        if let EventKind::Changed { version, .. } = &event.kind {
            self.seen.lock().push(version.version);
        }
    }
}

/// The deepstream door: path writes naming the version they produce, refused if stale.
fn deepstream(op: WriteOp, produces: i64) -> WriteRequest {
    WriteRequest::new(1, op, Base::Produces(produces))
}

/// The ShareDB door: json0 ops on an engine version, transformed if stale, with origin.
fn sharedb(op: Value, base: u64, seq: u64) -> WriteRequest {
    WriteRequest {
        writer: 2,
        op: JournalOp::Json0 {
            ops: json0::op_from_json(&op).unwrap(),
        },
        base: Base::At(base),
        on_stale: OnStale::Transform,
        author: Some(Arc::from("bob")),
        origin: Some(Origin {
            src: "client-b".into(),
            seq,
        }),
    }
}

async fn value(engine: &Engine, name: &str) -> (u64, Value) {
    let s = engine.read(name).await.unwrap().unwrap();
    (s.version.version, serde_json::from_str(&s.data).unwrap())
}

#[tokio::test]
async fn refusing_and_transforming_doors_share_one_record() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine_on(store.clone());
    let a = Arc::new(Client {
        id: 1,
        seen: Mutex::default(),
    });
    let b = Arc::new(Client {
        id: 2,
        seen: Mutex::default(),
    });
    engine
        .subscribe(a.clone(), "doc", true, |_, _| {})
        .await
        .unwrap();
    engine
        .subscribe(b.clone(), "doc", true, |_, _| {})
        .await
        .unwrap();

    // v1: deepstream sets a path.
    let patch = WriteOp::Patch {
        path: "a".into(),
        data: json!(1),
    };
    assert_eq!(
        submit(&engine, "doc", deepstream(patch, 1))
            .await
            .unwrap()
            .version,
        1
    );
    // v2: ShareDB, still on v0, inserts a key: transformed over v1 and applied.
    let v2 = submit(
        &engine,
        "doc",
        sharedb(json!([{"p": ["b"], "oi": 2}]), 0, 1),
    )
    .await;
    assert_eq!(v2.unwrap().version, 2);
    assert_eq!(value(&engine, "doc").await, (2, json!({"a": 1, "b": 2})));
    // deepstream, on its version 1 still, is refused with the current state to merge.
    let stale = WriteOp::Update {
        data: json!({"items": []}),
    };
    match submit(&engine, "doc", deepstream(stale, 2)).await {
        Err(WriteFailure::VersionExists { version, data }) => {
            assert_eq!((version.version, version.in_life()), (2, 2));
            assert_eq!(&*data, r#"{"a":1,"b":2}"#);
        }
        other => panic!("expected VERSION_EXISTS, got {other:?}"),
    }
    // v3: deepstream merges and writes a list.
    let list = WriteOp::Patch {
        path: "items".into(),
        data: json!([1, 2, 3]),
    };
    submit(&engine, "doc", deepstream(list, 3)).await.unwrap();
    // v4: ShareDB on v3 inserts at the front of the list.
    let insert = json!([{"p": ["items", 0], "li": 0}]);
    let v4 = submit(&engine, "doc", sharedb(insert.clone(), 3, 2))
        .await
        .unwrap();
    assert_eq!(v4.version, 4);
    // v5: ShareDB removes the `1` it saw at index 0 of v3: transformed to index 1.
    let remove = json!([{"p": ["items", 0], "ld": 1}]);
    let v5 = submit(&engine, "doc", sharedb(remove, 3, 3)).await.unwrap();
    assert_eq!(v5.version, 5);
    assert_eq!(value(&engine, "doc").await.1["items"], json!([0, 2, 3]));
    // The insert sent again (a reconnect without its ack): acknowledged as v4, not applied.
    let again = submit(&engine, "doc", sharedb(insert, 3, 2)).await.unwrap();
    assert_eq!(again.version, 4);
    assert_eq!(
        value(&engine, "doc").await,
        (5, json!({"a": 1, "b": 2, "items": [0, 2, 3]}))
    );

    // Each door's client saw the other's writes, in version order, once each.
    assert_eq!(*a.seen.lock(), vec![2, 4, 5]);
    assert_eq!(*b.seen.lock(), vec![1, 3]);

    // The journal names the ShareDB writes' author and origin, and every op reads as json0.
    let journal = engine.journal("doc", 0, 10).await.unwrap();
    assert_eq!(
        journal.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4, 5]
    );
    assert_eq!(journal[4].author.as_deref(), Some("bob"));
    assert_eq!(journal[4].origin.as_ref().map(|o| o.seq), Some(2));
    let mut doc: Option<Value> = None;
    for (i, entry) in journal.iter().enumerate() {
        let op = JournalOp::from_journal(&entry.op).unwrap();
        if i > 0 {
            let before = doc.clone().unwrap();
            let as_json0 = op.to_json0(&before).unwrap();
            let replayed = json0::apply(&before, &as_json0).unwrap();
            op.apply(&mut doc).unwrap();
            assert_eq!(Some(replayed), doc, "entry {i} replays as json0");
        } else {
            op.apply(&mut doc).unwrap();
        }
        let past = engine.value_at("doc", entry.version).await.unwrap();
        assert_eq!(past.data, doc, "version {}", entry.version);
    }
}

/// Milestones every 3 versions, everything kept: reads go through milestones and the
/// entries after them, across two lives of the record.
fn small_milestones() -> History {
    History {
        milestone_every: 3,
        ..History::keep_everything()
    }
}

#[tokio::test]
async fn history_survives_delete_and_re_create_on_the_memory_store() {
    let store = Arc::new(MemoryStore::with_history(small_milestones()));
    two_lives_read_back_at_every_version(engine_on(store)).await;
}

#[tokio::test]
async fn history_survives_delete_and_re_create_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions {
        history: small_milestones(),
        ..EmbeddedOptions::default()
    };
    let store = Arc::new(EmbeddedStore::open_with(dir.path(), options).unwrap());
    two_lives_read_back_at_every_version(engine_on(store)).await;
}

#[tokio::test]
async fn history_survives_delete_and_re_create_on_postgresql() {
    let schema = TestSchema::new("engine_history");
    let options = PostgresOptions {
        history: small_milestones(),
        ..PostgresOptions::default()
    };
    let store = Arc::new(schema.connect_with(options).await);
    two_lives_read_back_at_every_version(engine_on(store)).await;
}

async fn two_lives_read_back_at_every_version(engine: Arc<Engine>) {
    let mut expected: Vec<Option<Value>> = Vec::new();
    // Two lives of 6 writes each, a delete between them.
    for life in 0..2u64 {
        // Created at 0, deleted at 6; created again at 7, deleted at 13.
        let first = life * 7;
        for n in 1..=5i64 {
            let op = WriteOp::Patch {
                path: format!("k{n}"),
                data: json!(n + 10 * life as i64),
            };
            let v = submit(&engine, "h", WriteRequest::new(1, op, Base::Produces(n)))
                .await
                .unwrap();
            assert_eq!((v.version, v.created), (first + n as u64, first));
        }
        let (tx, rx) = oneshot::channel();
        engine
            .delete(
                1,
                Some(Arc::from("alice")),
                "h",
                WriteDone::new(move |r| drop(tx.send(r))),
            )
            .await;
        rx.await.unwrap().unwrap();
        assert_eq!(engine.head("h").await.unwrap(), None, "deepstream: gone");
        let mut value = serde_json::Map::new();
        expected.push(Some(Value::Object(value.clone())));
        for n in 1..=5i64 {
            value.insert(format!("k{n}"), json!(n + 10 * life as i64));
            expected.push(Some(Value::Object(value.clone())));
        }
        expected.push(None);
    }
    // Versions 0..=13: create, 5 writes, delete; again.
    let journal = engine.journal("h", 0, u64::MAX).await.unwrap();
    assert_eq!(journal.len(), 14);
    assert_eq!(journal[6].author.as_deref(), Some("alice"));
    for (v, want) in expected.iter().enumerate() {
        let past = engine.value_at("h", v as u64).await.unwrap();
        assert_eq!(&past.data, want, "version {v}");
    }
    assert!(matches!(
        engine.value_at("h", 14).await,
        Err(EngineError::NotInHistory {
            current: Some(13),
            ..
        })
    ));
    // By time: every entry is at or before now.
    let now = recordsync_engine::now_ms();
    assert_eq!(engine.value_at_time("h", now).await.unwrap().version, 13);
}

#[tokio::test]
async fn pruned_versions_are_refused_and_kept_ones_read() {
    let history = History {
        milestone_every: 10,
        keep_ops: Some(20),
        keep_age: None,
    };
    let engine = engine_on(Arc::new(MemoryStore::with_history(history)));
    for n in 1..=100i64 {
        let op = WriteOp::Update {
            data: json!({ "n": n }),
        };
        submit(&engine, "p", WriteRequest::new(1, op, Base::Produces(n)))
            .await
            .unwrap();
    }
    let err = engine.value_at("p", 5).await.unwrap_err();
    let EngineError::NotInHistory {
        start: Some(start), ..
    } = err
    else {
        panic!("expected a pruned version, got {err:?}");
    };
    assert!(
        start % 10 == 0 && (60..=80).contains(&start),
        "start {start}"
    );
    for v in start..=100 {
        let past = engine.value_at("p", v).await.unwrap();
        assert_eq!(past.data, Some(json!({ "n": v })), "version {v}");
    }
}
