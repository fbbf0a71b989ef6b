//! The servers under test, each in its own process so that /proc tells its CPU and memory
//! apart from the generator's:
//!
//! - recordsync: this binary re-executed as `recordsync-bench serve recordsync`, which runs
//!   the same `recordsync_server::Server` that `recordsync serve` runs;
//! - the ceiling: this binary as `recordsync-bench serve ceiling` (see `ceiling.rs`);
//! - deepstream: the real `@deepstream/server` 7 from `bench/peers/node_modules`, in memory;
//! - ShareDB: `bench/peers/sharedb-server.mjs`, ShareDB 7 on PostgreSQL or in memory.
//!
//! Every process started here is stopped when its [`Target`] is dropped (SIGTERM, then
//! SIGKILL), dies with the harness (PR_SET_PDEATHSIG), and is killed on Ctrl-C.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::client::Result;
use crate::procstat::Watched;

/// Live children, for the Ctrl-C handler.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

const STARTUP: Duration = Duration::from_secs(30);

/// Kills every child still running; for Ctrl-C and fatal errors.
pub fn kill_all() {
    let pids = std::mem::take(&mut *CHILDREN.lock().expect("not poisoned"));
    for pid in pids {
        signal_group(pid, libc::SIGKILL);
    }
}

/// Signals a child and everything it started. Each child leads its own process group
/// ([`command`]), so a server run under a wrapper (`RECORDSYNC_BENCH_WRAP`: perf, strace,
/// valgrind) goes with the wrapper instead of living on, holding its port, its CPU and
/// whatever lock the harness ran under.
fn signal_group(pid: u32, signal: i32) {
    #[allow(
        unsafe_code,
        reason = "signalling a process group has no safe wrapper in std"
    )]
    // SAFETY: kill(2) on the process group of a child we started.
    unsafe {
        libc::kill(-(pid as i32), signal);
    }
}

/// Starts `program` with the harness's safety net: it dies when the harness does.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.kill_on_drop(true).stdin(Stdio::null()).process_group(0);
    #[allow(unsafe_code, reason = "pre_exec and prctl have no safe form")]
    // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd
}

/// A started child process, registered for Ctrl-C, stopped on drop.
pub struct Process {
    pub child: Child,
    pub pid: u32,
}

impl Process {
    pub fn spawn(mut cmd: Command) -> Result<Process> {
        let child = cmd.spawn()?;
        let pid = child.id().ok_or("child exited at once")?;
        CHILDREN.lock().expect("not poisoned").push(pid);
        Ok(Process { child, pid })
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(&mut self, grace: Duration) {
        if let Ok(None) = self.child.try_wait() {
            signal_group(self.pid, libc::SIGTERM);
            if tokio::time::timeout(grace, self.child.wait())
                .await
                .is_err()
            {
                signal_group(self.pid, libc::SIGKILL);
                let _ = self.child.wait().await;
            }
        }
        // Whatever the child left behind in its group (a wrapped server that outlived
        // its wrapper).
        signal_group(self.pid, libc::SIGKILL);
        CHILDREN
            .lock()
            .expect("not poisoned")
            .retain(|p| *p != self.pid);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        signal_group(self.pid, libc::SIGKILL);
        if let Ok(mut c) = CHILDREN.lock() {
            c.retain(|p| *p != self.pid);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// recordsync with its in-memory store (like for like with in-memory deepstream).
    RecordsyncMemory,
    /// recordsync with its default durable embedded store.
    RecordsyncEmbedded,
    Deepstream,
    Ceiling,
    /// ShareDB 7 on PostgreSQL (sharedb-postgres).
    Sharedb,
    /// ShareDB 7 in memory (sharedb-mingo-memory: MemoryDB with Mongo-style queries).
    SharedbMemory,
    /// One recordsync node of a cluster (see `cluster.rs`): storage and bus as given.
    RecordsyncNode,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::RecordsyncMemory => "recordsync",
            Kind::RecordsyncEmbedded => "recordsync (embedded store)",
            Kind::Deepstream => "deepstream",
            Kind::Ceiling => "ceiling",
            Kind::Sharedb => "ShareDB+PostgreSQL",
            Kind::SharedbMemory => "ShareDB in memory",
            Kind::RecordsyncNode => "recordsync node",
        }
    }
}

/// A running server.
pub struct Target {
    pub kind: Kind,
    pub addr: SocketAddr,
    /// The WebSocket path the generator connects to.
    pub path: String,
    pub process: Process,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Target {
    pub async fn start(kind: Kind, peers: &Path) -> Result<Target> {
        Self::start_with(kind, peers, &[]).await
    }

    /// A recordsync node on `storage` (a `postgres://` URL, say), joined to the bus at
    /// `cluster` if given.
    pub async fn start_node(storage: &str, cluster: Option<&str>) -> Result<Target> {
        let mut args = vec!["--storage".to_owned(), storage.to_owned()];
        if let Some(url) = cluster {
            args.extend(["--cluster".to_owned(), url.to_owned()]);
        }
        Self::start_with(Kind::RecordsyncNode, Path::new("."), &args).await
    }

    async fn start_with(kind: Kind, peers: &Path, node_args: &[String]) -> Result<Target> {
        let dir = tempfile::Builder::new()
            .prefix("recordsync-bench-")
            .tempdir_in(std::env::temp_dir())?;
        let log = dir.path().join("server.log");
        let log_file = std::fs::File::create(&log)?;
        let started = match kind {
            Kind::RecordsyncMemory
            | Kind::RecordsyncEmbedded
            | Kind::RecordsyncNode
            | Kind::Ceiling => {
                // RECORDSYNC_BENCH_WRAP runs the server under a profiler, e.g.
                // `perf record -g -o /tmp/perf.data --` or `valgrind --tool=massif`.
                let wrap = std::env::var("RECORDSYNC_BENCH_WRAP").unwrap_or_default();
                let mut words = wrap.split_whitespace();
                let mut cmd = match words.next() {
                    Some(program) => {
                        let mut cmd = command(program);
                        cmd.args(words).arg(std::env::current_exe()?);
                        cmd
                    }
                    None => command(std::env::current_exe()?),
                };
                cmd.arg("serve");
                match kind {
                    Kind::Ceiling => {
                        cmd.arg("ceiling");
                    }
                    Kind::RecordsyncMemory => {
                        cmd.args(["recordsync", "--storage", "memory"]);
                    }
                    Kind::RecordsyncNode => {
                        cmd.arg("recordsync").args(node_args);
                    }
                    _ => {
                        // Data on the same disk as the rest of the run, never a tmpfs:
                        // the durable scenario must pay for real fsyncs.
                        cmd.args(["recordsync", "--storage", "embedded", "--data-dir"])
                            .arg(dir.path().join("data"));
                        // Retention's share of the durable scenario: run it once with
                        // `RECORDSYNC_BENCH_KEEP_HISTORY=all` (no pruning) and once without
                        // (unset or empty).
                        if let Ok(keep) = std::env::var("RECORDSYNC_BENCH_KEEP_HISTORY")
                            && !keep.is_empty()
                        {
                            cmd.args(["--keep-history", &keep]);
                        }
                    }
                }
                cmd.stdout(Stdio::piped()).stderr(log_file);
                let mut process = Process::spawn(cmd)?;
                let stdout = process.child.stdout.take().ok_or("no stdout")?;
                let mut lines = BufReader::new(stdout).lines();
                // The server's first line says where it listens; a wrapper (heaptrack)
                // may print lines of its own before it.
                let first = async {
                    loop {
                        match lines.next_line().await? {
                            Some(line) if line.starts_with("LISTENING ") || wrap.is_empty() => {
                                return Ok::<_, std::io::Error>(Some(line));
                            }
                            Some(_) => continue,
                            None => return Ok(None),
                        }
                    }
                };
                let line = tokio::time::timeout(STARTUP, first)
                    .await
                    .map_err(|_| "the server did not start in time")??
                    .ok_or_else(|| format!("the server exited: {}", tail(&log)))?;
                let addr: SocketAddr = line
                    .strip_prefix("LISTENING ")
                    .ok_or_else(|| format!("unexpected first line {line:?}"))?
                    .parse()?;
                // Keep reading stdout so that the child never blocks on a full pipe.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                (process, addr, "/deepstream".to_owned())
            }
            Kind::Deepstream => {
                let bin = peers.join("node_modules/@deepstream/server/dist/bin/deepstream");
                if !bin.exists() {
                    return Err(format!(
                        "deepstream is not installed at {} (run bench/peers/install.sh)",
                        bin.display()
                    )
                    .into());
                }
                std::fs::write(dir.path().join("config.yml"), DEEPSTREAM_CONFIG)?;
                std::fs::write(dir.path().join("permissions.yml"), DEEPSTREAM_PERMISSIONS)?;
                let port = free_port()?;
                let mut cmd = command("node");
                cmd.arg(&bin)
                    .args(["start", "-c"])
                    .arg(dir.path().join("config.yml"))
                    .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                    .current_dir(dir.path())
                    .env("NO_COLOR", "1")
                    .stdout(log_file.try_clone()?)
                    .stderr(log_file);
                let process = Process::spawn(cmd)?;
                let addr: SocketAddr = ([127, 0, 0, 1], port).into();
                (process, addr, "/deepstream".to_owned())
            }
            Kind::Sharedb | Kind::SharedbMemory => {
                let script = peers.join("sharedb-server.mjs");
                let db = if kind == Kind::SharedbMemory {
                    "memory"
                } else {
                    "postgres"
                };
                let mut cmd = command("node");
                cmd.arg(&script)
                    .args(["--port", "0", "--db", db])
                    .current_dir(peers)
                    .stdout(Stdio::piped())
                    .stderr(log_file);
                let mut process = Process::spawn(cmd)?;
                let stdout = process.child.stdout.take().ok_or("no stdout")?;
                let mut lines = BufReader::new(stdout).lines();
                let line = tokio::time::timeout(STARTUP, lines.next_line())
                    .await
                    .map_err(|_| "ShareDB did not start in time")??
                    .ok_or_else(|| format!("ShareDB exited: {}", tail(&log)))?;
                let port: u16 = line
                    .strip_prefix("LISTENING ")
                    .ok_or_else(|| format!("unexpected first line {line:?}"))?
                    .parse()?;
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                (process, ([127, 0, 0, 1], port).into(), "/".to_owned())
            }
        };
        let (process, addr, path) = started;
        let mut target = Target {
            kind,
            addr,
            path,
            process,
            log,
            _dir: dir,
        };
        target.wait_healthy().await?;
        Ok(target)
    }

    async fn wait_healthy(&mut self) -> Result<()> {
        if self.kind == Kind::Ceiling {
            return Ok(());
        }
        let deadline = Instant::now() + STARTUP;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.process.child.try_wait() {
                return Err(format!(
                    "{} exited during startup ({status}): {}",
                    self.kind.label(),
                    tail(&self.log)
                )
                .into());
            }
            if health_check(self.addr).await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "{} did not answer /health-check within {STARTUP:?}: {}",
            self.kind.label(),
            tail(&self.log)
        )
        .into())
    }

    pub fn pid(&self) -> u32 {
        self.process.pid
    }

    /// Where a ShareDB client connects: recordsync's `/sharedb` endpoint, or ShareDB's
    /// server, which takes any path.
    pub fn sharedb_path(&self) -> &'static str {
        match self.kind {
            Kind::Sharedb | Kind::SharedbMemory => "/",
            _ => "/sharedb",
        }
    }

    /// The server's processes, for CPU and memory.
    pub fn watched(&self) -> Watched {
        Watched::tree(self.pid())
    }

    pub async fn stop(mut self) {
        self.process.stop(Duration::from_secs(10)).await;
    }
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// The last lines of a log, for error messages.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(20);
    format!("\n--- {} ---\n{}", log.display(), lines[from..].join("\n"))
}

/// `GET /health-check` answered 200.
/// Whether `GET /health-check` on `addr` answers 200 within a second.
pub async fn health_check(addr: SocketAddr) -> bool {
    let attempt = async {
        let mut tcp = TcpStream::connect(addr).await.ok()?;
        tcp.write_all(b"GET /health-check HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .ok()?;
        let mut buf = [0u8; 12];
        tcp.read_exact(&mut buf).await.ok()?;
        Some(buf.ends_with(b"200"))
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// deepstream 7 as shipped, minus what would cost it time for nothing here: in memory (no
/// storage section), open auth and permissions, the binary endpoint only, telemetry and
/// monitoring off, warnings-only logging (it logs every login at INFO).
const DEEPSTREAM_CONFIG: &str = r#"serverName: bench
showLogo: false
logLevel: WARN
exitOnFatalError: false
telemetry:
  type: deepstreamIO
  options:
    enabled: false
httpServer:
  type: default
  options:
    healthCheckPath: /health-check
    maxMessageSize: 1048576
connectionEndpoints:
  - type: ws-binary
    options:
      urlPath: /deepstream
      heartbeatInterval: 30000
      unauthenticatedClientTimeout: 180000
      maxAuthAttempts: 3
      maxMessageSize: 1048576
logger:
  type: default
  options:
    colors: false
auth:
  - type: none
permission:
  type: config
  options:
    permissions: fileLoad(permissions.yml)
monitoring:
  type: none
"#;

const DEEPSTREAM_PERMISSIONS: &str = r#"record:
  "*":
    create: true
    write: true
    read: true
    delete: true
    listen: true
    notify: true
event:
  "*":
    publish: true
    subscribe: true
    listen: true
rpc:
  "*":
    provide: true
    request: true
presence:
  "*":
    allow: true
"#;
