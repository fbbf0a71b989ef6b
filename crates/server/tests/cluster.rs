//! Several nodes serving one data set: servers sharing one store and one bus, each on its
//! own port, driven by raw protocol clients.

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use recordsync_bus::{Bus, InProcessBus, connect};
use recordsync_protocol::{RecordAction, RecordMessage};
use recordsync_server::{Config, Server, StorageKind};
use recordsync_store::{MemoryStore, Store};
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

/// A private redis-server, killed on drop.
struct PrivateRedis(Child);

impl PrivateRedis {
    fn start(port: u16) -> Self {
        PrivateRedis(
            Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server is installed"),
        )
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {port}");
}

#[tokio::test]
async fn bus_restart_mid_load_every_subscriber_ends_on_the_final_value() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redis = PrivateRedis::start(port);
    wait_for_port(port).await;
    let bus = connect(&format!("redis://127.0.0.1:{port}")).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let addrs = nodes(2, store, bus).await;
    let name = unique("through-the-storm");
    let mut writer = RawClient::connect(&addrs[0]).await;
    let mut watcher = RawClient::connect(&addrs[1]).await;
    writer.subscribe(&name).await;
    watcher.subscribe(&name).await;
    let mut v = 0;
    for _ in 0..20 {
        v += 1;
        writer
            .write(update(&name, v, &format!(r#"{{"n":{v}}}"#)), Some("w"))
            .await;
    }
    // The bus dies; both nodes keep serving their own clients.
    drop(redis);
    for _ in 0..20 {
        v += 1;
        writer
            .write(update(&name, v, &format!(r#"{{"n":{v}}}"#)), Some("w"))
            .await;
    }
    let _redis = PrivateRedis::start(port);
    wait_for_port(port).await;
    // After the bus returns, the watcher's node resyncs from the store and the watcher
    // converges on the final value.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut last = 0;
    while last != v {
        assert!(
            tokio::time::Instant::now() < deadline,
            "watcher stuck at version {last} of {v}"
        );
        if let Some(recordsync_protocol::Message::Record(m)) =
            watcher.try_recv(Duration::from_millis(500)).await
            && m.action == RecordAction::Update as i32
        {
            let version = m.version.unwrap();
            assert!(
                version > last,
                "versions only move forward: {version} after {last}"
            );
            assert_eq!(json_value(&m.data), json!({ "n": version }));
            last = version;
        }
    }
    // Writes made after the restart flow normally again.
    v += 1;
    writer
        .write(update(&name, v, r#"{"n":"after"}"#), Some("w"))
        .await;
    let m = watcher.recv_action(RecordAction::Update).await;
    assert_eq!(
        (m.version, json_value(&m.data)),
        (Some(v), json!({ "n": "after" }))
    );
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

/// Whether `value` occurs anywhere inside `json` (a journal entry's op, say).
fn holds(json: &serde_json::Value, value: &serde_json::Value) -> bool {
    json == value
        || match json {
            serde_json::Value::Object(m) => m.values().any(|v| holds(v, value)),
            serde_json::Value::Array(a) => a.iter().any(|v| holds(v, value)),
            _ => false,
        }
}

/// Writer `w`'s value for version `v` of a record.
fn value_of(w: usize, v: i32) -> serde_json::Value {
    json!({ "w": w, "n": v })
}

/// Sends versions `from..=to` of each of `names` as acknowledged UPDATEs, without waiting
/// for the acknowledgements (so writes are in flight in the nodes and on the bus).
async fn send_writes(c: &mut RawClient, w: usize, names: &[String], from: i32, to: i32) {
    for v in from..=to {
        for name in names {
            c.send(RecordMessage {
                is_write_ack: Some(true),
                correlation_id: Some(format!("{name}#{v}")),
                ..update(name, v, &value_of(w, v).to_string())
            })
            .await;
        }
    }
}

/// Waits for `n` write acknowledgements, noting per record the highest version
/// acknowledged. Anything but an acknowledgement (or an UPDATE, should the writer's node
/// republish its own record after a refetch) fails the test.
async fn collect_acks(
    c: &mut RawClient,
    n: usize,
    acked: &mut std::collections::HashMap<String, i32>,
) {
    let mut got = 0;
    while got < n {
        let m = c.recv_record().await;
        if m.action == RecordAction::Update as i32 {
            continue;
        }
        got += 1;
        assert_eq!(
            m.action,
            RecordAction::WriteAcknowledgement as i32,
            "every write is acknowledged: {m:?}"
        );
        let id = m.correlation_id.expect("the ack names its write");
        let (name, v) = id.rsplit_once('#').expect("name#version");
        let v: i32 = v.parse().unwrap();
        let best = acked.entry(name.to_owned()).or_default();
        *best = (*best).max(v);
    }
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
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _redis = PrivateRedis::start(port);
    wait_for_port(port).await;
    let bus = connect(&format!("redis://127.0.0.1:{port}")).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let addrs = nodes(3, store.clone(), bus).await;
    let base = unique("flushed");
    // Writer w writes on node w; each owns its records, so no write conflicts.
    let names: Vec<Vec<String>> = (0..2)
        .map(|w| {
            (0..RECORDS_PER_WRITER)
                .map(|i| format!("{base}/{w}/{i}"))
                .collect()
        })
        .collect();
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
    flushall(port).await;
    // Second half sent before the first is acknowledged, and Redis emptied again.
    for (w, c) in writers.iter_mut().enumerate() {
        send_writes(c, w, &names[w], HALF + 1, LAST).await;
    }
    flushall(port).await;
    for c in writers.iter_mut() {
        collect_acks(c, 2 * per_phase, &mut acked).await;
    }
    assert_eq!(acked.len(), all.len());
    assert!(acked.values().all(|v| *v == LAST), "{acked:?}");

    // The store holds every acknowledged write: the final value, and one journal entry
    // per version carrying that version's value.
    for (w, mine) in names.iter().enumerate() {
        for name in mine {
            let stored = store
                .get(name)
                .await
                .unwrap()
                .expect("the record is stored");
            assert_eq!(stored.version, LAST as u64, "{name}");
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&stored.data).unwrap(),
                value_of(w, LAST)
            );
            let journal = store.journal(name, 1, LAST as u64).await.unwrap();
            assert_eq!(
                journal.len(),
                LAST as usize,
                "{name}: one entry per version"
            );
            for (entry, v) in journal.iter().zip(1..=LAST) {
                assert_eq!(entry.version, v as u64);
                let op: serde_json::Value = serde_json::from_str(&entry.op).unwrap();
                assert!(holds(&op, &value_of(w, v)), "{name} v{v}: {op}");
            }
        }
    }

    // Every subscriber, on every node, ends on every record's final value (each writer's
    // node delivers its writes locally, the other two only through Redis).
    for (node, c) in subscribers.iter_mut().enumerate() {
        let mut seen: std::collections::HashMap<String, i32> =
            all.iter().map(|n| (n.clone(), 0)).collect();
        while seen.values().any(|v| *v < LAST) {
            let m = c.recv_action(RecordAction::Update).await;
            let name = m.name.clone().expect("an update names its record");
            let v = m.version.expect("an update carries its version");
            let last = seen.get_mut(&name).expect("a subscribed record");
            // A node that noticed a gap refetches and may skip versions; it may never go
            // back or show a value that is not the version's.
            assert!(v > *last, "node {node}, {name}: v{v} after v{last}");
            let w = usize::from(name.contains(&format!("{base}/1/")));
            assert_eq!(json_value(&m.data), value_of(w, v), "node {node}, {name}");
            *last = v;
        }
    }
    for addr in &addrs {
        let mut fresh = RawClient::connect(addr).await;
        for (w, mine) in names.iter().enumerate() {
            for name in mine {
                let read = fresh.subscribe(name).await;
                assert_eq!(
                    (read.version, json_value(&read.data)),
                    (Some(LAST), value_of(w, LAST)),
                    "{addr} answers the final state of {name}"
                );
            }
        }
    }
}
