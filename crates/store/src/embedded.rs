//! The default store: a redb file and a write-ahead log in the data directory.
//!
//! Why redb: pure Rust (no C toolchain, no separate server), copy-on-write B-trees with
//! checksummed commit slots, so a crash at any point leaves the last durable transaction
//! intact. It is the store of record: every read is served from it.
//!
//! ## Why a write-ahead log in front of it
//!
//! A durable redb commit writes each B-tree page it changed (a dozen scattered 4 KiB pages
//! for a typical batch: the records' leaves, the tables' roots, the allocator's state) and
//! then syncs them; that sync cost about 1 ms at p50 on the project's machine, where a
//! sync of one appended block took 0.27 ms and of an overwritten block 0.14 ms. With one
//! group commit in flight at a time, that sync bounds how fast writes are acknowledged.
//! So a batch is made durable by appending it to a log of our own (`recordsync.wal`,
//! `src/embedded/wal.rs`) and syncing that sequential append, while redb takes the same
//! batch without syncing; redb is made durable now and then by a *checkpoint*.
//!
//! ## Commit protocol (one batch at a time, under the writer lock)
//!
//! 1. Begin a redb write transaction with [`Durability::None`], check every write's
//!    condition (`base_version`) and apply it. A batch of nothing but conflicts stops
//!    here: aborted, no log frame, no sync.
//! 2. Record the frame's log sequence number (LSN) in `meta` (`wal_applied_lsn`) in the
//!    same transaction: redb's state then always says exactly which frames it includes.
//! 3. Append the batch's stored writes (with their conditions) to the log as one frame and
//!    `fdatasync` it. From here the batch survives a crash.
//! 4. Commit the redb transaction, without a sync: readers see it at once.
//! 5. Answer the caller.
//!
//! If step 3 fails (disk full, I/O error) the batch fails and the store refuses every
//! further commit until a retry succeeds (`resume.rs`): after a failed write or sync the
//! kernel may have dropped the unwritten pages and reports the failure only once, so the
//! frame's bytes are never trusted: a retry zeroes them before the log takes another
//! frame. If step 4 fails, likewise, and the retry reopens redb, which replays the frame.
//! A failed write to redb's file anywhere else (a checkpoint, pages written out of its
//! cache) is handled the same way. The error names the cause; a full disk is
//! [`StoreError::Full`].
//!
//! ## Checkpoints
//!
//! A checkpoint is a redb commit with [`Durability::Immediate`] that also records in
//! `meta` a new log cycle: `wal_epoch` + 1, starting at LSN `wal_first_lsn` = the next
//! frame's. Once it returns, everything in the log is in redb's durable state, so the next
//! frame is written at the start of the log file again, stamped with the new epoch; what
//! remains of the old cycle further on is recognised as old by its epoch and never read
//! as new. A crash before the checkpoint's commit is durable leaves the previous epoch in
//! `meta` and the old frames in the log, which recovery replays; a crash after it leaves
//! the new epoch, and the old frames are ignored.
//!
//! A background thread checkpoints once [`EmbeddedOptions::checkpoint_interval`] has
//! passed since the first frame after the last checkpoint, or at once when the cycle holds
//! [`EmbeddedOptions::checkpoint_bytes`]. Dropping the store (a clean shutdown)
//! checkpoints, so that the next open has nothing to replay. The defaults and why:
//! see [`EmbeddedOptions`].
//!
//! ## Recovery
//!
//! Opening reads `meta` (`wal_epoch`, `wal_first_lsn`, `wal_applied_lsn`) from redb's
//! durable state, then reads the log from its start: frames of that epoch with LSNs
//! counting up from `wal_first_lsn`, to the first frame that is cut short or old (see
//! `wal.rs`). Frames up to `wal_applied_lsn` are in redb already and skipped (redb keeps
//! its non-durable commits across a clean close); each later one is applied like a
//! commit, and every one of its writes must succeed: a conflict means the log and the data
//! file disagree, and opening fails with an error naming the log rather than guess. So
//! does a log that ends before `wal_applied_lsn`. Replay does not checkpoint, and the
//! policy starts with the first commit after it: the store carries on appending to the
//! same cycle, so opening a store whose disk filled up writes nothing and serves reads.
//!
//! Then, before the store takes writes, opening prunes every record whose history
//! exceeds the retention settings and compacts the file if that (or the replay) freed
//! much of it (`src/embedded/reclaim.rs`: why that is crash safe, and the threshold).
//! This writes only when there is history to prune; if it fails, the store opens
//! without it and the next start tries again.
//!
//! ## Tables (`src/embedded/codec.rs` documents the bytes)
//!
//! - `records`: record name → version, ctime, mtime, key of its newest `log` entry,
//!   `created`, history start, tombstone flag, JSON data. A delete leaves a tombstone
//!   (data `null`) that keeps the version; nothing removes a row.
//! - `log`:     sequence number → name, version, time, author, origin, op JSON, key of the
//!   record's previous entry. Appended in commit order, so a commit touches the end of
//!   the log only, however many records it writes (with one table keyed by record, a
//!   commit of 100 records' writes rewrote about 100 pages, and the fsync cost grows with
//!   them). This is the journal, not the write-ahead log.
//! - `after_milestone`: (name, milestone version), keyed as `journal` is
//!   (`codec::journal_key`) → the `log` key (a redb `u64`) of the record's entry after
//!   that milestone: where a prune to the milestone cuts the chain. Written by the
//!   record's write after the one that stored the milestone (its records row says so,
//!   `codec::Head::milestone_at_head`), one row per `milestone_every` writes, and
//!   deleted by the prune past it. An index of every entry, one row per write, made
//!   durable writes 28 % slower (every record written in a commit dirtied a page of
//!   it: `bench/NOTES.md`); it was never released, and opening drops it (`log_index`).
//!   Without a row for its start (a file upgraded from schema 3), a prune walks down
//!   the links from the newest entry instead.
//! - `milestones`: (name, version) → time of that version's entry, the record's JSON data
//!   at that version: one wherever a write crosses a multiple of
//!   [`History::milestone_every`].
//! - `journal`: (name, version) → time, op JSON: entries written by schema 1 and the
//!   create entries at version 0 that the upgrade to schema 4 adds (`upgrade.rs`); read
//!   and pruned, never written otherwise. Its entries are older than any in `log`.
//! - `pruned_chains`: `log` key of the newest entry of a chain a prune cut off → the
//!   record's name and new history start: entries that no walk reaches any more, to be
//!   deleted by the next checkpoint (`pruned.rs`).
//! - `meta`:    `schema_version` → [`SCHEMA_VERSION`], checked on open; the write-ahead
//!   log's `wal_id`, `wal_epoch`, `wal_first_lsn` and `wal_applied_lsn` (above);
//!   `reclaim_pending`, the journal entries pruned on opening and not yet looked at for
//!   compaction (`reclaim.rs`; absent when none, and ignored by builds that predate it).
//!
//! ## History and retention
//!
//! As in every store ([`History`], set by [`EmbeddedOptions::history`]): a commit stores
//! a milestone where a write crosses a multiple of `milestone_every`, then moves the
//! record's history start as far as retention allows (`prune`): it makes the entry
//! after the new start (found by its `after_milestone` row) link to 0, so that every
//! walk ends there, notes the `log` entries below it in `pruned_chains` (at most once
//! per `History::prune_step` writes), and deletes the milestones below the start. The
//! next checkpoint deletes the noted entries of every record together, in key order
//! (`src/embedded/pruned.rs`: why not in the commit, and why that is safe). redb reuses the freed
//! pages for later writes, so the file stops growing once a record's history is at its
//! bound (`bench/NOTES.md` has the figures). History kept beyond the settings by an
//! earlier run (keep everything, or the release before issue 13) is pruned when the
//! store opens, and the file compacted (`reclaim.rs`).
//!
//! ## Memory
//!
//! redb's page cache is the store's only memory that grows with the data; it is bounded
//! by [`EmbeddedOptions::cache_size`] (64 MiB unless configured; see `options.rs`).
//!
//! redb's calls block on disk I/O, so every call runs on tokio's blocking pool and the
//! async runtime's workers never wait for the disk.

mod checkpoint;
mod codec;
#[cfg(any(test, feature = "testing"))]
pub mod faults;
mod options;
mod pruned;
mod reclaim;
mod recovery;
mod resume;
mod upgrade;
mod wal;

/// Crash points exist in test builds only (`faults.rs`); elsewhere they compile to nothing.
#[cfg(not(any(test, feature = "testing")))]
mod faults {
    #[inline(always)]
    pub fn check(_point: &str) {}
    #[inline(always)]
    pub fn check_later(_point: &'static str) {}
}

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};

use crate::dump::{KeptHistory, KeptMilestone, RecordDump};
use crate::error::{Cause, StoreError};
use crate::field_index::{FieldIndexes, Plan};
use crate::history::{History, Milestone};
use crate::listing;
use crate::query;
use crate::store::{JournalEntry, Store, StoredRecord, Write, WriteOutcome};
use recordsync_core::query::{Query, Selection};
use serde_json::Value;

pub use codec::{FORMAT_V1, FORMAT_V2, FORMAT_V3, LOG_FORMAT_V1, LOG_FORMAT_V2};
pub use options::EmbeddedOptions;
pub use resume::{PROBE_BYTES, PROBE_FILE_NAME};
pub use wal::{WAL_FILE_NAME, WAL_FORMAT_V1};

use resume::{Failure, Part};
use wal::Wal;

/// The file inside the data directory.
pub const FILE_NAME: &str = "recordsync.redb";

/// Version of the table layout. Bumped when tables are added, renamed or re-keyed, or
/// when the files' meaning changes, so that an older build refuses a directory it would
/// misread instead of damaging it.
///
/// 2: journal entries go to `log` (schema 1 had only `journal`).
/// 3: the write-ahead log: redb alone is no longer the whole truth (a build of schema 2
///    would ignore the log and lose what it holds), and `meta` has its `wal_*` keys.
/// 4: history across deletes (issue 13): tombstones, records of format V3 (`created`,
///    history start), `log` entries with author and origin, `milestones`, and a create
///    entry at version 0 in `journal` for every record older than the upgrade, and
///    `after_milestone` and `pruned_chains` (added before schema 4 was released, hence
///    under the same number, as was `log_index` before them, which opening drops).
pub const SCHEMA_VERSION: u64 = 4;

const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("records");
const JOURNAL: TableDefinition<&[u8], &[u8]> = TableDefinition::new("journal");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const MILESTONES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("milestones");
/// (name, milestone version) → `log` key of the entry after it (module doc, "Tables").
const AFTER_MILESTONE: TableDefinition<&[u8], u64> = TableDefinition::new("after_milestone");
/// An index of every `log` entry that builds of schema 4 wrote before its release;
/// dropped on opening (`init_schema`).
const LOG_INDEX_UNRELEASED: TableDefinition<&[u8], u64> = TableDefinition::new("log_index");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const SCHEMA_KEY: &str = "schema_version";
/// The log file's id (its header carries it too).
const WAL_ID_KEY: &str = "wal_id";
/// The log cycle the last checkpoint started.
const WAL_EPOCH_KEY: &str = "wal_epoch";
/// The LSN of that cycle's first frame.
const WAL_FIRST_LSN_KEY: &str = "wal_first_lsn";
/// The LSN of the last frame whose batch this state of redb includes (0: none).
const WAL_APPLIED_LSN_KEY: &str = "wal_applied_lsn";

/// Records and journals in `<dir>/recordsync.redb`, made durable through the write-ahead
/// log `<dir>/recordsync.wal` (see the module doc).
///
/// Cheap to share: clone the `Arc` it is wrapped in. Only one `EmbeddedStore` (in any
/// process) can have a directory open at a time; redb locks the file.
///
/// After a failed write to the log or the redb file (disk full, I/O error) the store
/// refuses every further commit, and [`ping`](Store::ping) fails, with an error that
/// names the cause ([`StoreError::Full`] for a full disk, else [`StoreError::Io`]), until
/// a retry finds it can write again (`resume.rs`): then it takes writes again by itself,
/// with every acknowledged write (`tests/embedded.rs`, `disk_full_…`, fills a small tmpfs
/// and frees it again).
#[derive(Debug)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
    /// The checkpoint thread, joined on drop: it holds the store while it checkpoints,
    /// and the directory must be free again once the store is dropped.
    checkpointer: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug)]
struct Inner {
    /// The redb file. `None` only while a retry reopens it after a failed write, and if
    /// that failed (`resume.rs`); then [`failed`](Self::failed) says why.
    db: RwLock<Option<Database>>,
    /// The data directory.
    dir: PathBuf,
    file: PathBuf,
    options: EmbeddedOptions,
    /// Commits, checkpoints and retries, one at a time. Taken before `db`.
    writer: Mutex<Writer>,
    /// Field indexes for queries (`field_index.rs`), taken after `db`. A commit holds
    /// them across redb's commit and brings them up to date before letting go, and a
    /// query begins its read transaction while it holds them: what a query reads is
    /// always the state the indexes describe. Cleared when the data file is reopened
    /// after a failed write (the log's replay does not go through them).
    indexes: Mutex<FieldIndexes>,
    /// A copy of the error of `Writer::failure`, for reads and health checks, which must
    /// not wait for a commit's sync.
    failed: Mutex<Option<StoreError>>,
    /// Wakes the checkpoint thread.
    checkpointer: Arc<checkpoint::Signal>,
    checkpoints: AtomicU64,
    /// Time spent in checkpoints, in total and the longest, in microseconds.
    checkpoint_micros: AtomicU64,
    longest_checkpoint_micros: AtomicU64,
    replayed_frames: AtomicU64,
    replayed_writes: AtomicU64,
}

/// What commits and checkpoints share.
#[derive(Debug)]
struct Writer {
    wal: Wal,
    /// Why the store refuses writes, once a write to the log or to redb has failed, and
    /// what a retry must repair (`resume.rs`).
    failure: Option<Failure>,
    /// When the first frame after the last checkpoint was appended (`None`: none since,
    /// or only frames replayed on opening).
    dirty_since: Option<Instant>,
    /// Test hook: the next commit fails after its frame was synced, before redb commits.
    #[cfg(test)]
    fail_next_redb_commit: bool,
}

/// What [`EmbeddedStore::stats`] reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmbeddedStats {
    /// Log frames applied to redb when the store was opened (and when it reopened redb
    /// after a failed write).
    pub replayed_frames: u64,
    /// Writes in those frames.
    pub replayed_writes: u64,
    /// Checkpoints since the store was opened.
    pub checkpoints: u64,
    /// Time spent in them (commits wait meanwhile), in total and the longest.
    pub checkpoint_time: std::time::Duration,
    pub longest_checkpoint: std::time::Duration,
    /// Bytes of frames in the log since the last checkpoint.
    pub log_bytes: u64,
    /// The log file's size.
    pub log_file_bytes: u64,
    /// The LSN the next frame gets.
    pub next_lsn: u64,
    /// The current log cycle.
    pub epoch: u64,
}

impl EmbeddedStore {
    /// Opens the store in `dir` with the default [`EmbeddedOptions`], creating the
    /// directory and the files if needed.
    ///
    /// Blocks: after a crash redb re-checks the whole file before it opens (it logs
    /// progress at `info`), and the log's frames since the last checkpoint are replayed.
    /// Call it before serving, or from `spawn_blocking`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, EmbeddedOptions::default())
    }

    /// Like [`open`](Self::open), with other settings (checkpoints, cache size, retries).
    pub fn open_with(dir: &Path, options: EmbeddedOptions) -> Result<Self, StoreError> {
        let open_err = |path: &Path, reason: Cause| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| {
            open_err(
                dir,
                Cause::with_source(
                    format!(
                        "{e} (check that the directory can be created and written by this user)"
                    ),
                    e,
                ),
            )
        })?;
        let file = dir.join(FILE_NAME);
        let wal_path = dir.join(WAL_FILE_NAME);
        // A probe left by a crash in the middle of a retry (`resume.rs`) takes space.
        let _ = std::fs::remove_file(dir.join(PROBE_FILE_NAME));
        let started = Instant::now();
        let (mut db, mut wal, mut replayed) = open_files(&file, &options)?;
        if let Err(e) = reclaim::reclaim(&mut db, &file, &options.history) {
            tracing::warn!(
                file = %file.display(),
                error = %e,
                "reclaiming old history on opening failed; opening without it (commits \
                 still prune the records they write, and the next start tries again)"
            );
            // After a failed write redb refuses all work until the file is opened again;
            // whatever of the sweep was not durable is simply not done.
            drop(db);
            drop(wal);
            (db, wal, replayed) = open_files(&file, &options)?;
        }
        if replayed.frames > 0 {
            tracing::info!(
                log = %wal_path.display(),
                frames = replayed.frames,
                writes = replayed.writes,
                millis = started.elapsed().as_millis() as u64,
                "replayed the write-ahead log after an unclean shutdown"
            );
        }
        let checkpointer = Arc::new(checkpoint::Signal::default());
        let inner = Arc::new(Inner {
            db: RwLock::new(Some(db)),
            dir: dir.to_owned(),
            file,
            options,
            writer: Mutex::new(Writer {
                wal,
                failure: None,
                dirty_since: None,
                #[cfg(test)]
                fail_next_redb_commit: false,
            }),
            indexes: Mutex::default(),
            failed: Mutex::new(None),
            checkpointer: checkpointer.clone(),
            checkpoints: AtomicU64::new(0),
            checkpoint_micros: AtomicU64::new(0),
            longest_checkpoint_micros: AtomicU64::new(0),
            replayed_frames: AtomicU64::new(replayed.frames),
            replayed_writes: AtomicU64::new(replayed.writes),
        });
        let thread =
            checkpoint::start_thread(Arc::downgrade(&inner), checkpointer).map_err(|e| {
                let reason = format!("cannot start the checkpoint thread: {e}");
                open_err(dir, Cause::with_source(reason, e))
            })?;
        Ok(Self {
            inner,
            checkpointer: Some(thread),
        })
    }

    /// The database file, for log messages. A backup needs the write-ahead log next to
    /// it ([`WAL_FILE_NAME`]) too, both as of the same instant (copy the directory while
    /// recordsync is stopped): the log holds the writes since the last checkpoint, and
    /// opening refuses a data file without its log.
    pub fn file(&self) -> &Path {
        &self.inner.file
    }

    /// The write-ahead log's state and what recovery and checkpoints have done.
    pub fn stats(&self) -> EmbeddedStats {
        let writer = self.inner.writer.lock();
        EmbeddedStats {
            replayed_frames: self.inner.replayed_frames.load(Ordering::Relaxed),
            replayed_writes: self.inner.replayed_writes.load(Ordering::Relaxed),
            checkpoints: self.inner.checkpoints.load(Ordering::Relaxed),
            checkpoint_time: std::time::Duration::from_micros(
                self.inner.checkpoint_micros.load(Ordering::Relaxed),
            ),
            longest_checkpoint: std::time::Duration::from_micros(
                self.inner.longest_checkpoint_micros.load(Ordering::Relaxed),
            ),
            log_bytes: writer.wal.cycle_bytes(),
            log_file_bytes: writer.wal.file_len(),
            next_lsn: writer.wal.next_lsn(),
            epoch: writer.wal.epoch(),
        }
    }

    /// Checkpoints now (see the module doc), whatever the policy says, then deletes the
    /// history pruned so far, as the checkpoint thread does (`pruned.rs`). For tests and
    /// tools; the store checkpoints by itself.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let mut writer = self.inner.writer.lock();
        self.inner.checkpoint(&mut writer)?;
        drop(writer);
        self.inner.sweep_pruned(false);
        match self.failure() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Whether the store refuses writes after a failed write, and why.
    pub fn failure(&self) -> Option<StoreError> {
        self.inner.failed.lock().clone()
    }

    async fn blocking<T, F>(&self, what: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        match tokio::task::spawn_blocking(move || f(&inner)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => {
                let panic = e.into_panic();
                Err(StoreError::Io(
                    format!(
                        "{what}: the storage engine failed ({}); the data file may be \
                         damaged, restart recordsync so that it re-checks the file",
                        panic_message(&panic)
                    )
                    .into(),
                ))
            }
            Err(_) => Err(StoreError::Closed),
        }
    }
}

impl Inner {
    /// Checkpoints (see the module doc and `checkpoint.rs`), counting it. A failure makes
    /// the store refuse writes until a retry succeeds.
    fn checkpoint(&self, writer: &mut Writer) -> Result<(), StoreError> {
        let started = Instant::now();
        let done = {
            let db = self.db.read();
            match db.as_ref() {
                Some(db) => checkpoint::checkpoint(db, &self.dir, &self.options, writer),
                None => Err(self.unavailable()),
            }
        };
        let done = match done {
            Err(e) if writer.failure.is_none() => return Err(self.fail(writer, e, Part::Redb)),
            done => done?,
        };
        if done {
            let micros = started.elapsed().as_micros() as u64;
            self.checkpoints.fetch_add(1, Ordering::Relaxed);
            self.checkpoint_micros.fetch_add(micros, Ordering::Relaxed);
            self.longest_checkpoint_micros
                .fetch_max(micros, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Why redb cannot be used now: the failure that made the store refuse writes.
    fn unavailable(&self) -> StoreError {
        self.failed.lock().clone().unwrap_or_else(|| {
            StoreError::Io("the data file is being reopened after a failed write".into())
        })
    }

    /// Runs `read` on redb. While the store refuses writes after a failure, redb may
    /// refuse reads too (it does after a failed write to its file): an I/O error is then
    /// reported as that failure, which names the cause.
    fn read<T>(
        &self,
        read: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let db = self.db.read();
        let Some(db) = db.as_ref() else {
            return Err(self.unavailable());
        };
        match read(db) {
            Err(StoreError::Io(e)) => Err(self.failed.lock().clone().unwrap_or(StoreError::Io(e))),
            result => result,
        }
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        self.inner.checkpointer.stop();
        if let Some(thread) = self.checkpointer.take()
            && thread.join().is_err()
        {
            tracing::error!("the checkpoint thread panicked");
        }
        // `inner` drops next, which checkpoints (unless a commit still runs on the
        // blocking pool for a caller that gave up waiting: then it does when that ends).
    }
}

impl Drop for Inner {
    /// A clean shutdown: checkpoint, so that the next open replays nothing. Runs once the
    /// last commit has returned (commits hold the `Inner`).
    fn drop(&mut self) {
        self.checkpointer.stop();
        let Inner {
            db,
            dir,
            options,
            writer,
            ..
        } = self;
        let writer = writer.get_mut();
        let Some(db) = db.get_mut() else {
            return;
        };
        if writer.failure.is_some() {
            return;
        }
        // The history pruned since the last checkpoint, so that the next start has none
        // to delete; the checkpoint makes it durable (or, with no frame since, redb keeps
        // it across the clean close).
        loop {
            match checkpoint::sweep_slice(db, dir, &|| false) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "deleting pruned history before closing failed");
                    break;
                }
            }
        }
        if let Err(e) = checkpoint::checkpoint(db, dir, options, writer) {
            tracing::error!(
                error = %e,
                "the last checkpoint before closing failed; the next start replays the \
                 write-ahead log instead, nothing is lost"
            );
        }
    }
}

fn describe_open_error(e: DatabaseError) -> Cause {
    let reason = match &e {
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
    };
    Cause::with_source(reason, e)
}

/// Opens (or creates) the redb file with `options`' cache size and readies its tables;
/// returns it with where the log stands. The same at start-up and when a retry reopens
/// it after a failed write (`resume.rs`).
fn open_database(
    file: &Path,
    options: &EmbeddedOptions,
) -> Result<(Database, LogMeta), StoreError> {
    let open_err = |reason: Cause| StoreError::Open {
        path: file.display().to_string(),
        reason,
    };
    let mut builder = Database::builder();
    builder.set_cache_size(options.cache_size);
    builder.set_repair_callback(|session| {
        tracing::info!(
            progress = format!("{:.0}%", session.progress() * 100.0),
            "repairing the data file after an unclean shutdown"
        );
    });
    // redb trusts a cleanly closed file and may panic on one damaged behind its back;
    // a panic while opening must become an error the operator can read, not a crash.
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| builder.create(file)));
    let db = match opened {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => return Err(open_err(describe_open_error(e))),
        Err(panic) => {
            return Err(open_err(
                format!(
                    "the file is damaged (redb failed reading it: {}); restore it from a \
                     backup",
                    panic_message(&panic)
                )
                .into(),
            ));
        }
    };
    let wal_path = file.with_file_name(WAL_FILE_NAME);
    let meta = init_schema(&db, file, &wal_path)?;
    Ok((db, meta))
}

/// Opens redb's file and the log, replays the log and upgrades the file: everything
/// opening does before `reclaim.rs`.
fn open_files(
    file: &Path,
    options: &EmbeddedOptions,
) -> Result<(Database, Wal, recovery::Replayed), StoreError> {
    let (db, meta) = open_database(file, options)?;
    let mut wal = Wal::open(&file.with_file_name(WAL_FILE_NAME), meta.id)?;
    let replayed = recovery::replay(&db, &mut wal, &meta, &options.history)?;
    if meta.upgrade {
        upgrade::upgrade(&db, file, &options.history)?;
    }
    Ok((db, wal, replayed))
}

/// Where the log stands according to redb's durable state (see the module doc).
#[derive(Debug, Clone, Copy)]
struct LogMeta {
    id: u64,
    epoch: u64,
    first_lsn: u64,
    applied_lsn: u64,
    /// The file is of schema 3 (or was of 1 or 2 and now has its log): replay may meet
    /// frames of schema 3, and then `upgrade.rs` brings it to [`SCHEMA_VERSION`].
    upgrade: bool,
}

/// Creates or upgrades the tables and `meta`, and the log with them; returns where the
/// log stands.
fn init_schema(db: &Database, file: &Path, wal_path: &Path) -> Result<LogMeta, StoreError> {
    let fail = |e: redb::Error| StoreError::Open {
        path: file.display().to_string(),
        reason: Cause::with_source(format!("cannot initialise the tables: {e}"), e),
    };
    let txn = db.begin_write().map_err(|e| fail(e.into()))?;
    let (meta, changed) = {
        txn.open_table(RECORDS).map_err(|e| fail(e.into()))?;
        txn.open_table(JOURNAL).map_err(|e| fail(e.into()))?;
        txn.open_table(LOG).map_err(|e| fail(e.into()))?;
        txn.open_table(MILESTONES).map_err(|e| fail(e.into()))?;
        txn.open_table(AFTER_MILESTONE)
            .map_err(|e| fail(e.into()))?;
        txn.open_table(pruned::PRUNED_CHAINS)
            .map_err(|e| fail(e.into()))?;
        let mut meta = txn.open_table(META).map_err(|e| fail(e.into()))?;
        let get = |meta: &redb::Table<&str, u64>, key: &str| {
            meta.get(key)
                .map(|v| v.map(|v| v.value()))
                .map_err(|e| fail(e.into()))
        };
        match get(&meta, SCHEMA_KEY)? {
            // A new file, or one of schema 1 (which differs from 2 only by the missing
            // `log`, created above: its records and journal entries are read as they are)
            // or 2 (no write-ahead log: redb holds everything, durably). A log is created
            // before `meta` says there is one, so a crash in between just repeats this.
            // Files of schema 1 and 2 become schema 3 here, and are upgraded further as
            // those of schema 3 are, after replay (`upgrade.rs`).
            schema @ (None | Some(1) | Some(2)) => {
                let log = LogMeta {
                    id: random_id(),
                    epoch: 1,
                    first_lsn: 1,
                    applied_lsn: 0,
                    upgrade: schema.is_some(),
                };
                Wal::create(wal_path, log.id)?;
                let schema = if log.upgrade { 3 } else { SCHEMA_VERSION };
                for (key, value) in [
                    (SCHEMA_KEY, schema),
                    (WAL_ID_KEY, log.id),
                    (WAL_EPOCH_KEY, log.epoch),
                    (WAL_FIRST_LSN_KEY, log.first_lsn),
                    (WAL_APPLIED_LSN_KEY, log.applied_lsn),
                ] {
                    meta.insert(key, value).map_err(|e| fail(e.into()))?;
                }
                (log, true)
            }
            Some(v) if v == 3 || v == SCHEMA_VERSION => {
                let read = |key: &str| {
                    get(&meta, key)?.ok_or_else(|| StoreError::Open {
                        path: file.display().to_string(),
                        reason: format!(
                            "the data file's meta table lacks {key:?}, which schema {v} \
                             always has: the file is damaged; restore it from a backup"
                        )
                        .into(),
                    })
                };
                let log = LogMeta {
                    id: read(WAL_ID_KEY)?,
                    epoch: read(WAL_EPOCH_KEY)?,
                    first_lsn: read(WAL_FIRST_LSN_KEY)?,
                    applied_lsn: read(WAL_APPLIED_LSN_KEY)?,
                    upgrade: v == 3,
                };
                if log.epoch == 0 || log.first_lsn == 0 || log.applied_lsn + 1 < log.first_lsn {
                    return Err(StoreError::Open {
                        path: file.display().to_string(),
                        reason: format!(
                            "the data file's meta table is inconsistent: log cycle {} starts \
                             at sequence number {} but the file includes frames up to {}; \
                             restore it from a backup",
                            log.epoch, log.first_lsn, log.applied_lsn
                        )
                        .into(),
                    });
                }
                (log, false)
            }
            Some(v) => {
                return Err(StoreError::Open {
                    path: file.display().to_string(),
                    reason: format!(
                        "the data directory has schema version {v}, this build knows only \
                         {SCHEMA_VERSION}; it was written by a newer recordsync, run that one"
                    )
                    .into(),
                });
            }
        }
    };
    // A file of schema 3 or 4 may have the index an unreleased build of schema 4 kept;
    // its rows go with it (a prune that finds no `after_milestone` row for its start
    // walks instead: `prune`).
    let dropped = txn
        .delete_table(LOG_INDEX_UNRELEASED)
        .map_err(|e| fail(e.into()))?;
    if changed || dropped {
        txn.commit().map_err(|e| fail(e.into()))?;
    } else {
        // Nothing to write: opening must work on a full disk.
        txn.abort().map_err(|e| fail(e.into()))?;
    }
    Ok(meta)
}

/// A log id no other data directory is likely to have: from the process's random hash
/// seed, the time and the process id (no cryptographic strength needed: it only catches a
/// log put next to the wrong data file).
fn random_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    hasher.finish()
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

/// A failed write to the data directory `dir` as callers see it: [`StoreError::Full`]
/// when its filesystem (or the user's quota) is full, else [`StoreError::Io`] with advice.
/// `what` says which write failed, naming the file. Either way the store refuses writes
/// until a retry succeeds (`resume.rs`).
fn write_failure(dir: &Path, what: String, e: std::io::Error) -> StoreError {
    match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => StoreError::Full {
            path: dir.display().to_string(),
            reason: Cause::with_source(format!("{what}: {e}"), e),
        },
        _ => StoreError::Io(Cause::with_source(
            format!(
                "{what}: {e} ({}); writes are refused until a retry succeeds (the store \
                 retries by itself), nothing acknowledged is lost",
                wal::io_advice(&e)
            ),
            e,
        )),
    }
}

/// Turns a redb error into ours. `dir` is the data directory; `name` is the record being
/// read, so that damage found by redb itself is reported against it like damage found by
/// our checksums.
fn db_error(dir: &Path, what: &str, name: Option<&str>, e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Corrupted(msg) => match name {
            Some(name) => codec::corrupt(name, format!("{what}: the data file is damaged: {msg}")),
            None => StoreError::Io(
                format!("{what}: the data file is damaged ({msg}); restore it from a backup")
                    .into(),
            ),
        },
        redb::Error::PreviousIo => StoreError::Io(
            format!(
                "{what}: an earlier write to the data file failed, so redb refuses further \
                 use until the store reopens it, which it does once it can write again"
            )
            .into(),
        ),
        redb::Error::Io(io) => write_failure(
            dir,
            format!("{what} ({})", dir.join(FILE_NAME).display()),
            io,
        ),
        other => StoreError::Io(Cause::with_source(format!("{what}: {other}"), other)),
    }
}

/// The head of the record in the transaction (version, newest `log` entry, history
/// start), `None` when it has no row.
fn stored_head(
    records: &impl ReadableTable<&'static [u8], &'static [u8]>,
    dir: &Path,
    name: &str,
) -> Result<Option<codec::Head>, StoreError> {
    let guard = records
        .get(codec::record_key(name))
        .map_err(|e| db_error(dir, "reading a record", Some(name), e))?;
    guard
        .map(|value| codec::decode_record_head(name, value.value()))
        .transpose()
}

fn journal_bounds(name: &str, from: u64, to: u64) -> (Vec<u8>, Vec<u8>) {
    (codec::journal_key(name, from), codec::journal_key(name, to))
}

/// The tables a commit writes.
struct Tables<'txn> {
    records: redb::Table<'txn, &'static [u8], &'static [u8]>,
    journal: redb::Table<'txn, &'static [u8], &'static [u8]>,
    log: redb::Table<'txn, u64, &'static [u8]>,
    milestones: redb::Table<'txn, &'static [u8], &'static [u8]>,
    /// (name, milestone version) → `log` key of the entry after it (module doc, "Tables").
    after_milestone: redb::Table<'txn, &'static [u8], u64>,
    /// Chains of `log` entries pruned and not yet deleted (`pruned.rs`).
    pruned_chains: redb::Table<'txn, u64, &'static [u8]>,
    /// The key the next `log` entry gets.
    next_seq: u64,
}

impl<'txn> Tables<'txn> {
    fn open(txn: &'txn WriteTransaction, dir: &Path) -> Result<Self, StoreError> {
        let fail = |e: redb::Error| db_error(dir, "committing writes", None, e);
        let log = txn.open_table(LOG).map_err(|e| fail(e.into()))?;
        // Keys of entries pruned from the end of the log are taken again, which is safe:
        // nothing links to a pruned entry (see `prune`).
        let next_seq = match log.last().map_err(|e| fail(e.into()))? {
            Some((key, _)) => key.value() + 1,
            None => 1,
        };
        Ok(Tables {
            records: txn.open_table(RECORDS).map_err(|e| fail(e.into()))?,
            journal: txn.open_table(JOURNAL).map_err(|e| fail(e.into()))?,
            log,
            milestones: txn.open_table(MILESTONES).map_err(|e| fail(e.into()))?,
            after_milestone: txn
                .open_table(AFTER_MILESTONE)
                .map_err(|e| fail(e.into()))?,
            pruned_chains: txn
                .open_table(pruned::PRUNED_CHAINS)
                .map_err(|e| fail(e.into()))?,
            next_seq,
        })
    }

    /// Appends `entry` of `name` to the log, after the entry `prev`; returns its key.
    fn append(
        &mut self,
        dir: &Path,
        name: &str,
        entry: &JournalEntry,
        prev: u64,
    ) -> Result<u64, StoreError> {
        let seq = self.next_seq;
        let value = codec::encode_log(seq, name, entry, prev);
        self.log
            .insert(seq, value.as_slice())
            .map_err(|e| db_error(dir, "committing writes", None, e))?;
        self.next_seq += 1;
        Ok(seq)
    }
}

/// Checks and stores each write of `batch` in `txn`, returning one outcome per write,
/// storing milestones where they are due and pruning what `history` lets go (as of `now`,
/// for retention by age). The same for a commit and for replaying its log frame, so that
/// both give the same records and journals (a replay may prune more by age, which only
/// moves a history start further, as a later commit would have).
/// `dir` is the data directory, for errors. Adds the number of journal entries it
/// pruned to `pruned`.
fn apply(
    txn: &WriteTransaction,
    dir: &Path,
    batch: &[Write],
    history: &History,
    now: u64,
    pruned: &mut u64,
) -> Result<Vec<WriteOutcome>, StoreError> {
    let fail = |e: redb::Error| db_error(dir, "committing writes", None, e);
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut t = Tables::open(txn, dir)?;
    // Heads written earlier in this batch, so chained writes to one record need not
    // re-read and re-verify the value just written.
    let mut written: HashMap<&str, codec::Head> = HashMap::new();
    // Records with a conflict earlier in this batch: their later writes conflict too.
    let mut failed: HashMap<&str, Option<u64>> = HashMap::new();
    for write in batch {
        let name = write.name();
        if let Some(&current) = failed.get(name) {
            outcomes.push(WriteOutcome::Conflict { current });
            continue;
        }
        let stored = match written.get(name) {
            Some(head) => Some(*head),
            None => stored_head(&t.records, dir, name)?,
        };
        let current = stored.map(|head| head.version);
        let Write::Put {
            record,
            base_version,
            entries,
        } = write;
        if current != *base_version {
            failed.insert(name, current);
            outcomes.push(WriteOutcome::Conflict { current });
            continue;
        }
        let mut head = codec::Head {
            version: record.version,
            log_head: stored.map_or(0, |h| h.log_head),
            // A new name's history starts with its first entry (its create).
            start: stored.map_or_else(
                || entries.first().map_or(record.version, |e| e.version),
                |h| h.start,
            ),
            milestone_at_head: history.milestone_due(*base_version, record.version),
        };
        for (i, entry) in entries.iter().enumerate() {
            head.log_head = t.append(dir, name, entry, head.log_head)?;
            // The entry after a milestone: where a prune to that milestone cuts.
            if i == 0
                && let (Some(base), Some(true)) =
                    (*base_version, stored.map(|h| h.milestone_at_head))
            {
                t.after_milestone
                    .insert(codec::journal_key(name, base).as_slice(), head.log_head)
                    .map_err(|e| fail(e.into()))?;
            }
        }
        if head.milestone_at_head {
            let time = entries.last().map_or(record.mtime, |e| e.time);
            let (key, value) = codec::encode_milestone(name, record.version, time, &record.data);
            t.milestones
                .insert(key.as_slice(), value.as_slice())
                .map_err(|e| fail(e.into()))?;
        }
        *pruned += prune(&mut t, dir, name, &mut head, history, now)?;
        let value = codec::encode_record(record, &head);
        t.records
            .insert(codec::record_key(name), value.as_slice())
            .map_err(|e| fail(e.into()))?;
        written.insert(name, head);
        outcomes.push(WriteOutcome::Committed);
    }
    Ok(outcomes)
}

/// The versions and entry times of `name`'s milestones, ascending. Reads every one (they
/// are at most about `History::max_kept() / milestone_every` per record),
/// verifying each.
fn milestone_times(
    milestones: &impl ReadableTable<&'static [u8], &'static [u8]>,
    dir: &Path,
    name: &str,
) -> Result<Vec<(u64, u64)>, StoreError> {
    let fail = |e: redb::Error| db_error(dir, "reading milestones", Some(name), e);
    let (lo, hi) = journal_bounds(name, 0, u64::MAX);
    let mut found = Vec::new();
    for item in milestones
        .range::<&[u8]>(lo.as_slice()..=hi.as_slice())
        .map_err(|e| fail(e.into()))?
    {
        let (key, value) = item.map_err(|e| fail(e.into()))?;
        let (version, time, _) = codec::decode_milestone(name, key.value(), value.value())?;
        found.push((version, time));
    }
    Ok(found)
}

/// Moves `name`'s history start as far as `history` allows, exactly as the memory store
/// does (see [`History`]): to the greatest milestone at or below `version - keep_ops`
/// (if that gains at least `milestone_every` entries), or to the newest milestone whose
/// entry is older than `keep_age`, whichever is further. Deletes the milestones below the
/// new start and the `journal` table's entries at or below it, makes the oldest kept
/// `log` entry link to 0, so that every walk ends there, and notes the `log` entries
/// below it for [`pruned::sweep`], which deletes them later, in key order with other
/// records' (`pruned.rs` says why). Returns how many `journal` entries it deleted.
///
/// The oldest kept entry is the one after the start, a milestone: its `after_milestone`
/// row names it, so a prune reads no links above the start. Without that row (a file
/// written before the table existed) it walks down from the newest entry to find it.
fn prune(
    t: &mut Tables<'_>,
    dir: &Path,
    name: &str,
    head: &mut codec::Head,
    history: &History,
    now: u64,
) -> Result<u64, StoreError> {
    let fail = |e: redb::Error| db_error(dir, "pruning history", Some(name), e);
    // Most writes cannot prune: no need to read the milestones.
    if !history.may_prune(head.version, head.start) {
        return Ok(0);
    }
    let milestones = milestone_times(&t.milestones, dir, name)?;
    let Some(start) = history.prune_start(head.version, head.start, &milestones, now) else {
        return Ok(0);
    };
    let mut removed = 0;

    // The log: the oldest kept entry (the first above `start`), and below it the
    // entries to delete.
    let row = t
        .after_milestone
        .get(codec::journal_key(name, start).as_slice())
        .map_err(|e| fail(e.into()))?
        .map(|seq| seq.value());
    let cut = match row {
        Some(kept) => Some(Cut {
            kept: Some(kept),
            below: log_link_at(&t.log, dir, name, kept)?.1,
        }),
        None => find_cut(&t.log, dir, name, head.log_head, start)?,
    };
    if let Some(cut) = cut {
        match cut.kept {
            Some(kept) => {
                let entry = {
                    let guard = t.log.get(kept).map_err(|e| fail(e.into()))?;
                    log_step(name, kept, guard.as_ref().map(|v| v.value()))?.0
                };
                if entry.version <= start {
                    return Err(codec::corrupt(
                        name,
                        format!(
                            "journal entry {kept}, the oldest to keep after pruning to \
                             version {start}, is version {}",
                            entry.version
                        ),
                    ));
                }
                let value = codec::encode_log(kept, name, &entry, 0);
                t.log
                    .insert(kept, value.as_slice())
                    .map_err(|e| fail(e.into()))?;
            }
            // Nothing is kept: the newest entry is among those deleted.
            None => head.log_head = 0,
        }
        if cut.below != 0 {
            pruned::note(t, dir, name, cut.below, start)?;
        }
    }
    let (lo, hi) = journal_bounds(name, 0, start);
    t.after_milestone
        .retain_in::<&[u8], _>(lo.as_slice()..=hi.as_slice(), |_, _| false)
        .map_err(|e| fail(e.into()))?;
    // Entries of schema 1 and the upgrade's creates, all older than the log's.
    t.journal
        .retain_in::<&[u8], _>(lo.as_slice()..=hi.as_slice(), |_, _| {
            removed += 1;
            false
        })
        .map_err(|e| fail(e.into()))?;
    if start > 0 {
        let (lo, hi) = journal_bounds(name, 0, start - 1);
        t.milestones
            .retain_in::<&[u8], _>(lo.as_slice()..=hi.as_slice(), |_, _| false)
            .map_err(|e| fail(e.into()))?;
    }
    head.start = start;
    Ok(removed)
}

/// Where a prune cuts a record's chain in the log.
struct Cut {
    /// The oldest entry kept, which must then link to 0; `None`: none is kept.
    kept: Option<u64>,
    /// The newest entry deleted (0: none).
    below: u64,
}

/// The version and link of `name`'s log entry `seq`, which must be there.
fn log_link_at(
    log: &redb::Table<'_, u64, &'static [u8]>,
    dir: &Path,
    name: &str,
    seq: u64,
) -> Result<(u64, u64), StoreError> {
    let guard = log
        .get(seq)
        .map_err(|e| db_error(dir, "pruning history", Some(name), e))?;
    match guard {
        Some(value) => codec::log_link(name, seq, value.value()),
        None => Err(codec::corrupt(
            name,
            format!("journal entry {seq} is missing from the log"),
        )),
    }
}

/// Finds where a prune to `start` cuts the chain from `log_head`, by walking down its
/// links (for records with no `after_milestone` row for `start`). `None`: every entry in
/// the log is above `start` (the older ones are in `journal`, or gone).
fn find_cut(
    log: &redb::Table<'_, u64, &'static [u8]>,
    dir: &Path,
    name: &str,
    log_head: u64,
    start: u64,
) -> Result<Option<Cut>, StoreError> {
    if log_head == 0 {
        return Ok(None);
    }
    let (version, mut below) = log_link_at(log, dir, name, log_head)?;
    if version <= start {
        return Ok(Some(Cut {
            kept: None,
            below: log_head,
        }));
    }
    let mut kept = log_head;
    while below != 0 {
        let (version, prev) = log_link_at(log, dir, name, below)?;
        if version <= start {
            return Ok(Some(Cut {
                kept: Some(kept),
                below,
            }));
        }
        kept = below;
        below = prev;
    }
    Ok(None)
}

/// Applies the writes of a frame of schema 3 with schema 3's meaning (a delete removes
/// the record and its journal), for replaying a log of schema 3 before the upgrade
/// (`upgrade.rs`). Records are written as schema 3 wrote them (format V2), so that the
/// upgrade then finds and upgrades them like the others.
fn apply_legacy(
    txn: &WriteTransaction,
    dir: &Path,
    batch: &[codec::LegacyWrite],
) -> Result<Vec<WriteOutcome>, StoreError> {
    let fail = |e: redb::Error| db_error(dir, "replaying writes of schema 3", None, e);
    let mut t = Tables::open(txn, dir)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut failed: HashMap<&str, Option<u64>> = HashMap::new();
    for write in batch {
        let name = write.name();
        if let Some(&current) = failed.get(name) {
            outcomes.push(WriteOutcome::Conflict { current });
            continue;
        }
        let stored = stored_head(&t.records, dir, name)?;
        let current = stored.map(|h| h.version);
        let matches = match write {
            codec::LegacyWrite::Put { base_version, .. } => current == *base_version,
            codec::LegacyWrite::Delete { base_version, .. } => current == Some(*base_version),
        };
        if !matches {
            failed.insert(name, current);
            outcomes.push(WriteOutcome::Conflict { current });
            continue;
        }
        match write {
            codec::LegacyWrite::Put { record, entry, .. } => {
                let mut log_head = stored.map_or(0, |h| h.log_head);
                if let Some(entry) = entry {
                    log_head = t.append(dir, name, entry, log_head)?;
                }
                let value = codec::encode_record_v2(record, log_head);
                t.records
                    .insert(codec::record_key(name), value.as_slice())
                    .map_err(|e| fail(e.into()))?;
            }
            codec::LegacyWrite::Delete { .. } => {
                t.records
                    .remove(codec::record_key(name))
                    .map_err(|e| fail(e.into()))?;
                let mut seq = stored.map_or(0, |h| h.log_head);
                while seq != 0 {
                    let removed = t.log.remove(seq).map_err(|e| fail(e.into()))?;
                    seq = log_step(name, seq, removed.as_ref().map(|v| v.value()))?.1;
                }
                let (lo, hi) = journal_bounds(name, 0, u64::MAX);
                t.journal
                    .retain_in::<&[u8], _>(lo.as_slice()..=hi.as_slice(), |_, _| false)
                    .map_err(|e| fail(e.into()))?;
            }
        }
        outcomes.push(WriteOutcome::Committed);
    }
    Ok(outcomes)
}

/// Records in `txn` that it includes log frames up to `lsn`.
fn set_applied_lsn(txn: &WriteTransaction, lsn: u64) -> Result<(), redb::Error> {
    txn.open_table(META)?.insert(WAL_APPLIED_LSN_KEY, lsn)?;
    Ok(())
}

/// The commit protocol of the module doc. A failed write to the log or to redb makes the
/// store refuse writes until a retry succeeds (`resume.rs`); while it does, commits fail
/// at once with the failure's error.
fn commit_blocking(inner: &Inner, batch: &[Write]) -> Result<Vec<WriteOutcome>, StoreError> {
    batch.iter().try_for_each(Write::check)?;
    if let Some(write) = batch.iter().find(|w| !codec::batch_len_fits(w)) {
        return Err(StoreError::Unstorable {
            name: write.name().to_owned(),
            reason: "a name, value or op is 4 GiB or larger".into(),
        });
    }
    let mut writer = inner.writer.lock();
    if let Some(failure) = &writer.failure {
        return Err(failure.error.clone());
    }
    let committed = {
        let db = inner.db.read();
        // Present whenever the store takes writes (see `Inner::db`).
        let Some(db) = db.as_ref() else {
            return Err(inner.unavailable());
        };
        commit_locked(db, inner, &mut writer, batch)
    };
    let outcomes = match committed {
        Ok(outcomes) => outcomes,
        Err((e, Some(part))) => {
            // The log may hold the batch: reopening replays it past the indexes.
            inner.indexes.lock().clear();
            return Err(inner.fail(&mut writer, e, part));
        }
        Err((e, None)) => return Err(e),
    };
    let first = writer.dirty_since.is_none();
    if first {
        writer.dirty_since = Some(Instant::now());
    }
    let full = writer.wal.cycle_bytes() >= inner.options.checkpoint_bytes;
    drop(writer);
    if first || full {
        inner.checkpointer.kick();
    }
    Ok(outcomes)
}

/// Steps 1–4 of the commit protocol. An error comes with the part of the store whose
/// write failed, if one did (`None`: the batch failed and the store is as it was, as for
/// a damaged record).
fn commit_locked(
    db: &Database,
    inner: &Inner,
    writer: &mut Writer,
    batch: &[Write],
) -> Result<Vec<WriteOutcome>, (StoreError, Option<Part>)> {
    let dir = &inner.dir;
    let history = &inner.options.history;
    // redb reports a failed write of its pages wherever it happens: opening a table may
    // write out pages that no longer fit in its cache.
    let in_redb = |e: StoreError| {
        let part = matches!(e, StoreError::Io(_) | StoreError::Full { .. }).then_some(Part::Redb);
        (e, part)
    };
    let fail = |e: redb::Error| in_redb(db_error(dir, "committing writes", None, e));
    let mut txn = db.begin_write().map_err(|e| fail(e.into()))?;
    txn.set_durability(Durability::None).map_err(|e| {
        let reason = Cause::with_source(format!("committing writes: {e}"), e);
        (StoreError::Io(reason), None)
    })?;
    // An error here (a damaged record, say) leaves everything as it was: the transaction
    // is dropped, so aborted, and nothing was logged.
    let outcomes = apply(&txn, dir, batch, history, crate::now_ms(), &mut 0).map_err(in_redb)?;
    let stored: Vec<&Write> = batch
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| **outcome == WriteOutcome::Committed)
        .map(|(write, _)| write)
        .collect();
    if stored.is_empty() {
        // Nothing but conflicts: nothing to log, no sync.
        txn.abort().map_err(|e| fail(e.into()))?;
        return Ok(outcomes);
    }
    let lsn = writer.wal.next_lsn();
    set_applied_lsn(&txn, lsn).map_err(fail)?;

    // On failure the transaction is dropped, so aborted: redb is as it was.
    writer
        .wal
        .append(|buf| codec::encode_batch(&stored, buf))
        .map_err(|e| (e, Some(Part::Log)))?;
    #[cfg(any(test, feature = "testing"))]
    if faults::hit("after-log-sync") {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        for write in &stored {
            let Write::Put { record, .. } = write;
            let _ = writeln!(out, "INLOG {} {}", record.name, record.version);
        }
        let _ = out.flush();
        faults::crash("after-log-sync");
    }
    #[cfg(test)]
    if std::mem::take(&mut writer.fail_next_redb_commit) {
        let e = StoreError::Io(
            "committing writes to the data file: injected failure; the batch is in the \
             write-ahead log"
                .into(),
        );
        return Err((e, Some(Part::Redb)));
    }
    // Readers of the indexes see the batch with them or neither (see `Inner::indexes`).
    let mut indexes = inner.indexes.lock();
    txn.commit().map_err(|e| {
        let e = match db_error(dir, "committing writes to the data file", None, e) {
            StoreError::Full { path, mut reason } => {
                reason.push_str(" (the batch is in the write-ahead log)");
                StoreError::Full { path, reason }
            }
            other => StoreError::Io(Cause::with_source(
                format!(
                    "{other}; the batch is in the write-ahead log, and is applied when the \
                     store reopens the data file"
                ),
                other,
            )),
        };
        (e, Some(Part::Redb))
    })?;
    for write in &stored {
        let Write::Put { record, .. } = write;
        indexes.update_text(&record.name, record.deleted, &record.data);
    }
    drop(indexes);
    faults::check("after-redb-commit");
    Ok(outcomes)
}

fn get_blocking(db: &Database, dir: &Path, name: &str) -> Result<Option<StoredRecord>, StoreError> {
    let fail = |e: redb::Error| db_error(dir, "reading a record", Some(name), e);
    let txn = db.begin_read().map_err(|e| fail(e.into()))?;
    let records = txn.open_table(RECORDS).map_err(|e| fail(e.into()))?;
    let guard = records
        .get(codec::record_key(name))
        .map_err(|e| fail(e.into()))?;
    guard
        .map(|value| codec::decode_record(name, value.value()))
        .transpose()
}

/// The candidates of `query` over the collection named `prefix...` (see `query.rs`),
/// read in one transaction, so a query sees one state: the records its `_id` names, or
/// those a field index names (made now if the query could use one and there is none),
/// or else the whole collection.
fn query_blocking(
    inner: &Inner,
    db: &Database,
    prefix: &str,
    query: &Query,
) -> Result<Vec<StoredRecord>, StoreError> {
    let dir = &inner.dir;
    let fail = |e: redb::Error| db_error(dir, "answering a query", None, e);
    if let Some(ids) = query::named_ids(&query.filter) {
        let txn = db.begin_read().map_err(|e| fail(e.into()))?;
        let names: Vec<String> = ids.iter().map(|id| format!("{prefix}{id}")).collect();
        return named_in(&txn, dir, &names);
    }
    let mut indexes = inner.indexes.lock();
    let txn = db.begin_read().map_err(|e| fail(e.into()))?;
    let mut plan = indexes.plan(prefix, &query.filter);
    if let Plan::Build(path) = plan {
        // No commit becomes visible while the indexes are held: the index is made from
        // the state the transaction reads.
        let live = collection_in(&txn, dir, prefix)?;
        let values: Vec<(&str, Value)> = live
            .iter()
            .filter_map(|r| {
                // Data that is not JSON has no keys; the scan reports it.
                let value = recordsync_core::json::parse(&r.data).ok()?;
                Some((r.name.as_str(), value))
            })
            .collect();
        indexes.build(prefix, path, values.iter().map(|(n, v)| (*n, v)));
        plan = indexes.plan(prefix, &query.filter);
        if !matches!(plan, Plan::Names(_)) {
            return Ok(live);
        }
    }
    drop(indexes);
    match plan {
        Plan::Names(names) => named_in(&txn, dir, &names),
        Plan::Scan | Plan::Build(_) => collection_in(&txn, dir, prefix),
    }
}

/// The records named `names` that exist (tombstones too; the caller skips them), read in
/// `txn`.
fn named_in(
    txn: &redb::ReadTransaction,
    dir: &Path,
    names: &[String],
) -> Result<Vec<StoredRecord>, StoreError> {
    let fail = |e: redb::Error| db_error(dir, "reading records", None, e);
    let records = txn.open_table(RECORDS).map_err(|e| fail(e.into()))?;
    let mut found = Vec::with_capacity(names.len());
    for name in names {
        let guard = records
            .get(codec::record_key(name))
            .map_err(|e| fail(e.into()))?;
        if let Some(value) = guard {
            found.push(codec::decode_record(name, value.value())?);
        }
    }
    Ok(found)
}

/// The live records named `prefix...` (a collection's, see `query.rs`), in name order:
/// one range of the records table, read in `txn`.
fn collection_in(
    txn: &redb::ReadTransaction,
    dir: &Path,
    prefix: &str,
) -> Result<Vec<StoredRecord>, StoreError> {
    let fail = |e: redb::Error| db_error(dir, "reading a collection", None, e);
    let records = txn.open_table(RECORDS).map_err(|e| fail(e.into()))?;
    let end = query::prefix_end(prefix);
    let mut found = Vec::new();
    for row in records
        .range(codec::record_key(prefix)..codec::record_key(&end))
        .map_err(|e| fail(e.into()))?
    {
        let (key, value) = row.map_err(|e| fail(e.into()))?;
        let name = String::from_utf8_lossy(key.value());
        let record = codec::decode_record(&name, value.value())?;
        if !record.deleted {
            found.push(record);
        }
    }
    Ok(found)
}

/// A page of live records ([`Store::list`]): one range of the records table from the
/// start of the page to the end of the prefix's names, read in one transaction, stopping
/// at `limit` live records (tombstones in the range are read and skipped).
fn list_blocking(
    db: &Database,
    dir: &Path,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<StoredRecord>, StoreError> {
    use std::ops::Bound;
    let fail = |e: redb::Error| db_error(dir, "listing records", None, e);
    let end = listing::prefix_end(prefix);
    let (start, exclusive) = listing::list_start(prefix, after);
    if limit == 0 || end.as_deref().is_some_and(|end| start >= end) {
        return Ok(Vec::new());
    }
    let start = match exclusive {
        true => Bound::Excluded(codec::record_key(start)),
        false => Bound::Included(codec::record_key(start)),
    };
    let end = match &end {
        Some(end) => Bound::Excluded(codec::record_key(end)),
        None => Bound::Unbounded,
    };
    let txn = db.begin_read().map_err(|e| fail(e.into()))?;
    let records = txn.open_table(RECORDS).map_err(|e| fail(e.into()))?;
    let mut found = Vec::new();
    for row in records
        .range::<&[u8]>((start, end))
        .map_err(|e| fail(e.into()))?
    {
        let (key, value) = row.map_err(|e| fail(e.into()))?;
        let name = String::from_utf8_lossy(key.value());
        let record = codec::decode_record(&name, value.value())?;
        if !record.deleted {
            found.push(record);
            if found.len() == limit {
                break;
            }
        }
    }
    Ok(found)
}

/// Sends every record named `prefix…` (tombstones too), with its kept history if
/// `history`, from one read transaction: one state of the data set ([`Store::export`]).
/// Stops early when the receiver is gone.
fn export_blocking(
    db: &Database,
    dir: &Path,
    prefix: &str,
    history: bool,
    tx: &tokio::sync::mpsc::Sender<Result<RecordDump, StoreError>>,
) -> Result<(), StoreError> {
    use std::ops::Bound;
    let fail = |e: redb::Error| db_error(dir, "exporting records", None, e);
    let txn = db.begin_read().map_err(|e| fail(e.into()))?;
    let records = txn.open_table(RECORDS).map_err(|e| fail(e.into()))?;
    let milestones = txn.open_table(MILESTONES).map_err(|e| fail(e.into()))?;
    let end = listing::prefix_end(prefix);
    let end = match &end {
        Some(end) => Bound::Excluded(codec::record_key(end)),
        None => Bound::Unbounded,
    };
    let start = Bound::Included(codec::record_key(prefix));
    for row in records
        .range::<&[u8]>((start, end))
        .map_err(|e| fail(e.into()))?
    {
        let (key, value) = row.map_err(|e| fail(e.into()))?;
        let name = String::from_utf8_lossy(key.value()).into_owned();
        let record = codec::decode_record(&name, value.value())?;
        let kept = if history {
            let head = codec::decode_record_head(&name, value.value())?;
            let (lo, hi) = journal_bounds(&name, 0, u64::MAX);
            let mut kept_milestones = Vec::new();
            for item in milestones
                .range::<&[u8]>(lo.as_slice()..=hi.as_slice())
                .map_err(|e| fail(e.into()))?
            {
                let (key, value) = item.map_err(|e| fail(e.into()))?;
                let (version, time, data) =
                    codec::decode_milestone(&name, key.value(), value.value())?;
                kept_milestones.push(KeptMilestone {
                    version,
                    time,
                    data,
                });
            }
            Some(KeptHistory {
                start: head.start,
                milestones: kept_milestones,
                entries: journal_in(&txn, dir, &name, head.start, u64::MAX)?,
            })
        } else {
            None
        };
        let dump = RecordDump {
            record,
            history: kept,
        };
        if tx.blocking_send(Ok(dump)).is_err() {
            break;
        }
    }
    Ok(())
}

/// Writes `dumps` into redb in one durable transaction ([`Store::restore`]), under the
/// writer lock. Not through the write-ahead log: the transaction is made durable itself
/// (as a checkpoint is), and leaves the log's place in `meta` alone, so a replay after a
/// crash neither misses nor repeats it.
fn restore_blocking(inner: &Inner, dumps: &[RecordDump]) -> Result<(), StoreError> {
    let dir = &inner.dir;
    let fail = |e: redb::Error| db_error(dir, "restoring records", None, e);
    let writer = inner.writer.lock();
    if let Some(failure) = &writer.failure {
        return Err(failure.error.clone());
    }
    let db = inner.db.read();
    let Some(db) = db.as_ref() else {
        return Err(inner.unavailable());
    };
    let mut txn = db.begin_write().map_err(|e| fail(e.into()))?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| StoreError::Io(Cause::with_source(format!("restoring records: {e}"), e)))?;
    {
        let mut t = Tables::open(&txn, dir)?;
        for dump in dumps {
            let record = &dump.record;
            let name = record.name.as_str();
            if stored_head(&t.records, dir, name)?.is_some() {
                return Err(StoreError::Exists {
                    name: name.to_owned(),
                });
            }
            let history = dump.history_or_current();
            let mut log_head = 0;
            let mut keys = HashMap::new();
            for entry in &history.entries {
                log_head = t.append(dir, name, entry, log_head)?;
                keys.insert(entry.version, log_head);
            }
            for m in &history.milestones {
                let (key, value) = codec::encode_milestone(name, m.version, m.time, &m.data);
                t.milestones
                    .insert(key.as_slice(), value.as_slice())
                    .map_err(|e| fail(e.into()))?;
                if let Some(&next) = m.version.checked_add(1).and_then(|v| keys.get(&v)) {
                    t.after_milestone
                        .insert(codec::journal_key(name, m.version).as_slice(), next)
                        .map_err(|e| fail(e.into()))?;
                }
            }
            let head = codec::Head {
                version: record.version,
                log_head,
                start: history.start,
                milestone_at_head: history
                    .milestones
                    .last()
                    .is_some_and(|m| m.version == record.version),
            };
            let value = codec::encode_record(record, &head);
            t.records
                .insert(codec::record_key(name), value.as_slice())
                .map_err(|e| fail(e.into()))?;
        }
    }
    // As a commit does (see `Inner::indexes`).
    let mut indexes = inner.indexes.lock();
    txn.commit().map_err(|e| fail(e.into()))?;
    for dump in dumps {
        let record = &dump.record;
        indexes.update_text(&record.name, record.deleted, &record.data);
    }
    drop(indexes);
    drop(writer);
    Ok(())
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
    dir: &Path,
    name: &str,
    from: u64,
    to: u64,
) -> Result<Vec<JournalEntry>, StoreError> {
    let fail = |e: redb::Error| db_error(dir, "reading a journal", Some(name), e);
    let txn = db.begin_read().map_err(|e| fail(e.into()))?;
    journal_in(&txn, dir, name, from, to)
}

/// [`journal_blocking`] in a read transaction the caller holds.
fn journal_in(
    txn: &redb::ReadTransaction,
    dir: &Path,
    name: &str,
    from: u64,
    to: u64,
) -> Result<Vec<JournalEntry>, StoreError> {
    let fail = |e: redb::Error| db_error(dir, "reading a journal", Some(name), e);
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
    let mut seq = stored_head(&records, dir, name)?.map_or(0, |head| head.log_head);
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

fn milestone_blocking(
    db: &Database,
    dir: &Path,
    name: &str,
    version: u64,
) -> Result<Option<Milestone>, StoreError> {
    let fail = |e: redb::Error| db_error(dir, "reading a milestone", Some(name), e);
    let txn = db.begin_read().map_err(|e| fail(e.into()))?;
    let milestones = txn.open_table(MILESTONES).map_err(|e| fail(e.into()))?;
    let (lo, hi) = journal_bounds(name, 0, version);
    let mut range = milestones
        .range::<&[u8]>(lo.as_slice()..=hi.as_slice())
        .map_err(|e| fail(e.into()))?;
    let Some(item) = range.next_back() else {
        return Ok(None);
    };
    let (key, value) = item.map_err(|e| fail(e.into()))?;
    let (version, _, data) = codec::decode_milestone(name, key.value(), value.value())?;
    Ok(Some(Milestone { version, data }))
}

fn history_start_blocking(
    db: &Database,
    dir: &Path,
    name: &str,
) -> Result<Option<u64>, StoreError> {
    let fail = |e: redb::Error| db_error(dir, "reading a record", Some(name), e);
    let txn = db.begin_read().map_err(|e| fail(e.into()))?;
    let records = txn.open_table(RECORDS).map_err(|e| fail(e.into()))?;
    Ok(stored_head(&records, dir, name)?.map(|head| head.start))
}

/// The version of the newest kept entry of `name` with `time <= time`: along the log's
/// links from the newest entry, then in `journal` (older than all of the log's).
fn version_at_time_blocking(
    db: &Database,
    dir: &Path,
    name: &str,
    time: u64,
) -> Result<Option<u64>, StoreError> {
    let fail = |e: redb::Error| db_error(dir, "reading a journal", Some(name), e);
    let txn = db.begin_read().map_err(|e| fail(e.into()))?;
    let records = txn.open_table(RECORDS).map_err(|e| fail(e.into()))?;
    let log = txn.open_table(LOG).map_err(|e| fail(e.into()))?;
    let mut seq = stored_head(&records, dir, name)?.map_or(0, |head| head.log_head);
    while seq != 0 {
        let guard = log.get(seq).map_err(|e| fail(e.into()))?;
        let (entry, prev) = log_step(name, seq, guard.as_ref().map(|v| v.value()))?;
        if entry.time <= time {
            return Ok(Some(entry.version));
        }
        seq = prev;
    }
    let journal = txn.open_table(JOURNAL).map_err(|e| fail(e.into()))?;
    let (lo, hi) = journal_bounds(name, 0, u64::MAX);
    for item in journal
        .range::<&[u8]>(lo.as_slice()..=hi.as_slice())
        .map_err(|e| fail(e.into()))?
        .rev()
    {
        let (key, value) = item.map_err(|e| fail(e.into()))?;
        let entry = codec::decode_journal(name, key.value(), value.value())?;
        if entry.time <= time {
            return Ok(Some(entry.version));
        }
    }
    Ok(None)
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, name: &str) -> Result<Option<StoredRecord>, StoreError> {
        let name = name.to_owned();
        self.blocking("reading a record", move |inner| {
            inner.read(|db| get_blocking(db, &inner.dir, &name))
        })
        .await
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let prefix = prefix.to_owned();
        let after = after.map(str::to_owned);
        self.blocking("listing records", move |inner| {
            inner.read(|db| list_blocking(db, &inner.dir, &prefix, after.as_deref(), limit))
        })
        .await
    }

    async fn commit(&self, batch: &[Write]) -> Result<Vec<WriteOutcome>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // The blocking pool needs owned data; one copy of the batch is cheap next to the
        // fsync it waits for.
        let batch = batch.to_vec();
        self.blocking("committing writes", move |inner| {
            commit_blocking(inner, &batch)
        })
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
        self.blocking("reading a journal", move |inner| {
            inner.read(|db| journal_blocking(db, &inner.dir, &name, from, to))
        })
        .await
    }

    async fn export(
        &self,
        prefix: &str,
        history: bool,
    ) -> Result<tokio::sync::mpsc::Receiver<Result<RecordDump, StoreError>>, StoreError> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let prefix = prefix.to_owned();
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let result = inner.read(|db| export_blocking(db, &inner.dir, &prefix, history, &tx));
            if let Err(e) = result {
                let _ = tx.blocking_send(Err(e));
            }
        });
        Ok(rx)
    }

    async fn restore(&self, dumps: &[RecordDump]) -> Result<(), StoreError> {
        crate::dump::check_restore(dumps)?;
        let dumps = dumps.to_vec();
        self.blocking("restoring records", move |inner| {
            restore_blocking(inner, &dumps)
        })
        .await
    }

    async fn milestone(&self, name: &str, version: u64) -> Result<Option<Milestone>, StoreError> {
        let name = name.to_owned();
        self.blocking("reading a milestone", move |inner| {
            inner.read(|db| milestone_blocking(db, &inner.dir, &name, version))
        })
        .await
    }

    async fn history_start(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let name = name.to_owned();
        self.blocking("reading a record", move |inner| {
            inner.read(|db| history_start_blocking(db, &inner.dir, &name))
        })
        .await
    }

    async fn version_at_time(&self, name: &str, time: u64) -> Result<Option<u64>, StoreError> {
        let name = name.to_owned();
        self.blocking("reading a journal", move |inner| {
            inner.read(|db| version_at_time_blocking(db, &inner.dir, &name, time))
        })
        .await
    }

    /// A scan of the collection's range of names, evaluated on the blocking pool: no
    /// index but the name order (the data is opaque to redb). A query naming its ids
    /// reads just those.
    async fn query(
        &self,
        collection: &str,
        query: &Query,
    ) -> Result<Selection<StoredRecord>, StoreError> {
        let prefix = query::prefix(collection)?;
        let query = query.clone();
        self.blocking("answering a query", move |inner| {
            let candidates = inner.read(|db| query_blocking(inner, db, &prefix, &query))?;
            query::select(&prefix, &query, candidates)
        })
        .await
    }

    /// Fails while the store refuses writes after a failed write (see `resume.rs`), with
    /// the error that names the cause; a health check then reports the server unhealthy.
    async fn ping(&self) -> Result<(), StoreError> {
        match self.failure() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, version: u64, data: &str) -> StoredRecord {
        StoredRecord {
            name: name.to_owned(),
            version,
            created: 0,
            deleted: false,
            data: data.to_owned(),
            ctime: 1,
            mtime: 2,
        }
    }

    fn entry(version: u64) -> JournalEntry {
        JournalEntry {
            version,
            time: 3,
            op: format!(r#"{{"v":{version}}}"#),
            author: None,
            origin: None,
        }
    }

    /// `name` at `version`, from `version - 1`; for 1, from nothing (entries 0 and 1).
    fn put(name: &str, version: u64, data: &str) -> Write {
        let base = version.checked_sub(1).filter(|_| version > 1);
        Write::Put {
            record: record(name, version, data),
            base_version: base,
            entries: (base.map_or(0, |b| b + 1)..=version).map(entry).collect(),
        }
    }

    /// The delete of `name` at `version`: a tombstone.
    fn delete(name: &str, version: u64) -> Write {
        Write::Put {
            record: StoredRecord {
                deleted: true,
                ..record(name, version, "null")
            },
            base_version: Some(version - 1),
            entries: vec![entry(version)],
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
        // Log key 3 (r's version 2; key 1 is its create) damaged: ranges that stop above
        // it still read.
        poke_log(dir.path(), 3, b"\x01\0\0\0\0");
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(store.journal("r", 3, 3).await.unwrap().len(), 1);
        let reason = assert_corrupt(store.journal("r", 2, 3).await, "r");
        assert!(reason.contains("entry 3"), "{reason}");
        assert_corrupt(store.journal("r", 1, 1).await, "r");
        assert_corrupt(store.version_at_time("r", 0).await, "r");
        drop(store);

        // An entry that belongs to another record (a damaged link) is caught too.
        let other = codec::encode_log(3, "other", &entry(2), 2);
        poke_log(dir.path(), 3, &other);
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let reason = assert_corrupt(store.journal("r", 0, 3).await, "r");
        assert!(reason.contains("another record"), "{reason}");
        // Deleting pruned entries walks the same links: it deletes down to the damage
        // and stops there, leaving the damaged entry and those below it unreachable
        // (they were unreadable already), rather than fail the write or the checkpoint.
        drop(store);
        let options = EmbeddedOptions {
            history: History {
                milestone_every: 1,
                keep_ops: Some(0),
                keep_age: None,
            },
            ..EmbeddedOptions::default()
        };
        let store = EmbeddedStore::open_with(dir.path(), options).unwrap();
        assert_eq!(
            store.commit(&[delete("r", 4)]).await.unwrap(),
            [WriteOutcome::Committed]
        );
        assert_eq!(store.get("r").await.unwrap().unwrap().version, 4);
        assert_eq!(store.history_start("r").await.unwrap(), Some(4));
        assert_eq!(store.journal("r", 0, 9).await.unwrap(), []);
        // The prune only noted the chain; the checkpoint deletes it.
        store.checkpoint().unwrap();
        let left = store
            .inner
            .read(|db| {
                let txn = db.begin_read().unwrap();
                let log = txn.open_table(LOG).unwrap();
                Ok((1..=7)
                    .filter(|&seq| log.get(seq).unwrap().is_some())
                    .collect::<Vec<u64>>())
            })
            .unwrap();
        // r's versions 4 and 3 (keys 7 and 4) are gone; the damaged entry (key 3) and
        // r's entries below it (keys 1 and 2) are left; "other" keeps its own (5, 6).
        assert_eq!(left, [1, 2, 3, 5, 6]);
        assert_eq!(store.get("other").await.unwrap().unwrap().version, 1);
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
                            author: None,
                            origin: None,
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
        // The upgrade to schema 4 added the create at 0 and a milestone at 2.
        let journal = store.journal("old", 0, 9).await.unwrap();
        assert_eq!(versions(journal.clone()), [0, 1, 2]);
        assert_eq!(
            (journal[0].time, journal[0].op.as_str()),
            (1, upgrade::CREATE_OP)
        );
        assert_eq!(
            store.milestone("old", 5).await.unwrap(),
            Some(Milestone {
                version: 2,
                data: r#"{"v":2}"#.into()
            })
        );
        store
            .commit(&[put("old", 3, "{}"), put("old", 4, "{}")])
            .await
            .unwrap();
        assert_eq!(
            versions(store.journal("old", 0, 9).await.unwrap()),
            [0, 1, 2, 3, 4]
        );
        assert_eq!(versions(store.journal("old", 2, 3).await.unwrap()), [2, 3]);
        assert_eq!(store.version_at_time("old", 2).await.unwrap(), Some(2));
        assert_eq!(store.version_at_time("old", 0).await.unwrap(), None);
        store.commit(&[put("gone", 3, "{}")]).await.unwrap();
        store.commit(&[delete("gone", 4)]).await.unwrap();
        assert_eq!(
            versions(store.journal("gone", 0, 9).await.unwrap()),
            [0, 1, 2, 3, 4]
        );
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
        // The new entries went to the log, the old ones stayed where they were.
        use redb::ReadableTableMetadata;
        assert_eq!(txn.open_table(LOG).unwrap().len().unwrap(), 4);
        assert_eq!(txn.open_table(JOURNAL).unwrap().len().unwrap(), 6);
    }

    fn assert_corrupt(result: Result<impl std::fmt::Debug, StoreError>, name: &str) -> String {
        match result {
            Err(StoreError::Corrupt { name: n, reason }) => {
                assert_eq!(n, name);
                reason.to_string()
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

    /// No checkpoint unless a test asks for one.
    /// No checkpoint and no retry unless the test asks for one.
    fn manual() -> EmbeddedOptions {
        EmbeddedOptions {
            checkpoint_bytes: u64::MAX,
            checkpoint_interval: std::time::Duration::from_secs(3600),
            retry_interval: std::time::Duration::from_secs(3600),
            ..EmbeddedOptions::default()
        }
    }

    /// The files of `from` as a crash at this instant would leave them: what the process
    /// wrote is in the files (the page cache survives a process crash); what redb keeps
    /// in memory is not. No commit may run meanwhile.
    fn crash_copy(from: &Path) -> tempfile::TempDir {
        let to = tempfile::tempdir().unwrap();
        for name in [FILE_NAME, WAL_FILE_NAME] {
            std::fs::copy(from.join(name), to.path().join(name)).unwrap();
        }
        to
    }

    /// The version of `name` in the redb file alone, read without the log.
    fn version_in_redb_file(dir: &Path, name: &str) -> Option<u64> {
        let db = Database::open(dir.join(FILE_NAME)).unwrap();
        let txn = db.begin_read().unwrap();
        let records = txn.open_table(RECORDS).unwrap();
        let found = records.get(codec::record_key(name)).unwrap();
        found.map(|v| codec::decode_record_head(name, v.value()).unwrap().version)
    }

    fn meta_value(dir: &Path, key: &str) -> Option<u64> {
        let db = Database::open(dir.join(FILE_NAME)).unwrap();
        let txn = db.begin_read().unwrap();
        let meta = txn.open_table(META).unwrap();
        meta.get(key).unwrap().map(|v| v.value())
    }

    fn versions(journal: Vec<JournalEntry>) -> Vec<u64> {
        journal.iter().map(|e| e.version).collect()
    }

    /// Commits `name` from version `from` to `to`, one write per commit.
    async fn write_versions(store: &EmbeddedStore, name: &str, from: u64, to: u64) {
        for v in from..=to {
            let outcome = store
                .commit(&[put(name, v, &format!(r#"{{"v":{v}}}"#))])
                .await;
            assert_eq!(
                outcome.unwrap(),
                vec![WriteOutcome::Committed],
                "{name} v{v}"
            );
        }
    }

    async fn assert_versions(store: &EmbeddedStore, name: &str, last: u64) {
        let r = store.get(name).await.unwrap().unwrap();
        assert_eq!(
            (r.version, r.data),
            (last, format!(r#"{{"v":{last}}}"#)),
            "{name}"
        );
        assert_eq!(
            versions(store.journal(name, 0, u64::MAX).await.unwrap()),
            (0..=last).collect::<Vec<_>>(),
            "{name}"
        );
    }

    /// Commits are durable through the log alone: after a crash the redb file lacks them,
    /// and opening replays them.
    #[tokio::test]
    async fn a_crash_loses_nothing_the_log_holds() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open_with(dir.path(), manual()).unwrap();
        write_versions(&store, "a", 1, 5).await;
        store
            .commit(&[
                put("b", 1, r#"{"v":1}"#),
                put("b", 2, r#"{"v":2}"#),
                put("gone", 1, "{}"),
            ])
            .await
            .unwrap();
        store.commit(&[delete("gone", 2)]).await.unwrap();
        let crashed = crash_copy(dir.path());
        drop(store);

        assert_eq!(
            version_in_redb_file(crashed.path(), "a"),
            None,
            "not checkpointed"
        );
        let store = EmbeddedStore::open_with(crashed.path(), manual()).unwrap();
        let stats = store.stats();
        assert_eq!((stats.replayed_frames, stats.replayed_writes), (7, 9));
        assert_versions(&store, "a", 5).await;
        assert_versions(&store, "b", 2).await;
        assert!(store.get("gone").await.unwrap().unwrap().deleted);
        assert_eq!(
            versions(store.journal("gone", 0, 9).await.unwrap()),
            [0, 1, 2]
        );

        // The replayed store carries on in the same cycle, and a second crash replays
        // both the old frames and the new ones.
        write_versions(&store, "a", 6, 7).await;
        let again = crash_copy(crashed.path());
        drop(store);
        let store = EmbeddedStore::open_with(again.path(), manual()).unwrap();
        assert_eq!(store.stats().replayed_frames, 9);
        assert_versions(&store, "a", 7).await;
    }

    /// After a checkpoint the log is written from its start again; the older frames
    /// beyond the new ones are not replayed (they would conflict if they were).
    #[tokio::test]
    async fn a_crash_after_a_checkpoint_replays_only_the_new_cycle() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open_with(dir.path(), manual()).unwrap();
        write_versions(&store, "a", 1, 20).await;
        let before = store.stats();
        store.checkpoint().unwrap();
        let after = store.stats();
        assert_eq!(after.checkpoints, 1);
        assert_eq!(after.epoch, before.epoch + 1);
        assert_eq!(after.log_bytes, 0);
        assert_eq!(
            after.log_file_bytes, before.log_file_bytes,
            "the file is kept"
        );
        write_versions(&store, "a", 21, 23).await;
        let crashed = crash_copy(dir.path());

        assert_eq!(version_in_redb_file(crashed.path(), "a"), Some(20));
        drop(store);
        let store = EmbeddedStore::open_with(crashed.path(), manual()).unwrap();
        assert_eq!(store.stats().replayed_frames, 3);
        assert_versions(&store, "a", 23).await;

        // Right after a checkpoint, with 20 old frames in the file, nothing is replayed.
        store.checkpoint().unwrap();
        let crashed = crash_copy(crashed.path());
        drop(store);
        let store = EmbeddedStore::open_with(crashed.path(), manual()).unwrap();
        assert_eq!(store.stats().replayed_frames, 0);
        assert_versions(&store, "a", 23).await;
    }

    #[tokio::test]
    async fn a_clean_close_checkpoints_so_the_next_open_replays_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open_with(dir.path(), manual()).unwrap();
        write_versions(&store, "a", 1, 3).await;
        drop(store);
        assert_eq!(version_in_redb_file(dir.path(), "a"), Some(3));
        assert_eq!(meta_value(dir.path(), WAL_FIRST_LSN_KEY), Some(4));
        let store = EmbeddedStore::open_with(dir.path(), manual()).unwrap();
        assert_eq!(store.stats().replayed_frames, 0);
        assert_eq!(store.stats().next_lsn, 4);
        assert_versions(&store, "a", 3).await;
    }

    /// A batch of nothing but conflicts is neither logged nor synced.
    #[tokio::test]
    async fn conflicts_only_batches_do_not_touch_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open_with(dir.path(), manual()).unwrap();
        write_versions(&store, "a", 1, 2).await;
        let before = store.stats();
        let outcomes = store
            .commit(&[put("a", 2, "{}"), put("b", 5, "{}")])
            .await
            .unwrap();
        assert_eq!(
            outcomes,
            vec![
                WriteOutcome::Conflict { current: Some(2) },
                WriteOutcome::Conflict { current: None }
            ]
        );
        assert_eq!(store.stats(), before);
    }

    /// A failed append fails the batch and every later commit, with a message that names
    /// the cause and the directory; reopening recovers every acknowledged write. redb's
    /// close keeps its non-durable commits, so the reopened file already has the frames of
    /// the log, which must be skipped rather than applied again.
    #[tokio::test]
    async fn a_failed_append_refuses_writes_until_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open_with(dir.path(), manual()).unwrap();
        write_versions(&store, "a", 1, 3).await;
        store.inner.writer.lock().wal.fail_next_append = Some(std::io::ErrorKind::StorageFull);
        let err = store.commit(&[put("a", 4, "{}")]).await.unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, StoreError::Full { .. }), "{err:?}");
        let free_space = format!("free space on {}", dir.path().display());
        for needle in [
            "storage full",
            WAL_FILE_NAME,
            &free_space,
            "resume by themselves",
        ] {
            assert!(message.contains(needle), "{needle:?} in {message}");
        }
        let again = store.commit(&[put("b", 1, "{}")]).await.unwrap_err();
        assert_eq!(again, err);
        assert_eq!(store.ping().await, Err(err));
        // Reads go on.
        assert_eq!(store.get("a").await.unwrap().unwrap().version, 3);
        drop(store);

        assert_eq!(meta_value(dir.path(), WAL_APPLIED_LSN_KEY), Some(3));
        assert_eq!(meta_value(dir.path(), WAL_FIRST_LSN_KEY), Some(1));
        let store = EmbeddedStore::open_with(dir.path(), manual()).unwrap();
        assert_eq!(store.stats().replayed_frames, 0, "redb had them all");
        assert_versions(&store, "a", 3).await;
        write_versions(&store, "a", 4, 4).await;
        assert_versions(&store, "a", 4).await;
    }

    /// Options that retry a failed store at once.
    fn retrying() -> EmbeddedOptions {
        EmbeddedOptions {
            retry_interval: std::time::Duration::from_millis(5),
            ..manual()
        }
    }

    /// Waits until the store takes writes again (the checkpoint thread retries).
    async fn until_resumed(store: &EmbeddedStore) {
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        while let Err(e) = store.ping().await {
            assert!(Instant::now() < deadline, "the store did not resume: {e}");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// After a failed append the store resumes by itself, with nothing lost: the log goes
    /// on where the failed frame would have been, and a crash after that replays it all.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_append_is_retried_and_writes_resume() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open_with(dir.path(), retrying()).unwrap();
        write_versions(&store, "a", 1, 3).await;
        store.inner.writer.lock().wal.fail_next_append = Some(std::io::ErrorKind::StorageFull);
        store.commit(&[put("a", 4, "{}")]).await.unwrap_err();
        until_resumed(&store).await;
        assert_eq!(store.failure(), None);
        write_versions(&store, "a", 4, 6).await;
        assert_versions(&store, "a", 6).await;
        let crashed = crash_copy(dir.path());
        drop(store);
        let store = EmbeddedStore::open_with(crashed.path(), manual()).unwrap();
        assert_eq!(store.stats().replayed_frames, 6);
        assert_versions(&store, "a", 6).await;
    }

    /// A frame whose sync failed may be in the file whole: it must not be replayed (its
    /// writer was told the write failed), neither on a retry nor after a crash.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_frame_whose_sync_failed_is_never_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open_with(dir.path(), retrying()).unwrap();
        write_versions(&store, "a", 1, 3).await;
        store.inner.writer.lock().wal.fail_next_sync = true;
        let err = store
            .commit(&[put("a", 4, r#"{"failed":true}"#)])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Io(_)), "{err:?}");
        assert!(err.to_string().contains("retr"), "{err}");
        until_resumed(&store).await;
        // A crash now: the failed batch is not in the log.
        let crashed = crash_copy(dir.path());
        let reopened = EmbeddedStore::open_with(crashed.path(), manual()).unwrap();
        assert_versions(&reopened, "a", 3).await;
        drop(reopened);
        // Nor in the store that resumed: version 4 is free for the next write.
        let outcome = store.commit(&[put("a", 4, r#"{"n":4}"#)]).await.unwrap();
        assert_eq!(outcome, vec![WriteOutcome::Committed]);
        let crashed = crash_copy(dir.path());
        drop(store);
        let store = EmbeddedStore::open_with(crashed.path(), manual()).unwrap();
        assert_eq!(
            store.get("a").await.unwrap().unwrap().data,
            r#"{"n":4}"#.to_owned()
        );
    }

    /// A failed commit to redb after the frame was synced: the retry reopens redb, which
    /// replays the frame, so the batch is stored (a failed commit may or may not be, see
    /// `Store::commit`) and the store takes writes again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_redb_commit_is_retried_by_reopening_the_data_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open_with(dir.path(), retrying()).unwrap();
        write_versions(&store, "a", 1, 3).await;
        store.inner.writer.lock().fail_next_redb_commit = true;
        let err = store
            .commit(&[put("a", 4, r#"{"v":4}"#)])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("write-ahead log"), "{err}");
        until_resumed(&store).await;
        assert_eq!(
            store.stats().replayed_frames,
            1,
            "the reopening replayed the frame"
        );
        assert_versions(&store, "a", 4).await;
        write_versions(&store, "a", 5, 5).await;
        drop(store);
        let store = EmbeddedStore::open_with(dir.path(), manual()).unwrap();
        assert_versions(&store, "a", 5).await;
    }

    /// redb's cache stays within the configured size however much is written and read
    /// (redb's own default would let it grow to 1 GiB).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redb_keeps_its_cache_within_the_configured_size() {
        let dir = tempfile::tempdir().unwrap();
        let cache = 1 << 20;
        let options = EmbeddedOptions {
            cache_size: cache,
            checkpoint_bytes: 2 << 20,
            ..manual()
        };
        let store = EmbeddedStore::open_with(dir.path(), options).unwrap();
        // 8 MiB of values, each record written twice, then every one read back.
        let value = format!(r#"{{"pad":"{}"}}"#, "x".repeat(16 << 10));
        for version in 1..=2 {
            for chunk in 0..8 {
                let batch: Vec<Write> = (0..32)
                    .map(|i| put(&format!("big/{chunk}/{i}"), version, &value))
                    .collect();
                store.commit(&batch).await.unwrap();
            }
            store.checkpoint().unwrap();
        }
        for chunk in 0..8 {
            for i in 0..32 {
                let name = format!("big/{chunk}/{i}");
                assert_eq!(store.get(&name).await.unwrap().unwrap().version, 2);
            }
        }
        let used = store
            .inner
            .read(|db| Ok(db.cache_stats().used_bytes()))
            .unwrap();
        // Zero would mean that redb counts nothing (its `cache_metrics` feature is off),
        // and this test could not fail.
        assert!(used > 0, "redb reports its cache (feature cache_metrics)");
        assert!(used <= cache, "{used} bytes cached, more than {cache}");
    }

    /// A log and a data file that do not belong together are refused, naming the log,
    /// instead of being merged into something no one wrote.
    #[tokio::test]
    async fn a_log_that_does_not_fit_the_data_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open_with(dir.path(), manual()).unwrap();
        write_versions(&store, "a", 1, 3).await;
        let early = crash_copy(dir.path());
        write_versions(&store, "a", 4, 6).await;
        let late = crash_copy(dir.path());
        drop(store);

        let refused = |dir: &Path, needle: &str| match EmbeddedStore::open_with(dir, manual()) {
            Err(StoreError::Open { path, reason }) => {
                assert!(path.ends_with(WAL_FILE_NAME), "{path}");
                assert!(reason.reason().contains(needle), "{needle:?} in {reason}");
            }
            other => panic!("expected the log to be refused, got {other:?}"),
        };

        // A data file that includes frames the log lacks.
        let mixed = tempfile::tempdir().unwrap();
        {
            // Durable state with frames 1..6 applied but the cycle still at its start:
            // reopen `late` after a failed append (no checkpoint on close).
            let store = EmbeddedStore::open_with(late.path(), manual()).unwrap();
            store.inner.writer.lock().wal.fail_next_append = Some(std::io::ErrorKind::Other);
            store.commit(&[put("x", 1, "{}")]).await.unwrap_err();
        }
        std::fs::copy(late.path().join(FILE_NAME), mixed.path().join(FILE_NAME)).unwrap();
        std::fs::copy(
            early.path().join(WAL_FILE_NAME),
            mixed.path().join(WAL_FILE_NAME),
        )
        .unwrap();
        refused(
            mixed.path(),
            "up to sequence number 6, but the log ends at 3",
        );

        // A log whose frames do not apply to the data file: frames 4..6 of `late` on top
        // of a data file that already has versions 4..6 through other frames.
        let other = tempfile::tempdir().unwrap();
        {
            let store = EmbeddedStore::open_with(other.path(), manual()).unwrap();
            write_versions(&store, "a", 1, 6).await;
            store.inner.writer.lock().wal.fail_next_append = Some(std::io::ErrorKind::Other);
            store.commit(&[put("x", 1, "{}")]).await.unwrap_err();
        }
        // A data file that went another way after frame 3 (the logs share their id).
        let diverged = tempfile::tempdir().unwrap();
        {
            let store = EmbeddedStore::open_with(early.path(), manual()).unwrap();
            // Replays 1..3; a different write 4 makes the data file differ from the log.
            store.commit(&[put("z", 1, "{}")]).await.unwrap();
            store.inner.writer.lock().wal.fail_next_append = Some(std::io::ErrorKind::Other);
            store.commit(&[put("x", 1, "{}")]).await.unwrap_err();
        }
        std::fs::copy(
            early.path().join(FILE_NAME),
            diverged.path().join(FILE_NAME),
        )
        .unwrap();
        std::fs::copy(
            late.path().join(WAL_FILE_NAME),
            diverged.path().join(WAL_FILE_NAME),
        )
        .unwrap();
        refused(
            diverged.path(),
            r#"frame 5 writes record "a" expecting version 4, but the data file has version 3"#,
        );

        // And a log of another directory.
        std::fs::copy(
            other.path().join(WAL_FILE_NAME),
            late.path().join(WAL_FILE_NAME),
        )
        .unwrap();
        refused(late.path(), "another data directory");
    }

    /// Without its log a data directory is refused, with advice; after a clean shutdown
    /// the advice (an empty log) works.
    #[tokio::test]
    async fn a_missing_log_is_refused_and_an_empty_one_accepted_after_a_clean_close() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open_with(dir.path(), manual()).unwrap();
        write_versions(&store, "a", 1, 3).await;
        drop(store);
        let log = dir.path().join(WAL_FILE_NAME);
        std::fs::remove_file(&log).unwrap();
        match EmbeddedStore::open_with(dir.path(), manual()) {
            Err(StoreError::Open { path, reason }) => {
                assert!(path.ends_with(WAL_FILE_NAME), "{path}");
                assert!(
                    reason.reason().contains("missing") && reason.reason().contains("touch"),
                    "{reason}"
                );
            }
            other => panic!("expected the missing log to be refused, got {other:?}"),
        }
        std::fs::write(&log, b"").unwrap();
        let store = EmbeddedStore::open_with(dir.path(), manual()).unwrap();
        assert_versions(&store, "a", 3).await;
        write_versions(&store, "a", 4, 4).await;
        let crashed = crash_copy(dir.path());
        drop(store);
        let store = EmbeddedStore::open_with(crashed.path(), manual()).unwrap();
        assert_eq!(store.stats().replayed_frames, 1);
        assert_versions(&store, "a", 4).await;
    }

    /// The log fills up to the byte limit, then a checkpoint starts it over: the file
    /// stays bounded however much is written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checkpoints_by_size_keep_the_log_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let limit = 64 * 1024;
        let options = EmbeddedOptions {
            checkpoint_bytes: limit,
            ..manual()
        };
        let store = EmbeddedStore::open_with(dir.path(), options).unwrap();
        let value = format!(r#"{{"pad":"{}"}}"#, "x".repeat(1000));
        for v in 1..=500u64 {
            store.commit(&[put("big", v, &value)]).await.unwrap();
        }
        // The thread checkpoints shortly after the limit is passed.
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while store.stats().log_bytes >= limit && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let stats = store.stats();
        assert!(stats.checkpoints >= 5, "{stats:?}");
        // Cycles of about `limit` bytes fit the first growth step of the file.
        assert_eq!(stats.log_file_bytes, wal::GROW_STEP, "{stats:?}");
        let file = std::fs::metadata(dir.path().join(WAL_FILE_NAME))
            .unwrap()
            .len();
        assert_eq!(file, stats.log_file_bytes);
        drop(store);
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(store.get("big").await.unwrap().unwrap().version, 500);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checkpoints_by_time_follow_the_first_frame() {
        let dir = tempfile::tempdir().unwrap();
        let options = EmbeddedOptions {
            checkpoint_interval: std::time::Duration::from_millis(100),
            ..manual()
        };
        let store = EmbeddedStore::open_with(dir.path(), options).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert_eq!(store.stats().checkpoints, 0, "nothing to checkpoint");
        write_versions(&store, "a", 1, 2).await;
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while store.stats().checkpoints == 0 && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let stats = store.stats();
        assert_eq!((stats.checkpoints, stats.log_bytes), (1, 0), "{stats:?}");
        assert_eq!(version_in_redb_file_while_open(&store, "a"), Some(2));
    }

    /// The durable state of the redb file, through a copy (the store holds the file).
    fn version_in_redb_file_while_open(store: &EmbeddedStore, name: &str) -> Option<u64> {
        let copy = tempfile::tempdir().unwrap();
        std::fs::copy(store.file(), copy.path().join(FILE_NAME)).unwrap();
        version_in_redb_file(copy.path(), name)
    }

    /// Writes of schema 3 taking `name` from nothing to `last`: created empty at 0
    /// without an entry, then one entry per version (as `put` numbers data and ops).
    fn legacy_puts(name: &str, last: u64) -> Vec<codec::LegacyWrite> {
        (0..=last)
            .map(|v| codec::LegacyWrite::Put {
                record: record(name, v, &format!(r#"{{"v":{v}}}"#)),
                base_version: v.checked_sub(1),
                entry: (v > 0).then(|| entry(v)),
            })
            .collect()
    }

    /// A data directory of schema 2 (redb only, durable) opens, gets a log, and is schema
    /// 4 from then on; its records and journals read as before, with a create at 0.
    #[tokio::test]
    async fn schema_2_directories_are_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
            let txn = db.begin_write().unwrap();
            apply_legacy(&txn, dir.path(), &legacy_puts("old", 2)).unwrap();
            {
                let mut meta = txn.open_table(META).unwrap();
                meta.insert(SCHEMA_KEY, 2).unwrap();
            }
            txn.commit().unwrap();
        }
        assert!(!dir.path().join(WAL_FILE_NAME).exists());
        let store = EmbeddedStore::open_with(dir.path(), manual()).unwrap();
        assert!(dir.path().join(WAL_FILE_NAME).exists());
        assert_versions(&store, "old", 2).await;
        write_versions(&store, "old", 3, 3).await;
        let crashed = crash_copy(dir.path());
        drop(store);
        assert_eq!(meta_value(dir.path(), SCHEMA_KEY), Some(SCHEMA_VERSION));
        assert_eq!(meta_value(crashed.path(), SCHEMA_KEY), Some(SCHEMA_VERSION));
        // The upgrade itself is durable, and the log works from the first frame.
        let store = EmbeddedStore::open_with(crashed.path(), manual()).unwrap();
        assert_eq!(store.stats().replayed_frames, 1);
        assert_versions(&store, "old", 3).await;
    }

    /// Writes of schema 3 taking `name` from nothing to `last` with real journal ops:
    /// created empty at 0, then `patch n = v` at each version `v` (without an entry at
    /// the versions in `unjournaled`), its value `{"n":v}` except `last_data` at `last`.
    fn legacy_patches(
        name: &str,
        last: u64,
        unjournaled: &[u64],
        last_data: Option<&str>,
    ) -> Vec<codec::LegacyWrite> {
        (0..=last)
            .map(|v| {
                let data = match (v, last_data) {
                    (0, _) => "{}".to_owned(),
                    (v, Some(data)) if v == last => data.to_owned(),
                    (v, _) => format!(r#"{{"n":{v}}}"#),
                };
                codec::LegacyWrite::Put {
                    record: record(name, v, &data),
                    base_version: v.checked_sub(1),
                    entry: (v > 0 && !unjournaled.contains(&v)).then(|| JournalEntry {
                        version: v,
                        time: 3,
                        op: format!(r#"{{"op":"patch","path":"n","data":{v}}}"#),
                        author: None,
                        origin: None,
                    }),
                }
            })
            .collect()
    }

    /// The upgrade replays the journal of a record that exceeds retention to give it
    /// milestones, and the opening prunes it; a record whose journal does not lead to
    /// its value (another value at the end, or an entry missing) keeps every entry,
    /// only its current milestone, and reads and takes writes as before.
    #[tokio::test]
    async fn the_upgrade_replays_journals_and_keeps_those_that_do_not_replay() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
            let txn = db.begin_write().unwrap();
            let mut writes = legacy_patches("good", 250, &[], None);
            writes.extend(legacy_patches("tampered", 250, &[], Some(r#"{"n":"x"}"#)));
            writes.extend(legacy_patches("gap", 250, &[100], None));
            assert!(
                apply_legacy(&txn, dir.path(), &writes)
                    .unwrap()
                    .iter()
                    .all(|o| *o == WriteOutcome::Committed)
            );
            txn.open_table(META).unwrap().insert(SCHEMA_KEY, 2).unwrap();
            txn.commit().unwrap();
        }
        let options = EmbeddedOptions {
            history: History {
                milestone_every: 10,
                keep_ops: Some(100),
                keep_age: None,
            },
            ..manual()
        };
        let upgraded = {
            // What the upgrade alone stored, before the sweep.
            let (db, _wal, _) = open_files(&dir.path().join(FILE_NAME), &options).unwrap();
            let txn = db.begin_read().unwrap();
            let milestones = txn.open_table(MILESTONES).unwrap();
            let count = |name: &str| {
                milestone_times(&milestones, dir.path(), name)
                    .unwrap()
                    .iter()
                    .map(|m| m.0)
                    .collect::<Vec<_>>()
            };
            [count("good"), count("tampered"), count("gap")]
        };
        assert_eq!(upgraded[0], (150..=250).step_by(10).collect::<Vec<_>>());
        assert_eq!(
            upgraded[1],
            [250],
            "no milestone of a journal that does not replay"
        );
        assert_eq!(upgraded[2], [250]);

        let store = EmbeddedStore::open_with(dir.path(), options).unwrap();
        assert_eq!(store.history_start("good").await.unwrap(), Some(150));
        assert_eq!(
            versions(store.journal("good", 0, u64::MAX).await.unwrap()),
            (151..=250).collect::<Vec<_>>()
        );
        let m = store.milestone("good", 199).await.unwrap().unwrap();
        assert_eq!((m.version, m.data.as_str()), (190, r#"{"n":190}"#));
        assert_eq!(store.history_start("tampered").await.unwrap(), Some(0));
        assert_eq!(
            versions(store.journal("tampered", 0, u64::MAX).await.unwrap()),
            (0..=250).collect::<Vec<_>>()
        );
        assert_eq!(store.milestone("tampered", 249).await.unwrap(), None);
        assert_eq!(
            store.get("tampered").await.unwrap().unwrap().data,
            r#"{"n":"x"}"#
        );
        assert_eq!(store.history_start("gap").await.unwrap(), Some(0));
        assert_eq!(
            store.journal("gap", 0, u64::MAX).await.unwrap().len(),
            250,
            "every entry it had"
        );
        let write = Write::Put {
            record: record("tampered", 251, r#"{"n":251}"#),
            base_version: Some(250),
            entries: vec![entry(251)],
        };
        assert_eq!(
            store.commit(&[write]).await.unwrap(),
            [WriteOutcome::Committed]
        );
    }

    /// Checks each record's chain in the log (the links from its newest entry down to
    /// the one that links to 0): versions fall by one along it, it ends at the entry
    /// after the history start (or at the create, before any prune), and every `log`
    /// entry is on a chain; and each `after_milestone` row names, on its record's chain,
    /// the entry after a milestone at or above the history start. Returns the number of
    /// entries.
    fn check_chains(db: &Database) -> u64 {
        use redb::ReadableTableMetadata;
        let txn = db.begin_read().unwrap();
        let records = txn.open_table(RECORDS).unwrap();
        let log = txn.open_table(LOG).unwrap();
        let milestones = txn.open_table(MILESTONES).unwrap();
        let rows = txn.open_table(AFTER_MILESTONE).unwrap();
        let mut total = 0;
        let mut rows_seen = 0;
        for item in records.iter().unwrap() {
            let (key, value) = item.unwrap();
            let name = std::str::from_utf8(key.value()).unwrap();
            let head = codec::decode_record_head(name, value.value()).unwrap();
            let mut chain = Vec::new();
            let mut seq = head.log_head;
            while seq != 0 {
                let value = log.get(seq).unwrap().expect("a linked entry exists");
                let (version, prev) = codec::log_link(name, seq, value.value()).unwrap();
                if let Some(&(newer, _)) = chain.last() {
                    assert_eq!(version + 1, newer, "{name}: versions fall by one");
                }
                chain.push((version, seq));
                seq = prev;
            }
            if let Some(&(oldest, _)) = chain.last() {
                assert!(
                    oldest == head.start + 1 || (oldest == head.start && oldest == 0),
                    "{name}: the chain ends at {oldest}, history starts at {}",
                    head.start
                );
            }
            let (lo, hi) = journal_bounds(name, 0, u64::MAX);
            for item in rows.range::<&[u8]>(lo.as_slice()..=hi.as_slice()).unwrap() {
                let (key, seq) = item.unwrap();
                let milestone = codec::journal_key_version(name, key.value()).unwrap();
                assert!(
                    milestone >= head.start,
                    "{name}: row for {milestone} below the start"
                );
                assert!(
                    milestones
                        .get(codec::journal_key(name, milestone).as_slice())
                        .unwrap()
                        .is_some(),
                    "{name}: row for {milestone}, which is no milestone"
                );
                assert!(
                    chain.contains(&(milestone + 1, seq.value())),
                    "{name}: the row for {milestone} names entry {}, not the next version",
                    seq.value()
                );
                rows_seen += 1;
            }
            total += chain.len() as u64;
        }
        assert_eq!(
            rows.len().unwrap(),
            rows_seen,
            "no row of a record without one"
        );
        // Chains pruned and not yet deleted (`pruned.rs`): whole, and off every record's.
        let mut noted = 0;
        for item in txn
            .open_table(pruned::PRUNED_CHAINS)
            .unwrap()
            .iter()
            .unwrap()
        {
            let (top, row) = item.unwrap();
            let (start, name) = row.value().split_first_chunk::<8>().unwrap();
            let (start, name) = (
                u64::from_le_bytes(*start),
                std::str::from_utf8(name).unwrap(),
            );
            let mut seq = top.value();
            let mut above = start + 1;
            while seq != 0 {
                let value = log.get(seq).unwrap().expect("a noted entry exists");
                let (version, prev) = codec::log_link(name, seq, value.value()).unwrap();
                assert!(version < above, "{name}: noted chain falls below {start}");
                noted += 1;
                above = version;
                seq = prev;
            }
        }
        assert_eq!(
            log.len().unwrap(),
            total + noted,
            "no log entry off a chain"
        );
        total
    }

    /// Entries pruned and not yet deleted (`pruned.rs`).
    fn noted_chains(store: &EmbeddedStore) -> u64 {
        use redb::ReadableTableMetadata;
        store
            .inner
            .read(|db| {
                let txn = db.begin_read().unwrap();
                Ok(txn
                    .open_table(pruned::PRUNED_CHAINS)
                    .unwrap()
                    .len()
                    .unwrap())
            })
            .unwrap()
    }

    /// Entries in the log table, pruned or not.
    fn log_entries(store: &EmbeddedStore) -> u64 {
        use redb::ReadableTableMetadata;
        store
            .inner
            .read(|db| {
                Ok(db
                    .begin_read()
                    .unwrap()
                    .open_table(LOG)
                    .unwrap()
                    .len()
                    .unwrap())
            })
            .unwrap()
    }

    fn check_store_chains(store: &EmbeddedStore) -> u64 {
        store.inner.read(|db| Ok(check_chains(db))).unwrap()
    }

    /// The chains stay whole and the `after_milestone` rows right after writes and
    /// prunes (several records in one batch, chained writes), a delete and a write after
    /// it, a crash and its replay, a clean reopen, and prunes go on through it; reads see
    /// exactly the kept history.
    #[tokio::test]
    async fn chains_stay_whole_through_prunes() {
        let dir = tempfile::tempdir().unwrap();
        let options = EmbeddedOptions {
            history: History {
                milestone_every: 5,
                keep_ops: Some(20),
                keep_age: None,
            },
            ..manual()
        };
        let store = EmbeddedStore::open_with(dir.path(), options.clone()).unwrap();
        let mut pruned_once = false;
        for v in 1..=120u64 {
            // "a" and "b" in one batch, "c" twice (chained) every other commit.
            let mut batch = vec![put("a", v, "{}"), put("b", v, "{}")];
            if v % 2 == 0 {
                batch.push(put("c", v - 1, "{}"));
                batch.push(put("c", v, "{}"));
            }
            let outcomes = store.commit(&batch).await.unwrap();
            assert!(
                outcomes.iter().all(|o| *o == WriteOutcome::Committed),
                "v{v}"
            );
            check_store_chains(&store);
            let start = store.history_start("a").await.unwrap().unwrap();
            pruned_once |= start > 0;
            assert_eq!(
                versions(store.journal("a", 0, u64::MAX).await.unwrap()),
                (if start == 0 { 0 } else { start + 1 }..=v).collect::<Vec<_>>(),
                "a at v{v}, history from {start}"
            );
        }
        assert!(pruned_once, "the test prunes");
        assert!(noted_chains(&store) > 0, "prunes note their chains");
        // The checkpoint deletes them.
        store.checkpoint().unwrap();
        assert_eq!(noted_chains(&store), 0);
        let kept = check_store_chains(&store);
        let total = log_entries(&store);
        assert_eq!(total, kept, "the checkpoint deleted every pruned entry");
        assert!(kept < 3 * 60, "pruning bounds the log: {kept} entries");
        // A delete (tombstone), then a write after it, and more writes that prune.
        store.commit(&[delete("a", 121)]).await.unwrap();
        check_store_chains(&store);
        for v in 122..=170 {
            assert_eq!(
                store.commit(&[put("a", v, "{}")]).await.unwrap(),
                [WriteOutcome::Committed]
            );
        }
        check_store_chains(&store);
        let start = store.history_start("a").await.unwrap().unwrap();
        assert!(start > 121, "pruned past the delete: {start}");
        // A crash: replay applies the frames (and prunes) on the file's older state.
        let crashed = crash_copy(dir.path());
        write_versions(&store, "b", 121, 130).await;
        drop(store);
        let store = EmbeddedStore::open_with(crashed.path(), options.clone()).unwrap();
        assert!(store.stats().replayed_frames > 0);
        check_store_chains(&store);
        drop(store);
        // A clean reopen, and writes that prune after it.
        let store = EmbeddedStore::open_with(dir.path(), options).unwrap();
        check_store_chains(&store);
        assert_eq!(
            noted_chains(&store),
            0,
            "the clean close deleted the pruned chains"
        );
        write_versions(&store, "b", 131, 160).await;
        check_store_chains(&store);
        let start = store.history_start("b").await.unwrap().unwrap();
        assert!(start >= 120, "b pruned after the reopen: {start}");
        assert_eq!(
            versions(store.journal("b", 0, u64::MAX).await.unwrap()),
            (start + 1..=160).collect::<Vec<_>>()
        );
    }

    /// A sweep that gives way to a waiting commit stops after one whole chain: the
    /// chains left stay whole and noted, reads see the same history, and later slices
    /// delete the rest, so that the log ends as a sweep all at once leaves it.
    #[tokio::test]
    async fn a_sweep_giving_way_leaves_whole_chains() {
        let dir = tempfile::tempdir().unwrap();
        let options = EmbeddedOptions {
            history: History {
                milestone_every: 5,
                keep_ops: Some(20),
                keep_age: None,
            },
            ..manual()
        };
        let store = EmbeddedStore::open_with(dir.path(), options).unwrap();
        for v in 1..=80u64 {
            let batch = [put("a", v, "{}"), put("b", v, "{}"), put("c", v, "{}")];
            store.commit(&batch).await.unwrap();
        }
        let noted = noted_chains(&store);
        assert!(noted >= 3, "the writes pruned: {noted} chains noted");
        let journal = store.journal("b", 0, u64::MAX).await.unwrap();
        let mut slices = 0;
        loop {
            let more = store
                .inner
                .read(|db| checkpoint::sweep_slice(db, &store.inner.dir, &|| true))
                .unwrap();
            slices += 1;
            assert_eq!(noted_chains(&store), noted - slices, "one chain per slice");
            check_store_chains(&store);
            assert_eq!(store.journal("b", 0, u64::MAX).await.unwrap(), journal);
            if !more {
                break;
            }
        }
        assert_eq!(slices, noted);
        let kept = check_store_chains(&store);
        let total = log_entries(&store);
        assert_eq!(total, kept, "every pruned entry was deleted");
    }

    /// The checkpoint thread's sweep: slices walked without the writer and carried out
    /// under it delete every pruned entry and only those, chain by whole chain, whether a
    /// slice's entries lie close together (deleted in one pass over their range) or far
    /// apart (one by one); a plan whose rows changed before it was carried out changes
    /// nothing.
    #[tokio::test]
    async fn planned_sweeps_delete_every_pruned_entry_and_nothing_else() {
        // (records written per commit, entries per slice): 3 records and 10 entries give
        // slices of several chains close together, 6 and 1 single chains spread out.
        for (records, budget) in [(3, 10), (6, 1)] {
            planned_sweeps(records, budget).await;
        }
    }

    async fn planned_sweeps(records: usize, budget: u64) {
        let dir = tempfile::tempdir().unwrap();
        let options = EmbeddedOptions {
            history: History {
                milestone_every: 5,
                keep_ops: Some(20),
                keep_age: None,
            },
            ..manual()
        };
        let store = EmbeddedStore::open_with(dir.path(), options).unwrap();
        let names: Vec<String> = (0..records).map(|i| format!("r{i}")).collect();
        for v in 1..=80u64 {
            let batch: Vec<Write> = names.iter().map(|name| put(name, v, "{}")).collect();
            store.commit(&batch).await.unwrap();
        }
        let noted = noted_chains(&store);
        assert!(
            noted >= 2 * records as u64,
            "the writes pruned: {noted} chains noted"
        );
        let mut journals = Vec::new();
        for name in &names {
            journals.push(store.journal(name, 0, u64::MAX).await.unwrap());
        }
        let plan = |budget| {
            store
                .inner
                .read(|db| pruned::plan(db, &store.inner.dir, budget))
                .unwrap()
        };
        let carry_out = |plan: &pruned::Plan| {
            store
                .inner
                .read(|db| checkpoint::sweep_planned(db, &store.inner.dir, plan))
                .unwrap()
        };

        // A plan whose first chain another sweep deleted first is dropped whole.
        let stale = plan(budget).expect("chains are noted");
        store
            .inner
            .read(|db| checkpoint::sweep_slice(db, &store.inner.dir, &|| true))
            .unwrap();
        let entries = log_entries(&store);
        carry_out(&stale);
        assert_eq!(log_entries(&store), entries, "a stale plan deleted entries");
        assert_eq!(noted_chains(&store), noted - 1, "a stale plan deleted rows");

        let mut slices = 0;
        while let Some(slice) = plan(budget) {
            let before = noted_chains(&store);
            carry_out(&slice);
            slices += 1;
            assert!(noted_chains(&store) < before, "a slice deleted no chain");
            check_store_chains(&store);
            for (name, journal) in names.iter().zip(&journals) {
                assert_eq!(&store.journal(name, 0, u64::MAX).await.unwrap(), journal);
            }
        }
        assert!(slices >= 2, "{slices} slices");
        assert_eq!(noted_chains(&store), 0);
        let kept = check_store_chains(&store);
        assert_eq!(log_entries(&store), kept, "every pruned entry was deleted");
    }

    /// After the upgrade from schema 3 (which deleted a record's entries with it: a
    /// record deleted and created again has its new entries only), the sweep on opening
    /// prunes by walking (no `after_milestone` rows yet), and later prunes by the rows
    /// later writes add. A file that has the index of an unreleased build of schema 4
    /// loses it on opening.
    #[tokio::test]
    async fn the_upgrade_prunes_and_later_writes_index() {
        for old_index in [false, true] {
            upgrade_prunes_and_later_writes_index(old_index).await;
        }
    }

    async fn upgrade_prunes_and_later_writes_index(old_index: bool) {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
            let txn = db.begin_write().unwrap();
            let mut writes = legacy_patches("long", 250, &[], None);
            writes.extend(legacy_puts("short", 30));
            writes.extend(legacy_puts("again", 40));
            writes.push(codec::LegacyWrite::Delete {
                name: "again".to_owned(),
                base_version: 40,
            });
            writes.extend(legacy_puts("again", 7));
            assert!(
                apply_legacy(&txn, dir.path(), &writes)
                    .unwrap()
                    .iter()
                    .all(|o| *o == WriteOutcome::Committed)
            );
            if old_index {
                txn.open_table(LOG_INDEX_UNRELEASED)
                    .unwrap()
                    .insert(codec::journal_key("long", 1).as_slice(), 1)
                    .unwrap();
            }
            txn.open_table(META).unwrap().insert(SCHEMA_KEY, 2).unwrap();
            txn.commit().unwrap();
        }
        let options = EmbeddedOptions {
            history: History {
                milestone_every: 10,
                keep_ops: Some(100),
                keep_age: None,
            },
            ..manual()
        };
        let store = EmbeddedStore::open_with(dir.path(), options).unwrap();
        assert_eq!(check_store_chains(&store), 100 + 30 + 7);
        let old_table = store.inner.read(|db| {
            let txn = db.begin_read().unwrap();
            Ok(txn.open_table(LOG_INDEX_UNRELEASED).is_ok())
        });
        assert!(!old_table.unwrap(), "the unreleased index is dropped");
        assert_eq!(store.history_start("long").await.unwrap(), Some(150));
        assert_eq!(
            versions(store.journal("again", 0, u64::MAX).await.unwrap()),
            (0..=7).collect::<Vec<_>>()
        );
        for v in 251..=360 {
            let write = Write::Put {
                record: record("long", v, &format!(r#"{{"n":{v}}}"#)),
                base_version: Some(v - 1),
                entries: vec![JournalEntry {
                    version: v,
                    time: 3,
                    op: format!(r#"{{"op":"patch","path":"n","data":{v}}}"#),
                    author: None,
                    origin: None,
                }],
            };
            assert_eq!(
                store.commit(&[write]).await.unwrap(),
                [WriteOutcome::Committed]
            );
            check_store_chains(&store);
        }
        let start = store.history_start("long").await.unwrap().unwrap();
        assert!(start >= 250, "pruned after the upgrade: {start}");
        assert_eq!(
            versions(store.journal("long", 0, u64::MAX).await.unwrap()),
            (start + 1..=360).collect::<Vec<_>>()
        );
    }

    /// What the upgrade's replay costs and gains: one record written `WRITES` (default
    /// 100,000) times with 1 KB values by the release before issue 13 (whole-value
    /// updates, as the issue's data set), opened with the default settings. Run with
    /// `WRITES=100000 cargo test -p recordsync-store --release --lib upgrade_replay_cost
    /// -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement, not a test"]
    fn upgrade_replay_cost() {
        let writes: u64 = std::env::var("WRITES")
            .ok()
            .and_then(|w| w.parse().ok())
            .unwrap_or(100_000);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE_NAME);
        let pad = "x".repeat(1000);
        let started = Instant::now();
        {
            let db = Database::create(&file).unwrap();
            let txn = db.begin_write().unwrap();
            let value = |v: u64| format!(r#"{{"n":{v},"pad":"{pad}"}}"#);
            let puts: Vec<codec::LegacyWrite> = (0..=writes)
                .map(|v| codec::LegacyWrite::Put {
                    record: record("big", v, &if v == 0 { "{}".into() } else { value(v) }),
                    base_version: v.checked_sub(1),
                    entry: (v > 0).then(|| JournalEntry {
                        version: v,
                        time: 3,
                        op: format!(r#"{{"op":"update","data":{}}}"#, value(v)),
                        author: None,
                        origin: None,
                    }),
                })
                .collect();
            apply_legacy(&txn, dir.path(), &puts).unwrap();
            txn.open_table(META).unwrap().insert(SCHEMA_KEY, 2).unwrap();
            txn.commit().unwrap();
        }
        let size = || std::fs::metadata(&file).unwrap().len();
        let before = size();
        println!(
            "{writes} writes of schema 3 (1 KB values): {:.1} MB, written in {:?}",
            before as f64 / 1e6,
            started.elapsed()
        );
        // The upgrade alone (with its replay), on a copy.
        let copy = tempfile::tempdir().unwrap();
        std::fs::copy(&file, copy.path().join(FILE_NAME)).unwrap();
        let started = Instant::now();
        drop(open_files(&copy.path().join(FILE_NAME), &EmbeddedOptions::default()).unwrap());
        println!(
            "the upgrade alone (replay included) took {:?}",
            started.elapsed()
        );
        drop(copy);
        let started = Instant::now();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let opened = started.elapsed();
        let after = size();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let start = rt.block_on(store.history_start("big")).unwrap().unwrap();
        let kept = rt
            .block_on(store.journal("big", 0, u64::MAX))
            .unwrap()
            .len();
        println!(
            "opened (upgrade with replay, sweep, compaction) in {opened:?}: {:.1} MB; \
             history starts at {start}, {kept} entries kept",
            after as f64 / 1e6
        );
        assert!(after < before / 10, "{before} -> {after}");
    }

    /// A build of schema 2 would ignore the log; it must refuse the directory. (Its
    /// check is the one `newer_schema_is_refused_with_advice` runs against this build.)
    #[test]
    fn the_schema_says_a_log_is_needed() {
        const { assert!(SCHEMA_VERSION > 2) };
        let dir = tempfile::tempdir().unwrap();
        drop(EmbeddedStore::open(dir.path()).unwrap());
        assert_eq!(meta_value(dir.path(), SCHEMA_KEY), Some(SCHEMA_VERSION));
        assert!(meta_value(dir.path(), WAL_ID_KEY).is_some());
    }

    /// How redb's memory and file grow with many commits between checkpoints, and how long
    /// a checkpoint of that much takes (commits wait meanwhile). Run with
    /// `cargo test -p recordsync-store --release --lib redb_growth -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement, not a test"]
    fn redb_growth_between_checkpoints() {
        fn rss_mib() -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0)
                >> 10
        }
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open_with(dir.path(), manual()).unwrap();
        let mut versions = vec![0u64; 100];
        let mut next = 0usize;
        // Batches of 40 writes over 100 records, as in the durable-writes benchmark.
        for mib in [1, 4, 16, 64, 16, 4, 1] {
            let t = Instant::now();
            let mut commits = 0;
            while store.stats().log_bytes < mib << 20 {
                let batch: Vec<Write> = (0..40)
                    .map(|_| {
                        let r = next % 100;
                        next += 7;
                        versions[r] += 1;
                        put(
                            &format!("growth/{r}"),
                            versions[r],
                            r#"{"a":1,"b":"typical"}"#,
                        )
                    })
                    .collect();
                commit_blocking(&store.inner, &batch).unwrap();
                commits += 1;
            }
            let commit_time = t.elapsed();
            let (rss, redb) = (
                rss_mib(),
                std::fs::metadata(store.file()).unwrap().len() >> 20,
            );
            let t = Instant::now();
            store.checkpoint().unwrap();
            println!(
                "{mib:>3} MiB of log ({commits} commits of 40 writes in {:.1} s): RSS {rss} MiB, \
                 redb file {redb} MiB; checkpoint {:.0} ms, then RSS {} MiB, redb file {} MiB",
                commit_time.as_secs_f64(),
                t.elapsed().as_secs_f64() * 1e3,
                rss_mib(),
                std::fs::metadata(store.file()).unwrap().len() >> 20
            );
        }
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
                assert!(reason.reason().contains("newer recordsync"), "{reason}");
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
                                    store
                                        .inner
                                        .read(|db| get_blocking(db, &store.inner.dir, name))
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
