//! Several nodes serving one data set: servers sharing one store and one bus, each on its
//! own port, driven by raw protocol clients.

mod support;

use std::sync::Arc;

use serde_json::json;

use recordsync_bus::{Bus, InProcessBus, connect};
use recordsync_protocol::{RecordAction, RecordMessage};
use recordsync_server::{Config, Server, StorageKind};
use recordsync_store::{MemoryStore, Store};
use support::bus_faults::{
    self, BusKind, PrivateBus, all_written, assert_every_node_answers, assert_stored,
    assert_subscribers_end_on, collect_acks, send_writes,
};
use support::{RawClient, json_value, update};

/// Starts `n` nodes on one store and one bus; returns their addresses.
async fn nodes(n: usize, store: Arc<dyn Store>, bus: Arc<dyn Bus>) -> Vec<String> {
    let mut addrs = Vec::new();
    for _ in 0..n {
        let config = Config {
            port: 0,
            storage: StorageKind::Memory,
            ..Config::default()
        };
        let server = Server::bind_with(config, store.clone(), Some(bus.clone()))
            .await
            .expect("node binds");
        addrs.push(server.local_addr().to_string());
        tokio::spawn(server.run(std::future::pending()));
    }
    addrs
}

fn unique(name: &str) -> String {
    use std::hash::{BuildHasher, RandomState};
    format!(
        "{name}/{}",
        RandomState::new().hash_one(std::time::SystemTime::now())
    )
}

/// Writes on node 1 reach subscribers on nodes 2 and 3 in version order; reads on every
/// node answer the latest state; a delete reaches everyone.
async fn writes_reach_every_node(bus: Arc<dyn Bus>) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let addrs = nodes(3, store, bus).await;
    let name = unique("shared");
    let mut writer = RawClient::connect(&addrs[0]).await;
    let mut on_2 = RawClient::connect(&addrs[1]).await;
    let mut on_3 = RawClient::connect(&addrs[2]).await;
    writer.subscribe(&name).await;
    on_2.subscribe(&name).await;
    on_3.subscribe(&name).await;
    for v in 1..=30 {
        writer
            .write(update(&name, v, &format!(r#"{{"n":{v}}}"#)), None)
            .await;
    }
    writer
        .write(update(&name, 31, r#"{"n":31}"#), Some("last"))
        .await;
    for c in [&mut on_2, &mut on_3] {
        for v in 1..=31 {
            let m = c.recv_action(RecordAction::Update).await;
            assert_eq!(m.version, Some(v), "in version order");
            assert_eq!(json_value(&m.data), json!({ "n": v }));
        }
        assert_eq!(c.head(&name).await, 31);
    }
    // A node with no cached copy reads the store.
    let mut fresh = RawClient::connect(&addrs[2]).await;
    assert_eq!(fresh.head(&name).await, 31);

    writer
        .send(RecordMessage::named(RecordAction::Delete, name.as_str()))
        .await;
    assert_eq!(
        writer.recv_record().await.action,
        RecordAction::DeleteSuccess as i32
    );
    for c in [&mut on_2, &mut on_3] {
        assert_eq!(
            c.recv_action(RecordAction::Deleted).await.name.as_deref(),
            Some(name.as_str())
        );
        assert_eq!(c.head(&name).await, -1);
    }
}

/// Two nodes write the same version: one wins, the other writer is told VERSION_EXISTS
/// with the winner's state, exactly as on one node; every node ends on the winner.
async fn conflicts_across_nodes_surface_as_version_exists(bus: Arc<dyn Bus>) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let addrs = nodes(2, store, bus).await;
    let name = unique("contested");
    let mut a = RawClient::connect(&addrs[0]).await;
    let mut b = RawClient::connect(&addrs[1]).await;
    a.subscribe(&name).await;
    b.subscribe(&name).await;
    a.write(update(&name, 1, r#"{"by":"a"}"#), Some("a1")).await;
    assert_eq!(b.recv_action(RecordAction::Update).await.version, Some(1));
    // Both now write version 2; acknowledgements tell who won.
    let ack = |id: &str, by: &str| RecordMessage {
        is_write_ack: Some(true),
        correlation_id: Some(id.into()),
        ..update(&name, 2, &format!(r#"{{"by":"{by}"}}"#))
    };
    a.send(ack("a2", "a")).await;
    b.send(ack("b2", "b")).await;
    let reply_a = a
        .recv_action_in(&[
            RecordAction::WriteAcknowledgement,
            RecordAction::VersionExists,
        ])
        .await;
    let reply_b = b
        .recv_action_in(&[
            RecordAction::WriteAcknowledgement,
            RecordAction::VersionExists,
        ])
        .await;
    let won = |m: &RecordMessage| m.action == RecordAction::WriteAcknowledgement as i32;
    assert!(
        won(&reply_a) ^ won(&reply_b),
        "exactly one wins: {reply_a:?} {reply_b:?}"
    );
    let (loser_reply, winner) = if won(&reply_a) {
        (&reply_b, "a")
    } else {
        (&reply_a, "b")
    };
    assert_eq!(loser_reply.version, Some(2));
    assert_eq!(json_value(&loser_reply.data), json!({ "by": winner }));
    for c in [&mut a, &mut b] {
        c.send(RecordMessage::named(RecordAction::Read, name.as_str()))
            .await;
        let read = c.recv_action(RecordAction::ReadResponse).await;
        assert_eq!(
            (read.version, json_value(&read.data)),
            (Some(2), json!({ "by": winner }))
        );
    }
}

#[tokio::test]
async fn in_process_bus_writes_reach_every_node() {
    writes_reach_every_node(Arc::new(InProcessBus::new())).await;
}

#[tokio::test]
async fn in_process_bus_conflicts_surface_as_version_exists() {
    conflicts_across_nodes_surface_as_version_exists(Arc::new(InProcessBus::new())).await;
}

#[tokio::test]
async fn redis_bus_writes_reach_every_node() {
    writes_reach_every_node(
        connect("redis://127.0.0.1:6379")
            .await
            .expect("the machine's redis"),
    )
    .await;
}

#[tokio::test]
async fn nats_bus_writes_reach_every_node() {
    writes_reach_every_node(
        connect("nats://127.0.0.1:4222")
            .await
            .expect("the machine's nats"),
    )
    .await;
}

#[tokio::test]
async fn redis_bus_conflicts_surface_as_version_exists() {
    conflicts_across_nodes_surface_as_version_exists(
        connect("redis://127.0.0.1:6379").await.unwrap(),
    )
    .await;
}

/// Starts `n` nodes on one store, each with a bus connection of its own to `bus_url` (as
/// separate processes would have); returns their addresses.
async fn nodes_on_bus(n: usize, store: Arc<dyn Store>, bus_url: &str) -> Vec<String> {
    let mut addrs = Vec::new();
    for _ in 0..n {
        let bus = connect(bus_url).await.expect("the private bus");
        addrs.extend(nodes(1, store.clone(), bus).await);
    }
    addrs
}

/// Issue 5, "bus down or restarted mid-load", on three in-process nodes: see
/// [`bus_faults::bus_restart_mid_load`]. `crates/cli/tests/cluster_faults.rs` runs the
/// same scenario on real binaries and PostgreSQL.
async fn bus_restart_mid_load(kind: BusKind) {
    let mut bus = PrivateBus::start(kind).await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let addrs = nodes_on_bus(3, store.clone(), &bus.url()).await;
    bus_faults::bus_restart_mid_load(&mut bus, &addrs, store.as_ref(), &unique("storm")).await;
}

#[tokio::test]
async fn redis_restart_mid_load_every_subscriber_ends_on_the_final_value() {
    bus_restart_mid_load(BusKind::Redis).await;
}

#[tokio::test]
async fn nats_restart_mid_load_every_subscriber_ends_on_the_final_value() {
    bus_restart_mid_load(BusKind::Nats).await;
}

/// Sends FLUSHALL to the redis-server on `port` and waits for its `+OK`.
async fn flushall(port: u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the private redis answers");
    tcp.write_all(b"*1\r\n$8\r\nFLUSHALL\r\n").await.unwrap();
    let mut reply = [0u8; 5];
    tcp.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"+OK\r\n", "FLUSHALL was carried out");
}

/// Issue 5: "Emptying Redis completely loses nothing: the database is the truth." Three
/// nodes share one store and a private redis-server; writers on two of them keep writes in
/// flight while Redis is emptied with FLUSHALL, twice. Afterwards every acknowledged write
/// is in the store (value and journal), and every subscriber on every node sees each
/// record's versions move only forward, each with its own value, up to the final one —
/// which every node also answers to a fresh reader.
#[tokio::test]
async fn flushall_on_redis_mid_load_loses_nothing() {
    const RECORDS_PER_WRITER: usize = 4;
    const HALF: i32 = 60;
    const LAST: i32 = 2 * HALF;
    let redis = PrivateBus::start(BusKind::Redis).await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let addrs = nodes_on_bus(3, store.clone(), &redis.url()).await;
    // Writer w writes on node w; each owns its records, so no write conflicts.
    let names = bus_faults::records(&unique("flushed"), RECORDS_PER_WRITER);
    let all: Vec<String> = names.concat();
    // One subscriber on every node, following every record.
    let mut subscribers = Vec::new();
    for addr in &addrs {
        let mut c = RawClient::connect(addr).await;
        for name in &all {
            assert_eq!(c.subscribe(name).await.version, Some(0));
        }
        subscribers.push(c);
    }
    let mut writers = Vec::new();
    for (w, mine) in names.iter().enumerate() {
        let mut c = RawClient::connect(&addrs[w]).await;
        for name in mine {
            c.subscribe(name).await;
        }
        writers.push(c);
    }

    let per_phase = RECORDS_PER_WRITER * HALF as usize;
    let mut acked = std::collections::HashMap::new();
    // First half in flight, Redis emptied while they are.
    for (w, c) in writers.iter_mut().enumerate() {
        send_writes(c, w, &names[w], 1, HALF).await;
    }
    flushall(redis.port).await;
    // Second half sent before the first is acknowledged, and Redis emptied again.
    for (w, c) in writers.iter_mut().enumerate() {
        send_writes(c, w, &names[w], HALF + 1, LAST).await;
    }
    flushall(redis.port).await;
    for c in writers.iter_mut() {
        collect_acks(c, 2 * per_phase, &mut acked).await;
    }
    assert_eq!(acked.len(), all.len());
    assert!(acked.values().all(|v| *v == LAST), "{acked:?}");

    let written = all_written(&names, LAST);
    assert_stored(store.as_ref(), &written).await;
    // Each writer's node delivers its writes locally, the other two only through Redis.
    assert_subscribers_end_on(&mut subscribers, &written).await;
    assert_every_node_answers(&addrs, &written).await;
}
