//! A store must never change a number. Documents full of numbers spelled as JavaScript
//! writes them (random doubles, the extremes, integers beyond 2^53 and 64 bits) and in
//! spellings it never writes (`-0`, `1.50`, `1e+400`) come back byte for byte on every
//! path of the deepstream front door: to other subscribers on the binary and the JSON
//! transport, after PATCH and PATCH_MULTI inside the value, in snapshots; on the memory
//! store, and on PostgreSQL with the write made on one node and read on another (the
//! announcement crosses Redis or NATS). The embedded store's restart and the Rust client
//! and command line are covered in `crates/cli/tests` and `crates/client/tests`.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

mod support;

use proptest::prelude::*;
use proptest::test_runner::TestRunner;

use recordsync_core::testing::{Doc, document, number};
use recordsync_deepstream_protocol::{RecordAction, RecordMessage};
use recordsync_server::{Config, Server, StorageKind};
use recordsync_store::postgres::testing::TestSchema;
use support::{RawClient, update};

/// One generated case: a document, then path writes of new numbers into it.
#[derive(Debug, Clone)]
struct Case {
    doc: Doc,
    /// (index into the document's number paths, new number token)
    patches: Vec<(prop::sample::Index, String)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        document(),
        prop::collection::vec((any::<prop::sample::Index>(), number()), 1..5),
    )
        .prop_map(|(doc, patches)| Case { doc, patches })
}

/// Names unique to this run.
fn unique(tag: &str) -> String {
    use std::hash::{BuildHasher, RandomState};
    format!(
        "numbers/{tag}/{}",
        RandomState::new().hash_one(std::time::SystemTime::now())
    )
}

/// Writes `case` on `writer_node` and checks that subscribers on `reader_node` (binary
/// and JSON transport), and a snapshot and head there, see every number as written.
///
/// The record is created by the first write, before anyone subscribes: the subscribers'
/// first state is read from the store, and each later version reaches them as the op
/// that made it (on two nodes, through the bus).
async fn round_trip(writer_node: &str, reader_node: &str, name: &str, case: &Case) {
    let mut writer = RawClient::connect(writer_node).await;
    let mut expected = case.doc.clone();
    let first = expected.to_json();
    writer.write(update(name, 1, &first), Some("create")).await;

    let mut binary = RawClient::connect(reader_node).await;
    let mut json = RawClient::connect_to(reader_node, "/deepstream-json").await;
    for subscriber in [&mut binary, &mut json] {
        let read = subscriber.subscribe(name).await;
        assert_eq!(read.version, Some(1));
        assert_eq!(read.data.as_deref(), Some(first.as_str()));
    }

    // (action, path, data) of each version after the first, as sent.
    let mut sent = Vec::new();
    let paths = case.doc.number_paths();
    if let Some((first, rest)) = case.patches.split_first().filter(|_| !paths.is_empty()) {
        let path = first.0.get(&paths);
        expected.set(path, Doc::Number(first.1.clone()));
        sent.push((RecordAction::Patch, Some(path.clone()), first.1.clone()));
        let mut entries = Vec::new();
        for (pick, token) in rest {
            let path = pick.get(&paths);
            expected.set(path, Doc::Number(token.clone()));
            let path = serde_json::to_string(path).expect("strings serialise");
            entries.push(format!(r#"{{"path":{path},"data":{token}}}"#));
        }
        if !entries.is_empty() {
            sent.push((
                RecordAction::PatchMulti,
                None,
                format!("[{}]", entries.join(",")),
            ));
        }
    }
    // The patched value once more as a whole.
    sent.push((RecordAction::Update, None, expected.to_json()));
    // What subscribers receive: each write as sent, but a PATCH_MULTI as the whole value
    // after it (deepstream's SDKs drop PATCH_MULTI). It is the last path write, so that
    // value is the final one.
    let received: Vec<_> = sent
        .iter()
        .map(|(action, path, data)| match action {
            RecordAction::PatchMulti => (RecordAction::Update, None, expected.to_json()),
            _ => (*action, path.clone(), data.clone()),
        })
        .collect();

    for (version, (action, path, data)) in (2..).zip(&sent) {
        let message = RecordMessage {
            version: Some(version),
            path: path.clone(),
            data: Some(data.clone()),
            ..RecordMessage::named(*action, name)
        };
        writer.write(message, Some("write")).await;
    }
    for subscriber in [&mut binary, &mut json] {
        for (version, (action, path, data)) in (2..).zip(&received) {
            let m = subscriber
                .recv_action_in(&[RecordAction::Update, RecordAction::Patch])
                .await;
            assert_eq!(m.action, *action as i32, "{m:?}");
            assert_eq!(m.version, Some(version));
            assert_eq!(m.path.as_ref(), path.as_ref());
            assert_eq!(m.data.as_deref(), Some(data.as_str()), "version {version}");
        }
    }

    let mut fresh = RawClient::connect(reader_node).await;
    let snapshot = fresh.read(name).await;
    assert_eq!(snapshot.action, RecordAction::ReadResponse as i32);
    assert_eq!(snapshot.data.as_deref(), Some(expected.to_json().as_str()));
    assert_eq!(fresh.head(name).await, 1 + sent.len() as i32);
}

/// Runs `cases` generated cases through `round_trip` on a runtime of their own.
fn check(cases: u32, nodes: impl AsyncFnOnce() -> (Vec<String>, Vec<TestSchema>)) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let (addrs, _schemas) = runtime.block_on(nodes());
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    let tag = unique("case");
    let n = std::sync::atomic::AtomicU32::new(0);
    runner
        .run(&case(), |case| {
            let name = format!(
                "{tag}/{}",
                n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            runtime.block_on(round_trip(&addrs[0], addrs.last().unwrap(), &name, &case));
            Ok(())
        })
        .unwrap();
}

async fn start(config: Config) -> String {
    let server = Server::bind(Config { port: 0, ..config })
        .await
        .expect("server binds");
    let addr = server.local_addr().to_string();
    tokio::spawn(server.run(std::future::pending()));
    addr
}

#[test]
fn numbers_reach_every_reader_as_written() {
    check(48, async || {
        let config = Config {
            storage: StorageKind::Memory,
            ..Config::default()
        };
        (vec![start(config).await], vec![])
    });
}

/// Two nodes on one PostgreSQL schema, joined by `bus`: written on one, read on the other.
async fn two_nodes(bus: &str) -> (Vec<String>, Vec<TestSchema>) {
    let schema = TestSchema::new("numbers");
    let mut addrs = Vec::new();
    for _ in 0..2 {
        let config = Config {
            storage: StorageKind::Postgres(schema.url()),
            cluster: Some(bus.to_owned()),
            ..Config::default()
        };
        addrs.push(start(config).await);
    }
    (addrs, vec![schema])
}

#[test]
fn numbers_cross_postgres_and_redis_as_written() {
    check(16, async || two_nodes("redis://127.0.0.1:6379").await);
}

#[test]
fn numbers_cross_postgres_and_nats_as_written() {
    check(16, async || two_nodes("nats://127.0.0.1:4222").await);
}
