//! The real binary on a disk that fills up (issue 12): writes fail with an error that
//! names the cause, in the client's RECORD_UPDATE_ERROR and in the log; the health check
//! answers 503; and once space is freed writes resume without a restart, with nothing
//! acknowledged lost.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

#[path = "../../server/tests/support/mod.rs"]
mod support;

#[path = "../../store/tests/support/tiny_fs.rs"]
mod tiny_fs;

mod process;

use std::time::Duration;

use process::ServerProcess;
use recordsync_deepstream_protocol::{RecordAction, RecordMessage};
use support::{RawClient, health_status, json_value, update};
use tiny_fs::TinyFs;

/// Sends an acknowledged write; returns `None` once acknowledged, else the error text of
/// its RECORD_UPDATE_ERROR.
async fn try_write(c: &mut RawClient, name: &str, data: &str) -> Option<String> {
    c.send(RecordMessage {
        is_write_ack: Some(true),
        correlation_id: Some(name.into()),
        ..update(name, 1, data)
    })
    .await;
    let reply = c
        .recv_action_in(&[
            RecordAction::WriteAcknowledgement,
            RecordAction::RecordUpdateError,
        ])
        .await;
    if reply.action == RecordAction::WriteAcknowledgement as i32 {
        return None;
    }
    let message = json_value(&reply.data);
    Some(message.as_str().expect("an error message").to_owned())
}

#[tokio::test]
async fn a_full_disk_fails_writes_clearly_and_they_resume_once_space_is_freed() {
    let tiny = TinyFs::mount(24);
    let ballast = tiny.ballast("ballast", 16);
    let data = tiny.path().join("data");
    let args = [std::ffi::OsStr::new("--data-dir"), data.as_os_str()];
    let server = ServerProcess::start(args);
    let mut c = RawClient::connect(&server.addr).await;
    assert_eq!(health_status(&server.addr).await, 200);

    // Distinct records of 256 KiB until the disk is full.
    let big = format!(r#"{{"pad":"{}"}}"#, "y".repeat(256 << 10));
    let mut acked = Vec::new();
    let message = loop {
        let name = format!("full/{}", acked.len());
        match try_write(&mut c, &name, &big).await {
            None => acked.push(name),
            Some(message) => break message,
        }
        assert!(acked.len() < 1000, "the disk never filled up");
    };
    assert!(acked.len() > 2, "full after {} writes", acked.len());
    let free = format!("free space on {}", data.display());
    for needle in ["storage full", &free, "No space left on device"] {
        assert!(message.contains(needle), "{needle:?} in: {message}");
    }
    assert_eq!(health_status(&server.addr).await, 503, "while writes fail");
    // The log names the cause.
    server
        .wait_for_log("storage full", std::time::Duration::from_secs(10))
        .await;
    // While the disk stays full, writes stay refused (the store retries every second).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let again = try_write(&mut c, "small/1", "{}").await;
    assert!(
        again.as_deref().is_some_and(|m| m.contains("storage full")),
        "{again:?}"
    );
    assert_eq!(health_status(&server.addr).await, 503);

    // Space comes back: the same server takes writes again by itself.
    std::fs::remove_file(&ballast).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while health_status(&server.addr).await != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the health check never recovered:\n{}",
            server.log().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for name in ["small/1", "small/2"] {
        assert_eq!(
            try_write(&mut c, name, r#"{"ok":true}"#).await,
            None,
            "{name}"
        );
        acked.push(name.to_owned());
    }

    // Every acknowledged write is there after a restart.
    drop(c);
    server.terminate();
    let server = ServerProcess::start(args);
    let mut c = RawClient::connect(&server.addr).await;
    for name in &acked {
        assert_eq!(c.head(name).await, 1, "{name} was acknowledged");
    }
}
