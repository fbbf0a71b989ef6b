//! Several nodes serving one data set: servers sharing one store and one bus, each on its
//! own port, driven by raw protocol clients.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

#[path = "support/gated.rs"]
mod gated;
#[path = "support/severable.rs"]
mod severable;
mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use gated::Gated;
use recordsync_bus::{Bus, InProcessBus, connect};
use recordsync_deepstream_protocol::{RecordAction, RecordMessage};
use recordsync_server::{Config, Server, StorageKind};
use recordsync_store::{MemoryStore, Store};
use severable::Severable;
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
    let (mut subscribers, mut writers) = bus_faults::subscribers_and_writers(&addrs, &names).await;

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

/// Two nodes on `store`, each linked to one in-process bus through a link the test can
/// sever; returns their addresses and their links' switches.
async fn severable_nodes(
    store: [Arc<dyn Store>; 2],
) -> (Vec<String>, Vec<tokio::sync::watch::Sender<bool>>) {
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
    let (mut addrs, mut switches) = (Vec::new(), Vec::new());
    for store in store {
        let (link, switch) = Severable::link(bus.clone());
        addrs.extend(nodes(1, store, link).await);
        switches.push(switch);
    }
    (addrs, switches)
}

/// The next UPDATE within `wait`, if any.
async fn next_update(c: &mut RawClient, wait: Duration) -> Option<RecordMessage> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match c.try_recv(left).await? {
            recordsync_deepstream_protocol::Message::Record(m)
                if m.action == RecordAction::Update as i32 =>
            {
                return Some(m);
            }
            _ => continue,
        }
    }
}

/// A node cut off from the bus misses the others' announcements; when its link heals it
/// refetches what its subscribers follow, including a record whose last write it missed.
#[tokio::test]
async fn a_node_that_was_cut_off_refetches_when_it_heals() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (addrs, links) = severable_nodes([store.clone(), store]).await;
    let name = unique("missed");
    let (mut writer, mut watcher) = writer_and_watcher(&addrs, &name).await;

    links[1].send_replace(true);
    writer
        .write(update(&name, 2, r#"{"n":2}"#), Some("2"))
        .await;
    assert!(
        next_update(&mut watcher, Duration::from_millis(300))
            .await
            .is_none(),
        "a node cut off hears nothing"
    );
    links[1].send_replace(false);
    let m = next_update(&mut watcher, Duration::from_secs(5))
        .await
        .expect("the node refetches after it heals");
    assert_eq!(
        (m.version, json_value(&m.data)),
        (Some(2), json!({ "n": 2 }))
    );
}

/// A node reloading a record (here after its bus link healed) reads the store; a write on
/// another node committed after that read, and announced before the reload finished, must
/// not be lost behind it: the node ends on the newer version.
#[tokio::test]
async fn an_announcement_during_a_reload_is_not_lost_behind_it() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (gated, mut gates) = Gated::wrap(store.clone());
    let (addrs, links) = severable_nodes([store, gated]).await;
    let name = unique("reloading");
    let (mut writer, mut watcher) = writer_and_watcher(&addrs, &name).await;

    // Node 2 reloads its records after a blip on its link; its read is held back.
    gates.reads.send_replace(true);
    links[1].send_replace(true);
    links[1].send_replace(false);
    gates.holding("read").await;
    // Meanwhile node 1 commits version 2, and its announcement reaches node 2.
    writer
        .write(update(&name, 2, r#"{"n":2}"#), Some("2"))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    gates.reads.send_replace(false);

    let mut last = 1;
    while last < 2 {
        let m = next_update(&mut watcher, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("node 2 is stuck at version {last}"));
        last = m.version.unwrap();
        assert_eq!(json_value(&m.data), json!({ "n": last }));
    }
}

/// A node reloading a record while one of its own writes to it is being committed (here
/// after its bus link healed) must not go back to what the store held before that write:
/// its subscribers never see a version go back, and its writer's next write is accepted.
#[tokio::test]
async fn a_reload_does_not_undo_the_nodes_own_writes_in_flight() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (gated, mut gates) = Gated::wrap(store.clone());
    let (addrs, links) = severable_nodes([store, gated]).await;
    let name = unique("in-flight");
    let mut writer = RawClient::connect(&addrs[1]).await;
    let mut local = RawClient::connect(&addrs[1]).await;
    let mut remote = RawClient::connect(&addrs[0]).await;
    for c in [&mut writer, &mut local, &mut remote] {
        c.subscribe(&name).await;
    }
    writer
        .write(update(&name, 1, r#"{"n":1}"#), Some("1"))
        .await;

    // Version 2 is in flight on node 2 when it reloads after a blip on its link.
    gates.commits.send_replace(true);
    writer
        .send(RecordMessage {
            is_write_ack: Some(true),
            correlation_id: Some("2".into()),
            ..update(&name, 2, r#"{"n":2}"#)
        })
        .await;
    gates.holding("commit").await;
    links[1].send_replace(true);
    links[1].send_replace(false);
    tokio::time::sleep(Duration::from_millis(200)).await;
    gates.commits.send_replace(false);
    let ack = writer.recv_record().await;
    assert_eq!(
        ack.action,
        RecordAction::WriteAcknowledgement as i32,
        "{ack:?}"
    );
    writer
        .write(update(&name, 3, r#"{"n":3}"#), Some("3"))
        .await;

    for (who, c) in [("node 2", &mut local), ("node 1", &mut remote)] {
        let mut last = 0;
        while last < 3 {
            let m = next_update(c, Duration::from_secs(5))
                .await
                .unwrap_or_else(|| panic!("{who} is stuck at version {last}"));
            let v = m.version.unwrap();
            assert!(v > last, "{who}: version {v} after {last}");
            assert_eq!(json_value(&m.data), json!({ "n": v }));
            last = v;
        }
    }
}

/// Record names are any non-empty string: one that JSON must escape (a quote, a
/// backslash, a tab) crosses the bus like any other.
#[tokio::test]
async fn names_that_json_escapes_cross_the_bus() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let addrs = nodes(2, store, Arc::new(InProcessBus::new())).await;
    let name = unique("say \"hi\" \\ to\tme");
    let mut writer = RawClient::connect(&addrs[0]).await;
    let mut watcher = RawClient::connect(&addrs[1]).await;
    writer.subscribe(&name).await;
    watcher.subscribe(&name).await;
    writer
        .write(update(&name, 1, r#"{"n":1}"#), Some("1"))
        .await;
    let m = next_update(&mut watcher, Duration::from_secs(5))
        .await
        .expect("the other node hears of the write");
    assert_eq!(
        (m.name.as_deref(), m.version),
        (Some(name.as_str()), Some(1))
    );
}

/// A writer on node 1 and a watcher on node 2, both subscribed to `name`, after version 1
/// written on node 1 has reached the watcher: the two nodes are known to be talking.
async fn writer_and_watcher(addrs: &[String], name: &str) -> (RawClient, RawClient) {
    let mut writer = RawClient::connect(&addrs[0]).await;
    let mut watcher = RawClient::connect(&addrs[1]).await;
    writer.subscribe(name).await;
    watcher.subscribe(name).await;
    writer.write(update(name, 1, r#"{"n":1}"#), Some("1")).await;
    assert_eq!(
        watcher.recv_action(RecordAction::Update).await.version,
        Some(1)
    );
    (writer, watcher)
}

/// A node cut off from the bus (a network split: the others still hear each other) keeps
/// acknowledging its clients' writes, but cannot announce them. Its last write is one no
/// later announcement would reveal as a gap: once the node's link heals, the other nodes
/// must still get it.
#[tokio::test]
async fn a_write_made_while_its_node_was_cut_off_reaches_the_others_once_it_heals() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (addrs, links) = severable_nodes([store.clone(), store]).await;
    let name = unique("cut-off");
    let (mut writer, mut watcher) = writer_and_watcher(&addrs, &name).await;

    links[0].send_replace(true);
    writer
        .write(update(&name, 2, r#"{"n":2}"#), Some("2"))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    links[0].send_replace(false);

    let m = next_update(&mut watcher, Duration::from_secs(5))
        .await
        .expect("the write made while its node was cut off arrives after it heals");
    assert_eq!(
        (m.version, json_value(&m.data)),
        (Some(2), json!({ "n": 2 }))
    );
}

/// Issue 5: "head, has and snapshot answer the latest committed state on every node" —
/// even on a node that holds the record (a subscriber there) and has not heard of the
/// newest write yet (here its bus link is cut: news may be as late as the bus makes it).
/// deepstream clients answer `has` with a HEAD.
#[tokio::test]
async fn head_and_snapshot_answer_the_latest_committed_state_before_the_news_arrives() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (addrs, links) = severable_nodes([store.clone(), store]).await;
    let name = unique("latest");
    let (mut writer, mut watcher) = writer_and_watcher(&addrs, &name).await;

    links[1].send_replace(true);
    writer
        .write(update(&name, 2, r#"{"n":2}"#), Some("2"))
        .await;
    let mut reader = RawClient::connect(&addrs[1]).await;
    assert_eq!(reader.head(&name).await, 2, "HEAD on node 2");
    reader
        .send(RecordMessage::named(RecordAction::Read, name.as_str()))
        .await;
    let read = reader.recv_action(RecordAction::ReadResponse).await;
    assert_eq!(
        (read.version, json_value(&read.data)),
        (Some(2), json!({ "n": 2 })),
        "snapshot on node 2"
    );
    // Its subscriber hears of it too, now that the node has.
    let m = next_update(&mut watcher, Duration::from_secs(5))
        .await
        .expect("node 2's subscriber gets what node 2 read");
    assert_eq!(m.version, Some(2));
}

/// A node whose refetch fails because the store cannot be reached (here its bus link heals
/// while its database is down) refetches once the store is back: its subscribers do not
/// stay behind until something else touches the record.
#[tokio::test]
async fn a_refetch_that_failed_is_retried_once_the_store_is_back() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (gated, gates) = Gated::wrap(store.clone());
    let (addrs, links) = severable_nodes([store, gated]).await;
    let name = unique("unreachable");
    let (mut writer, mut watcher) = writer_and_watcher(&addrs, &name).await;

    links[1].send_replace(true);
    writer
        .write(update(&name, 2, r#"{"n":2}"#), Some("2"))
        .await;
    gates
        .fail_reads
        .store(true, std::sync::atomic::Ordering::SeqCst);
    links[1].send_replace(false);
    tokio::time::sleep(Duration::from_millis(500)).await;
    gates
        .fail_reads
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let m = next_update(&mut watcher, Duration::from_secs(5))
        .await
        .expect("node 2 refetches once its store answers again");
    assert_eq!(
        (m.version, json_value(&m.data)),
        (Some(2), json!({ "n": 2 }))
    );
}

/// In a cluster a read asks the store; when the store cannot be reached, a node answers
/// the copy it holds rather than an error, as a node on its own would.
#[tokio::test]
async fn a_read_answers_the_nodes_copy_while_the_store_cannot_be_reached() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (gated, gates) = Gated::wrap(store.clone());
    let (addrs, _links) = severable_nodes([store, gated]).await;
    let name = unique("held-copy");
    let (_writer, mut watcher) = writer_and_watcher(&addrs, &name).await;

    gates
        .fail_reads
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(watcher.head(&name).await, 1);
    watcher
        .send(RecordMessage::named(RecordAction::Read, name.as_str()))
        .await;
    let read = watcher.recv_action(RecordAction::ReadResponse).await;
    assert_eq!(
        (read.version, json_value(&read.data)),
        (Some(1), json!({ "n": 1 }))
    );
    // A record this node does not hold cannot be answered.
    let mut other = RawClient::connect(&addrs[1]).await;
    other
        .send(RecordMessage::named(RecordAction::Head, "never/held"))
        .await;
    let reply = other.recv_record().await;
    assert_ne!(reply.action, RecordAction::HeadResponse as i32, "{reply:?}");
}

/// A write nested to the limit crosses the bus as the op it is (the other node applies the
/// patch rather than refetching the record), and a node without a copy loads it from the
/// store.
#[tokio::test]
async fn values_nested_to_the_limit_cross_the_bus_and_load_from_the_store() {
    use recordsync_core::json::{MAX_DEPTH, depth};
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let addrs = nodes(3, store, Arc::new(InProcessBus::new())).await;
    let name = unique("deep");
    let (mut writer, mut watcher) = writer_and_watcher(&addrs, &name).await;
    writer
        .write(
            support::patch(&name, 2, "a", &support::nested_json(MAX_DEPTH - 1)),
            Some("2"),
        )
        .await;
    let m = watcher
        .recv_action_in(&[RecordAction::Patch, RecordAction::Update])
        .await;
    assert_eq!(
        m.action,
        RecordAction::Patch as i32,
        "applied, not refetched"
    );
    assert_eq!(m.version, Some(2));
    assert_eq!(depth(&json_value(&m.data)), MAX_DEPTH - 1);
    let mut fresh = RawClient::connect(&addrs[2]).await;
    let read = fresh.subscribe(&name).await;
    assert_eq!(read.version, Some(2));
    assert_eq!(depth(&json_value(&read.data)), MAX_DEPTH);
}

/// Issue 12: "a record created by subscribing is missing on the other nodes". It must be
/// stored before its subscriber is told it exists (deepstream stores it before it
/// answers), so that from then on every node finds it: HEAD 0 and READ `{}` at version 0
/// (a deepstream client's `has`, `head` and `snapshot`). Node 2's commits are held back
/// here, so its create stays on its way to the store for as long as the test likes.
#[tokio::test]
async fn a_record_created_by_subscribing_is_stored_before_its_subscriber_hears_of_it() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (gated, mut gates) = Gated::wrap(store.clone());
    let (addrs, _links) = severable_nodes([store, gated]).await;
    let name = unique("subscribed");
    let mut subscriber = RawClient::connect(&addrs[1]).await;
    let mut reader = RawClient::connect(&addrs[0]).await;

    gates.commits.send_replace(true);
    subscriber
        .send(RecordMessage {
            names: vec![name.clone()],
            correlation_id: Some("s".into()),
            ..RecordMessage::new(RecordAction::SubscribeCreateAndRead)
        })
        .await;
    let ack = subscriber.recv_record().await;
    assert_eq!(ack.is_ack, Some(true), "{ack:?}");
    gates.holding("commit").await;
    assert!(
        subscriber
            .try_recv(Duration::from_millis(300))
            .await
            .is_none(),
        "the subscriber heard of the record before it was stored"
    );
    gates.commits.send_replace(false);
    let read = subscriber.recv_action(RecordAction::ReadResponse).await;
    assert_eq!((read.version, json_value(&read.data)), (Some(0), json!({})));

    assert_eq!(reader.head(&name).await, 0, "HEAD on node 1");
    reader
        .send(RecordMessage::named(RecordAction::Read, name.as_str()))
        .await;
    let snapshot = reader.recv_record().await;
    assert_eq!(
        (
            snapshot.action,
            snapshot.version,
            json_value(&snapshot.data)
        ),
        (RecordAction::ReadResponse as i32, Some(0), json!({})),
        "READ on node 1"
    );
}
