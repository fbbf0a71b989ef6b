//! Checkpoints: when redb is made durable, so that the write-ahead log can start over.
//!
//! A checkpoint is one redb commit with `Durability::Immediate`: it writes every page the
//! commits since the last one changed (redb keeps them in its cache until then, and
//! writes out, without a sync, what does not fit in half the cache) and syncs the file,
//! then records a new log cycle in `meta` (see the module doc of `embedded.rs`). Commits
//! wait while it runs, since redb has one writer at a time; so does the policy
//! ([`EmbeddedOptions`]), which decides how often that wait happens and how long it is.
//!
//! After each checkpoint the same thread deletes the journal entries pruned since the last
//! one, in slices between commits (`pruned.rs`), and it retries a store that refuses
//! writes after a failure (`resume.rs`).

use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};
use redb::{Database, Durability, ReadableTable};

use super::resume::Part;
use super::{
    EmbeddedOptions, Inner, META, Tables, WAL_APPLIED_LSN_KEY, WAL_EPOCH_KEY, WAL_FIRST_LSN_KEY,
    Writer, db_error, faults, pruned,
};
use crate::error::{Cause, StoreError};

/// Wakes the checkpoint thread: a commit that starts a cycle (to start its clock) or fills
/// it, a failed write (to start retrying), or the store closing.
#[derive(Debug, Default)]
pub(super) struct Signal {
    state: Mutex<SignalState>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct SignalState {
    kicked: bool,
    stop: bool,
}

impl Signal {
    pub(super) fn kick(&self) {
        self.state.lock().kicked = true;
        self.wake.notify_one();
    }

    pub(super) fn stop(&self) {
        self.state.lock().stop = true;
        self.wake.notify_one();
    }

    /// Waits for a kick, at most `timeout` (`None`: no limit); `false` once stopped.
    fn wait(&self, timeout: Option<Duration>) -> bool {
        let mut state = self.state.lock();
        if !state.kicked && !state.stop {
            match timeout {
                Some(timeout) => {
                    self.wake.wait_for(&mut state, timeout);
                }
                None => self.wake.wait(&mut state),
            }
        }
        state.kicked = false;
        !state.stop
    }
}

/// Starts the thread that checkpoints by the policy, and retries after a failed write. It
/// holds the store only while it checks the policy, checkpoints or retries; it ends once
/// [`Signal::stop`] is called.
pub(super) fn start_thread(
    inner: Weak<Inner>,
    signal: Arc<Signal>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("recordsync-checkpoint".into())
        .spawn(move || {
            loop {
                let wait = match inner.upgrade() {
                    Some(inner) => inner.checkpoint_if_due(),
                    None => return,
                };
                if !signal.wait(wait) {
                    return;
                }
            }
        })
}

impl Inner {
    /// Checkpoints if the policy says so, or retries if the store refuses writes after a
    /// failure; returns how long until there may be something to do (`None`: not before
    /// a commit kicks the thread).
    fn checkpoint_if_due(&self) -> Option<Duration> {
        let mut writer = self.writer.lock();
        if writer.failure.is_some()
            && let Some(wait) = self.retry_if_due(&mut writer)
        {
            return Some(wait);
        }
        // Only a commit arms the policy: frames replayed on opening wait for the first
        // one (or for the close). So a store reopened on a full disk writes nothing to
        // it, and serves reads, until someone writes.
        let since = writer.dirty_since?;
        let bytes = writer.wal.cycle_bytes();
        if !self.checkpoint_due(&writer) {
            return Some(
                self.options
                    .checkpoint_interval
                    .saturating_sub(since.elapsed()),
            );
        }
        let started = Instant::now();
        match self.checkpoint(&mut writer) {
            Ok(()) => tracing::debug!(
                log_bytes = bytes,
                millis = started.elapsed().as_secs_f64() * 1e3,
                "checkpoint"
            ),
            Err(e) => {
                tracing::error!(error = %e, "checkpoint failed");
                return Some(self.options.retry_interval);
            }
        }
        drop(writer);
        if self.sweep_pruned(true) {
            // A checkpoint came due while sweeping: take it, then sweep on.
            return Some(Duration::ZERO);
        }
        None
    }

    /// Deletes the journal entries pruned so far, a slice per transaction, taking the
    /// writer for each slice only, so that commits go on in between (`pruned.rs`). Stops
    /// at the first failure, which the store then reports as it does a failed commit.
    ///
    /// Each slice is walked first without the writer, in a read transaction
    /// (`pruned::plan`), then carried out under it (`pruned::apply`): the writer is held
    /// only for deleting about [`pruned::SLICE_ENTRIES`] entries in key order, and handed
    /// straight to a waiting commit afterwards (a fair unlock, so that the next slice
    /// cannot take it first). Walking under the writer and giving way after each chain
    /// once a commit waited (the way before) deleted one chain per transaction under
    /// load, each rewriting a page per entry, and put the sweep on the durable writes' p99
    /// (`bench/NOTES.md`).
    ///
    /// With `for_checkpoints`, it stops once a checkpoint is due, and returns `true`, so
    /// that a sweep slowed down by commits never holds up the checkpoints (the write-ahead
    /// log would grow past its bound); the chains left are swept after that checkpoint.
    pub(super) fn sweep_pruned(&self, for_checkpoints: bool) -> bool {
        loop {
            let planned = {
                let db = self.db.read();
                let Some(db) = db.as_ref() else { return false };
                pruned::plan(db, &self.dir, pruned::SLICE_ENTRIES)
            };
            let mut writer = self.writer.lock();
            if writer.failure.is_some() {
                return false;
            }
            let plan = match planned {
                Ok(Some(plan)) => plan,
                Ok(None) => return false,
                Err(e) => {
                    tracing::error!(error = %e, "reading pruned history failed");
                    self.fail(&mut writer, e, Part::Redb);
                    return false;
                }
            };
            if for_checkpoints && self.checkpoint_due(&writer) {
                return true;
            }
            let swept = {
                let db = self.db.read();
                let Some(db) = db.as_ref() else { return false };
                sweep_planned(db, &self.dir, &plan)
            };
            match swept {
                Ok(()) => MutexGuard::unlock_fair(writer),
                Err(e) => {
                    tracing::error!(error = %e, "deleting pruned history failed");
                    self.fail(&mut writer, e, Part::Redb);
                    return false;
                }
            }
        }
    }

    /// Whether the policy asks for a checkpoint now.
    fn checkpoint_due(&self, writer: &Writer) -> bool {
        writer.dirty_since.is_some_and(|since| {
            writer.wal.cycle_bytes() >= self.options.checkpoint_bytes
                || since.elapsed() >= self.options.checkpoint_interval
        })
    }
}

/// One transaction of [`Inner::sweep_pruned`], not durable (like a commit's; the next
/// checkpoint makes it so), ending early once `yield_now` says so; `true` if chains are
/// left.
pub(super) fn sweep_slice(
    db: &Database,
    dir: &Path,
    yield_now: &dyn Fn() -> bool,
) -> Result<bool, StoreError> {
    let fail = |e: redb::Error| db_error(dir, "deleting pruned history", None, e);
    let mut txn = db.begin_write().map_err(|e| fail(e.into()))?;
    txn.set_durability(Durability::None).map_err(|e| {
        StoreError::Io(Cause::with_source(
            format!("deleting pruned history: {e}"),
            e,
        ))
    })?;
    let swept = {
        let mut t = Tables::open(&txn, dir)?;
        pruned::sweep(&mut t, dir, Some(pruned::SLICE_ENTRIES), yield_now)?
    };
    if swept.chains == 0 {
        txn.abort().map_err(|e| fail(e.into()))?;
        return Ok(false);
    }
    txn.commit().map_err(|e| fail(e.into()))?;
    Ok(swept.more)
}

/// One transaction of [`Inner::sweep_pruned`]: carries out `plan` (not durable, like a
/// commit; the next checkpoint makes it so). A plan whose rows changed meanwhile is
/// dropped, and the next one is read afresh.
pub(super) fn sweep_planned(
    db: &Database,
    dir: &Path,
    plan: &pruned::Plan,
) -> Result<(), StoreError> {
    let fail = |e: redb::Error| db_error(dir, "deleting pruned history", None, e);
    let mut txn = db.begin_write().map_err(|e| fail(e.into()))?;
    txn.set_durability(Durability::None).map_err(|e| {
        StoreError::Io(Cause::with_source(
            format!("deleting pruned history: {e}"),
            e,
        ))
    })?;
    let applied = {
        let mut t = Tables::open(&txn, dir)?;
        pruned::apply(&mut t, dir, plan)?
    };
    if applied {
        txn.commit().map_err(|e| fail(e.into()))
    } else {
        txn.abort().map_err(|e| fail(e.into()))
    }
}

/// Makes redb durable up to the last frame and starts a new log cycle; `false` if there
/// was nothing to do. Refused while the store refuses writes after a failure.
///
/// A checkpoint that fails leaves redb refusing all work (as it does after any failed
/// write to its file) and the log holding everything since the last checkpoint; the
/// caller records the failure, and `resume.rs` reopens redb once it can write again.
pub(super) fn checkpoint(
    db: &Database,
    dir: &Path,
    options: &EmbeddedOptions,
    writer: &mut Writer,
) -> Result<bool, StoreError> {
    if let Some(failure) = &writer.failure {
        return Err(failure.error.clone());
    }
    if writer.wal.cycle_bytes() == 0 {
        return Ok(false);
    }
    let epoch = writer.wal.epoch() + 1;
    let first_lsn = writer.wal.next_lsn();
    let committed =
        (|| -> Result<(), StoreError> {
            let fail = |e: redb::Error| db_error(dir, "checkpointing the data file", None, e);
            let mut txn = db.begin_write().map_err(|e| fail(e.into()))?;
            txn.set_durability(Durability::Immediate).map_err(|e| {
                StoreError::Io(Cause::with_source(
                    format!("checkpointing the data file: {e}"),
                    e,
                ))
            })?;
            {
                let mut meta = txn.open_table(META).map_err(|e| fail(e.into()))?;
                // Every frame of the cycle was applied (or the store would refuse writes), so
                // redb is at the last one; anything else is a bug that must not be made durable.
                let applied = meta
                    .get(WAL_APPLIED_LSN_KEY)
                    .map_err(|e| fail(e.into()))?
                    .map(|v| v.value());
                if applied != Some(first_lsn - 1) {
                    return Err(StoreError::Io(format!(
                    "checkpointing the data file: it includes log frames up to {applied:?}, \
                     but the log is at {} (an internal error)",
                    first_lsn - 1
                ).into()));
                }
                meta.insert(WAL_EPOCH_KEY, epoch)
                    .map_err(|e| fail(e.into()))?;
                meta.insert(WAL_FIRST_LSN_KEY, first_lsn)
                    .map_err(|e| fail(e.into()))?;
            }
            faults::check("checkpoint-before-commit");
            faults::check_later("checkpoint-mid");
            txn.commit().map_err(|e| fail(e.into()))
        })();
    committed?;
    faults::check("checkpoint-after-commit");
    // A cycle may run past the limit by the batches committed while a checkpoint was due;
    // a file much larger than that was grown by one huge batch and is cut back.
    writer
        .wal
        .recycle(epoch, options.checkpoint_bytes.saturating_mul(2));
    writer.dirty_since = None;
    Ok(true)
}
