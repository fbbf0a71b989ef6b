//! Recovery: replaying the write-ahead log into redb when the store opens.
//!
//! See the module doc of `embedded.rs`: frames up to `wal_applied_lsn` are already in
//! redb; each later one is applied as its commit was, and must apply the same way.

use redb::{Database, Durability};

use super::wal::Wal;
use super::{
    LogMeta, Tables, apply, apply_legacy, codec, db_error, pruned, reclaim, set_applied_lsn,
};
use crate::error::{Cause, StoreError};
use crate::history::History;
use crate::store::WriteOutcome;

/// What a replay did.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Replayed {
    pub frames: u64,
    pub writes: u64,
}

/// Replays the frames of `wal` that redb lacks and leaves `wal` positioned at its end.
/// Fails, naming the log, when the log and the data file do not fit together.
///
/// Frames of schema 3 are applied with schema 3's meaning, and only when `meta` says the
/// file is still of schema 3 (it is upgraded after the replay).
pub(super) fn replay(
    db: &Database,
    wal: &mut Wal,
    meta: &LogMeta,
    history: &History,
) -> Result<Replayed, StoreError> {
    let path = wal.path().display().to_string();
    let dir = wal
        .path()
        .parent()
        .map(ToOwned::to_owned)
        .unwrap_or_default();
    let refuse = |reason: String| StoreError::Open {
        path: path.clone(),
        reason: format!(
            "replaying the write-ahead log: {reason}. The log and the data file do not fit \
             together (was one of them restored from a backup, or copied without the \
             other?); restore both from the same backup"
        )
        .into(),
    };
    let mut replayed = Replayed::default();
    let end = wal.recover(meta.epoch, meta.first_lsn, |frame| {
        if frame.lsn <= meta.applied_lsn {
            return Ok(());
        }
        let batch = codec::decode_batch(&frame.payload).map_err(|reason| {
            refuse(format!(
                "frame {} cannot be decoded although its checksum matches: {reason}",
                frame.lsn
            ))
        })?;
        let io = |e: StoreError| StoreError::Open {
            path: path.clone(),
            reason: Cause::with_source(
                format!("replaying the write-ahead log, frame {}: {e}", frame.lsn),
                e,
            ),
        };
        let fail = |e: redb::Error| io(db_error(&dir, "replaying the write-ahead log", None, e));
        let mut txn = db.begin_write().map_err(|e| fail(e.into()))?;
        txn.set_durability(Durability::None)
            .map_err(|e| io(StoreError::Io(Cause::with_source(e.to_string(), e))))?;
        let mut pruned = 0;
        let (outcomes, targets): (Vec<WriteOutcome>, Vec<(&str, Option<u64>)>) = match &batch {
            codec::Batch::Current(writes) => (
                apply(&txn, &dir, writes, history, crate::now_ms(), &mut pruned).map_err(io)?,
                writes.iter().map(|w| (w.name(), base_of(w))).collect(),
            ),
            codec::Batch::Legacy(writes) if meta.upgrade => (
                apply_legacy(&txn, &dir, writes).map_err(io)?,
                writes
                    .iter()
                    .map(|w| (w.name(), w.base_version()))
                    .collect(),
            ),
            codec::Batch::Legacy(_) => {
                return Err(refuse(format!(
                    "frame {} holds writes of schema 3, but the data file is of a later schema",
                    frame.lsn
                )));
            }
        };
        // Every write was stored when the frame was written, against the state redb is in
        // now: one that does not apply means that state is not the one the log follows.
        if let Some(((name, base), outcome)) = targets
            .iter()
            .zip(&outcomes)
            .find(|(_, outcome)| **outcome != WriteOutcome::Committed)
        {
            let has = match outcome {
                WriteOutcome::Conflict {
                    current: Some(version),
                } => format!("version {version}"),
                _ => "no such record".to_owned(),
            };
            let expects = match base {
                Some(version) => format!("version {version}"),
                None => "no record".to_owned(),
            };
            return Err(refuse(format!(
                "frame {} writes record {:?} expecting {expects}, but the data file has {has}",
                frame.lsn, name,
            )));
        }
        // The frame's prunes noted the chains they cut off; their entries count for
        // `reclaim.rs`, so they are deleted now rather than at the next checkpoint.
        {
            let mut t = Tables::open(&txn, &dir).map_err(io)?;
            pruned += pruned::sweep(&mut t, &dir, None, &|| false)
                .map_err(io)?
                .entries;
        }
        set_applied_lsn(&txn, frame.lsn).map_err(fail)?;
        // A frame written with other retention settings (keep everything, say) may prune
        // much here; `reclaim.rs` then looks at what that freed.
        reclaim::add_pending(&txn, pruned).map_err(fail)?;
        txn.commit().map_err(|e| fail(e.into()))?;
        replayed.frames += 1;
        replayed.writes += outcomes.len() as u64;
        Ok(())
    })?;
    let last = end.next_lsn - 1;
    if last < meta.applied_lsn {
        return Err(refuse(format!(
            "the data file includes log frames up to sequence number {}, but the log ends \
             at {last}",
            meta.applied_lsn
        )));
    }
    Ok(replayed)
}

fn base_of(write: &crate::store::Write) -> Option<u64> {
    let crate::store::Write::Put { base_version, .. } = write;
    *base_version
}
