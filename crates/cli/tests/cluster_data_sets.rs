//! Several data sets on one bus: real `recordsync serve` processes of two clusters, each
//! on a PostgreSQL schema of its own, all pointed at the same Redis (and then the same
//! NATS), as when one company's Redis serves several deployments. Each cluster must see
//! its own writes across nodes and nothing of the other's, even for records of the same
//! name. Uses the machine's shared Redis and NATS: the topics are scoped by data sets made
//! for this test, so nothing else on those servers is touched.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

#[path = "../../server/tests/support/mod.rs"]
mod support;

mod process;

use std::process::{Command, Stdio};
use std::time::Duration;

use process::ServerProcess;
use recordsync_deepstream_protocol::RecordAction;
use recordsync_store::postgres::testing::TestSchema;
use support::{RawClient, json_value, update};

async fn two_data_sets_on_one_bus(bus: &str, tag: &str) {
    let schema_a = TestSchema::new(&format!("cli_data_set_a_{tag}"));
    let schema_b = TestSchema::new(&format!("cli_data_set_b_{tag}"));
    let (a1, _a1_dir) = ServerProcess::start_node(&schema_a.url(), bus);
    let (a2, _a2_dir) = ServerProcess::start_node(&schema_a.url(), bus);
    let (b1, _b1_dir) = ServerProcess::start_node(&schema_b.url(), bus);

    let name = "profile/ada";
    let mut on_a2 = RawClient::connect(&a2.addr).await;
    let mut on_b1 = RawClient::connect(&b1.addr).await;
    on_a2.subscribe(name).await;
    on_b1.subscribe(name).await;

    // Cluster A writes versions 1..=3 on node 1; node 2 of A follows.
    let mut writer_a = RawClient::connect(&a1.addr).await;
    writer_a.subscribe(name).await;
    for v in 1..=3 {
        writer_a
            .write(
                update(name, v, &format!(r#"{{"from":"a","v":{v}}}"#)),
                Some(&format!("a{v}")),
            )
            .await;
    }
    // (Node 2 may skip a version: an announcement that arrives while its own creation of
    // the record is still committing makes it refetch, which publishes the latest.)
    loop {
        let m = on_a2.recv_action(RecordAction::Update).await;
        if m.version == Some(3) {
            assert_eq!(
                json_value(&m.data),
                serde_json::json!({ "from": "a", "v": 3 })
            );
            break;
        }
    }

    // Cluster B never heard of them: its record is still the empty one it created, and
    // its own version 1 is accepted, not a conflict with A's.
    let mut writer_b = RawClient::connect(&b1.addr).await;
    assert_eq!(writer_b.head(name).await, 0, "B's record is untouched by A");
    if let Some(m) = on_b1.try_recv(Duration::from_millis(300)).await {
        panic!("a node of data set B received {m:?}");
    }
    writer_b
        .write(update(name, 1, r#"{"from":"b"}"#), Some("b1"))
        .await;
    let m = on_b1.recv_action(RecordAction::Update).await;
    assert_eq!(
        (m.version, json_value(&m.data)),
        (Some(1), serde_json::json!({ "from": "b" }))
    );

    // And A's nodes did not take B's write.
    if let Some(m) = on_a2.try_recv(Duration::from_millis(300)).await {
        panic!("a node of data set A received {m:?}");
    }
    for addr in [&a1.addr, &a2.addr] {
        let mut reader = RawClient::connect(addr).await;
        assert_eq!(reader.head(name).await, 3);
    }
    for n in [a1, a2, b1] {
        n.terminate();
    }
}

#[tokio::test]
async fn two_data_sets_share_one_redis_without_hearing_each_other() {
    two_data_sets_on_one_bus("redis://127.0.0.1:6379", "redis").await;
}

#[tokio::test]
async fn two_data_sets_share_one_nats_without_hearing_each_other() {
    two_data_sets_on_one_bus("nats://127.0.0.1:4222", "nats").await;
}

/// A cluster needs one database: with the embedded (default) or memory store each node
/// would be a data set of its own, so `--cluster` alone is refused at start, saying what
/// to add.
#[test]
fn a_cluster_without_postgres_is_refused() {
    for storage in [None, Some("memory")] {
        let data_dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_recordsync"));
        cmd.args(["serve", "--host", "127.0.0.1", "--port", "0"])
            .args(["--cluster", "redis://127.0.0.1:6379", "--data-dir"])
            .arg(data_dir.path());
        if let Some(storage) = storage {
            cmd.args(["--storage", storage]);
        }
        let out = cmd.stdin(Stdio::null()).output().expect("the binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{storage:?}: started anyway");
        assert!(
            stderr.contains("postgres://"),
            "{storage:?}: the error says what to add: {stderr}"
        );
    }
}
