//! Stale json0 writes, transformed instead of refused (the front door's
//! [`OnStale::Transform`](crate::OnStale), ShareDB's way).
//!
//! A write built on version `b` of a record now at `c > b` is transformed against each op
//! committed after `b`, in order (the write on the left, as ShareDB's server does), and
//! then tried again on `c`. If it loses again (more ops landed meanwhile), the same
//! happens from `c`. Transforming needs every op since the base committed, so it waits
//! for this node's writes in flight first and reads the journal.
//!
//! A resubmission (a client that reconnected without its acknowledgement sends the op
//! again) is recognised here: an entry since the base with the write's origin (`src`,
//! `seq`) is the op itself, and the write is acknowledged with that entry's version
//! without being applied again.
//!
//! Ordering: while a write is transformed, later writes to the record may be applied
//! first. ShareDB clients send one op at a time and wait for its acknowledgement, so no
//! client's own ops are reordered.

use std::sync::Arc;

use recordsync_core::json0::{self, Side};
use recordsync_core::{JournalError, JournalOp, ReplayOp};

use crate::error::read_failed;
use crate::request::{Base, WriteRequest};
use crate::retry::{PendingWrite, Settled};
use crate::versions::EngineVersion;
use crate::{Engine, EngineError, WriteFailure};

impl Engine {
    /// Transforms the stale json0 `write` against the ops since its base and tries it
    /// again, or answers it (a resubmission, a record deleted or re-created since, an op
    /// that no longer applies).
    pub(crate) async fn transform_stale(
        &self,
        name: &str,
        base: u64,
        ops: json0::Op,
        mut write: PendingWrite,
        settled: Option<Settled>,
    ) {
        match self.rebase(name, base, ops, &write.request).await {
            Ok(Rebased::Op { ops, base }) => {
                write.request.op = JournalOp::Json0 { ops };
                write.request.base = Base::At(base);
                // The new base was read from the store: this node may not hold it yet.
                write.reloaded = false;
                write.lost += 1;
                if write.lost >= Self::MAX_LOST_RACES {
                    write.done.answer(Err(WriteFailure::Contended {
                        attempts: write.lost,
                    }));
                } else {
                    self.write_attempt(name, write, settled).await;
                }
            }
            Ok(Rebased::Duplicate(version)) => write.done.answer(Ok(version)),
            Err(failure) => write.done.answer(Err(failure)),
        }
    }

    /// The write's json0 op transformed against every committed op after its base.
    async fn rebase(
        &self,
        name: &str,
        base: u64,
        mut ops: json0::Op,
        request: &WriteRequest,
    ) -> Result<Rebased, WriteFailure> {
        self.settle(name).await?;
        let entries = self
            .store
            .journal(name, base + 1, u64::MAX)
            .await
            .map_err(EngineError::from)?;
        if entries.first().map(|e| e.version) != Some(base + 1) {
            // Pruned by retention (or nothing after the base: then it was not stale).
            return Err(self
                .value_at(name, base)
                .await
                .err()
                .map_or(WriteFailure::LifeEnded { base }, WriteFailure::Engine));
        }
        let mut before = self.value_at(name, base).await?.data;
        for entry in &entries {
            if request.origin.is_some() && entry.origin == request.origin {
                let created = self.life_start(name, entry.version).await?;
                return Ok(Rebased::Duplicate(EngineVersion::new(
                    entry.version,
                    created,
                )));
            }
            let op =
                JournalOp::from_journal(&entry.op).map_err(|e| corrupt(name, entry.version, e))?;
            match op
                .to_replay(before.as_ref())
                .map_err(|e| corrupt(name, entry.version, e))?
            {
                ReplayOp::Op(applied) => {
                    ops = json0::transform(&ops, &applied, Side::Left)
                        .map_err(|e| WriteFailure::Rejected(Arc::new(e.into())))?;
                }
                ReplayOp::Create(_) | ReplayOp::Delete => {
                    return Err(WriteFailure::LifeEnded { base });
                }
            }
            op.apply(&mut before)
                .map_err(|e| corrupt(name, entry.version, e))?;
        }
        let last = entries.last().map_or(base, |e| e.version);
        Ok(Rebased::Op { ops, base: last })
    }

    /// The version of the create that began the life holding `version`.
    async fn life_start(&self, name: &str, version: u64) -> Result<u64, WriteFailure> {
        let record = self.store.get(name).await.map_err(read_failed("get"))?;
        match record {
            // The entry is in the current life unless a create came after it.
            Some(r) if r.created <= version => Ok(r.created),
            _ => {
                let entries = self
                    .store
                    .journal(name, 0, version)
                    .await
                    .map_err(EngineError::from)?;
                let create = entries.iter().rev().find(|e| {
                    matches!(JournalOp::from_journal(&e.op), Ok(JournalOp::Create { .. }))
                });
                Ok(create.map_or(0, |e| e.version))
            }
        }
    }
}

/// What a stale write becomes.
enum Rebased {
    /// Transformed, to be applied on `base`.
    Op { ops: json0::Op, base: u64 },
    /// A resubmission of the op committed as this version.
    Duplicate(EngineVersion),
}

/// Journal entry `version` of `name` could not be read or applied (`e` says which).
fn corrupt(name: &str, version: u64, e: impl Into<JournalError>) -> WriteFailure {
    WriteFailure::Engine(EngineError::CorruptJournal {
        name: name.to_owned(),
        version,
        source: Arc::new(e.into()),
    })
}
