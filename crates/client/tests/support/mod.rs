//! Servers for the client's integration tests: recordsync in process, and the real
//! deepstream 7 server (npm `@deepstream/server`, installed by `interop/install.sh`), both
//! restartable on the same port; and a proxy that can hold back or cut connections.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use recordsync_client::{Client, ConnectionState, Options, Reconnect};

/// Generous bound on anything a test waits for; only there to turn a hang into a failure.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Which server a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Recordsync,
    Deepstream,
}

/// Runs one scenario against both servers: `both!(name, scenario_fn)` makes the tests
/// `name::recordsync` and `name::deepstream`.
#[macro_export]
macro_rules! both {
    ($name:ident, $scenario:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn recordsync() {
                let server =
                    $crate::support::TestServer::start($crate::support::Target::Recordsync);
                super::$scenario(&server).await;
                server.stop();
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn deepstream() {
                let server =
                    $crate::support::TestServer::start($crate::support::Target::Deepstream);
                super::$scenario(&server).await;
                server.stop();
            }
        }
    };
}

/// How a test server authenticates and authorises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Anyone may log in and do anything.
    Open,
    /// File authentication (users alice and bob, password "password") and the rules in
    /// [`SECURED_PERMISSIONS`].
    Secured,
}

/// [`both!`] with servers started with [`Security::Secured`].
#[macro_export]
macro_rules! both_secured {
    ($name:ident, $scenario:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn recordsync() {
                let server =
                    $crate::support::TestServer::secured($crate::support::Target::Recordsync);
                super::$scenario(&server).await;
                server.stop();
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn deepstream() {
                let server =
                    $crate::support::TestServer::secured($crate::support::Target::Deepstream);
                super::$scenario(&server).await;
                server.stop();
            }
        }
    };
}

/// A server under test on a fixed port of 127.0.0.1, restartable. Both servers load the
/// same deepstream `config.yml` (recordsync understands deepstream's config files).
pub struct TestServer {
    pub target: Target,
    pub port: u16,
    dir: tempfile::TempDir,
    running: parking_lot::Mutex<Option<Running>>,
}

enum Running {
    Recordsync(InProcess),
    Deepstream(Child),
}

impl TestServer {
    pub fn start(target: Target) -> TestServer {
        TestServer::start_with(target, Security::Open)
    }

    pub fn secured(target: Target) -> TestServer {
        TestServer::start_with(target, Security::Secured)
    }

    pub fn start_with(target: Target, security: Security) -> TestServer {
        let server = TestServer {
            target,
            port: free_port(),
            dir: tempfile::tempdir().expect("a temp dir"),
            running: parking_lot::Mutex::new(None),
        };
        write_config(server.dir.path(), security);
        server.launch();
        server
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/deepstream", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Starts the server (again, on the same port and, for recordsync, the same data).
    pub fn launch(&self) {
        let running = match self.target {
            Target::Recordsync => Running::Recordsync(InProcess::start(self.port, self.dir.path())),
            Target::Deepstream => Running::Deepstream(start_deepstream(self.port, self.dir.path())),
        };
        *self.running.lock() = Some(running);
    }

    /// Stops the server; its clients' connections drop.
    pub fn stop(&self) {
        match self.running.lock().take() {
            Some(Running::Recordsync(server)) => server.stop(),
            Some(Running::Deepstream(child)) => stop_deepstream(child, self.dir.path()),
            None => {}
        }
    }

    pub fn restart(&self) {
        self.stop();
        self.launch();
    }

    /// A client with quick reconnection, for tests.
    pub async fn client(&self) -> Client {
        client(&self.url()).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn options(url: &str) -> Options {
    Options::new(url)
        .reconnect(Reconnect {
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(400),
            max_attempts: None,
        })
        .request_timeout(TIMEOUT)
}

pub async fn client(url: &str) -> Client {
    Client::connect_with(options(url))
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Awaits `f`, failing the test after [`TIMEOUT`].
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The next item of a stream, failing the test after [`TIMEOUT`] or at its end.
pub async fn next<S: Stream + Unpin>(what: &str, stream: &mut S) -> S::Item {
    within(what, stream.next())
        .await
        .unwrap_or_else(|| panic!("the stream ended while waiting for {what}"))
}

/// Items of a stream until one satisfies `ok`, which is returned.
pub async fn until<S: Stream + Unpin>(
    what: &str,
    stream: &mut S,
    ok: impl Fn(&S::Item) -> bool,
) -> S::Item {
    within(what, async {
        loop {
            match stream.next().await {
                Some(item) if ok(&item) => return item,
                Some(_) => continue,
                None => panic!("the stream ended while waiting for {what}"),
            }
        }
    })
    .await
}

/// Waits until the client's connection state satisfies `ok`.
pub async fn state(client: &Client, what: &str, ok: impl Fn(&ConnectionState) -> bool) {
    let mut states = client.watch_connection();
    within(what, states.wait_for(|s| ok(s)))
        .await
        .expect("the client is alive");
}

// ----- recordsync, in process ------------------------------------------------------------

/// A recordsync server on its own runtime: stopping it drops the runtime, which closes
/// every connection as a process exit would.
struct InProcess {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcess {
    fn start(port: u16, dir: &Path) -> InProcess {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (mut config, _warnings) = recordsync_server::Config::from_file(&dir.join("config.yml"))
            .unwrap_or_else(|e| panic!("recordsync cannot use the test config: {e}"));
        config.host = "127.0.0.1".into();
        config.port = port;
        config.data_dir = dir.join("data");
        config.storage = recordsync_server::StorageKind::Embedded;
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                // The port was just released by the previous run: retry briefly.
                let mut tries = 0;
                let server = loop {
                    match recordsync_server::Server::bind(config.clone()).await {
                        Ok(server) => break server,
                        Err(e) if tries < 50 => {
                            tries += 1;
                            tracing_log(&format!("bind failed ({e}), retrying"));
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(e) => panic!("recordsync cannot start: {e}"),
                    }
                };
                ready_tx.send(()).expect("the test waits");
                let run = server.run(async move {
                    let _ = stop_rx.await;
                });
                // Open WebSockets may hold a graceful shutdown up: not for long.
                let _ = tokio::time::timeout(Duration::from_secs(1), run).await;
            });
            runtime.shutdown_timeout(Duration::from_secs(2));
        });
        ready_rx
            .recv_timeout(TIMEOUT)
            .expect("recordsync started in time");
        InProcess {
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the server thread ends");
        }
    }
}

fn tracing_log(message: &str) {
    eprintln!("test server: {message}");
}

// ----- deepstream, the real one --------------------------------------------------------

pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../interop")
        .canonicalize()
        .expect("the interop directory exists")
}

/// Checks for node and runs `interop/install.sh` once per test process (serialised
/// across processes by a lock file, as nextest runs tests in parallel processes).
fn ensure_deepstream_installed() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        match Command::new("node").arg("--version").output() {
            Ok(out) if out.status.success() => {}
            _ => panic!(
                "node is not installed (or not on PATH): the client tests against the real deepstream \
                 server need Node.js >= 18 to run interop/install.sh and start @deepstream/server. \
                 Install Node.js and run the tests again."
            ),
        }
        let lock_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-install.lock");
        let lock = File::create(&lock_path).expect("a lock file");
        lock.lock().expect("the install lock");
        let script = interop_dir().join("install.sh");
        let output = Command::new(&script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            output.status.success(),
            "{} failed ({}):\n{}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        drop(lock);
    });
}

/// The config both servers load; `{auth}` is the auth section.
const CONFIG: &str = r#"serverName: recordsync-client-tests
showLogo: false
logLevel: WARN
dependencyInitializationTimeout: 5000
exitOnFatalError: false
telemetry:
  type: deepstreamIO
  options:
    enabled: false
enabledFeatures:
  record: true
  event: true
  rpc: true
  presence: true
listen:
  shuffleProviders: true
  responseTimeout: 5000
  rematchInterval: 60000
  matchCooldown: 10000
httpServer:
  type: default
  options:
    healthCheckPath: /health-check
    allowAllOrigins: true
    maxMessageSize: 1048576
connectionEndpoints:
  - type: ws-binary
    options:
      urlPath: /deepstream
      heartbeatInterval: 30000
      outgoingBufferTimeout: 0
      maxBufferByteSize: 100000
      logInvalidAuthData: false
      unauthenticatedClientTimeout: 180000
      maxAuthAttempts: 3
      maxMessageSize: 1048576
logger:
  type: default
  options:
    colors: false
{auth}
permission:
  type: config
  options:
    permissions: fileLoad(permissions.yml)
    maxRuleIterations: 3
    cacheEvacuationInterval: 60000
monitoring:
  type: none
"#;

const AUTH_NONE: &str = "auth:\n  - type: none";

const AUTH_FILE: &str = "auth:\n  - type: file\n    options:\n      users: fileLoad(users.yml)\n      hash: md5\n      iterations: 100\n      keyLength: 32";

const OTHER_TOPICS: &str = r#"event:
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

const OPEN_PERMISSIONS: &str = r#"record:
  "*":
    create: true
    write: true
    read: true
    delete: true
    listen: true
    notify: true
"#;

/// The rules of [`Security::Secured`].
pub const SECURED_PERMISSIONS: &str = r#"record:
  "*":
    create: true
    write: true
    read: true
    delete: true
    listen: true
    notify: true
  secret/*:
    read: false
    write: false
    delete: false
    listen: false
  settings/$username:
    write: "$username === user.id"
    delete: "$username === user.id"
  posts/$id:
    write: "data.author === user.id"
"#;

/// deepstream's example hash of "password" (md5, 100 iterations, 32 bytes).
const USERS: &str = r#"alice:
  password: "rCOSZxJrgze2AZdVQh12c6ErDMOG0M+Rx5Yu7S5d91c=GS4SbTQYmoaGwjm2shEobg=="
  clientData:
    favouriteColor: red
bob:
  password: "rCOSZxJrgze2AZdVQh12c6ErDMOG0M+Rx5Yu7S5d91c=GS4SbTQYmoaGwjm2shEobg=="
"#;

fn write_config(dir: &Path, security: Security) {
    let (auth, permissions) = match security {
        Security::Open => (AUTH_NONE, OPEN_PERMISSIONS),
        Security::Secured => (AUTH_FILE, SECURED_PERMISSIONS),
    };
    std::fs::write(dir.join("config.yml"), CONFIG.replace("{auth}", auth))
        .expect("write config.yml");
    std::fs::write(
        dir.join("permissions.yml"),
        format!("{permissions}{OTHER_TOPICS}"),
    )
    .expect("write permissions.yml");
    std::fs::write(dir.join("users.yml"), USERS).expect("write users.yml");
}

/// Runs deepstream under a small shell guard: when the test process goes away (even
/// killed), the guard's stdin closes and it stops node, so no server outlives its test.
const GUARD: &str = r#"node "$@" & pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
trap 'exit 0' TERM INT HUP
cat >/dev/null
exit 0"#;

fn start_deepstream(port: u16, dir: &Path) -> Child {
    ensure_deepstream_installed();
    let config = dir.join("config.yml");
    let log_path = dir.join("deepstream.log");
    let log = File::options()
        .create(true)
        .append(true)
        .open(&log_path)
        .expect("a log file");
    let bin = interop_dir().join("node_modules/@deepstream/server/dist/bin/deepstream");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(GUARD)
        .arg("deepstream-guard")
        .arg(&bin)
        .args(["start", "-c"])
        .arg(&config)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("sh starts");
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        if health_check(port) {
            return child;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "deepstream exited early ({status}):\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "deepstream did not answer /health-check on port {port} within {TIMEOUT:?}:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop_deepstream(mut child: Child, dir: &Path) {
    drop(child.stdin.take()); // the guard stops node and waits for it
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            _ if std::time::Instant::now() > deadline => {
                let _ = child.kill();
                panic!(
                    "deepstream did not stop:\n{}",
                    std::fs::read_to_string(dir.join("deepstream.log")).unwrap_or_default()
                );
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn health_check(port: u16) -> bool {
    let Ok(mut stream) = StdStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream
        .write_all(b"GET /health-check HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

// ----- a proxy that can hold back or cut connections -------------------------------------

/// A TCP proxy in front of a server: [`Proxy::hold`] stops passing the server's bytes to
/// the clients (their own bytes still reach the server) until [`Proxy::release`];
/// [`Proxy::cut`] closes every connection, as a network failure would, and
/// [`Proxy::refuse`] closes new ones at once until [`Proxy::admit`].
pub struct Proxy {
    pub addr: SocketAddr,
    held: watch::Sender<bool>,
    refusing: watch::Sender<bool>,
    cuts: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (held, held_rx) = watch::channel(false);
        let (cuts, cuts_rx) = watch::channel(0u64);
        let (refusing, refusing_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *refusing_rx.borrow() {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                tokio::spawn(pipe(client, server, held_rx.clone(), cuts_rx.clone()));
            }
        });
        Proxy {
            addr,
            held,
            refusing,
            cuts,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/deepstream", self.addr)
    }

    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    pub fn release(&self) {
        self.held.send_replace(false);
    }

    pub fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    pub fn refuse(&self) {
        self.refusing.send_replace(true);
    }

    pub fn admit(&self) {
        self.refusing.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

async fn pipe(
    client: TcpStream,
    server: TcpStream,
    mut held: watch::Receiver<bool>,
    mut cuts: watch::Receiver<u64>,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    cuts.mark_unchanged();
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if server_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if held.wait_for(|h| !*h).await.is_err() {
                return;
            }
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            // Bytes read just before a hold are held too.
            if held.wait_for(|h| !*h).await.is_err() {
                return;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = cuts.changed() => {}
    }
}
