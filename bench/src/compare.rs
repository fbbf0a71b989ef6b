//! The side-by-side run: every scenario against recordsync and its peers, one after the
//! other on a fresh server each, then the report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::client::Result;
use crate::cluster::{self, Cluster};
use crate::connections::{self, ConnectionParams, ConnectionResult};
use crate::fanout::{self, FanoutParams, FanoutResult};
use crate::procstat;
use crate::procstat::Watched;
use crate::progress::Progress;
use crate::report::{self, Conditions, Report, Row};
use crate::sharedb::{self, SharedbResult};
use crate::sharedb_fanout;
use crate::sharedb_query::{self, QueryParams, QueryResult};
use crate::targets::{Kind, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    /// The sizes, short windows: the whole comparison in a few minutes.
    Small,
    /// Five times the clients, longer windows.
    Large,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Scenario {
    Fanout,
    Idle,
    Durable,
    Storm,
    /// Fan-out on PostgreSQL: one node, two nodes joined by Redis, two by NATS.
    ClusterFanout,
    /// Fan-out in ShareDB's protocol, unthrottled and at the fixed rate.
    SharedbFanout,
    /// Durable json0 ops in ShareDB's protocol, one in flight per writer.
    SharedbDurable,
    /// Fetch-query latency in ShareDB's protocol over a populated collection.
    SharedbQuery,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Peer {
    Recordsync,
    Deepstream,
    Sharedb,
    Ceiling,
}

pub struct Plan {
    pub scale: Scale,
    pub scenarios: Vec<Scenario>,
    pub peers: Vec<Peer>,
    pub fanout: FanoutParams,
    pub rate: f64,
    pub rate_duration: Duration,
    pub idle: ConnectionParams,
    pub storm: ConnectionParams,
    pub durable_writers: usize,
    pub durable_warmup: Duration,
    pub durable_duration: Duration,
    pub query: QueryParams,
    pub peers_dir: PathBuf,
    pub out: PathBuf,
    pub install: bool,
}

impl Plan {
    pub fn new(scale: Scale, peers_dir: PathBuf, out: PathBuf) -> Plan {
        let (k, secs) = match scale {
            Scale::Small => (1, 5),
            Scale::Large => (5, 15),
        };
        Plan {
            scale,
            scenarios: vec![
                Scenario::Fanout,
                Scenario::Idle,
                Scenario::Durable,
                Scenario::Storm,
                Scenario::ClusterFanout,
                Scenario::SharedbFanout,
                Scenario::SharedbDurable,
                Scenario::SharedbQuery,
            ],
            peers: vec![
                Peer::Recordsync,
                Peer::Deepstream,
                Peer::Sharedb,
                Peer::Ceiling,
            ],
            fanout: FanoutParams {
                writers: 20 * k,
                subscribers: 200 * k,
                records: 200 * k,
                subscriptions: 20,
                rate: None,
                window: 4,
                warmup: Duration::from_secs(1),
                duration: Duration::from_secs(secs),
                drain: Duration::from_secs(15),
                payload: 64,
                prefix: "fan".into(),
            },
            rate: 1000.0,
            rate_duration: Duration::from_secs(secs),
            idle: ConnectionParams {
                connections: 1000 * k,
                subscriptions: 10,
                records: 1000 * k,
                concurrency: 100,
                settle: Duration::from_secs(2),
                prefix: "idle".into(),
            },
            storm: ConnectionParams {
                connections: if k == 1 { 10_000 } else { 15_000 },
                subscriptions: 1,
                records: 1000,
                concurrency: 500,
                settle: Duration::from_millis(100),
                prefix: "storm".into(),
            },
            durable_writers: 100,
            durable_warmup: Duration::from_secs(1),
            durable_duration: Duration::from_secs(secs),
            query: QueryParams {
                collection: "sdbq".into(),
                docs: 10_000,
                groups: 100,
                limit: 10,
                loaders: 8,
                load_window: 16,
                clients: 1,
                warmup: Duration::from_secs(1),
                duration: Duration::from_secs(secs),
                pad: 64,
            },
            peers_dir,
            out,
            install: true,
        }
    }

    fn wants(&self, p: Peer) -> bool {
        self.peers.contains(&p)
    }

    fn parameters(&self) -> BTreeMap<&'static str, String> {
        let f = &self.fanout;
        let mut m = BTreeMap::new();
        m.insert(
            "fan-out",
            format!(
                "{} writers, {} subscribers, {} records, {} subscriptions each, window {}, {} s after {} s warm-up, {} B payload",
                f.writers,
                f.subscribers,
                f.records,
                f.subscriptions,
                f.window,
                f.duration.as_secs_f64(),
                f.warmup.as_secs_f64(),
                f.payload
            ),
        );
        m.insert(
            "fixed rate",
            format!(
                "{} writes/s for {} s",
                self.rate,
                self.rate_duration.as_secs_f64()
            ),
        );
        m.insert(
            "idle",
            format!(
                "{} connections x {} subscriptions",
                self.idle.connections, self.idle.subscriptions
            ),
        );
        m.insert(
            "durable",
            format!(
                "{} writers, one write in flight each, {} s",
                self.durable_writers,
                self.durable_duration.as_secs_f64()
            ),
        );
        m.insert(
            "cluster fan-out",
            format!(
                "the fan-out's clients on {}, writers and subscribers spread over the nodes; {} writes/s at the fixed rate",
                cluster::POSTGRES,
                self.rate
            ),
        );
        let q = &self.query;
        m.insert(
            "ShareDB",
            format!(
                "fan-out, fixed rate and durable as above as json0 ops (one in flight per document); \
                 query: {{group: g, $sort: {{score: -1}}, $limit: {}}} over {} documents in {} groups, {} connection(s), {} s",
                q.limit,
                q.docs,
                q.groups,
                q.clients,
                q.duration.as_secs_f64()
            ),
        );
        m.insert(
            "storm",
            format!(
                "{} connections, 1 subscription each, {} handshakes in flight",
                self.storm.connections, self.storm.concurrency
            ),
        );
        m
    }
}

fn fanout_row(scenario: &'static str, target: &'static str, r: &FanoutResult) -> Row {
    let ms = |us: u64| us as f64 / 1000.0;
    let mut m = BTreeMap::new();
    m.insert("acked_writes_per_s", r.acked_per_second());
    m.insert("deliveries_per_s", r.deliveries_per_second());
    m.insert("deliveries_per_server_cpu_s", r.deliveries_per_cpu_second());
    m.insert("acked_per_server_cpu_s", r.acked_per_cpu_second());
    m.insert("server_cpu_s", r.server_cpu);
    m.insert("server_cpu_cores", r.server_cpu / r.seconds);
    m.insert("generator_cpu_s", r.generator_cpu);
    m.insert("generator_cpu_cores", r.generator_cpu / r.seconds);
    m.insert("window_s", r.seconds);
    m.insert("ack_p50_ms", ms(r.ack.quantile(0.5)));
    m.insert("ack_p99_ms", ms(r.ack.quantile(0.99)));
    m.insert("ack_p999_ms", ms(r.ack.quantile(0.999)));
    m.insert("ack_max_ms", ms(r.ack.max()));
    if r.expected > 0 || r.deliveries > 0 {
        m.insert("delivery_p50_ms", ms(r.delivery.quantile(0.5)));
        m.insert("delivery_p99_ms", ms(r.delivery.quantile(0.99)));
        m.insert("delivery_p999_ms", ms(r.delivery.quantile(0.999)));
        m.insert("delivery_max_ms", ms(r.delivery.max()));
        m.insert("expected_deliveries", r.expected as f64);
        m.insert("received_deliveries", r.received as f64);
        m.insert("missing_deliveries", r.missing as f64);
        m.insert("duplicate_deliveries", r.duplicates as f64);
    }
    m.insert("writes_sent", r.writes_sent as f64);
    m.insert("write_errors", (r.write_errors + r.unacknowledged) as f64);
    m.insert("late_writes", r.late_writes as f64);
    m.insert("behind_schedule", r.behind_schedule as f64);
    m.insert("connection_errors", r.connection_errors as f64);
    m.insert("server_rss_mb", r.server_rss as f64 / 1e6);
    if r.cpu_parts.len() > 1 {
        // A cluster: each group's share, and CPU per delivery both ways.
        for (label, cpu) in &r.cpu_parts {
            let key = match *label {
                cluster::NODES => "nodes_cpu_cores",
                cluster::BUS => "bus_cpu_cores",
                cluster::DATABASE => "database_cpu_cores",
                _ => continue,
            };
            m.insert(key, cpu / r.seconds);
        }
        let nodes = r
            .cpu_parts
            .iter()
            .find(|(l, _)| *l == cluster::NODES)
            .map_or(0.0, |(_, c)| *c);
        if r.deliveries > 0 {
            m.insert(
                "cpu_us_per_delivery",
                r.server_cpu * 1e6 / r.deliveries as f64,
            );
            m.insert(
                "nodes_cpu_us_per_delivery",
                nodes * 1e6 / r.deliveries as f64,
            );
        }
    }
    Row {
        scenario,
        target,
        metrics: m,
        error: None,
    }
}

fn connection_row(scenario: &'static str, target: &'static str, r: &ConnectionResult) -> Row {
    let mut m = BTreeMap::new();
    m.insert("ready", r.ready as f64);
    m.insert("errors", r.errors as f64);
    m.insert("seconds_to_all_ready", r.seconds);
    m.insert("connections_per_s", r.connections_per_second());
    m.insert(
        "ready_p50_ms",
        r.ready_latency.quantile(0.5) as f64 / 1000.0,
    );
    m.insert(
        "ready_p99_ms",
        r.ready_latency.quantile(0.99) as f64 / 1000.0,
    );
    m.insert("server_cpu_s", r.server_cpu);
    m.insert("generator_cpu_s", r.generator_cpu);
    m.insert("bytes_per_connection", r.bytes_per_connection());
    m.insert("rss_before_mb", r.rss_before as f64 / 1e6);
    m.insert("rss_after_mb", r.rss_after as f64 / 1e6);
    let error = (r.ready == 0).then(|| r.first_error.clone().unwrap_or_default());
    Row {
        scenario,
        target,
        metrics: m,
        error,
    }
}

fn sharedb_row(r: &SharedbResult) -> Row {
    let mut m = BTreeMap::new();
    let cpu = r.server_cpu + r.postgres_cpu;
    m.insert("acked_writes_per_s", r.acks_per_s);
    m.insert("acked_per_server_cpu_s", r.acks as f64 / cpu.max(1e-9));
    m.insert("server_cpu_s", cpu);
    m.insert("server_cpu_cores", cpu / r.seconds);
    m.insert("database_cpu_cores", r.postgres_cpu / r.seconds);
    m.insert("generator_cpu_s", r.generator_cpu);
    m.insert("ack_p50_ms", r.ack_p50_ms.unwrap_or(f64::NAN));
    m.insert("ack_p99_ms", r.ack_p99_ms.unwrap_or(f64::NAN));
    m.insert("ack_max_ms", r.ack_max_ms.unwrap_or(f64::NAN));
    m.insert("write_errors", r.errors as f64);
    Row {
        scenario: report::DURABLE,
        target: report::SHAREDB,
        metrics: m,
        error: None,
    }
}

fn query_row(target: &'static str, r: &QueryResult) -> Row {
    let ms = |us: u64| us as f64 / 1000.0;
    let mut m = BTreeMap::new();
    m.insert("queries_per_s", r.queries_per_second());
    m.insert("query_p50_ms", ms(r.latency.quantile(0.5)));
    m.insert("query_p99_ms", ms(r.latency.quantile(0.99)));
    m.insert("query_max_ms", ms(r.latency.max()));
    m.insert(
        "server_cpu_ms_per_query",
        r.server_cpu * 1e3 / (r.queries.max(1) as f64),
    );
    m.insert("server_cpu_s", r.server_cpu);
    m.insert("server_cpu_cores", r.server_cpu / r.seconds.max(1e-9));
    if let Some((_, db)) = r.cpu_parts.iter().find(|(l, _)| *l == cluster::DATABASE) {
        m.insert("database_cpu_cores", db / r.seconds.max(1e-9));
    }
    m.insert("generator_cpu_s", r.generator_cpu);
    m.insert(
        "creates_per_s",
        r.docs as f64 / r.populate_seconds.max(1e-9),
    );
    m.insert("query_errors", r.errors as f64);
    m.insert("wrong_answers", r.wrong as f64);
    m.insert("server_rss_mb", r.server_rss as f64 / 1e6);
    let error = (r.queries == 0).then(|| {
        format!(
            "no query answered rightly ({} refused, {} wrong)",
            r.errors, r.wrong
        )
    });
    Row {
        scenario: report::SDB_QUERY,
        target,
        metrics: m,
        error,
    }
}

/// A server of the ShareDB scenarios, and whose CPU counts for it.
struct SdbServer {
    target: Target,
    watched: Watched,
}

/// recordsync's schema and PostgreSQL session name for the ShareDB scenarios.
const SDB_SCHEMA: &str = "recordsync_bench_sharedb";
const SDB_APPLICATION: &str = "recordsync-bench-sharedb-rs";
/// The name `sharedb-server.mjs` gives its pool's sessions.
const SHAREDB_APPLICATION: &str = "recordsync-bench-sharedb";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SdbKind {
    /// recordsync in memory, or on its embedded store for durable ops.
    Recordsync,
    RecordsyncPostgres,
    SharedbMemory,
    SharedbPostgres,
}

impl SdbKind {
    fn label(self) -> &'static str {
        match self {
            SdbKind::Recordsync => report::RECORDSYNC,
            SdbKind::RecordsyncPostgres => report::RECORDSYNC_PG,
            SdbKind::SharedbMemory => report::SHAREDB_MEMORY,
            SdbKind::SharedbPostgres => report::SHAREDB,
        }
    }

    fn peer(self) -> Peer {
        match self {
            SdbKind::Recordsync | SdbKind::RecordsyncPostgres => Peer::Recordsync,
            SdbKind::SharedbMemory | SdbKind::SharedbPostgres => Peer::Sharedb,
        }
    }
}

/// Starts `kind` afresh (PostgreSQL schemas emptied); `durable`: recordsync on its
/// embedded store instead of memory.
async fn start_sdb(kind: SdbKind, durable: bool, peers: &Path) -> Result<SdbServer> {
    let postgres = |application: &'static str| {
        Arc::new(move || cluster::backends_named(application).unwrap_or_default())
            as crate::procstat::Finder
    };
    let (target, watched) = match kind {
        SdbKind::Recordsync => {
            let kind = if durable {
                Kind::RecordsyncEmbedded
            } else {
                Kind::RecordsyncMemory
            };
            let t = Target::start(kind, peers).await?;
            let w = t.watched();
            (t, w)
        }
        SdbKind::RecordsyncPostgres => {
            cluster::drop_schema_named(SDB_SCHEMA)?;
            let storage = format!(
                "{}?schema={SDB_SCHEMA}&application_name={SDB_APPLICATION}",
                cluster::POSTGRES
            );
            let t = Target::start_node(&storage, None).await?;
            let w = Watched::empty()
                .with("server", crate::procstat::tree(t.pid()))
                .with_finder(cluster::DATABASE, postgres(SDB_APPLICATION));
            (t, w)
        }
        SdbKind::SharedbMemory => {
            let t = Target::start(Kind::SharedbMemory, peers).await?;
            let w = t.watched();
            (t, w)
        }
        SdbKind::SharedbPostgres => {
            let t = Target::start(Kind::Sharedb, peers).await?;
            let w = Watched::empty()
                .with("server", crate::procstat::tree(t.pid()))
                .with_finder(cluster::DATABASE, postgres(SHAREDB_APPLICATION));
            (t, w)
        }
    };
    Ok(SdbServer { target, watched })
}

fn failed(scenario: &'static str, target: &'static str, e: &crate::client::Error) -> Row {
    Row {
        scenario,
        target,
        metrics: BTreeMap::new(),
        error: Some(e.to_string()),
    }
}

fn label(kind: Kind) -> &'static str {
    match kind {
        Kind::RecordsyncMemory | Kind::RecordsyncEmbedded | Kind::RecordsyncNode => {
            report::RECORDSYNC
        }
        Kind::Deepstream => report::DEEPSTREAM,
        Kind::Sharedb => report::SHAREDB,
        Kind::SharedbMemory => report::SHAREDB_MEMORY,
        Kind::Ceiling => report::CEILING,
    }
}

fn install_peers(dir: &Path) -> std::result::Result<(), String> {
    let status = std::process::Command::new(dir.join("install.sh"))
        .status()
        .map_err(|e| format!("cannot run {}/install.sh: {e}", dir.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{}/install.sh failed ({status})", dir.display()))
    }
}

pub async fn run(plan: &Plan) -> Result<Report> {
    let progress = Progress::new("setup");
    let fd_limit = procstat::raise_fd_limit();
    let needed = plan.storm.connections.max(plan.idle.connections) as u64 + 256;
    if fd_limit < needed {
        progress.say(&format!(
            "warning: open-file limit {fd_limit} is below the {needed} the largest scenario needs; it will report errors"
        ));
    }
    let peers_ready = if plan.wants(Peer::Deepstream) || plan.wants(Peer::Sharedb) {
        if plan.install {
            progress.say("installing the peer servers (bench/peers/install.sh)");
            install_peers(&plan.peers_dir)
        } else {
            Ok(())
        }
    } else {
        Ok(())
    };
    let conditions = Conditions {
        started: now_utc(),
        scale: format!("{:?}", plan.scale).to_lowercase(),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_before: procstat::load_average(),
        load_after: None,
        fd_limit,
        others_cores: None,
        seconds: None,
        parameters: plan.parameters(),
    };
    let run_started = std::time::Instant::now();
    let busy0 = procstat::machine_busy_seconds();
    let ours0 = procstat::self_and_children_cpu_seconds();
    let mut report = Report {
        conditions,
        rows: Vec::new(),
    };
    let mut cluster_cpu = 0.0;
    let peer_kind = |p: Peer| match p {
        Peer::Recordsync => Kind::RecordsyncMemory,
        Peer::Deepstream => Kind::Deepstream,
        Peer::Sharedb => Kind::Sharedb,
        Peer::Ceiling => Kind::Ceiling,
    };
    let start = |kind: Kind| {
        let peers_ready = peers_ready.clone();
        async move {
            if matches!(kind, Kind::Deepstream | Kind::Sharedb) {
                peers_ready.map_err(|e| -> crate::client::Error { e.into() })?;
            }
            Target::start(kind, &plan.peers_dir).await
        }
    };

    if plan.scenarios.contains(&Scenario::Fanout) {
        for peer in [Peer::Recordsync, Peer::Deepstream, Peer::Ceiling] {
            if !plan.wants(peer) {
                continue;
            }
            let kind = peer_kind(peer);
            let name = label(kind);
            let p = progress.with_label(format!("fan-out / {name}"));
            let target = match start(kind).await {
                Ok(t) => t,
                Err(e) => {
                    p.say(&format!("failed to start: {e}"));
                    report.rows.push(failed(report::FANOUT, name, &e));
                    report.rows.push(failed(report::FANOUT_RATE, name, &e));
                    continue;
                }
            };
            let watched = target.watched();
            let params = plan.fanout.clone();
            match fanout::run(target.addr, &target.path, &watched, &params, &p).await {
                Ok(r) => {
                    p.say(&summary(&r));
                    report.rows.push(fanout_row(report::FANOUT, name, &r));
                }
                Err(e) => {
                    p.say(&format!("failed: {e}"));
                    report.rows.push(failed(report::FANOUT, name, &e));
                }
            }
            let p = progress.with_label(format!("fixed rate / {name}"));
            let params = FanoutParams {
                rate: Some(plan.rate),
                duration: plan.rate_duration,
                window: 64,
                prefix: "rate".into(),
                ..plan.fanout.clone()
            };
            match fanout::run(target.addr, &target.path, &watched, &params, &p).await {
                Ok(r) => {
                    p.say(&summary(&r));
                    report.rows.push(fanout_row(report::FANOUT_RATE, name, &r));
                }
                Err(e) => {
                    p.say(&format!("failed: {e}"));
                    report.rows.push(failed(report::FANOUT_RATE, name, &e));
                }
            }
            target.stop().await;
        }
    }

    let connection_scenarios = [
        (Scenario::Idle, report::IDLE, &plan.idle),
        (Scenario::Storm, report::STORM, &plan.storm),
    ];
    for (scenario, title, params) in connection_scenarios {
        if !plan.scenarios.contains(&scenario) {
            continue;
        }
        for peer in [Peer::Recordsync, Peer::Deepstream] {
            if !plan.wants(peer) {
                continue;
            }
            let kind = peer_kind(peer);
            let name = label(kind);
            let p = progress.with_label(format!("{title} / {name}"));
            let target = match start(kind).await {
                Ok(t) => t,
                Err(e) => {
                    p.say(&format!("failed to start: {e}"));
                    report.rows.push(failed(title, name, &e));
                    continue;
                }
            };
            // Let the server finish starting up before its baseline memory is read.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let watched = target.watched();
            match connections::run(target.addr, &target.path, &watched, params, &p).await {
                Ok(r) => {
                    if scenario == Scenario::Idle {
                        p.say(&format!(
                            "{:.1} KB per connection",
                            r.bytes_per_connection() / 1024.0
                        ));
                    }
                    report.rows.push(connection_row(title, name, &r));
                }
                Err(e) => {
                    p.say(&format!("failed: {e}"));
                    report.rows.push(failed(title, name, &e));
                }
            }
            target.stop().await;
            // Let closed sockets leave the kernel's tables before the next storm.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    if plan.scenarios.contains(&Scenario::Durable) {
        if plan.wants(Peer::Recordsync) {
            let p = progress.with_label(format!("{} / recordsync", report::DURABLE));
            match start(Kind::RecordsyncEmbedded).await {
                Ok(target) => {
                    let watched = target.watched();
                    let params = FanoutParams {
                        writers: plan.durable_writers,
                        subscribers: 0,
                        records: plan.durable_writers,
                        subscriptions: 0,
                        rate: None,
                        window: 1,
                        warmup: plan.durable_warmup,
                        duration: plan.durable_duration,
                        drain: Duration::from_secs(15),
                        payload: 32,
                        prefix: "durable".into(),
                    };
                    match fanout::run(target.addr, &target.path, &watched, &params, &p).await {
                        Ok(r) => {
                            p.say(&summary(&r));
                            report
                                .rows
                                .push(fanout_row(report::DURABLE, report::RECORDSYNC, &r));
                        }
                        Err(e) => {
                            p.say(&format!("failed: {e}"));
                            report
                                .rows
                                .push(failed(report::DURABLE, report::RECORDSYNC, &e));
                        }
                    }
                    target.stop().await;
                }
                Err(e) => {
                    p.say(&format!("failed to start: {e}"));
                    report
                        .rows
                        .push(failed(report::DURABLE, report::RECORDSYNC, &e));
                }
            }
        }
        if plan.wants(Peer::Sharedb) {
            let p = progress.with_label(format!("{} / ShareDB", report::DURABLE));
            let outcome = async {
                let target = start(Kind::Sharedb).await?;
                p.say(&format!(
                    "{} ShareDB writers connecting",
                    plan.durable_writers
                ));
                let r = sharedb::run(
                    &target,
                    &plan.peers_dir,
                    plan.durable_writers,
                    plan.durable_warmup,
                    plan.durable_duration,
                    &p,
                )
                .await;
                target.stop().await;
                r
            }
            .await;
            match outcome {
                Ok(r) => {
                    p.say(&format!("{:.0} acknowledged writes/s", r.acks_per_s));
                    report.rows.push(sharedb_row(&r));
                }
                Err(e) => {
                    p.say(&format!("failed: {e}"));
                    report
                        .rows
                        .push(failed(report::DURABLE, report::SHAREDB, &e));
                }
            }
        }
    }

    sharedb_scenarios(plan, &peers_ready, &progress, &mut report, &mut cluster_cpu).await;

    if plan.scenarios.contains(&Scenario::ClusterFanout) && plan.wants(Peer::Recordsync) {
        for setup in cluster::SETUPS {
            let name = setup.label;
            let p = progress.with_label(format!("{} / {name}", report::CLUSTER));
            let c = match Cluster::start(setup).await {
                Ok(c) => c,
                Err(e) => {
                    p.say(&format!("failed to start: {e}"));
                    report.rows.push(failed(report::CLUSTER, name, &e));
                    report.rows.push(failed(report::CLUSTER_RATE, name, &e));
                    continue;
                }
            };
            let addrs = c.addrs();
            let watched = c.watched();
            let runs = [
                (
                    report::CLUSTER,
                    FanoutParams {
                        prefix: "cfan".into(),
                        ..plan.fanout.clone()
                    },
                ),
                (
                    report::CLUSTER_RATE,
                    FanoutParams {
                        rate: Some(plan.rate),
                        duration: plan.rate_duration,
                        window: 64,
                        prefix: "crate".into(),
                        ..plan.fanout.clone()
                    },
                ),
            ];
            for (scenario, params) in runs {
                let p = progress.with_label(format!("{scenario} / {name}"));
                match fanout::run_on(&addrs, "/deepstream", &watched, &params, &p).await {
                    Ok(r) => {
                        p.say(&summary(&r));
                        cluster_cpu += r
                            .cpu_parts
                            .iter()
                            .filter(|(l, _)| *l == cluster::DATABASE)
                            .map(|(_, c)| c)
                            .sum::<f64>();
                        report.rows.push(fanout_row(scenario, name, &r));
                    }
                    Err(e) => {
                        p.say(&format!("failed: {e}"));
                        report.rows.push(failed(scenario, name, &e));
                    }
                }
            }
            c.stop().await;
        }
        let _ = cluster::drop_schema();
    }

    report.conditions.load_after = procstat::load_average();
    let secs = run_started.elapsed().as_secs_f64();
    let busy = procstat::machine_busy_seconds() - busy0;
    let ours = procstat::self_and_children_cpu_seconds() - ours0;
    report.conditions.seconds = Some(secs);
    // The PostgreSQL backends that served the cluster runs are not our children, but
    // their work was ours.
    report.conditions.others_cores = Some(((busy - ours - cluster_cpu) / secs).max(0.0));
    Ok(report)
}

/// The ShareDB scenarios: each against recordsync (memory, embedded for durable ops),
/// recordsync on PostgreSQL, ShareDB in memory and ShareDB on PostgreSQL, where it makes
/// sense (ShareDB in memory is not durable; sharedb-postgres answers no queries).
/// `database_cpu` gathers the PostgreSQL backends' CPU, which is the run's own work.
async fn sharedb_scenarios(
    plan: &Plan,
    peers_ready: &std::result::Result<(), String>,
    progress: &Progress,
    report: &mut Report,
    database_cpu: &mut f64,
) {
    use SdbKind::*;
    let wanted = |k: SdbKind| plan.wants(k.peer());
    let mut database = |parts: &[(&'static str, f64)]| {
        *database_cpu += parts
            .iter()
            .filter(|(l, _)| *l == cluster::DATABASE)
            .map(|(_, c)| c)
            .sum::<f64>();
    };
    let start = |kind: SdbKind, durable: bool| {
        let peers_ready = peers_ready.clone();
        async move {
            if kind.peer() == Peer::Sharedb {
                peers_ready.map_err(|e| -> crate::client::Error { e.into() })?;
            }
            start_sdb(kind, durable, &plan.peers_dir).await
        }
    };

    if plan.scenarios.contains(&Scenario::SharedbFanout) {
        for kind in [
            Recordsync,
            RecordsyncPostgres,
            SharedbMemory,
            SharedbPostgres,
        ] {
            if !wanted(kind) {
                continue;
            }
            let name = kind.label();
            let p = progress.with_label(format!("{} / {name}", report::SDB_FANOUT));
            let server = match start(kind, false).await {
                Ok(s) => s,
                Err(e) => {
                    p.say(&format!("failed to start: {e}"));
                    report.rows.push(failed(report::SDB_FANOUT, name, &e));
                    report.rows.push(failed(report::SDB_FANOUT_RATE, name, &e));
                    continue;
                }
            };
            let runs = [
                (
                    report::SDB_FANOUT,
                    FanoutParams {
                        prefix: "sfan".into(),
                        ..plan.fanout.clone()
                    },
                ),
                (
                    report::SDB_FANOUT_RATE,
                    FanoutParams {
                        rate: Some(plan.rate),
                        duration: plan.rate_duration,
                        window: 64,
                        prefix: "srate".into(),
                        ..plan.fanout.clone()
                    },
                ),
            ];
            for (scenario, params) in runs {
                let p = progress.with_label(format!("{scenario} / {name}"));
                let t = &server.target;
                match sharedb_fanout::run(t.addr, t.sharedb_path(), &server.watched, &params, &p)
                    .await
                {
                    Ok(r) => {
                        p.say(&summary(&r));
                        database(&r.cpu_parts);
                        report.rows.push(fanout_row(scenario, name, &r));
                    }
                    Err(e) => {
                        p.say(&format!("failed: {e}"));
                        report.rows.push(failed(scenario, name, &e));
                    }
                }
            }
            server.target.stop().await;
        }
    }

    if plan.scenarios.contains(&Scenario::SharedbDurable) {
        for kind in [Recordsync, RecordsyncPostgres, SharedbPostgres] {
            if !wanted(kind) {
                continue;
            }
            let name = kind.label();
            let p = progress.with_label(format!("{} / {name}", report::SDB_DURABLE));
            let params = FanoutParams {
                writers: plan.durable_writers,
                subscribers: 0,
                records: plan.durable_writers,
                subscriptions: 0,
                rate: None,
                window: 1,
                warmup: plan.durable_warmup,
                duration: plan.durable_duration,
                drain: Duration::from_secs(15),
                payload: 0,
                prefix: "sdur".into(),
            };
            let outcome = async {
                let server = start(kind, true).await?;
                let t = &server.target;
                let r = sharedb_fanout::run(t.addr, t.sharedb_path(), &server.watched, &params, &p)
                    .await;
                server.target.stop().await;
                r
            }
            .await;
            match outcome {
                Ok(r) => {
                    p.say(&summary(&r));
                    database(&r.cpu_parts);
                    report.rows.push(fanout_row(report::SDB_DURABLE, name, &r));
                }
                Err(e) => {
                    p.say(&format!("failed: {e}"));
                    report.rows.push(failed(report::SDB_DURABLE, name, &e));
                }
            }
        }
    }

    if plan.scenarios.contains(&Scenario::SharedbQuery) {
        for kind in [Recordsync, RecordsyncPostgres, SharedbMemory] {
            if !wanted(kind) {
                continue;
            }
            let name = kind.label();
            let p = progress.with_label(format!("{} / {name}", report::SDB_QUERY));
            let outcome = async {
                let server = start(kind, false).await?;
                let t = &server.target;
                let r =
                    sharedb_query::run(t.addr, t.sharedb_path(), &server.watched, &plan.query, &p)
                        .await;
                server.target.stop().await;
                r
            }
            .await;
            match outcome {
                Ok(r) => {
                    p.say(&format!(
                        "{:.0} queries/s, p50 {:.2} ms, p99 {:.2} ms",
                        r.queries_per_second(),
                        r.latency.quantile(0.5) as f64 / 1000.0,
                        r.latency.quantile(0.99) as f64 / 1000.0
                    ));
                    database(&r.cpu_parts);
                    report.rows.push(query_row(name, &r));
                }
                Err(e) => {
                    p.say(&format!("failed: {e}"));
                    report.rows.push(failed(report::SDB_QUERY, name, &e));
                }
            }
        }
        if wanted(SharedbPostgres) {
            let e: crate::client::Error = "not run: sharedb-postgres 5 answers no queries \
                (its database has only ShareDB's stub, ERR_DATABASE_METHOD_NOT_IMPLEMENTED)"
                .into();
            report
                .rows
                .push(failed(report::SDB_QUERY, report::SHAREDB, &e));
        }
    }
    if plan.scenarios.iter().any(|s| {
        matches!(
            s,
            Scenario::SharedbFanout | Scenario::SharedbDurable | Scenario::SharedbQuery
        )
    }) && plan.wants(Peer::Recordsync)
    {
        let _ = cluster::drop_schema_named(SDB_SCHEMA);
    }
}

fn summary(r: &FanoutResult) -> String {
    let mut s = format!(
        "{:.0} acked writes/s, {:.0} deliveries/s, {:.0} deliveries/server CPU-s, server {:.2} cores, generator {:.2} cores",
        r.acked_per_second(),
        r.deliveries_per_second(),
        r.deliveries_per_cpu_second(),
        r.server_cpu / r.seconds,
        r.generator_cpu / r.seconds,
    );
    if r.expected > 0 {
        s.push_str(&format!(
            ", delivery p99 {:.2} ms, missing {} of {}",
            r.delivery.quantile(0.99) as f64 / 1000.0,
            r.missing,
            r.expected
        ));
    } else {
        s.push_str(&format!(
            ", ack p99 {:.2} ms",
            r.ack.quantile(0.99) as f64 / 1000.0
        ));
    }
    if r.write_errors + r.unacknowledged > 0 {
        s.push_str(&format!(
            ", {} write errors, {} unacknowledged",
            r.write_errors, r.unacknowledged
        ));
    }
    s
}

/// Writes the report files and returns their paths.
pub fn write(report: &Report, out: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out)?;
    let md = out.join("latest.md");
    let svg = out.join("latest.svg");
    let jsonl = out.join("latest.jsonl");
    let history = out.join("history.jsonl");
    std::fs::write(&md, report.markdown())?;
    std::fs::write(&svg, report.svg())?;
    let lines = report.json_lines();
    std::fs::write(&jsonl, &lines)?;
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&history)?
        .write_all(lines.as_bytes())?;
    Ok(vec![md, svg, jsonl, history])
}

/// The current time as `YYYY-MM-DD HH:MM:SS UTC`, without a date crate.
fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
