//! The durable-write scenario against ShareDB on PostgreSQL. ShareDB has its own protocol,
//! so its own client drives it (`bench/peers/sharedb-writers.mjs`: W concurrent writers,
//! one op in flight each, as the Rust generator does against recordsync); this side reads
//! the server's CPU at the script's window markers and parses its JSON result.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::client::Result;
use crate::procstat::{self, Watched};
use crate::progress::Progress;
use crate::targets::{Process, Target, command};

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SharedbResult {
    pub writers: u64,
    pub acks: u64,
    pub errors: u64,
    pub seconds: f64,
    pub acks_per_s: f64,
    pub ack_p50_ms: Option<f64>,
    pub ack_p99_ms: Option<f64>,
    pub ack_p999_ms: Option<f64>,
    pub ack_max_ms: Option<f64>,
    /// CPU of the ShareDB node process in the window.
    #[serde(skip)]
    pub server_cpu: f64,
    /// CPU of the PostgreSQL server processes serving ShareDB's pool in the window (the
    /// database does the durable part); every `postgres` process when they cannot be told.
    #[serde(skip)]
    pub postgres_cpu: f64,
    /// CPU of the node client.
    #[serde(skip)]
    pub generator_cpu: f64,
}

pub async fn run(
    target: &Target,
    peers: &Path,
    writers: usize,
    warmup: Duration,
    seconds: Duration,
    progress: &Progress,
) -> Result<SharedbResult> {
    let mut cmd = command("node");
    cmd.arg(peers.join("sharedb-writers.mjs"))
        .arg("--url")
        .arg(format!("ws://{}/", target.addr))
        .args(["--writers", &writers.to_string()])
        .args(["--warmup", &warmup.as_secs_f64().to_string()])
        .args(["--seconds", &seconds.as_secs_f64().to_string()])
        .current_dir(peers)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut client = Process::spawn(cmd)?;
    let stdout = client.child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut server = target.watched();
    let mut postgres = Watched::pids(Vec::new());
    let mut start = (0.0, 0.0, 0.0);
    let mut result: Option<SharedbResult> = None;
    let limit = warmup + seconds + Duration::from_secs(90);
    let reading = async {
        while let Some(line) = lines.next_line().await? {
            match line.as_str() {
                "MEASURE_START" => {
                    server.refresh(target.pid());
                    postgres = Watched::pids(
                        pool_backends().unwrap_or_else(|| procstat::by_name("postgres")),
                    );
                    start = (
                        server.cpu_seconds(),
                        postgres.cpu_seconds(),
                        procstat::cpu_seconds(client.pid).unwrap_or(0.0),
                    );
                    progress.say(&format!("{writers} ShareDB writers measuring"));
                }
                "MEASURE_END" => {
                    result = Some(SharedbResult {
                        server_cpu: server.cpu_seconds() - start.0,
                        postgres_cpu: postgres.cpu_seconds() - start.1,
                        generator_cpu: procstat::cpu_seconds(client.pid).unwrap_or(0.0) - start.2,
                        ..Default::default()
                    });
                }
                json if json.starts_with('{') => {
                    let parsed: SharedbResult = serde_json::from_str(json)?;
                    let cpu = result.take().unwrap_or_default();
                    result = Some(SharedbResult {
                        server_cpu: cpu.server_cpu,
                        postgres_cpu: cpu.postgres_cpu,
                        generator_cpu: cpu.generator_cpu,
                        ..parsed
                    });
                    break;
                }
                _ => {}
            }
        }
        Ok::<(), crate::client::Error>(())
    };
    tokio::time::timeout(limit, reading)
        .await
        .map_err(|_| "the ShareDB writers did not finish in time")??;
    client.stop(Duration::from_secs(5)).await;
    let r = result.ok_or("the ShareDB writers printed no result")?;
    if r.acks == 0 {
        return Err("the ShareDB writers got no acknowledgement".into());
    }
    Ok(r)
}

/// The PostgreSQL backends of ShareDB's pool (`application_name` set by
/// `sharedb-server.mjs`), found with `psql`; `None` when psql is missing or fails. Other
/// clients of the same database are then left out of ShareDB's CPU.
fn pool_backends() -> Option<Vec<u32>> {
    let out = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-Atc",
            "select pid from pg_stat_activity where application_name = 'recordsync-bench-sharedb'",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let pids: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    (!pids.is_empty()).then_some(pids)
}
