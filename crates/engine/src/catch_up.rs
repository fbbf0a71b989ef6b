//! Healing a gap with the ops, not with a jump.
//!
//! When this node misses changes to a record it holds (another node's announcement
//! arrived before an earlier one, or never), it reloads the record from the store. The
//! subscribers then hold version `k` while the store is at `n > k + 1`. Rather than
//! telling them of `n` alone (a jump: deepstream clients take it, but a ShareDB client
//! can apply only the op for the version it holds, and falls back to fetching the whole
//! document), the reload reads the journal entries `k + 1 ..= n` and publishes each as
//! the change it was, with its op and its writer's `src`/`seq`, in version order.
//!
//! The replay is checked before anything is published: the entries must be there (not
//! pruned), all of this life (no delete or re-create among them), each must apply, and
//! the value they arrive at must be the value the store holds. Anything else, and the
//! reload publishes the jump as before: the catch-up is an improvement of what
//! subscribers see, never a second source of truth.

use std::sync::Arc;

use recordsync_core::{JournalOp, Record, json};

use crate::Engine;
use crate::cell::{Cell, Head};
use crate::event::{EventKind, RecordEvent};
use crate::versions::EngineVersion;
use crate::write::{apply_op, value_json};

/// The most missed versions replayed op by op; a subscriber further behind is sent the
/// jump (one event, whatever the distance), which is cheaper than reading and sending
/// every op of a long absence.
pub(crate) const MAX_CATCH_UP: u64 = 256;

/// The changes from `from` to a reloaded head, one event per version.
pub(crate) struct CatchUp {
    /// The version the replay started from: it applies only to subscribers that hold it.
    pub from: EngineVersion,
    /// Versions `from + 1 ..=` the reloaded head's, in order.
    pub events: Vec<Arc<RecordEvent>>,
}

impl CatchUp {
    /// Whether this catch-up takes subscribers holding `known` to `to`.
    pub fn bridges(&self, known: EngineVersion, to: EngineVersion) -> bool {
        self.from == known
            && self.events.last().is_some_and(|e| match &e.kind {
                EventKind::Changed { version, .. } => *version == to,
                _ => false,
            })
    }
}

impl Engine {
    /// The ops from the version `cell` shows to `loaded` (just read from the store), when
    /// the cell has subscribers to tell and the journal bridges the two (see the module
    /// comment); `None` otherwise, and the reload publishes a jump.
    pub(crate) async fn catch_up(&self, cell: &Cell, loaded: &Head) -> Option<CatchUp> {
        let to = loaded.version();
        // From what subscribers were last told (`visible`): the head may hold this node's
        // own write that just lost its race, which the store never took.
        let (mut record, mut before, from) = {
            let st = cell.state.lock();
            let head = st.head.as_ref()?;
            let visible = st.visible.as_ref()?;
            let from = visible.version;
            // Whatever is in flight meanwhile, the reload applies this only if subscribers
            // still hold `from` then ([`CatchUp::bridges`]).
            let wanted = !st.subscribers.is_empty()
                && from.created == to.created
                && head.created == to.created
                && to.version > from.version
                && to.version - from.version <= MAX_CATCH_UP;
            if !wanted {
                return None;
            }
            let record = Record {
                version: from.version - from.created,
                data: json::parse(&visible.json).ok()?,
                ctime: head.record.ctime,
                mtime: head.record.mtime,
            };
            (record, visible.json.clone(), from)
        };
        let entries = self
            .store
            .journal(&cell.name, from.version + 1, to.version)
            .await
            .ok()?;
        let mut events = Vec::with_capacity(entries.len());
        let mut expected = from.version + 1;
        for entry in entries {
            if entry.version != expected {
                return None; // pruned, or not yet readable
            }
            let op = JournalOp::from_journal(&entry.op).ok()?;
            if matches!(op, JournalOp::Create { .. } | JournalOp::Delete) {
                return None; // another life began or ended: the reload tells of it
            }
            let life_version = i64::try_from(expected - from.created).ok()?;
            apply_op(&mut record, &op, life_version, entry.time).ok()?;
            let value = value_json(&op, &record.data);
            let kind = EventKind::Changed {
                version: EngineVersion::new(expected, from.created),
                op: Some(Arc::new(op)),
                value: value.clone(),
                before: Some(std::mem::replace(&mut before, value)),
            };
            events.push(RecordEvent::with_origin(
                cell.name.clone(),
                kind,
                entry.origin,
            ));
            expected += 1;
        }
        (expected == to.version + 1 && record.data == loaded.record.data)
            .then_some(CatchUp { from, events })
    }
}
