//! Black-box tests of authentication and permissions: a real server on an ephemeral port
//! with a config, permissions.yml and users.yml from a temporary directory, driven by a
//! raw protocol client.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value as Json, json};

use recordsync_deepstream_protocol::{
    AuthAction, AuthMessage, ConnectionAction, ConnectionMessage, Message, RecordAction,
    RecordMessage,
};
use recordsync_server::{Config, Server, StorageKind};
use support::{RawClient, json_value, patch, update};

const PERMISSIONS: &str = r#"
record:
  "*":
    create: true
    write: true
    read: true
    delete: true
    listen: true
  settings/$username:
    write: "$username === user.id"
    delete: "$username === user.id"
  secret/*:
    read: false
    write: false
    delete: false
    listen: false
  posts/$id:
    write: "data.author === user.id"
    delete: "oldData.author === user.id || user.data.role === 'admin'"
  teams/$team/docs/*:
    read: "_('teams/' + $team).members.includes(user.id)"
  broken/*:
    read: "_('nothing/here').field === 1"
  nocreate/*:
    create: false
"#;

/// deepstream's own example user: "password" hashed with its default options.
const USERS: &str = r#"
alice:
  password: "rCOSZxJrgze2AZdVQh12c6ErDMOG0M+Rx5Yu7S5d91c=GS4SbTQYmoaGwjm2shEobg=="
  serverData:
    role: user
  clientData:
    favouriteColor: red
carol:
  password: "rCOSZxJrgze2AZdVQh12c6ErDMOG0M+Rx5Yu7S5d91c=GS4SbTQYmoaGwjm2shEobg=="
  serverData:
    role: admin
"#;

fn write_files(dir: &Path, auth: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("permissions.yml"), PERMISSIONS).unwrap();
    std::fs::write(dir.join("users.yml"), USERS).unwrap();
    let config = format!(
        "{auth}\npermission:\n  type: config\n  options:\n    permissions: fileLoad(permissions.yml)\n    maxRuleIterations: 3\n    cacheEvacuationInterval: 60000\n"
    );
    let path = dir.join("config.yml");
    std::fs::write(&path, config).unwrap();
    path
}

const AUTH_NONE: &str = "auth:\n  - type: none\n";
const AUTH_FILE: &str = "auth:\n  - type: file\n    options:\n      users: fileLoad(users.yml)\n      hash: md5\n      iterations: 100\n      keyLength: 32\nconnectionEndpoints:\n  - type: ws-binary\n    options:\n      maxAuthAttempts: 3\n      unauthenticatedClientTimeout: 1000\n";

async fn start(auth: &str) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_files(dir.path(), auth);
    let (mut config, warnings) = Config::from_file(&path).expect("config loads");
    assert!(warnings.is_empty(), "{warnings:?}");
    config.port = 0;
    config.storage = StorageKind::Memory;
    let server = Server::bind(config).await.expect("server binds");
    let addr = server.local_addr().to_string();
    tokio::spawn(server.run(std::future::pending()));
    (addr, dir)
}

/// Connects and sends AUTH/REQUEST with `auth`; returns the client and the auth reply.
async fn login(addr: &str, auth: Json) -> (RawClient, AuthMessage) {
    let mut c = RawClient::connect_raw(addr, "/deepstream").await;
    c.send(ConnectionMessage {
        action: ConnectionAction::Challenge as i32,
        url: Some(format!("ws://{addr}/deepstream")),
        protocol_version: Some("0.1a".into()),
        ..Default::default()
    })
    .await;
    assert!(matches!(c.recv().await, Message::Connection(_)));
    let reply = send_auth(&mut c, auth).await;
    (c, reply)
}

async fn send_auth(c: &mut RawClient, auth: Json) -> AuthMessage {
    c.send(AuthMessage {
        action: AuthAction::Request as i32,
        data: Some(auth.to_string()),
        ..Default::default()
    })
    .await;
    match c.recv().await {
        Message::Auth(m) => m,
        other => panic!("expected an AUTH reply, got {other:?}"),
    }
}

async fn user(addr: &str, name: &str) -> RawClient {
    let (c, reply) = login(addr, json!({"username": name, "password": "password"})).await;
    assert_eq!(reply.action, AuthAction::AuthSuccessful as i32, "{reply:?}");
    c
}

fn assert_denied(m: &RecordMessage, original: RecordAction, name: &str) {
    assert_eq!(m.action, RecordAction::MessageDenied as i32, "{m:?}");
    assert_eq!(m.original_action, Some(original as i32), "{m:?}");
    assert_eq!(m.name.as_deref(), Some(name), "{m:?}");
    assert_eq!(m.is_error, Some(true));
}

#[tokio::test]
async fn the_seed_rule_lets_only_that_user_write_their_settings() {
    let (addr, _dir) = start(AUTH_NONE).await;
    let mut alice = user(&addr, "alice").await;
    let mut bob = user(&addr, "bob").await;
    alice.subscribe("settings/alice").await;
    alice
        .write(
            update("settings/alice", 1, r#"{"theme":"dark"}"#),
            Some("a1"),
        )
        .await;
    bob.subscribe("settings/alice").await;
    let mut m = update("settings/alice", 2, r#"{"theme":"pwned"}"#);
    m.is_write_ack = Some(true);
    m.correlation_id = Some("b1".into());
    bob.send(m).await;
    let reply = bob.recv_record().await;
    assert_denied(&reply, RecordAction::Update, "settings/alice");
    assert_eq!(reply.correlation_id.as_deref(), Some("b1"));
    assert_eq!(reply.is_write_ack, Some(true));
    // A patch and setData are refused too; alice's record is untouched.
    bob.send(patch("settings/alice", 2, "theme", "\"x\"")).await;
    assert_denied(
        &bob.recv_record().await,
        RecordAction::Patch,
        "settings/alice",
    );
    bob.send(RecordMessage {
        version: Some(-1),
        data: Some("{}".into()),
        ..RecordMessage::named(RecordAction::CreateAndUpdate, "settings/alice")
    })
    .await;
    assert_denied(
        &bob.recv_record().await,
        RecordAction::CreateAndUpdate,
        "settings/alice",
    );
    bob.send(RecordMessage::named(RecordAction::Delete, "settings/alice"))
        .await;
    assert_denied(
        &bob.recv_record().await,
        RecordAction::Delete,
        "settings/alice",
    );
    assert_eq!(alice.head("settings/alice").await, 1);
    // bob may write his own.
    bob.subscribe("settings/bob").await;
    bob.write(
        update("settings/bob", 1, r#"{"theme":"light"}"#),
        Some("b2"),
    )
    .await;
}

#[tokio::test]
async fn a_denied_read_reveals_nothing_not_even_existence() {
    let (addr, _dir) = start(AUTH_NONE).await;
    let mut c = user(&addr, "alice").await;
    // secret/exists cannot be created by a client (write: false), but subscribing creates
    // it: create is allowed by "*"... read is not, so the subscription is refused first.
    c.send(RecordMessage {
        names: vec!["secret/x".into()],
        correlation_id: Some("s1".into()),
        ..RecordMessage::new(RecordAction::SubscribeCreateAndRead)
    })
    .await;
    let ack = c.recv_record().await;
    assert_eq!(ack.is_ack, Some(true));
    assert_denied(
        &c.recv_record().await,
        RecordAction::SubscribeCreateAndRead,
        "secret/x",
    );
    // Every read path answers the same for a record that exists and one that does not.
    for name in ["secret/x", "secret/never"] {
        c.send(RecordMessage::named(RecordAction::Read, name)).await;
        let a = c.recv_record().await;
        assert_denied(&a, RecordAction::Read, name);
        c.send(RecordMessage::named(RecordAction::Head, name)).await;
        assert_denied(&c.recv_record().await, RecordAction::Head, name);
        assert!(a.data.is_none() && a.version.is_none());
    }
    c.send(RecordMessage {
        names: vec!["secret/x".into(), "open/y".into()],
        correlation_id: Some("h".into()),
        ..RecordMessage::new(RecordAction::HeadBulk)
    })
    .await;
    assert_denied(&c.recv_record().await, RecordAction::HeadBulk, "secret/x");
    let bulk = c.recv_action(RecordAction::HeadResponseBulk).await;
    assert!(!bulk.versions.contains_key("secret/x"), "{bulk:?}");
    assert_eq!(bulk.versions.get("open/y"), Some(&-1));
    c.send(RecordMessage {
        names: vec!["secret/x".into()],
        ..RecordMessage::new(RecordAction::SubscribeAndHead)
    })
    .await;
    assert_denied(
        &c.recv_record().await,
        RecordAction::SubscribeAndHead,
        "secret/x",
    );
    let reply = c.recv_record().await;
    assert_eq!(reply.action, RecordAction::HeadResponseBulk as i32);
    assert!(reply.versions.is_empty(), "{reply:?}");
    // Listening on a secret pattern is refused; the pattern's text is what is checked.
    c.send(RecordMessage::named(RecordAction::Listen, "secret/.*"))
        .await;
    assert_denied(&c.recv_record().await, RecordAction::Listen, "secret/.*");
    c.send(RecordMessage::named(RecordAction::Listen, "public/.*"))
        .await;
    let ack = c.recv_record().await;
    assert_eq!(
        (ack.action, ack.is_ack),
        (RecordAction::Listen as i32, Some(true))
    );
}

#[tokio::test]
async fn rules_read_data_old_data_and_other_records() {
    let (addr, _dir) = start(AUTH_FILE).await;
    let mut alice = user(&addr, "alice").await;
    let mut carol = user(&addr, "carol").await;
    alice.subscribe("posts/1").await;
    // data is the merged record for a patch: author must be alice after the write.
    alice.send(patch("posts/1", 1, "title", "\"hi\"")).await;
    assert_denied(&alice.recv_record().await, RecordAction::Patch, "posts/1");
    alice
        .write(update("posts/1", 1, r#"{"author":"alice"}"#), Some("w1"))
        .await;
    alice
        .write(patch("posts/1", 2, "title", "\"hi\""), Some("w2"))
        .await;
    // delete: oldData.author, or an admin.
    carol.subscribe("posts/2").await;
    carol
        .write(update("posts/2", 1, r#"{"author":"carol"}"#), Some("c1"))
        .await;
    alice
        .send(RecordMessage::named(RecordAction::Delete, "posts/2"))
        .await;
    assert_denied(&alice.recv_record().await, RecordAction::Delete, "posts/2");
    carol
        .send(RecordMessage::named(RecordAction::Delete, "posts/1"))
        .await;
    assert_eq!(
        carol
            .recv_action(RecordAction::DeleteSuccess)
            .await
            .name
            .as_deref(),
        Some("posts/1")
    );
    let deleted = alice.recv_record().await;
    assert_eq!(deleted.action, RecordAction::Deleted as i32, "{deleted:?}");
    // Cross-references: team membership decides reads of the team's documents.
    carol.subscribe("teams/red").await;
    carol
        .write(
            update("teams/red", 1, r#"{"members":["carol"]}"#),
            Some("c2"),
        )
        .await;
    let read = carol.subscribe("teams/red/docs/plan").await;
    assert_eq!(read.version, Some(0));
    alice
        .send(RecordMessage::named(
            RecordAction::Read,
            "teams/red/docs/plan",
        ))
        .await;
    assert_denied(
        &alice.recv_record().await,
        RecordAction::Read,
        "teams/red/docs/plan",
    );
    // A rule that throws (reading a field of a missing record) is a permission error.
    alice
        .send(RecordMessage::named(RecordAction::Read, "broken/1"))
        .await;
    let m = alice.recv_record().await;
    assert_eq!(
        m.action,
        RecordAction::MessagePermissionError as i32,
        "{m:?}"
    );
    assert_eq!(m.original_action, Some(RecordAction::Read as i32));
    // create: false refuses subscribing to a missing record, but not to an existing one.
    alice
        .send(RecordMessage {
            names: vec!["nocreate/1".into()],
            ..RecordMessage::new(RecordAction::SubscribeCreateAndRead)
        })
        .await;
    alice.recv_record().await;
    assert_denied(
        &alice.recv_record().await,
        RecordAction::SubscribeCreateAndRead,
        "nocreate/1",
    );
}

#[tokio::test]
async fn file_auth_sends_client_data_and_cuts_off_after_max_attempts() {
    let (addr, _dir) = start(AUTH_FILE).await;
    let (_c, reply) = login(&addr, json!({"username": "alice", "password": "password"})).await;
    assert_eq!(reply.action, AuthAction::AuthSuccessful as i32);
    assert_eq!(json_value(&reply.data), json!({"favouriteColor": "red"}));
    // carol has no clientData: no data, as deepstream sends it.
    let (_c, reply) = login(&addr, json!({"username": "carol", "password": "password"})).await;
    assert_eq!(
        (reply.action, reply.data),
        (AuthAction::AuthSuccessful as i32, None)
    );

    let (mut c, reply) = login(&addr, json!({"username": "alice", "password": "wrong"})).await;
    assert_eq!(reply.action, AuthAction::AuthUnsuccessful as i32);
    let reply = send_auth(&mut c, json!({"username": "nobody", "password": "x"})).await;
    assert_eq!(reply.action, AuthAction::AuthUnsuccessful as i32);
    let reply = send_auth(&mut c, json!({"username": "alice"})).await;
    assert_eq!(reply.action, AuthAction::AuthUnsuccessful as i32);
    assert_eq!(
        json_value(&reply.data),
        json!({"error": "missing authentication parameter: username or/and password"})
    );
    match c.recv().await {
        Message::Auth(m) => assert_eq!(m.action, AuthAction::TooManyAuthAttempts as i32),
        other => panic!("{other:?}"),
    }
    c.expect_closed().await;
}

#[tokio::test]
async fn a_connection_that_never_logs_in_is_closed_after_the_timeout() {
    let (addr, _dir) = start(AUTH_FILE).await;
    let mut c = RawClient::connect_raw(&addr, "/deepstream").await;
    c.send(ConnectionMessage {
        action: ConnectionAction::Challenge as i32,
        ..Default::default()
    })
    .await;
    c.recv().await;
    // unauthenticatedClientTimeout is 1000 ms in this config.
    let m = c
        .try_recv(Duration::from_secs(5))
        .await
        .expect("a timeout message");
    match m {
        Message::Connection(m) => {
            assert_eq!(m.action, ConnectionAction::AuthenticationTimeout as i32)
        }
        other => panic!("{other:?}"),
    }
    c.expect_closed().await;
}

/// deepstream stops the unauthenticated-connection timer when it answers the first login
/// attempt, successful or not: a refused client keeps its connection and may log in later.
#[tokio::test]
async fn a_refused_login_stops_the_authentication_timeout() {
    let (addr, _dir) = start(AUTH_FILE).await;
    let (mut c, reply) = login(&addr, json!({"username": "alice", "password": "wrong"})).await;
    assert_eq!(reply.action, AuthAction::AuthUnsuccessful as i32);
    // Well past unauthenticatedClientTimeout (1000 ms); the heartbeat interval is 30 s.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let reply = send_auth(&mut c, json!({"username": "alice", "password": "password"})).await;
    assert_eq!(reply.action, AuthAction::AuthSuccessful as i32, "{reply:?}");
}

#[tokio::test]
async fn invalid_auth_data_closes_the_connection() {
    let (addr, _dir) = start(AUTH_FILE).await;
    let mut c = RawClient::connect_raw(&addr, "/deepstream").await;
    c.send(ConnectionMessage {
        action: ConnectionAction::Challenge as i32,
        ..Default::default()
    })
    .await;
    c.recv().await;
    c.send(AuthMessage {
        action: AuthAction::Request as i32,
        data: Some("not json".into()),
        ..Default::default()
    })
    .await;
    match c.recv().await {
        Message::Auth(m) => assert_eq!(m.action, AuthAction::InvalidMessageData as i32),
        other => panic!("{other:?}"),
    }
    c.expect_closed().await;
}

#[test]
fn deepstreams_shipped_config_files_start_recordsync_unchanged() {
    // The conf/ directory of @deepstream/server 7, as a deployment has it (copied here so
    // the test needs no npm install): config.yml, permissions.yml, users.yml.
    let dir = tempfile::tempdir().unwrap();
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/deepstream-conf");
    for file in ["config.yml", "permissions.yml", "users.yml"] {
        std::fs::copy(conf.join(file), dir.path().join(file)).unwrap();
    }
    let (config, warnings) =
        Config::from_file(&dir.path().join("config.yml")).expect("deepstream's config loads");
    assert!(!config.permission.is_open());
    assert!(
        warnings.iter().all(|w| !w.contains("unknown config key")),
        "{warnings:?}"
    );
}

#[test]
fn a_bad_rule_stops_the_server_with_file_line_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_files(dir.path(), AUTH_NONE);
    std::fs::write(
        dir.path().join("permissions.yml"),
        "record:\n  \"*\":\n    read: true\n  posts/$id:\n    write: \"data.author === user.id &&\"\n",
    )
    .unwrap();
    let err = Config::from_file(&path).unwrap_err().to_string();
    assert!(err.contains("permissions.yml:5"), "{err}");
    assert!(err.contains("record.\"posts/$id\".write"), "{err}");
    assert!(err.contains("data.author === user.id &&"), "{err}");
}
