//! Checkpoints: when redb is made durable, so that the write-ahead log can start over.
//!
//! A checkpoint is one redb commit with `Durability::Immediate`: it writes every page the
//! commits since the last one changed (redb keeps them in memory until then) and syncs
//! the file, then records a new log cycle in `meta` (see the module doc of `embedded.rs`).
//! Commits wait while it runs, since redb has one writer at a time; so does the policy
//! below, which decides how often that wait happens and how long it is.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use redb::{Database, Durability, ReadableTable};

use super::{
    Inner, META, WAL_APPLIED_LSN_KEY, WAL_EPOCH_KEY, WAL_FIRST_LSN_KEY, Writer, db_error, faults,
};
use crate::error::StoreError;

/// When the embedded store checkpoints. Whichever limit is reached first triggers one.
///
/// The defaults, one second or 16 MiB of log, come from measurements on the project's
/// 2-core VM (`bench/NOTES.md`, and `redb_growth_between_checkpoints` in `embedded.rs`):
///
/// - A checkpoint writes what the commits since the last one added (mostly the journal's
///   new entries, about as many bytes as the log got) and takes about 4 ms per MiB of log
///   (1 MiB: 5 ms, 4 MiB: 20 ms, 16 MiB: 60 ms, 64 MiB: 256 ms). Commits wait meanwhile,
///   so the byte limit bounds that wait: 16 MiB keeps it near 60 ms however fast writes
///   come. It also bounds what redb holds in memory until then (its resident size grew
///   by about the log's size) and how much a restart after a crash replays.
/// - The durable-writes benchmark (100 writers, about 25,000 acknowledged writes/s, 2.5
///   MB of log a second) gave the same throughput within noise with checkpoints every
///   100 ms, 250 ms, 1 s and 5 s; the longest acknowledgement grew with the interval
///   (30–45 ms at 1 s, 100–120 ms at 5 s). Rewritten pages (records' leaves, table roots)
///   are written once per checkpoint however often they changed, so rarer is cheaper, and
///   one second keeps a crash's replay short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// Checkpoint once this many bytes of log frames were written since the last one.
    pub checkpoint_bytes: u64,
    /// Checkpoint at most this long after the first frame written since the last one.
    pub checkpoint_interval: Duration,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            checkpoint_bytes: 16 << 20,
            checkpoint_interval: Duration::from_secs(1),
        }
    }
}

/// Wakes the checkpoint thread: a commit that starts a cycle (to start its clock) or fills
/// it, or the store closing.
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

/// Starts the thread that checkpoints by the policy. It holds the store only while it
/// checks the policy or checkpoints; it ends once [`Signal::stop`] is called.
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
    /// Checkpoints if the policy says so; returns how long until it may say so (`None`:
    /// not before a commit kicks the thread).
    fn checkpoint_if_due(&self) -> Option<Duration> {
        let mut writer = self.writer.lock();
        if writer.poisoned.is_some() {
            return None;
        }
        // Only a commit arms the policy: frames replayed on opening wait for the first
        // one (or for the close). So a store reopened on a full disk writes nothing to
        // it, and serves reads, until someone writes.
        let since = writer.dirty_since?;
        let interval = self.options.checkpoint_interval;
        let bytes = writer.wal.cycle_bytes();
        let age = since.elapsed();
        if bytes < self.options.checkpoint_bytes && age < interval {
            return Some(interval - age);
        }
        let started = Instant::now();
        match self.checkpoint(&mut writer) {
            Ok(()) => tracing::debug!(
                log_bytes = bytes,
                millis = started.elapsed().as_secs_f64() * 1e3,
                "checkpoint"
            ),
            Err(e) => tracing::error!(error = %e, "checkpoint failed"),
        }
        None
    }
}

/// Makes redb durable up to the last frame and starts a new log cycle; `false` if there
/// was nothing to do. On failure the store is poisoned: redb refuses writes after a
/// failed commit, and the log still holds everything since the last checkpoint.
pub(super) fn checkpoint(
    db: &Database,
    options: &EmbeddedOptions,
    writer: &mut Writer,
) -> Result<bool, StoreError> {
    if let Some(reason) = &writer.poisoned {
        return Err(StoreError::Io(reason.clone()));
    }
    if writer.wal.cycle_bytes() == 0 {
        return Ok(false);
    }
    let epoch = writer.wal.epoch() + 1;
    let first_lsn = writer.wal.next_lsn();
    let committed = (|| -> Result<(), StoreError> {
        let fail = |e: redb::Error| db_error("checkpointing the data file", None, e);
        let mut txn = db.begin_write().map_err(|e| fail(e.into()))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| StoreError::Io(format!("checkpointing the data file: {e}")))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| fail(e.into()))?;
            // Every frame of the cycle was applied (or the store would be poisoned), so
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
                )));
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
    if let Err(e) = committed {
        let reason = format!(
            "{e}; the store refuses writes until recordsync is restarted, which recovers \
             every acknowledged write from the write-ahead log"
        );
        writer.poisoned = Some(reason.clone());
        return Err(StoreError::Io(reason));
    }
    faults::check("checkpoint-after-commit");
    // A cycle may run past the limit by the batches committed while a checkpoint was due;
    // a file much larger than that was grown by one huge batch and is cut back.
    writer
        .wal
        .recycle(epoch, options.checkpoint_bytes.saturating_mul(2));
    writer.dirty_since = None;
    Ok(true)
}
