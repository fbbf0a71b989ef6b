//! Issue 5, done as a user would run it: three real `recordsync serve` processes on one
//! PostgreSQL database, joined by a bus, and the bus or the database killed mid-load and
//! restarted.
//!
//! - The bus (a private redis-server or nats-server): every node keeps serving its own
//!   clients throughout; afterwards the database holds every acknowledged write and every
//!   subscriber on every node holds the final value (the scenario is
//!   `bus_faults::bus_restart_mid_load`, which `crates/server/tests/cluster.rs` also runs
//!   on in-process nodes). These use the test PostgreSQL (`RECORDSYNC_TEST_POSTGRES`,
//!   default `postgres://postgres@127.0.0.1:5432/test`), a schema of their own each.
//! - The database (a private PostgreSQL): writes are refused meanwhile and the health
//!   check answers 503; afterwards nothing acknowledged is missing.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

#[path = "../../server/tests/support/mod.rs"]
mod support;

/// A private PostgreSQL server the test can stop and start.
#[path = "../../store/tests/support/mod.rs"]
mod private_postgres;

mod process;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use private_postgres::PrivatePostgres;
use process::ServerProcess;
use recordsync_deepstream_protocol::{RecordAction, RecordMessage};
use recordsync_store::postgres::PostgresStore;
use recordsync_store::postgres::testing::TestSchema;
use support::bus_faults::{
    self, BusKind, PrivateBus, Written, assert_every_node_answers, assert_stored,
    assert_subscribers_end_on, value_of,
};
use support::{RawClient, health_status, update};

/// Three nodes started together on `storage` and `bus` (so they also migrate the empty
/// schema at once), each with an empty data directory of its own.
fn three_nodes(storage: &str, bus: &str) -> Vec<(ServerProcess, tempfile::TempDir)> {
    std::thread::scope(|s| {
        let starting: Vec<_> = (0..3)
            .map(|_| s.spawn(|| ServerProcess::start_node(storage, bus)))
            .collect();
        starting.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

async fn bus_restart_mid_load(kind: BusKind) {
    let schema = TestSchema::new(&format!("cli_bus_restart_{kind:?}"));
    let mut bus = PrivateBus::start(kind).await;
    let nodes = three_nodes(&schema.url(), &bus.url());
    let addrs: Vec<String> = nodes.iter().map(|(n, _)| n.addr.clone()).collect();
    // The test reads the database itself to check that nothing acknowledged is missing.
    let store = schema.connect().await;
    bus_faults::bus_restart_mid_load(&mut bus, &addrs, &store, "storm").await;
    for (node, _) in nodes {
        node.terminate();
    }
}

#[tokio::test]
async fn three_binaries_on_postgres_survive_a_redis_restart_mid_load() {
    bus_restart_mid_load(BusKind::Redis).await;
}

#[tokio::test]
async fn three_binaries_on_postgres_survive_a_nats_restart_mid_load() {
    bus_restart_mid_load(BusKind::Nats).await;
}

/// Writer `w` writes `name` on the node at `addr`, one acknowledged write at a time with
/// value [`bus_faults::value_of`]`(w, version)`, until `stop`; through refusals: after one
/// it reads the record's version and goes on from there. Counts into `acks` and `errors`,
/// and returns every version acknowledged.
async fn write_through_faults(
    addr: String,
    w: usize,
    name: String,
    stop: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
    errors: Arc<AtomicUsize>,
) -> Vec<i32> {
    let mut c = RawClient::connect(&addr).await;
    let mut version = c.subscribe(&name).await.version.expect("a version");
    let mut acked = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let v = version + 1;
        c.send(RecordMessage {
            is_write_ack: Some(true),
            correlation_id: Some(v.to_string()),
            ..update(&name, v, &value_of(w, v).to_string())
        })
        .await;
        let reply = loop {
            let m = c.recv_record().await;
            if m.action != RecordAction::Update as i32 {
                break m;
            }
        };
        if reply.action == RecordAction::WriteAcknowledgement as i32 {
            assert_eq!(
                reply.correlation_id.as_deref(),
                Some(v.to_string().as_str())
            );
            acked.push(v);
            version = v;
            acks.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        errors.fetch_add(1, Ordering::SeqCst);
        // Refused (the database is down, or a write whose outcome was unknown did land):
        // go on from what the node reads once it can.
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            c.send(RecordMessage::named(RecordAction::Read, name.as_str()))
                .await;
            let m = loop {
                let m = c.recv_record().await;
                if m.action != RecordAction::Update as i32 {
                    break m;
                }
            };
            if m.action == RecordAction::ReadResponse as i32 {
                version = m.version.expect("a version");
                break;
            }
        }
    }
    acked
}

/// Waits until `count` reaches `at_least`.
async fn wait_for_count(what: &str, count: &AtomicUsize, at_least: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while count.load(Ordering::SeqCst) < at_least {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {} of {at_least}",
            count.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Issue 5: "killing and restarting ... the database loses no acknowledged write", with
/// three nodes. Three real binaries share a private PostgreSQL (killed as by a crash, then
/// restarted) and a private Redis. Writers on nodes 1 and 2 write throughout: while the
/// database is down their writes are refused, and every node's health check answers 503;
/// once it is back, writes are acknowledged again without restarting anything. Afterwards
/// the database holds every acknowledged write (value and journal entry, no version
/// missing), every node answers 200 again, and every subscriber on every node ends on the
/// final values.
#[tokio::test]
async fn three_binaries_lose_no_acknowledged_write_when_postgres_is_killed_mid_load() {
    let mut pg = PrivatePostgres::start();
    let bus = PrivateBus::start(BusKind::Redis).await;
    // Three pools of four and the test's own stay under the private server's 30.
    let nodes = three_nodes(&format!("{}?pool_size=4", pg.url()), &bus.url());
    let addrs: Vec<String> = nodes.iter().map(|(n, _)| n.addr.clone()).collect();
    let names = ["outage/0".to_owned(), "outage/1".to_owned()];
    let mut subscribers = Vec::new();
    for addr in &addrs {
        let mut c = RawClient::connect(addr).await;
        for name in &names {
            c.subscribe(name).await;
        }
        subscribers.push(c);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Vec<(Arc<AtomicUsize>, Arc<AtomicUsize>)> =
        (0..2).map(|_| Default::default()).collect();
    let writers: Vec<_> = (0..2)
        .map(|w| {
            tokio::spawn(write_through_faults(
                addrs[w].clone(),
                w,
                names[w].clone(),
                stop.clone(),
                counts[w].0.clone(),
                counts[w].1.clone(),
            ))
        })
        .collect();
    for (acks, _) in &counts {
        wait_for_count("acknowledged before the outage", acks, 15).await;
    }

    pg.stop("immediate");
    for (_, errors) in &counts {
        wait_for_count("writes refused while the database is down", errors, 1).await;
    }
    for addr in &addrs {
        assert_eq!(
            health_status(addr).await,
            503,
            "{addr} while the database is down"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    pg.restart();
    for (acks, _) in &counts {
        let now = acks.load(Ordering::SeqCst);
        wait_for_count("acknowledged after the outage", acks, now + 15).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut written = Vec::new();
    for (w, writer) in writers.into_iter().enumerate() {
        let acked = writer.await.expect("the writer ran");
        written.push(Written {
            name: names[w].clone(),
            writer: w,
            last: *acked.last().expect("acknowledged writes"),
        });
    }
    for addr in &addrs {
        assert_eq!(
            health_status(addr).await,
            200,
            "{addr} once the database is back"
        );
    }

    // Every acknowledged write is in the database: the writer's last one is the record's
    // version, and each version's journal entry holds that version's value.
    let store = PostgresStore::connect(&pg.url())
        .await
        .expect("the database is back");
    assert_stored(&store, &written).await;
    assert_subscribers_end_on(&mut subscribers, &written).await;
    assert_every_node_answers(&addrs, &written).await;
    for (node, _) in nodes {
        node.terminate();
    }
}

/// A node whose bus is not there does not start, and says which bus and what to check;
/// the password in the bus URL stays out of the message.
#[test]
fn a_node_whose_bus_is_not_there_says_what_to_check() {
    let schema = TestSchema::new("cli_bus_not_there");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bus = format!("redis://:secret@127.0.0.1:{port}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_recordsync"))
        .args([
            "serve",
            "--port",
            "0",
            "--storage",
            &schema.url(),
            "--cluster",
            &bus,
        ])
        .env("RECORDSYNC_LOG", "off")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "recordsync: cannot connect to the bus at redis://:***@127.0.0.1:{port}: "
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "check that the bus server runs and that the URL, user and password are right"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "{stderr}");
}
