//! `--log-format json`: the real binary logs one JSON object a line, and a line logged
//! while a connection is served carries the connection's id and protocol.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

mod process;
use process::ServerProcess;

/// A login webhook nobody listens at (port 1): every login attempt logs an auth error,
/// inside the connection that made it.
const CONFIG: &str = r#"
auth:
  type: http
  options:
    endpointUrl: http://127.0.0.1:1/login
"#;

/// What the server logs when the webhook cannot be reached (`auth/http.rs`).
const REFUSED: &str = "the webhook did not answer usefully";

#[tokio::test]
async fn json_lines_carry_the_connection_id() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(&config, CONFIG).unwrap();
    let server = ServerProcess::start([
        "--storage",
        "memory",
        "--log-format",
        "json",
        "--config",
        config.to_str().unwrap(),
    ]);

    // A client command logs in, and is refused (the webhook cannot be reached).
    let out = Command::new(env!("CARGO_BIN_EXE_recordsync"))
        .args([
            "get",
            "x",
            "--url",
            &server.url(),
            "--auth",
            r#"{"username":"a"}"#,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "the login is refused");

    server.wait_for_log(REFUSED, Duration::from_secs(20)).await;
    let lines: Vec<Value> = server
        .startup_log
        .iter()
        .chain(&server.log())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let refused = lines
        .iter()
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(REFUSED))
        })
        .unwrap();
    assert_eq!(refused["level"], "WARN", "{refused}");
    assert_eq!(refused["span"]["name"], "connection", "{refused}");
    assert_eq!(
        refused["span"]["protocol"], "deepstream-binary",
        "{refused}"
    );
    assert!(refused["span"]["id"].as_u64().is_some(), "{refused}");
}
