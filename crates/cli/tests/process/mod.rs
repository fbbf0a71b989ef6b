//! The real `recordsync serve` binary as a child process on an ephemeral port.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

pub struct ServerProcess {
    child: Child,
    /// `host:port` it listens on, read from its log.
    pub addr: String,
    /// What it logged before it listened (opening the store, say).
    pub startup_log: Vec<String>,
    /// What it logged since.
    log: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Runs `recordsync serve --host 127.0.0.1 --port 0 ARGS...` and waits until it says
    /// where it listens; if it exits first, panics with what it logged.
    pub fn start<I, S>(args: I) -> ServerProcess
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Self::start_at(0, args)
    }

    /// A cluster node: `--storage STORAGE --cluster BUS`, with an empty data directory of
    /// its own (returned, to keep it as long as the node runs).
    pub fn start_node(storage: &str, bus: &str) -> (ServerProcess, tempfile::TempDir) {
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let node = Self::start([
            std::ffi::OsStr::new("--storage"),
            std::ffi::OsStr::new(storage),
            std::ffi::OsStr::new("--cluster"),
            std::ffi::OsStr::new(bus),
            std::ffi::OsStr::new("--data-dir"),
            data_dir.path().as_os_str(),
        ]);
        (node, data_dir)
    }

    /// Like [`start`](Self::start), on a given port (to restart a server where its
    /// clients expect it).
    pub fn start_at<I, S>(port: u16, args: I) -> ServerProcess
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut child = Command::new(env!("CARGO_BIN_EXE_recordsync"))
            .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
            .args(args)
            .env("RECORDSYNC_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .expect("the recordsync binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut lines = BufReader::new(stderr).lines();
        let mut log = Vec::new();
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                panic!("the server exited before listening:\n{}", log.join("\n"));
            };
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .expect("an address")
                    .to_owned();
            }
            log.push(line);
        };
        // Keep draining the log so the server never blocks on a full pipe.
        let later = Arc::new(Mutex::new(Vec::new()));
        let kept = later.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().expect("not poisoned").push(line);
            }
        });
        ServerProcess {
            child,
            addr,
            startup_log: log,
            log: later,
        }
    }

    /// The lines it logged after it started listening, so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("not poisoned").clone()
    }

    /// Waits until a line it logged contains `needle`; panics with the log after `wait`.
    /// A line is logged after the client was answered, and read by another thread: look
    /// for it with this, not with [`log`](Self::log) at once.
    pub async fn wait_for_log(&self, needle: &str, wait: std::time::Duration) {
        let deadline = std::time::Instant::now() + wait;
        while !self.log().iter().any(|line| line.contains(needle)) {
            assert!(
                std::time::Instant::now() < deadline,
                "no line with {needle:?} logged within {wait:?}:\n{}",
                self.log().join("\n")
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The deepstream (binary) endpoint's URL.
    pub fn url(&self) -> String {
        format!("ws://{}/deepstream", self.addr)
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// SIGTERM, and the exit must be clean.
    pub fn terminate(mut self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        assert!(status.is_ok_and(|s| s.success()));
        let status = self.child.wait().expect("exits after SIGTERM");
        assert!(status.success(), "clean exit after SIGTERM, got {status}");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `recordsync` binary with `args`, blind to the environment's server and login (a
/// test names what it connects to).
pub fn recordsync<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_recordsync"));
    command
        .args(args)
        .env_remove("RECORDSYNC_URL")
        .env_remove("RECORDSYNC_AUTH");
    command
}

/// The `recordsync` binary with `args`, stdin from `input`, run to its end.
pub fn run_recordsync<S: AsRef<std::ffi::OsStr>>(args: &[S], input: &[u8]) -> std::process::Output {
    use std::io::Write as _;
    let mut child = recordsync(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("the binary runs");
    let _ = feeder.join();
    out
}

const SECURED_CONFIG: &str = "auth:
  - type: file
    options:
      users: fileLoad(users.yml)
      hash: md5
      iterations: 100
      keyLength: 32
permission:
  type: config
  options:
    permissions: fileLoad(permissions.yml)
";

const SECURED_PERMISSIONS: &str = r#"record:
  "*":
    create: true
    write: true
    read: true
    delete: true
    listen: true
  secret/*:
    read: false
    write: false
"#;

/// deepstream's example hash of "password".
const USERS: &str = r#"alice:
  password: "rCOSZxJrgze2AZdVQh12c6ErDMOG0M+Rx5Yu7S5d91c=GS4SbTQYmoaGwjm2shEobg=="
"#;

/// A server on `store` (`--storage memory`, `--data-dir DIR`) with file auth (user
/// `alice`, password `password`) and rules that let her do anything but read or write
/// `secret/*`; its config files are written to `dir`.
pub fn secured_server(dir: &std::path::Path, store: &[&str]) -> ServerProcess {
    std::fs::write(dir.join("config.yml"), SECURED_CONFIG).expect("writing config.yml");
    std::fs::write(dir.join("permissions.yml"), SECURED_PERMISSIONS)
        .expect("writing permissions.yml");
    std::fs::write(dir.join("users.yml"), USERS).expect("writing users.yml");
    let config = dir.join("config.yml");
    let mut args: Vec<std::ffi::OsString> = store.iter().map(Into::into).collect();
    args.extend(["--config".into(), config.into_os_string()]);
    ServerProcess::start(args)
}

/// The exit code of a command that ran to its end.
pub fn code(out: &std::process::Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

/// A command's stdout as JSON (the output when piped), or a panic showing both streams.
pub fn stdout_json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {:?} / stderr {:?}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A command's stderr as text.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
