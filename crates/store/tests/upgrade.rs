//! Data written by the release before issue 13 (embedded schema 3, PostgreSQL migration 2)
//! opens with this build and keeps every record, version and journal entry; records get
//! `created` 0 and a create entry at version 0 (issue 13, item 7).
//!
//! The fixtures in `tests/fixtures/` were written by that release's code (commit
//! 95a85d2), with the writes listed in `fixtures/README.md`:
//! - `embedded-schema3/`: a data directory after a clean shutdown;
//! - `embedded-schema3-crashed/`: the same writes, the second half of them only in the
//!   write-ahead log (a crash): opening replays them with schema 3's meaning (a delete
//!   removed its record), then upgrades;
//! - `postgres-migration2.sql`: `pg_dump --inserts` of a schema of migration 2.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::path::Path;
use std::sync::Arc;

use recordsync_core::JournalOp;
use recordsync_store::embedded::EmbeddedOptions;
use recordsync_store::postgres::testing::{TestSchema, test_url};
use recordsync_store::{
    EmbeddedStore, History, JournalEntry, Milestone, PostgresOptions, PostgresStore, Store,
    StoredRecord, Write, WriteOutcome,
};
use serde_json::Value;

const CTIME: u64 = 1_600_000_000_000;
const CREATE: &str = r#"{"op":"create","data":{}}"#;
const NUMBERS: &str = r#"{"big":1e400,"exact":0.1000000000000000055511151231257827,"int":123456789012345678901234567890,"neg":-0.0,"nul":"a\u0000b"}"#;
const UNICODE: &str = "ünïcödé/名前/🦀";

fn entry(version: u64, op: &str) -> JournalEntry {
    JournalEntry {
        version,
        // The synthetic create has the record's ctime; the others were written at
        // ctime + version.
        time: CTIME + version,
        op: op.to_owned(),
        author: None,
        origin: None,
    }
}

fn record(name: &str, version: u64, data: &str) -> StoredRecord {
    StoredRecord {
        name: name.to_owned(),
        version,
        created: 0,
        deleted: false,
        data: data.to_owned(),
        ctime: CTIME,
        mtime: CTIME + version,
    }
}

/// What the fixtures hold, read through the Store trait.
async fn check(store: &dyn Store) {
    let expect = [
        (
            record("plain", 2, r#"{"a":1,"b":"x"}"#),
            vec![
                entry(1, r#"{"op":"update","data":{"a":1}}"#),
                entry(2, r#"{"op":"patch","path":"b","data":"x"}"#),
            ],
        ),
        (
            record("numbers", 1, NUMBERS),
            vec![entry(1, &format!(r#"{{"op":"update","data":{NUMBERS}}}"#))],
        ),
        (
            record(UNICODE, 1, r#"{"名":"🦀","é":true}"#),
            vec![entry(1, r#"{"op":"patch","path":"é","data":true}"#)],
        ),
        (
            record("many", 250, r#"{"n":250}"#),
            (1..=250)
                .map(|v| entry(v, &format!(r#"{{"op":"patch","path":"n","data":{v}}}"#)))
                .collect(),
        ),
    ];
    for (record, ops) in expect {
        let name = record.name.clone();
        assert_eq!(
            store.get(&name).await.unwrap(),
            Some(record.clone()),
            "{name}"
        );
        let mut journal = vec![JournalEntry {
            time: CTIME,
            ..entry(0, CREATE)
        }];
        journal.extend(ops);
        assert_eq!(
            store.journal(&name, 0, u64::MAX).await.unwrap(),
            journal,
            "{name}: every entry, with the create at 0"
        );
        assert_eq!(store.history_start(&name).await.unwrap(), Some(0), "{name}");
        assert_eq!(
            store.milestone(&name, u64::MAX).await.unwrap(),
            Some(Milestone {
                version: record.version,
                data: record.data.clone()
            }),
            "{name}: a milestone at its current version"
        );
        assert_eq!(
            store.milestone(&name, record.version - 1).await.unwrap(),
            None
        );
        assert_eq!(
            store.version_at_time(&name, CTIME).await.unwrap(),
            Some(0),
            "{name}"
        );
    }
    // Deleted before the upgrade: gone, as it was.
    assert_eq!(store.get("gone").await.unwrap(), None);
    assert!(store.journal("gone", 0, u64::MAX).await.unwrap().is_empty());

    // And it takes writes on top, continuing the versions.
    let write = Write::Put {
        record: record("many", 251, r#"{"n":251}"#),
        base_version: Some(250),
        entries: vec![entry(251, r#"{"op":"patch","path":"n","data":251}"#)],
    };
    assert_eq!(
        store.commit(&[write]).await.unwrap(),
        [WriteOutcome::Committed]
    );
    assert_eq!(
        store.journal("many", 249, 251).await.unwrap().len(),
        3,
        "old and new entries together"
    );
}

fn copy_fixture(name: &str) -> tempfile::TempDir {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let to = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.path().join(entry.file_name())).unwrap();
    }
    to
}

#[tokio::test]
async fn an_embedded_directory_of_schema_3_is_upgraded_in_place() {
    for fixture in ["embedded-schema3", "embedded-schema3-crashed"] {
        let dir = copy_fixture(fixture);
        {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            let replayed = store.stats().replayed_frames;
            if fixture.ends_with("crashed") {
                // The last 7 of the 14 batches (200 of `many`'s patches, and `gone`'s
                // life, its delete included) came from the log.
                assert_eq!(replayed, 7, "{fixture}");
            } else {
                assert_eq!(replayed, 0, "{fixture}");
            }
            check(&store).await;
        }
        // Upgraded once: it opens again as schema 4, with what was written since.
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(store.stats().replayed_frames, 0, "{fixture}");
        assert_eq!(store.get("many").await.unwrap().unwrap().version, 251);
        assert_eq!(
            store.journal("many", 0, u64::MAX).await.unwrap().len(),
            252,
            "{fixture}"
        );
    }
}

/// Milestones every 10 versions, the newest 100 entries kept: `many` (250 entries)
/// exceeds that, the fixtures' other records do not.
fn tight() -> History {
    History {
        milestone_every: 10,
        keep_ops: Some(100),
        keep_age: None,
    }
}

/// `name` at `version`, read as the engine reads a past version: the newest milestone at
/// or below it, then the journal entries after it, applied. Checks that this takes at
/// most `milestone_every` entries.
async fn read_at(store: &dyn Store, name: &str, version: u64, every: u64) -> Value {
    let milestone = store.milestone(name, version).await.unwrap().unwrap();
    assert!(milestone.version <= version);
    let entries = store
        .journal(name, milestone.version + 1, version)
        .await
        .unwrap();
    let versions: Vec<u64> = entries.iter().map(|e| e.version).collect();
    assert_eq!(
        versions,
        (milestone.version + 1..=version).collect::<Vec<_>>(),
        "{name}@{version}"
    );
    assert!(
        entries.len() < every as usize,
        "{name}@{version}: {versions:?}"
    );
    let mut value = Some(serde_json::from_str::<Value>(&milestone.data).unwrap());
    for entry in entries {
        JournalOp::from_journal(&entry.op)
            .unwrap()
            .apply(&mut value)
            .unwrap();
    }
    value.unwrap()
}

/// After the upgrade, `many` is bounded: its history starts at 150 (the greatest
/// milestone at or below 250 - 100), the entries up to 150 are gone, and every version
/// from 150 to 250 reads as it was, from a milestone the upgrade made by replaying its
/// journal.
async fn check_bounded(store: &dyn Store) {
    assert_eq!(store.history_start("many").await.unwrap(), Some(150));
    let journal = store.journal("many", 0, u64::MAX).await.unwrap();
    assert_eq!(
        journal.iter().map(|e| e.version).collect::<Vec<_>>(),
        (151..=250).collect::<Vec<_>>()
    );
    for v in 150..=250 {
        let expected: Value = serde_json::from_str(&format!(r#"{{"n":{v}}}"#)).unwrap();
        assert_eq!(read_at(store, "many", v, 10).await, expected, "many@{v}");
    }
    assert_eq!(store.milestone("many", 149).await.unwrap(), None);
    // The others are within the bound, and as the plain upgrade leaves them.
    for (name, version) in [("plain", 2), ("numbers", 1), ("ünïcödé/名前/🦀", 1)] {
        assert_eq!(store.history_start(name).await.unwrap(), Some(0), "{name}");
        assert_eq!(
            store.journal(name, 0, u64::MAX).await.unwrap().len() as u64,
            version + 1,
            "{name}"
        );
    }
}

/// With retention tighter than the fixture's history, the same opening upgrades,
/// replays `many`'s journal for its milestones, and prunes it (item 7 of issue 13: the
/// history of an upgraded record is bounded from its first opening).
#[tokio::test]
async fn an_upgraded_record_is_bounded_at_its_first_opening() {
    for fixture in ["embedded-schema3", "embedded-schema3-crashed"] {
        let dir = copy_fixture(fixture);
        let options = || EmbeddedOptions {
            history: tight(),
            ..EmbeddedOptions::default()
        };
        {
            let store = EmbeddedStore::open_with(dir.path(), options()).unwrap();
            check_bounded(&store).await;
            assert_eq!(
                store.get("many").await.unwrap().unwrap().data,
                r#"{"n":250}"#
            );
        }
        let store = EmbeddedStore::open_with(dir.path(), options()).unwrap();
        check_bounded(&store).await;
    }
}

/// A schema of migration 2 loaded from the fixture's dump into `schema`, and a client
/// on the test server. `tamper` runs on it before recordsync connects.
async fn load_migration_2(schema: &TestSchema, tamper: &str) -> tokio_postgres::Client {
    let dump = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/postgres-migration2.sql"),
    )
    .unwrap();
    // psql's meta-commands (\restrict) are not SQL; the schema gets this test's name.
    let sql: String = dump
        .lines()
        .filter(|l| !l.starts_with('\\'))
        .map(|l| l.replace("fixture_v2", schema.schema()) + "\n")
        .collect();
    let (client, connection) = tokio_postgres::connect(&test_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.batch_execute(&sql).await.unwrap();
    client
        .batch_execute(&tamper.replace("{s}", schema.schema()))
        .await
        .unwrap();
    client
}

/// As in the embedded store: connecting with retention tighter than `many`'s history
/// migrates, replays `many`'s journal for its milestones and prunes it; every kept
/// version reads as it was. The list of records to replay is empty after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_record_of_migration_2_is_bounded_at_the_first_connect() {
    let schema = TestSchema::new("upgrade_bounded");
    let client = load_migration_2(&schema, "").await;
    let options = || PostgresOptions {
        history: tight(),
        ..PostgresOptions::default()
    };
    let store: PostgresStore = schema.connect_with(options()).await;
    check_bounded(&store).await;
    let s = schema.schema();
    let listed: i64 = client
        .query_one(&format!("SELECT count(*) FROM {s}.history_replay"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(listed, 0);
    drop(store);
    check_bounded(&schema.connect_with(options()).await).await;
}

/// A record of migration 2 whose journal does not lead to its value (its stored value
/// changed behind recordsync's back, or a journal row missing) keeps its whole history
/// and its value, and the store connects and takes writes to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_record_whose_journal_does_not_replay_keeps_its_history() {
    for (tamper, entries) in [
        (
            r#"UPDATE {s}.records SET data_json = '{"n":"x"}', data = '{"n":"x"}' WHERE name = 'many'"#,
            250,
        ),
        (
            "DELETE FROM {s}.journal WHERE name = 'many' AND version = 100",
            249,
        ),
    ] {
        let schema = TestSchema::new("upgrade_refused");
        let _client = load_migration_2(&schema, tamper).await;
        let store = schema
            .connect_with(PostgresOptions {
                history: tight(),
                ..PostgresOptions::default()
            })
            .await;
        assert_eq!(
            store.history_start("many").await.unwrap(),
            Some(0),
            "{tamper}"
        );
        assert_eq!(
            store.journal("many", 0, u64::MAX).await.unwrap().len(),
            entries + 1,
            "{tamper}: every row, the create included"
        );
        assert_eq!(
            store.milestone("many", 249).await.unwrap(),
            None,
            "{tamper}"
        );
        assert_eq!(
            store.milestone("many", 250).await.unwrap().unwrap().version,
            250
        );
        let current = store.get("many").await.unwrap().unwrap();
        let write = Write::Put {
            record: StoredRecord {
                version: 251,
                mtime: CTIME + 251,
                ..current
            },
            base_version: Some(250),
            entries: vec![entry(251, r#"{"op":"patch","path":"m","data":1}"#)],
        };
        assert_eq!(
            store.commit(&[write]).await.unwrap(),
            [WriteOutcome::Committed]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_schema_of_migration_2_is_upgraded_in_place() {
    let schema = TestSchema::new("upgrade");
    let client = load_migration_2(&schema, "").await;
    let store = Arc::new(schema.connect().await);
    check(store.as_ref()).await;

    // The new columns are queryable; numbers jsonb cannot hold leave NULL, as for data.
    let s = schema.schema();
    let rows = client
        .query(
            &format!(
                "SELECT name, version, op IS NULL, op->>'op', author, origin_src \
                 FROM {s}.journal WHERE version <= 1 ORDER BY name, version"
            ),
            &[],
        )
        .await
        .unwrap();
    let seen: Vec<(String, i64, bool, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let create = |n: &str| (n.to_owned(), 0, false, Some("create".to_owned()));
    assert_eq!(
        seen,
        [
            create("many"),
            ("many".into(), 1, false, Some("patch".into())),
            create("numbers"),
            ("numbers".into(), 1, true, None),
            create("plain"),
            ("plain".into(), 1, false, Some("update".into())),
            create(UNICODE),
            (UNICODE.into(), 1, false, Some("patch".into())),
        ]
    );
    assert!(rows.iter().all(|r| r.get::<_, Option<String>>(4).is_none()));
    let row = client
        .query_one(
            &format!("SELECT created, deleted, history_start FROM {s}.records WHERE name = 'many'"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, i64>(0),
            row.get::<_, bool>(1),
            row.get::<_, i64>(2)
        ),
        (0, false, 0)
    );
}

/// What the replay at connect costs in PostgreSQL: one record of migration 2 written
/// `WRITES` (default 20,000) times with 1 KB values (whole-value updates), connected
/// with the default retention. Run with
/// `WRITES=20000 cargo test -p recordsync-store --release --test upgrade postgres_replay_cost -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a test"]
async fn postgres_replay_cost() {
    let writes: i64 = std::env::var("WRITES")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(20_000);
    let schema = TestSchema::new("replay_cost");
    let value = r#"'{"n":' || v || ',"pad":"' || repeat('x', 1000) || '"}'"#;
    let client = load_migration_2(
        &schema,
        &format!(
            "INSERT INTO {{s}}.journal (name, version, time, op) \
             SELECT 'big', v, v, ('{{\"op\":\"update\",\"data\":' || {value} || '}}')::json \
             FROM generate_series(1, {writes}) AS v; \
             INSERT INTO {{s}}.records (name, version, data, data_json, ctime, mtime) \
             SELECT 'big', v, ({value})::jsonb, ({value})::json, 0, v \
             FROM (SELECT {writes}::bigint AS v) AS x;"
        ),
    )
    .await;
    let s = schema.schema();
    let size = async || -> i64 {
        client
            .query_one(
                "SELECT sum(pg_total_relation_size(c.oid))::int8 FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relkind = 'r'",
                &[&s],
            )
            .await
            .unwrap()
            .get(0)
    };
    let before = size().await;
    let started = std::time::Instant::now();
    let store = schema.connect().await;
    let took = started.elapsed();
    let start = store.history_start("big").await.unwrap().unwrap();
    let kept = store.journal("big", 0, u64::MAX).await.unwrap().len();
    for table in ["journal", "milestones"] {
        client
            .batch_execute(&format!("VACUUM FULL {s}.{table}"))
            .await
            .unwrap();
    }
    let after = size().await;
    println!(
        "{writes} writes of migration 2: tables {:.1} MB; connect (migrations 3 and 4, \
         replay, prune) {took:?}; history from {start}, {kept} entries kept; tables after \
         VACUUM FULL {:.1} MB",
        before as f64 / 1e6,
        after as f64 / 1e6
    );
    assert!(kept <= 1_100);
}
