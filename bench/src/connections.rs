//! The two connection-count scenarios.
//!
//! - idle: C connections each subscribed to R records, then nothing happens; the server's
//!   resident memory grows by (RSS after − RSS before) / C per connection.
//! - storm: C connections connect, log in and subscribe one record each, as fast as the
//!   server lets them (at most `concurrency` handshakes in flight, so that neither server
//!   is judged on its listen backlog); time until every one is ready, and the errors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::client::{self, Result, Ws};
use crate::histogram::Histogram;
use crate::procstat::{self, Watched};
use crate::progress::Progress;

#[derive(Debug, Clone)]
pub struct ConnectionParams {
    pub connections: usize,
    pub subscriptions: usize,
    pub records: usize,
    pub concurrency: usize,
    /// Idle: how long to wait after the last connection before reading the memory.
    pub settle: Duration,
    pub prefix: String,
}

#[derive(Debug, Clone, Default)]
pub struct ConnectionResult {
    pub ready: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// From the first connect to the last connection ready.
    pub seconds: f64,
    /// Per connection: connect → subscribed, in µs.
    pub ready_latency: Histogram,
    pub server_cpu: f64,
    pub generator_cpu: f64,
    pub rss_before: u64,
    pub rss_after: u64,
}

impl ConnectionResult {
    pub fn bytes_per_connection(&self) -> f64 {
        self.rss_after.saturating_sub(self.rss_before) as f64 / self.ready.max(1) as f64
    }
    pub fn connections_per_second(&self) -> f64 {
        self.ready as f64 / self.seconds.max(1e-9)
    }
}

/// Opens the connections, keeps them open through `settle`, measures, closes them.
pub async fn run(
    addr: SocketAddr,
    path: &str,
    server: &Watched,
    p: &ConnectionParams,
    progress: &Progress,
) -> Result<ConnectionResult> {
    let names: Arc<Vec<String>> = Arc::new(
        (0..p.records.max(1))
            .map(|i| format!("{}/{i}", p.prefix))
            .collect(),
    );
    let rss_before = server.rss_bytes();
    let cpu0 = server.cpu_seconds();
    let gen0 = procstat::self_cpu_seconds();
    progress.say(&format!(
        "opening {} connections x {} subscriptions ({} at a time)",
        p.connections, p.subscriptions, p.concurrency
    ));
    let gate = Arc::new(Semaphore::new(p.concurrency.max(1)));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(p.connections);
    for c in 0..p.connections {
        let gate = gate.clone();
        let names = names.clone();
        let path = path.to_owned();
        let subs = p.subscriptions;
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            let t = Instant::now();
            let mine: Vec<String> = (0..subs)
                .map(|j| names[(c * subs + j) % names.len()].clone())
                .collect();
            let (ws, _) = client::ready_client(addr, &path, 4096, &mine).await?;
            Ok::<(Ws, Duration), client::Error>((ws, t.elapsed()))
        }));
    }
    let mut open = Vec::with_capacity(p.connections);
    let mut result = ConnectionResult {
        rss_before,
        ..Default::default()
    };
    let mut last_report = Instant::now();
    let total = tasks.len();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await? {
            Ok((ws, took)) => {
                result.ready += 1;
                result.ready_latency.record(took.as_micros() as u64);
                open.push(ws);
            }
            Err(e) => {
                result.errors += 1;
                result.first_error.get_or_insert_with(|| e.to_string());
            }
        }
        if last_report.elapsed() > Duration::from_secs(1) {
            progress.tick(&format!("{} / {total} ready", i + 1));
            last_report = Instant::now();
        }
    }
    result.seconds = start.elapsed().as_secs_f64();
    result.server_cpu = server.cpu_seconds() - cpu0;
    result.generator_cpu = procstat::self_cpu_seconds() - gen0;
    progress.done_ticking();
    progress.say(&format!(
        "{} ready in {:.2} s, {} errors",
        result.ready, result.seconds, result.errors
    ));
    tokio::time::sleep(p.settle).await;
    // Three readings a moment apart; the highest is what the connections hold.
    let mut rss = 0;
    for _ in 0..3 {
        rss = rss.max(server.rss_bytes());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    result.rss_after = rss;
    drop(open);
    Ok(result)
}
