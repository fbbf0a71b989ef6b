//! The client commands (`get`, `set`, `delete`, `has`, `head`, `watch`, `listen`) of the
//! real binary against a real `recordsync serve`: output as documented (JSON when piped),
//! exit codes, and `watch` carrying on through a server restart.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

mod process;
use process::ServerProcess;
use process::{code, stderr, stdout_json};

const TIMEOUT: Duration = Duration::from_secs(20);

/// A `recordsync serve` on the in-memory store.
fn memory_server() -> ServerProcess {
    ServerProcess::start(["--storage", "memory"])
}

fn cli(args: &[&str]) -> Command {
    process::recordsync(args)
}

/// Runs a command to its end (stdout is a pipe: JSON output).
fn run(args: &[&str]) -> Output {
    cli(args)
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

#[test]
fn one_shot_commands_work_as_documented() {
    let server = memory_server();
    let url = server.url();
    let url = url.as_str();

    let out = run(&["set", "user/1", r#"{"name":"Ada"}"#, "--url", url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout_json(&out),
        json!({"name": "user/1", "path": "", "value": {"name": "Ada"}})
    );
    let out = run(&["set", "user/1", "pets[1].name", r#""Rex""#, "--url", url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let out = run(&["get", "user/1", "--url", url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout_json(&out),
        json!({"name": "Ada", "pets": [null, {"name": "Rex"}]})
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1,
        "one compact line when piped"
    );
    let out = run(&["get", "user/1", "pets[1].name", "--url", url]);
    assert_eq!(stdout_json(&out), json!("Rex"));

    let out = run(&["head", "user/1", "--url", url]);
    assert_eq!(code(&out), 0);
    assert_eq!(stdout_json(&out), json!(2));
    let out = run(&["has", "user/1", "--url", url]);
    assert_eq!((code(&out), stdout_json(&out)), (0, json!(true)));

    // The address may leave out the scheme and the path.
    let out = run(&["has", "user/1", "--url", &server.addr]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // And it may come from the environment.
    let out = cli(&["get", "user/1", "name"])
        .env("RECORDSYNC_URL", url)
        .output()
        .unwrap();
    assert_eq!(stdout_json(&out), json!("Ada"));

    let out = run(&["delete", "user/1", "--url", url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout_json(&out),
        json!({"name": "user/1", "deleted": true})
    );
    let out = run(&["has", "user/1", "--url", url]);
    assert_eq!(
        (code(&out), stdout_json(&out)),
        (5, json!(false)),
        "has: false and exit code 5"
    );
}

/// `set` and `get` keep every number exactly as written: the whole value, a path, and
/// what `set` echoes.
#[test]
fn numbers_are_printed_as_written() {
    use recordsync_core::testing::EXTREMES;
    let server = memory_server();
    let url = server.url();
    let url = url.as_str();
    let entries: Vec<String> = EXTREMES
        .iter()
        .enumerate()
        .map(|(i, n)| format!(r#""n{i}":{n}"#))
        .collect();
    let doc = format!(
        r#"{{{},"list":[{}]}}"#,
        entries.join(","),
        EXTREMES.join(",")
    );

    let out = run(&["set", "numbers/1", &doc, "--url", url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let echoed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        echoed.trim(),
        format!(r#"{{"name":"numbers/1","path":"","value":{doc}}}"#)
    );
    let out = run(&["get", "numbers/1", "--url", url]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), doc);
    // A plain negative number needs no `--`.
    let out = run(&["set", "numbers/2", "n", "-2.5", "--url", url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(&["get", "numbers/2", "--url", url]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), r#"{"n":-2.5}"#);

    for (i, n) in EXTREMES.iter().enumerate() {
        let path = format!("list[{i}]");
        // After `--` a value may start with a hyphen whatever follows it (`-5e-324`).
        let out = run(&["set", "--url", url, "--", "numbers/1", &path, n]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let out = run(&["get", "numbers/1", &format!("n{i}"), "--url", url]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), *n);
        let out = run(&["get", "numbers/1", &path, "--url", url]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), *n);
    }
}

#[test]
fn failures_have_distinct_exit_codes_and_clear_messages() {
    let server = memory_server();
    let url = server.url();
    let url = url.as_str();

    // Nothing listens on the port: 3.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = run(&["get", "x", "--url", &format!("127.0.0.1:{closed}")]);
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out).contains("connection refused"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("recordsync serve"), "says what to do");

    // Not found: 5.
    let out = run(&["get", "no/such", "--url", url]);
    assert_eq!(code(&out), 5);
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    let out = run(&["head", "no/such", "--url", url]);
    assert_eq!(code(&out), 5);
    let out = run(&["delete", "no/such", "--url", url]);
    assert_eq!(code(&out), 5);
    run(&["set", "there", r#"{"a":1}"#, "--url", url]);
    let out = run(&["get", "there", "b", "--url", url]);
    assert_eq!(code(&out), 5);
    assert!(stderr(&out).contains("no value at b"), "{}", stderr(&out));

    // Usage: 2.
    let out = run(&["set", "there", "a", "Alice", "--url", url]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains(r#"'"Alice"'"#), "{}", stderr(&out));
    let out = run(&["set", "there", "5", "--url", url]);
    assert_eq!(code(&out), 2, "a whole record must be an object or array");
    let out = run(&["get", "there", "a[", "--url", url]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let out = run(&["get", "--url", url]);
    assert_eq!(code(&out), 2, "clap's usage error");
    let out = run(&["get", "there", "--auth", "ada", "--url", url]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with(
            r#"recordsync: --auth must be JSON, like '{"username":"ada","password":"secret"}': expected value"#
        ),
        "{}",
        stderr(&out)
    );
}

fn secured_server(dir: &Path) -> ServerProcess {
    process::secured_server(dir, &["--storage", "memory"])
}

#[test]
fn authentication_and_permission_failures() {
    let dir = tempfile::tempdir().unwrap();
    let server = secured_server(dir.path());
    let url = server.url();
    let url = url.as_str();

    let out = run(&[
        "get",
        "x",
        "--url",
        url,
        "--auth",
        r#"{"username":"alice","password":"nope"}"#,
    ]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("authentication failed"),
        "{}",
        stderr(&out)
    );

    let alice = r#"{"username":"alice","password":"password"}"#;
    let out = run(&[
        "set",
        "notes/1",
        r#"{"a":1}"#,
        "--url",
        url,
        "--auth",
        alice,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = cli(&["get", "secret/plans", "--url", url])
        .env("RECORDSYNC_AUTH", alice)
        .output()
        .unwrap();
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("permission denied"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "set",
        "secret/plans",
        "a",
        "1",
        "--url",
        url,
        "--auth",
        alice,
    ]);
    assert_eq!(code(&out), 6, "{}", stderr(&out));

    let out = run(&["get", "x", "--url", url, "--auth", "{not json"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

/// A long-running command whose stdout lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = cli(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary runs");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Running { child, lines }
    }

    fn next_json(&self, what: &str) -> Value {
        let line = self
            .lines
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{what}: {line:?} is not JSON: {e}"))
    }

    /// Waits for the process to exit by itself.
    fn exit_code(mut self) -> i32 {
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().expect("exited");
            }
            assert!(std::time::Instant::now() < deadline, "did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ctrl-C.
    fn interrupt(mut self) -> i32 {
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(self.child.id().to_string())
            .status();
        let status = self.child.wait().unwrap();
        status.code().expect("exited after SIGINT")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn watch_prints_one_line_per_change_until_the_record_is_deleted() {
    let server = memory_server();
    let url = server.url();
    let url = url.as_str();
    run(&["set", "w/1", r#"{"n":0,"other":0}"#, "--url", url]);

    let watch = Running::start(&["watch", "w/1", "n", "--url", url]);
    assert_eq!(watch.next_json("the current value"), json!(0));
    run(&["set", "w/1", "n", "1", "--url", url]);
    assert_eq!(watch.next_json("the first change"), json!(1));
    run(&["set", "w/1", "other", "5", "--url", url]); // not n: no line
    run(&["set", "w/1", "n", r#"{"deep":[1]}"#, "--url", url]);
    assert_eq!(watch.next_json("the second change"), json!({"deep": [1]}));

    let whole = Running::start(&["watch", "w/1", "--url", url]);
    assert_eq!(
        whole.next_json("the whole record"),
        json!({"n": {"deep": [1]}, "other": 5})
    );
    assert_eq!(whole.interrupt(), 0, "Ctrl-C ends watch cleanly");

    run(&["delete", "w/1", "--url", url]);
    assert_eq!(
        watch.exit_code(),
        0,
        "watch ends when the record is deleted"
    );
}

#[test]
fn watch_carries_on_through_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let data = dir.path().to_str().unwrap();
    let serve = ["--data-dir", data];
    let server = ServerProcess::start_at(port, serve);
    let url = server.url();
    let url = url.as_str();
    run(&["set", "r/1", r#"{"n":1}"#, "--url", url]);
    let watch = Running::start(&["watch", "r/1", "n", "--url", url]);
    assert_eq!(watch.next_json("the current value"), json!(1));

    server.terminate();
    let server = ServerProcess::start_at(port, serve);
    let out = run(&["set", "r/1", "n", "2", "--url", url]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(watch.next_json("the change after the restart"), json!(2));
    assert_eq!(watch.interrupt(), 0);
    drop(server);
}

#[test]
fn listen_accepts_and_prints_matches_and_stops() {
    let server = memory_server();
    let url = server.url();
    let url = url.as_str();

    let listen = Running::start(&["listen", "^weather/.*", "--url", url]);
    // Wait until the listen is registered: a record it matches is then offered.
    let watcher = Running::start(&["watch", "weather/berlin", "--url", url]);
    assert_eq!(
        listen.next_json("the match"),
        json!({"event": "match", "name": "weather/berlin"})
    );
    assert_eq!(watcher.next_json("the watched value"), json!({}));
    assert_eq!(watcher.interrupt(), 0);
    assert_eq!(
        listen.next_json("the stop"),
        json!({"event": "stop", "name": "weather/berlin", "reason": "unsubscribed"})
    );
    assert_eq!(listen.interrupt(), 0);
}

#[test]
fn serve_failures_say_what_to_change() {
    // A port another process listens on: exit 1, the address and what to do.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = run(&[
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--storage",
        "memory",
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains(&format!("recordsync: cannot listen on 127.0.0.1:{port}: ")),
        "{message}"
    );
    assert!(
        message.contains("choose another port with --port"),
        "{message}"
    );

    // A flag that does not parse names the flag.
    let out = run(&["serve", "--storage", "memory", "--cache-size", "lots"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("recordsync: --cache-size: "),
        "{}",
        stderr(&out)
    );

    // A config file that is not there names it.
    let out = run(&["serve", "--config", "/nonexistent/recordsync.yml"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("recordsync: cannot read config file /nonexistent/recordsync.yml: "),
        "{}",
        stderr(&out)
    );
}

/// `subscribe` prints the data of every event emitted to its name by `emit`, exactly as
/// written (numbers, key order), one JSON line each, and nothing emitted to other names;
/// Ctrl-C ends it cleanly. Events are not stored, so `emit` is repeated until the
/// subscription is in place.
#[test]
fn subscribe_prints_what_emit_sends() {
    let server = memory_server();
    let url = server.url();
    let url = url.as_str();
    let sub = Running::start(&["subscribe", "news", "--url", url]);
    let first = loop {
        let out = run(&["emit", "news", r#"{"first":true}"#, "--url", url]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(stdout_json(&out), json!({"name": "news", "emitted": true}));
        if let Ok(line) = sub.lines.recv_timeout(Duration::from_millis(500)) {
            break line;
        }
    };
    assert_eq!(first, r#"{"first":true}"#);
    // Whatever else of the retries arrived is the same event; skip it.
    while let Ok(line) = sub.lines.recv_timeout(Duration::from_millis(200)) {
        assert_eq!(line, r#"{"first":true}"#);
    }
    run(&["emit", "other", "1", "--url", url]);
    let data = r#"{"z":1.50,"a":[-0,"two",null,12345678901234567890]}"#;
    assert_eq!(code(&run(&["emit", "news", data, "--url", url])), 0);
    assert_eq!(code(&run(&["emit", "news", "-1", "--url", url])), 0);
    let line = sub.lines.recv_timeout(TIMEOUT).expect("the second event");
    assert_eq!(line, data, "the data comes through as written");
    assert_eq!(sub.next_json("the third event"), json!(-1));

    let out = run(&["emit", "news", "not json", "--url", url]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(sub.interrupt(), 0, "Ctrl-C ends subscribe cleanly");
}
