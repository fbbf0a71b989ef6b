//! The default store: one redb file in the data directory.
//!
//! Why redb: pure Rust (no C toolchain, no separate server), copy-on-write B-trees with
//! checksummed commit slots, so a crash at any point leaves the last committed
//! transaction intact, and each write transaction is durable when `commit` returns
//! (redb's default [`Durability::Immediate`], which we also set explicitly so a change of
//! default upstream cannot silently weaken it).
//!
//! Layout of the file (`src/embedded/codec.rs` documents the bytes):
//! - `records`: record name → version, ctime, mtime, key of its newest `log` entry, JSON data.
//! - `log`:     sequence number → name, version, time, op JSON, key of the record's
//!   previous entry. Appended in commit order, so a commit touches the end of the log
//!   only, however many records it writes (with one table keyed by record, a commit of
//!   100 records' writes rewrote about 100 pages, and the fsync cost grows with them).
//! - `journal`: (name, version) → time, op JSON: entries written by schema 1, still read
//!   and deleted, never written. A file of schema 1 is upgraded on open by adding `log`.
//! - `meta`:    `schema_version` → [`SCHEMA_VERSION`], checked on open.
//!
//! redb's calls block on disk I/O, so every call runs on tokio's blocking pool and the
//! async runtime's workers never wait for the disk.

mod codec;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::StoreError;
use crate::store::{JournalEntry, Store, StoredRecord, Write, WriteOutcome};

pub use codec::{FORMAT_V1, FORMAT_V2, LOG_FORMAT_V1};

/// The file inside the data directory.
pub const FILE_NAME: &str = "recordsync.redb";

/// Version of the table layout. Bumped when tables are added, renamed or re-keyed, so
/// that an older build refuses a directory it would misread instead of damaging it.
///
/// 2: journal entries go to `log` (schema 1 had only `journal`).
pub const SCHEMA_VERSION: u64 = 2;

const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("records");
const JOURNAL: TableDefinition<&[u8], &[u8]> = TableDefinition::new("journal");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const SCHEMA_KEY: &str = "schema_version";

/// Records and journals in `<dir>/recordsync.redb`.
///
/// Cheap to share: clone the `Arc` it is wrapped in. Only one `EmbeddedStore` (in any
/// process) can have a directory open at a time; redb locks the file.
///
/// After a failed write to the file (disk full, I/O error) redb refuses every further
/// commit, and reads that miss its cache, until the file is reopened; those calls return
/// [`StoreError::Io`] saying so. The server should then report itself unhealthy and
/// restart, which resumes from the last committed transaction (the
/// `disk_full_fails_commits_with_an_actionable_error` test shows it).
#[derive(Debug)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    file: PathBuf,
}

impl EmbeddedStore {
    /// Opens the store in `dir`, creating the directory and the file if needed.
    ///
    /// Blocks: after a crash redb re-checks the whole file before it opens (it logs
    /// progress at `info`), which on a large file takes a while. Call it before serving,
    /// or from `spawn_blocking`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let open_err = |path: &Path, reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| {
            open_err(
                dir,
                format!("{e} (check that the directory can be created and written by this user)"),
            )
        })?;
        let file = dir.join(FILE_NAME);

        let mut builder = Database::builder();
        builder.set_repair_callback(|session| {
            tracing::info!(
                progress = format!("{:.0}%", session.progress() * 100.0),
                "repairing the data file after an unclean shutdown"
            );
        });
        // redb trusts a cleanly closed file and may panic on one damaged behind its back;
        // a panic while opening must become an error the operator can read, not a crash.
        let opened =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| builder.create(&file)));
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(e)) => return Err(open_err(&file, describe_open_error(e))),
            Err(panic) => {
                return Err(open_err(
                    &file,
                    format!(
                        "the file is damaged (redb failed reading it: {}); restore it from a backup",
                        panic_message(&panic)
                    ),
                ));
            }
        };

        init_schema(&db).map_err(|e| open_err(&file, e))?;
        Ok(Self {
            db: Arc::new(db),
            file,
        })
    }

    /// The database file, for log messages and backups.
    pub fn file(&self) -> &Path {
        &self.file
    }

    async fn blocking<T, F>(&self, what: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        match tokio::task::spawn_blocking(move || f(&db)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => {
                let panic = e.into_panic();
                Err(StoreError::Io(format!(
                    "{what}: the storage engine failed ({}); the data file may be damaged, \
                     restart recordsync so that it re-checks the file",
                    panic_message(&panic)
                )))
            }
            Err(_) => Err(StoreError::Closed),
        }
    }
}

fn describe_open_error(e: DatabaseError) -> String {
    match e {
        DatabaseError::DatabaseAlreadyOpen => "the file is already in use by another recordsync \
             process (or another store in this process); only one may use a data directory"
            .to_owned(),
        DatabaseError::UpgradeRequired(v) => format!(
            "the file is in redb file format {v}, which this build cannot read; \
             open it with the recordsync version that wrote it and export the data"
        ),
        DatabaseError::Storage(redb::StorageError::Io(io)) => match io.kind() {
            std::io::ErrorKind::InvalidData => format!(
                "{io}: the file is not a recordsync data file; move it away or point \
                 recordsync at another directory"
            ),
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                format!("{io} (the directory and file must be writable by this user)")
            }
            _ => format!("{io} (check the disk and the system log)"),
        },
        DatabaseError::Storage(redb::StorageError::Corrupted(msg)) => {
            format!("the file is damaged ({msg}); restore it from a backup")
        }
        other => other.to_string(),
    }
}

fn init_schema(db: &Database) -> Result<(), String> {
    let fail = |e: redb::Error| format!("cannot initialise the tables: {e}");
    let txn = db.begin_write().map_err(|e| fail(e.into()))?;
    {
        txn.open_table(RECORDS).map_err(|e| fail(e.into()))?;
        txn.open_table(JOURNAL).map_err(|e| fail(e.into()))?;
        txn.open_table(LOG).map_err(|e| fail(e.into()))?;
        let mut meta = txn.open_table(META).map_err(|e| fail(e.into()))?;
        let stored = meta
            .get(SCHEMA_KEY)
            .map_err(|e| fail(e.into()))?
            .map(|v| v.value());
        match stored {
            // Schema 1 differs only by the missing `log`, created above: its records and
            // journal entries are read as they are.
            None | Some(1) => {
                meta.insert(SCHEMA_KEY, SCHEMA_VERSION)
                    .map_err(|e| fail(e.into()))?;
            }
            Some(v) if v == SCHEMA_VERSION => {}
            Some(v) => {
                return Err(format!(
                    "the data directory has schema version {v}, this build knows only \
                     {SCHEMA_VERSION}; it was written by a newer recordsync, run that one"
                ));
            }
        }
    }
    txn.commit().map_err(|e| fail(e.into()))
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_owned()
    }
}

/// Turns a redb error into ours. `name` is the record being read, so that damage found
/// by redb itself is reported against it like damage found by our checksums.
fn db_error(what: &str, name: Option<&str>, e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Corrupted(msg) => match name {
            Some(name) => codec::corrupt(name, format!("{what}: the data file is damaged: {msg}")),
            None => StoreError::Io(format!(
                "{what}: the data file is damaged ({msg}); restore it from a backup"
            )),
        },
        redb::Error::PreviousIo => StoreError::Io(format!(
            "{what}: an earlier write to the data file failed, so the store refuses further \
             use; check the disk (space, errors in the system log) and restart recordsync, \
             which resumes from the last committed state"
        )),
        redb::Error::Io(io) => StoreError::Io(format!(
            "{what}: {io} (check free disk space and the system log for disk errors)"
        )),
        other => StoreError::Io(format!("{what}: {other}")),
    }
}

/// The version the record has in the transaction and the key of its newest `log` entry
/// (0: none), `None` when it does not exist.
fn stored_head(
    records: &impl ReadableTable<&'static [u8], &'static [u8]>,
    name: &str,
) -> Result<Option<(u64, u64)>, StoreError> {
    let guard = records
        .get(codec::record_key(name))
        .map_err(|e| db_error("reading a record", Some(name), e))?;
    guard
        .map(|value| codec::decode_record_head(name, value.value()))
        .transpose()
}

fn journal_bounds(name: &str, from: u64, to: u64) -> (Vec<u8>, Vec<u8>) {
    (codec::journal_key(name, from), codec::journal_key(name, to))
}

fn commit_blocking(db: &Database, batch: &[Write]) -> Result<Vec<WriteOutcome>, StoreError> {
    let fail = |e: redb::Error| db_error("committing writes", None, e);
    let mut txn = db.begin_write().map_err(|e| fail(e.into()))?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| StoreError::Io(format!("committing writes: {e}")))?;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut changed = false;
    {
        let mut records = txn.open_table(RECORDS).map_err(|e| fail(e.into()))?;
        let mut journal = txn.open_table(JOURNAL).map_err(|e| fail(e.into()))?;
        let mut log = txn.open_table(LOG).map_err(|e| fail(e.into()))?;
        // After the newest entries were deleted with their record their keys are taken
        // again, which is safe: nothing links to an entry of a deleted record.
        let mut next_seq = match log.last().map_err(|e| fail(e.into()))? {
            Some((key, _)) => key.value() + 1,
            None => 1,
        };
        // State written earlier in this batch (version, newest log entry), so chained
        // writes to one record need not re-read and re-verify the value just written.
        let mut written: HashMap<&str, Option<(u64, u64)>> = HashMap::new();
        // Records with a conflict earlier in this batch: their later writes conflict too.
        let mut failed: HashMap<&str, Option<u64>> = HashMap::new();
        for write in batch {
            let name = write.name();
            if let Some(&current) = failed.get(name) {
                outcomes.push(WriteOutcome::Conflict { current });
                continue;
            }
            let stored = match written.get(name) {
                Some(v) => *v,
                None => stored_head(&records, name)?,
            };
            let current = stored.map(|(version, _)| version);
            match write {
                Write::Put {
                    record,
                    base_version,
                    entry,
                } => {
                    if current != *base_version {
                        failed.insert(name, current);
                        outcomes.push(WriteOutcome::Conflict { current });
                        continue;
                    }
                    let mut log_head = stored.map_or(0, |(_, head)| head);
                    if let Some(entry) = entry {
                        let value = codec::encode_log(next_seq, name, entry, log_head);
                        log.insert(next_seq, value.as_slice())
                            .map_err(|e| fail(e.into()))?;
                        log_head = next_seq;
                        next_seq += 1;
                    }
                    let value = codec::encode_record(record, log_head);
                    records
                        .insert(codec::record_key(name), value.as_slice())
                        .map_err(|e| fail(e.into()))?;
                    written.insert(name, Some((record.version, log_head)));
                }
                Write::Delete { base_version, .. } => {
                    if current != Some(*base_version) {
                        failed.insert(name, current);
                        outcomes.push(WriteOutcome::Conflict { current });
                        continue;
                    }
                    records
                        .remove(codec::record_key(name))
                        .map_err(|e| fail(e.into()))?;
                    let mut seq = stored.map_or(0, |(_, head)| head);
                    while seq != 0 {
                        let removed = log.remove(seq).map_err(|e| fail(e.into()))?;
                        seq = log_step(name, seq, removed.as_ref().map(|v| v.value()))?.1;
                    }
                    let (lo, hi) = journal_bounds(name, 0, u64::MAX);
                    journal
                        .retain_in::<&[u8], _>(lo.as_slice()..=hi.as_slice(), |_, _| false)
                        .map_err(|e| fail(e.into()))?;
                    written.insert(name, None);
                }
            }
            changed = true;
            outcomes.push(WriteOutcome::Committed);
        }
    }
    if changed {
        txn.commit().map_err(|e| fail(e.into()))?;
    } else {
        // Nothing but conflicts: skip the fsync.
        txn.abort().map_err(|e| fail(e.into()))?;
    }
    Ok(outcomes)
}

fn get_blocking(db: &Database, name: &str) -> Result<Option<StoredRecord>, StoreError> {
    let fail = |e: redb::Error| db_error("reading a record", Some(name), e);
    let txn = db.begin_read().map_err(|e| fail(e.into()))?;
    let records = txn.open_table(RECORDS).map_err(|e| fail(e.into()))?;
    let guard = records
        .get(codec::record_key(name))
        .map_err(|e| fail(e.into()))?;
    guard
        .map(|value| codec::decode_record(name, value.value()))
        .transpose()
}

/// Decodes `name`'s log entry `seq`, found through its links; returns it with the key of
/// the previous one. Links point only backwards, so a damaged one cannot make a loop.
fn log_step(name: &str, seq: u64, value: Option<&[u8]>) -> Result<(JournalEntry, u64), StoreError> {
    let Some(value) = value else {
        return Err(codec::corrupt(
            name,
            format!("journal entry {seq} is missing from the log"),
        ));
    };
    let (entry, prev) = codec::decode_log(name, seq, value)?;
    if prev >= seq {
        return Err(codec::corrupt(
            name,
            format!("journal entry {seq} in the log links forward, to {prev}"),
        ));
    }
    Ok((entry, prev))
}

fn journal_blocking(
    db: &Database,
    name: &str,
    from: u64,
    to: u64,
) -> Result<Vec<JournalEntry>, StoreError> {
    let fail = |e: redb::Error| db_error("reading a journal", Some(name), e);
    let txn = db.begin_read().map_err(|e| fail(e.into()))?;
    // Entries written under schema 1, all older than any in the log.
    let journal = txn.open_table(JOURNAL).map_err(|e| fail(e.into()))?;
    let (lo, hi) = journal_bounds(name, from, to);
    let mut entries = Vec::new();
    for item in journal
        .range::<&[u8]>(lo.as_slice()..=hi.as_slice())
        .map_err(|e| fail(e.into()))?
    {
        let (key, value) = item.map_err(|e| fail(e.into()))?;
        entries.push(codec::decode_journal(name, key.value(), value.value())?);
    }
    // The log, newest first along the record's links, down to `from`.
    let records = txn.open_table(RECORDS).map_err(|e| fail(e.into()))?;
    let log = txn.open_table(LOG).map_err(|e| fail(e.into()))?;
    let mut seq = stored_head(&records, name)?.map_or(0, |(_, head)| head);
    let mut newer = Vec::new();
    while seq != 0 {
        let guard = log.get(seq).map_err(|e| fail(e.into()))?;
        let (entry, prev) = log_step(name, seq, guard.as_ref().map(|v| v.value()))?;
        // Versions fall along the links: nothing older than `from` can follow.
        let version = entry.version;
        if version < from {
            break;
        }
        if version <= to {
            newer.push(entry);
        }
        if version == from {
            break;
        }
        seq = prev;
    }
    entries.extend(newer.into_iter().rev());
    Ok(entries)
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, name: &str) -> Result<Option<StoredRecord>, StoreError> {
        let name = name.to_owned();
        self.blocking("reading a record", move |db| get_blocking(db, &name))
            .await
    }

    async fn commit(&self, batch: &[Write]) -> Result<Vec<WriteOutcome>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // The blocking pool needs owned data; one copy of the batch is cheap next to the
        // fsync it waits for.
        let batch = batch.to_vec();
        self.blocking("committing writes", move |db| commit_blocking(db, &batch))
            .await
    }

    async fn journal(
        &self,
        name: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        let name = name.to_owned();
        self.blocking("reading a journal", move |db| {
            journal_blocking(db, &name, from, to)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, version: u64, data: &str) -> StoredRecord {
        StoredRecord {
            name: name.to_owned(),
            version,
            data: data.to_owned(),
            ctime: 1,
            mtime: 2,
        }
    }

    fn put(name: &str, version: u64, data: &str) -> Write {
        Write::Put {
            record: record(name, version, data),
            base_version: version.checked_sub(1).filter(|_| version > 1),
            entry: Some(JournalEntry {
                version,
                time: 3,
                op: format!(r#"{{"v":{version}}}"#),
            }),
        }
    }

    /// Writes raw bytes under a key, going around the codec, as damage would.
    fn poke(dir: &Path, table: TableDefinition<&[u8], &[u8]>, key: &[u8], value: &[u8]) {
        let db = Database::open(dir.join(FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(table).unwrap().insert(key, value).unwrap();
        txn.commit().unwrap();
    }

    fn poke_log(dir: &Path, seq: u64, value: &[u8]) {
        let db = Database::open(dir.join(FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(LOG).unwrap().insert(seq, value).unwrap();
        txn.commit().unwrap();
    }

    #[tokio::test]
    async fn damaged_log_entries_are_reported_against_their_record() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            let batch: Vec<Write> = (1..=3).map(|v| put("r", v, "{}")).collect();
            store.commit(&batch).await.unwrap();
            store.commit(&[put("other", 1, "{}")]).await.unwrap();
        }
        // Entry 2 (r's version 2) damaged: ranges that stop above it still read.
        poke_log(dir.path(), 2, b"\x01\0\0\0\0");
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(store.journal("r", 3, 3).await.unwrap().len(), 1);
        let reason = assert_corrupt(store.journal("r", 2, 3).await, "r");
        assert!(reason.contains("entry 2"), "{reason}");
        assert_corrupt(store.journal("r", 1, 1).await, "r");
        drop(store);

        // An entry that belongs to another record (a damaged link) is caught too.
        let other = codec::encode_log(
            2,
            "other",
            &JournalEntry {
                version: 2,
                time: 3,
                op: "{}".into(),
            },
            1,
        );
        poke_log(dir.path(), 2, &other);
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let reason = assert_corrupt(store.journal("r", 0, 3).await, "r");
        assert!(reason.contains("another record"), "{reason}");
        // Deleting walks the same links, so it fails the batch and changes nothing.
        let delete = Write::Delete {
            name: "r".into(),
            base_version: 3,
        };
        assert_corrupt(store.commit(&[delete]).await, "r");
        assert_eq!(store.get("r").await.unwrap().unwrap().version, 3);
    }

    /// A file written by schema 1 (journal entries in `journal`, V1 record values) opens,
    /// reads, takes new writes into the log and deletes across both tables.
    #[tokio::test]
    async fn schema_1_files_are_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut records = txn.open_table(RECORDS).unwrap();
                let mut journal = txn.open_table(JOURNAL).unwrap();
                for name in ["old", "gone"] {
                    let r = record(name, 2, r#"{"v":2}"#);
                    records
                        .insert(
                            codec::record_key(name),
                            codec::encode_record_v1(&r).as_slice(),
                        )
                        .unwrap();
                    for v in 1..=2 {
                        let entry = JournalEntry {
                            version: v,
                            time: v,
                            op: format!("{v}"),
                        };
                        let (key, value) = codec::encode_journal(name, &entry);
                        journal.insert(key.as_slice(), value.as_slice()).unwrap();
                    }
                }
                txn.open_table(META).unwrap().insert(SCHEMA_KEY, 1).unwrap();
            }
            txn.commit().unwrap();
        }

        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(
            store.get("old").await.unwrap().unwrap(),
            record("old", 2, r#"{"v":2}"#)
        );
        let versions = |j: Vec<JournalEntry>| j.iter().map(|e| e.version).collect::<Vec<_>>();
        assert_eq!(versions(store.journal("old", 0, 9).await.unwrap()), [1, 2]);
        store
            .commit(&[put("old", 3, "{}"), put("old", 4, "{}")])
            .await
            .unwrap();
        assert_eq!(
            versions(store.journal("old", 0, 9).await.unwrap()),
            [1, 2, 3, 4]
        );
        assert_eq!(versions(store.journal("old", 2, 3).await.unwrap()), [2, 3]);
        store.commit(&[put("gone", 3, "{}")]).await.unwrap();
        store
            .commit(&[Write::Delete {
                name: "gone".into(),
                base_version: 3,
            }])
            .await
            .unwrap();
        assert!(store.journal("gone", 0, 9).await.unwrap().is_empty());
        drop(store);

        let db = Database::open(dir.path().join(FILE_NAME)).unwrap();
        let txn = db.begin_read().unwrap();
        let schema = txn
            .open_table(META)
            .unwrap()
            .get(SCHEMA_KEY)
            .unwrap()
            .unwrap()
            .value();
        assert_eq!(schema, SCHEMA_VERSION);
        // Only "old"'s two new entries are left in the log.
        use redb::ReadableTableMetadata;
        assert_eq!(txn.open_table(LOG).unwrap().len().unwrap(), 2);
    }

    fn assert_corrupt(result: Result<impl std::fmt::Debug, StoreError>, name: &str) -> String {
        match result {
            Err(StoreError::Corrupt { name: n, reason }) => {
                assert_eq!(n, name);
                reason
            }
            other => panic!("expected Corrupt for {name:?}, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn damaged_values_are_reported_against_their_record() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            store
                .commit(&[
                    put("good", 1, "{}"),
                    put("bad", 1, "{}"),
                    put("bad", 2, "{}"),
                ])
                .await
                .unwrap();
        }
        poke(dir.path(), RECORDS, b"bad", b"\x02garbage");
        // Log keys follow the batch: good v1 = 1, bad v1 = 2, bad v2 = 3.
        poke_log(dir.path(), 2, b"\x01\0\0\0\0");
        poke(dir.path(), RECORDS, b"short", b"");
        poke(dir.path(), RECORDS, b"future", &[7; 40]);

        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(store.get("good").await.unwrap().unwrap().version, 1);
        assert_corrupt(store.get("bad").await, "bad");
        assert_corrupt(store.get("short").await, "short");
        let reason = assert_corrupt(store.get("future").await, "future");
        assert!(reason.contains("newer recordsync"), "{reason}");
        let reason = assert_corrupt(store.journal("bad", 1, 2).await, "bad");
        assert!(reason.contains("record"), "{reason}");

        // A write whose base check needs the damaged record fails the batch, which
        // leaves everything as it was.
        let err = store
            .commit(&[put("good", 2, "{}"), put("bad", 3, "{}")])
            .await;
        assert_corrupt(err, "bad");
        assert_eq!(store.get("good").await.unwrap().unwrap().version, 1);
    }

    #[tokio::test]
    async fn bytes_damaged_in_the_file_are_caught_by_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let marker = "MARKER-7f3a9c-the-stored-json-text";
        {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            let data = format!(r#"{{"m":"{marker}"}}"#);
            store.commit(&[put("victim", 1, &data)]).await.unwrap();
        }
        let file = dir.path().join(FILE_NAME);
        let mut bytes = std::fs::read(&file).unwrap();
        let mut hits = 0;
        let mut at = 0;
        while let Some(pos) = find(&bytes[at..], marker.as_bytes()) {
            // Still valid UTF-8 and JSON: only the checksum can tell.
            bytes[at + pos] = b'N';
            at += pos + 1;
            hits += 1;
        }
        assert!(hits > 0, "marker not found in the file");
        std::fs::write(&file, &bytes).unwrap();

        let store = EmbeddedStore::open(dir.path()).unwrap();
        let reason = assert_corrupt(store.get("victim").await, "victim");
        assert!(reason.contains("checksum"), "{reason}");
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    #[test]
    fn newer_schema_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        drop(EmbeddedStore::open(dir.path()).unwrap());
        {
            let db = Database::open(dir.path().join(FILE_NAME)).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(SCHEMA_KEY, SCHEMA_VERSION + 1)
                .unwrap();
            txn.commit().unwrap();
        }
        match EmbeddedStore::open(dir.path()) {
            Err(StoreError::Open { path, reason }) => {
                assert!(path.ends_with(FILE_NAME), "{path}");
                assert!(reason.contains("newer recordsync"), "{reason}");
            }
            other => panic!("expected Open error, got {other:?}"),
        }
    }

    /// Whether reads should skip `spawn_blocking`: run with
    /// `cargo test -p recordsync-store --release --lib read_latency -- --ignored --nocapture`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "measurement, not a test"]
    async fn read_latency_inline_vs_spawn_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let names: Vec<String> = (0..1000).map(|i| format!("r{i}")).collect();
        let batch: Vec<Write> = names
            .iter()
            .map(|n| put(n, 1, r#"{"a":1,"b":"some text of a typical size"}"#))
            .collect();
        store.commit(&batch).await.unwrap();
        let n = 50_000;
        for concurrency in [1usize, 16] {
            for inline in [true, false] {
                let start = std::time::Instant::now();
                let tasks: Vec<_> = (0..concurrency)
                    .map(|t| {
                        let store = store.clone();
                        let names = names.clone();
                        tokio::spawn(async move {
                            for i in 0..n / concurrency {
                                let name = &names[(i * 7 + t) % names.len()];
                                let r = if inline {
                                    get_blocking(&store.db, name)
                                } else {
                                    store.get(name).await
                                };
                                assert!(r.unwrap().is_some());
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                let elapsed = start.elapsed();
                println!(
                    "get, {concurrency} task(s), {}: {:.1} µs each, {:.0}/s",
                    if inline { "inline" } else { "spawn_blocking" },
                    elapsed.as_secs_f64() * 1e6 / n as f64,
                    n as f64 / elapsed.as_secs_f64()
                );
            }
        }
    }
}
