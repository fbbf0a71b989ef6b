//! Recovery: replaying the write-ahead log into redb when the store opens.
//!
//! See the module doc of `embedded.rs`: frames up to `wal_applied_lsn` are already in
//! redb; each later one is applied as its commit was, and must apply the same way.

use redb::{Database, Durability};

use super::wal::Wal;
use super::{LogMeta, apply, codec, db_error, set_applied_lsn};
use crate::error::StoreError;
use crate::store::WriteOutcome;

/// What a replay did.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Replayed {
    pub frames: u64,
    pub writes: u64,
}

/// Replays the frames of `wal` that redb lacks and leaves `wal` positioned at its end.
/// Fails, naming the log, when the log and the data file do not fit together.
pub(super) fn replay(db: &Database, wal: &mut Wal, meta: &LogMeta) -> Result<Replayed, StoreError> {
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
        ),
    };
    let mut replayed = Replayed::default();
    let end = wal.recover(meta.epoch, meta.first_lsn, |frame| {
        if frame.lsn <= meta.applied_lsn {
            return Ok(());
        }
        let writes = codec::decode_batch(&frame.payload).map_err(|reason| {
            refuse(format!(
                "frame {} cannot be decoded although its checksum matches: {reason}",
                frame.lsn
            ))
        })?;
        let io = |e: StoreError| StoreError::Open {
            path: path.clone(),
            reason: format!("replaying the write-ahead log, frame {}: {e}", frame.lsn),
        };
        let fail = |e: redb::Error| io(db_error(&dir, "replaying the write-ahead log", None, e));
        let mut txn = db.begin_write().map_err(|e| fail(e.into()))?;
        txn.set_durability(Durability::None)
            .map_err(|e| io(StoreError::Io(e.to_string())))?;
        let outcomes = apply(&txn, &dir, &writes).map_err(io)?;
        // Every write was stored when the frame was written, against the state redb is in
        // now: one that does not apply means that state is not the one the log follows.
        if let Some((write, outcome)) = writes
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
            let expects = match base_of(write) {
                Some(version) => format!("version {version}"),
                None => "no record".to_owned(),
            };
            return Err(refuse(format!(
                "frame {} writes record {:?} expecting {expects}, but the data file has {has}",
                frame.lsn,
                write.name(),
            )));
        }
        set_applied_lsn(&txn, frame.lsn).map_err(fail)?;
        txn.commit().map_err(|e| fail(e.into()))?;
        replayed.frames += 1;
        replayed.writes += writes.len() as u64;
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
    match write {
        crate::store::Write::Put { base_version, .. } => *base_version,
        crate::store::Write::Delete { base_version, .. } => Some(*base_version),
    }
}
