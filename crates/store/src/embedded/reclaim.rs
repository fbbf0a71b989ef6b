//! Reclaiming, when the store opens, the history its settings no longer keep, and the
//! file space that frees.
//!
//! A commit prunes only the records it writes (`prune` in `embedded.rs`). So a data set
//! written while history was kept without bound (`keep everything`, or the release
//! before issue 13, whose records the upgrade gives milestones by replaying their
//! journals, `upgrade.rs`) keeps that history, and its file keeps its size, until each
//! record is written again. Opening therefore, after the replay of the write-ahead log and the
//! upgrade, before the store takes any write:
//!
//! 1. **Sweeps** every record whose history exceeds the settings
//!    ([`History::may_prune`]) and prunes it exactly as a commit would: its history
//!    start moves to the greatest milestone the settings allow, and the entries and
//!    milestones below it are deleted. In batches: one redb transaction (not durable,
//!    like a commit's) takes at most [`BATCH_RECORDS`] records and stops after the
//!    record that brings its deleted entries to [`BATCH_ENTRIES`], so opening a large
//!    data set never holds its whole history in one transaction (one record's own
//!    prune is one transaction, however long its history: `prune` moves its start in
//!    one step). A transaction that pruned anything adds the number of entries
//!    it deleted to `reclaim_pending` in `meta`; so does the replay of a log frame
//!    (`recovery.rs`), which prunes as its commit did, but with today's settings: a log
//!    written while everything was kept may prune a lot there.
//! 2. **Compacts** the file if `reclaim_pending` is set and at least
//!    1/[`COMPACT_FREE_FRACTION`] of it is free (redb's `fragmented_bytes`: free pages
//!    and unused space in pages, counted after two empty durable commits, since pages
//!    freed by non-durable commits are not free before): redb's
//!    [`Database::compact`] moves the pages near the end of the file into free pages
//!    nearer the start and truncates the file. Then it clears `reclaim_pending`. Both
//!    steps log what they did at `info`. Why a quarter: below that the space is reused
//!    by later writes soon enough, and a compaction of a file that is mostly live
//!    rewrites most of it for little; above it, the file is mostly history that will
//!    never be written again, and compaction is cheap next to the pruning: one record
//!    written 100,000 times keeping everything, 142.6 MB, opened with the default
//!    settings: pruning 98,901 entries took about 375 ms, compaction 65–80 ms, and the
//!    file became 3.1 MB (release build, `bench/NOTES.md`).
//!
//! **Crash safety.** Nothing here writes to the write-ahead log or changes which of its
//! frames redb includes (`wal_applied_lsn`), and every transaction here leaves a state a
//! commit could have left, so redb's state after a crash, whichever of its commits were
//! durable, fits the log as it always does: the next opening replays what it lacks and
//! sweeps again. A pruned state is valid on its own: replaying a log frame on it checks
//! only versions, which pruning keeps. `Database::compact` (redb 4.6, `db.rs`) first
//! makes the current state durable with an empty commit, then relocates pages in a
//! series of ordinary durable commits, each copying pages into free ones (copy on
//! write) and freeing the originals only once that commit is durable, then truncates
//! the file in a further commit. A crash at any point leaves the last durable commit,
//! which holds every record and entry (compaction changes where pages are, not what
//! they hold), plus redb's repair of its allocator on the next opening; since
//! `reclaim_pending` is cleared only after the compaction, the next opening looks again
//! and compacts what is left to compact. `tests/reclaim.rs` crashes a process at each
//! step (the crash points `reclaim-after-sweep`, `reclaim-mid-compaction`,
//! `reclaim-after-compaction`) and checks that nothing is lost.
//!
//! **Cost.** The sweep reads every record's head (one pass over `records`) and the
//! milestones of the records it may prune; with `keep_age` set that is every record
//! with history, since ages move on between openings. Deciding whether to compact walks
//! redb's trees (its stats); that happens only when `reclaim_pending` is set, so after
//! a sweep that pruned, or after a crash whose replay pruned, when redb has just
//! re-checked the whole file anyway. Compaction reads and rewrites the pages it moves:
//! see `bench/NOTES.md` for figures.

use std::ops::Bound;
use std::path::Path;
use std::time::Instant;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, WriteTransaction};

use super::{META, Tables, codec, db_error, faults, prune, pruned, stored_head};
use crate::error::{Cause, StoreError};
use crate::history::History;

/// The `meta` key set by a sweep that pruned something, cleared once the file was
/// compacted (or found not worth compacting). A build that does not know it ignores it.
pub(super) const RECLAIM_KEY: &str = "reclaim_pending";

/// Records pruned in one transaction of the sweep, at most.
pub(super) const BATCH_RECORDS: usize = 1_000;
/// Journal entries deleted in one transaction of the sweep, about (the record that
/// reaches it is pruned whole).
pub(super) const BATCH_ENTRIES: u64 = 100_000;
/// Records' heads read in one transaction of the sweep, at most.
const SCAN_ROWS: usize = 10_000;
/// Compact when at least one part in this many of the file is free.
pub(super) const COMPACT_FREE_FRACTION: u64 = 4;

/// What [`reclaim`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reclaimed {
    /// Records whose history start moved.
    pub records: u64,
    /// Journal entries deleted.
    pub entries: u64,
    /// Transactions of the sweep that pruned something.
    pub transactions: u64,
    /// The file's size before and after compaction, if it was compacted.
    pub compacted: Option<(u64, u64)>,
}

/// Sweeps and compacts (see the module doc). `file` is redb's file. The caller owns
/// `db`: no transaction is open, and nothing else uses it until this returns.
pub(super) fn reclaim(
    db: &mut Database,
    file: &Path,
    history: &History,
) -> Result<Reclaimed, StoreError> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let started = Instant::now();
    let mut done = Reclaimed::default();
    if history.keep_ops.is_some() || history.keep_age.is_some() {
        sweep(db, dir, history, crate::now_ms(), &mut done)?;
    }
    if done.records > 0 {
        tracing::info!(
            file = %file.display(),
            records = done.records,
            entries = done.entries,
            transactions = done.transactions,
            millis = started.elapsed().as_millis() as u64,
            "pruned history beyond the retention settings (history.keepOps, keepAge) on opening"
        );
    }
    faults::check("reclaim-after-sweep");
    if !pending(db, dir)? {
        return Ok(done);
    }
    let fail = |e: redb::Error| db_error(dir, "compacting the data file", None, e);
    // Pages freed by non-durable commits (the sweep's) are not free until a durable
    // commit, and the commit after it hands them to the allocator: two empty durable
    // commits, before redb can say how much is free.
    for _ in 0..2 {
        db.begin_write()
            .map_err(|e| fail(e.into()))?
            .commit()
            .map_err(|e| fail(e.into()))?;
    }
    let free = {
        let txn = db.begin_write().map_err(|e| fail(e.into()))?;
        let stats = txn.stats().map_err(|e| fail(e.into()))?;
        txn.abort().map_err(|e| fail(e.into()))?;
        stats.fragmented_bytes()
    };
    let before = file_len(file)?;
    if free.saturating_mul(COMPACT_FREE_FRACTION) >= before {
        let started = Instant::now();
        faults::check_later("reclaim-mid-compaction");
        db.compact().map_err(|e| fail(e.into()))?;
        faults::check("reclaim-after-compaction");
        let after = file_len(file)?;
        done.compacted = Some((before, after));
        tracing::info!(
            file = %file.display(),
            before_bytes = before,
            after_bytes = after,
            free_bytes_before = free,
            millis = started.elapsed().as_millis() as u64,
            "compacted the data file after pruning history"
        );
    } else {
        tracing::debug!(
            file = %file.display(),
            file_bytes = before,
            free_bytes = free,
            "not compacting the data file: less than a quarter of it is free, later \
             writes reuse that space"
        );
    }
    let mut txn = db.begin_write().map_err(|e| fail(e.into()))?;
    txn.set_durability(Durability::None).map_err(|e| {
        StoreError::Io(Cause::with_source(
            format!("compacting the data file: {e}"),
            e,
        ))
    })?;
    txn.open_table(META)
        .map_err(|e| fail(e.into()))?
        .remove(RECLAIM_KEY)
        .map_err(|e| fail(e.into()))?;
    txn.commit().map_err(|e| fail(e.into()))?;
    Ok(done)
}

fn file_len(file: &Path) -> Result<u64, StoreError> {
    std::fs::metadata(file).map(|m| m.len()).map_err(|e| {
        let reason = format!("reading the size of {}: {e}", file.display());
        StoreError::Io(Cause::with_source(reason, e))
    })
}

/// Adds `entries` pruned in `txn` to the count under [`RECLAIM_KEY`] (if any were).
pub(super) fn add_pending(txn: &WriteTransaction, entries: u64) -> Result<(), redb::Error> {
    if entries == 0 {
        return Ok(());
    }
    let mut meta = txn.open_table(META)?;
    let before = meta.get(RECLAIM_KEY)?.map_or(0, |v| v.value());
    meta.insert(RECLAIM_KEY, before.saturating_add(entries))?;
    Ok(())
}

/// Whether a sweep pruned something that was not compacted (or judged not worth it) yet.
fn pending(db: &Database, dir: &Path) -> Result<bool, StoreError> {
    let fail = |e: redb::Error| db_error(dir, "reading the data file's meta table", None, e);
    let txn = db.begin_read().map_err(|e| fail(e.into()))?;
    let meta = txn.open_table(META).map_err(|e| fail(e.into()))?;
    Ok(meta.get(RECLAIM_KEY).map_err(|e| fail(e.into()))?.is_some())
}

/// Step 1 of the module doc, as of `now` (for `keep_age`).
fn sweep(
    db: &Database,
    dir: &Path,
    history: &History,
    now: u64,
    done: &mut Reclaimed,
) -> Result<(), StoreError> {
    let fail = |e: redb::Error| db_error(dir, "pruning history on opening", None, e);
    // The key of the last record looked at: the next transaction starts after it.
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let mut txn = db.begin_write().map_err(|e| fail(e.into()))?;
        txn.set_durability(Durability::None).map_err(|e| {
            StoreError::Io(Cause::with_source(
                format!("pruning history on opening: {e}"),
                e,
            ))
        })?;
        let mut records = 0;
        let mut entries = 0;
        let mut finished = true;
        {
            let mut t = Tables::open(&txn, dir)?;
            let mut candidates = Vec::new();
            {
                let range = match &cursor {
                    Some(after) => t
                        .records
                        .range::<&[u8]>((Bound::Excluded(after.as_slice()), Bound::Unbounded)),
                    None => t.records.range::<&[u8]>(..),
                }
                .map_err(|e| fail(e.into()))?;
                for (scanned, item) in range.enumerate() {
                    if candidates.len() >= BATCH_RECORDS || scanned >= SCAN_ROWS {
                        finished = false;
                        break;
                    }
                    let (key, value) = item.map_err(|e| fail(e.into()))?;
                    let name = std::str::from_utf8(key.value()).map_err(|e| {
                        codec::corrupt(
                            &String::from_utf8_lossy(key.value()),
                            format!("a record name is not UTF-8: {e}"),
                        )
                    })?;
                    let head = codec::decode_record_head(name, value.value())?;
                    if history.may_prune(head.version, head.start) {
                        candidates.push(name.to_owned());
                    }
                    cursor = Some(key.value().to_vec());
                }
            }
            for name in &candidates {
                let Some(mut head) = stored_head(&t.records, dir, name)? else {
                    continue;
                };
                let was = head;
                let removed = prune(&mut t, dir, name, &mut head, history, now)?
                    + pruned::sweep(&mut t, dir, None, &|| false)?.entries;
                if head != was {
                    let record = {
                        let guard = t
                            .records
                            .get(codec::record_key(name))
                            .map_err(|e| fail(e.into()))?
                            .ok_or_else(|| codec::corrupt(name, "vanished while pruning"))?;
                        codec::decode_record(name, guard.value())?
                    };
                    let value = codec::encode_record(&record, &head);
                    t.records
                        .insert(codec::record_key(name), value.as_slice())
                        .map_err(|e| fail(e.into()))?;
                    records += 1;
                    entries += removed;
                }
                if entries >= BATCH_ENTRIES {
                    // The records after this one are looked at again by the next
                    // transaction.
                    cursor = Some(codec::record_key(name).to_vec());
                    finished = false;
                    break;
                }
            }
        }
        if records > 0 {
            add_pending(&txn, entries).map_err(fail)?;
            txn.commit().map_err(|e| fail(e.into()))?;
            done.records += records;
            done.entries += entries;
            done.transactions += 1;
        } else {
            txn.abort().map_err(|e| fail(e.into()))?;
        }
        if finished {
            return Ok(());
        }
    }
}
