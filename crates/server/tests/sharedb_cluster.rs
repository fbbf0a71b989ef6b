//! ShareDB clients on different nodes of a cluster (issue 14, item 6): three nodes on one
//! PostgreSQL schema, joined by Redis or NATS; clients on node 1 and node 3 edit one
//! document concurrently, each on the version it last saw, and every op is transformed
//! against the ops committed on the other node: nothing is lost and every node serves the
//! same result.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

mod support;

use std::time::Duration;

use serde_json::{Value, json};

use recordsync_server::{Config, StorageKind};
use recordsync_store::postgres::testing::TestSchema;
use support::sharedb::ShareDbClient;

/// Starts three nodes on a fresh schema joined by `bus`; returns their addresses and the
/// schema (dropped with it).
async fn three_nodes(bus: &str) -> (Vec<String>, TestSchema) {
    let schema = TestSchema::new("sharedb_cluster");
    let mut addrs = Vec::new();
    for _ in 0..3 {
        let config = Config {
            storage: StorageKind::Postgres(schema.url()),
            cluster: Some(bus.to_owned()),
            ..Config::default()
        };
        addrs.push(support::start_server(config).await);
    }
    (addrs, schema)
}

/// Submits each op of `ops` on the version `base` (so every one after the first is stale
/// by the ops the other client commits meanwhile) and returns the acknowledged versions.
async fn submit_all(client: &mut ShareDbClient, doc: &str, base: u64, ops: Vec<Value>) -> Vec<u64> {
    let mut seqs = Vec::new();
    for op in ops {
        seqs.push(
            client
                .submit("notes", doc, Some(base), json!({"op": op}))
                .await,
        );
    }
    let mut versions = Vec::new();
    for seq in seqs {
        let (_, ack) = client.ack(seq).await;
        versions.push(ack["v"].as_u64().expect("an ack names its version"));
    }
    versions
}

/// Fetches the document from `addr` until its version is `version` (the other nodes learn
/// of the last commit over the bus), returning `{v, data}`.
async fn fetch_at(addr: &str, doc: &str, version: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut reader = ShareDbClient::connect(addr).await;
        let snapshot = reader.fetch("notes", doc).await;
        if snapshot["v"] == version || tokio::time::Instant::now() > deadline {
            return snapshot;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn concurrent_edits_converge(bus: &str) {
    let (addrs, _schema) = three_nodes(bus).await;
    let doc = format!("d{}", std::process::id());
    let mut one = ShareDbClient::connect(&addrs[0]).await;
    let mut three = ShareDbClient::connect(&addrs[2]).await;
    assert_eq!(
        one.create(
            "notes",
            &doc,
            Some(0),
            json!({"n": 0, "items": [], "text": ""})
        )
        .await,
        0
    );

    // Both clients edit from version 1 at once: list inserts at the front, string inserts
    // at the start, number adds. Each op after a client's first is stale by everything
    // committed since version 1, on either node.
    let ops = |who: &str| -> Vec<Value> {
        (0..20)
            .map(|i| {
                json!([
                    {"p": ["items", 0], "li": format!("{who}{i}")},
                    {"p": ["text", 0], "si": who},
                    {"p": ["n"], "na": 1}
                ])
            })
            .collect()
    };
    let (a, b) = tokio::join!(
        submit_all(&mut one, &doc, 1, ops("a")),
        submit_all(&mut three, &doc, 1, ops("b"))
    );

    // Every op was committed once, each at its own version.
    let mut versions: Vec<u64> = a.iter().chain(&b).copied().collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=40).collect::<Vec<u64>>(), "a {a:?}, b {b:?}");

    // Every node serves the same document, holding every insert and every add.
    let snapshots = [
        fetch_at(&addrs[0], &doc, 41).await,
        fetch_at(&addrs[1], &doc, 41).await,
        fetch_at(&addrs[2], &doc, 41).await,
    ];
    assert_eq!(snapshots[0]["v"], 41, "{}", snapshots[0]);
    assert_eq!(snapshots[0], snapshots[1]);
    assert_eq!(snapshots[0], snapshots[2]);
    let data = &snapshots[0]["data"];
    assert_eq!(data["n"], 40);
    let mut items: Vec<String> = data["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    items.sort();
    let mut expected: Vec<String> = (0..20)
        .flat_map(|i| [format!("a{i}"), format!("b{i}")])
        .collect();
    expected.sort();
    assert_eq!(items, expected);
    let text = data["text"].as_str().unwrap();
    assert_eq!(text.len(), 40);
    assert_eq!(text.matches('a').count(), 20);
    assert_eq!(text.matches('b').count(), 20);
}

#[tokio::test]
async fn concurrent_edits_on_two_nodes_converge_over_redis() {
    concurrent_edits_converge("redis://127.0.0.1:6379").await;
}

#[tokio::test]
async fn concurrent_edits_on_two_nodes_converge_over_nats() {
    concurrent_edits_converge("nats://127.0.0.1:4222").await;
}

/// Submits a create of each of `docs` (on version 0) at once, then returns each one's
/// answer: "ack" or the error code.
async fn create_all(client: &mut ShareDbClient, docs: &[String], who: &str) -> Vec<String> {
    let mut seqs = Vec::new();
    for doc in docs {
        let body = json!({"create": {"type": support::sharedb::JSON0_URI, "data": {"by": who}}});
        seqs.push(client.submit("notes", doc, Some(0), body).await);
    }
    let mut answers = std::collections::HashMap::new();
    while answers.len() < seqs.len() {
        let m = client.recv().await;
        let own_ack =
            m["a"] == "op" && m["src"] == client.src.as_str() && m.get("create").is_none();
        if own_ack || m.get("error").is_some() {
            let seq = m["seq"].as_u64().expect("an answer names its seq");
            let answer = match m.get("error") {
                Some(e) => e["code"].as_str().unwrap().to_owned(),
                None => "ack".to_owned(),
            };
            answers.insert(seq, answer);
        }
    }
    seqs.into_iter().map(|s| answers[&s].clone()).collect()
}

/// Clients on nodes 1 and 3 create the same documents at once: for each, one create is
/// acknowledged and the other answered as ShareDB answers a create that lost the race
/// (ERR_DOC_ALREADY_CREATED), never with an unknown error.
async fn concurrent_creates_on_two_nodes(bus: &str) {
    let (addrs, _schema) = three_nodes(bus).await;
    let mut one = ShareDbClient::connect(&addrs[0]).await;
    let mut three = ShareDbClient::connect(&addrs[2]).await;
    let docs: Vec<String> = (0..20)
        .map(|i| format!("c{}-{i}", std::process::id()))
        .collect();
    let (a, b) = tokio::join!(
        create_all(&mut one, &docs, "one"),
        create_all(&mut three, &docs, "three")
    );
    for (i, (a, b)) in a.iter().zip(&b).enumerate() {
        let mut pair = [a.as_str(), b.as_str()];
        pair.sort_unstable();
        assert_eq!(pair, ["ERR_DOC_ALREADY_CREATED", "ack"], "doc {i}");
        let winner = if a == "ack" { "one" } else { "three" };
        let snapshot = fetch_at(&addrs[1], &docs[i], 1).await;
        assert_eq!(snapshot["data"], json!({"by": winner}), "doc {i}");
    }
}

#[tokio::test]
async fn concurrent_creates_on_two_nodes_over_redis() {
    concurrent_creates_on_two_nodes("redis://127.0.0.1:6379").await;
}

/// A subscriber on another node is told of each op with its writer's `src` and `seq`, as
/// subscribers on the writer's node are (ShareDB's client tells its own ops by them).
async fn ops_from_another_node_keep_src_and_seq(bus: &str) {
    let (addrs, _schema) = three_nodes(bus).await;
    let doc = format!("o{}", std::process::id());
    let mut one = ShareDbClient::connect(&addrs[0]).await;
    let mut three = ShareDbClient::connect(&addrs[2]).await;
    three.subscribe("notes", &doc).await;
    assert_eq!(one.create("notes", &doc, Some(0), json!({"n": 0})).await, 0);
    assert_eq!(
        one.edit("notes", &doc, 1, json!([{"p": ["n"], "na": 1}]))
            .await,
        1
    );
    let seq = one
        .submit("notes", &doc, Some(2), json!({"del": true}))
        .await;
    one.ack(seq).await;
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let m = three.recv().await;
        assert!(m.get("error").is_none(), "{m}");
        if m["a"] == "op" {
            let kind = ["create", "op", "del"]
                .into_iter()
                .find(|k| m.get(*k).is_some())
                .unwrap_or("?");
            seen.push((kind, m["v"].clone(), m["src"].clone(), m["seq"].clone()));
        }
    }
    let src = json!(one.src);
    assert_eq!(
        seen,
        vec![
            ("create", json!(0), src.clone(), json!(1)),
            ("op", json!(1), src.clone(), json!(2)),
            ("del", json!(2), src, json!(3)),
        ]
    );
}

#[tokio::test]
async fn ops_from_another_node_keep_src_and_seq_over_redis() {
    ops_from_another_node_keep_src_and_seq("redis://127.0.0.1:6379").await;
}

#[tokio::test]
async fn ops_from_another_node_keep_src_and_seq_over_nats() {
    ops_from_another_node_keep_src_and_seq("nats://127.0.0.1:4222").await;
}
