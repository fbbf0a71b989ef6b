//! Black-box tests of who a ShareDB connection is: its WebSocket upgrade request is
//! authenticated with the configured auth types (a token in the URL, a bearer token or
//! Basic credentials in the `Authorization` header), a refused one is answered 401, and
//! the Valve rules see that user on reads, ops, deletes, queries and presence.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

mod support;

use serde_json::{Value, json};

use recordsync_server::{Config, StorageKind};
use support::sharedb::{JSON0_URI, ShareDbClient};

const PERMISSIONS: &str = r#"
record:
  "*":
    create: true
    write: true
    read: true
    delete: true
  private/$owner:
    read: "$owner === user.id"
    write: "$owner === user.id"
    create: "$owner === user.id"
  posts/$id:
    create: "user.isAuthenticated"
    write: "data.author === user.id"
    delete: "user.data.role === 'admin'"
  rooms/$owner:
    write: "$owner === user.id"
"#;

/// A server with file auth (alice, carol), which admits no anonymous user, and the rules
/// above.
async fn secured() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let addr = support::start_server(support::file_auth::config(dir.path(), PERMISSIONS)).await;
    (addr, dir)
}

async fn as_user(addr: &str, token: &str) -> ShareDbClient {
    ShareDbClient::connect_with(addr, &format!("/sharedb?access_token={token}"), &[])
        .await
        .unwrap_or_else(|(status, body)| panic!("refused: {status} {body}"))
}

fn code(reply: &Value) -> &str {
    reply["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code: {reply}"))
}

/// Submits a create of `(c, d)` and returns the reply (an ack or an error).
async fn create(client: &mut ShareDbClient, c: &str, d: &str, data: Value) -> Value {
    let seq = client.seq;
    client.seq += 1;
    client
        .send(
            json!({"a": "op", "c": c, "d": d, "v": null, "src": client.src, "seq": seq,
                     "create": {"type": JSON0_URI, "data": data}}),
        )
        .await;
    client.recv().await
}

#[tokio::test]
async fn upgrades_without_accepted_credentials_are_refused_with_401() {
    let (addr, _dir) = secured().await;
    for (path, headers) in [
        // No credentials: file auth admits nobody anonymous.
        ("/sharedb", vec![]),
        ("/sharedb?access_token=made-up", vec![]),
        ("/sharedb?token=made-up", vec![]),
        ("/sharedb?access_token=", vec![]),
        ("/sharedb", vec![("authorization", "Bearer made-up")]),
        (
            "/sharedb",
            vec![("authorization", "Basic YWxpY2U6d3Jvbmc=")],
        ),
        ("/sharedb", vec![("authorization", "Digest x")]),
    ] {
        let Err((status, body)) = ShareDbClient::connect_with(&addr, path, &headers).await else {
            panic!("{path} {headers:?} was let in");
        };
        assert_eq!(status, 401, "{path} {headers:?}: {body}");
        assert!(!body.is_empty(), "{path} {headers:?}: the 401 says why");
    }
    let Err((_, body)) = ShareDbClient::connect_with(&addr, "/sharedb", &[]).await else {
        panic!("let in");
    };
    assert!(body.contains("access_token"), "{body}");
    // A token in both places is ambiguous.
    let alice = support::file_auth::token(&addr, "alice").await;
    let bearer = format!("Bearer {alice}");
    let both = ShareDbClient::connect_with(
        &addr,
        &format!("/sharedb?access_token={alice}"),
        &[("authorization", bearer.as_str())],
    )
    .await;
    assert_eq!(both.err().map(|(status, _)| status), Some(401));
}

#[tokio::test]
async fn every_way_to_send_credentials_names_the_user() {
    let (addr, _dir) = secured().await;
    let alice = support::file_auth::token(&addr, "alice").await;
    let bearer = format!("Bearer {alice}");
    let clients = [
        ShareDbClient::connect_with(&addr, &format!("/sharedb?access_token={alice}"), &[]).await,
        ShareDbClient::connect_with(&addr, &format!("/sharedb?token={alice}"), &[]).await,
        ShareDbClient::connect_with(&addr, "/sharedb", &[("authorization", bearer.as_str())]).await,
        ShareDbClient::connect_with(
            &addr,
            "/sharedb",
            &[("authorization", "Basic YWxpY2U6cGFzc3dvcmQ=")],
        )
        .await,
    ];
    for (i, client) in clients.into_iter().enumerate() {
        let mut client = client.unwrap_or_else(|(s, b)| panic!("way {i}: refused {s} {b}"));
        // Only alice may create and read private/alice.
        let id = format!("alice-{i}");
        let reply = create(&mut client, "private", "alice", json!({"n": i})).await;
        if i == 0 {
            assert!(reply.get("error").is_none(), "way {i}: {reply}");
        } else {
            // Made by the first way already.
            assert_eq!(code(&reply), "ERR_DOC_ALREADY_CREATED", "way {i}: {reply}");
        }
        let snapshot = client.fetch("private", "alice").await;
        assert_eq!(snapshot["data"], json!({"n": 0}), "way {i} ({id})");
        client
            .send(json!({"a": "f", "c": "private", "d": "carol"}))
            .await;
        let refused = client.recv().await;
        assert_eq!(
            code(&refused),
            "ERR_SNAPSHOT_READS_REJECTED",
            "way {i}: {refused}"
        );
    }
}

#[tokio::test]
async fn rules_see_the_user_on_reads_ops_deletes_queries_and_presence() {
    let (addr, _dir) = secured().await;
    let mut alice = as_user(&addr, &support::file_auth::token(&addr, "alice").await).await;
    let mut carol = as_user(&addr, &support::file_auth::token(&addr, "carol").await).await;

    // Creates and reads: each owner only.
    let r = create(&mut alice, "private", "alice", json!({"secret": 1})).await;
    assert!(r.get("error").is_none(), "{r}");
    let r = create(&mut carol, "private", "carol", json!({"secret": 2})).await;
    assert!(r.get("error").is_none(), "{r}");
    let r = create(&mut alice, "private", "carol2", json!({})).await;
    assert_eq!(code(&r), "ERR_OP_SUBMIT_REJECTED", "{r}");

    // Queries: a fetched and a live query leave out what the user may not read.
    for a in ["qf", "qs"] {
        alice
            .send(json!({"a": a, "id": 1, "c": "private", "q": {}}))
            .await;
        let reply = alice.recv().await;
        assert_eq!(reply["a"], a, "{reply}");
        let ids: Vec<&str> = reply["data"]
            .as_array()
            .unwrap_or_else(|| panic!("{reply}"))
            .iter()
            .map(|r| r["d"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["alice"], "{a}: {reply}");
        if a == "qs" {
            alice.send(json!({"a": "qu", "id": 1})).await;
            assert_eq!(alice.recv().await["a"], "qu");
        }
    }

    // Ops: `data.author === user.id`; the journal names the author.
    let r = create(
        &mut alice,
        "posts",
        "1",
        json!({"author": "alice", "t": ""}),
    )
    .await;
    assert!(r.get("error").is_none(), "{r}");
    // The ack names the version the op applied to.
    let v = alice
        .edit("posts", "1", 1, json!([{"p": ["t"], "oi": "hi"}]))
        .await;
    assert_eq!(v, 1);
    let seq = carol.seq;
    carol.seq += 1;
    carol
        .send(
            json!({"a": "op", "c": "posts", "d": "1", "v": 2, "src": carol.src, "seq": seq,
                     "op": [{"p": ["t"], "od": "hi", "oi": "mine"}]}),
        )
        .await;
    let refused = carol.recv().await;
    assert_eq!(code(&refused), "ERR_OP_SUBMIT_REJECTED", "{refused}");
    let alice_bearer = format!("Bearer {}", support::file_auth::token(&addr, "alice").await);
    let history = support::http::send(
        &addr,
        reqwest::Method::GET,
        "/v1/records/posts/1/history",
        &[("authorization", alice_bearer.as_str())],
        None,
    )
    .await;
    assert!(
        history.text.contains(r#""author":"alice""#),
        "{}",
        history.text
    );

    // Deletes: `user.data.role === 'admin'` (server data from the users file).
    let seq = alice.seq;
    alice.seq += 1;
    alice
        .send(json!({"a": "op", "c": "posts", "d": "1", "v": 2, "src": alice.src, "seq": seq, "del": true}))
        .await;
    let refused = alice.recv().await;
    assert_eq!(code(&refused), "ERR_OP_SUBMIT_REJECTED", "{refused}");
    let seq = carol.seq;
    carol.seq += 1;
    carol
        .send(json!({"a": "op", "c": "posts", "d": "1", "v": 2, "src": carol.src, "seq": seq, "del": true}))
        .await;
    let (_, ack) = carol.ack(seq).await;
    assert!(ack.get("error").is_none(), "{ack}");

    // Presence: publishing on rooms/<owner> is a write of it.
    alice
        .send(json!({"a": "p", "ch": "rooms/carol", "id": "x", "p": {"at": 1}, "pv": 0}))
        .await;
    let refused = alice.recv().await;
    assert_eq!(code(&refused), "ERR_OP_SUBMIT_REJECTED", "{refused}");
    alice
        .send(json!({"a": "p", "ch": "rooms/alice", "id": "x", "p": {"at": 1}, "pv": 0}))
        .await;
    let ack = alice.recv().await;
    assert_eq!(
        (ack["a"].as_str(), ack.get("error")),
        (Some("p"), None),
        "{ack}"
    );
}

/// Without auth settings (the `none` type) a connection without credentials is the
/// anonymous user, as before; a rule on `user.isAuthenticated` refuses it.
#[tokio::test]
async fn an_open_server_lets_anonymous_connections_in() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("permissions.yml"), PERMISSIONS).unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(
        &path,
        "permission:\n  type: config\n  options:\n    permissions: fileLoad(permissions.yml)\n",
    )
    .unwrap();
    let (config, _) = Config::from_file(&path).expect("config loads");
    let addr = support::start_server(Config {
        storage: StorageKind::Memory,
        ..config
    })
    .await;
    let mut anonymous = ShareDbClient::connect_with(&addr, "/sharedb", &[])
        .await
        .unwrap_or_else(|(s, b)| panic!("refused: {s} {b}"));
    let r = create(&mut anonymous, "notes", "1", json!({})).await;
    assert!(r.get("error").is_none(), "{r}");
    let r = create(&mut anonymous, "posts", "1", json!({"author": null})).await;
    assert_eq!(code(&r), "ERR_OP_SUBMIT_REJECTED", "{r}");
}
