//! The soak test (issue 12, item 5): does the server's memory follow its data, or the
//! number of writes?
//!
//! It runs the real `recordsync` binary (`recordsync serve`, a process of its own), has a
//! few writers overwrite the same few records with acknowledged UPDATEs for minutes, and
//! samples the server's resident memory (VmRSS) as it goes, then for a while after the
//! writes stopped. The data never grows (the same records, the same value size), so a
//! server whose memory is bounded levels off; one that keeps something per write climbs
//! for as long as the writes go on.
//!
//! Each storage is run in turn, on a fresh data directory. The series is printed, and
//! written to `soak-latest.jsonl` (one sample per line) and `soak-latest.md` (the tables).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use recordsync_deepstream_protocol::{Message, RecordAction};

use crate::client::{self, Result};
use crate::procstat;
use crate::targets::{Process, command, health_check, tail};

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakParams {
    /// The `recordsync` binary to run.
    pub server: PathBuf,
    /// `embedded`, `memory` (or a `postgres://` URL), one run each.
    pub storages: Vec<String>,
    /// Passed as `--cache-size` when set (builds before the setting do not know it).
    pub cache_size: Option<String>,
    /// How long the writers write.
    pub duration: Duration,
    /// How long to keep sampling after they stopped.
    pub settle: Duration,
    /// Time between two samples.
    pub every: Duration,
    /// Connections writing, each to record `soak/<w mod records>`.
    pub writers: usize,
    /// Records written.
    pub records: usize,
    /// Unacknowledged writes each writer keeps in flight.
    pub window: usize,
    /// Bytes of each value.
    pub value_bytes: usize,
}

/// One sample of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sample {
    pub storage: String,
    /// Seconds since the writers started.
    pub seconds: f64,
    /// Acknowledged writes so far.
    pub writes: u64,
    /// Writes refused so far (any error reply).
    pub errors: u64,
    /// The server's VmRSS.
    pub rss_bytes: u64,
    /// Whether the writers were still writing.
    pub writing: bool,
}

/// One run's series and what it says.
#[derive(Debug, Clone)]
pub struct SoakRun {
    pub storage: String,
    pub samples: Vec<Sample>,
    /// Bytes in the data directory at the end (the embedded store keeps every journal
    /// entry on disk).
    pub disk_bytes: u64,
}

impl SoakRun {
    /// RSS growth per acknowledged write over the second half of the writing: near zero
    /// once memory has levelled off, the per-write cost while it climbs.
    pub fn late_bytes_per_write(&self) -> Option<f64> {
        let writing: Vec<&Sample> = self.samples.iter().filter(|s| s.writing).collect();
        let (first, last) = (writing.get(writing.len() / 2)?, writing.last()?);
        let writes = last.writes.checked_sub(first.writes)?;
        (writes > 0).then(|| (last.rss_bytes as f64 - first.rss_bytes as f64) / writes as f64)
    }

    pub fn max_rss(&self) -> u64 {
        self.samples.iter().map(|s| s.rss_bytes).max().unwrap_or(0)
    }

    /// The table of samples, in markdown.
    pub fn markdown(&self) -> String {
        let mut out = format!("### {}\n\n", self.storage);
        out.push_str("| seconds | acknowledged writes | errors | RSS (MiB) | |\n");
        out.push_str("| ---: | ---: | ---: | ---: | --- |\n");
        for s in &self.samples {
            out.push_str(&format!(
                "| {:.0} | {} | {} | {:.1} | {} |\n",
                s.seconds,
                s.writes,
                s.errors,
                mib(s.rss_bytes),
                if s.writing { "" } else { "writes stopped" }
            ));
        }
        let per_write = self
            .late_bytes_per_write()
            .map_or("n/a".to_owned(), |b| format!("{b:.1} bytes"));
        out.push_str(&format!(
            "\nmax RSS {:.1} MiB; RSS growth per write over the second half of the writing: \
             {per_write}; data directory at the end: {:.1} MiB\n",
            mib(self.max_rss()),
            mib(self.disk_bytes)
        ));
        out
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Runs the soak for each storage in turn.
pub async fn run(params: &SoakParams) -> Result<Vec<SoakRun>> {
    let mut runs = Vec::new();
    for storage in &params.storages {
        runs.push(run_one(params, storage).await?);
    }
    Ok(runs)
}

/// The data directory of the run in progress, removed by [`clean_up`] on an interrupt: the
/// embedded store's can hold gigabytes after a few minutes.
static CURRENT_DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Removes the data directory of the run in progress (for Ctrl-C; a run that ends removes
/// its own).
pub fn clean_up() {
    if let Some(dir) = CURRENT_DIR.lock().expect("not poisoned").take() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

async fn run_one(params: &SoakParams, storage: &str) -> Result<SoakRun> {
    let dir = tempfile::Builder::new()
        .prefix("recordsync-soak-")
        .tempdir_in(std::env::temp_dir())?;
    *CURRENT_DIR.lock().expect("not poisoned") = Some(dir.path().to_owned());
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut cmd = command(&params.server);
    cmd.args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--storage", storage, "--data-dir"])
        .arg(&data);
    if let Some(size) = &params.cache_size {
        cmd.args(["--cache-size", size]);
    }
    cmd.env("RECORDSYNC_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?);
    let mut server = Process::spawn(cmd)?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !health_check(addr).await {
        if Instant::now() > deadline || matches!(server.child.try_wait(), Ok(Some(_))) {
            return Err(
                format!("{} did not start: {}", params.server.display(), tail(&log)).into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let acked = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let pad = "x".repeat(params.value_bytes.saturating_sub(20));
    let mut writers = Vec::new();
    for w in 0..params.writers {
        let name = format!("soak/{}", w % params.records.max(1));
        let (ws, _) =
            client::ready_client(addr, "/deepstream", 64 << 10, std::slice::from_ref(&name))
                .await?;
        writers.push(tokio::spawn(write_loop(
            ws,
            name,
            params.window.max(1),
            pad.clone(),
            acked.clone(),
            errors.clone(),
            stop.clone(),
        )));
    }

    let started = Instant::now();
    let mut samples = Vec::new();
    let end_of_writes = params.duration;
    let end = params.duration + params.settle;
    let mut next = Duration::ZERO;
    loop {
        let elapsed = started.elapsed();
        let writing = elapsed < end_of_writes;
        if !writing && !stop.swap(true, Ordering::Relaxed) {
            for w in writers.drain(..) {
                w.await??;
            }
        }
        let sample = Sample {
            storage: storage.to_owned(),
            seconds: started.elapsed().as_secs_f64(),
            writes: acked.load(Ordering::Relaxed),
            errors: errors.load(Ordering::Relaxed),
            rss_bytes: procstat::rss_bytes(server.pid).unwrap_or(0),
            writing,
        };
        eprintln!(
            "[soak {storage}] {:>6.0} s  {:>10} writes  {:>8.1} MiB{}",
            sample.seconds,
            sample.writes,
            mib(sample.rss_bytes),
            if writing { "" } else { "  (writes stopped)" }
        );
        samples.push(sample);
        if matches!(server.child.try_wait(), Ok(Some(_))) {
            return Err(format!("the server exited during the soak: {}", tail(&log)).into());
        }
        if elapsed >= end {
            break;
        }
        next += params.every;
        tokio::time::sleep(next.saturating_sub(started.elapsed())).await;
    }
    let disk_bytes = dir_bytes(&data);
    server.stop(Duration::from_secs(30)).await;
    CURRENT_DIR.lock().expect("not poisoned").take();
    Ok(SoakRun {
        storage: storage.to_owned(),
        samples,
        disk_bytes,
    })
}

/// Writes `name` with version -1 (the next), `window` writes unacknowledged, until `stop`.
async fn write_loop(
    mut ws: client::Ws,
    name: String,
    window: usize,
    pad: String,
    acked: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let mut sent = 0u64;
    let mut answered = 0u64;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if stopping && answered == sent {
            return Ok(());
        }
        while !stopping && sent - answered < window as u64 {
            sent += 1;
            ws.feed(client::update(&name, -1, sent, 0, &pad)).await?;
        }
        ws.flush().await?;
        let frame = tokio::time::timeout(client::STEP_TIMEOUT, ws.next())
            .await
            .map_err(|_| "no reply from the server in time")?
            .ok_or("the server closed the connection")??;
        let Some(Message::Record(m)) = client::decode(&frame)? else {
            continue;
        };
        if m.action == RecordAction::WriteAcknowledgement as i32 {
            answered += 1;
            acked.fetch_add(1, Ordering::Relaxed);
        } else if m.is_error == Some(true) {
            answered += 1;
            errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Writes the samples as JSON lines and the tables as markdown into `out`.
pub fn write(runs: &[SoakRun], out: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out)?;
    let jsonl = out.join("soak-latest.jsonl");
    let mut lines = String::new();
    for s in runs.iter().flat_map(|r| &r.samples) {
        lines.push_str(&serde_json::to_string(s).map_err(std::io::Error::other)?);
        lines.push('\n');
    }
    std::fs::write(&jsonl, lines)?;
    let md = out.join("soak-latest.md");
    std::fs::write(&md, markdown(runs))?;
    Ok(vec![jsonl, md])
}

pub fn markdown(runs: &[SoakRun]) -> String {
    let mut out =
        String::from("## Soak: server memory while one set of records is overwritten\n\n");
    for run in runs {
        out.push_str(&run.markdown());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seconds: f64, writes: u64, mib: u64, writing: bool) -> Sample {
        Sample {
            storage: "memory".into(),
            seconds,
            writes,
            errors: 0,
            rss_bytes: mib << 20,
            writing,
        }
    }

    /// The summary compares the middle of the writing with its end, and ignores the
    /// samples taken after the writes stopped.
    #[test]
    fn growth_per_write_is_read_over_the_second_half_of_the_writing() {
        let run = SoakRun {
            storage: "memory".into(),
            samples: vec![
                sample(0.0, 0, 10, true),
                sample(5.0, 1000, 20, true),
                sample(10.0, 2000, 20, true),
                sample(15.0, 3000, 21, true),
                sample(20.0, 3000, 5, false),
            ],
            disk_bytes: 0,
        };
        // From the sample at 10 s (the middle of the four taken while writing) to the last
        // of them: 1 MiB over 1,000 writes.
        assert_eq!(run.late_bytes_per_write(), Some(1048.576));
        assert_eq!(run.max_rss(), 21 << 20);
        let flat = SoakRun {
            samples: vec![sample(0.0, 0, 10, true), sample(5.0, 0, 10, true)],
            ..run
        };
        assert_eq!(flat.late_bytes_per_write(), None, "no writes: no figure");
    }
}
