//! Issue 12, as a user runs it: three real `recordsync serve` processes on one PostgreSQL
//! schema, joined by Redis, then NATS (the machine's shared servers: the topics are scoped
//! by data sets made for these tests). What a client on one node is told must hold on
//! every node:
//!
//! - a record created by subscribing on node 3 is at once found by `has`, `head` and
//!   `snapshot` on node 1 (`true`, `0`, `{}`), as in a deepstream cluster;
//! - a write for "the next version" (`-1`, what `setData` sends) is always acknowledged,
//!   however many races for its version it loses to other nodes: deepstream never
//!   refuses one, and `@deepstream/client` drops a VERSION_EXISTS answer to it, so its
//!   `setDataWithAck` would wait forever.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

#[path = "../../server/tests/support/mod.rs"]
mod support;

mod process;

use serde_json::{Value, json};

use process::ServerProcess;
use recordsync_deepstream_protocol::{RecordAction, RecordMessage};
use recordsync_store::postgres::testing::TestSchema;
use support::{RawClient, json_value};

const REDIS: &str = "redis://127.0.0.1:6379";
const NATS: &str = "nats://127.0.0.1:4222";

/// Three nodes on `schema` and `bus`, each with an empty data directory of its own.
fn three_nodes(schema: &TestSchema, bus: &str) -> Vec<(ServerProcess, tempfile::TempDir)> {
    (0..3)
        .map(|_| ServerProcess::start_node(&schema.url(), bus))
        .collect()
}

fn subscribe_request(names: &[String]) -> RecordMessage {
    RecordMessage {
        names: names.to_vec(),
        correlation_id: Some("s".into()),
        ..RecordMessage::new(RecordAction::SubscribeCreateAndRead)
    }
}

/// HEAD and READ of `name` as a deepstream client's `head`/`has` and `snapshot` send them.
async fn head_and_snapshot(c: &mut RawClient, name: &str) -> (i32, Option<i32>, Value) {
    let head = c.head(name).await;
    c.send(RecordMessage::named(RecordAction::Read, name)).await;
    let read = c.recv_record().await;
    assert_eq!(read.action, RecordAction::ReadResponse as i32, "{read:?}");
    (head, read.version, json_value(&read.data))
}

async fn subscribed_records_are_found_on_every_node(bus: &str, tag: &str) {
    let schema = TestSchema::new(&format!("cli_subscribed_{tag}"));
    let nodes = three_nodes(&schema, bus);
    let mut subscriber = RawClient::connect(&nodes[2].0.addr).await;
    let mut reader = RawClient::connect(&nodes[0].0.addr).await;

    // One at a time: each is looked for on node 1 as soon as node 3 answers.
    for i in 0..10 {
        let name = format!("alone/{i}");
        let read = subscriber.subscribe(&name).await;
        assert_eq!((read.version, json_value(&read.data)), (Some(0), json!({})));
        assert_eq!(
            head_and_snapshot(&mut reader, &name).await,
            (0, Some(0), json!({})),
            "{name} on node 1"
        );
    }
    // Several in one request, as the deepstream client batches them.
    let names: Vec<String> = (0..10).map(|i| format!("together/{i}")).collect();
    subscriber.send(subscribe_request(&names)).await;
    let ack = subscriber.recv_record().await;
    assert_eq!(ack.is_ack, Some(true), "{ack:?}");
    let mut answered = Vec::new();
    while answered.len() < names.len() {
        let read = subscriber.recv_action(RecordAction::ReadResponse).await;
        assert_eq!((read.version, json_value(&read.data)), (Some(0), json!({})));
        let name = read.name.expect("a READ_RESPONSE names its record");
        assert_eq!(
            head_and_snapshot(&mut reader, &name).await,
            (0, Some(0), json!({})),
            "{name} on node 1"
        );
        answered.push(name);
    }
    answered.sort();
    assert_eq!(answered, names);
}

#[tokio::test]
async fn a_record_created_by_subscribing_is_found_on_every_node_redis() {
    subscribed_records_are_found_on_every_node(REDIS, "redis").await;
}

#[tokio::test]
async fn a_record_created_by_subscribing_is_found_on_every_node_nats() {
    subscribed_records_are_found_on_every_node(NATS, "nats").await;
}

/// Two writers on each of the three nodes send several acknowledged writes for the next
/// version at once to one record, round after round, so that many lose the race for their
/// version to other nodes, some again and again. Every one is acknowledged, each writer's
/// in the order it sent them (a write tried again never overtakes a later one of its
/// node's), and the record ends with all of them, each writer's field at its last value.
async fn next_version_writes_are_all_acknowledged(bus: &str, tag: &str) {
    const ROUNDS: usize = 10;
    const PIPELINED: usize = 8;
    let schema = TestSchema::new(&format!("cli_next_version_{tag}"));
    let nodes = three_nodes(&schema, bus);
    let name = "contended";
    let mut writers = Vec::new();
    for _ in 0..2 {
        for (node, _) in &nodes {
            writers.push(RawClient::connect(&node.addr).await);
        }
    }
    for round in 0..ROUNDS {
        for (w, c) in writers.iter_mut().enumerate() {
            for i in 0..PIPELINED {
                c.send(RecordMessage {
                    is_write_ack: Some(true),
                    correlation_id: Some(format!("{round}/{i}")),
                    path: Some(format!("w{w}")),
                    data: Some((round * PIPELINED + i).to_string()),
                    version: Some(-1),
                    ..RecordMessage::named(RecordAction::CreateAndPatch, name)
                })
                .await;
            }
        }
        // Acknowledged in the order sent: each writer's writes land in that order.
        for (w, c) in writers.iter_mut().enumerate() {
            for i in 0..PIPELINED {
                let reply = c.recv_record().await;
                assert_eq!(
                    (reply.action, reply.correlation_id.as_deref()),
                    (
                        RecordAction::WriteAcknowledgement as i32,
                        Some(format!("{round}/{i}").as_str())
                    ),
                    "writer {w} (node {}): {reply:?}",
                    w % 3 + 1
                );
            }
        }
    }
    // Each writer's last write is the one its field ends with.
    let last = ROUNDS * PIPELINED - 1;
    let expected: serde_json::Map<String, Value> = (0..writers.len())
        .map(|w| (format!("w{w}"), json!(last)))
        .collect();
    let writes = (ROUNDS * PIPELINED * writers.len()) as i32;
    for (node, _) in &nodes {
        let mut reader = RawClient::connect(&node.addr).await;
        assert_eq!(
            head_and_snapshot(&mut reader, name).await,
            (writes, Some(writes), Value::Object(expected.clone())),
            "on {}",
            node.addr
        );
    }
}

#[tokio::test]
async fn next_version_writes_from_three_nodes_are_all_acknowledged_redis() {
    next_version_writes_are_all_acknowledged(REDIS, "redis").await;
}

#[tokio::test]
async fn next_version_writes_from_three_nodes_are_all_acknowledged_nats() {
    next_version_writes_are_all_acknowledged(NATS, "nats").await;
}
