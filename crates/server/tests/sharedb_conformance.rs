//! Black-box tests of what the ShareDB front door answers exactly as ShareDB 7's server
//! does (codes, messages, echoed requests, closing), each found by the real client's
//! interop suite (`interop/test/sharedb/errors.test.mjs`) and kept here so the Rust suite
//! catches a regression too.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

mod support;

use serde_json::{Value, json};

use support::sharedb::{JSON0_URI, ShareDbClient};

async fn server() -> String {
    support::memory_server().await
}

fn error_of(reply: &Value) -> (&str, &str) {
    (
        reply["error"]["code"].as_str().unwrap_or_default(),
        reply["error"]["message"].as_str().unwrap_or_default(),
    )
}

#[tokio::test]
async fn a_create_of_an_existing_doc_has_sharedbs_three_messages() {
    let addr = server().await;
    let mut a = ShareDbClient::connect(&addr).await;
    a.create("books", "b1", Some(0), json!({"by": "a"})).await;
    let mut b = ShareDbClient::connect(&addr).await;
    let create = json!({"create": {"type": JSON0_URI, "data": {}}});
    // Behind (built on v0), at the current version (v1), without a version.
    for (v, message) in [
        (Some(0), "Document was created remotely"),
        (Some(1), "Document already exists"),
        (None, "Invalid op submitted. Document already created"),
    ] {
        let seq = b.submit("books", "b1", v, create.clone()).await;
        let reply = b.error().await;
        assert_eq!(reply["seq"], seq, "{reply}");
        assert_eq!(
            error_of(&reply),
            ("ERR_DOC_ALREADY_CREATED", message),
            "create at {v:?}: {reply}"
        );
    }
    assert_eq!(
        b.fetch("books", "b1").await,
        json!({"v": 1, "data": {"by": "a"}})
    );
}

#[tokio::test]
async fn an_unknown_create_type_is_a_missing_type_and_is_dropped_from_the_echo() {
    let addr = server().await;
    let mut a = ShareDbClient::connect(&addr).await;
    for ty in ["http://example.com/types/unknown", "text"] {
        a.submit(
            "books",
            "b1",
            Some(0),
            json!({"create": {"type": ty, "data": {}}}),
        )
        .await;
        let reply = a.error().await;
        assert_eq!(
            error_of(&reply),
            ("ERR_OT_OP_BADLY_FORMED", "Missing create type"),
            "{reply}"
        );
        assert_eq!(reply["create"], json!({"data": {}}), "{reply}");
    }
    // json0's short name is known.
    assert_eq!(a.create("books", "b1", Some(0), json!({"ok": 1})).await, 0);
}

#[tokio::test]
async fn badly_formed_and_unappliable_ops_have_sharedbs_codes_and_messages() {
    let addr = server().await;
    let mut a = ShareDbClient::connect(&addr).await;
    a.create("books", "b1", Some(0), json!({"n": 1, "s": "abc"}))
        .await;
    let cases = [
        (
            json!({"p": ["n"], "na": 1}),
            "ERR_OT_OP_BADLY_FORMED",
            "json0 op must be an array",
        ),
        (json!([{"na": 1}]), "ERR_OT_OP_BADLY_FORMED", "Missing path"),
        (
            json!([{"p": ["n"], "zz": 1}]),
            "ERR_OT_OP_NOT_APPLIED",
            "invalid / missing instruction in op",
        ),
        (
            json!([{"p": ["s"], "na": 1}]),
            "ERR_OT_OP_NOT_APPLIED",
            "Referenced element not a number",
        ),
        (
            json!([{"p": ["missing", "deeper"], "oi": 1}]),
            "ERR_OT_OP_NOT_APPLIED",
            "Referenced element not an object (it was undefined)",
        ),
    ];
    for (op, code, message) in cases {
        a.submit("books", "b1", Some(1), json!({"op": op})).await;
        let reply = a.error().await;
        assert_eq!(error_of(&reply), (code, message), "{op}: {reply}");
        assert_eq!(reply["op"], op, "the request is echoed");
    }
    assert_eq!(a.fetch("books", "b1").await["v"], 1);
}

#[tokio::test]
async fn a_frame_that_is_not_json_closes_the_connection_and_harms_nobody_else() {
    let addr = server().await;
    let mut bad = ShareDbClient::connect(&addr).await;
    bad.send_text("this is not json").await;
    assert_eq!(bad.expect_close_code().await, 1008);
    let mut other = ShareDbClient::connect(&addr).await;
    assert_eq!(
        other.fetch("books", "b1").await,
        json!({"v": 0, "type": null})
    );
}

#[tokio::test]
async fn ops_reach_other_subscribers_with_their_submitters_src_and_seq() {
    let addr = server().await;
    let mut a = ShareDbClient::connect(&addr).await;
    let mut b = ShareDbClient::connect(&addr).await;
    b.subscribe("books", "b1").await;
    let create = a.seq;
    a.create("books", "b1", Some(0), json!({"n": 0})).await;
    let edit = a.seq;
    a.edit("books", "b1", 1, json!([{"p": ["n"], "na": 1}]))
        .await;
    let del = a.submit("books", "b1", Some(2), json!({"del": true})).await;
    a.ack(del).await;
    for (seq, kind) in [(create, "create"), (edit, "op"), (del, "del")] {
        let m = b.recv().await;
        assert!(m.get(kind).is_some(), "a {kind}: {m}");
        assert_eq!(
            (m["src"].as_str(), m["seq"].as_u64()),
            (Some(a.src.as_str()), Some(seq)),
            "{m}"
        );
    }
    // The history names them too.
    b.send(json!({"a": "f", "c": "books", "d": "b1", "v": 0}))
        .await;
    for seq in [create, edit, del] {
        let m = b.recv().await;
        assert_eq!(
            (m["a"].as_str(), m["seq"].as_u64()),
            (Some("op"), Some(seq)),
            "{m}"
        );
        assert_eq!(m["src"].as_str(), Some(a.src.as_str()), "{m}");
    }
}

#[tokio::test]
async fn a_del_of_a_never_created_doc_is_accepted_and_makes_a_version() {
    let addr = server().await;
    let mut a = ShareDbClient::connect(&addr).await;
    let mut b = ShareDbClient::connect(&addr).await;
    b.subscribe("books", "ghost").await;
    let del = a
        .submit("books", "ghost", Some(0), json!({"del": true}))
        .await;
    let (_, ack) = a.ack(del).await;
    assert_eq!(ack["v"], 0, "{ack}");
    // The subscriber is told, with the submitter's src and seq.
    let told = b.recv().await;
    assert_eq!(
        (
            told["del"].as_bool(),
            told["v"].as_u64(),
            told["seq"].as_u64()
        ),
        (Some(true), Some(0), Some(del)),
        "{told}"
    );
    // Version 1, type still null; the history holds the del; a create continues at v1.
    assert_eq!(
        a.fetch("books", "ghost").await,
        json!({"v": 1, "type": null})
    );
    a.send(json!({"a": "f", "c": "books", "d": "ghost", "v": 0}))
        .await;
    let history = a.recv().await;
    assert_eq!(
        (history["v"].as_u64(), history["del"].as_bool()),
        (Some(0), Some(true)),
        "{history}"
    );
    assert_eq!(a.recv().await["a"], "f");
    assert_eq!(
        a.create("books", "ghost", Some(1), json!({"x": 1})).await,
        1
    );
    assert_eq!(
        a.fetch("books", "ghost").await,
        json!({"v": 2, "data": {"x": 1}})
    );
}
