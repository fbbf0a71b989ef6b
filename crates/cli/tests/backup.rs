//! `recordsync export`, `import`, `ls` and `history` of the real binary on real stores:
//! a data set goes embedded → PostgreSQL → embedded and comes back byte for byte
//! (records, versions, created, ctime/mtime, tombstones, journal entries with authors
//! and origins, milestones, JSON text as written); `--prefix` exports a part; a
//! non-empty target and a damaged dump are refused with nothing imported.
//!
//! PostgreSQL is the test server (`RECORDSYNC_TEST_POSTGRES`); each test uses a schema
//! of its own (`TestSchema`), dropped at its end.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

mod process;

use std::ffi::OsString;
use std::path::Path;
use std::process::Output;

use process::{ServerProcess, run_recordsync};
use recordsync_store::postgres::testing::TestSchema;

/// A dump written by hand: numbers that no parser keeps (1e400, -0.0, a 20-digit
/// integer), keys in non-sorted order, unicode and escapes in names and strings, a
/// tombstone, a re-created record, authors and origins, a record whose history starts
/// at a milestone (pruned before it), and a value holding a line break between tokens.
const DUMP: &str = r#"{"format":"recordsync-dump","version":1,"prefix":"","history":true,"exported_at":1}
{"name":"a/plain","version":2,"created":0,"deleted":false,"ctime":1700000000000,"mtime":1700000000002,"value":{"z":1e400,"a":-0.0,"m":12345678901234567890,"s":"é\u00e9 \"q\" \\"},"history":{"start":0,"milestones":[],"entries":[{"version":0,"time":1700000000000,"author":null,"origin":null,"op":{"op":"create","data":{}}},{"version":1,"time":1700000000001,"author":"ada","origin":{"src":"client-1","seq":7},"op":{"op":"update","data":{"z":1e400,"a":-0.0}}},{"version":2,"time":1700000000002,"author":null,"origin":null,"op":{"op":"update","data":{"z":1e400,"a":-0.0,"m":12345678901234567890,"s":"é\u00e9 \"q\" \\"}}}]}}
{"name":"a/recreated","version":4,"created":3,"deleted":false,"ctime":1700000000030,"mtime":1700000000040,"value":[1,{"y":2,"x":1}],"history":{"start":0,"milestones":[],"entries":[{"version":0,"time":1700000000000,"author":null,"origin":null,"op":{"op":"create","data":{}}},{"version":1,"time":1700000000010,"author":null,"origin":null,"op":{"op":"update","data":{"n":1}}},{"version":2,"time":1700000000020,"author":"bob","origin":null,"op":{"op":"delete"}},{"version":3,"time":1700000000030,"author":null,"origin":null,"op":{"op":"create","data":{}}},{"version":4,"time":1700000000040,"author":null,"origin":null,"op":{"op":"update","data":[1,{"y":2,"x":1}]}}]}}
{"name":"a/tomb","version":1,"created":0,"deleted":true,"ctime":1700000000000,"mtime":1700000000005,"value":null,"history":{"start":0,"milestones":[],"entries":[{"version":0,"time":1700000000000,"author":null,"origin":null,"op":{"op":"create","data":{}}},{"version":1,"time":1700000000005,"author":null,"origin":{"src":"c","seq":1},"op":{"op":"delete"}}]}}
{"name":"b/pruned","version":102,"created":0,"deleted":false,"ctime":1600000000000,"mtime":1700000000102,"value":{"n":102},"history":{"start":100,"milestones":[{"version":100,"time":1700000000100,"value":{"n":100}}],"entries":[{"version":101,"time":1700000000101,"author":null,"origin":null,"op":{"op":"update","data":{"n":101}}},{"version":102,"time":1700000000102,"author":null,"origin":null,"op":{"op":"update","data":{"n":102}}}]}}
{"name":"b/spaced","version":0,"created":0,"deleted":false,"ctime":1700000000000,"mtime":1700000000000,"value_text":"{\"k\":\n 1}","history":{"start":0,"milestones":[],"entries":[{"version":0,"time":1700000000000,"author":null,"origin":null,"op_text":"{\"op\":\"create\",\"data\":{\"k\":\n 1}}"}]}}
{"name":"ünïcödé/日本語/🦀 \"q\"","version":0,"created":0,"deleted":false,"ctime":1700000000000,"mtime":1700000000000,"value":{},"history":{"start":0,"milestones":[],"entries":[{"version":0,"time":1700000000000,"author":null,"origin":null,"op":{"op":"create","data":{}}}]}}
{"end":true,"records":6}
"#;

fn embedded(dir: &Path) -> Vec<OsString> {
    vec!["--data-dir".into(), dir.as_os_str().to_owned()]
}

fn postgres(schema: &TestSchema) -> Vec<OsString> {
    vec!["--storage".into(), schema.url().into()]
}

/// Runs `recordsync COMMAND STORE… EXTRA…` with `input`; panics unless it succeeds.
fn ok(command: &str, store: &[OsString], extra: &[&str], input: &[u8]) -> String {
    let out = run(command, store, extra, input);
    assert!(
        out.status.success(),
        "recordsync {command} {extra:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn run(command: &str, store: &[OsString], extra: &[&str], input: &[u8]) -> Output {
    let mut args: Vec<OsString> = vec![command.into()];
    args.extend(store.iter().cloned());
    args.extend(extra.iter().map(OsString::from));
    run_recordsync(&args, input)
}

/// The dump without its header (whose `exported_at` differs from run to run).
fn body(dump: &str) -> &str {
    let (header, body) = dump.split_once('\n').unwrap();
    assert!(
        header.starts_with(r#"{"format":"recordsync-dump","version":1,"#),
        "{header}"
    );
    body
}

/// What `ls`, `history` and `history --version` say of every record of `DUMP`: JSON
/// lines, one each.
fn contents(store: &[OsString]) -> String {
    let mut seen = ok("ls", store, &[], b"");
    for name in [
        "a/plain",
        "a/recreated",
        "a/tomb",
        "b/pruned",
        "b/spaced",
        "ünïcödé/日本語/🦀 \"q\"",
    ] {
        seen += &ok("history", store, &[name], b"");
    }
    for (name, version) in [
        ("a/plain", "1"),
        ("a/recreated", "2"),
        ("a/recreated", "4"),
        ("b/pruned", "101"),
    ] {
        seen += &ok("history", store, &[name, "--version", version], b"");
    }
    for line in seen.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
    }
    seen
}

#[test]
fn a_data_set_round_trips_embedded_postgres_embedded_exactly() {
    let first = tempfile::tempdir().unwrap();
    let last = tempfile::tempdir().unwrap();
    let schema = TestSchema::new("cli_backup_round_trip");
    let (a, pg, c) = (
        embedded(first.path()),
        postgres(&schema),
        embedded(last.path()),
    );

    ok("import", &a, &[], DUMP.as_bytes());
    let from_a = ok("export", &a, &["--history"], b"");
    assert_eq!(
        body(&from_a),
        body(DUMP),
        "the embedded store keeps the dump exactly"
    );

    ok("import", &pg, &["-"], from_a.as_bytes());
    let from_pg = ok("export", &pg, &["--history"], b"");
    assert_eq!(
        body(&from_pg),
        body(DUMP),
        "PostgreSQL keeps the dump exactly"
    );

    let file = first.path().join("dump.jsonl");
    std::fs::write(&file, &from_pg).unwrap();
    ok("import", &c, &[file.to_str().unwrap()], b"");
    let from_c = ok("export", &c, &["--history"], b"");
    assert_eq!(body(&from_c), body(DUMP));

    // The stores answer alike, as the dump says.
    let seen = contents(&a);
    assert_eq!(contents(&pg), seen);
    assert_eq!(contents(&c), seen);
    assert!(seen.starts_with(
        "{\"name\":\"a/plain\",\"version\":2}\n{\"name\":\"a/recreated\",\"version\":4}\n{\"name\":\"b/pruned\",\"version\":102}\n"
    ), "ls lists live records with versions: {seen}");
    assert!(
        seen.contains(r#"{"version":2,"value":null}"#),
        "deleted at 2: {seen}"
    );
    assert!(
        seen.contains(r#"{"version":101,"value":{"n":101}}"#),
        "{seen}"
    );

    // Without history: the records as they are, nothing of their past.
    let current = ok("export", &pg, &[], b"");
    assert!(body(&current).starts_with(
        r#"{"name":"a/plain","version":2,"created":0,"deleted":false,"ctime":1700000000000,"mtime":1700000000002,"value":{"z":1e400,"a":-0.0,"m":12345678901234567890,"s":"é\u00e9 \"q\" \\"}}"#
    ), "{current}");
    let bare = tempfile::tempdir().unwrap();
    ok("import", &embedded(bare.path()), &[], current.as_bytes());
    assert_eq!(
        body(&ok("export", &embedded(bare.path()), &[], b"")),
        body(&current)
    );
    assert_eq!(
        ok(
            "history",
            &embedded(bare.path()),
            &["a/plain", "--version", "2"],
            b""
        ),
        concat!(
            r#"{"version":2,"value":{"z":1e400,"a":-0.0,"m":12345678901234567890,"s":"é\u00e9 \"q\" \\"}}"#,
            "\n"
        )
    );
    assert_eq!(
        run(
            "history",
            &embedded(bare.path()),
            &["a/plain", "--version", "1"],
            b""
        )
        .status
        .code(),
        Some(5)
    );

    // A server serves the restored data set and writes on from the restored versions:
    // after a pruned history's milestone, after a re-create, to a tombstone.
    let seen_before = contents(&c);
    let server = ServerProcess::start([OsString::from("--data-dir"), last.path().into()]);
    let url = server.url();
    let client = |args: &[&str]| {
        let mut args = args.to_vec();
        args.extend(["--url", &url]);
        let out = run_recordsync(&args, b"");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(client(&["get", "b/pruned", "n"]), "102\n");
    client(&["set", "b/pruned", "n", "103"]);
    client(&["set", "a/recreated", "[3]"]);
    client(&["set", "a/tomb", r#"{"back":true}"#]);
    server.terminate();
    let after = ok("history", &c, &["b/pruned"], b"");
    assert_eq!(
        after.lines().count(),
        3,
        "101, 102 and the new 103: {after}"
    );
    assert!(
        after
            .lines()
            .last()
            .unwrap()
            .starts_with(r#"{"version":103,"#),
        "{after}"
    );
    assert_eq!(
        ok("history", &c, &["b/pruned", "--version", "101"], b""),
        "{\"version\":101,\"value\":{\"n\":101}}\n"
    );
    let ls = ok("ls", &c, &["a/"], b"");
    assert!(ls.contains(r#"{"name":"a/recreated","version":5}"#), "{ls}");
    assert!(
        ls.contains(r#"{"name":"a/tomb","version":3}"#),
        "delete at 1, create 2, write 3: {ls}"
    );
    assert_ne!(contents(&c), seen_before);
}

#[test]
fn export_with_a_prefix_and_a_server_written_data_set() {
    let dir = tempfile::tempdir().unwrap();
    let store = embedded(dir.path());
    // Written by a real server through the client commands, deletes and a re-create.
    let server = ServerProcess::start([OsString::from("--data-dir"), dir.path().into()]);
    let url = server.url();
    for args in [
        vec!["set", "p/one", r#"{"b":1,"a":2}"#],
        vec!["set", "p/one", "a", "3"],
        vec!["set", "p/two", "{}"],
        vec!["delete", "p/two"],
        vec!["set", "p/two", r#"{"again":true}"#],
        vec!["set", "q/other", "[]"],
    ] {
        let mut args: Vec<&str> = args;
        args.extend(["--url", &url]);
        let out = run_recordsync(&args, b"");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    server.terminate();

    let part = ok("export", &store, &["--prefix", "p/", "--history"], b"");
    let lines: Vec<&str> = part.lines().collect();
    assert_eq!(lines.len(), 4, "{part}");
    assert!(
        lines[0].contains(r#""prefix":"p/","history":true"#),
        "{part}"
    );
    assert!(
        lines[1].starts_with(r#"{"name":"p/one","version":2,"created":0,"deleted":false,"#),
        "{part}"
    );
    assert!(lines[1].contains(r#""value":{"b":1,"a":3}"#), "{part}");
    assert!(
        lines[2].starts_with(r#"{"name":"p/two","version":4,"created":3,"deleted":false,"#),
        "{part}"
    );
    assert!(lines[2].contains(r#"{"op":"delete"}"#), "{part}");
    assert_eq!(lines[3], r#"{"end":true,"records":2}"#);

    // Into PostgreSQL and back out: the same.
    let schema = TestSchema::new("cli_backup_prefix");
    ok("import", &postgres(&schema), &[], part.as_bytes());
    assert_eq!(
        body(&ok("export", &postgres(&schema), &["--history"], b"")),
        body(&part)
    );
    assert_eq!(
        ok("ls", &postgres(&schema), &["p/t"], b""),
        "{\"name\":\"p/two\",\"version\":4}\n"
    );
}

#[test]
fn import_refuses_a_non_empty_target_and_a_damaged_dump_with_nothing_imported() {
    let dir = tempfile::tempdir().unwrap();
    let store = embedded(dir.path());
    ok("import", &store, &[], DUMP.as_bytes());
    let again = run("import", &store, &[], DUMP.as_bytes());
    assert_eq!(again.status.code(), Some(1));
    let message = String::from_utf8_lossy(&again.stderr);
    assert!(message.contains("not empty"), "{message}");

    let schema = TestSchema::new("cli_backup_damaged");
    let pg = postgres(&schema);
    let lines: Vec<&str> = DUMP.lines().collect();
    let damaged = [
        // A line cut in the middle (line 4).
        (format!("{}\n{}", lines[..3].join("\n"), &lines[3][..40]), "line 4"),
        // The last line missing: cut at a line break.
        (lines[..lines.len() - 1].join("\n") + "\n", "cut short"),
        // A record line whose journal has a hole (line 3).
        (DUMP.replacen(r#"{"version":1,"time":1700000000010,"author":null,"origin":null,"op":{"op":"update","data":{"n":1}}},"#, "", 1), "line 3"),
        // Not a dump.
        ("{\"hello\":1}\n".to_owned(), "line 1"),
        // A wrong count.
        (DUMP.replace(r#""records":6"#, r#""records":7"#), "line 8"),
    ];
    for (dump, expected) in damaged {
        let fresh = tempfile::tempdir().unwrap();
        for target in [&pg, &embedded(fresh.path())] {
            let out = run("import", target, &[], dump.as_bytes());
            let message = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{message}");
            assert!(
                message.contains(expected) && message.contains("nothing was imported"),
                "{expected}: {message}"
            );
            // The header and the trailer only.
            let left = ok("export", target, &[], b"");
            assert_eq!(left.lines().count(), 2, "the target stayed empty: {left}");
        }
    }
    // Still empty: a good dump goes in.
    ok("import", &pg, &[], DUMP.as_bytes());
    assert_eq!(body(&ok("export", &pg, &["--history"], b"")), body(DUMP));
}

/// `ls`, `history` and `export` through a running server (`--url`, its REST API) say
/// what they say from the store, and a dump made through the server loads into another
/// store exactly: embedded → server → PostgreSQL. `import --url` is refused, nothing
/// written.
#[test]
fn a_data_set_round_trips_through_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let store = embedded(dir.path());
    ok("import", &store, &[], DUMP.as_bytes());
    let seen = contents(&store);

    let server = ServerProcess::start([OsString::from("--data-dir"), dir.path().into()]);
    let via: Vec<OsString> = vec!["--url".into(), format!("http://{}", server.addr).into()];
    let dump = ok("export", &via, &["--history"], b"");
    assert_eq!(body(&dump), body(DUMP), "the server's export is the dump");
    assert_eq!(
        contents(&via),
        seen,
        "ls and history read alike through the server"
    );
    // A client command's URL works too.
    let ws: Vec<OsString> = vec!["--url".into(), server.url().into()];
    let part = ok("export", &ws, &["--prefix", "b/"], b"");
    let lines: Vec<&str> = part.lines().collect();
    assert_eq!(lines.len(), 4, "{part}");
    assert!(lines[0].contains(r#""prefix":"b/","history":false"#));
    assert!(lines[1].starts_with(r#"{"name":"b/pruned","version":102,"#));
    assert_eq!(lines[3], r#"{"end":true,"records":2}"#);

    let missing = run("history", &via, &["nothing/here"], b"");
    assert_eq!(missing.status.code(), Some(5), "{missing:?}");
    let refused = run("import", &via, &[], DUMP.as_bytes());
    assert_eq!(refused.status.code(), Some(2));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("import does not go through a running server")
            && message.contains("nothing was imported"),
        "{message}"
    );
    assert_eq!(contents(&via), seen, "nothing was written");
    server.terminate();

    let schema = TestSchema::new("cli_backup_through_server");
    let pg = postgres(&schema);
    ok("import", &pg, &[], dump.as_bytes());
    assert_eq!(body(&ok("export", &pg, &["--history"], b"")), body(DUMP));
    assert_eq!(contents(&pg), seen);
}

/// Through a server with auth and rules: the credentials are the client commands'
/// `--auth`, and an export never leaves out a record the user may not read: it stops
/// with the server's refusal and a dump that `import` refuses as cut short.
#[test]
fn through_a_server_with_rules_an_export_is_whole_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = embedded(dir.path());
    // `b/spaced` renamed into `secret/`, which alice may not read (same name order).
    let with_secret = DUMP.replace(r#""name":"b/spaced""#, r#""name":"secret/spaced""#);
    ok("import", &store, &[], with_secret.as_bytes());
    let config = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let server = process::secured_server(config.path(), &["--data-dir", data_dir]);
    let url = format!("http://{}", server.addr);
    let alice = r#"{"username":"alice","password":"password"}"#;
    let as_alice: Vec<OsString> = vec![
        "--url".into(),
        url.clone().into(),
        "--auth".into(),
        alice.into(),
    ];

    let anonymous = run("ls", &["--url".into(), url.clone().into()], &[], b"");
    assert_eq!(anonymous.status.code(), Some(4), "{anonymous:?}");
    let wrong = run(
        "ls",
        &[
            "--url".into(),
            url.clone().into(),
            "--auth".into(),
            r#"{"username":"alice","password":"no"}"#.into(),
        ],
        &[],
        b"",
    );
    assert_eq!(wrong.status.code(), Some(4), "{wrong:?}");

    let out = run("export", &as_alice, &["--history"], b"");
    assert_eq!(out.status.code(), Some(6), "permission denied: {out:?}");
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains("secret/spaced") && message.contains("incomplete"),
        "{message}"
    );
    let partial = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        partial.lines().count(),
        5,
        "the header and the 4 records before: {partial}"
    );
    let target = tempfile::tempdir().unwrap();
    let load = run("import", &embedded(target.path()), &[], partial.as_bytes());
    assert_eq!(load.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&load.stderr).contains("cut short"));

    // What she may read: all of it, and through a login by POST /api/auth (any other
    // login data than user and password) the same.
    let part = ok("export", &as_alice, &["--prefix", "a/", "--history"], b"");
    assert_eq!(part.lines().count(), 5, "{part}");
    let posted: Vec<OsString> = vec![
        "--url".into(),
        url.into(),
        "--auth".into(),
        r#"{"password":"password","username":"alice","via":"api/auth"}"#.into(),
    ];
    assert_eq!(
        body(&ok(
            "export",
            &posted,
            &["--prefix", "a/", "--history"],
            b""
        )),
        body(&part)
    );
    let ls = ok("ls", &as_alice, &[], b"");
    assert!(!ls.contains("secret/"), "left out of a listing: {ls}");
    assert!(ls.contains(r#"{"name":"a/plain","version":2}"#), "{ls}");
    let secret = run("history", &as_alice, &["secret/spaced"], b"");
    assert_eq!(secret.status.code(), Some(6), "{secret:?}");
    server.terminate();
}
