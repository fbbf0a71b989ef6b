//! Taking writes again after a failed write (a full disk, an I/O error), without a restart.
//!
//! When an append to the log, a commit to redb or a checkpoint fails, the store records
//! the [`Failure`] and refuses every commit with its error, which names the cause
//! ([`StoreError::Full`] for a full disk); [`Store::ping`](crate::Store::ping), and with it
//! the server's health check, fails too. Nothing acknowledged is at risk: every
//! acknowledged write is in a synced log frame.
//!
//! The checkpoint thread then retries every
//! [`EmbeddedOptions::retry_interval`](super::EmbeddedOptions::retry_interval)
//! (`options.rs`). A retry, under the writer lock, so with no commit or checkpoint running:
//!
//! 1. **Probe**: write as many bytes as the log holds since the last checkpoint, at least
//!    [`PROBE_BYTES`], to `recordsync.probe` in the data directory, sync the file and
//!    remove it. That is about what the next checkpoint writes to redb's file, and the
//!    next log frames need room too. While the disk has less room this fails and the
//!    store keeps refusing writes, rather than taking some and failing again at the next
//!    checkpoint (with a probe of 1 MiB, a server given 3 MiB back while its log held
//!    4 MiB took writes again and failed at its next checkpoint, at once).
//! 2. **Scrub the log** if an append failed (`Wal::scrub`): its bytes are zeroed and
//!    synced. After a failed write or sync nothing says what reached the disk, so those
//!    bytes are never trusted: the failed batch (its writer was told it failed) is
//!    definitely not stored, and the next frame takes its place.
//! 3. **Reopen redb** if a write to its file failed (a commit, a checkpoint, or a page it
//!    wrote out of its cache during a transaction): redb then refuses all work, reads
//!    included, until the file is opened again. The store closes it and opens it exactly
//!    as at start-up: redb repairs the file to its last durable commit if it must, and
//!    the log's frames after what redb holds are replayed (`recovery.rs`). Reads wait
//!    for the reopening; if it fails they fail with the store's error until a retry
//!    succeeds. If only the log failed, redb was not touched (the batch's transaction was
//!    aborted) and stays open, so reads go on throughout.
//!
//! A step that fails leaves the store refusing writes, with that step's error, until the
//! next retry; each step can be repeated.

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Inner, WAL_FILE_NAME, Writer, open_database, recovery, wal::Wal, write_failure};
use crate::error::StoreError;

/// The probe's file in the data directory; it exists only during a retry.
pub const PROBE_FILE_NAME: &str = "recordsync.probe";

/// The least a retry must be able to write before the store takes writes again: one step
/// of the log's growth (`wal.rs`), so that the next frames have room. A log holding more
/// since the last checkpoint asks for as much as it holds.
pub const PROBE_BYTES: u64 = 1 << 20;

/// Why the store refuses writes, and what a retry must repair.
#[derive(Debug)]
pub(super) struct Failure {
    /// What commits are answered with: the first failure's error, then the last retry's.
    pub error: StoreError,
    /// Whether a write to redb's file failed, so that redb must be reopened.
    pub redb: bool,
    /// When the failure happened or the last retry ran.
    pub since: Instant,
}

/// Which part of the store a failed write belonged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    /// The write-ahead log: redb is untouched.
    Log,
    /// redb's file, or both.
    Redb,
}

impl Inner {
    /// Records that a write failed, so that the store refuses writes until a retry
    /// succeeds, and wakes the thread that retries. Returns `error` for the caller.
    ///
    /// Only I/O failures ([`StoreError::Io`], [`StoreError::Full`]) need this: a damaged
    /// record or an unstorable write fails its batch and leaves the store as it was.
    pub(super) fn fail(&self, writer: &mut Writer, error: StoreError, part: Part) -> StoreError {
        match &mut writer.failure {
            Some(failure) => failure.redb |= part == Part::Redb,
            None => {
                tracing::error!(
                    error = %error,
                    "a write to the data directory failed: refusing writes until one succeeds \
                     again (retrying every {:?}); nothing acknowledged is lost",
                    self.options.retry_interval
                );
                writer.failure = Some(Failure {
                    error: error.clone(),
                    redb: part == Part::Redb,
                    since: Instant::now(),
                });
                *self.failed.lock() = Some(error.clone());
                self.checkpointer.kick();
            }
        }
        error
    }

    /// Retries if the last attempt is
    /// [`retry_interval`](super::EmbeddedOptions::retry_interval) ago;
    /// returns how long until the next one, or `None` once the store takes writes again.
    pub(super) fn retry_if_due(&self, writer: &mut Writer) -> Option<Duration> {
        let failure = writer.failure.as_mut()?;
        let interval = self.options.retry_interval;
        let age = failure.since.elapsed();
        if age < interval {
            return Some(interval - age);
        }
        failure.since = Instant::now();
        match self.resume(writer) {
            Ok(()) => {
                tracing::info!("the data directory takes writes again: writes resume");
                writer.failure = None;
                *self.failed.lock() = None;
                None
            }
            Err(error) => {
                tracing::debug!(error = %error, "retry failed; still refusing writes");
                if let Some(failure) = writer.failure.as_mut() {
                    failure.error = error.clone();
                }
                *self.failed.lock() = Some(error);
                Some(interval)
            }
        }
    }

    /// Steps 1–3 of the module doc.
    fn resume(&self, writer: &mut Writer) -> Result<(), StoreError> {
        probe(&self.dir, writer.wal.cycle_bytes().max(PROBE_BYTES))?;
        writer.wal.scrub()?;
        if writer.failure.as_ref().is_some_and(|f| f.redb) {
            self.reopen(writer)?;
        }
        Ok(())
    }

    /// Closes redb and opens it again with the log, as
    /// [`EmbeddedStore::open_with`](super::EmbeddedStore::open_with) does.
    fn reopen(&self, writer: &mut Writer) -> Result<(), StoreError> {
        let mut db = self.db.write();
        // redb locks its file: the old handle must be closed before the file is opened
        // again. No reader holds it (they hold `db` for reading while they read).
        drop(db.take());
        let (opened, meta) = open_database(&self.file, &self.options)?;
        let wal_path = self.dir.join(WAL_FILE_NAME);
        let mut wal = Wal::open(&wal_path, meta.id)?;
        let replayed = recovery::replay(&opened, &mut wal, &meta, &self.options.history)?;
        if meta.upgrade {
            super::upgrade::upgrade(&opened, &self.file, &self.options.history)?;
        }
        self.replayed_frames
            .fetch_add(replayed.frames, Ordering::Relaxed);
        self.replayed_writes
            .fetch_add(replayed.writes, Ordering::Relaxed);
        tracing::info!(
            file = %self.file.display(),
            frames = replayed.frames,
            writes = replayed.writes,
            "reopened the data file after a failed write; replayed the write-ahead log"
        );
        writer.wal = wal;
        writer.dirty_since = None;
        // The replay wrote past the field indexes: queries make them again.
        self.indexes.lock().clear();
        *db = Some(opened);
        Ok(())
    }
}

/// Writes `bytes` to a file in `dir`, syncs and removes it: fails, saying why, while the
/// filesystem has no room for them.
fn probe(dir: &Path, bytes: u64) -> Result<(), StoreError> {
    let path = dir.join(PROBE_FILE_NAME);
    let written = std::fs::File::create(&path).and_then(|mut file| {
        let chunk = vec![0u8; PROBE_BYTES as usize];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(PROBE_BYTES);
            file.write_all(&chunk[..n as usize])?;
            left -= n;
        }
        file.sync_all()
    });
    // Whatever happened, the probe leaves nothing behind (a failed write may have taken
    // some of the space).
    let removed = std::fs::remove_file(&path);
    let what = || {
        format!(
            "a test write of {} KiB (room for the next checkpoint) to {} failed",
            bytes.div_ceil(1024),
            path.display()
        )
    };
    written.map_err(|e| write_failure(dir, what(), e))?;
    removed.map_err(|e| write_failure(dir, format!("removing {}", path.display()), e))
}
