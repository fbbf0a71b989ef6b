//! The real binary, killed and restarted: every acknowledged write survives.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

#[path = "../../server/tests/support/mod.rs"]
mod support;

mod process;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use process::ServerProcess;
use recordsync_deepstream_protocol::{RecordAction, RecordMessage};
use support::{RawClient, json_value, update};

#[tokio::test]
async fn records_survive_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start([std::ffi::OsStr::new("--data-dir"), dir.path().as_os_str()]);
    let mut a = RawClient::connect(&server.addr).await;
    a.subscribe("keep/me").await;
    for v in 1..=5 {
        a.write(
            update("keep/me", v, &format!(r#"{{"n":{v}}}"#)),
            Some(&v.to_string()),
        )
        .await;
    }
    a.subscribe("empty/one").await;
    drop(a);
    server.terminate();

    let server = ServerProcess::start([std::ffi::OsStr::new("--data-dir"), dir.path().as_os_str()]);
    // A clean shutdown checkpoints the store: nothing is left in its write-ahead log.
    assert!(
        !server
            .startup_log
            .iter()
            .any(|line| line.contains("replayed the write-ahead log")),
        "the restart after a clean shutdown replayed the log:\n{}",
        server.startup_log.join("\n")
    );
    let mut b = RawClient::connect(&server.addr).await;
    let read = b.subscribe("keep/me").await;
    assert_eq!(read.version, Some(5));
    assert_eq!(json_value(&read.data), serde_json::json!({"n": 5}));
    assert_eq!(
        b.head("empty/one").await,
        0,
        "a record created by subscribing is kept too"
    );
    b.send(RecordMessage::named(RecordAction::Read, "empty/one"))
        .await;
    let empty = b.recv_record().await;
    assert_eq!(
        (empty.action, empty.version, json_value(&empty.data)),
        (
            RecordAction::ReadResponse as i32,
            Some(0),
            serde_json::json!({})
        )
    );
    assert_eq!(b.head("never/made").await, -1);
}

#[tokio::test]
async fn every_acknowledged_write_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start([std::ffi::OsStr::new("--data-dir"), dir.path().as_os_str()]);
    let acked: Arc<Mutex<HashMap<String, i32>>> = Arc::default();

    // Several clients stream acknowledged writes to their own records (and one shared
    // record each writes with version -1); the server is killed mid-stream.
    let mut writers = Vec::new();
    for w in 0..4 {
        let addr = server.addr.clone();
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            let mut c = RawClient::connect(&addr).await;
            let name = format!("crash/{w}");
            c.subscribe(&name).await;
            for v in 1.. {
                let m = RecordMessage {
                    is_write_ack: Some(true),
                    correlation_id: Some(v.to_string()),
                    ..update(&name, v, &format!(r#"{{"writer":{w},"n":{v}}}"#))
                };
                c.send(m).await;
                match c.try_recv(Duration::from_secs(5)).await {
                    Some(recordsync_deepstream_protocol::Message::Record(r))
                        if r.action == RecordAction::WriteAcknowledgement as i32 =>
                    {
                        acked.lock().await.insert(name.clone(), v);
                    }
                    _ => return, // the server is gone
                }
            }
        }));
    }
    // Let a few hundred writes be acknowledged, then pull the plug.
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let total: i32 = acked.lock().await.values().sum();
        if total >= 200 {
            break;
        }
    }
    server.kill();
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().await.clone();
    assert_eq!(acked.len(), 4);

    let server = ServerProcess::start([std::ffi::OsStr::new("--data-dir"), dir.path().as_os_str()]);
    let mut c = RawClient::connect(&server.addr).await;
    for (name, version) in acked {
        c.send(RecordMessage::named(RecordAction::Read, name.as_str()))
            .await;
        let read = c.recv_action(RecordAction::ReadResponse).await;
        let stored = read.version.expect("a version");
        // The acknowledged write is there; one more may have been committed whose
        // acknowledgement the kill swallowed.
        assert!(
            stored == version || stored == version + 1,
            "{name}: acked {version}, stored {stored}"
        );
        let data = json_value(&read.data);
        assert_eq!(
            data["n"],
            serde_json::json!(stored),
            "{name}: value matches its version"
        );
    }
}

/// Generated documents full of numbers (random doubles as JavaScript spells them, the
/// extremes, integers beyond 64 bits, `-0`, `1.50`, `1e+400`).
fn number_documents(n: usize) -> Vec<recordsync_core::testing::Doc> {
    use proptest::strategy::{Strategy, ValueTree};
    let mut runner = proptest::test_runner::TestRunner::default();
    (0..n)
        .map(|_| {
            recordsync_core::testing::document()
                .new_tree(&mut runner)
                .expect("a document")
                .current()
        })
        .collect()
}

/// Reads every record and compares its JSON text with what was written, byte for byte.
async fn assert_texts(addr: &str, expected: &[(String, String)]) {
    let mut c = RawClient::connect(addr).await;
    for (name, text) in expected {
        let read = c.read(name).await;
        assert_eq!(read.data.as_deref(), Some(text.as_str()), "{name}");
    }
}

/// Numbers come back exactly as written from the embedded store, whole values and path
/// writes alike: after a clean restart (read from redb after a checkpoint), and after
/// SIGKILL right after a burst of writes (replayed from the write-ahead log).
#[tokio::test]
async fn numbers_come_back_as_written_after_a_restart_and_a_crash() {
    use recordsync_core::testing::{Doc, EXTREMES};
    let dir = tempfile::tempdir().unwrap();
    let args = [std::ffi::OsStr::new("--data-dir"), dir.path().as_os_str()];
    let mut docs = number_documents(40);
    let mut expected = Vec::new();

    let server = ServerProcess::start(args);
    let mut c = RawClient::connect(&server.addr).await;
    for (i, doc) in docs.iter_mut().enumerate() {
        let name = format!("numbers/{i}");
        c.write(update(&name, 1, &doc.to_json()), Some("whole"))
            .await;
        // A path write inside the value: the other numbers are kept as they were.
        if let Some(path) = doc.number_paths().pop() {
            let token = EXTREMES[i % EXTREMES.len()];
            c.write(support::patch(&name, 2, &path, token), Some("patch"))
                .await;
            doc.set(&path, Doc::Number(token.to_owned()));
        }
        expected.push((name, doc.to_json()));
    }
    drop(c);
    server.terminate();

    let server = ServerProcess::start(args);
    assert_texts(&server.addr, &expected).await;
    // Written again, all at once, then killed at once: the log holds them, unless a
    // checkpoint (due a second after the first of them) came first.
    let mut c = RawClient::connect(&server.addr).await;
    for (name, text) in &expected {
        let mut write = update(name, -1, text);
        write.is_write_ack = Some(true);
        write.correlation_id = Some(name.clone());
        c.send(write).await;
    }
    for _ in &expected {
        c.recv_action(RecordAction::WriteAcknowledgement).await;
    }
    drop(c);
    server.kill();

    let server = ServerProcess::start(args);
    assert_texts(&server.addr, &expected).await;
}
