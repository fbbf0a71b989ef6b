//! A second of fan-out against an in-process recordsync, in deepstream's protocol and in
//! ShareDB's: the harness connects, writes, receives, and counts every expected delivery;
//! and a ShareDB query run whose every answer is checked. No timing is asserted.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::time::Duration;

use recordsync_bench::connections::{self, ConnectionParams};
use recordsync_bench::fanout::{self, FanoutParams};
use recordsync_bench::procstat::Watched;
use recordsync_bench::progress::Progress;
use recordsync_bench::sharedb_fanout;
use recordsync_bench::sharedb_query::{self, QueryParams};
use recordsync_server::{Config, Server, StorageKind};

async fn start() -> std::net::SocketAddr {
    let config = Config {
        port: 0,
        storage: StorageKind::Memory,
        ..Config::default()
    };
    let server = Server::bind(config).await.expect("bind");
    let addr = server.local_addr();
    tokio::spawn(server.run(std::future::pending()));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_counts_every_delivery() {
    let addr = start().await;
    let me = Watched::tree(std::process::id());
    let params = FanoutParams {
        writers: 3,
        subscribers: 5,
        records: 6,
        subscriptions: 4,
        rate: None,
        window: 2,
        warmup: Duration::from_millis(200),
        duration: Duration::from_secs(1),
        drain: Duration::from_secs(10),
        payload: 40,
        prefix: "smoke".into(),
    };
    let r = fanout::run(addr, "/deepstream", &me, &params, &Progress::new("smoke"))
        .await
        .expect("fan-out runs");
    assert!(r.acked > 0, "{r:?}");
    assert!(r.expected > 0, "{r:?}");
    assert_eq!(r.missing, 0, "{r:?}");
    assert_eq!(r.received, r.expected, "{r:?}");
    assert_eq!(r.duplicates, 0, "{r:?}");
    assert_eq!(r.write_errors + r.unacknowledged, 0, "{r:?}");
    assert!(r.delivery.count() > 0 && r.ack.count() > 0, "{r:?}");

    // The same at a fixed rate: 30 writes in a second, every one delivered to its
    // subscribers.
    let rated = FanoutParams {
        rate: Some(30.0),
        prefix: "smoke-rate".into(),
        ..params
    };
    let r = fanout::run(addr, "/deepstream", &me, &rated, &Progress::new("smoke"))
        .await
        .expect("fixed-rate fan-out runs");
    assert!(r.writes_sent >= 20, "{r:?}");
    assert_eq!(r.missing, 0, "{r:?}");
    assert_eq!(r.received, r.expected, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_get_ready() {
    let addr = start().await;
    let me = Watched::tree(std::process::id());
    let params = ConnectionParams {
        connections: 20,
        subscriptions: 3,
        records: 10,
        concurrency: 8,
        settle: Duration::from_millis(10),
        prefix: "conn".into(),
    };
    let r = connections::run(addr, "/deepstream", &me, &params, &Progress::new("smoke"))
        .await
        .expect("connections open");
    assert_eq!((r.ready, r.errors), (20, 0), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharedb_fanout_counts_every_delivery() {
    let addr = start().await;
    let me = Watched::tree(std::process::id());
    let params = FanoutParams {
        writers: 3,
        subscribers: 5,
        records: 6,
        subscriptions: 4,
        rate: None,
        window: 2,
        warmup: Duration::from_millis(200),
        duration: Duration::from_secs(1),
        drain: Duration::from_secs(10),
        payload: 0,
        prefix: "sdbsmoke".into(),
    };
    let r = sharedb_fanout::run(addr, "/sharedb", &me, &params, &Progress::new("smoke"))
        .await
        .expect("ShareDB fan-out runs");
    assert!(r.acked > 0, "{r:?}");
    assert!(r.expected > 0, "{r:?}");
    assert_eq!(r.received, r.expected, "{r:?}");
    assert_eq!(r.duplicates, 0, "{r:?}");
    assert_eq!(r.write_errors + r.unacknowledged, 0, "{r:?}");
    assert!(r.delivery.count() > 0 && r.ack.count() > 0, "{r:?}");

    // Again on the same documents (they exist now) at a fixed rate.
    let rated = FanoutParams {
        rate: Some(30.0),
        ..params
    };
    let r = sharedb_fanout::run(addr, "/sharedb", &me, &rated, &Progress::new("smoke"))
        .await
        .expect("fixed-rate ShareDB fan-out runs");
    assert!(r.writes_sent >= 20, "{r:?}");
    assert_eq!(r.received, r.expected, "{r:?}");
    assert_eq!(r.write_errors + r.unacknowledged, 0, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharedb_queries_answer_rightly() {
    let addr = start().await;
    let me = Watched::tree(std::process::id());
    let params = QueryParams {
        collection: "qsmoke".into(),
        docs: 200,
        groups: 10,
        limit: 5,
        loaders: 3,
        load_window: 4,
        clients: 2,
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(500),
        pad: 8,
    };
    let r = sharedb_query::run(addr, "/sharedb", &me, &params, &Progress::new("smoke"))
        .await
        .expect("queries run");
    assert!(r.queries > 0, "{r:?}");
    assert_eq!((r.errors, r.wrong), (0, 0), "{r:?}");
}
