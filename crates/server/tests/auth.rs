//! Black-box tests of the jwt and http auth types against real endpoints: signed tokens
//! (HS256, RS256, EdDSA keys from tests/fixtures/jwt, test-only keys) and a small local
//! webhook server.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

mod support;

use std::path::Path;

use axum::Json as AxumJson;
use axum::http::StatusCode;
use axum::routing::post;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value as Json, json};

use recordsync_deepstream_protocol::{
    AuthAction, AuthMessage, ConnectionAction, ConnectionMessage, Message, RecordAction,
};
use recordsync_server::{Config, Server, StorageKind};
use support::{RawClient, json_value, update};

const PERMISSIONS: &str = "record:\n  \"*\":\n    read: true\n    create: true\n    write: \"user.data.role === 'editor'\"\n";

async fn start(auth: &str) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jwt");
    for f in ["rsa-public.pem", "ed25519-public.pem"] {
        std::fs::copy(keys.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(dir.path().join("permissions.yml"), PERMISSIONS).unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(
        &path,
        format!("{auth}\npermission:\n  type: config\n  options:\n    permissions: fileLoad(permissions.yml)\n"),
    )
    .unwrap();
    let (mut config, warnings) = Config::from_file(&path).expect("config loads");
    assert!(warnings.is_empty(), "{warnings:?}");
    config.port = 0;
    config.storage = StorageKind::Memory;
    let server = Server::bind(config).await.unwrap();
    let addr = server.local_addr().to_string();
    tokio::spawn(server.run(std::future::pending()));
    (addr, dir)
}

async fn login(addr: &str, auth: Json) -> (RawClient, AuthMessage) {
    let mut c = RawClient::connect_raw(addr, "/deepstream").await;
    c.send(ConnectionMessage {
        action: ConnectionAction::Challenge as i32,
        ..Default::default()
    })
    .await;
    assert!(matches!(c.recv().await, Message::Connection(_)));
    c.send(AuthMessage {
        action: AuthAction::Request as i32,
        data: Some(auth.to_string()),
        ..Default::default()
    })
    .await;
    match c.recv().await {
        Message::Auth(m) => (c, m),
        other => panic!("{other:?}"),
    }
}

fn token(alg: Algorithm, key: &EncodingKey, claims: Json) -> String {
    encode(&Header::new(alg), &claims, key).unwrap()
}

fn in_an_hour() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600
}

/// Logs in with the token, then writes: the rule lets only role "editor" write.
async fn can_write(addr: &str, jwt: &str) -> Result<bool, AuthMessage> {
    let (mut c, reply) = login(addr, json!({ "token": jwt })).await;
    if reply.action != AuthAction::AuthSuccessful as i32 {
        return Err(reply);
    }
    c.subscribe("doc/1").await;
    let mut m = update("doc/1", -1, r#"{"x":1}"#);
    m.is_write_ack = Some(true);
    m.correlation_id = Some("w".into());
    c.send(m).await;
    let reply = c.recv_record().await;
    Ok(reply.action == RecordAction::WriteAcknowledgement as i32)
}

#[tokio::test]
async fn jwt_hs256_claims_become_the_user() {
    let secret = "a-test-secret-that-is-long-enough-1234";
    let (addr, _dir) = start(&format!(
        "auth:\n  - type: jwt\n    options:\n      secret: {secret}\n      issuer: test-issuer\n"
    ))
    .await;
    let key = EncodingKey::from_secret(secret.as_bytes());
    let editor = token(
        Algorithm::HS256,
        &key,
        json!({"sub": "ed", "iss": "test-issuer", "exp": in_an_hour(), "role": "editor", "clientData": {"hi": 1}}),
    );
    let (_c, reply) = login(&addr, json!({ "token": editor })).await;
    assert_eq!(reply.action, AuthAction::AuthSuccessful as i32);
    assert_eq!(json_value(&reply.data), json!({"hi": 1}));
    assert_eq!(can_write(&addr, &editor).await, Ok(true));
    let viewer = token(
        Algorithm::HS256,
        &key,
        json!({"sub": "vi", "iss": "test-issuer", "exp": in_an_hour(), "role": "viewer"}),
    );
    assert_eq!(can_write(&addr, &viewer).await, Ok(false));
    // Wrong issuer, expired, wrong key, or no token at all: refused.
    for bad in [
        token(
            Algorithm::HS256,
            &key,
            json!({"sub": "x", "iss": "other", "exp": in_an_hour()}),
        ),
        token(
            Algorithm::HS256,
            &key,
            json!({"sub": "x", "iss": "test-issuer", "exp": 1000}),
        ),
        token(
            Algorithm::HS256,
            &EncodingKey::from_secret(b"another-secret-another-secret-xx"),
            json!({"sub": "x", "iss": "test-issuer", "exp": in_an_hour()}),
        ),
        "not.a.token".into(),
    ] {
        let (_c, reply) = login(&addr, json!({ "token": bad })).await;
        assert_eq!(reply.action, AuthAction::AuthUnsuccessful as i32, "{bad}");
    }
    let (_c, reply) = login(&addr, json!({"username": "x"})).await;
    assert_eq!(reply.action, AuthAction::AuthUnsuccessful as i32);
}

#[tokio::test]
async fn jwt_rs256_and_eddsa_public_keys_from_files() {
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jwt");
    let rsa =
        EncodingKey::from_rsa_pem(&std::fs::read(keys.join("rsa-private.pem")).unwrap()).unwrap();
    let ed = EncodingKey::from_ed_pem(&std::fs::read(keys.join("ed25519-private.pem")).unwrap())
        .unwrap();
    let claims = json!({"sub": "ed", "exp": in_an_hour(), "role": "editor"});

    let (addr, _dir) = start("auth:\n  - type: jwt\n    options:\n      algorithm: RS256\n      publicKey: fileLoad(rsa-public.pem)\n").await;
    assert_eq!(
        can_write(&addr, &token(Algorithm::RS256, &rsa, claims.clone())).await,
        Ok(true)
    );
    assert!(
        can_write(&addr, &token(Algorithm::EdDSA, &ed, claims.clone()))
            .await
            .is_err()
    );

    let (addr, _dir) = start("auth:\n  - type: jwt\n    options:\n      algorithm: EdDSA\n      publicKey: fileLoad(ed25519-public.pem)\n").await;
    assert_eq!(
        can_write(&addr, &token(Algorithm::EdDSA, &ed, claims.clone())).await,
        Ok(true)
    );
    assert!(
        can_write(&addr, &token(Algorithm::RS256, &rsa, claims))
            .await
            .is_err()
    );
}

/// A webhook: password "ok" logs in with data, "plain" answers a plain-text id, anything
/// else is 401 with clientData.
async fn webhook() -> String {
    async fn login(AxumJson(body): AxumJson<Json>) -> (StatusCode, String) {
        let auth = &body["authData"];
        let user = auth["username"].as_str().unwrap_or("");
        match auth["password"].as_str() {
            Some("ok") => (
                StatusCode::OK,
                json!({"id": user, "serverData": {"role": "editor"}, "clientData": {"welcome": user}}).to_string(),
            ),
            Some("plain") => (StatusCode::OK, format!("plain-{user}")),
            _ => (StatusCode::UNAUTHORIZED, json!({"clientData": {"reason": "no"}}).to_string()),
        }
    }
    let app = axum::Router::new().route("/login", post(login));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/login")
}

#[tokio::test]
async fn http_webhook_decides_logins() {
    let url = webhook().await;
    let (addr, _dir) = start(&format!(
        "auth:\n  - type: http\n    options:\n      endpointUrl: {url}\n      permittedStatusCodes: [200]\n      requestTimeout: 2000\n"
    ))
    .await;
    let (mut c, reply) = login(&addr, json!({"username": "ann", "password": "ok"})).await;
    assert_eq!(reply.action, AuthAction::AuthSuccessful as i32, "{reply:?}");
    assert_eq!(json_value(&reply.data), json!({"welcome": "ann"}));
    // serverData from the webhook reaches the rules: role editor may write.
    c.subscribe("doc/2").await;
    c.write(update("doc/2", 1, r#"{"a":1}"#), Some("w")).await;

    let (_c, reply) = login(&addr, json!({"username": "ann", "password": "plain"})).await;
    assert_eq!(reply.action, AuthAction::AuthSuccessful as i32);
    let (_c, reply) = login(&addr, json!({"username": "ann", "password": "bad"})).await;
    assert_eq!(reply.action, AuthAction::AuthUnsuccessful as i32);
    assert_eq!(json_value(&reply.data), json!({"reason": "no"}));
}

#[tokio::test]
async fn an_unreachable_webhook_refuses_logins() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (addr, _dir) = start(&format!(
        "auth:\n  - type: http\n    options:\n      endpointUrl: http://127.0.0.1:{port}/login\n      requestTimeout: 500\n      retryAttempts: 1\n      retryInterval: 10\n"
    ))
    .await;
    let (_c, reply) = login(&addr, json!({"username": "ann", "password": "ok"})).await;
    assert_eq!(reply.action, AuthAction::AuthUnsuccessful as i32);
}
