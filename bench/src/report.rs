//! Results: one JSON line per (scenario, target) run, a markdown report with the side-by-side
//! table and the targets, and an SVG plot of the headline figures.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// One scenario run against one target.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: &'static str,
    pub target: &'static str,
    pub metrics: BTreeMap<&'static str, f64>,
    /// Why the run produced no figures, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// When and how the figures were taken.
#[derive(Debug, Clone, Serialize)]
pub struct Conditions {
    pub started: String,
    pub scale: String,
    pub cores: usize,
    pub load_before: Option<(f64, f64, f64)>,
    pub load_after: Option<(f64, f64, f64)>,
    pub fd_limit: u64,
    /// Cores that processes other than the harness and its servers kept busy, on average,
    /// during the run: how quiet the machine was.
    pub others_cores: Option<f64>,
    pub seconds: Option<f64>,
    pub parameters: BTreeMap<&'static str, String>,
}

pub struct Report {
    pub conditions: Conditions,
    pub rows: Vec<Row>,
}

pub const FANOUT: &str = "fan-out";
pub const FANOUT_RATE: &str = "fan-out at fixed rate";
pub const IDLE: &str = "idle";
pub const DURABLE: &str = "durable writes";
pub const STORM: &str = "connection storm";
pub const CLUSTER: &str = "cluster fan-out";
pub const CLUSTER_RATE: &str = "cluster fan-out at fixed rate";
pub const SDB_FANOUT: &str = "ShareDB fan-out";
pub const SDB_FANOUT_RATE: &str = "ShareDB fan-out at fixed rate";
pub const SDB_DURABLE: &str = "ShareDB durable ops";
pub const SDB_QUERY: &str = "ShareDB fetch query";

pub const RECORDSYNC: &str = "recordsync";
pub const DEEPSTREAM: &str = "deepstream";
pub const SHAREDB: &str = "ShareDB+PostgreSQL";
pub const CEILING: &str = "ceiling";
/// recordsync on PostgreSQL (the ShareDB section's like-for-like with ShareDB+PostgreSQL).
pub const RECORDSYNC_PG: &str = "recordsync on PostgreSQL";
pub const SHAREDB_MEMORY: &str = "ShareDB in memory";

/// A target of the issue: `ours / theirs` compared with `bound`.
pub struct Goal {
    pub what: &'static str,
    pub scenario: &'static str,
    pub metric: &'static str,
    pub peer: &'static str,
    /// `true`: the ratio must be at least `bound`; `false`: at most.
    pub at_least: bool,
    pub bound: f64,
}

pub const GOALS: &[Goal] = &[
    Goal {
        what: "deliveries per server CPU-second vs deepstream",
        scenario: FANOUT,
        metric: "deliveries_per_server_cpu_s",
        peer: DEEPSTREAM,
        at_least: true,
        bound: 20.0,
    },
    Goal {
        what: "deliveries per server CPU-second vs bare ceiling",
        scenario: FANOUT,
        metric: "deliveries_per_server_cpu_s",
        peer: CEILING,
        at_least: true,
        bound: 0.5,
    },
    Goal {
        what: "p99 write-to-delivery at the fixed rate vs deepstream",
        scenario: FANOUT_RATE,
        metric: "delivery_p99_ms",
        peer: DEEPSTREAM,
        at_least: false,
        bound: 0.2,
    },
    Goal {
        what: "idle memory per connection vs deepstream",
        scenario: IDLE,
        metric: "bytes_per_connection",
        peer: DEEPSTREAM,
        at_least: false,
        bound: 0.2,
    },
    Goal {
        what: "durable acknowledged writes/s vs ShareDB on PostgreSQL",
        scenario: DURABLE,
        metric: "acked_writes_per_s",
        peer: SHAREDB,
        at_least: true,
        bound: 20.0,
    },
    Goal {
        what: "time until all connections are ready vs deepstream",
        scenario: STORM,
        metric: "seconds_to_all_ready",
        peer: DEEPSTREAM,
        at_least: false,
        bound: 0.2,
    },
];

/// Rows of each scenario's table: metric key, label.
const TABLES: &[(&str, &[(&str, &str)])] = &[
    (
        FANOUT,
        &[
            ("acked_writes_per_s", "acknowledged writes/s"),
            ("deliveries_per_s", "deliveries/s"),
            (
                "deliveries_per_server_cpu_s",
                "deliveries per server CPU-second",
            ),
            ("server_cpu_cores", "server CPU (cores busy)"),
            ("generator_cpu_cores", "generator CPU (cores busy)"),
            ("ack_p50_ms", "write-ack p50 (ms)"),
            ("ack_p99_ms", "write-ack p99 (ms)"),
            ("ack_p999_ms", "write-ack p999 (ms)"),
            ("ack_max_ms", "write-ack max (ms)"),
            ("delivery_p50_ms", "write-to-delivery p50 (ms)"),
            ("delivery_p99_ms", "write-to-delivery p99 (ms)"),
            ("delivery_p999_ms", "write-to-delivery p999 (ms)"),
            ("delivery_max_ms", "write-to-delivery max (ms)"),
            ("expected_deliveries", "deliveries expected (whole run)"),
            ("missing_deliveries", "deliveries missing"),
            (
                "duplicate_deliveries",
                "deliveries duplicated / out of order",
            ),
            ("write_errors", "write errors + unacknowledged"),
            ("server_rss_mb", "server RSS at end (MB)"),
        ],
    ),
    (
        FANOUT_RATE,
        &[
            ("acked_writes_per_s", "acknowledged writes/s"),
            ("deliveries_per_s", "deliveries/s"),
            (
                "deliveries_per_server_cpu_s",
                "deliveries per server CPU-second",
            ),
            ("server_cpu_cores", "server CPU (cores busy)"),
            ("ack_p50_ms", "write-ack p50 (ms)"),
            ("ack_p99_ms", "write-ack p99 (ms)"),
            ("delivery_p50_ms", "write-to-delivery p50 (ms)"),
            ("delivery_p99_ms", "write-to-delivery p99 (ms)"),
            ("delivery_p999_ms", "write-to-delivery p999 (ms)"),
            ("delivery_max_ms", "write-to-delivery max (ms)"),
            ("missing_deliveries", "deliveries missing"),
            ("late_writes", "writes not sent (window full)"),
            ("behind_schedule", "writes sent over 5 ms behind schedule"),
        ],
    ),
    (
        IDLE,
        &[
            (
                "bytes_per_connection",
                "server memory per connection (bytes)",
            ),
            ("rss_before_mb", "server RSS before (MB)"),
            ("rss_after_mb", "server RSS with the connections (MB)"),
            ("ready", "connections ready"),
            ("errors", "errors"),
        ],
    ),
    (
        DURABLE,
        &[
            ("acked_writes_per_s", "acknowledged durable writes/s"),
            (
                "acked_per_server_cpu_s",
                "acked writes per server CPU-second",
            ),
            ("server_cpu_cores", "server CPU (cores busy)"),
            ("database_cpu_cores", "of which PostgreSQL (cores busy)"),
            ("ack_p50_ms", "write-ack p50 (ms)"),
            ("ack_p99_ms", "write-ack p99 (ms)"),
            ("ack_max_ms", "write-ack max (ms)"),
            ("write_errors", "write errors + unacknowledged"),
        ],
    ),
    (
        STORM,
        &[
            ("seconds_to_all_ready", "time until all ready (s)"),
            ("connections_per_s", "connections ready per second"),
            (
                "ready_p50_ms",
                "one connection: connect to subscribed p50 (ms)",
            ),
            (
                "ready_p99_ms",
                "one connection: connect to subscribed p99 (ms)",
            ),
            ("server_cpu_s", "server CPU (s)"),
            ("ready", "connections ready"),
            ("errors", "errors"),
        ],
    ),
];

const COLUMNS: &[&str] = &[RECORDSYNC, DEEPSTREAM, SHAREDB, CEILING];

/// The cluster section's tables: recordsync alone on PostgreSQL and two nodes on it.
const CLUSTER_TABLES: &[(&str, &[(&str, &str)])] = &[
    (
        CLUSTER,
        &[
            ("acked_writes_per_s", "acknowledged writes/s"),
            ("deliveries_per_s", "deliveries/s"),
            (
                "cpu_us_per_delivery",
                "CPU per delivery (µs): nodes + bus + PostgreSQL",
            ),
            (
                "nodes_cpu_us_per_delivery",
                "CPU per delivery (µs): recordsync nodes only",
            ),
            (
                "deliveries_per_server_cpu_s",
                "deliveries per CPU-second (nodes + bus + PostgreSQL)",
            ),
            ("nodes_cpu_cores", "recordsync nodes CPU (cores busy)"),
            ("bus_cpu_cores", "bus server CPU (cores busy)"),
            ("database_cpu_cores", "PostgreSQL backends CPU (cores busy)"),
            ("generator_cpu_cores", "generator CPU (cores busy)"),
            ("ack_p50_ms", "write-ack p50 (ms)"),
            ("ack_p99_ms", "write-ack p99 (ms)"),
            ("delivery_p50_ms", "write-to-delivery p50 (ms)"),
            ("delivery_p99_ms", "write-to-delivery p99 (ms)"),
            ("delivery_p999_ms", "write-to-delivery p999 (ms)"),
            ("delivery_max_ms", "write-to-delivery max (ms)"),
            ("expected_deliveries", "deliveries expected (whole run)"),
            ("missing_deliveries", "deliveries missing"),
            (
                "duplicate_deliveries",
                "deliveries duplicated / out of order",
            ),
            ("write_errors", "write errors + unacknowledged"),
            ("server_rss_mb", "nodes' RSS at end (MB)"),
        ],
    ),
    (
        CLUSTER_RATE,
        &[
            ("acked_writes_per_s", "acknowledged writes/s"),
            ("deliveries_per_s", "deliveries/s"),
            (
                "cpu_us_per_delivery",
                "CPU per delivery (µs): nodes + bus + PostgreSQL",
            ),
            (
                "nodes_cpu_us_per_delivery",
                "CPU per delivery (µs): recordsync nodes only",
            ),
            ("nodes_cpu_cores", "recordsync nodes CPU (cores busy)"),
            ("bus_cpu_cores", "bus server CPU (cores busy)"),
            ("database_cpu_cores", "PostgreSQL backends CPU (cores busy)"),
            ("ack_p50_ms", "write-ack p50 (ms)"),
            ("ack_p99_ms", "write-ack p99 (ms)"),
            ("delivery_p50_ms", "write-to-delivery p50 (ms)"),
            ("delivery_p99_ms", "write-to-delivery p99 (ms)"),
            ("delivery_p999_ms", "write-to-delivery p999 (ms)"),
            ("delivery_max_ms", "write-to-delivery max (ms)"),
            ("missing_deliveries", "deliveries missing"),
            ("late_writes", "writes not sent (window full)"),
            ("behind_schedule", "writes sent over 5 ms behind schedule"),
        ],
    ),
];

/// The ShareDB section's tables: the ShareDB protocol, the same Rust generator against
/// recordsync and ShareDB 7.
const SHAREDB_TABLES: &[(&str, &[(&str, &str)])] = &[
    (
        SDB_FANOUT,
        &[
            ("acked_writes_per_s", "acknowledged ops/s"),
            ("deliveries_per_s", "deliveries/s"),
            (
                "deliveries_per_server_cpu_s",
                "deliveries per server CPU-second",
            ),
            ("acked_per_server_cpu_s", "acked ops per server CPU-second"),
            ("server_cpu_cores", "server CPU (cores busy)"),
            ("database_cpu_cores", "of which PostgreSQL (cores busy)"),
            ("generator_cpu_cores", "generator CPU (cores busy)"),
            ("ack_p50_ms", "op-ack p50 (ms)"),
            ("ack_p99_ms", "op-ack p99 (ms)"),
            ("delivery_p50_ms", "op-to-delivery p50 (ms)"),
            ("delivery_p99_ms", "op-to-delivery p99 (ms)"),
            ("delivery_max_ms", "op-to-delivery max (ms)"),
            ("expected_deliveries", "deliveries expected (whole run)"),
            ("missing_deliveries", "deliveries missing"),
            (
                "duplicate_deliveries",
                "deliveries duplicated / out of order",
            ),
            ("write_errors", "op errors + unacknowledged"),
            ("server_rss_mb", "server RSS at end (MB)"),
        ],
    ),
    (
        SDB_FANOUT_RATE,
        &[
            ("acked_writes_per_s", "acknowledged ops/s"),
            ("deliveries_per_s", "deliveries/s"),
            (
                "deliveries_per_server_cpu_s",
                "deliveries per server CPU-second",
            ),
            ("server_cpu_cores", "server CPU (cores busy)"),
            ("database_cpu_cores", "of which PostgreSQL (cores busy)"),
            ("ack_p50_ms", "op-ack p50 (ms)"),
            ("ack_p99_ms", "op-ack p99 (ms)"),
            ("delivery_p50_ms", "op-to-delivery p50 (ms)"),
            ("delivery_p99_ms", "op-to-delivery p99 (ms)"),
            ("delivery_p999_ms", "op-to-delivery p999 (ms)"),
            ("delivery_max_ms", "op-to-delivery max (ms)"),
            ("missing_deliveries", "deliveries missing"),
            ("late_writes", "ops not sent (document busy)"),
            ("behind_schedule", "ops sent over 5 ms behind schedule"),
        ],
    ),
    (
        SDB_DURABLE,
        &[
            ("acked_writes_per_s", "acknowledged durable ops/s"),
            ("acked_per_server_cpu_s", "acked ops per server CPU-second"),
            ("server_cpu_cores", "server CPU (cores busy)"),
            ("database_cpu_cores", "of which PostgreSQL (cores busy)"),
            ("ack_p50_ms", "op-ack p50 (ms)"),
            ("ack_p99_ms", "op-ack p99 (ms)"),
            ("ack_p999_ms", "op-ack p999 (ms)"),
            ("ack_max_ms", "op-ack max (ms)"),
            ("write_errors", "op errors + unacknowledged"),
        ],
    ),
    (
        SDB_QUERY,
        &[
            ("queries_per_s", "queries/s (one in flight)"),
            ("query_p50_ms", "query latency p50 (ms)"),
            ("query_p99_ms", "query latency p99 (ms)"),
            ("query_max_ms", "query latency max (ms)"),
            ("server_cpu_ms_per_query", "server CPU per query (ms)"),
            ("database_cpu_cores", "of which PostgreSQL (cores busy)"),
            ("creates_per_s", "creates/s while populating"),
            ("query_errors", "queries refused"),
            ("wrong_answers", "wrong answers"),
            ("server_rss_mb", "server RSS at end (MB)"),
        ],
    ),
];

const SHAREDB_COLUMNS: &[&str] = &[RECORDSYNC, RECORDSYNC_PG, SHAREDB_MEMORY, SHAREDB];

const CLUSTER_COLUMNS: &[&str] = &[
    crate::cluster::ONE_NODE,
    crate::cluster::TWO_REDIS,
    crate::cluster::TWO_NATS,
];

impl Report {
    pub fn get(&self, scenario: &str, target: &str, metric: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.scenario == scenario && r.target == target && r.error.is_none())
            .and_then(|r| r.metrics.get(metric).copied())
    }

    fn error(&self, scenario: &str, target: &str) -> Option<&str> {
        self.rows
            .iter()
            .find(|r| r.scenario == scenario && r.target == target)
            .and_then(|r| r.error.as_deref())
    }

    /// `(ratio, met)` of a goal, when both sides ran.
    pub fn goal(&self, g: &Goal) -> Option<(f64, bool)> {
        let ours = self.get(g.scenario, RECORDSYNC, g.metric)?;
        let theirs = self.get(g.scenario, g.peer, g.metric)?;
        if theirs == 0.0 {
            return None;
        }
        let ratio = ours / theirs;
        let met = if g.at_least {
            ratio >= g.bound
        } else {
            ratio <= g.bound
        };
        Some((ratio, met))
    }

    pub fn json_lines(&self) -> String {
        let mut out = String::new();
        for row in &self.rows {
            let line = serde_json::json!({
                "started": self.conditions.started,
                "scale": self.conditions.scale,
                "scenario": row.scenario,
                "target": row.target,
                "metrics": row.metrics,
                "error": row.error,
            });
            let _ = writeln!(out, "{line}");
        }
        out
    }

    pub fn markdown(&self) -> String {
        let c = &self.conditions;
        let mut out = String::new();
        let _ = writeln!(out, "# recordsync side-by-side benchmark\n");
        let load = |l: Option<(f64, f64, f64)>| {
            l.map_or("?".into(), |(a, b, c)| format!("{a:.2} {b:.2} {c:.2}"))
        };
        let _ = writeln!(
            out,
            "Started {} · scale `{}` · {} cores · load average before {} / after {} · open-file limit {}\n",
            c.started,
            c.scale,
            c.cores,
            load(c.load_before),
            load(c.load_after),
            c.fd_limit
        );
        let params: Vec<String> = c
            .parameters
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        if let (Some(o), Some(secs)) = (c.others_cores, c.seconds) {
            let _ = writeln!(
                out,
                "Run took {secs:.0} s; other processes on the machine kept {o:.2} of its {} cores busy meanwhile{}.\n",
                c.cores,
                if o > 0.25 {
                    " (**not quiet**: latency figures are inflated by CPU contention)"
                } else {
                    " (quiet)"
                }
            );
        }
        let _ = writeln!(out, "Parameters: {}\n", params.join(" · "));
        let _ = writeln!(out, "## Targets\n");
        let _ = writeln!(
            out,
            "| target | recordsync / peer | required | met |\n| --- | ---: | ---: | :---: |"
        );
        for g in GOALS {
            let req = format!("{} {}", if g.at_least { "≥" } else { "≤" }, fmt(g.bound));
            match self.goal(g) {
                Some((ratio, met)) => {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {req} | {} |",
                        g.what,
                        fmt(ratio),
                        if met { "yes" } else { "**no**" }
                    );
                }
                None => {
                    let _ = writeln!(out, "| {} | not measured | {req} | – |", g.what);
                }
            }
        }
        let missing: f64 = self
            .rows
            .iter()
            .filter_map(|r| r.metrics.get("missing_deliveries"))
            .sum();
        let _ = writeln!(
            out,
            "\nDelivery completeness: {}.\n",
            if missing == 0.0 {
                "every expected delivery arrived, in every fan-out run".to_owned()
            } else {
                format!("**{missing} expected deliveries never arrived** (see the tables)")
            }
        );
        self.tables(&mut out, TABLES, COLUMNS, RECORDSYNC, true);
        if self
            .rows
            .iter()
            .any(|r| SHAREDB_TABLES.iter().any(|(s, _)| *s == r.scenario))
        {
            let _ = writeln!(out, "## ShareDB protocol: recordsync and ShareDB 7\n");
            let _ = writeln!(
                out,
                "The same Rust generator speaking ShareDB's protocol (json0 ops with src, seq \
                 and v; one op in flight per document) to recordsync's `/sharedb` and to ShareDB 7 \
                 over ws. recordsync is in memory for fan-out and queries and on its embedded \
                 store for durable ops; ShareDB in memory is sharedb-mingo-memory. CPU on \
                 PostgreSQL includes the backends serving the server's pool. Ratios are \
                 recordsync (first column) over each other column.\n"
            );
            self.tables(&mut out, SHAREDB_TABLES, SHAREDB_COLUMNS, RECORDSYNC, true);
        }
        if self
            .rows
            .iter()
            .any(|r| r.scenario == CLUSTER || r.scenario == CLUSTER_RATE)
        {
            let _ = writeln!(out, "## Cluster: one node and two nodes on PostgreSQL\n");
            let _ = writeln!(
                out,
                "The fan-out above, every setup on the same PostgreSQL store (the single node too), \
                 the two-node setups joined by a private redis-server or nats-server. Writer `w` \
                 writes on node `w mod 2`; each record's subscribers are split evenly over the \
                 nodes, so half of every write's deliveries cross the bus. CPU counts the \
                 recordsync nodes, the bus server and the PostgreSQL backends serving the nodes; \
                 ratios are each setup over the single node.\n"
            );
            self.tables(
                &mut out,
                CLUSTER_TABLES,
                CLUSTER_COLUMNS,
                crate::cluster::ONE_NODE,
                false,
            );
        }
        out
    }

    /// One table per scenario, a column per target present and the ratios to `base`
    /// (`base / peer` when `base_first`, else `peer / base`).
    fn tables(
        &self,
        out: &mut String,
        tables: &[(&str, &[(&str, &str)])],
        columns: &[&str],
        base: &str,
        base_first: bool,
    ) {
        for (scenario, metrics) in tables {
            let present: Vec<&str> = columns
                .iter()
                .copied()
                .filter(|t| {
                    self.rows
                        .iter()
                        .any(|r| r.scenario == *scenario && r.target == *t)
                })
                .collect();
            if present.is_empty() {
                continue;
            }
            let _ = writeln!(out, "## {scenario}\n");
            let peers: Vec<&str> = present.iter().copied().filter(|t| *t != base).collect();
            let mut header = format!("| metric | {} |", present.join(" | "));
            let mut rule = format!("| --- |{}", " ---: |".repeat(present.len()));
            let has_base = present.contains(&base);
            if has_base {
                for p in &peers {
                    if base_first {
                        let _ = write!(header, " {base} / {p} |");
                    } else {
                        let _ = write!(header, " {p} / {base} |");
                    }
                    rule.push_str(" ---: |");
                }
            }
            let _ = writeln!(out, "{header}\n{rule}");
            for (key, label) in *metrics {
                let mut line = format!("| {label} |");
                for t in &present {
                    let cell = match (self.get(scenario, t, key), self.error(scenario, t)) {
                        (Some(v), _) => fmt(v),
                        (None, Some(_)) => "failed".into(),
                        (None, None) => "–".into(),
                    };
                    let _ = write!(line, " {cell} |");
                }
                if has_base {
                    for p in &peers {
                        let (num, den) = if base_first { (base, *p) } else { (*p, base) };
                        let ratio =
                            match (self.get(scenario, num, key), self.get(scenario, den, key)) {
                                (Some(a), Some(b)) if b != 0.0 => format!("{}×", fmt(a / b)),
                                _ => "–".into(),
                            };
                        let _ = write!(line, " {ratio} |");
                    }
                }
                let _ = writeln!(out, "{line}");
            }
            for t in &present {
                if let Some(e) = self.error(scenario, t) {
                    let _ = writeln!(out, "\n{t} failed: `{}`", e.replace('\n', " "));
                }
            }
            let _ = writeln!(out);
        }
    }

    /// Six panels, one per target: the two sides' bars, the ratio and the verdict; and a
    /// third row for the cluster section when it ran.
    pub fn svg(&self) -> String {
        let with_cluster = self
            .rows
            .iter()
            .any(|r| r.scenario == CLUSTER || r.scenario == CLUSTER_RATE);
        let (w, h) = (1260.0, if with_cluster { 1095.0 } else { 760.0 });
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif">"#
        );
        let _ = writeln!(
            s,
            r##"<rect width="{w}" height="{h}" fill="white"/><text x="20" y="32" font-size="20" font-weight="bold">recordsync vs deepstream, ShareDB and the bare ceiling</text><text x="20" y="54" font-size="13" fill="#555">{} · scale {} · {} cores · other processes {} cores busy · ↑ higher is better, ↓ lower is better</text>"##,
            self.conditions.started,
            self.conditions.scale,
            self.conditions.cores,
            self.conditions
                .others_cores
                .map_or("?".into(), |o| format!("{o:.2}"))
        );
        let mut panels: Vec<(&str, &str, &str, &[&str], &str)> = vec![
            (
                FANOUT,
                "deliveries_per_server_cpu_s",
                "fan-out: deliveries per server CPU-second ↑",
                &[RECORDSYNC, DEEPSTREAM, CEILING],
                "",
            ),
            (
                FANOUT,
                "deliveries_per_s",
                "fan-out, unthrottled: deliveries/s ↑",
                &[RECORDSYNC, DEEPSTREAM, CEILING],
                "",
            ),
            (
                FANOUT_RATE,
                "delivery_p99_ms",
                "fixed rate: p99 write-to-delivery (ms) ↓",
                &[RECORDSYNC, DEEPSTREAM, CEILING],
                " ms",
            ),
            (
                IDLE,
                "bytes_per_connection",
                "idle: server memory per connection (KB) ↓",
                &[RECORDSYNC, DEEPSTREAM],
                " KB",
            ),
            (
                DURABLE,
                "acked_writes_per_s",
                "durable acknowledged writes/s ↑",
                &[RECORDSYNC, SHAREDB],
                "",
            ),
            (
                STORM,
                "seconds_to_all_ready",
                "connection storm: time until all ready (s) ↓",
                &[RECORDSYNC, DEEPSTREAM],
                " s",
            ),
        ];
        if with_cluster {
            panels.extend([
                (
                    CLUSTER,
                    "deliveries_per_s",
                    "cluster on PostgreSQL: deliveries/s ↑",
                    CLUSTER_COLUMNS,
                    "",
                ),
                (
                    CLUSTER,
                    "cpu_us_per_delivery",
                    "cluster: CPU per delivery, nodes+bus+PG (µs) ↓",
                    CLUSTER_COLUMNS,
                    " µs",
                ),
                (
                    CLUSTER_RATE,
                    "delivery_p99_ms",
                    "cluster, fixed rate: p99 write-to-delivery (ms) ↓",
                    CLUSTER_COLUMNS,
                    " ms",
                ),
            ]);
        }
        let colour = |t: &str| match t {
            RECORDSYNC => "#2b7bb9",
            DEEPSTREAM => "#e07b39",
            SHAREDB => "#8a5fb8",
            crate::cluster::ONE_NODE => "#2b7bb9",
            crate::cluster::TWO_REDIS => "#c0392b",
            crate::cluster::TWO_NATS => "#27ae60",
            _ => "#7a7a7a",
        };
        for (i, (scenario, metric, title, targets, unit)) in panels.iter().enumerate() {
            let px = 20.0 + (i % 3) as f64 * 410.0;
            let py = 80.0 + (i / 3) as f64 * 335.0;
            let (pw, ph) = (390.0, 310.0);
            let _ = writeln!(
                s,
                r##"<rect x="{px}" y="{py}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ddd"/><text x="{}" y="{}" font-size="12.5" font-weight="bold">{}</text>"##,
                px + 10.0,
                py + 20.0,
                xml(title)
            );
            let scale = |v: f64| {
                if *metric == "bytes_per_connection" {
                    v / 1024.0
                } else {
                    v
                }
            };
            let values: Vec<(&str, Option<f64>)> = targets
                .iter()
                .map(|t| (*t, self.get(scenario, t, metric).map(scale)))
                .collect();
            let max = values
                .iter()
                .filter_map(|(_, v)| *v)
                .fold(0.0f64, f64::max)
                .max(1e-9);
            let base = py + ph - 40.0;
            let top = py + 80.0;
            let bw = 80.0;
            let gap = (pw - bw * values.len() as f64) / (values.len() as f64 + 1.0);
            for (j, (t, v)) in values.iter().enumerate() {
                let x = px + gap + j as f64 * (bw + gap);
                let _ = writeln!(
                    s,
                    r##"<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text>"##,
                    x + bw / 2.0,
                    base + 18.0,
                    xml(t)
                );
                match v {
                    Some(v) => {
                        let bh = (v / max) * (base - top);
                        let _ = writeln!(
                            s,
                            r##"<rect x="{x}" y="{}" width="{bw}" height="{bh}" fill="{}"/><text x="{}" y="{}" font-size="12" text-anchor="middle">{}{unit}</text>"##,
                            base - bh,
                            colour(t),
                            x + bw / 2.0,
                            base - bh - 5.0,
                            fmt(*v)
                        );
                    }
                    None => {
                        let _ = writeln!(
                            s,
                            r##"<text x="{}" y="{}" font-size="11" text-anchor="middle" fill="#999">not run</text>"##,
                            x + bw / 2.0,
                            base - 5.0
                        );
                    }
                }
            }
            let verdicts: Vec<String> = GOALS
                .iter()
                .filter(|g| g.scenario == *scenario && g.metric == *metric)
                .map(|g| match self.goal(g) {
                    Some((r, met)) => format!(
                        "vs {}: {}× (target {}{}) {}",
                        g.peer,
                        fmt(r),
                        if g.at_least { "≥" } else { "≤" },
                        fmt(g.bound),
                        if met { "met" } else { "MISSED" }
                    ),
                    None => format!("vs {}: not measured", g.peer),
                })
                .collect();
            for (k, v) in verdicts.iter().enumerate() {
                let _ = writeln!(
                    s,
                    r##"<text x="{}" y="{}" font-size="11.5" fill="{}">{}</text>"##,
                    px + 10.0,
                    py + 38.0 + k as f64 * 14.0,
                    if v.ends_with("MISSED") {
                        "#b00"
                    } else {
                        "#060"
                    },
                    xml(v)
                );
            }
        }
        s.push_str("</svg>\n");
        s
    }
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Three significant figures, thousands separated.
pub fn fmt(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if a >= 1000.0 {
        let digits = a.log10().floor() as i32 + 1;
        let keep = 10f64.powi(digits - 3);
        let rounded = ((v / keep).round() * keep) as i64;
        let text = rounded.abs().to_string();
        let mut out = String::new();
        for (i, ch) in text.chars().enumerate() {
            if i > 0 && (text.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(ch);
        }
        return if rounded < 0 { format!("-{out}") } else { out };
    }
    let decimals = (2 - a.log10().floor() as i32).clamp(0, 4) as usize;
    format!("{v:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt(123_456.0), "123,000");
        assert_eq!(fmt(1234.0), "1,230");
        assert_eq!(fmt(12.345), "12.3");
        assert_eq!(fmt(0.01234), "0.0123");
        assert_eq!(fmt(0.0), "0");
        assert_eq!(fmt(20.0), "20.0");
    }

    #[test]
    fn the_cluster_section_has_its_own_columns_and_ratios_to_one_node() {
        let row = |target: &'static str, deliveries: f64| Row {
            scenario: CLUSTER,
            target,
            metrics: BTreeMap::from([
                ("deliveries_per_s", deliveries),
                ("missing_deliveries", 0.0),
            ]),
            error: None,
        };
        let report = Report {
            conditions: Conditions {
                started: "now".into(),
                scale: "small".into(),
                cores: 2,
                load_before: None,
                load_after: None,
                fd_limit: 0,
                others_cores: None,
                seconds: None,
                parameters: BTreeMap::new(),
            },
            rows: vec![
                row(crate::cluster::ONE_NODE, 100_000.0),
                row(crate::cluster::TWO_REDIS, 50_000.0),
                Row {
                    scenario: CLUSTER,
                    target: crate::cluster::TWO_NATS,
                    metrics: BTreeMap::new(),
                    error: Some("nats-server: not found".into()),
                },
            ],
        };
        let md = report.markdown();
        assert!(md.contains("## Cluster: one node and two nodes on PostgreSQL"));
        assert!(md.contains(
            "| metric | 1 node | 2 nodes, Redis | 2 nodes, NATS | 2 nodes, Redis / 1 node | 2 nodes, NATS / 1 node |"
        ));
        assert!(md.contains("| deliveries/s | 100,000 | 50,000 | failed | 0.500× | – |"));
        assert!(md.contains("2 nodes, NATS failed: `nats-server: not found`"));
        // Not among the single-server tables.
        assert!(!md.contains("| metric | recordsync |"));
        assert!(report.svg().contains("cluster on PostgreSQL: deliveries/s"));
    }

    #[test]
    fn the_sharedb_section_compares_recordsync_with_each_sharedb_column() {
        let row = |scenario: &'static str, target: &'static str, metric, value| Row {
            scenario,
            target,
            metrics: BTreeMap::from([(metric, value)]),
            error: None,
        };
        let report = Report {
            conditions: Conditions {
                started: "now".into(),
                scale: "small".into(),
                cores: 2,
                load_before: None,
                load_after: None,
                fd_limit: 0,
                others_cores: None,
                seconds: None,
                parameters: BTreeMap::new(),
            },
            rows: vec![
                row(SDB_FANOUT, RECORDSYNC, "deliveries_per_s", 40_000.0),
                row(SDB_FANOUT, SHAREDB_MEMORY, "deliveries_per_s", 10_000.0),
                row(SDB_QUERY, RECORDSYNC, "query_p99_ms", 2.0),
                Row {
                    scenario: SDB_QUERY,
                    target: SHAREDB,
                    metrics: BTreeMap::new(),
                    error: Some("not run: no queries".into()),
                },
            ],
        };
        let md = report.markdown();
        assert!(md.contains("## ShareDB protocol: recordsync and ShareDB 7"));
        assert!(md.contains(
            "| metric | recordsync | ShareDB in memory | recordsync / ShareDB in memory |"
        ));
        assert!(md.contains("| deliveries/s | 40,000 | 10,000 | 4.00× |"));
        assert!(md.contains("| query latency p99 (ms) | 2.00 | failed | – |"));
        assert!(md.contains("ShareDB+PostgreSQL failed: `not run: no queries`"));
        // Not among the deepstream-protocol tables.
        assert!(!md.contains("## fan-out\n"));
    }
}
