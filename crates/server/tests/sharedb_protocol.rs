//! Black-box tests of the ShareDB front door: a real server on an ephemeral port, driven
//! by a raw ShareDB protocol client (JSON over WebSocket, as the npm `sharedb` 7 client
//! sends it).

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

mod support;

use std::time::Duration;

use serde_json::{Value, json};

use recordsync_server::{Config, StorageKind};
use support::sharedb::{JSON0_URI, ShareDbClient};

/// Starts a server on a free port with in-memory storage; returns its address.
async fn start(adjust: impl FnOnce(&mut Config)) -> String {
    let mut config = Config {
        port: 0,
        storage: StorageKind::Memory,
        ..Config::default()
    };
    adjust(&mut config);
    support::start_server(config).await
}

async fn server() -> String {
    start(|_| {}).await
}

fn code(reply: &Value) -> &str {
    reply["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code: {reply}"))
}

#[tokio::test]
async fn the_handshake_names_protocol_json0_and_a_stable_src() {
    let addr = server().await;
    let (mut c, init) = ShareDbClient::connect_raw(&addr).await;
    assert_eq!(init["protocol"], 1);
    assert_eq!(init["protocolMinor"], 2);
    assert_eq!(init["type"], JSON0_URI);
    let first = init["id"].as_str().unwrap().to_owned();
    assert_eq!(first.len(), 32, "{init}");
    c.send(json!({"a": "hs", "id": null, "protocol": 1, "protocolMinor": 2}))
        .await;
    let hs = c.recv().await;
    assert_eq!(
        hs,
        json!({"a": "hs", "protocol": 1, "protocolMinor": 2, "id": first, "type": JSON0_URI})
    );
    c.send(json!({"a": "pp"})).await;
    assert_eq!(c.recv().await, json!({"a": "pp"}));

    // A reconnecting client keeps the src it names.
    let again = ShareDbClient::connect_as(&addr, Some(&first)).await;
    assert_eq!(again.src, first);
    let other = ShareDbClient::connect(&addr).await;
    assert_ne!(other.src, first, "each new connection gets its own src");

    let (mut old, _) = ShareDbClient::connect_raw(&addr).await;
    old.send(json!({"a": "hs", "protocol": 2, "protocolMinor": 0}))
        .await;
    assert_eq!(
        code(&old.recv().await),
        "ERR_PROTOCOL_VERSION_NOT_SUPPORTED"
    );
}

#[tokio::test]
async fn a_new_document_is_version_0_and_create_makes_version_1() {
    let addr = server().await;
    let mut c = ShareDbClient::connect(&addr).await;
    assert_eq!(c.fetch("books", "b1").await, json!({"v": 0, "type": null}));
    // Numbers and key order come back as written.
    let src = c.src.clone();
    c.send_text(&format!(
        r#"{{"a":"op","c":"books","d":"b1","v":0,"src":"{src}","seq":1,"create":{{"type":"json0","data":{{"title":"Dune","n":1.50,"big":123456789012345678901234567890}}}}}}"#
    ))
    .await;
    assert_eq!(
        c.recv().await,
        json!({"a": "op", "c": "books", "d": "b1", "src": src, "seq": 1, "v": 0})
    );
    c.send_text(r#"{"a":"f","c":"books","d":"b1"}"#).await;
    let raw = c.recv().await.to_string();
    assert!(
        raw.contains(r#""data":{"v":1,"data":{"title":"Dune","n":1.50,"big":123456789012345678901234567890}}"#),
        "{raw}"
    );
    c.seq = 2;

    let v = c
        .edit("books", "b1", 1, json!([{"p": ["n"], "na": 1}]))
        .await;
    assert_eq!(v, 1);
    assert_eq!(c.fetch("books", "b1").await["v"], 2);
    // A create without a version (a document never fetched) takes the latest.
    assert_eq!(c.create("books", "b2", None, json!({})).await, 0);
}

#[tokio::test]
async fn ops_reach_other_subscribers_in_order_but_not_their_submitter() {
    let addr = server().await;
    let mut a = ShareDbClient::connect(&addr).await;
    let mut b = ShareDbClient::connect(&addr).await;
    assert_eq!(
        a.subscribe("notes", "n1").await,
        json!({"v": 0, "type": null})
    );
    assert_eq!(
        b.subscribe("notes", "n1").await,
        json!({"v": 0, "type": null})
    );

    let seq = a
        .submit(
            "notes",
            "n1",
            Some(0),
            json!({"create": {"type": "json0", "data": {"list": []}}}),
        )
        .await;
    let (before, ack) = a.ack(seq).await;
    assert!(before.is_empty(), "no op of its own: {before:?}");
    assert_eq!(
        ack,
        json!({"a": "op", "c": "notes", "d": "n1", "src": a.src, "seq": seq, "v": 0})
    );
    let create = b.recv().await;
    assert_eq!(
        create,
        json!({"a": "op", "c": "notes", "d": "n1", "v": 0, "src": a.src, "seq": seq, "create": {"type": JSON0_URI, "data": {"list": []}}})
    );
    for i in 0..10u64 {
        let op = json!([{"p": ["list", i], "li": i}]);
        assert_eq!(a.edit("notes", "n1", i + 1, op.clone()).await, i + 1);
        let seen = b.recv().await;
        assert_eq!(
            (seen["v"].as_u64(), &seen["op"]),
            (Some(i + 1), &op),
            "{seen}"
        );
    }
    a.expect_quiet().await;
    assert_eq!(
        b.fetch("notes", "n1").await,
        json!({"v": 11, "data": {"list": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}})
    );
    // Unsubscribed: nothing more.
    b.send(json!({"a": "u", "c": "notes", "d": "n1"})).await;
    assert_eq!(b.recv().await, json!({"a": "u", "c": "notes", "d": "n1"}));
    a.edit("notes", "n1", 11, json!([{"p": ["x"], "oi": 1}]))
        .await;
    b.expect_quiet().await;
}

#[tokio::test]
async fn a_stale_op_is_transformed_and_the_ops_it_missed_come_before_its_ack() {
    let addr = server().await;
    let mut a = ShareDbClient::connect(&addr).await;
    let mut b = ShareDbClient::connect(&addr).await;
    a.create(
        "docs",
        "d",
        Some(0),
        json!({"items": [1, 2, 3], "text": "hello"}),
    )
    .await;
    b.subscribe("docs", "d").await;

    // a (not subscribed) and b both edit version 1.
    let first = json!([{"p": ["items", 0], "li": 0}, {"p": ["text", 0], "si": "oh "}]);
    assert_eq!(a.edit("docs", "d", 1, first.clone()).await, 1);
    assert_eq!(b.recv().await["op"], first);
    // b deletes the `1` it saw at index 0 and appends to the text, on version 1.
    let seq = b
        .submit(
            "docs",
            "d",
            Some(1),
            json!({"op": [{"p": ["items", 0], "ld": 1}, {"p": ["text", 5], "si": "!"}]}),
        )
        .await;
    let (_, ack) = b.ack(seq).await;
    assert_eq!(ack["v"], 2, "transformed onto version 2");
    // a, not subscribed, submits on version 1 again: it is sent the two ops it missed
    // (its own first one included, from the journal, with its origin), then its ack.
    let seq = a
        .submit(
            "docs",
            "d",
            Some(1),
            json!({"op": [{"p": ["items", 3], "li": 4}]}),
        )
        .await;
    let (missed, ack) = a.ack(seq).await;
    assert_eq!(ack["v"], 3);
    let versions: Vec<_> = missed.iter().map(|m| m["v"].as_u64().unwrap()).collect();
    assert_eq!(versions, vec![1, 2], "{missed:?}");
    assert_eq!(missed[0]["src"], a.src.as_str());
    assert_eq!(
        missed[1]["op"],
        json!([{"p": ["items", 1], "ld": 1}, {"p": ["text", 8], "si": "!"}])
    );
    assert_eq!(
        a.fetch("docs", "d").await,
        json!({"v": 4, "data": {"items": [0, 2, 3, 4], "text": "oh hello!"}})
    );
    // b heard a's ops, transformed as the server applied them.
    assert_eq!(b.recv().await["op"], json!([{"p": ["items", 3], "li": 4}]));
}

#[tokio::test]
async fn a_resubmitted_op_is_acknowledged_once_and_applied_once() {
    let addr = server().await;
    let mut a = ShareDbClient::connect(&addr).await;
    let src = a.src.clone();
    a.create("docs", "r", Some(0), json!({"n": 0})).await;
    let op = json!({"a": "op", "c": "docs", "d": "r", "v": 1, "src": src, "seq": 7, "op": [{"p": ["n"], "na": 5}]});
    a.send(op.clone()).await;
    assert_eq!(a.recv().await["v"], 1);
    // Another client writes, then `a` reconnects without having read its ack, and sends
    // the op again under its src.
    let mut b = ShareDbClient::connect(&addr).await;
    b.edit("docs", "r", 2, json!([{"p": ["m"], "oi": true}]))
        .await;
    drop(a);
    let mut again = ShareDbClient::connect_as(&addr, Some(&src)).await;
    again.send(op.clone()).await;
    let ack = again.recv().await;
    assert_eq!(
        ack,
        json!({"a": "op", "c": "docs", "d": "r", "src": src, "seq": 7, "v": 1}),
        "acknowledged as the version it was applied to"
    );
    assert_eq!(
        again.fetch("docs", "r").await,
        json!({"v": 3, "data": {"n": 5, "m": true}})
    );
    // A create sent again is acknowledged too, not refused.
    let create = json!({"a": "op", "c": "docs", "d": "r", "v": null, "src": "someone else", "seq": 1, "create": {"type": JSON0_URI, "data": {"n": 0}}});
    let mut first = ShareDbClient::connect_as(&addr, Some(&src)).await;
    first.send(json!({"a": "op", "c": "docs", "d": "q", "v": null, "src": src, "seq": 1, "create": {"type": JSON0_URI, "data": {}}})).await;
    assert_eq!(first.recv().await["v"], 0);
    first.send(json!({"a": "op", "c": "docs", "d": "q", "v": null, "src": src, "seq": 1, "create": {"type": JSON0_URI, "data": {}}})).await;
    assert_eq!(
        first.recv().await,
        json!({"a": "op", "c": "docs", "d": "q", "src": src, "seq": 1, "v": 0})
    );
    // ...but a create by someone else is.
    first.send(create).await;
    let refused = first.error().await;
    assert_eq!(code(&refused), "ERR_DOC_ALREADY_CREATED");
}

#[tokio::test]
async fn fetch_and_subscribe_from_a_version_stream_the_ops_since() {
    let addr = server().await;
    let mut a = ShareDbClient::connect(&addr).await;
    a.create("docs", "s", Some(0), json!({"n": 0})).await;
    for v in 1..4 {
        a.edit("docs", "s", v, json!([{"p": ["n"], "na": 1}])).await;
    }
    let mut b = ShareDbClient::connect(&addr).await;
    b.send(json!({"a": "f", "c": "docs", "d": "s", "v": 2}))
        .await;
    let ops = [b.recv().await, b.recv().await];
    assert_eq!(
        ops.iter().map(|o| o["v"].clone()).collect::<Vec<_>>(),
        vec![json!(2), json!(3)]
    );
    assert_eq!(ops[0]["op"], json!([{"p": ["n"], "na": 1}]));
    assert_eq!(ops[0]["src"], a.src.as_str(), "ops keep their origin");
    assert_eq!(b.recv().await, json!({"a": "f", "c": "docs", "d": "s"}));
    // From version 0: the create first.
    b.send(json!({"a": "f", "c": "docs", "d": "s", "v": 0}))
        .await;
    let create = b.recv().await;
    assert_eq!(
        create["create"],
        json!({"type": JSON0_URI, "data": {"n": 0}})
    );
    for v in 1..4 {
        assert_eq!(b.recv().await["v"], v);
    }
    assert_eq!(b.recv().await, json!({"a": "f", "c": "docs", "d": "s"}));

    // Subscribe from 3: op 3, the reply, then live ops.
    b.send(json!({"a": "s", "c": "docs", "d": "s", "v": 3}))
        .await;
    assert_eq!(b.recv().await["v"], 3);
    assert_eq!(b.recv().await, json!({"a": "s", "c": "docs", "d": "s"}));
    a.edit("docs", "s", 4, json!([{"p": ["n"], "na": 10}]))
        .await;
    let live = b.recv().await;
    assert_eq!(
        (live["v"].as_u64(), &live["op"]),
        (Some(4), &json!([{"p": ["n"], "na": 10}]))
    );

    // Bulk forms: ids give snapshots, versions stream ops then echo `b`.
    b.send(json!({"a": "bf", "c": "docs", "b": ["s", "none"]}))
        .await;
    assert_eq!(
        b.recv().await,
        json!({"a": "bf", "c": "docs", "data": {"s": {"v": 5, "data": {"n": 13}}, "none": {"v": 0, "type": null}}})
    );
    b.send(json!({"a": "bs", "c": "docs", "b": {"s": 4}})).await;
    assert_eq!(b.recv().await["v"], 4);
    assert_eq!(
        b.recv().await,
        json!({"a": "bs", "c": "docs", "b": {"s": 4}})
    );
    b.send(json!({"a": "bu", "c": "docs", "b": ["s"]})).await;
    assert_eq!(b.recv().await, json!({"a": "bu", "c": "docs", "b": ["s"]}));
    a.edit("docs", "s", 5, json!([{"p": ["n"], "na": 1}])).await;
    b.expect_quiet().await;
    let mut c = ShareDbClient::connect(&addr).await;
    c.send(json!({"a": "bs", "c": "docs", "b": ["s", "t"]}))
        .await;
    assert_eq!(
        c.recv().await,
        json!({"a": "bs", "c": "docs", "data": {"s": {"v": 6, "data": {"n": 14}}, "t": {"v": 0, "type": null}}})
    );
    a.create("docs", "t", Some(0), json!([])).await;
    assert_eq!(c.recv().await["create"]["data"], json!([]));
}

#[tokio::test]
async fn delete_keeps_the_versions_going_and_a_recreate_continues_them() {
    let addr = server().await;
    let mut a = ShareDbClient::connect(&addr).await;
    let mut b = ShareDbClient::connect(&addr).await;
    b.subscribe("docs", "del").await;
    a.create("docs", "del", Some(0), json!({"a": 1})).await;
    a.edit("docs", "del", 1, json!([{"p": ["a"], "od": 1, "oi": 2}]))
        .await;
    let seq = a.submit("docs", "del", Some(2), json!({"del": true})).await;
    assert_eq!(a.ack(seq).await.1["v"], 2);
    b.recv().await;
    b.recv().await;
    assert_eq!(
        b.recv().await,
        json!({"a": "op", "c": "docs", "d": "del", "v": 2, "src": a.src, "seq": seq, "del": true})
    );
    assert_eq!(a.fetch("docs", "del").await, json!({"v": 3, "type": null}));
    // An edit of the deleted document, and ones ahead of it, are refused.
    a.submit(
        "docs",
        "del",
        Some(3),
        json!({"op": [{"p": ["a"], "na": 1}]}),
    )
    .await;
    assert_eq!(code(&a.error().await), "ERR_DOC_DOES_NOT_EXIST");
    a.submit(
        "docs",
        "del",
        Some(9),
        json!({"op": [{"p": ["a"], "na": 1}]}),
    )
    .await;
    assert_eq!(
        code(&a.error().await),
        "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT"
    );
    // One built before the delete meets it.
    a.submit(
        "docs",
        "del",
        Some(2),
        json!({"op": [{"p": ["a"], "na": 1}]}),
    )
    .await;
    assert_eq!(code(&a.error().await), "ERR_DOC_WAS_DELETED");
    // The subscription follows the document into its next life.
    assert_eq!(
        a.create("docs", "del", Some(3), json!({"again": true}))
            .await,
        3
    );
    let recreated = b.recv().await;
    assert_eq!(
        (recreated["v"].as_u64(), &recreated["create"]["data"]),
        (Some(3), &json!({"again": true}))
    );
    assert_eq!(
        a.fetch("docs", "del").await,
        json!({"v": 4, "data": {"again": true}})
    );
    // History reads across the delete.
    for (v, expected) in [
        (
            0,
            json!({"a": "nf", "id": 1, "v": 0, "type": null, "m": null}),
        ),
        (
            1,
            json!({"a": "nf", "id": 1, "v": 1, "type": JSON0_URI, "data": {"a": 1}, "m": null}),
        ),
        (
            2,
            json!({"a": "nf", "id": 1, "v": 2, "type": JSON0_URI, "data": {"a": 2}, "m": null}),
        ),
        (
            3,
            json!({"a": "nf", "id": 1, "v": 3, "type": null, "m": null}),
        ),
        (
            4,
            json!({"a": "nf", "id": 1, "v": 4, "type": JSON0_URI, "data": {"again": true}, "m": null}),
        ),
    ] {
        a.send(json!({"a": "nf", "id": 1, "c": "docs", "d": "del", "v": v}))
            .await;
        assert_eq!(a.recv().await, expected, "version {v}");
    }
    a.send(json!({"a": "nf", "id": 2, "c": "docs", "d": "del", "v": 5}))
        .await;
    let newer = a.recv().await;
    assert_eq!(
        (newer["id"].as_u64(), code(&newer)),
        (Some(2), "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT")
    );
    // Creates of an existing document, of another type, or without data are refused.
    a.submit(
        "docs",
        "del",
        Some(4),
        json!({"create": {"type": JSON0_URI, "data": {}}}),
    )
    .await;
    assert_eq!(code(&a.error().await), "ERR_DOC_ALREADY_CREATED");
    a.submit(
        "docs",
        "rt",
        Some(0),
        json!({"create": {"type": "http://sharejs.org/types/rich-text/v1", "data": []}}),
    )
    .await;
    // As ShareDB: a type it does not know is dropped before the op is checked.
    let other = a.error().await;
    assert_eq!(code(&other), "ERR_OT_OP_BADLY_FORMED");
    assert_eq!(other["error"]["message"], "Missing create type", "{other}");
}

#[tokio::test]
async fn snapshots_at_a_time_read_the_history() {
    let addr = server().await;
    let mut a = ShareDbClient::connect(&addr).await;
    let before = now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    a.create("docs", "t", Some(0), json!({"n": 1})).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    a.edit("docs", "t", 1, json!([{"p": ["n"], "na": 1}])).await;
    for (ts, v, data) in [
        (json!(before), 0, None),
        (json!(between), 1, Some(json!({"n": 1}))),
        (json!(now_ms() + 1000), 2, Some(json!({"n": 2}))),
        (Value::Null, 2, Some(json!({"n": 2}))),
    ] {
        a.send(json!({"a": "nt", "id": 9, "c": "docs", "d": "t", "ts": ts}))
            .await;
        let reply = a.recv().await;
        assert_eq!(
            (reply["a"].as_str(), reply["v"].as_u64()),
            (Some("nt"), Some(v)),
            "{reply}"
        );
        assert_eq!(reply.get("data").cloned(), data, "{reply}");
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn bad_input_gets_sharedb_errors_and_harms_nobody_else() {
    let addr = start(|c| c.max_message_size = 64 * 1024).await;
    let mut bystander = ShareDbClient::connect(&addr).await;
    bystander
        .create("docs", "safe", Some(0), json!({"n": 0}))
        .await;
    bystander.subscribe("docs", "safe").await;
    let mut bad = ShareDbClient::connect(&addr).await;

    // (A frame that is not JSON closes the connection: sharedb_conformance.rs.)
    bad.send(json!({"a": "nope", "c": "x"})).await;
    let unknown = bad.recv().await;
    assert_eq!(
        (unknown["a"].as_str(), code(&unknown)),
        (Some("nope"), "ERR_MESSAGE_BADLY_FORMED")
    );
    bad.send(json!({"a": "f", "c": "x", "d": 5})).await;
    assert_eq!(bad.recv().await["error"]["message"], "Invalid id");
    // An op that does not apply, or is no json0 op at all.
    bad.submit(
        "docs",
        "safe",
        Some(1),
        json!({"op": [{"p": ["n", 3], "ld": 1}]}),
    )
    .await;
    let refused = bad.error().await;
    assert_eq!(code(&refused), "ERR_OT_OP_NOT_APPLIED");
    assert_eq!(
        refused["seq"],
        bad.seq - 1,
        "the request is echoed: {refused}"
    );
    bad.submit("docs", "safe", Some(1), json!({"op": {"not": "a list"}}))
        .await;
    assert_eq!(code(&bad.error().await), "ERR_OT_OP_BADLY_FORMED");
    bad.submit("docs", "safe", Some(1), json!({"del": 1})).await;
    assert_eq!(code(&bad.error().await), "ERR_OT_OP_BADLY_FORMED");
    // A value nested deeper than records may be is refused before it is parsed whole.
    let deep = format!(
        r#"{{"a":"op","c":"docs","d":"safe","v":1,"src":"x","seq":1,"op":[{{"p":["d"],"oi":{}1{}}}]}}"#,
        "[".repeat(600),
        "]".repeat(600)
    );
    bad.send_text(&deep).await;
    let refused = bad.recv().await;
    assert_eq!(code(&refused), "ERR_MESSAGE_BADLY_FORMED");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nested deeper"),
        "{refused}"
    );
    // A malformed query is refused with what is wrong; presence is served
    // (sharedb_presence.rs).
    bad.send(json!({"a": "qf", "id": 1, "c": "docs", "q": {"$sort": 1}}))
        .await;
    let query = bad.recv().await;
    assert_eq!(
        (query["id"].as_u64(), code(&query)),
        (Some(1), "ERR_MESSAGE_BADLY_FORMED")
    );
    bad.send(json!({"a": "ps", "ch": "room", "seq": 1})).await;
    assert_eq!(bad.recv().await, json!({"a": "ps", "ch": "room", "seq": 1}));
    // Still served.
    assert_eq!(bad.fetch("docs", "safe").await["v"], 1);

    // A huge op: over maxMessageSize, told and closed (1009).
    let huge = "x".repeat(70 * 1024);
    bad.submit(
        "docs",
        "safe",
        Some(1),
        json!({"op": [{"p": ["s"], "oi": huge}]}),
    )
    .await;
    let told = bad.error().await;
    assert!(
        told["error"]["message"]
            .as_str()
            .unwrap()
            .contains("maxMessageSize"),
        "{told}"
    );
    assert_eq!(bad.expect_close_code().await, 1009);

    // The bystander saw none of it and still works.
    bystander.expect_quiet().await;
    assert_eq!(
        bystander
            .edit("docs", "safe", 1, json!([{"p": ["n"], "na": 1}]))
            .await,
        1
    );
}

#[tokio::test]
async fn a_flood_of_ops_is_taken_one_at_a_time_and_others_go_on() {
    let addr = server().await;
    let mut bystander = ShareDbClient::connect(&addr).await;
    bystander
        .create("docs", "f", Some(0), json!({"n": 0}))
        .await;
    let mut flood = ShareDbClient::connect(&addr).await;
    // Ops on the latest version (no `v`), sent without reading a single answer.
    const OPS: u64 = 3000;
    for seq in 1..=OPS {
        let op = json!({"a": "op", "c": "docs", "d": "f", "src": flood.src, "seq": seq, "op": [{"p": ["n"], "na": 1}]});
        flood.send(op).await;
    }
    // Meanwhile the server answers others at once.
    let started = std::time::Instant::now();
    bystander.fetch("docs", "f").await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Every op is acknowledged once, in order, each one version after the one before.
    for seq in 1..=OPS {
        let ack = flood.recv().await;
        assert_eq!(
            (ack["seq"].as_u64(), ack["v"].as_u64()),
            (Some(seq), Some(seq)),
            "{ack}"
        );
    }
    assert_eq!(
        bystander.fetch("docs", "f").await,
        json!({"v": OPS + 1, "data": {"n": OPS}})
    );
}

#[tokio::test]
async fn a_subscriber_that_does_not_read_is_cut_off_and_others_go_on() {
    let addr = start(|c| c.outbound_queue_limit = 64).await;
    let chunk = "x".repeat(30 * 1024);
    let mut writer = ShareDbClient::connect(&addr).await;
    writer
        .create("docs", "big", Some(0), json!({"s": chunk}))
        .await;
    let mut deaf = ShareDbClient::connect(&addr).await;
    deaf.subscribe("docs", "big").await;
    let mut reader = ShareDbClient::connect(&addr).await;
    reader.subscribe("docs", "big").await;
    // Ops of 60 KiB each (the old value and the new): far more than the socket buffers and
    // 64 queued frames hold.
    let replace = json!([{"p": ["s"], "od": chunk, "oi": chunk}]);
    for v in 1..=500u64 {
        let seq = writer
            .submit("docs", "big", Some(v), json!({"op": replace}))
            .await;
        writer.ack(seq).await;
        assert_eq!(reader.recv().await["v"], v);
    }
    // Cut off: a close (1008) behind the frames it did not read, or a reset. A client
    // that were not cut off would read ops until the timeout, and fail here.
    let code = deaf.expect_close_code().await;
    assert!(
        matches!(code, 1008 | 0),
        "cut off for not reading, not {code}"
    );
    assert_eq!(writer.fetch("docs", "big").await["v"], 501);
}
