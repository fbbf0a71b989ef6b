//! Black-box tests of the permission rules on ShareDB's requests, with a config file that
//! also moves the ShareDB endpoint: a real server on an ephemeral port, a raw ShareDB
//! client.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

mod support;

use serde_json::{Value, json};

use recordsync_server::{Config, Server, StorageKind};
use support::sharedb::{JSON0_URI, ShareDbClient};

const PERMISSIONS: &str = r#"
record:
  "*":
    create: true
    write: true
    read: true
    delete: true
  secret/*:
    read: false
  nocreate/*:
    create: false
  locked/*:
    write: "data.n < 10 && oldData.n >= 0"
    delete: "oldData.keep !== true"
"#;

const CONFIG: &str = "connectionEndpoints:\n  - type: sharedb\n    options:\n      urlPath: /share\npermission:\n  type: config\n  options:\n    permissions: fileLoad(permissions.yml)\n";

async fn start() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("permissions.yml"), PERMISSIONS).unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(&path, CONFIG).unwrap();
    let (mut config, warnings) = Config::from_file(&path).expect("config loads");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.sharedb_path.as_deref(), Some("/share"));
    config.port = 0;
    config.storage = StorageKind::Memory;
    let server = Server::bind(config).await.expect("server binds");
    let addr = server.local_addr().to_string();
    tokio::spawn(server.run(std::future::pending()));
    (addr, dir)
}

fn code(reply: &Value) -> &str {
    reply["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code: {reply}"))
}

#[tokio::test]
async fn reads_creates_ops_and_deletes_are_checked_by_the_rules() {
    let (addr, _dir) = start().await;
    let mut c = ShareDbClient::connect_at(&addr, "/share").await;

    // Reads: fetch, subscribe, snapshots.
    for request in [
        json!({"a": "f", "c": "secret", "d": "x"}),
        json!({"a": "s", "c": "secret", "d": "x"}),
        json!({"a": "nf", "id": 1, "c": "secret", "d": "x", "v": null}),
    ] {
        c.send(request.clone()).await;
        let reply = c.recv().await;
        assert_eq!(code(&reply), "ERR_SNAPSHOT_READS_REJECTED", "{request}");
    }
    c.send(json!({"a": "bf", "c": "secret", "b": ["x"]})).await;
    let bulk = c.recv().await;
    assert_eq!(
        bulk["data"]["x"]["error"]["code"], "ERR_SNAPSHOT_READS_REJECTED",
        "{bulk}"
    );

    // Creates.
    c.submit(
        "nocreate",
        "x",
        Some(0),
        json!({"create": {"type": JSON0_URI, "data": {}}}),
    )
    .await;
    assert_eq!(code(&c.error().await), "ERR_OP_SUBMIT_REJECTED");
    assert_eq!(
        c.fetch("nocreate", "x").await,
        json!({"v": 0, "type": null})
    );

    // Ops: the rule sees the document after the op as `data`, and before it as `oldData`.
    c.create("locked", "a", Some(0), json!({"n": 1, "keep": true}))
        .await;
    assert_eq!(
        c.edit("locked", "a", 1, json!([{"p": ["n"], "na": 5}]))
            .await,
        1
    );
    c.submit(
        "locked",
        "a",
        Some(2),
        json!({"op": [{"p": ["n"], "na": 5}]}),
    )
    .await;
    assert_eq!(code(&c.error().await), "ERR_OP_SUBMIT_REJECTED");
    // An op that does not apply fails the rule that reads `data`.
    c.submit(
        "locked",
        "a",
        Some(2),
        json!({"op": [{"p": ["missing", 0], "ld": 1}]}),
    )
    .await;
    assert_eq!(code(&c.error().await), "ERR_OP_SUBMIT_REJECTED");
    assert_eq!(
        c.fetch("locked", "a").await,
        json!({"v": 2, "data": {"n": 6, "keep": true}})
    );

    // Deletes.
    c.submit("locked", "a", Some(2), json!({"del": true})).await;
    assert_eq!(code(&c.error().await), "ERR_OP_SUBMIT_REJECTED");
    c.create("locked", "b", Some(0), json!({"n": 0, "keep": false}))
        .await;
    let seq = c.submit("locked", "b", Some(1), json!({"del": true})).await;
    assert_eq!(c.ack(seq).await.1["v"], 1);

    // The endpoint is where the config file put it.
    let refused = tokio_tungstenite::connect_async(format!("ws://{addr}/sharedb")).await;
    assert!(
        refused.is_err(),
        "the default path is not served when moved"
    );
}

#[tokio::test]
async fn the_endpoint_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(
        &path,
        "connectionEndpoints:\n  - type: sharedb\n    options:\n      enabled: false\n",
    )
    .unwrap();
    let (mut config, warnings) = Config::from_file(&path).expect("config loads");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.sharedb_path, None);
    assert_eq!(Config::default().sharedb_path.as_deref(), Some("/sharedb"));
    config.port = 0;
    config.storage = StorageKind::Memory;
    let server = Server::bind(config).await.expect("server binds");
    let addr = server.local_addr().to_string();
    tokio::spawn(server.run(std::future::pending()));
    let refused = tokio_tungstenite::connect_async(format!("ws://{addr}/sharedb")).await;
    assert!(refused.is_err());
}
