//! One record through both protocols at once: a deepstream client (raw, binary) and a
//! ShareDB client (raw, JSON) on record `books/b1`, which ShareDB sees as document
//! `(books, b1)`. Each sees the other's writes live, in its own protocol's terms, with
//! one version step per accepted write; deletes cross both ways; history written
//! through deepstream reads back through ShareDB.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

mod support;

use serde_json::json;

use recordsync_deepstream_protocol::{RecordAction, RecordMessage};
use support::sharedb::{JSON0_URI, ShareDbClient};
use support::{RawClient, json_value, patch, update};

async fn server() -> String {
    support::memory_server().await
}

#[tokio::test]
async fn deepstream_writes_reach_sharedb_subscribers_as_json0_ops() {
    let addr = server().await;
    let mut share = ShareDbClient::connect(&addr).await;
    assert_eq!(
        share.subscribe("books", "b1").await,
        json!({"v": 0, "type": null})
    );
    let mut ds = RawClient::connect(&addr).await;

    // deepstream's subscribe creates `{}`: ShareDB's version 0 -> 1, a create.
    assert_eq!(ds.subscribe("books/b1").await.version, Some(0));
    assert_eq!(
        share.recv().await,
        json!({"a": "op", "c": "books", "d": "b1", "v": 0, "create": {"type": JSON0_URI, "data": {}}})
    );
    // A path write is the json0 op with the same effect.
    ds.write(patch("books/b1", 1, "title", r#""Dune""#), Some("1"))
        .await;
    let op = share.recv().await;
    assert_eq!(op["v"], 1);
    assert_eq!(op["op"], json!([{"p": ["title"], "oi": "Dune"}]));
    ds.write(
        patch("books/b1", 2, "title", r#""Dune Messiah""#),
        Some("2"),
    )
    .await;
    assert_eq!(
        share.recv().await["op"],
        json!([{"p": ["title"], "od": "Dune", "oi": "Dune Messiah"}])
    );
    // A whole-value update replaces the root.
    ds.write(update("books/b1", 3, r#"{"pages":[1,2]}"#), Some("3"))
        .await;
    let whole = share.recv().await;
    assert_eq!(whole["v"], 3);
    assert_eq!(
        whole["op"],
        json!([{"p": [], "od": {"title": "Dune Messiah"}, "oi": {"pages": [1, 2]}}])
    );
    assert_eq!(
        share.fetch("books", "b1").await,
        json!({"v": 4, "data": {"pages": [1, 2]}})
    );

    // History written through deepstream reads back through ShareDB, op by op.
    for (v, data) in [
        (1, json!({})),
        (2, json!({"title": "Dune"})),
        (3, json!({"title": "Dune Messiah"})),
    ] {
        share
            .send(json!({"a": "nf", "id": v, "c": "books", "d": "b1", "v": v}))
            .await;
        assert_eq!(share.recv().await["data"], data, "version {v}");
    }
    share
        .send(json!({"a": "f", "c": "books", "d": "b1", "v": 0}))
        .await;
    let mut ops = Vec::new();
    for _ in 0..5 {
        ops.push(share.recv().await);
    }
    assert_eq!(ops[4], json!({"a": "f", "c": "books", "d": "b1"}));
    assert_eq!(
        ops[3]["op"], whole["op"],
        "the replay is the op subscribers saw"
    );

    // A deepstream write to a record nobody created: its create, then its write.
    share.subscribe("books", "b2").await;
    ds.write(update("books/b2", -1, r#"{"n":1}"#), Some("4"))
        .await;
    assert_eq!(share.recv().await["create"]["data"], json!({}));
    let written = share.recv().await;
    assert_eq!(
        (written["v"].as_u64(), &written["op"][0]["oi"]),
        (Some(1), &json!({"n": 1}))
    );
}

#[tokio::test]
async fn sharedb_ops_reach_deepstream_subscribers_with_one_version_each() {
    let addr = server().await;
    let mut share = ShareDbClient::connect(&addr).await;
    share.create("books", "b1", Some(0), json!({"n": 1})).await;
    let mut ds = RawClient::connect(&addr).await;
    let read = ds.subscribe("books/b1").await;
    assert_eq!(
        (read.version, json_value(&read.data)),
        (Some(0), json!({"n": 1}))
    );

    share
        .edit("books", "b1", 1, json!([{"p": ["n"], "na": 2}]))
        .await;
    // An op on one path is a PATCH of it, with the value there after the op.
    let seen = ds.recv_record().await;
    assert_eq!(
        (seen.action, seen.version, seen.path.as_deref()),
        (RecordAction::Patch as i32, Some(1), Some("n")),
        "{seen:?}"
    );
    assert_eq!(json_value(&seen.data), json!(3));
    share
        .edit("books", "b1", 2, json!([{"p": ["tags"], "oi": ["a"]}]))
        .await;
    let seen = ds.recv_record().await;
    assert_eq!(
        (seen.action, seen.version),
        (RecordAction::Patch as i32, Some(2))
    );
    assert_eq!(json_value(&seen.data), json!(["a"]));

    // deepstream, on version 2, and ShareDB, on its version 3, write at once: both land,
    // in some order, and both views agree.
    ds.write(patch("books/b1", 3, "by", r#""ds""#), Some("5"))
        .await;
    let seq = share
        .submit(
            "books",
            "b1",
            Some(3),
            json!({"op": [{"p": ["tags", 0], "li": "z"}]}),
        )
        .await;
    let (missed, ack) = share.ack(seq).await;
    assert_eq!(ack["v"], 4, "transformed over deepstream's write");
    // Not subscribed: the op it missed (deepstream's, as json0) comes before its ack.
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert_eq!(
        (missed[0]["v"].as_u64(), &missed[0]["op"]),
        (Some(3), &json!([{"p": ["by"], "oi": "ds"}]))
    );
    // A list insert shifts items, which no path write does: the whole value goes out.
    let last = ds.recv_record().await;
    assert_eq!(
        (last.action, last.version),
        (RecordAction::Update as i32, Some(4))
    );
    let value = json_value(&last.data);
    assert_eq!(value, json!({"n": 3, "tags": ["z", "a"], "by": "ds"}));
    assert_eq!(
        share.fetch("books", "b1").await,
        json!({"v": 5, "data": value})
    );
}

#[tokio::test]
async fn deletes_cross_both_ways() {
    let addr = server().await;
    let mut share = ShareDbClient::connect(&addr).await;
    let mut ds = RawClient::connect(&addr).await;
    // ShareDB deletes; the deepstream subscriber is told.
    share
        .create("books", "gone", Some(0), json!({"a": 1}))
        .await;
    ds.subscribe("books/gone").await;
    let seq = share
        .submit("books", "gone", Some(1), json!({"del": true}))
        .await;
    assert_eq!(share.ack(seq).await.1["v"], 1);
    let told = ds.recv_record().await;
    assert_eq!(
        (told.action, told.name.as_deref()),
        (RecordAction::Deleted as i32, Some("books/gone"))
    );
    assert_eq!(ds.head("books/gone").await, -1);

    // deepstream re-creates and deletes; the ShareDB subscriber follows both.
    share.subscribe("books", "gone").await;
    assert_eq!(ds.subscribe("books/gone").await.version, Some(0));
    let created = share.recv().await;
    assert_eq!(
        (created["v"].as_u64(), &created["create"]["data"]),
        (Some(2), &json!({}))
    );
    ds.send(RecordMessage {
        correlation_id: Some("d".into()),
        ..RecordMessage::named(RecordAction::Delete, "books/gone")
    })
    .await;
    assert_eq!(
        ds.recv_record().await.action,
        RecordAction::DeleteSuccess as i32
    );
    assert_eq!(
        share.recv().await,
        json!({"a": "op", "c": "books", "d": "gone", "v": 3, "del": true})
    );
    assert_eq!(
        share.fetch("books", "gone").await,
        json!({"v": 4, "type": null})
    );
    // The whole history, across both lives, reads back.
    share
        .send(json!({"a": "nf", "id": 1, "c": "books", "d": "gone", "v": 1}))
        .await;
    assert_eq!(share.recv().await["data"], json!({"a": 1}));
}
