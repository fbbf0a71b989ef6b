//! The REST API under /v1, black-box: a real server on an ephemeral port, plain HTTP.
//! Every route, conditional writes, event streams and their resumption, auth and
//! permission refusals, limits and bad input; and writes reaching deepstream and ShareDB
//! subscribers of the same record.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use recordsync_deepstream_protocol::RecordAction;
use recordsync_server::{Config, Server, StorageKind};
use support::http::{Answer, EventStream, send};
use support::sharedb::ShareDbClient;
use support::{RawClient, json_value, update};

const JSON: Option<&str> = None;

async fn get(addr: &str, path: &str) -> Answer {
    send(addr, Method::GET, path, &[], JSON).await
}

async fn put(addr: &str, path: &str, body: &str) -> Answer {
    send(addr, Method::PUT, path, &[], Some(body)).await
}

async fn patch(addr: &str, path: &str, body: &str) -> Answer {
    send(addr, Method::PATCH, path, &[], Some(body)).await
}

/// Asserts a JSON refusal with `status` and `code`; returns its error object.
fn refused(a: &Answer, status: u16, code: &str) -> Value {
    assert_eq!(a.status, status, "{a:?}");
    assert_eq!(a.content_type, "application/json", "{a:?}");
    let body: Value = serde_json::from_str(&a.text).unwrap();
    assert_eq!(body["error"]["code"], code, "{a:?}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{a:?}"
    );
    body["error"].clone()
}

#[tokio::test]
async fn values_are_written_read_patched_and_deleted_byte_for_byte() {
    let addr = support::memory_server().await;
    let text = r#"{"title":"Dune","price":1.50,"big":12345678901234567890,"z":1,"a":"é\u00e9"}"#;
    let w = put(&addr, "/v1/records/books/1", text).await;
    assert_eq!((w.status, w.header("etag")), (200, Some("\"1\"")), "{w:?}");
    assert_eq!(w.text, r#"{"version":1}"#);
    let r = get(&addr, "/v1/records/books/1").await;
    assert_eq!((r.status, r.header("etag")), (200, Some("\"1\"")));
    assert_eq!(r.content_type, "application/json");
    // numbers and key order as written (the escape is stored as the character)
    assert_eq!(
        r.text,
        r#"{"title":"Dune","price":1.50,"big":12345678901234567890,"z":1,"a":"éé"}"#
    );
    // the name's slash may be encoded
    assert_eq!(get(&addr, "/v1/records/books%2F1").await.text, r.text);
    assert_eq!(
        get(&addr, "/v1/records/books/1?path=price").await.text,
        "1.50"
    );
    let head = send(&addr, Method::HEAD, "/v1/records/books/1", &[], JSON).await;
    assert_eq!((head.status, head.text.as_str()), (200, ""));

    let p = patch(
        &addr,
        "/v1/records/books/1",
        r#"{"path":"tags[1]","value":"sf"}"#,
    )
    .await;
    assert_eq!(
        (p.status, p.text.as_str()),
        (200, r#"{"version":2}"#),
        "{p:?}"
    );
    let p = patch(
        &addr,
        "/v1/records/books/1",
        r#"[{"path":"big","erase":true},{"path":"n.m","value":0.10}]"#,
    )
    .await;
    assert_eq!(p.header("etag"), Some("\"3\""));
    assert_eq!(
        get(&addr, "/v1/records/books/1").await.text,
        r#"{"title":"Dune","price":1.50,"z":1,"a":"éé","tags":[null,"sf"],"n":{"m":0.10}}"#
    );
    assert_eq!(
        get(&addr, "/v1/records/books/1?path=tags.1").await.text,
        r#""sf""#
    );
    refused(
        &get(&addr, "/v1/records/books/1?path=nothing.here").await,
        404,
        "path_not_found",
    );

    let d = send(&addr, Method::DELETE, "/v1/records/books/1", &[], JSON).await;
    assert_eq!(d.status, 204, "{d:?}");
    refused(&get(&addr, "/v1/records/books/1").await, 404, "not_found");
    refused(
        &send(&addr, Method::DELETE, "/v1/records/books/1", &[], JSON).await,
        404,
        "not_found",
    );
    // a write re-creates it, the versions going on (delete at 4, create at 5)
    let w = put(&addr, "/v1/records/books/1", "[1]").await;
    assert_eq!(w.header("etag"), Some("\"6\""));
}

#[tokio::test]
async fn history_and_past_values() {
    let addr = support::memory_server().await;
    put(&addr, "/v1/records/h/1", r#"{"n":1.0}"#).await;
    patch(&addr, "/v1/records/h/1", r#"{"path":"n","value":2}"#).await;
    send(&addr, Method::DELETE, "/v1/records/h/1", &[], JSON).await;
    put(&addr, "/v1/records/h/1", r#"{"n":3}"#).await;

    let h = get(&addr, "/v1/records/h/1/history").await;
    assert_eq!(h.status, 200, "{h:?}");
    let page: Value = serde_json::from_str(&h.text).unwrap();
    let ops: Vec<(u64, &str)> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["version"].as_u64().unwrap(),
                e["op"]["op"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            (0, "create"),
            (1, "update"),
            (2, "patch"),
            (3, "delete"),
            (4, "create"),
            (5, "update")
        ]
    );
    assert_eq!(page["next"], Value::Null);
    assert!(page["entries"][1]["time"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(page["entries"][1]["author"], Value::Null);
    assert!(
        h.text.contains(r#""op":{"op":"update","data":{"n":1.0}}"#),
        "{}",
        h.text
    );

    // pages
    let h = get(&addr, "/v1/records/h/1/history?from=1&limit=2").await;
    let page: Value = serde_json::from_str(&h.text).unwrap();
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    assert_eq!(page["next"], 3);
    let h = get(&addr, "/v1/records/h/1/history?from=3&to=4").await;
    let page: Value = serde_json::from_str(&h.text).unwrap();
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    assert_eq!(page["next"], Value::Null);

    // past values, by version and by time
    let v1 = get(&addr, "/v1/records/h/1?version=1").await;
    assert_eq!(
        (v1.text.as_str(), v1.header("etag")),
        (r#"{"n":1.0}"#, Some("\"1\""))
    );
    assert_eq!(
        get(&addr, "/v1/records/h/1?version=2&path=n").await.text,
        "2"
    );
    refused(
        &get(&addr, "/v1/records/h/1?version=3").await,
        404,
        "not_at_version",
    );
    refused(
        &get(&addr, "/v1/records/h/1?version=99").await,
        404,
        "not_in_history",
    );
    let now = Value::from(page["entries"][1]["time"].as_u64().unwrap() + 60_000);
    let at = get(&addr, &format!("/v1/records/h/1?at={now}")).await;
    assert_eq!(
        (at.text.as_str(), at.header("etag")),
        (r#"{"n":3}"#, Some("\"5\""))
    );
    refused(
        &get(&addr, "/v1/records/h/1?at=1").await,
        404,
        "not_in_history",
    );
    refused(
        &get(&addr, "/v1/records/h/1?at=1&version=1").await,
        400,
        "bad_parameter",
    );
    refused(
        &get(&addr, "/v1/records/h/1/history?from=5&to=1").await,
        400,
        "bad_parameter",
    );
    refused(
        &get(&addr, "/v1/records/h/1/history?limit=0").await,
        400,
        "bad_parameter",
    );
    refused(
        &get(&addr, "/v1/records/h/1/history?limit=1001").await,
        400,
        "bad_parameter",
    );
}

#[tokio::test]
async fn conditional_writes_answer_412_with_the_current_version() {
    let addr = support::memory_server().await;
    let path = "/v1/records/c/1";
    // If-None-Match: * creates only
    let w = send(
        &addr,
        Method::PUT,
        path,
        &[("if-none-match", "*")],
        Some(r#"{"a":1}"#),
    )
    .await;
    assert_eq!(w.header("etag"), Some("\"1\""), "{w:?}");
    let again = send(
        &addr,
        Method::PUT,
        path,
        &[("if-none-match", "*")],
        Some("{}"),
    )
    .await;
    assert_eq!(
        refused(&again, 412, "precondition_failed")["currentVersion"],
        1
    );

    let stale = send(
        &addr,
        Method::PUT,
        path,
        &[("if-match", "\"0\"")],
        Some("{}"),
    )
    .await;
    let error = refused(&stale, 412, "precondition_failed");
    assert_eq!(error["currentVersion"], 1);
    assert_eq!(stale.header("etag"), Some("\"1\""));
    let ok = send(
        &addr,
        Method::PUT,
        path,
        &[("if-match", "\"1\"")],
        Some(r#"{"a":2}"#),
    )
    .await;
    assert_eq!(ok.header("etag"), Some("\"2\""), "{ok:?}");
    let ok = send(
        &addr,
        Method::PATCH,
        path,
        &[("if-match", "\"7\", \"2\"")],
        Some(r#"{"path":"b","value":true}"#),
    )
    .await;
    assert_eq!(ok.header("etag"), Some("\"3\""), "{ok:?}");
    let stale = send(
        &addr,
        Method::PATCH,
        path,
        &[("if-match", "\"2\"")],
        Some(r#"{"path":"b","value":1}"#),
    )
    .await;
    assert_eq!(
        refused(&stale, 412, "precondition_failed")["currentVersion"],
        3
    );
    assert_eq!(
        get(&addr, path).await.text,
        r#"{"a":2,"b":true}"#,
        "nothing stale written"
    );

    // reads: 304 when current
    let same = send(
        &addr,
        Method::GET,
        path,
        &[("if-none-match", "\"3\"")],
        JSON,
    )
    .await;
    assert_eq!((same.status, same.header("etag")), (304, Some("\"3\"")));
    let newer = send(
        &addr,
        Method::GET,
        path,
        &[("if-none-match", "\"2\"")],
        JSON,
    )
    .await;
    assert_eq!(newer.status, 200);

    // deletes
    let stale = send(&addr, Method::DELETE, path, &[("if-match", "\"2\"")], JSON).await;
    assert_eq!(
        refused(&stale, 412, "precondition_failed")["currentVersion"],
        3
    );
    assert_eq!(get(&addr, path).await.status, 200, "not deleted");
    let ok = send(&addr, Method::DELETE, path, &[("if-match", "\"3\"")], JSON).await;
    assert_eq!(ok.status, 204);
    let gone = send(&addr, Method::DELETE, path, &[("if-match", "*")], JSON).await;
    assert_eq!(
        refused(&gone, 412, "precondition_failed")["currentVersion"],
        Value::Null
    );
    let missing = send(
        &addr,
        Method::PUT,
        path,
        &[("if-match", "\"4\"")],
        Some("{}"),
    )
    .await;
    refused(&missing, 412, "precondition_failed");
    refused(
        &send(&addr, Method::PUT, path, &[("if-match", "4")], Some("{}")).await,
        400,
        "bad_header",
    );
}

#[tokio::test]
async fn an_event_stream_sends_the_value_then_every_change_and_resumes() {
    let addr = support::memory_server().await;
    let path = "/v1/records/s/1";
    put(&addr, path, r#"{"n":1.50}"#).await;
    let mut events = EventStream::open(&addr, path, &[]).await;
    let first = events.next().await;
    assert_eq!(
        (
            first.id.as_deref(),
            first.event.as_str(),
            first.data.as_str()
        ),
        (Some("1"), "value", r#"{"version":1,"value":{"n":1.50}}"#)
    );
    patch(&addr, path, r#"{"path":"n","value":2}"#).await;
    send(&addr, Method::DELETE, path, &[], JSON).await;
    put(&addr, path, "[true]").await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let e = events.next().await;
        seen.push((e.id.unwrap(), e.event, e.data));
    }
    assert_eq!(
        seen,
        [
            (
                "2".into(),
                "value".into(),
                r#"{"version":2,"value":{"n":2}}"#.into()
            ),
            ("3".into(), "deleted".into(), r#"{"version":3}"#.into()),
            (
                "4".into(),
                "value".into(),
                r#"{"version":4,"value":{}}"#.into()
            ),
            (
                "5".into(),
                "value".into(),
                r#"{"version":5,"value":[true]}"#.into()
            ),
        ]
    );
    drop(events);

    // resumed after version 2: the versions after it, from history, then live changes
    let mut resumed = EventStream::open(&addr, path, &[("last-event-id", "2")]).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(resumed.next().await.id.unwrap());
    }
    assert_eq!(ids, ["3", "4", "5"]);
    let p = patch(&addr, path, r#"{"path":"1","value":1}"#).await;
    assert_eq!(p.status, 200, "{p:?}");
    assert_eq!(
        resumed.next().await.data,
        r#"{"version":6,"value":[true,1]}"#
    );
    // resumed at the current version: nothing until the next change
    let mut current = EventStream::open(&addr, path, &[("last-event-id", "6")]).await;
    assert!(current.try_next(Duration::from_millis(300)).await.is_none());
    // an id it never sent: the current value
    let mut fresh = EventStream::open(&addr, path, &[("last-event-id", "x")]).await;
    assert_eq!(fresh.next().await.id.as_deref(), Some("6"));
    // a record that does not exist yet: deleted, then its creation
    let mut later = EventStream::open(&addr, "/v1/records/s/2", &[]).await;
    assert_eq!(later.next().await.data, r#"{"version":null}"#);
    put(&addr, "/v1/records/s/2", "{}").await;
    assert_eq!(later.next().await.event, "value");
    refused(
        &send(
            &addr,
            Method::GET,
            "/v1/records/s/2?version=1",
            &[("accept", "text/event-stream")],
            JSON,
        )
        .await,
        400,
        "bad_parameter",
    );
}

/// A stream whose client does not read is cut off once its queue overflows; the server
/// and other clients go on.
#[tokio::test]
async fn a_stream_that_is_not_read_is_cut_off() {
    let addr = support::start_server(Config {
        storage: StorageKind::Memory,
        outbound_queue_limit: 8,
        ..Config::default()
    })
    .await;
    let path = "/v1/records/big/1";
    put(&addr, path, "{}").await;
    let mut stalled = EventStream::open(&addr, path, &[]).await;
    let mut reader = EventStream::open(&addr, path, &[]).await;
    assert_eq!(reader.next().await.id.as_deref(), Some("1"));
    let blob = "x".repeat(256 * 1024);
    // far more than the socket buffers hold, so the stalled stream's queue overflows
    for i in 0..200 {
        let w = patch(
            &addr,
            path,
            &format!(r#"{{"path":"v","value":"{i}{blob}"}}"#),
        )
        .await;
        assert_eq!(w.status, 200);
        // the reader keeps up
        reader.next().await;
    }
    // cut off while still not reading: counted as a slow consumer
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = get(&addr, "/metrics").await.text;
        if metrics.contains(r#"recordsync_slow_consumers_total{protocol="sse"} 1"#) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no slow consumer counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        stalled.ends_within(Duration::from_secs(10)).await,
        "the stalled stream was cut off (and ends once its buffered bytes are read)"
    );
    put(&addr, path, "[1]").await;
    assert_eq!(reader.next().await.data, r#"{"version":202,"value":[1]}"#);
}

#[tokio::test]
async fn bad_input_gets_clear_4xx_and_the_server_keeps_serving() {
    let addr = support::start_server(Config {
        storage: StorageKind::Memory,
        rest: Some(recordsync_server::RestConfig {
            max_body: 4096,
            max_page: 10,
        }),
        ..Config::default()
    })
    .await;
    let path = "/v1/records/bad/1";
    refused(
        &put(&addr, path, &"1".repeat(5000)).await,
        413,
        "body_too_large",
    );
    // without a Content-Length too
    let chunked = support::http::send_chunked(&addr, "PUT", path, &[b' '; 10_000], 1000).await;
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
    assert!(chunked.contains(r#""code":"body_too_large""#), "{chunked}");
    refused(&put(&addr, path, "{").await, 400, "not_json");
    refused(&put(&addr, path, "").await, 400, "not_json");
    refused(&put(&addr, path, "3").await, 422, "invalid_value");
    let deep = "[".repeat(600) + &"]".repeat(600);
    refused(&put(&addr, path, &deep).await, 422, "too_deep");
    let bytes = reqwest::Client::new()
        .put(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(vec![b'[', b'"', 0xff, b'"', b']'])
        .send()
        .await
        .unwrap();
    assert_eq!(bytes.status(), 400);
    assert!(bytes.text().await.unwrap().contains("\"not_utf8\""));
    refused(
        &send(
            &addr,
            Method::PUT,
            path,
            &[("content-type", "text/plain")],
            Some("{}"),
        )
        .await,
        415,
        "unsupported_media_type",
    );
    refused(
        &patch(&addr, path, r#"{"path":"a["}"#).await,
        422,
        "bad_patch",
    );
    refused(
        &patch(&addr, path, r#"{"path":"a[","value":1}"#).await,
        422,
        "invalid_value",
    );
    refused(&patch(&addr, path, "[]").await, 422, "bad_patch");
    refused(&get(&addr, "/v1/records/x?path=a[").await, 400, "bad_path");
    refused(
        &get(&addr, "/v1/records/x?limt=1").await,
        400,
        "bad_parameter",
    );
    refused(
        &get(&addr, "/v1/records/x?version=-1").await,
        400,
        "bad_parameter",
    );
    refused(
        &get(&addr, "/v1/records/x/history?limit=11").await,
        400,
        "bad_parameter",
    );
    refused(&get(&addr, "/v1/records/a%00b").await, 400, "bad_name");
    refused(&get(&addr, "/v1/records/%FF").await, 400, "bad_parameter");
    refused(&get(&addr, "/v1/records/").await, 400, "bad_name");
    refused(
        &get(&addr, &format!("/v1/records/{}", "n".repeat(2000))).await,
        400,
        "bad_name",
    );
    refused(&get(&addr, "/v1/nothing").await, 404, "no_route");
    refused(&get(&addr, "/v1").await, 404, "no_route");
    let post = send(&addr, Method::POST, path, &[], Some("{}")).await;
    refused(&post, 405, "method_not_allowed");
    assert_eq!(post.header("allow"), Some("GET, HEAD, PUT, PATCH, DELETE"));
    refused(
        &send(&addr, Method::DELETE, "/v1/openapi.json", &[], JSON).await,
        405,
        "method_not_allowed",
    );
    // still serving
    assert_eq!(put(&addr, path, r#"{"ok":true}"#).await.status, 200);
    assert_eq!(get(&addr, path).await.text, r#"{"ok":true}"#);
}

#[tokio::test]
async fn the_openapi_document_is_served() {
    let addr = support::memory_server().await;
    let a = get(&addr, "/v1/openapi.json").await;
    assert_eq!(
        (a.status, a.content_type.as_str()),
        (200, "application/json")
    );
    let doc: Value = serde_json::from_str(&a.text).unwrap();
    assert!(doc["paths"]["/v1/records/{name}"]["put"].is_object());
}

const PERMISSIONS: &str = r#"
record:
  "*":
    create: true
    write: true
    read: true
    delete: true
    listen: true
  secret/*:
    read: false
    write: false
    delete: false
  posts/$id:
    write: "data.author === user.id"
    delete: "user.data.role === 'admin'"
  private/$owner:
    read: "$owner === user.id"
"#;

/// A server with file auth (alice, carol) and the rules above.
async fn secured() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let addr = support::start_server(support::file_auth::config(dir.path(), PERMISSIONS)).await;
    (addr, dir)
}

#[tokio::test]
async fn credentials_are_checked_on_every_route() {
    let (addr, _dir) = secured().await;
    let alice = format!("Bearer {}", support::file_auth::token(&addr, "alice").await);
    let auth = [("authorization", alice.as_str())];
    let w = send(&addr, Method::PUT, "/v1/records/a/1", &auth, Some("{}")).await;
    assert_eq!(w.status, 200, "{w:?}");
    // the journal names the author
    let h = send(&addr, Method::GET, "/v1/records/a/1/history", &auth, JSON).await;
    assert!(h.text.contains(r#""author":"alice""#), "{}", h.text);
    // Basic credentials go to the auth types
    let basic = send(
        &addr,
        Method::GET,
        "/v1/records/a/1",
        &[("authorization", "Basic YWxpY2U6cGFzc3dvcmQ=")],
        JSON,
    )
    .await;
    assert_eq!(basic.status, 200, "{basic:?}");
    let mut events = EventStream::open(&addr, "/v1/records/a/1", &auth).await;
    assert_eq!(events.next().await.event, "value");

    // refusals: no credentials (file auth refuses nobody's), wrong ones, unknown schemes
    for headers in [
        vec![],
        vec![("authorization", "Bearer made-up")],
        vec![("authorization", "Basic YWxpY2U6d3Jvbmc=")],
        vec![("authorization", "Basic !!")],
        vec![("authorization", "Digest x")],
        vec![("authorization", "Bearer ")],
    ] {
        for (method, path, body) in [
            (Method::GET, "/v1/records/a/1", None),
            (Method::GET, "/v1/records/a/1/history", None),
            (Method::PUT, "/v1/records/a/1", Some("{}")),
            (
                Method::PATCH,
                "/v1/records/a/1",
                Some(r#"{"path":"x","value":1}"#),
            ),
            (Method::DELETE, "/v1/records/a/1", None),
        ] {
            let a = send(&addr, method.clone(), path, &headers, body).await;
            refused(&a, 401, "unauthenticated");
            assert!(a.header("www-authenticate").is_some(), "{a:?}");
        }
    }
    let sse = send(
        &addr,
        Method::GET,
        "/v1/records/a/1",
        &[("accept", "text/event-stream")],
        JSON,
    )
    .await;
    refused(&sse, 401, "unauthenticated");
    // the document is public
    assert_eq!(get(&addr, "/v1/openapi.json").await.status, 200);
}

#[tokio::test]
async fn the_permission_rules_apply_to_every_route() {
    let (addr, _dir) = secured().await;
    let alice = format!("Bearer {}", support::file_auth::token(&addr, "alice").await);
    let carol = format!("Bearer {}", support::file_auth::token(&addr, "carol").await);
    let as_alice = [("authorization", alice.as_str())];
    let as_carol = [("authorization", carol.as_str())];
    for (method, path, body) in [
        (Method::GET, "/v1/records/secret/1", None),
        (Method::GET, "/v1/records/secret/1?version=0", None),
        (Method::GET, "/v1/records/secret/1/history", None),
        (Method::PUT, "/v1/records/secret/1", Some("{}")),
        (
            Method::PATCH,
            "/v1/records/secret/1",
            Some(r#"{"path":"x","value":1}"#),
        ),
    ] {
        let a = send(&addr, method.clone(), path, &as_alice, body).await;
        refused(&a, 403, "permission_denied");
    }
    let sse = send(
        &addr,
        Method::GET,
        "/v1/records/secret/1",
        &[
            ("accept", "text/event-stream"),
            ("authorization", alice.as_str()),
        ],
        JSON,
    )
    .await;
    refused(&sse, 403, "permission_denied");
    // data rules see the new value (PUT) or the record after the patch (PATCH)
    let mine = send(
        &addr,
        Method::PUT,
        "/v1/records/posts/1",
        &as_alice,
        Some(r#"{"author":"alice"}"#),
    )
    .await;
    assert_eq!(mine.status, 200, "{mine:?}");
    let theirs = send(
        &addr,
        Method::PUT,
        "/v1/records/posts/1",
        &as_alice,
        Some(r#"{"author":"bob"}"#),
    )
    .await;
    refused(&theirs, 403, "permission_denied");
    let ok = send(
        &addr,
        Method::PATCH,
        "/v1/records/posts/1",
        &as_alice,
        Some(r#"{"path":"title","value":"t"}"#),
    )
    .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    let steal = send(
        &addr,
        Method::PATCH,
        "/v1/records/posts/1",
        &as_alice,
        Some(r#"{"path":"author","value":"bob"}"#),
    )
    .await;
    refused(&steal, 403, "permission_denied");
    let del = send(
        &addr,
        Method::DELETE,
        "/v1/records/posts/1",
        &as_alice,
        JSON,
    )
    .await;
    refused(&del, 403, "permission_denied");
    let del = send(
        &addr,
        Method::DELETE,
        "/v1/records/posts/1",
        &as_carol,
        JSON,
    )
    .await;
    assert_eq!(del.status, 204, "{del:?}");
}

/// One record live through every protocol: REST writes reach deepstream and ShareDB
/// subscribers, and a REST stream sees their writes.
#[tokio::test]
async fn rest_writes_reach_deepstream_and_sharedb_subscribers() {
    let addr = support::memory_server().await;
    let mut ds = RawClient::connect(&addr).await;
    let read = ds.subscribe("books/b1").await;
    assert_eq!(json_value(&read.data), json!({}));
    let mut share = ShareDbClient::connect(&addr).await;
    share.subscribe("books", "b1").await;
    let mut events = EventStream::open(&addr, "/v1/records/books/b1", &[]).await;
    assert_eq!(events.next().await.data, r#"{"version":0,"value":{}}"#);

    put(
        &addr,
        "/v1/records/books/b1",
        r#"{"title":"Dune","n":1.50}"#,
    )
    .await;
    let seen = ds.recv_action(RecordAction::Update).await;
    assert_eq!(seen.version, Some(1));
    assert_eq!(seen.data.as_deref(), Some(r#"{"title":"Dune","n":1.50}"#));
    let op = share.recv().await;
    assert_eq!(op["v"], 1, "{op}");

    patch(
        &addr,
        "/v1/records/books/b1",
        r#"{"path":"title","value":"Dune Messiah"}"#,
    )
    .await;
    let seen = ds.recv_action(RecordAction::Patch).await;
    assert_eq!(
        (seen.version, seen.path.as_deref(), json_value(&seen.data)),
        (Some(2), Some("title"), json!("Dune Messiah"))
    );
    let op = share.recv().await;
    assert_eq!(
        (op["v"].as_u64(), &op["op"][0]["p"]),
        (Some(2), &json!(["title"])),
        "{op}"
    );
    assert_eq!(
        share.fetch("books", "b1").await["data"],
        serde_json::from_str::<Value>(r#"{"title":"Dune Messiah","n":1.50}"#).unwrap()
    );

    // and back: a deepstream write reaches the REST stream and reads
    ds.write(update("books/b1", 3, r#"{"by":"ds"}"#), Some("1"))
        .await;
    let mut last = events.next().await;
    while last.id.as_deref() != Some("3") {
        last = events.next().await;
    }
    assert_eq!(last.data, r#"{"version":3,"value":{"by":"ds"}}"#);
    assert_eq!(
        get(&addr, "/v1/records/books/b1").await.text,
        r#"{"by":"ds"}"#
    );
}

/// A server with open event streams still stops: the streams end, and the shutdown does
/// not wait for them forever.
#[tokio::test]
async fn streams_end_when_the_server_stops() {
    let server = Server::bind(Config {
        port: 0,
        storage: StorageKind::Memory,
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = server.local_addr().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    put(&addr, "/v1/records/end/1", "{}").await;
    let mut events = EventStream::open(&addr, "/v1/records/end/1", &[]).await;
    assert_eq!(events.next().await.event, "value");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the server stops with a stream open")
        .unwrap()
        .unwrap();
    assert!(events.ends_within(Duration::from_secs(5)).await);
}

/// The names of a listing page, and its `next`.
fn listed(a: &Answer) -> (Vec<(String, u64)>, Option<String>) {
    assert_eq!(a.status, 200, "{a:?}");
    let page: Value = serde_json::from_str(&a.text).unwrap();
    let names = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["version"].as_u64().unwrap(),
            )
        })
        .collect();
    (names, page["next"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn records_are_listed_by_prefix_with_stable_cursors() {
    let addr = support::start_server(Config {
        storage: StorageKind::Memory,
        rest: Some(recordsync_server::RestConfig {
            max_body: 1 << 20,
            max_page: 3,
        }),
        ..Config::default()
    })
    .await;
    for name in [
        "books/1", "books/2", "books/3", "books/4", "books/5", "booksx", "cars/1",
    ] {
        put(&addr, &format!("/v1/records/{name}"), "{}").await;
    }
    patch(&addr, "/v1/records/books/2", r#"{"path":"a","value":1}"#).await;
    send(&addr, Method::DELETE, "/v1/records/books/4", &[], JSON).await;

    let (names, next) = listed(&get(&addr, "/v1/records?prefix=books/&limit=2").await);
    assert_eq!(names, [("books/1".into(), 1), ("books/2".into(), 2)]);
    let next = next.expect("more after the first page");
    // a record created behind the cursor is not seen; the page goes on after books/2
    put(&addr, "/v1/records/books/0", "{}").await;
    let (names, next) = listed(
        &get(
            &addr,
            &format!("/v1/records?prefix=books/&limit=2&cursor={next}"),
        )
        .await,
    );
    assert_eq!(
        names,
        [("books/3".into(), 1), ("books/5".into(), 1)],
        "deleted ones are not listed"
    );
    assert_eq!(next, None, "the last page");
    // without a limit: the server's page size (3 here)
    let (names, next) = listed(&get(&addr, "/v1/records").await);
    assert_eq!(names.len(), 3);
    let (rest, _) = listed(&get(&addr, &format!("/v1/records?cursor={}", next.unwrap())).await);
    assert_eq!(rest[0].0, "books/3");
    let (names, _) = listed(&get(&addr, "/v1/records?prefix=c").await);
    assert_eq!(names, [("cars/1".into(), 1)]);
    let (names, next) = listed(&get(&addr, "/v1/records?prefix=nothing").await);
    assert!(names.is_empty() && next.is_none());

    refused(
        &get(&addr, "/v1/records?limit=4").await,
        400,
        "bad_parameter",
    );
    refused(
        &get(&addr, "/v1/records?limit=0").await,
        400,
        "bad_parameter",
    );
    refused(
        &get(&addr, "/v1/records?cursor=books").await,
        400,
        "bad_parameter",
    );
    refused(
        &get(&addr, "/v1/records?prefix=a&prefix=b").await,
        400,
        "bad_parameter",
    );
    refused(
        &put(&addr, "/v1/records", "{}").await,
        405,
        "method_not_allowed",
    );
}

#[tokio::test]
async fn a_listing_holds_only_what_the_user_may_read() {
    let (addr, _dir) = secured().await;
    let alice = format!("Bearer {}", support::file_auth::token(&addr, "alice").await);
    let carol = format!("Bearer {}", support::file_auth::token(&addr, "carol").await);
    for name in ["a/1", "private/alice", "private/carol", "z/1"] {
        let a = send(
            &addr,
            Method::PUT,
            &format!("/v1/records/{name}"),
            &[("authorization", carol.as_str())],
            Some("{}"),
        )
        .await;
        assert_eq!(a.status, 200, "{a:?}");
    }
    refused(&get(&addr, "/v1/records").await, 401, "unauthenticated");
    let names = |who: &str| {
        let addr = addr.clone();
        let auth = who.to_owned();
        async move {
            let a = send(
                &addr,
                Method::GET,
                "/v1/records",
                &[("authorization", auth.as_str())],
                JSON,
            )
            .await;
            listed(&a).0.into_iter().map(|(n, _)| n).collect::<Vec<_>>()
        }
    };
    assert_eq!(names(&alice).await, ["a/1", "private/alice", "z/1"]);
    assert_eq!(names(&carol).await, ["a/1", "private/carol", "z/1"]);
    refused(
        &send(
            &addr,
            Method::GET,
            "/v1/records/private/carol",
            &[("authorization", alice.as_str())],
            JSON,
        )
        .await,
        403,
        "permission_denied",
    );
}

/// Documents (objects at the top) full of numbers in every spelling
/// (`recordsync_core::testing`) go through
/// REST as written: a PUT reads back byte for byte, a PATCH of a number lands as sent
/// (in the whole value and at its path), and history gives the first value back too.
#[test]
fn documents_go_through_rest_as_written() {
    use proptest::prelude::*;
    use proptest::test_runner::TestRunner;
    use recordsync_core::testing::{Doc, document, number};

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let addr = runtime.block_on(support::memory_server());
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    });
    let n = std::sync::atomic::AtomicU32::new(0);
    let strategy = (document(), any::<prop::sample::Index>(), number());
    runner
        .run(&strategy, |(doc, pick, token)| {
            let path = format!(
                "/v1/records/numbers/{}",
                n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            runtime.block_on(async {
                let first = doc.to_json();
                let w = put(&addr, &path, &first).await;
                assert_eq!(w.status, 200, "{w:?}");
                assert_eq!(get(&addr, &path).await.text, first);
                let paths = doc.number_paths();
                if paths.is_empty() {
                    return;
                }
                let at = pick.get(&paths);
                let mut expected = doc.clone();
                expected.set(at, Doc::Number(token.clone()));
                let body = format!(
                    r#"{{"path":{},"value":{token}}}"#,
                    serde_json::to_string(at).unwrap()
                );
                let p = patch(&addr, &path, &body).await;
                assert_eq!(p.status, 200, "{p:?}");
                assert_eq!(get(&addr, &path).await.text, expected.to_json());
                let query = form_path(at);
                assert_eq!(
                    get(&addr, &format!("{path}?path={query}")).await.text,
                    token
                );
                assert_eq!(get(&addr, &format!("{path}?version=1")).await.text, first);
            });
            Ok(())
        })
        .unwrap();
}

/// `path` percent-encoded for a query string.
fn form_path(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A JWT as the bearer token, read by the `jwt` auth type: its claims are the user the
/// rules see.
#[tokio::test]
async fn a_jwt_bearer_token_is_the_user() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let secret = "a-test-secret-that-is-long-enough-1234";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("permissions.yml"),
        "record:\n  \"*\":\n    read: true\n    create: true\n    write: \"user.data.role === 'editor'\"\n",
    )
    .unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(
        &path,
        format!(
            "auth:\n  - type: jwt\n    options:\n      secret: {secret}\n      issuer: test-issuer\n\
             permission:\n  type: config\n  options:\n    permissions: fileLoad(permissions.yml)\n"
        ),
    )
    .unwrap();
    let (mut config, _) = Config::from_file(&path).unwrap();
    config.port = 0;
    config.storage = StorageKind::Memory;
    let server = Server::bind(config).await.unwrap();
    let addr = server.local_addr().to_string();
    tokio::spawn(server.run(std::future::pending()));

    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let key = EncodingKey::from_secret(secret.as_bytes());
    let jwt = |role: &str, iss: &str| {
        let claims = json!({"sub": role, "iss": iss, "exp": exp, "role": role});
        format!(
            "Bearer {}",
            encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
        )
    };
    let editor = jwt("editor", "test-issuer");
    let w = send(
        &addr,
        Method::PUT,
        "/v1/records/doc/1",
        &[("authorization", editor.as_str())],
        Some("{}"),
    )
    .await;
    assert_eq!(w.status, 200, "{w:?}");
    let h = send(
        &addr,
        Method::GET,
        "/v1/records/doc/1/history",
        &[("authorization", editor.as_str())],
        JSON,
    )
    .await;
    assert!(h.text.contains(r#""author":"editor""#), "{}", h.text);
    let viewer = jwt("viewer", "test-issuer");
    let r = send(
        &addr,
        Method::GET,
        "/v1/records/doc/1",
        &[("authorization", viewer.as_str())],
        JSON,
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let w = send(
        &addr,
        Method::PUT,
        "/v1/records/doc/1",
        &[("authorization", viewer.as_str())],
        Some("{}"),
    )
    .await;
    refused(&w, 403, "permission_denied");
    let forged = jwt("editor", "another-issuer");
    let w = send(
        &addr,
        Method::PUT,
        "/v1/records/doc/1",
        &[("authorization", forged.as_str())],
        Some("{}"),
    )
    .await;
    refused(&w, 401, "unauthenticated");
    refused(
        &get(&addr, "/v1/records/doc/1").await,
        401,
        "unauthenticated",
    );
}

/// `GET /v1/export`: `recordsync export`'s dump format (header, records with their
/// history, trailer), streamed; a record the user may not read ends it with an error line
/// in place of the trailer, never a dump that silently lacks it.
#[tokio::test]
async fn an_export_is_a_whole_dump_or_ends_with_the_refusal() {
    let (addr, _dir) = secured().await;
    let alice = format!("Bearer {}", support::file_auth::token(&addr, "alice").await);
    let carol = format!("Bearer {}", support::file_auth::token(&addr, "carol").await);
    let as_alice = [("authorization", alice.as_str())];
    let as_carol = [("authorization", carol.as_str())];
    for (name, body) in [("a/1", r#"{"n":1.50}"#), ("a/2", "[]")] {
        let w = send(
            &addr,
            Method::PUT,
            &format!("/v1/records/{name}"),
            &as_alice,
            Some(body),
        )
        .await;
        assert_eq!(w.status, 200, "{w:?}");
    }
    let d = send(&addr, Method::DELETE, "/v1/records/a/2", &as_carol, JSON).await;
    assert_eq!(d.status, 204, "{d:?}");
    let w = send(
        &addr,
        Method::PUT,
        "/v1/records/private/carol",
        &as_carol,
        Some("{}"),
    )
    .await;
    assert_eq!(w.status, 200, "{w:?}");

    let dump = send(
        &addr,
        Method::GET,
        "/v1/export?prefix=a/&history=true",
        &as_alice,
        JSON,
    )
    .await;
    assert_eq!(dump.status, 200, "{dump:?}");
    assert_eq!(dump.content_type, "application/x-ndjson");
    let lines: Vec<&str> = dump.text.lines().collect();
    assert_eq!(lines.len(), 4, "{}", dump.text);
    assert!(
        lines[0].starts_with(
            r#"{"format":"recordsync-dump","version":1,"prefix":"a/","history":true,"exported_at":"#
        ),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(r#"{"name":"a/1","version":1,"created":0,"deleted":false,"#),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains(r#""value":{"n":1.50}"#),
        "as written: {}",
        lines[1]
    );
    assert!(lines[1].contains(r#""author":"alice""#), "{}", lines[1]);
    assert!(
        lines[2].starts_with(r#"{"name":"a/2","version":2,"created":0,"deleted":true,"#),
        "a tombstone: {}",
        lines[2]
    );
    assert!(lines[2].contains(r#""value":null"#), "{}", lines[2]);
    assert_eq!(lines[3], r#"{"end":true,"records":2}"#);
    let bare = send(&addr, Method::GET, "/v1/export?prefix=a/", &as_alice, JSON).await;
    assert!(
        !bare.text.contains(r#""history":{"#)
            && bare.text.ends_with("{\"end\":true,\"records\":2}\n"),
        "{}",
        bare.text
    );

    // private/carol is carol's alone to read: alice's export stops there
    let cut = send(&addr, Method::GET, "/v1/export", &as_alice, JSON).await;
    assert_eq!(cut.status, 200, "{cut:?}");
    let last = cut.text.lines().last().unwrap();
    let error: Value = serde_json::from_str(last).unwrap();
    assert_eq!(error["error"]["code"], "permission_denied", "{}", cut.text);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("private/carol")
    );
    assert!(!cut.text.contains(r#"{"end":true"#), "{}", cut.text);
    let whole = send(&addr, Method::GET, "/v1/export", &as_carol, JSON).await;
    assert!(
        whole.text.ends_with("{\"end\":true,\"records\":3}\n"),
        "{}",
        whole.text
    );

    refused(
        &send(&addr, Method::GET, "/v1/export", &[], JSON).await,
        401,
        "unauthenticated",
    );
    refused(
        &send(&addr, Method::GET, "/v1/export?history=1", &as_alice, JSON).await,
        400,
        "bad_parameter",
    );
    refused(
        &send(&addr, Method::GET, "/v1/export?limit=1", &as_alice, JSON).await,
        400,
        "bad_parameter",
    );
    refused(
        &send(&addr, Method::PUT, "/v1/export", &as_alice, Some("{}")).await,
        405,
        "method_not_allowed",
    );
}

/// `?path=` on a stream follows the value at that path, sending only its changes (ids
/// stay the record's versions); `?access_token=` is a stream's bearer token (EventSource
/// sends no headers), refused on other requests.
#[tokio::test]
async fn a_stream_follows_a_path_and_takes_an_access_token() {
    let (addr, _dir) = secured().await;
    let token = support::file_auth::token(&addr, "alice").await;
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    let w = |body: &'static str| {
        let addr = addr.clone();
        let bearer = bearer.clone();
        async move {
            let a = send(
                &addr,
                Method::PUT,
                "/v1/records/p/1",
                &[("authorization", bearer.as_str())],
                Some(body),
            )
            .await;
            assert_eq!(a.status, 200, "{a:?}");
        }
    };
    w(r#"{"a":{"b":1.50},"c":1}"#).await;
    let mut events = EventStream::open(
        &addr,
        &format!("/v1/records/p/1?path=a.b&access_token={token}"),
        &[],
    )
    .await;
    let first = events.next().await;
    assert_eq!(
        (first.id.as_deref(), first.event.as_str()),
        (Some("1"), "value")
    );
    assert_eq!(first.data, r#"{"version":1,"value":1.50}"#);
    w(r#"{"a":{"b":1.50},"c":2}"#).await; // a.b unchanged: no event
    w(r#"{"a":{"b":2}}"#).await;
    let next = events.next().await;
    assert_eq!(
        next.data, r#"{"version":3,"value":2}"#,
        "version 2 left out"
    );
    w(r#"{"a":{}}"#).await;
    assert_eq!(events.next().await.data, r#"{"version":4,"value":null}"#);
    let del = send(&addr, Method::DELETE, "/v1/records/p/1", &auth, JSON).await;
    assert_eq!(del.status, 204, "{del:?}");
    let gone = events.next().await;
    assert_eq!(
        (gone.event.as_str(), gone.data.as_str()),
        ("deleted", r#"{"version":5}"#)
    );
    // Resuming after version 3 replays only the changes of a.b since: 4 (null), 5 (deleted).
    let mut resumed = EventStream::open(
        &addr,
        &format!("/v1/records/p/1?path=a.b&access_token={token}"),
        &[("last-event-id", "3")],
    )
    .await;
    assert_eq!(resumed.next().await.data, r#"{"version":4,"value":null}"#);
    assert_eq!(resumed.next().await.event, "deleted");

    // A wrong token is refused; a token in the query of anything but a stream too.
    let wrong = send(
        &addr,
        Method::GET,
        "/v1/records/p/1?access_token=made-up",
        &[("accept", "text/event-stream")],
        JSON,
    )
    .await;
    refused(&wrong, 401, "unauthenticated");
    let plain = get(&addr, &format!("/v1/records/p/1?access_token={token}")).await;
    refused(&plain, 400, "bad_parameter");
    let both = send(
        &addr,
        Method::GET,
        &format!("/v1/records/p/1?access_token={token}"),
        &[
            ("accept", "text/event-stream"),
            ("authorization", bearer.as_str()),
        ],
        JSON,
    )
    .await;
    refused(&both, 400, "bad_parameter");
}

/// `?at=` takes RFC 3339 times as well as milliseconds.
#[tokio::test]
async fn past_values_at_rfc3339_times() {
    let addr = support::memory_server().await;
    assert_eq!(
        put(&addr, "/v1/records/t/1", r#"{"n":1}"#).await.status,
        200
    );
    for at in [
        "2100-01-01T00:00:00Z",
        "2100-01-01T01:00:00.5%2B01:00",
        "4102444800000",
    ] {
        let a = get(&addr, &format!("/v1/records/t/1?at={at}")).await;
        assert_eq!(
            (a.status, a.text.as_str()),
            (200, r#"{"n":1}"#),
            "{at}: {a:?}"
        );
    }
    refused(
        &get(&addr, "/v1/records/t/1?at=1970-01-01T00:00:00Z").await,
        404,
        "not_in_history",
    );
    for bad in ["yesterday", "2025-12-07", "2025-12-07T10:00:00"] {
        refused(
            &get(&addr, &format!("/v1/records/t/1?at={bad}")).await,
            400,
            "bad_parameter",
        );
    }
}

/// CORS: every origin by default; with `allowAllOrigins: false`, listed origins only
/// (a request without `Origin` is no cross-origin request and is served); preflights
/// answered.
#[tokio::test]
async fn cors_follows_the_configured_origins() {
    let open = support::memory_server().await;
    let a = send(
        &open,
        Method::GET,
        "/v1/records",
        &[("origin", "https://x.example")],
        JSON,
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("access-control-allow-origin"), Some("*"));
    assert!(
        a.header("access-control-expose-headers")
            .unwrap()
            .contains("ETag")
    );
    let pre = send(
        &open,
        Method::OPTIONS,
        "/v1/records/a/1",
        &[
            ("origin", "https://x.example"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "if-match, content-type"),
        ],
        JSON,
    )
    .await;
    assert_eq!(pre.status, 204, "{pre:?}");
    assert!(
        pre.header("access-control-allow-methods")
            .unwrap()
            .contains("PUT")
    );
    assert!(
        pre.header("access-control-allow-headers")
            .unwrap()
            .contains("If-Match")
    );
    assert_eq!(pre.header("access-control-allow-origin"), Some("*"));
    // OPTIONS that is no preflight is a method the API does not serve.
    let options = send(&open, Method::OPTIONS, "/v1/records/a/1", &[], JSON).await;
    refused(&options, 405, "method_not_allowed");

    let guarded = support::start_server(Config {
        storage: StorageKind::Memory,
        cors: recordsync_server::Cors {
            allow_all_origins: false,
            origins: vec!["https://app.example".into()],
            host_url: None,
        },
        ..Config::default()
    })
    .await;
    let ok = send(
        &guarded,
        Method::GET,
        "/v1/records",
        &[("origin", "https://app.example")],
        JSON,
    )
    .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(ok.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(ok.header("vary"), Some("Origin"));
    let evil = send(
        &guarded,
        Method::GET,
        "/v1/records",
        &[("origin", "https://evil.example")],
        JSON,
    )
    .await;
    refused(&evil, 403, "forbidden_origin");
    let evil_pre = send(
        &guarded,
        Method::OPTIONS,
        "/v1/records",
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "GET"),
        ],
        JSON,
    )
    .await;
    refused(&evil_pre, 403, "forbidden_origin");
    let curl = get(&guarded, "/v1/records").await;
    assert_eq!(curl.status, 200, "{curl:?}");
    assert_eq!(curl.header("access-control-allow-origin"), None);
}
