//! The cluster fan-out: the fan-out scenario against recordsync nodes sharing one
//! PostgreSQL database, one node alone beside two nodes joined by Redis and by NATS.
//!
//! - The store is PostgreSQL for every setup, the single node included: the memory store
//!   is per process, so two nodes can only share data through a database, and the single
//!   node's figure must pay for the same store to be comparable. The schema
//!   ([`SCHEMA`]) is dropped before each setup, so each one starts empty.
//! - The bus is a private `redis-server` / `nats-server` that the harness starts on a
//!   spare port and stops afterwards: the machine's shared ones carry other people's
//!   traffic (and recordsync's topic is fixed), which would mix into both the figures and
//!   their tests, and their CPU could not be told apart.
//! - CPU is counted for three groups of processes: the recordsync nodes, the bus server,
//!   and the PostgreSQL backends serving the nodes' pools (found by `application_name`
//!   with psql, looked up at both ends of the window). The report gives each group and
//!   the sum; per-delivery CPU is the sum, since a cluster costs all three.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::Result;
use crate::procstat::Watched;
use crate::targets::{Process, Target, command};

/// The database every setup uses (trust auth, as the README requires).
pub const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";
/// recordsync's schema for the cluster runs, dropped before each setup.
pub const SCHEMA: &str = "recordsync_bench_cluster";
/// How the nodes' PostgreSQL sessions are told apart from everyone else's.
const APPLICATION: &str = "recordsync-bench-cluster";

pub const NODES: &str = "recordsync nodes";
pub const BUS: &str = "bus server";
pub const DATABASE: &str = "PostgreSQL backends";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusKind {
    Redis,
    Nats,
}

/// One configuration measured.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// The report's column.
    pub label: &'static str,
    pub nodes: usize,
    pub bus: Option<BusKind>,
}

pub const ONE_NODE: &str = "1 node";
pub const TWO_REDIS: &str = "2 nodes, Redis";
pub const TWO_NATS: &str = "2 nodes, NATS";

pub const SETUPS: &[Setup] = &[
    Setup {
        label: ONE_NODE,
        nodes: 1,
        bus: None,
    },
    Setup {
        label: TWO_REDIS,
        nodes: 2,
        bus: Some(BusKind::Redis),
    },
    Setup {
        label: TWO_NATS,
        nodes: 2,
        bus: Some(BusKind::Nats),
    },
];

/// Running nodes and their bus server; everything is stopped by [`Cluster::stop`] (or
/// killed on drop).
pub struct Cluster {
    pub nodes: Vec<Target>,
    bus: Option<Process>,
}

impl Cluster {
    pub async fn start(setup: &Setup) -> Result<Cluster> {
        drop_schema()?;
        let mut bus = None;
        let mut bus_url = None;
        if let Some(kind) = setup.bus {
            let port = free_port()?;
            let mut cmd = match kind {
                BusKind::Redis => {
                    let mut cmd = command("redis-server");
                    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                        .args(["--save", "", "--appendonly", "no"]);
                    cmd
                }
                BusKind::Nats => {
                    let mut cmd = command("nats-server");
                    cmd.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
                    cmd
                }
            };
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            let process = Process::spawn(cmd).map_err(|e| format!("starting the bus: {e}"))?;
            wait_for_port(port).await?;
            bus = Some(process);
            bus_url = Some(match kind {
                BusKind::Redis => format!("redis://127.0.0.1:{port}"),
                BusKind::Nats => format!("nats://127.0.0.1:{port}"),
            });
        }
        let storage = format!("{POSTGRES}?schema={SCHEMA}&application_name={APPLICATION}");
        let mut nodes = Vec::with_capacity(setup.nodes);
        // One after the other: the first creates the schema, the others find it.
        for _ in 0..setup.nodes {
            nodes.push(Target::start_node(&storage, bus_url.as_deref()).await?);
        }
        Ok(Cluster { nodes, bus })
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| n.addr).collect()
    }

    /// The nodes, the bus server and the database backends, as three groups.
    pub fn watched(&self) -> Watched {
        let nodes = self
            .nodes
            .iter()
            .flat_map(|n| crate::procstat::tree(n.pid()))
            .collect();
        Watched::empty()
            .with(NODES, nodes)
            .with(
                BUS,
                self.bus.as_ref().map(|b| vec![b.pid]).unwrap_or_default(),
            )
            .with_finder(DATABASE, Arc::new(|| backends().unwrap_or_default()))
    }

    pub async fn stop(self) {
        for node in self.nodes {
            node.stop().await;
        }
        if let Some(mut bus) = self.bus {
            bus.stop(Duration::from_secs(5)).await;
        }
    }
}

/// Drops recordsync's bench schema (a fresh start for each setup).
pub fn drop_schema() -> Result<()> {
    drop_schema_named(SCHEMA)
}

/// Drops `schema` (a name of the harness's own, never outside input) and all it holds.
pub fn drop_schema_named(schema: &str) -> Result<()> {
    psql(&format!("drop schema if exists {schema} cascade"))
        .map(|_| ())
        .map_err(|e| format!("PostgreSQL at {POSTGRES}: {e}").into())
}

/// The PostgreSQL backends serving the nodes.
fn backends() -> Option<Vec<u32>> {
    backends_named(APPLICATION)
}

/// The PostgreSQL backends whose `application_name` is `application` (the harness's own
/// names), found with psql; `None` when psql fails.
pub fn backends_named(application: &str) -> Option<Vec<u32>> {
    let out = psql(&format!(
        "select pid from pg_stat_activity where application_name = '{application}'"
    ))
    .ok()?;
    Some(out.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

fn psql(sql: &str) -> std::result::Result<String, String> {
    let out = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-q",
            "-Atc",
        ])
        .arg(sql)
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

async fn wait_for_port(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("the bus server did not listen on port {port}").into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::{FanoutParams, subscriber_node};

    fn params(subscribers: usize, records: usize, subscriptions: usize) -> FanoutParams {
        FanoutParams {
            writers: 20,
            subscribers,
            records,
            subscriptions,
            rate: None,
            window: 4,
            warmup: Duration::ZERO,
            duration: Duration::ZERO,
            drain: Duration::ZERO,
            payload: 64,
            prefix: "t".into(),
        }
    }

    /// Every record's subscribers are split evenly over two nodes, at both scales, so
    /// half of each write's deliveries cross the bus.
    #[test]
    fn each_record_has_subscribers_on_every_node() {
        for (m, k, s) in [(200, 200, 20), (1000, 1000, 20)] {
            let p = params(m, k, s);
            let mut per_record = vec![[0usize; 2]; k];
            for sub in 0..m {
                let node = subscriber_node(sub, &p, 2);
                for j in 0..s {
                    per_record[(sub * s + j) % k][node] += 1;
                }
            }
            for (r, counts) in per_record.iter().enumerate() {
                assert_eq!(counts[0], counts[1], "record {r} at scale {m}: {counts:?}");
                assert!(counts[0] > 0);
            }
        }
    }

    #[test]
    fn one_node_gets_everyone() {
        let p = params(200, 200, 20);
        assert!((0..200).all(|s| subscriber_node(s, &p, 1) == 0));
    }
}
