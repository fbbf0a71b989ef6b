//! EmbeddedStore behaviour beyond the shared conformance suite: persistence across
//! reopen and crash (also at chosen points of the write-ahead log's protocol), a full
//! disk, and how opening fails.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use recordsync_store::embedded::{EmbeddedOptions, WAL_FILE_NAME};

#[path = "support/tiny_fs.rs"]
mod tiny_fs;
use recordsync_store::{
    EmbeddedStore, GroupCommitter, JournalEntry, Store, StoreError, StoredRecord, Write,
    WriteOutcome,
};
use tiny_fs::TinyFs;

fn put(name: &str, version: u64, data: String) -> Write {
    let base = version.checked_sub(1).filter(|_| version > 1);
    Write::Put {
        record: StoredRecord {
            name: name.to_owned(),
            version,
            created: 0,
            deleted: false,
            data,
            ctime: 10,
            mtime: 10 + version,
        },
        base_version: base,
        entries: (base.map_or(0, |b| b + 1)..=version)
            .map(|v| JournalEntry {
                version: v,
                time: 10 + v,
                op: format!(r#"{{"v":{v}}}"#),
                author: None,
                origin: None,
            })
            .collect(),
    }
}

/// The delete of `name` at `version`: a tombstone.
fn delete(name: &str, version: u64) -> Write {
    Write::Put {
        record: StoredRecord {
            name: name.to_owned(),
            version,
            created: 0,
            deleted: true,
            data: "null".into(),
            ctime: 10,
            mtime: 10 + version,
        },
        base_version: Some(version - 1),
        entries: vec![JournalEntry {
            version,
            time: 10 + version,
            op: r#"{"op":"delete"}"#.into(),
            author: None,
            origin: None,
        }],
    }
}

fn open_error(dir: &Path) -> (String, String) {
    match EmbeddedStore::open(dir) {
        Err(StoreError::Open { path, reason }) => (path, reason.to_string()),
        other => panic!(
            "expected an Open error for {}, got {other:?}",
            dir.display()
        ),
    }
}

#[tokio::test]
async fn reopen_after_drop_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let committer = GroupCommitter::new(store.clone());
        for v in 1..=5 {
            for name in ["a", "b", "c"] {
                let (tx, rx) = tokio::sync::oneshot::channel();
                committer.submit(
                    put(name, v, format!(r#"{{"{name}":{v}}}"#)),
                    Box::new(move |r| {
                        let _ = tx.send(r);
                    }),
                );
                if v == 5 {
                    assert_eq!(rx.await.unwrap().unwrap(), WriteOutcome::Committed);
                }
            }
        }
        committer.flush().await;
        store.commit(&[delete("b", 6)]).await.unwrap();
        // Releases the store; only then can the directory be opened again.
        committer.shutdown().await;
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let a = store.get("a").await.unwrap().unwrap();
    assert_eq!((a.version, a.data.as_str(), a.mtime), (5, r#"{"a":5}"#, 15));
    let b = store.get("b").await.unwrap().unwrap();
    assert_eq!((b.version, b.deleted), (6, true), "a tombstone");
    assert_eq!(store.journal("b", 0, u64::MAX).await.unwrap().len(), 7);
    let journal = store.journal("c", 0, u64::MAX).await.unwrap();
    assert_eq!(
        journal.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4, 5]
    );
    assert_eq!(journal[3].op, r#"{"v":3}"#);
}

#[test]
fn open_under_a_regular_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let target = file.join("data");
    let (path, reason) = open_error(&target);
    assert_eq!(path, target.display().to_string());
    assert!(
        reason.contains("writable") || reason.contains("created"),
        "{reason}"
    );
}

#[test]
fn an_open_error_keeps_the_io_error_as_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let error = EmbeddedStore::open(&file.join("data")).unwrap_err();
    let source = std::error::Error::source(&error).expect("creating the directory failed");
    let io = source
        .downcast_ref::<std::io::Error>()
        .expect("the source is the I/O error itself");
    assert_eq!(io.kind(), std::io::ErrorKind::NotADirectory, "{io:?}");
    // The message still says it all on its own.
    assert!(error.to_string().contains(&io.to_string()), "{error}");
}

#[test]
fn open_in_a_read_only_directory_names_the_path() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(data.join("probe"), "x").is_ok() {
        // Running as root, whom permissions do not stop; the regular-file case above
        // covers the error path.
        eprintln!("skipped: permissions are not enforced for this user");
        return;
    }
    let (path, reason) = open_error(&data);
    assert!(path.contains("data"), "{path}");
    assert!(reason.contains("ermission"), "{reason}");
}

#[test]
fn second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = EmbeddedStore::open(dir.path()).unwrap();
    let (path, reason) = open_error(dir.path());
    assert!(
        path.starts_with(&dir.path().display().to_string()),
        "{path}"
    );
    assert!(reason.contains("already in use"), "{reason}");
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let junk: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.path().join(recordsync_store::embedded::FILE_NAME), junk).unwrap();
    let (path, reason) = open_error(dir.path());
    assert!(
        path.ends_with(recordsync_store::embedded::FILE_NAME),
        "{path}"
    );
    assert!(reason.contains("not a recordsync data file"), "{reason}");
}

const CHILD_DIR: &str = "RECORDSYNC_STORE_CRASH_DIR";
/// Checkpoint limit of the child, in bytes (default: the store's default).
const CHILD_CHECKPOINT_BYTES: &str = "RECORDSYNC_STORE_CRASH_CHECKPOINT_BYTES";
/// Crash point of the child (see `recordsync_store::embedded::faults`).
const FAULT: &str = "RECORDSYNC_STORE_FAULT";
const WRITERS: u64 = 16;

fn crash_data(writer: u64, version: u64) -> String {
    // Every seventh version is large, so that some commits are slow enough to be
    // killed in the middle.
    let pad = if version.is_multiple_of(7) {
        64 * 1024
    } else {
        16
    };
    format!(
        r#"{{"w":{writer},"v":{version},"pad":"{}"}}"#,
        "x".repeat(pad)
    )
}

/// The child of the crash tests: writes through a GroupCommitter until killed (or until
/// it crashes itself at an armed fault point), printing `ACK <name> <version>` for each
/// write once it is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by the crash tests in a child process"]
async fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let mut options = EmbeddedOptions::default();
    if let Ok(bytes) = std::env::var(CHILD_CHECKPOINT_BYTES) {
        options.checkpoint_bytes = bytes.parse().unwrap();
        options.checkpoint_interval = Duration::from_millis(20);
    }
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open_with(Path::new(&dir), options).unwrap());
    let committer = Arc::new(GroupCommitter::new(store.clone()));
    let deadline = Instant::now() + Duration::from_secs(60); // in case the parent is gone
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            let committer = committer.clone();
            tokio::spawn(async move {
                let name = format!("crash/{w}");
                let mut version = store.get(&name).await.unwrap().map_or(0, |r| r.version);
                while Instant::now() < deadline {
                    version += 1;
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    let ack = name.clone();
                    committer.submit(
                        put(&name, version, crash_data(w, version)),
                        Box::new(move |r| {
                            if r == Ok(WriteOutcome::Committed) {
                                use std::io::Write as _;
                                let mut out = std::io::stdout().lock();
                                let _ = writeln!(out, "ACK {ack} {version}");
                                let _ = out.flush();
                            }
                            let _ = tx.send(r);
                        }),
                    );
                    assert_eq!(rx.await.unwrap().unwrap(), WriteOutcome::Committed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

fn child(dir: &Path, env: &[(&str, String)]) -> std::process::Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .env_remove(FAULT)
        .env_remove(CHILD_CHECKPOINT_BYTES)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command
        .spawn()
        .expect("spawn the test binary as the crash child")
}

/// Runs the child until it has acknowledged `acks` writes, SIGKILLs it, and returns
/// every acknowledged (name, version).
fn run_child_and_kill(dir: &Path, acks: usize, env: &[(&str, String)]) -> Vec<(String, u64)> {
    let mut child = child(dir, env);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.len() < acks {
        assert!(
            Instant::now() < deadline,
            "the child acknowledged only {} writes",
            acked.len()
        );
        match lines.next() {
            Some(Ok(line)) => acked.extend(parse_ack(&line)),
            _ => panic!("the child exited early after {} acks", acked.len()),
        }
    }
    child.kill().expect("SIGKILL the child"); // SIGKILL on Unix: no clean shutdown
    child.wait().unwrap();
    // What it printed before dying was acknowledged too.
    for line in lines.map_while(Result::ok) {
        acked.extend(parse_ack(&line));
    }
    acked
}

/// A record name and a version of it.
type Written = (String, u64);

fn parse_ack(line: &str) -> Option<(String, u64)> {
    parse(line, "ACK ")
}

/// `<prefix><name> <version>`.
fn parse(line: &str, prefix: &str) -> Option<(String, u64)> {
    let mut parts = line.strip_prefix(prefix)?.split(' ');
    let name = parts.next()?.to_owned();
    let version = parts.next()?.parse().ok()?;
    Some((name, version))
}

/// Reopens `dir` after a crash and checks that every write in `must_have` is there, and
/// that records and journals are whole. Returns the frames replayed.
async fn check_after_crash(dir: &Path, must_have: &[(String, u64)], round: &str) -> u64 {
    let store = EmbeddedStore::open(dir).expect("reopen after the crash");
    let replayed = store.stats().replayed_frames;
    for (name, version) in must_have {
        let r = store
            .get(name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name} lost"));
        assert!(
            r.version >= *version,
            "{round}: {name} v{version} was acknowledged (or logged), the store has v{}",
            r.version
        );
    }
    // Records and journals are committed together: no gaps, no torn values.
    for w in 0..WRITERS {
        let name = format!("crash/{w}");
        let Some(r) = store.get(&name).await.unwrap() else {
            continue;
        };
        assert_eq!(r.data, crash_data(w, r.version), "{name}");
        let journal = store.journal(&name, 0, u64::MAX).await.unwrap();
        assert_eq!(
            journal.iter().map(|e| e.version).collect::<Vec<_>>(),
            (0..=r.version).collect::<Vec<_>>(),
            "{name}"
        );
    }
    eprintln!(
        "{round}: {} writes acknowledged so far, all present; {replayed} log frames replayed",
        must_have.len()
    );
    replayed
}

/// SIGKILL at whatever instant: with the default checkpoint policy, then with checkpoints
/// (and the log's recycling) every few dozen commits, so that kills land in all phases.
#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut all_acked: Vec<(String, u64)> = Vec::new();
    let mut replayed = 0;
    for round in 0..4 {
        let env = match round {
            0 | 1 => vec![],
            _ => vec![(CHILD_CHECKPOINT_BYTES, (128 * 1024).to_string())],
        };
        let acked = run_child_and_kill(dir.path(), 1500, &env);
        all_acked.extend(acked);
        replayed += check_after_crash(dir.path(), &all_acked, &format!("round {round}")).await;
    }
    // What redb had not made durable came back from the log.
    assert!(replayed > 0, "no round needed the log");
}

/// Runs the child with `fault` armed until it crashes there; returns what it acknowledged
/// and the writes it had logged when it crashed after a log sync.
fn run_child_until_fault(dir: &Path, fault: &str) -> (Vec<Written>, Vec<Written>) {
    use std::os::unix::process::ExitStatusExt;
    let env = [
        (FAULT, fault.to_owned()),
        (CHILD_CHECKPOINT_BYTES, (64 * 1024).to_string()),
    ];
    let mut child = child(dir, &env);
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut acked, mut logged) = (Vec::new(), Vec::new());
    // The child ends by itself at the fault; its stdout closes then.
    for line in lines.map_while(Result::ok) {
        acked.extend(parse_ack(&line));
        logged.extend(parse(&line, "INLOG "));
    }
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(6),
        "the child should have aborted at {fault}, it ended with {status}"
    );
    (acked, logged)
}

/// The child crashes at each point of the commit and checkpoint protocol in turn, twice
/// per point; after each crash every acknowledged write is there, and so is every write
/// of a batch that was synced to the log but never reached redb.
#[tokio::test]
async fn acknowledged_writes_survive_a_crash_at_every_step_of_the_protocol() {
    for point in [
        "log-torn:200",
        "after-log-sync:200",
        "after-redb-commit:200",
        "checkpoint-before-commit:4",
        "checkpoint-mid:4",
        "checkpoint-after-commit:4",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut must_have = Vec::new();
        for round in 0..2 {
            let (acked, logged) = run_child_until_fault(dir.path(), point);
            assert!(!acked.is_empty(), "{point}: nothing was acknowledged");
            if point.starts_with("after-log-sync") {
                assert!(
                    !logged.is_empty(),
                    "{point}: the crash reported no logged batch"
                );
            }
            must_have.extend(acked);
            must_have.extend(logged);
            check_after_crash(dir.path(), &must_have, &format!("{point}, round {round}")).await;
        }
    }
}

/// How the disk fills up.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// Commits only, checkpoints by the store's policy.
    Commits,
    /// A checkpoint after each commit: the log never outgrows its first megabyte, and the
    /// redb file takes the data, so a checkpoint is what fills the disk.
    Checkpoints,
}

/// Writes distinct records of 256 KiB until a commit (or checkpoint) fails; returns the
/// names of those acknowledged and the error.
async fn write_until_full(
    store: &EmbeddedStore,
    prefix: &str,
    fill: Fill,
) -> (Vec<String>, StoreError) {
    let mut acked = Vec::new();
    for v in 1..10_000u64 {
        // Distinct records, so that the data accumulates until the disk is full.
        let name = format!("{prefix}/{v}");
        match store.commit(&[put(&name, 1, "y".repeat(256 * 1024))]).await {
            Ok(outcomes) => {
                assert_eq!(outcomes, vec![WriteOutcome::Committed]);
                acked.push(name);
            }
            Err(e) => return (acked, e),
        }
        if fill == Fill::Checkpoints
            && let Err(e) = store.checkpoint()
        {
            return (acked, e);
        }
    }
    panic!("the filesystem never filled up");
}

async fn assert_all_there(store: &EmbeddedStore, names: &[String]) {
    for name in names {
        let r = store.get(name).await.unwrap();
        assert!(r.is_some(), "{name} was acknowledged and must be there");
    }
}

/// The error of a full disk: its own kind, naming the cause and where to free space.
fn assert_full(error: &StoreError, dir: &Path) {
    assert!(matches!(error, StoreError::Full { .. }), "{error:?}");
    let source = std::error::Error::source(error).expect("a full disk keeps the I/O error");
    let io = source
        .downcast_ref::<std::io::Error>()
        .expect("the source is the I/O error itself");
    assert_eq!(io.kind(), std::io::ErrorKind::StorageFull, "{io:?}");
    let message = error.to_string();
    let free = format!("free space on {}", dir.display());
    for needle in ["storage full", &free, "No space left on device"] {
        assert!(message.contains(needle), "{needle:?} in: {message}");
    }
}

/// Frees `ballast` and waits until the store takes writes again (it retries by itself),
/// then writes one more record, `name`.
async fn free_and_resume(store: &EmbeddedStore, ballast: &Path, name: &str) {
    std::fs::remove_file(ballast).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) = store.ping().await {
        assert!(Instant::now() < deadline, "writes did not resume: {e}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        store.commit(&[put(name, 1, "{}".into())]).await.unwrap(),
        vec![WriteOutcome::Committed]
    );
}

/// The options of these tests: retries every 20 ms.
fn retrying(options: EmbeddedOptions) -> EmbeddedOptions {
    EmbeddedOptions {
        retry_interval: Duration::from_millis(20),
        ..options
    }
}

/// A full disk, without a restart: every write fails with an error that names the cause,
/// and so does `ping` (the health check), for as long as the disk stays full; once space
/// is freed the store takes writes again by itself, and everything acknowledged is there,
/// then and after reopening. Returns the first error.
async fn fill_the_disk(options: EmbeddedOptions, fill: Fill) -> StoreError {
    let tiny = TinyFs::mount(24);
    // Space to free later; 8 MiB are left for the store.
    let ballast = tiny.ballast("ballast", 16);
    let dir = tempfile::tempdir_in(tiny.path()).unwrap();
    let options = retrying(options);
    let store = EmbeddedStore::open_with(dir.path(), options.clone()).unwrap();
    let (mut acked, error) = write_until_full(&store, "big", fill).await;
    assert!(
        acked.len() > 2,
        "the disk filled up after {} writes",
        acked.len()
    );
    assert_full(&error, dir.path());
    // The store refuses further commits rather than risk a half-written file, and says
    // why, also to the health check; retries (every 20 ms) do not change that while the
    // disk stays full.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = store.commit(&[put("small", 1, "{}".into())]).await;
    assert_full(&refused.expect_err("a commit on the full disk"), dir.path());
    assert_full(
        &store.ping().await.expect_err("ping on the full disk"),
        dir.path(),
    );

    // Space comes back: writes resume without a restart.
    free_and_resume(&store, &ballast, "small").await;
    acked.push("small".into());
    assert_all_there(&store, &acked).await;
    drop(store);
    let store = EmbeddedStore::open_with(dir.path(), options).unwrap();
    assert_all_there(&store, &acked).await;
    error
}

/// With the default policy nothing reaches the redb file before a checkpoint: the log
/// fills the disk, and the error names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_fails_commits_clearly_until_space_is_freed() {
    let error = fill_the_disk(EmbeddedOptions::default(), Fill::Commits).await;
    assert!(
        error.to_string().contains(WAL_FILE_NAME),
        "the error names the log: {error}"
    );
}

/// A checkpoint fills the disk: the store fails the same way, and resumes by reopening
/// redb, which refuses all work after a failed write to its file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_during_a_checkpoint_fails_commits_clearly_until_space_is_freed() {
    let manual = EmbeddedOptions {
        checkpoint_bytes: u64::MAX,
        checkpoint_interval: Duration::from_secs(3600),
        ..EmbeddedOptions::default()
    };
    let error = fill_the_disk(manual, Fill::Checkpoints).await;
    assert!(
        error.to_string().contains("checkpointing the data file"),
        "a checkpoint filled the disk: {error}"
    );
}

/// A store closed on a full disk opens on it again (replaying its log, writing nothing to
/// the disk) and serves every acknowledged write; it refuses writes until space is freed,
/// then takes them again by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_reopened_on_a_full_disk_reads_and_resumes_once_space_is_freed() {
    let tiny = TinyFs::mount(24);
    let ballast = tiny.ballast("ballast", 16);
    let dir = tempfile::tempdir_in(tiny.path()).unwrap();
    let options = retrying(EmbeddedOptions::default());
    let store = EmbeddedStore::open_with(dir.path(), options.clone()).unwrap();
    let (mut acked, error) = write_until_full(&store, "big", Fill::Commits).await;
    assert_full(&error, dir.path());
    drop(store);
    let store = EmbeddedStore::open_with(dir.path(), options.clone())
        .expect("reopens after the disk filled up");
    assert_all_there(&store, &acked).await;
    let refused = store.commit(&[put("small", 1, "y".repeat(1 << 20))]).await;
    assert_full(&refused.expect_err("a commit on the full disk"), dir.path());
    free_and_resume(&store, &ballast, "small").await;
    acked.push("small".into());
    drop(store);
    let store = EmbeddedStore::open_with(dir.path(), options).unwrap();
    assert_all_there(&store, &acked).await;
}
