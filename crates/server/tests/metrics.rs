//! `GET /metrics`: a Prometheus scrape of a real server, before and after a deepstream
//! client connects, subscribes, writes, and has a write refused; and a server with the
//! endpoint disabled.
//!
//! The recorder is process-wide, so the tests of this file compare differences between
//! two scrapes of series only the first test moves; nothing waits for time to pass.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

#[path = "support/gated.rs"]
mod gated;
mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use recordsync_deepstream_protocol::{RecordAction, RecordMessage};
use recordsync_server::{Config, Server, StorageKind};
use recordsync_store::{MemoryStore, Store};
use reqwest::Method;
use support::http::send;
use support::{RawClient, http_get, start_server, update};

/// One series: its metric name and its labels, sorted.
type Series = (String, BTreeMap<String, String>);

/// Parses Prometheus's text exposition format: every sample line, by series. Comment
/// lines (`# HELP`, `# TYPE`) are returned apart, as the metric names they describe.
fn parse(text: &str) -> (HashMap<Series, f64>, Vec<String>) {
    let mut samples = HashMap::new();
    let mut described = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            described.push(rest.split(' ').next().unwrap().to_owned());
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("a value: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').unwrap();
                let labels = labels
                    .split(',')
                    .filter(|l| !l.is_empty())
                    .map(|l| {
                        let (k, v) = l.split_once('=').unwrap();
                        (k.to_owned(), v.trim_matches('"').to_owned())
                    })
                    .collect();
                (name, labels)
            }
            None => (series, BTreeMap::new()),
        };
        let previous = samples.insert((name.to_owned(), labels), value);
        assert!(previous.is_none(), "a series appears once: {line}");
    }
    (samples, described)
}

struct Scrape(HashMap<Series, f64>);

impl Scrape {
    async fn take(addr: &str) -> (Scrape, Vec<String>, String) {
        let (code, head, body) = http_get(addr, "/metrics").await;
        assert_eq!(code, 200, "{head}");
        let (samples, described) = parse(&body);
        (Scrape(samples), described, head)
    }

    /// A series' value; 0 for a series not reported yet (a counter never incremented).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.0
            .get(&(name.to_owned(), labels))
            .copied()
            .unwrap_or(0.0)
    }
}

fn memory() -> Config {
    Config {
        storage: StorageKind::Memory,
        ..Config::default()
    }
}

#[tokio::test]
async fn a_connection_and_its_writes_show_in_the_metrics() {
    let addr = start_server(memory()).await;
    let (before, _, _) = Scrape::take(&addr).await;

    let mut client = RawClient::connect(&addr).await;
    client.subscribe("metrics/a").await;
    client
        .write(update("metrics/a", 1, r#"{"x":1}"#), Some("1"))
        .await;
    // The same version again: refused with VERSION_EXISTS.
    client
        .send(RecordMessage {
            is_write_ack: Some(true),
            correlation_id: Some("2".into()),
            ..update("metrics/a", 1, "{}")
        })
        .await;
    client.recv_action(RecordAction::VersionExists).await;

    let (after, described, head) = Scrape::take(&addr).await;
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let delta =
        |name: &str, labels: &[(&str, &str)]| after.get(name, labels) - before.get(name, labels);
    let binary = [("protocol", "deepstream-binary")];
    // The client is still connected: counted open, and opened once.
    assert_eq!(delta("recordsync_connections", &binary), 1.0);
    assert_eq!(delta("recordsync_connections_opened_total", &binary), 1.0);
    let ds = |kind| [("protocol", "deepstream"), ("kind", kind)];
    // CHALLENGE; AUTH REQUEST; SUBSCRIBECREATEANDREAD and two UPDATEs.
    assert_eq!(
        delta("recordsync_messages_in_total", &ds("connection")),
        1.0
    );
    assert_eq!(delta("recordsync_messages_in_total", &ds("auth")), 1.0);
    assert_eq!(delta("recordsync_messages_in_total", &ds("record")), 3.0);
    // The subscribe's ack and read response, the write's ack, the VERSION_EXISTS.
    assert!(delta("recordsync_messages_out_total", &ds("record")) >= 4.0);
    assert!(delta("recordsync_messages_out_total", &ds("auth")) >= 1.0);
    assert_eq!(
        delta("recordsync_writes_total", &[("outcome", "accepted")]),
        1.0
    );
    assert_eq!(
        delta("recordsync_writes_total", &[("outcome", "refused")]),
        1.0
    );
    assert_eq!(delta("recordsync_write_ack_seconds_count", &[]), 2.0);
    assert!(delta("recordsync_write_ack_seconds_sum", &[]) > 0.0);
    assert!(
        after.get("recordsync_write_ack_seconds_bucket", &[("le", "+Inf")]) >= 2.0,
        "a histogram with buckets, not a summary"
    );
    // The accepted write was committed, in one batch at least.
    assert!(delta("recordsync_commit_batch_size_count", &[]) >= 1.0);
    assert!(delta("recordsync_commit_batch_size_sum", &[]) >= 1.0);
    assert!(delta("recordsync_commit_seconds_count", &[]) >= 1.0);
    assert_eq!(
        delta("recordsync_store_errors_total", &[("op", "commit")]),
        0.0
    );
    for name in [
        "recordsync_connections",
        "recordsync_messages_in_total",
        "recordsync_writes_total",
        "recordsync_write_ack_seconds",
        "recordsync_commit_batch_size",
    ] {
        assert!(
            described.iter().any(|d| d == name),
            "# HELP {name}: {described:?}"
        );
    }
}

#[tokio::test]
async fn the_endpoint_moves_or_goes_with_the_config() {
    let moved = start_server(Config {
        metrics_path: Some("/prometheus".into()),
        ..memory()
    })
    .await;
    assert_eq!(http_get(&moved, "/prometheus").await.0, 200);
    assert_eq!(http_get(&moved, "/metrics").await.0, 404);

    let off = start_server(Config {
        metrics_path: None,
        ..memory()
    })
    .await;
    assert_eq!(http_get(&off, "/metrics").await.0, 404);
    assert_eq!(http_get(&off, "/health-check").await.0, 200);
}

/// The REST API counts its requests like the other front doors count messages, and
/// deepstream's HTTP API each message of a request by its topic; a
/// request the permission rules refuse counts by the rule's action, whichever door; a
/// failed store read counts by operation.
#[tokio::test]
async fn rest_and_http_api_requests_refusals_and_failed_reads_show_in_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("permissions.yml"),
        "record:\n  \"*\":\n    create: true\n    write: true\n    read: true\n    delete: true\n    listen: true\n  locked/*:\n    create: false\n    write: false\n",
    )
    .unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(
        &path,
        "permission:\n  type: config\n  options:\n    permissions: fileLoad(permissions.yml)\n",
    )
    .unwrap();
    let (config, _) = Config::from_file(&path).unwrap();
    let (store, gates) = gated::Gated::wrap(Arc::new(MemoryStore::new()) as Arc<dyn Store>);
    let server = Server::bind_with(
        Config {
            port: 0,
            storage: StorageKind::Memory,
            ..config
        },
        store,
        None,
    )
    .await
    .unwrap();
    let addr = server.local_addr().to_string();
    tokio::spawn(server.run(std::future::pending()));
    let (before, _, _) = Scrape::take(&addr).await;

    let put = send(&addr, Method::PUT, "/v1/records/m/1", &[], Some("{}")).await;
    assert_eq!(put.status, 200, "{put:?}");
    let read = send(&addr, Method::GET, "/v1/records/m/1", &[], None).await;
    assert_eq!(read.status, 200, "{read:?}");
    let locked = send(&addr, Method::PUT, "/v1/records/locked/1", &[], Some("{}")).await;
    assert_eq!(locked.status, 403, "{locked:?}");
    let nowhere = send(&addr, Method::GET, "/v1/nowhere", &[], None).await;
    assert_eq!(nowhere.status, 404, "{nowhere:?}");
    // deepstream's HTTP API: one count per message of the body, by topic.
    let api = support::http::post_json(
        &addr,
        "/api",
        serde_json::json!({"body": [
            {"topic": "record", "action": "write", "recordName": "m/2", "data": {}},
            {"topic": "record", "action": "read", "recordName": "m/2"},
            {"topic": "event", "action": "emit", "eventName": "e", "data": 1},
        ]})
        .to_string(),
    )
    .await;
    assert_eq!(api.status, 200, "{api:?}");
    gates
        .fail_reads
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let failed = send(&addr, Method::GET, "/v1/records/m/unloaded", &[], None).await;
    assert_eq!(failed.status, 503, "{failed:?}");

    let (after, described, _) = Scrape::take(&addr).await;
    let delta =
        |name: &str, labels: &[(&str, &str)]| after.get(name, labels) - before.get(name, labels);
    let rest = |kind| [("protocol", "rest"), ("kind", kind)];
    assert_eq!(delta("recordsync_messages_in_total", &rest("put")), 2.0);
    assert_eq!(delta("recordsync_messages_in_total", &rest("read")), 2.0);
    assert_eq!(delta("recordsync_messages_in_total", &rest("unknown")), 1.0);
    let http = |kind| [("protocol", "http"), ("kind", kind)];
    assert_eq!(delta("recordsync_messages_in_total", &http("record")), 2.0);
    assert_eq!(delta("recordsync_messages_in_total", &http("event")), 1.0);
    assert_eq!(
        delta(
            "recordsync_permission_denied_total",
            &[("action", "create")]
        ),
        1.0
    );
    assert_eq!(
        delta("recordsync_store_errors_total", &[("op", "get")]),
        1.0
    );
    assert!(
        described
            .iter()
            .any(|d| d == "recordsync_permission_denied_total"),
        "{described:?}"
    );
}
