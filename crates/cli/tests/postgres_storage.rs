//! The real binary on `--storage postgres://...`: records outlive the node (killed,
//! restarted with an empty data directory), and two nodes on one database see each
//! other's writes and refuse each other's stale ones with VERSION_EXISTS; while
//! PostgreSQL is down, writes fail with a clear error and the health check answers 503,
//! and the node recovers by itself.
//!
//! Needs the test PostgreSQL (`RECORDSYNC_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/test`); each test uses a schema of its own.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

#[path = "../../server/tests/support/mod.rs"]
mod support;

/// A private PostgreSQL server the test can stop and start.
#[path = "../../store/tests/support/mod.rs"]
mod private_postgres;

mod process;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Mutex;

use process::ServerProcess;
use recordsync_deepstream_protocol::{RecordAction, RecordMessage};
use recordsync_store::postgres::testing::TestSchema;
use support::{RawClient, health_status, json_value, update};

/// A node on `--storage <url>` with an empty data directory of its own: whatever it
/// serves comes from PostgreSQL.
struct Node {
    process: ServerProcess,
    addr: String,
    _data_dir: tempfile::TempDir,
}

impl Node {
    fn start(storage: &str) -> Node {
        let data_dir = tempfile::tempdir().unwrap();
        let process = ServerProcess::start([
            std::ffi::OsStr::new("--storage"),
            std::ffi::OsStr::new(storage),
            std::ffi::OsStr::new("--data-dir"),
            data_dir.path().as_os_str(),
        ]);
        let addr = process.addr.clone();
        Node {
            process,
            addr,
            _data_dir: data_dir,
        }
    }

    fn kill(self) {
        self.process.kill();
    }
}

#[tokio::test]
async fn records_outlive_a_killed_node() {
    let schema = TestSchema::new("cli_restart");
    let node = Node::start(&schema.url());
    let mut a = RawClient::connect(&node.addr).await;
    a.subscribe("keep/me").await;
    for v in 1..=5 {
        a.write(
            update(
                "keep/me",
                v,
                &format!(r#"{{"n":{v},"z":"last","a":"first"}}"#),
            ),
            Some(&v.to_string()),
        )
        .await;
    }
    a.subscribe("empty/one").await;

    // Writers stream acknowledged writes; the node is killed mid-stream.
    let acked: Arc<Mutex<HashMap<String, i32>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..3 {
        let (addr, acked) = (node.addr.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            let mut c = RawClient::connect(&addr).await;
            let name = format!("stream/{w}");
            c.subscribe(&name).await;
            for v in 1.. {
                c.send(RecordMessage {
                    is_write_ack: Some(true),
                    correlation_id: Some(v.to_string()),
                    ..update(&name, v, &format!(r#"{{"n":{v}}}"#))
                })
                .await;
                match c.try_recv(Duration::from_secs(5)).await {
                    Some(recordsync_deepstream_protocol::Message::Record(r))
                        if r.action == RecordAction::WriteAcknowledgement as i32 =>
                    {
                        acked.lock().await.insert(name.clone(), v);
                    }
                    _ => return,
                }
            }
        }));
    }
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let total: i32 = acked.lock().await.values().sum();
        if total >= 60 {
            break;
        }
    }
    drop(a);
    node.kill();
    for w in writers {
        let _ = w.await;
    }

    let node = Node::start(&schema.url());
    let mut b = RawClient::connect(&node.addr).await;
    let read = b.subscribe("keep/me").await;
    assert_eq!(read.version, Some(5));
    // Key order as written, not jsonb's.
    assert_eq!(
        read.data.as_deref(),
        Some(r#"{"n":5,"z":"last","a":"first"}"#)
    );
    assert_eq!(b.head("empty/one").await, 0);
    b.send(RecordMessage::named(RecordAction::Read, "empty/one"))
        .await;
    let empty = b.recv_record().await;
    assert_eq!(
        (empty.action, empty.version, empty.data.as_deref()),
        (RecordAction::ReadResponse as i32, Some(0), Some("{}"))
    );
    assert_eq!(b.head("never/made").await, -1);
    for (name, version) in acked.lock().await.iter() {
        b.send(RecordMessage::named(RecordAction::Read, name.as_str()))
            .await;
        let read = b.recv_action(RecordAction::ReadResponse).await;
        let stored = read.version.expect("a version");
        assert!(
            stored == *version || stored == version + 1,
            "{name}: acked {version}, stored {stored}"
        );
        assert_eq!(json_value(&read.data)["n"], json!(stored));
    }
}

#[tokio::test]
async fn two_nodes_on_one_database_share_records_and_refuse_stale_writes() {
    let schema = TestSchema::new("cli_two_nodes");
    // Started together: both migrate the empty schema at once.
    let url = schema.url();
    let (one, two) = std::thread::scope(|s| {
        let one = s.spawn(|| Node::start(&url));
        let two = s.spawn(|| Node::start(&url));
        (one.join().unwrap(), two.join().unwrap())
    });
    let mut a = RawClient::connect(&one.addr).await;
    let mut b = RawClient::connect(&two.addr).await;
    a.subscribe("shared/doc").await;
    a.write(update("shared/doc", 1, r#"{"by":"a"}"#), Some("a1"))
        .await;

    // Node two has no copy: it reads node one's write from the database.
    let read = b.subscribe("shared/doc").await;
    assert_eq!(
        (read.version, json_value(&read.data)),
        (Some(1), json!({"by": "a"}))
    );

    // Node one moves on to version 2; node two (no bus configured) still believes 1,
    // so its client's version 2 is stale: the database refuses it, and the client is
    // told VERSION_EXISTS with the stored state, as on one node.
    a.write(update("shared/doc", 2, r#"{"by":"a","n":2}"#), Some("a2"))
        .await;
    b.send(RecordMessage {
        is_write_ack: Some(true),
        correlation_id: Some("b2".into()),
        ..update("shared/doc", 2, r#"{"by":"b"}"#)
    })
    .await;
    let reply = b
        .recv_action_in(&[
            RecordAction::WriteAcknowledgement,
            RecordAction::VersionExists,
        ])
        .await;
    assert_eq!(
        reply.action,
        RecordAction::VersionExists as i32,
        "{reply:?}"
    );
    assert_eq!(reply.version, Some(2));
    assert_eq!(json_value(&reply.data), json!({"by": "a", "n": 2}));

    // Nothing of the refused write was stored.
    let mut fresh = RawClient::connect(&one.addr).await;
    fresh
        .send(RecordMessage::named(RecordAction::Read, "shared/doc"))
        .await;
    let read = fresh.recv_action(RecordAction::ReadResponse).await;
    assert_eq!(
        (read.version, json_value(&read.data)),
        (Some(2), json!({"by": "a", "n": 2}))
    );
    drop((one, two));
}

/// PostgreSQL crashes under a running node: a write meanwhile gets a clear error, and
/// once the database is back the same node serves writes again, with nothing
/// acknowledged lost.
#[tokio::test]
async fn a_database_outage_fails_writes_clearly_and_the_node_recovers_by_itself() {
    let mut pg = private_postgres::PrivatePostgres::start();
    let node = Node::start(&pg.url());
    let mut c = RawClient::connect(&node.addr).await;
    c.subscribe("outage/doc").await;
    c.write(update("outage/doc", 1, r#"{"n":1}"#), Some("1"))
        .await;

    assert_eq!(health_status(&node.addr).await, 200);
    pg.stop("immediate");
    // The health check asks the database: 503 even before any write has failed.
    assert_eq!(
        health_status(&node.addr).await,
        503,
        "while the database is down"
    );
    c.send(RecordMessage {
        is_write_ack: Some(true),
        correlation_id: Some("2".into()),
        ..update("outage/doc", 2, r#"{"n":2}"#)
    })
    .await;
    let reply = c.recv_record().await;
    assert_eq!(
        reply.action,
        RecordAction::RecordUpdateError as i32,
        "{reply:?}"
    );
    let message = json_value(&reply.data);
    let message = message.as_str().expect("an error message");
    assert!(message.contains("unavailable"), "{message}");
    assert!(
        message.contains(&format!("127.0.0.1:{}", pg.port)),
        "{message}"
    );

    pg.restart();
    // The client reloads and writes again until the node answers from the database.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let stored = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node did not recover"
        );
        c.send(RecordMessage::named(RecordAction::Read, "outage/doc"))
            .await;
        let read = c
            .recv_action_in(&[RecordAction::ReadResponse, RecordAction::RecordUpdateError])
            .await;
        if read.action == RecordAction::ReadResponse as i32 {
            let version = read.version.expect("a version");
            c.send(RecordMessage {
                is_write_ack: Some(true),
                correlation_id: Some("again".into()),
                ..update("outage/doc", version + 1, r#"{"n":"after"}"#)
            })
            .await;
            let reply = c.recv_record().await;
            if reply.action == RecordAction::WriteAcknowledgement as i32 {
                break version + 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        stored, 2,
        "version 1 was kept, the failed version 2 was not stored"
    );

    let mut fresh = RawClient::connect(&node.addr).await;
    fresh
        .send(RecordMessage::named(RecordAction::Read, "outage/doc"))
        .await;
    let read = fresh.recv_action(RecordAction::ReadResponse).await;
    assert_eq!(
        (read.version, json_value(&read.data)),
        (Some(2), json!({"n": "after"}))
    );
    assert_eq!(health_status(&node.addr).await, 200, "once it is back");
}
