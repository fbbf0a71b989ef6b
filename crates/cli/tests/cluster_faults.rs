//! Issue 5, done as a user would run it: three real `recordsync serve` processes on one
//! PostgreSQL database, joined by a private redis-server or nats-server that is killed
//! mid-load and restarted. Every node keeps serving its own clients throughout; afterwards
//! the database holds every acknowledged write and every subscriber on every node holds
//! the final value (the scenario is `bus_faults::bus_restart_mid_load`, which
//! `crates/server/tests/cluster.rs` also runs on in-process nodes).
//!
//! Needs the test PostgreSQL (`RECORDSYNC_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/test`); each test uses a schema of its own.

#[path = "../../server/tests/support/mod.rs"]
mod support;

mod process;

use process::ServerProcess;
use recordsync_store::postgres::testing::TestSchema;
use support::bus_faults::{self, BusKind, PrivateBus};

/// Three nodes started together on `storage` and `bus` (so they also migrate the empty
/// schema at once), each with an empty data directory of its own.
fn three_nodes(storage: &str, bus: &str) -> Vec<(ServerProcess, tempfile::TempDir)> {
    std::thread::scope(|s| {
        let starting: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let data_dir = tempfile::tempdir().unwrap();
                    let node = ServerProcess::start([
                        std::ffi::OsStr::new("--storage"),
                        std::ffi::OsStr::new(storage),
                        std::ffi::OsStr::new("--cluster"),
                        std::ffi::OsStr::new(bus),
                        std::ffi::OsStr::new("--data-dir"),
                        data_dir.path().as_os_str(),
                    ]);
                    (node, data_dir)
                })
            })
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
