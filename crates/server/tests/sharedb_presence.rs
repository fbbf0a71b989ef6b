//! Black-box tests of ShareDB presence (`p`, `ps`, `pu`, `pr`): a real server on an
//! ephemeral port (and two nodes over Redis or NATS), raw ShareDB clients sending what
//! the npm `sharedb` 7 client sends.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

#[path = "support/severable.rs"]
mod severable;
mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use recordsync_bus::{Bus, connect};
use recordsync_server::{Config, Server, StorageKind};
use recordsync_store::{MemoryStore, Store};
use severable::Severable;
use support::sharedb::{JSON0_URI, ShareDbClient};

async fn start(config: Config) -> String {
    support::start_server(Config {
        storage: StorageKind::Memory,
        ..config
    })
    .await
}

async fn one_node() -> String {
    start(Config::default()).await
}

/// `n` nodes sharing one store and `bus` (each with its own link, as given).
async fn nodes(buses: Vec<Arc<dyn Bus>>, heartbeat: Duration) -> Vec<String> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut addrs = Vec::new();
    for bus in buses {
        let config = Config {
            port: 0,
            storage: StorageKind::Memory,
            cluster_heartbeat_interval: heartbeat,
            ..Config::default()
        };
        let server = Server::bind_with(config, store.clone(), Some(bus))
            .await
            .expect("node binds");
        addrs.push(server.local_addr().to_string());
        tokio::spawn(server.run(std::future::pending()));
    }
    addrs
}

fn channel(name: &str) -> String {
    use std::hash::{BuildHasher, RandomState};
    format!(
        "{name}-{}",
        RandomState::new().hash_one(std::time::SystemTime::now())
    )
}

/// Receives until a message that `pred` accepts; panics on an error reply or a timeout.
async fn recv_where(c: &mut ShareDbClient, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        let m = c.recv().await;
        assert!(m.get("error").is_none(), "an error: {m}");
        if pred(&m) {
            return m;
        }
    }
}

/// Subscribes to `ch` and returns the reply.
async fn ps(c: &mut ShareDbClient, ch: &str, seq: u64) -> Value {
    c.send(json!({"a": "ps", "ch": ch, "seq": seq})).await;
    recv_where(c, |m| m["a"] == "ps").await
}

/// Publishes presence `id` and returns the acknowledgement.
async fn publish(c: &mut ShareDbClient, ch: &str, id: &str, p: Value, pv: u64) -> Value {
    c.send(json!({"a": "p", "ch": ch, "id": id, "p": p, "pv": pv}))
        .await;
    recv_where(c, |m| m["a"] == "p" && m["id"] == id && m["pv"] == pv).await
}

/// Receives until presence `id`'s message and returns it.
async fn presence_of(c: &mut ShareDbClient, id: &str) -> Value {
    recv_where(c, |m| m["a"] == "p" && m["id"] == id).await
}

#[tokio::test]
async fn presence_reaches_the_other_subscribers_with_src_and_the_ack_echoes_it() {
    let addr = one_node().await;
    let ch = channel("room");
    let mut a = ShareDbClient::connect(&addr).await;
    let mut b = ShareDbClient::connect(&addr).await;
    let mut c = ShareDbClient::connect(&addr).await;
    assert_eq!(
        ps(&mut a, &ch, 1).await,
        json!({"a": "ps", "ch": ch, "seq": 1})
    );
    ps(&mut b, &ch, 1).await;
    ps(&mut c, &ch, 1).await;

    let ack = publish(&mut a, &ch, "cursor", json!({"x": 1}), 0).await;
    let expected =
        json!({"a": "p", "ch": ch, "src": a.src, "id": "cursor", "p": {"x": 1}, "pv": 0});
    assert_eq!(ack, expected);
    assert_eq!(presence_of(&mut b, "cursor").await, expected);
    assert_eq!(presence_of(&mut c, "cursor").await, expected);

    publish(&mut a, &ch, "cursor", json!({"x": 2}), 1).await;
    assert_eq!(presence_of(&mut b, "cursor").await["p"], json!({"x": 2}));
    publish(&mut a, &ch, "cursor", Value::Null, 2).await;
    assert_eq!(presence_of(&mut c, "cursor").await["pv"], 1, "in order");
    let cleared = presence_of(&mut c, "cursor").await;
    assert_eq!(
        (cleared["p"].clone(), cleared["pv"].clone()),
        (Value::Null, json!(2))
    );
    // The sender hears nothing of its own (beyond the `pr`s of the later subscribers).
    while let Some(m) = a.try_recv(Duration::from_millis(300)).await {
        assert_eq!(m["a"], "pr", "{m}");
    }
}

#[tokio::test]
async fn a_late_subscriber_makes_the_holders_send_again_and_an_unsubscribed_one_hears_nothing() {
    let addr = one_node().await;
    let ch = channel("late");
    let mut holder = ShareDbClient::connect(&addr).await;
    let mut late = ShareDbClient::connect(&addr).await;
    ps(&mut holder, &ch, 1).await;
    publish(&mut holder, &ch, "h", json!("here"), 0).await;

    assert_eq!(
        ps(&mut late, &ch, 7).await,
        json!({"a": "ps", "ch": ch, "seq": 7})
    );
    let asked = recv_where(&mut holder, |m| m["a"] == "pr").await;
    assert_eq!(asked, json!({"a": "pr", "ch": ch}));
    // The holder's client sends again, as the npm client does on `pr`.
    publish(&mut holder, &ch, "h", json!("here"), 1).await;
    assert_eq!(presence_of(&mut late, "h").await["p"], "here");
    // A second subscribe asks nobody.
    ps(&mut late, &ch, 8).await;
    holder.expect_quiet().await;

    late.send(json!({"a": "pu", "ch": ch, "seq": 9})).await;
    assert_eq!(late.recv().await, json!({"a": "pu", "ch": ch, "seq": 9}));
    publish(&mut holder, &ch, "h", json!("gone?"), 2).await;
    late.expect_quiet().await;
}

#[tokio::test]
async fn a_closed_connection_is_cleared_only_in_the_channels_it_subscribed_to() {
    let addr = one_node().await;
    let (joined, visited) = (channel("joined"), channel("visited"));
    let mut leaver = ShareDbClient::connect(&addr).await;
    let mut watcher = ShareDbClient::connect(&addr).await;
    ps(&mut watcher, &joined, 1).await;
    ps(&mut watcher, &visited, 2).await;
    ps(&mut leaver, &joined, 1).await;
    publish(&mut leaver, &joined, "one", json!(1), 0).await;
    publish(&mut leaver, &joined, "two", json!(2), 5).await;
    publish(&mut leaver, &joined, "gone", json!(3), 0).await;
    publish(&mut leaver, &joined, "gone", Value::Null, 1).await;
    publish(&mut leaver, &visited, "ghost", json!(true), 0).await;
    let src = leaver.src.clone();
    for _ in 0..6 {
        watcher.recv().await;
    }
    drop(leaver);

    let mut cleared = Vec::new();
    while let Some(m) = watcher.try_recv(Duration::from_millis(500)).await {
        assert_eq!((m["a"].as_str(), &m["p"]), (Some("p"), &Value::Null), "{m}");
        assert_eq!(m["ch"], joined.as_str(), "{m}");
        assert_eq!(m["src"], src.as_str(), "{m}");
        cleared.push((
            m["id"].as_str().unwrap().to_owned(),
            m["pv"].as_u64().unwrap(),
        ));
    }
    cleared.sort();
    assert_eq!(cleared, vec![("one".to_owned(), 0), ("two".to_owned(), 5)]);
}

#[tokio::test]
async fn unsubscribing_clears_the_connections_presences_in_that_channel() {
    let addr = one_node().await;
    let ch = channel("pu");
    let mut a = ShareDbClient::connect(&addr).await;
    let mut b = ShareDbClient::connect(&addr).await;
    ps(&mut a, &ch, 1).await;
    ps(&mut b, &ch, 1).await;
    publish(&mut a, &ch, "x", json!(1), 0).await;
    presence_of(&mut b, "x").await;
    a.send(json!({"a": "pu", "ch": ch, "seq": 2})).await;
    let cleared = presence_of(&mut b, "x").await;
    assert_eq!(
        (cleared["p"].clone(), cleared["pv"].clone()),
        (Value::Null, json!(0))
    );
}

#[tokio::test]
async fn document_presence_is_refused_as_sharedb_refuses_it_for_json0() {
    let addr = one_node().await;
    let mut a = ShareDbClient::connect(&addr).await;
    let mut b = ShareDbClient::connect(&addr).await;
    a.create("notes", "n1", Some(0), json!({"text": "hi"}))
        .await;
    ps(&mut a, "notes.n1", 1).await;
    ps(&mut b, "notes.n1", 1).await;
    let request = json!({"a": "p", "ch": "notes.n1", "id": "cur", "p": {"index": 1}, "pv": 0,
                         "c": "notes", "d": "n1", "v": 1, "t": JSON0_URI});
    a.send(request.clone()).await;
    let reply = a.error().await;
    let mut expected = request;
    expected["error"] = json!({
        "code": "ERR_TYPE_DOES_NOT_SUPPORT_PRESENCE",
        "message": format!("Type does not support presence: {JSON0_URI}"),
    });
    assert_eq!(reply, expected);
    b.expect_quiet().await;
}

#[tokio::test]
async fn oversized_presence_and_floods_are_refused_and_the_connection_goes_on() {
    let addr = one_node().await;
    let ch = channel("flood");
    let mut a = ShareDbClient::connect(&addr).await;
    let mut b = ShareDbClient::connect(&addr).await;
    ps(&mut b, &ch, 1).await;

    let big = "x".repeat(20_000);
    a.send(json!({"a": "p", "ch": ch, "id": "big", "p": big, "pv": 0}))
        .await;
    let reply = a.error().await;
    assert_eq!(
        reply["error"]["code"], "ERR_MESSAGE_BADLY_FORMED",
        "{reply}"
    );
    let long = "c".repeat(2000);
    a.send(json!({"a": "ps", "ch": long, "seq": 1})).await;
    assert_eq!(a.error().await["error"]["code"], "ERR_MESSAGE_BADLY_FORMED");

    // A flood: everything past the budget is refused, and not passed on.
    let sent = 1000;
    let started = std::time::Instant::now();
    for pv in 0..sent {
        a.send_text(&json!({"a": "p", "ch": ch, "id": "f", "p": pv, "pv": pv}).to_string())
            .await;
    }
    let (mut acked, mut refused) = (0, 0);
    for _ in 0..sent {
        let m = a.recv().await;
        if m.get("error").is_some() {
            assert_eq!(m["error"]["code"], "ERR_PRESENCE_LIMIT_EXCEEDED", "{m}");
            refused += 1;
        } else {
            acked += 1;
        }
    }
    // The budget: a burst of 200, then 100 a second (two were spent above).
    let allowed = 200.0 + 100.0 * started.elapsed().as_secs_f64();
    assert!(refused > 0 && acked > 0, "acked {acked}, refused {refused}");
    assert!(
        f64::from(acked) <= allowed,
        "the flood was bounded: acked {acked} of {sent}, at most {allowed} allowed"
    );
    let mut delivered = 0;
    while let Some(m) = b.try_recv(Duration::from_millis(300)).await {
        assert_eq!(m["id"], "f");
        delivered += 1;
    }
    assert_eq!(delivered, acked, "only acknowledged presence goes out");

    // The connection and the server go on.
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.send(json!({"a": "pp"})).await;
    assert_eq!(a.recv().await, json!({"a": "pp"}));
    publish(&mut a, &ch, "after", json!(1), 0).await;
}

const PERMISSIONS: &str = r#"
record:
  "*":
    create: true
    write: true
    read: true
    delete: true
  hidden/*:
    read: false
  quiet/*:
    write: "data === null || data.loud !== true"
"#;

#[tokio::test]
async fn valve_rules_decide_subscribing_as_a_read_and_publishing_as_a_write() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("permissions.yml"), PERMISSIONS).unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(
        &path,
        "permission:\n  type: config\n  options:\n    permissions: fileLoad(permissions.yml)\n",
    )
    .unwrap();
    let (config, _) = Config::from_file(&path).expect("config loads");
    let addr = start(config).await;
    let mut a = ShareDbClient::connect(&addr).await;
    let mut b = ShareDbClient::connect(&addr).await;

    a.send(json!({"a": "ps", "ch": "hidden/room", "seq": 1}))
        .await;
    let refused = a.error().await;
    assert_eq!(
        refused["error"]["code"], "ERR_SNAPSHOT_READS_REJECTED",
        "{refused}"
    );

    ps(&mut b, "quiet/room", 1).await;
    a.send(json!({"a": "p", "ch": "quiet/room", "id": "x", "p": {"loud": true}, "pv": 0}))
        .await;
    let refused = a.error().await;
    assert_eq!(
        refused["error"]["code"], "ERR_OP_SUBMIT_REJECTED",
        "{refused}"
    );
    b.expect_quiet().await;
    publish(&mut a, "quiet/room", "x", json!({"loud": false}), 1).await;
    assert_eq!(presence_of(&mut b, "x").await["p"], json!({"loud": false}));
    publish(&mut a, "quiet/room", "x", Value::Null, 2).await;
    assert_eq!(presence_of(&mut b, "x").await["p"], Value::Null);
}

/// Presence from node 1 reaches node 2's subscribers, a late subscriber on node 2 makes
/// node 1's holders send again, and a connection closing on node 1 is cleared on node 2.
async fn presence_crosses_nodes(bus: Arc<dyn Bus>) {
    let addrs = nodes(vec![bus.clone(), bus], Duration::from_secs(1)).await;
    let ch = channel("cluster");
    let mut one = ShareDbClient::connect(&addrs[0]).await;
    let mut two = ShareDbClient::connect(&addrs[1]).await;
    ps(&mut one, &ch, 1).await;
    publish(&mut one, &ch, "c1", json!({"at": 1}), 0).await;

    ps(&mut two, &ch, 1).await;
    assert_eq!(
        recv_where(&mut one, |m| m["a"] == "pr").await,
        json!({"a": "pr", "ch": ch}),
        "node 2's subscribe asks node 1's holders"
    );
    let ack = publish(&mut one, &ch, "c1", json!({"at": 2}), 1).await;
    // (The first publish may still be on its way over the bus, and arrive first.)
    let got = recv_where(&mut two, |m| m["id"] == "c1" && m["pv"] == 1).await;
    assert_eq!(got, ack);

    publish(&mut two, &ch, "c2", json!("two"), 0).await;
    assert_eq!(presence_of(&mut one, "c2").await["src"], two.src.as_str());

    drop(one);
    let cleared = presence_of(&mut two, "c1").await;
    assert_eq!(
        (cleared["p"].clone(), cleared["pv"].clone()),
        (Value::Null, json!(1))
    );
}

#[tokio::test]
async fn presence_crosses_nodes_over_redis() {
    presence_crosses_nodes(connect("redis://127.0.0.1:6379").await.unwrap()).await;
}

#[tokio::test]
async fn presence_crosses_nodes_over_nats() {
    presence_crosses_nodes(connect("nats://127.0.0.1:4222").await.unwrap()).await;
}

/// A node cut off from the bus falls silent: after three heartbeats the others clear its
/// presences for their subscribers. Once it is back, its subscribers are asked to send
/// their presences again, and the others see them again.
#[tokio::test]
async fn a_silent_nodes_presences_are_cleared_on_the_others() {
    let bus = connect("redis://127.0.0.1:6379").await.unwrap();
    let (link, sever) = Severable::link(bus.clone());
    let addrs = nodes(vec![link, bus], Duration::from_millis(100)).await;
    let ch = channel("silent");
    let mut one = ShareDbClient::connect(&addrs[0]).await;
    let mut two = ShareDbClient::connect(&addrs[1]).await;
    ps(&mut one, &ch, 1).await;
    ps(&mut two, &ch, 1).await;
    recv_where(&mut one, |m| m["a"] == "pr").await;
    publish(&mut one, &ch, "c1", json!(1), 4).await;
    assert_eq!(presence_of(&mut two, "c1").await["p"], 1);

    sever.send_replace(true);
    let cleared = tokio::time::timeout(Duration::from_secs(3), presence_of(&mut two, "c1"))
        .await
        .expect("cleared within a few heartbeats");
    assert_eq!(
        (cleared["p"].clone(), cleared["pv"].clone()),
        (Value::Null, json!(4))
    );
    assert_eq!(cleared["src"], one.src.as_str());

    sever.send_replace(false);
    assert_eq!(
        recv_where(&mut one, |m| m["a"] == "pr").await,
        json!({"a": "pr", "ch": ch}),
        "back on the bus, node 1 asks its own subscribers again"
    );
    publish(&mut one, &ch, "c1", json!(1), 5).await;
    assert_eq!(presence_of(&mut two, "c1").await["pv"], 5);
}
