//! deepstream's HTTP API, black-box: a real server on an ephemeral port, plain HTTP.
//! What deepstream answers is checked against deepstream itself by
//! `interop/test/http-api.test.mjs`; these tests are about bad input: every malformed,
//! oversized or unknown request gets a clear 4xx, and the server keeps serving.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

#[path = "support/gated.rs"]
mod gated;
mod support;

use std::sync::Arc;
use std::time::Duration;

use gated::Gated;
use recordsync_server::{Config, Cors, Server, StorageKind};
use recordsync_store::{MemoryStore, Store};
use reqwest::Method;
use serde_json::json;
use support::http::{post_json, request, send};

/// Asserts the server still serves the API: a write and a read of a fresh record.
async fn still_serving(addr: &str, name: &str) {
    let w = post_json(
        addr,
        "/api",
        json!({"body": [{"topic": "record", "action": "write", "recordName": name, "data": {"ok": true}}]})
            .to_string(),
    )
    .await;
    assert_eq!(w.status, 200, "{w:?}");
    assert_eq!(
        w.json(),
        json!({"result": "SUCCESS", "body": [{"success": true}]})
    );
    let r = post_json(
        addr,
        "/api",
        json!({"body": [{"topic": "record", "action": "read", "recordName": name}]}).to_string(),
    )
    .await;
    assert_eq!(
        r.json(),
        json!({"result": "SUCCESS", "body": [{"version": 1, "data": {"ok": true}, "success": true}]})
    );
}

#[tokio::test]
async fn records_are_written_read_and_deleted_in_one_batch_in_order() {
    let addr = support::memory_server().await;
    let body = json!({"body": [
        {"topic": "record", "action": "write", "recordName": "a", "data": {"n": 1.50}},
        {"topic": "record", "action": "write", "recordName": "a", "path": "m", "data": 12345678901234567890u64},
        {"topic": "record", "action": "read", "recordName": "a"},
        {"topic": "record", "action": "head", "recordName": "a"},
        {"topic": "record", "action": "write", "recordName": "a", "data": {}, "version": 2},
        {"topic": "record", "action": "delete", "recordName": "a"},
        {"topic": "record", "action": "read", "recordName": "a"},
    ]});
    // numbers are kept as written
    let text = body.to_string().replace("1.5", "1.50");
    let a = post_json(&addr, "/api", text).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.content_type, "application/json; charset=utf-8");
    assert!(
        a.text
            .contains(r#"{"version":2,"data":{"n":1.50,"m":12345678901234567890},"success":true}"#),
        "{}",
        a.text
    );
    let v = a.json();
    assert_eq!(v["result"], "PARTIAL_SUCCESS");
    assert_eq!(v["body"][3], json!({"version": 2, "success": true}));
    assert_eq!(v["body"][4]["errorEvent"], 102);
    assert_eq!(v["body"][5], json!({"success": true}));
    assert_eq!(v["body"][6]["errorEvent"], 107);
}

#[tokio::test]
async fn malformed_bodies_are_400_and_the_server_keeps_serving() {
    let addr = support::memory_server().await;
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    for (body, expected) in [
        (
            "{not json".as_bytes().to_vec(),
            "Failed to parse body of request: ",
        ),
        (b"5".to_vec(), "Failed to parse body of request: "),
        (b"\"text\"".to_vec(), "Failed to parse body of request: "),
        (
            vec![b'{', 0xff, 0xfe, b'}'],
            "Failed to parse body of request: the body is not UTF-8",
        ),
        (
            deep.into_bytes(),
            "Failed to parse body of request: data is nested deeper than",
        ),
        (
            b"{}".to_vec(),
            "Invalid message: the \"body\" parameter must exist.",
        ),
        (
            br#"{"body": {}}"#.to_vec(),
            "Invalid message: the \"body\" parameter must be a non-empty array",
        ),
        (
            br#"{"body": [{"topic": "record", "action": "explode", "recordName": "a"}]}"#.to_vec(),
            "Failed to parse JIF object at index 0.",
        ),
        (
            br#"{"body": [{"topic": "nope"}]}"#.to_vec(),
            "Failed to parse JIF object at index 0.",
        ),
        (
            br#"{"body": [{"topic": "record", "action": "write", "recordName": "a", "data": 5}]}"#
                .to_vec(),
            "Failed to parse JIF object at index 0.",
        ),
        (
            br#"{"token": 5, "body": [{"topic": "record", "action": "read", "recordName": "a"}]}"#
                .to_vec(),
            "Invalid message: the \"token\" parameter",
        ),
    ] {
        let a = post_json(&addr, "/api", body).await;
        assert_eq!(a.status, 400, "{a:?}");
        assert_eq!(a.content_type, "text/plain; charset=utf-8");
        assert!(
            a.text.starts_with(expected),
            "{a:?} should start with {expected:?}"
        );
        assert!(a.text.ends_with("\r\n\r\n"), "{a:?}");
    }
    still_serving(&addr, "after-malformed").await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_declared_or_streamed() {
    let addr = support::memory_server().await;
    let big = format!(
        r#"{{"body": [{{"topic": "record", "action": "write", "recordName": "big", "data": {{"s": "{}"}}}}]}}"#,
        "x".repeat(2 << 20)
    );
    // with a Content-Length: refused before the body is read
    let a = post_json(&addr, "/api", big.clone()).await;
    assert_eq!(a.status, 400, "{a:?}");
    assert_eq!(
        a.text,
        "Failed to parse body of request: request entity too large\r\n\r\n"
    );
    // streamed in chunks, without a length: refused once the limit is passed
    let answer = support::http::post_chunked(&addr, "/api", big.as_bytes(), 64 << 10).await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(
        answer.ends_with("Failed to parse body of request: request entity too large\r\n\r\n"),
        "{answer}"
    );
    let r = post_json(
        &addr,
        "/api",
        json!({"body": [{"topic": "record", "action": "read", "recordName": "big"}]}).to_string(),
    )
    .await;
    assert_eq!(
        r.json()["result"],
        "FAILURE",
        "nothing of an oversized request runs"
    );
    still_serving(&addr, "after-oversized").await;
}

#[tokio::test]
async fn wrong_content_types_methods_and_routes_are_4xx() {
    let addr = support::memory_server().await;
    let body = r#"{"body": [{"topic": "record", "action": "head", "recordName": "a"}]}"#;
    let a = request(&addr, Method::POST, "/api", Some("text/plain"), body).await;
    assert_eq!(a.status, 415, "{a:?}");
    let a = request(&addr, Method::POST, "/api", None, body).await;
    assert_eq!(a.status, 415, "{a:?}");
    let a = request(
        &addr,
        Method::POST,
        "/elsewhere",
        Some("application/json"),
        body,
    )
    .await;
    assert_eq!(
        (a.status, a.text.as_str()),
        (404, "Endpoint not found.\r\n\r\n")
    );
    let a = request(&addr, Method::GET, "/api", None, "").await;
    assert_eq!(a.status, 400, "{a:?}");
    let a = request(&addr, Method::DELETE, "/api", None, "").await;
    assert_eq!(a.status, 405, "{a:?}");
    let a = request(&addr, Method::OPTIONS, "/api", None, "").await;
    assert_eq!(a.status, 400, "{a:?}");
    // the other routes keep theirs
    let a = request(&addr, Method::GET, "/health-check", None, "").await;
    assert_eq!(a.status, 200, "{a:?}");
    still_serving(&addr, "after-routes").await;
}

#[tokio::test]
async fn unserved_topics_fail_alone_and_the_rest_of_the_batch_runs() {
    let addr = support::memory_server().await;
    let a = post_json(
        &addr,
        "/api",
        json!({"body": [
            {"topic": "event", "action": "emit", "eventName": "e"},
            {"topic": "record", "action": "write", "recordName": "r", "data": [1]},
            {"topic": "rpc", "action": "make", "rpcName": "f"},
            {"topic": "presence", "action": "query", "names": ["u"]},
        ]})
        .to_string(),
    )
    .await;
    let v = a.json();
    assert_eq!(v["result"], "PARTIAL_SUCCESS");
    assert_eq!(v["body"][0], json!({"success": true}));
    assert_eq!(v["body"][1], json!({"success": true}));
    for i in [2, 3] {
        assert_eq!(v["body"][i]["errorTopic"], "parser");
        assert_eq!(v["body"][i]["errorEvent"], 1);
    }
}

#[tokio::test]
async fn an_event_emitted_over_http_reaches_websocket_subscribers_unchanged() {
    let addr = support::memory_server().await;
    let mut sub = support::RawClient::connect(&addr).await;
    sub.subscribe_event("http-news").await;
    let body = r#"{"body":[{"topic":"event","action":"emit","eventName":"http-news","data":{"z":1,"a":[1.50,null,"x"],"n":12345678901234567890}},{"topic":"event","action":"emit","eventName":"http-news"}]}"#;
    let a = post_json(&addr, "/api", body).await;
    assert_eq!(
        a.json(),
        json!({"result": "SUCCESS", "body": [{"success": true}, {"success": true}]})
    );
    let got = sub.recv_event().await;
    assert_eq!(
        got.data.as_deref(),
        Some(r#"{"z":1,"a":[1.50,null,"x"],"n":12345678901234567890}"#)
    );
    assert_eq!(sub.recv_event().await.data, None);
}

#[tokio::test]
async fn tokens_from_the_auth_endpoint_and_made_up_ones() {
    let addr = support::memory_server().await;
    let a = post_json(&addr, "/api/auth", "{}").await;
    assert_eq!(a.status, 200, "{a:?}");
    let token = a.json()["token"].as_str().unwrap().to_owned();
    let read = |token: String| {
        json!({"token": token, "body": [{"topic": "record", "action": "head", "recordName": "t"}]})
            .to_string()
    };
    assert_eq!(post_json(&addr, "/api", read(token)).await.status, 200);
    // auth none lets a token it never issued in too, as deepstream's `none` does
    assert_eq!(
        post_json(&addr, "/api", read("made-up".into()))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn the_api_can_be_switched_off_and_moved() {
    let off = support::start_server(recordsync_server::Config {
        storage: recordsync_server::StorageKind::Memory,
        http_api: None,
        ..Default::default()
    })
    .await;
    let a = post_json(&off, "/api", r#"{"body": []}"#).await;
    assert_eq!(a.status, 404, "{a:?}");
    let moved = support::start_server(recordsync_server::Config {
        storage: recordsync_server::StorageKind::Memory,
        http_api: Some(recordsync_server::HttpApiConfig {
            post_path: "/v0/messages".into(),
            enable_auth_endpoint: false,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await;
    let body = r#"{"body": [{"topic": "record", "action": "head", "recordName": "a"}]}"#;
    assert_eq!(post_json(&moved, "/v0/messages", body).await.status, 200);
    assert_eq!(post_json(&moved, "/api", body).await.status, 404);
    assert_eq!(post_json(&moved, "/api/auth", "{}").await.status, 404);
}

/// A server with auth none (a login's `username` is its id) and rules that let only
/// `ada` write and nobody delete.
async fn guarded_server() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("permissions.yml"),
        "record:\n  \"*\":\n    create: true\n    read: true\n    write: \"user.id === 'ada'\"\n    delete: false\n    notify: \"user.id === 'ada'\"\n",
    )
    .unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(
        &path,
        "auth:\n  - type: none\npermission:\n  type: config\n  options:\n    permissions: fileLoad(permissions.yml)\n",
    )
    .unwrap();
    let (config, warnings) = recordsync_server::Config::from_file(&path).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let addr = support::start_server(recordsync_server::Config {
        storage: recordsync_server::StorageKind::Memory,
        ..config
    })
    .await;
    (addr, dir)
}

#[tokio::test]
async fn every_message_is_checked_against_the_rules_as_its_user() {
    let (addr, _dir) = guarded_server().await;
    let write = |who: serde_json::Value| {
        json!({"authData": who, "body": [
            {"topic": "record", "action": "write", "recordName": "doc", "data": {"v": 1}},
            {"topic": "record", "action": "write", "recordName": "doc", "path": "v", "data": 2},
            {"topic": "record", "action": "delete", "recordName": "doc"},
        ]})
        .to_string()
    };
    let bob = post_json(&addr, "/api", write(json!({"username": "bob"})))
        .await
        .json();
    assert_eq!(bob["result"], "FAILURE");
    assert_eq!(
        bob["body"][0],
        json!({"errorTopic": "record", "errorEvent": 115, "success": false, "action": 16,
               "error": "Message denied. Action \"CREATEANDUPDATE\" is not permitted."})
    );
    assert_eq!(bob["body"][1]["action"], 17);
    assert_eq!(bob["body"][2]["action"], 9);
    let ada = post_json(&addr, "/api", write(json!({"username": "ada"})))
        .await
        .json();
    assert_eq!(ada["result"], "PARTIAL_SUCCESS");
    assert_eq!(ada["body"][0], json!({"success": true}));
    assert_eq!(ada["body"][1], json!({"success": true}));
    assert_eq!(ada["body"][2]["errorEvent"], 115);
    // a token stands for the user it was issued to
    let login = post_json(&addr, "/api/auth", r#"{"username": "ada"}"#)
        .await
        .json();
    let token = login["token"].as_str().unwrap();
    let as_token = json!({"token": token, "body": [
        {"topic": "record", "action": "write", "recordName": "doc", "path": "v", "data": 3},
        {"topic": "record", "action": "read", "recordName": "doc"},
    ]});
    let a = post_json(&addr, "/api", as_token.to_string()).await.json();
    assert_eq!(
        a,
        json!({"result": "SUCCESS", "body": [{"success": true}, {"version": 3, "data": {"v": 3}, "success": true}]})
    );
    // a token made up is offered to the auth types, and auth none lets it in as nobody
    let made_up = json!({"token": "made-up", "body": [
        {"topic": "record", "action": "write", "recordName": "doc", "path": "v", "data": 4},
    ]});
    let a = post_json(&addr, "/api", made_up.to_string()).await.json();
    assert_eq!(a["body"][0]["errorEvent"], 115);
}

#[tokio::test]
async fn notify_is_checked_against_the_notify_rule() {
    let (addr, _dir) = guarded_server().await;
    let notify = |who: &str| {
        json!({"authData": {"username": who}, "body": [
            {"topic": "record", "action": "notify", "recordNames": ["doc", "other"]},
        ]})
        .to_string()
    };
    let bob = post_json(&addr, "/api", notify("bob")).await.json();
    assert_eq!(
        bob,
        json!({"result": "FAILURE", "body": [{"errorTopic": "record", "errorEvent": 115, "success": false,
               "action": 2, "error": "Message denied. Action \"NOTIFY\" is not permitted."}]})
    );
    let ada = post_json(&addr, "/api", notify("ada")).await.json();
    assert_eq!(
        ada,
        json!({"result": "SUCCESS", "body": [{"success": true}]})
    );
}

/// deepstream's `notify`: a record changed in the store behind a node's back (here by a
/// second node sharing the PostgreSQL schema but no bus, so nothing announces it) reaches
/// that node's subscribers once the API is told, and records nobody holds need nothing.
#[tokio::test]
async fn notify_tells_subscribers_of_changes_made_behind_the_servers_back() {
    use recordsync_deepstream_protocol::RecordAction;
    use recordsync_store::postgres::testing::TestSchema;
    let schema = TestSchema::new("http_notify");
    let node = || {
        support::start_server(recordsync_server::Config {
            storage: recordsync_server::StorageKind::Postgres(schema.url()),
            ..recordsync_server::Config::default()
        })
    };
    let (here, elsewhere) = (node().await, node().await);
    let mut subscriber = support::RawClient::connect(&here).await;
    let read = subscriber.subscribe("notes/n").await;
    assert_eq!(read.version, Some(0));
    let write = json!({"body": [
        {"topic": "record", "action": "write", "recordName": "notes/n", "data": {"by": "elsewhere"}},
    ]});
    let w = post_json(&elsewhere, "/api", write.to_string())
        .await
        .json();
    assert_eq!(w["result"], "SUCCESS", "{w}");
    assert!(
        subscriber
            .try_recv(std::time::Duration::from_millis(300))
            .await
            .is_none(),
        "without a bus, nothing tells this node"
    );
    let notify = json!({"body": [
        {"topic": "record", "action": "notify", "recordNames": ["notes/n", "notes/never-used"]},
    ]});
    let n = post_json(&here, "/api", notify.to_string()).await.json();
    assert_eq!(n, json!({"result": "SUCCESS", "body": [{"success": true}]}));
    let update = subscriber.recv_action(RecordAction::Update).await;
    assert_eq!(update.version, Some(1));
    assert_eq!(
        support::json_value(&update.data),
        json!({"by": "elsewhere"})
    );
    // an invalid name is refused as deepstream refuses a bad message, alone
    let bad = json!({"body": [{"topic": "record", "action": "notify", "recordNames": [""]}]});
    let b = post_json(&here, "/api", bad.to_string()).await;
    assert!(b.status == 400 || b.json()["result"] == "FAILURE", "{b:?}");
}

/// In a cluster, `notify` on one node reaches the subscribers of every node: the others
/// are asked to read the records again.
#[tokio::test]
async fn notify_on_one_node_reaches_the_subscribers_of_the_others() {
    use recordsync_deepstream_protocol::RecordAction;
    use recordsync_store::postgres::testing::TestSchema;
    let schema = TestSchema::new("http_notify_cluster");
    let node = |cluster: Option<&str>| {
        support::start_server(recordsync_server::Config {
            storage: recordsync_server::StorageKind::Postgres(schema.url()),
            cluster: cluster.map(str::to_owned),
            ..recordsync_server::Config::default()
        })
    };
    let bus = Some("redis://127.0.0.1:6379");
    let (one, two, outside) = (node(bus).await, node(bus).await, node(None).await);
    let mut subscriber = support::RawClient::connect(&two).await;
    assert_eq!(subscriber.subscribe("notes/c").await.version, Some(0));
    let write = json!({"body": [
        {"topic": "record", "action": "write", "recordName": "notes/c", "data": {"by": "outside"}},
    ]});
    let w = post_json(&outside, "/api", write.to_string()).await.json();
    assert_eq!(w["result"], "SUCCESS", "{w}");
    let notify =
        json!({"body": [{"topic": "record", "action": "notify", "recordNames": ["notes/c"]}]});
    let n = post_json(&one, "/api", notify.to_string()).await.json();
    assert_eq!(n, json!({"result": "SUCCESS", "body": [{"success": true}]}));
    let update = subscriber.recv_action(RecordAction::Update).await;
    assert_eq!(update.version, Some(1));
    assert_eq!(support::json_value(&update.data), json!({"by": "outside"}));
}

/// deepstream's `requestTimeout`: the messages not done in time are answered as timed out
/// (deepstream's text and event), the others with their results; the messages still run
/// to their end, so a write answered as timed out is applied once the store takes it.
#[tokio::test]
async fn messages_not_done_within_the_request_timeout_are_answered_as_timed_out() {
    let (store, mut gates) = Gated::wrap(Arc::new(MemoryStore::new()) as Arc<dyn Store>);
    let mut config = Config {
        port: 0,
        storage: StorageKind::Memory,
        ..Config::default()
    };
    config.http_api.as_mut().unwrap().request_timeout = Duration::from_secs(2);
    let server = Server::bind_with(config, store, None).await.unwrap();
    let addr = server.local_addr().to_string();
    tokio::spawn(server.run(std::future::pending()));
    still_serving(&addr, "before").await;

    gates.commits.send(true).unwrap();
    let batch = json!({"body": [
        {"topic": "record", "action": "read", "recordName": "before"},
        {"topic": "record", "action": "write", "recordName": "held", "data": {"n": 1}},
        {"topic": "record", "action": "head", "recordName": "before"},
    ]});
    let a = post_json(&addr, "/api", batch.to_string()).await;
    assert_eq!(a.status, 200, "{a:?}");
    let timed_out = r#"{"success":false,"error":"Request exceeded timeout before a response was received.","errorTopic":"connection","errorEvent":"HTTP_REQUEST_TIMEOUT"}"#;
    assert_eq!(
        a.text,
        format!(
            r#"{{"result":"PARTIAL_SUCCESS","body":[{{"version":1,"data":{{"ok":true}},"success":true}},{timed_out},{timed_out}]}}"#
        ) + "\r\n\r\n"
    );
    gates.holding("commit").await;
    gates.commits.send(false).unwrap();
    // The write went on and is applied.
    let read = json!({"body": [{"topic": "record", "action": "read", "recordName": "held"}]});
    let mut answer = post_json(&addr, "/api", read.to_string()).await.json();
    for _ in 0..100 {
        if answer["result"] == "SUCCESS" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        answer = post_json(&addr, "/api", read.to_string()).await.json();
    }
    assert_eq!(
        answer,
        json!({"result": "SUCCESS", "body": [{"version": 1, "data": {"n": 1}, "success": true}]})
    );
}

/// `allowAllOrigins: false` with `origins` and `hostUrl` guards the health check as it
/// guards the API (deepstream checks every plain HTTP request); with every origin
/// allowed, the health check says so.
#[tokio::test]
async fn the_origin_and_host_checks_cover_the_health_check() {
    let open = support::memory_server().await;
    let h = send(&open, Method::GET, "/health-check", &[], None).await;
    assert_eq!(h.status, 200, "{h:?}");
    assert_eq!(h.header("access-control-allow-origin"), Some("*"));

    let guarded = support::start_server(Config {
        storage: StorageKind::Memory,
        cors: Cors {
            allow_all_origins: false,
            origins: vec!["https://app.example".into()],
            host_url: Some("db.example:6020".into()),
        },
        ..Config::default()
    })
    .await;
    let host = ("host", "db.example:6020");
    let origin = ("origin", "https://app.example");
    for (headers, status, text) in [
        (vec![origin], 403, "Forbidden Host.\r\n\r\n"),
        (
            vec![host],
            403,
            "CORS is configured for this. All requests must set a valid \"Origin\" header.\r\n\r\n",
        ),
        (
            vec![host, ("origin", "https://evil.example")],
            403,
            "Origin \"https://evil.example\" is forbidden.\r\n\r\n",
        ),
        (vec![host, origin], 200, ""),
        (vec![host, ("referer", "https://app.example")], 200, ""),
    ] {
        for path in ["/health-check", "/api"] {
            let method = if path == "/api" {
                Method::POST
            } else {
                Method::GET
            };
            let body = (path == "/api")
                .then_some(r#"{"body":[{"topic":"record","action":"head","recordName":"x"}]}"#);
            let a = send(&guarded, method, path, &headers, body).await;
            assert_eq!(a.status, status, "{path} {headers:?}: {a:?}");
            if status == 403 {
                assert_eq!(a.text, text, "{path} {headers:?}");
            } else {
                assert_eq!(
                    a.header("access-control-allow-origin"),
                    Some("https://app.example")
                );
                assert_eq!(a.header("access-control-allow-credentials"), Some("true"));
                assert_eq!(a.header("vary"), Some("Origin"));
            }
        }
    }
}
