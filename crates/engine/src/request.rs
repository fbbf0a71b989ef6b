//! What a front door asks of a write: the op, the version it was built on, and who sent it.

use std::sync::Arc;

use recordsync_core::{JournalOp, Version};
use recordsync_store::Origin;

/// One write to a record.
#[derive(Debug, Clone)]
pub struct WriteRequest {
    /// The subscriber that sent it, which is not sent its own write back.
    pub writer: u64,
    /// A path write or a json0 op (a create or delete is refused here: see
    /// `Engine::subscribe` and `Engine::delete`).
    pub op: JournalOp,
    pub base: Base,
    /// What to do when `base` is older than the record: the front door's choice.
    pub on_stale: OnStale,
    /// The authenticated user id of the writer, kept in the journal entry.
    pub author: Option<Arc<str>>,
    /// The client op this is, when the protocol names one: a resubmission of an op the
    /// journal already holds (since `base`) is acknowledged with that op's version and
    /// not applied again.
    pub origin: Option<Origin>,
}

impl WriteRequest {
    /// A deepstream-style write: refused when stale, no origin.
    pub fn new(writer: u64, op: impl Into<JournalOp>, base: Base) -> WriteRequest {
        WriteRequest {
            writer,
            op: op.into(),
            base,
            on_stale: OnStale::Refuse,
            author: None,
            origin: None,
        }
    }
}

/// What a stale write becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStale {
    /// Refused with the record's current state, for the client to merge (deepstream's
    /// VERSION_EXISTS).
    Refuse,
    /// Transformed against every op since its base and applied (ShareDB). Only json0
    /// ops can be transformed; a stale path write is refused.
    Transform,
}

/// The version a write was built on, which decides whether it is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// Whatever the record holds when the write is applied: never stale.
    Next,
    /// Built on this engine version (see [`EngineVersion`](crate::EngineVersion)): stale if the record has
    /// moved on, invalid if it is not there yet.
    At(Version),
    /// Names the version *of the current life* the write produces, by deepstream's rules
    /// (`recordsync_core::version`: `-1` is the next; one already used is stale; one beyond
    /// the next is invalid). A record that does not exist counts as `{}` at version 0.
    Produces(i64),
}
