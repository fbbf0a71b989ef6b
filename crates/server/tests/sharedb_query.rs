//! Black-box tests of ShareDB's queries (`qf`, `qs`, `qu`) with a raw ShareDB client on
//! an ephemeral port: fetch queries in order and counted, live queries that insert,
//! remove and move as ShareDB does (arraydiff's moves), `$count` updates, a deepstream
//! write that brings a document into a live query, a live query resumed with its results
//! after a reconnect, and a document the user may not read that is never announced.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

mod support;

use serde_json::{Value, json};

use recordsync_server::{Config, Server, StorageKind};
use support::sharedb::ShareDbClient;
use support::{RawClient, update};

async fn server() -> String {
    support::memory_server().await
}

/// Creates each `(id, data)` of collection `c`.
async fn create_all(client: &mut ShareDbClient, c: &str, docs: &[(&str, Value)]) {
    for (d, data) in docs {
        client.create(c, d, Some(0), data.clone()).await;
    }
}

/// Sends `qf`/`qs` and returns the reply (panics on an error reply).
async fn query(client: &mut ShareDbClient, a: &str, id: u64, c: &str, q: Value) -> Value {
    client.send(json!({"a": a, "id": id, "c": c, "q": q})).await;
    let reply = client.recv().await;
    assert_eq!(
        (reply["a"].as_str(), reply.get("error")),
        (Some(a), None),
        "{reply}"
    );
    reply
}

fn ids(reply: &Value) -> Vec<&str> {
    reply["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["d"].as_str().unwrap())
        .collect()
}

/// The next message that is not an op (ops on result documents interleave with diffs).
async fn next_query_message(client: &mut ShareDbClient) -> Value {
    loop {
        let m = client.recv().await;
        if m["a"] != "op" {
            return m;
        }
    }
}

#[tokio::test]
async fn fetch_queries_answer_matching_documents_in_order_and_count_them() {
    let addr = server().await;
    let mut a = ShareDbClient::connect(&addr).await;
    create_all(
        &mut a,
        "people",
        &[
            ("ann", json!({"age": 30, "tags": ["x"]})),
            ("bob", json!({"age": 25, "tags": []})),
            ("cat", json!({"age": 41, "tags": ["x", "y"]})),
        ],
    )
    .await;
    // A deleted document is never an answer.
    a.create("people", "gone", Some(0), json!({"age": 50}))
        .await;
    let seq = a
        .submit("people", "gone", Some(1), json!({"del": true}))
        .await;
    a.ack(seq).await;

    let reply = query(&mut a, "qf", 1, "people", json!({"tags": "x"})).await;
    assert_eq!(
        reply,
        json!({"a": "qf", "id": 1, "data": [
            {"d": "ann", "v": 1, "data": {"age": 30, "tags": ["x"]}},
            {"d": "cat", "v": 1, "data": {"age": 41, "tags": ["x", "y"]}},
        ]})
    );
    let sorted = query(&mut a, "qf", 2, "people", json!({"$sort": {"age": -1}})).await;
    assert_eq!(ids(&sorted), ["cat", "ann", "bob"]);
    let window = query(
        &mut a,
        "qf",
        3,
        "people",
        json!({"$sort": {"age": 1}, "$skip": 1, "$limit": 1}),
    )
    .await;
    assert_eq!(ids(&window), ["ann"]);
    let count = query(
        &mut a,
        "qf",
        4,
        "people",
        json!({"age": {"$gt": 26}, "$count": true}),
    )
    .await;
    assert_eq!(count, json!({"a": "qf", "id": 4, "data": [], "extra": 2}));

    // A malformed query is refused with what is wrong; the connection carries on.
    a.send(json!({"a": "qf", "id": 5, "c": "people", "q": {"age": {"$bogus": 1}}}))
        .await;
    let refused = a.recv().await;
    assert_eq!(
        refused["error"]["code"], "ERR_MESSAGE_BADLY_FORMED",
        "{refused}"
    );
    assert_eq!(refused["id"], 5);
    let again = query(&mut a, "qf", 6, "people", json!({"age": 25})).await;
    assert_eq!(ids(&again), ["bob"]);
}

#[tokio::test]
async fn an_unsorted_live_query_inserts_at_the_end_removes_and_forwards_ops() {
    let addr = server().await;
    let mut a = ShareDbClient::connect(&addr).await;
    let mut b = ShareDbClient::connect(&addr).await;
    create_all(
        &mut a,
        "live",
        &[
            ("a1", json!({"age": 31})),
            ("a2", json!({"age": 10})),
            ("a3", json!({"age": 45})),
        ],
    )
    .await;
    let reply = query(&mut b, "qs", 7, "live", json!({"age": {"$gt": 30}})).await;
    assert_eq!(ids(&reply), ["a1", "a3"]);

    // a2 starts matching: inserted at the end with its snapshot; its op is not sent.
    a.edit("live", "a2", 1, json!([{"p": ["age"], "na": 50}]))
        .await;
    assert_eq!(
        b.recv().await,
        json!({"a": "q", "id": 7, "diff": [
            {"type": "insert", "index": 2, "values": [{"d": "a2", "v": 2, "data": {"age": 60}}]}
        ]})
    );
    // An op on a result document that keeps it matching: the op alone.
    a.edit("live", "a1", 1, json!([{"p": ["x"], "oi": true}]))
        .await;
    let op = b.recv().await;
    assert_eq!(
        (&op["a"], &op["c"], &op["d"], &op["v"], &op["op"]),
        (
            &json!("op"),
            &json!("live"),
            &json!("a1"),
            &json!(1),
            &json!([{"p": ["x"], "oi": true}])
        ),
        "{op}"
    );
    b.expect_quiet().await;
    // a1 stops matching: its op, then its removal from where it was.
    a.edit("live", "a1", 2, json!([{"p": ["age"], "na": -20}]))
        .await;
    let op = b.recv().await;
    assert_eq!((op["a"].as_str(), op["v"].as_u64()), (Some("op"), Some(2)));
    assert_eq!(
        b.recv().await,
        json!({"a": "q", "id": 7, "diff": [{"type": "remove", "index": 0, "howMany": 1}]})
    );
    // A change to a document outside the results: nothing at all (b follows only results).
    a.edit("live", "a1", 3, json!([{"p": ["age"], "na": 1}]))
        .await;
    b.expect_quiet().await;
    // A delete removes; a new matching document is inserted at the end.
    let seq = a.submit("live", "a3", Some(1), json!({"del": true})).await;
    a.ack(seq).await;
    assert_eq!(b.recv().await["del"], true);
    assert_eq!(
        b.recv().await,
        json!({"a": "q", "id": 7, "diff": [{"type": "remove", "index": 0, "howMany": 1}]})
    );
    a.create("live", "a5", Some(0), json!({"age": 99})).await;
    assert_eq!(
        b.recv().await,
        json!({"a": "q", "id": 7, "diff": [
            {"type": "insert", "index": 1, "values": [{"d": "a5", "v": 1, "data": {"age": 99}}]}
        ]})
    );

    // qu ends it: nothing more, not even ops on what were its results.
    b.send(json!({"a": "qu", "id": 7})).await;
    assert_eq!(b.recv().await, json!({"a": "qu", "id": 7}));
    a.create("live", "a6", Some(0), json!({"age": 77})).await;
    a.edit("live", "a5", 1, json!([{"p": ["age"], "na": 1}]))
        .await;
    b.expect_quiet().await;
}

#[tokio::test]
async fn a_sorted_live_query_sends_arraydiff_moves_and_a_window_sends_remove_and_insert() {
    let addr = server().await;
    let mut a = ShareDbClient::connect(&addr).await;
    let mut b = ShareDbClient::connect(&addr).await;
    create_all(
        &mut a,
        "sorted",
        &[
            ("s1", json!({"n": 10})),
            ("s2", json!({"n": 20})),
            ("s3", json!({"n": 30})),
            ("s4", json!({"n": 40})),
        ],
    )
    .await;
    let all = query(&mut b, "qs", 1, "sorted", json!({"$sort": {"n": 1}})).await;
    assert_eq!(ids(&all), ["s1", "s2", "s3", "s4"]);
    let top = query(
        &mut b,
        "qs",
        2,
        "sorted",
        json!({"$sort": {"n": -1}, "$limit": 2}),
    )
    .await;
    assert_eq!(ids(&top), ["s4", "s3"]);

    // s1 10 -> 35: [s1 s2 s3 s4] -> [s2 s3 s1 s4] is arraydiff's move of [s2 s3] to 0.
    a.edit("sorted", "s1", 1, json!([{"p": ["n"], "na": 25}]))
        .await;
    let mut diffs = std::collections::HashMap::new();
    while diffs.len() < 2 {
        let m = next_query_message(&mut b).await;
        diffs.insert(m["id"].as_u64().unwrap(), m["diff"].clone());
    }
    assert_eq!(
        diffs[&1],
        json!([{"type": "move", "from": 1, "to": 0, "howMany": 2}])
    );
    assert_eq!(
        diffs[&2],
        json!([
            {"type": "remove", "index": 1, "howMany": 1},
            {"type": "insert", "index": 1, "values": [{"d": "s1", "v": 2, "data": {"n": 35}}]}
        ])
    );
    // s4 40 -> 1: one document moves from the end to the front.
    a.edit("sorted", "s4", 1, json!([{"p": ["n"], "na": -39}]))
        .await;
    let mut diffs = std::collections::HashMap::new();
    while diffs.len() < 2 {
        let m = next_query_message(&mut b).await;
        diffs.insert(m["id"].as_u64().unwrap(), m["diff"].clone());
    }
    assert_eq!(
        diffs[&1],
        json!([{"type": "move", "from": 3, "to": 0, "howMany": 1}])
    );
    assert_eq!(
        diffs[&2],
        json!([
            {"type": "remove", "index": 0, "howMany": 1},
            {"type": "insert", "index": 1, "values": [{"d": "s3", "v": 1, "data": {"n": 30}}]}
        ])
    );
}

#[tokio::test]
async fn a_live_count_follows_creates_changes_and_deletes() {
    let addr = server().await;
    let mut a = ShareDbClient::connect(&addr).await;
    let mut b = ShareDbClient::connect(&addr).await;
    create_all(
        &mut a,
        "count",
        &[("k1", json!({"on": true})), ("k2", json!({"on": false}))],
    )
    .await;
    let reply = query(
        &mut b,
        "qs",
        3,
        "count",
        json!({"on": true, "$count": true}),
    )
    .await;
    assert_eq!(reply, json!({"a": "qs", "id": 3, "data": [], "extra": 1}));
    a.create("count", "k3", Some(0), json!({"on": true})).await;
    assert_eq!(b.recv().await, json!({"a": "q", "id": 3, "extra": 2}));
    a.edit(
        "count",
        "k1",
        1,
        json!([{"p": ["on"], "od": true, "oi": false}]),
    )
    .await;
    assert_eq!(b.recv().await, json!({"a": "q", "id": 3, "extra": 1}));
    // A change that leaves the count as it was: nothing.
    a.edit("count", "k2", 1, json!([{"p": ["x"], "oi": 1}]))
        .await;
    b.expect_quiet().await;
    let seq = a.submit("count", "k3", Some(1), json!({"del": true})).await;
    a.ack(seq).await;
    assert_eq!(b.recv().await, json!({"a": "q", "id": 3, "extra": 0}));
}

#[tokio::test]
async fn a_deepstream_write_brings_a_record_into_a_live_query() {
    let addr = server().await;
    let mut share = ShareDbClient::connect(&addr).await;
    let reply = query(
        &mut share,
        "qs",
        1,
        "books",
        json!({"genre": "sf", "$sort": {"year": 1}}),
    )
    .await;
    assert_eq!(ids(&reply), Vec::<&str>::new());
    let mut ds = RawClient::connect(&addr).await;
    // A whole-value write to a record nobody created: its create, then the value.
    ds.write(
        update("books/dune", -1, r#"{"genre":"sf","year":1965}"#),
        None,
    )
    .await;
    let m = next_query_message(&mut share).await;
    assert_eq!(m["a"], "q", "{m}");
    assert_eq!(
        m["diff"][0]["values"][0]["data"],
        json!({"genre": "sf", "year": 1965}),
        "{m}"
    );
    assert_eq!(m["diff"][0]["type"], "insert");
    // Later deepstream writes reach the query subscriber as json0 ops.
    ds.write(
        update("books/dune", 2, r#"{"genre":"sf","year":1966}"#),
        None,
    )
    .await;
    let op = share.recv().await;
    assert_eq!(
        (op["a"].as_str(), op["d"].as_str()),
        (Some("op"), Some("dune")),
        "{op}"
    );
}

#[tokio::test]
async fn a_live_query_resumed_with_its_results_sends_missed_ops_one_diff_then_the_reply() {
    let addr = server().await;
    let mut a = ShareDbClient::connect(&addr).await;
    create_all(
        &mut a,
        "resub",
        &[
            ("m1", json!({"on": true, "n": 1})),
            ("m2", json!({"on": false})),
            ("m3", json!({"on": true})),
        ],
    )
    .await;
    a.edit("resub", "m1", 1, json!([{"p": ["n"], "na": 10}]))
        .await;
    a.edit(
        "resub",
        "m2",
        1,
        json!([{"p": ["on"], "od": false, "oi": true}]),
    )
    .await;
    a.edit(
        "resub",
        "m3",
        1,
        json!([{"p": ["on"], "od": true, "oi": false}]),
    )
    .await;
    // A client that had [m1 m3] at version 1 each.
    let mut b = ShareDbClient::connect(&addr).await;
    b.send(
        json!({"a": "qs", "id": 4, "c": "resub", "q": {"on": true}, "r": [["m1", 1], ["m3", 1]]}),
    )
    .await;
    let m1 = b.recv().await;
    assert_eq!(
        (m1["d"].as_str(), m1["v"].as_u64()),
        (Some("m1"), Some(1)),
        "{m1}"
    );
    let m3 = b.recv().await;
    assert_eq!(
        (m3["d"].as_str(), m3["v"].as_u64()),
        (Some("m3"), Some(1)),
        "{m3}"
    );
    assert_eq!(
        b.recv().await,
        json!({"a": "q", "id": 4, "diff": [
            {"type": "remove", "index": 1, "howMany": 1},
            {"type": "insert", "index": 1, "values": [{"d": "m2", "v": 2, "data": {"on": true}}]}
        ]})
    );
    assert_eq!(b.recv().await, json!({"a": "qs", "id": 4}));
    // Still live.
    a.edit(
        "resub",
        "m3",
        2,
        json!([{"p": ["on"], "od": false, "oi": true}]),
    )
    .await;
    assert_eq!(
        b.recv().await["diff"][0],
        json!({"type": "insert", "index": 2, "values": [{"d": "m3", "v": 3, "data": {"on": true}}]})
    );
}

#[tokio::test]
async fn a_document_the_user_may_not_read_is_never_returned_or_announced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("permissions.yml"),
        "record:\n  \"*\":\n    create: true\n    write: true\n    read: true\n    delete: true\n  vault/h*:\n    create: true\n    write: true\n    read: false\n    delete: true\n",
    )
    .unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(
        &path,
        "permission:\n  type: config\n  options:\n    permissions: fileLoad(permissions.yml)\n",
    )
    .unwrap();
    let (mut config, _) = Config::from_file(&path).expect("config loads");
    config.storage = StorageKind::Memory;
    let addr = support::start_server(config).await;

    let mut a = ShareDbClient::connect(&addr).await;
    let mut b = ShareDbClient::connect(&addr).await;
    create_all(
        &mut a,
        "vault",
        &[("open1", json!({"k": 1})), ("hidden1", json!({"k": 1}))],
    )
    .await;
    let fetched = query(&mut b, "qf", 1, "vault", json!({"k": 1})).await;
    assert_eq!(ids(&fetched), ["open1"]);
    let counted = query(&mut b, "qf", 2, "vault", json!({"k": 1, "$count": true})).await;
    assert_eq!(counted["extra"], 1);
    let live = query(&mut b, "qs", 3, "vault", json!({"k": 2})).await;
    assert_eq!(ids(&live), Vec::<&str>::new());
    let sorted = query(&mut b, "qs", 4, "vault", json!({"k": 2, "$sort": {"k": 1}})).await;
    assert_eq!(ids(&sorted), Vec::<&str>::new());
    // The hidden document starts matching: neither query announces it.
    a.edit("vault", "hidden1", 1, json!([{"p": ["k"], "na": 1}]))
        .await;
    b.expect_quiet().await;
    // A readable one does, in both.
    a.edit("vault", "open1", 1, json!([{"p": ["k"], "na": 1}]))
        .await;
    let mut announced = Vec::new();
    for _ in 0..2 {
        let m = next_query_message(&mut b).await;
        announced.push((
            m["id"].as_u64().unwrap(),
            m["diff"][0]["values"][0]["d"].clone(),
        ));
    }
    announced.sort_by_key(|(id, _)| *id);
    assert_eq!(announced, [(3, json!("open1")), (4, json!("open1"))]);
    b.expect_quiet().await;
}

/// A sorted window with a document the user may not read in it comes back short; when
/// that hidden document stops matching, the window moves on and the next readable
/// document comes in (the change is outside the results, yet it changes them). Changes
/// to documents past the window, matching or not, change nothing.
#[tokio::test]
async fn a_hidden_document_leaving_a_window_lets_the_next_one_in() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("permissions.yml"),
        "record:\n  \"*\":\n    create: true\n    write: true\n    read: true\n    delete: true\n  win/h*:\n    create: true\n    write: true\n    read: false\n    delete: true\n",
    )
    .unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(
        &path,
        "permission:\n  type: config\n  options:\n    permissions: fileLoad(permissions.yml)\n",
    )
    .unwrap();
    let (mut config, _) = Config::from_file(&path).expect("config loads");
    config.storage = StorageKind::Memory;
    let addr = support::start_server(config).await;

    let mut a = ShareDbClient::connect(&addr).await;
    let mut b = ShareDbClient::connect(&addr).await;
    create_all(
        &mut a,
        "win",
        &[
            ("h1", json!({"k": 1, "n": 1})),
            ("o2", json!({"k": 1, "n": 2})),
            ("o3", json!({"k": 1, "n": 3})),
            ("o4", json!({"k": 1, "n": 4})),
            ("x5", json!({"k": 0, "n": 5})),
        ],
    )
    .await;
    let q = json!({"k": 1, "$sort": {"n": 1}, "$limit": 2});
    let live = query(&mut b, "qs", 1, "win", q).await;
    assert_eq!(
        ids(&live),
        ["o2"],
        "h1 fills the window's first place, hidden"
    );
    // Past the window: o4 changes but stays past it; x5 stays out of the filter.
    a.edit("win", "o4", 1, json!([{"p": ["n"], "na": 10}]))
        .await;
    a.edit("win", "x5", 1, json!([{"p": ["n"], "na": 1}])).await;
    b.expect_quiet().await;
    // h1 leaves the filter: the window is now [o2, o3].
    a.edit("win", "h1", 1, json!([{"p": ["k"], "na": 1}])).await;
    let m = next_query_message(&mut b).await;
    assert_eq!(
        m,
        json!({"a": "q", "id": 1, "diff": [
            {"type": "insert", "index": 1, "values": [{"d": "o3", "v": 1, "data": {"k": 1, "n": 3}}]}
        ]})
    );
    b.expect_quiet().await;
}

/// Two nodes on one store and one bus: a live query on node 1 follows documents created
/// and edited through node 2 (the engine's collection watch hears other nodes'
/// announcements, for records node 1 does not hold too), and the ops on its results.
#[tokio::test]
async fn a_live_query_follows_changes_made_on_another_node() {
    use std::sync::Arc;

    use recordsync_bus::{Bus, InProcessBus};
    use recordsync_store::{MemoryStore, Store};

    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
    let mut addrs = Vec::new();
    for _ in 0..2 {
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
    let mut on_1 = ShareDbClient::connect(&addrs[0]).await;
    let mut on_2 = ShareDbClient::connect(&addrs[1]).await;
    on_2.create("far", "x", Some(0), json!({"n": 5})).await;
    let unsorted = query(&mut on_1, "qs", 1, "far", json!({"n": {"$gt": 3}})).await;
    assert_eq!(ids(&unsorted), ["x"]);
    let sorted = query(&mut on_1, "qs", 2, "far", json!({"$sort": {"n": -1}})).await;
    assert_eq!(ids(&sorted), ["x"]);

    // A document node 1 has never held: created on node 2.
    on_2.create("far", "y", Some(0), json!({"n": 9})).await;
    let mut diffs = std::collections::HashMap::new();
    while diffs.len() < 2 {
        let m = next_query_message(&mut on_1).await;
        diffs.insert(m["id"].as_u64().unwrap(), m["diff"].clone());
    }
    assert_eq!(
        diffs[&1],
        json!([{"type": "insert", "index": 1, "values": [{"d": "y", "v": 1, "data": {"n": 9}}]}])
    );
    assert_eq!(
        diffs[&2],
        json!([{"type": "insert", "index": 0, "values": [{"d": "y", "v": 1, "data": {"n": 9}}]}])
    );
    // Ops on node 2 to a result: node 1's client gets each op once (though two queries
    // show the document), and the diffs.
    on_2.edit("far", "x", 1, json!([{"p": ["n"], "na": 10}]))
        .await;
    let op = on_1.recv().await;
    assert_eq!(
        (&op["a"], &op["d"], &op["v"]),
        (&json!("op"), &json!("x"), &json!(1)),
        "{op}"
    );
    assert_eq!(
        on_1.recv().await,
        json!({"a": "q", "id": 2, "diff": [{"type": "move", "from": 1, "to": 0, "howMany": 1}]})
    );
    on_2.edit("far", "x", 2, json!([{"p": ["n"], "na": -14}]))
        .await;
    let op = on_1.recv().await;
    assert_eq!(
        (&op["a"], &op["d"], &op["v"]),
        (&json!("op"), &json!("x"), &json!(2)),
        "{op}"
    );
    let mut diffs = std::collections::HashMap::new();
    while diffs.len() < 2 {
        let m = next_query_message(&mut on_1).await;
        diffs.insert(m["id"].as_u64().unwrap(), m["diff"].clone());
    }
    assert_eq!(
        diffs[&1],
        json!([{"type": "remove", "index": 0, "howMany": 1}])
    );
    assert_eq!(
        diffs[&2],
        json!([{"type": "move", "from": 1, "to": 0, "howMany": 1}])
    );
    on_1.expect_quiet().await;
}

/// A connection runs a bounded number of live queries: past the limit a `qs` is refused
/// with a clear error (the connection carries on), and ending one frees its place.
#[tokio::test]
async fn a_flood_of_live_queries_is_bounded() {
    // The server's `query_live::MAX_LIVE_QUERIES`.
    let limit = 1_000;
    let addr = server().await;
    let mut b = ShareDbClient::connect(&addr).await;
    for id in 1..=limit {
        b.send(json!({"a": "qs", "id": id, "c": "flood", "q": {"n": id}}))
            .await;
    }
    for id in 1..=limit {
        let reply = b.recv().await;
        assert_eq!(
            (&reply["a"], &reply["id"]),
            (&json!("qs"), &json!(id)),
            "{reply}"
        );
    }
    b.send(json!({"a": "qs", "id": limit + 1, "c": "flood", "q": {}}))
        .await;
    let refused = b.recv().await;
    assert_eq!(refused["id"], limit + 1);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("live queries"),
        "{refused}"
    );
    // Replacing a running query (same id) is no new one; ending one frees a place.
    query(&mut b, "qs", 1, "flood", json!({"n": 0})).await;
    b.send(json!({"a": "qu", "id": 2})).await;
    assert_eq!(b.recv().await, json!({"a": "qu", "id": 2}));
    query(&mut b, "qs", limit + 1, "flood", json!({})).await;
    // Every query is still live.
    let mut a = ShareDbClient::connect(&addr).await;
    a.create("flood", "d", Some(0), json!({"n": 5})).await;
    let mut heard = std::collections::BTreeSet::new();
    while heard.len() < 2 {
        let m = next_query_message(&mut b).await;
        heard.insert(m["id"].as_u64().unwrap());
    }
    assert_eq!(heard, [5, limit + 1].into_iter().collect());
    b.expect_quiet().await;
}
