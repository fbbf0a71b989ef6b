//! A server with deepstream's file auth and permission rules: the example users, their
//! configuration and their tokens, shared by the tests of every front door that
//! authenticates.

use std::path::Path;

use recordsync_server::{Config, StorageKind};
use serde_json::json;

/// deepstream's own example users, "password" hashed with its default options: alice
/// (`role: user`) and carol (`role: admin`).
pub const USERS: &str = r#"
alice:
  password: "rCOSZxJrgze2AZdVQh12c6ErDMOG0M+Rx5Yu7S5d91c=GS4SbTQYmoaGwjm2shEobg=="
  serverData:
    role: user
carol:
  password: "rCOSZxJrgze2AZdVQh12c6ErDMOG0M+Rx5Yu7S5d91c=GS4SbTQYmoaGwjm2shEobg=="
  serverData:
    role: admin
"#;

/// The configuration of a memory-store server with file auth over [`USERS`] (which
/// admits no anonymous user) and `permissions` as its rules; the files are written into
/// `dir`.
pub fn config(dir: &Path, permissions: &str) -> Config {
    std::fs::write(dir.join("permissions.yml"), permissions).unwrap();
    std::fs::write(dir.join("users.yml"), USERS).unwrap();
    let config = "auth:\n  - type: file\n    options:\n      users: fileLoad(users.yml)\n      hash: md5\n      iterations: 100\n      keyLength: 32\npermission:\n  type: config\n  options:\n    permissions: fileLoad(permissions.yml)\n";
    let path = dir.join("config.yml");
    std::fs::write(&path, config).unwrap();
    let (config, _) = Config::from_file(&path).expect("config loads");
    Config {
        port: 0,
        storage: StorageKind::Memory,
        ..config
    }
}

/// A token for `user` (one of [`USERS`]) from `POST /api/auth`.
pub async fn token(addr: &str, user: &str) -> String {
    let a = super::http::post_json(
        addr,
        "/api/auth",
        json!({"username": user, "password": "password"}).to_string(),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    a.json()["token"].as_str().unwrap().to_owned()
}
