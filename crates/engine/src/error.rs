//! Engine errors, as the front doors report them to clients.

use std::sync::Arc;

use thiserror::Error;

use recordsync_core::journal_op::JournalError;
use recordsync_core::{OpError, name::NameError};
use recordsync_store::StoreError;

use crate::versions::EngineVersion;

/// Why a read or subscribe failed.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error(transparent)]
    InvalidName(#[from] NameError),
    #[error("storage failed: {0}")]
    Storage(#[from] StoreError),
    /// A record created by subscribing could not be stored; the subscription was not made.
    #[error("the record could not be created: {0}")]
    NotCreated(#[source] StoreError),
    #[error("stored value of record {name:?} is not valid JSON: {reason}")]
    CorruptValue { name: String, reason: String },
    #[error("the server is shutting down")]
    Shutdown,
    /// A past version that cannot be read: before the record's history start (pruned by
    /// the store's retention setting), after its current version, or of a record that
    /// never existed (`start` and `current` are `None`).
    #[error(
        "version {version} of record {name:?} is not in its history (readable: {})",
        readable(*start, *current)
    )]
    NotInHistory {
        name: String,
        version: u64,
        start: Option<u64>,
        current: Option<u64>,
    },
    #[error("record {name:?} has no version as old as time {time} in its kept history")]
    NotInHistoryAtTime { name: String, time: u64 },
}

fn readable(start: Option<u64>, current: Option<u64>) -> String {
    match (start, current) {
        (Some(start), Some(current)) => format!("versions {start} to {current}"),
        _ => "none, the record never existed".to_owned(),
    }
}

/// Why a write or delete was not applied.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum WriteFailure {
    /// The version is already used; `version` and `data` are the server's current state,
    /// which the client merges with its own before writing again.
    #[error("version already exists: the record is at version {}", version.version)]
    VersionExists {
        version: EngineVersion,
        data: Arc<str>,
    },
    /// `requested` is as the write's [`Base`](crate::Base) named it.
    #[error(
        "version {requested} is not valid: the record is at version {}",
        current.version
    )]
    InvalidVersion {
        requested: i64,
        current: EngineVersion,
    },
    #[error(transparent)]
    InvalidOp(#[from] OpError),
    /// A json0 op that does not apply to the record.
    #[error("the op was refused: {0}")]
    Rejected(#[source] Arc<JournalError>),
    /// The record was deleted or created again since the write's base version, so the
    /// write (built on another life of the record) cannot be transformed onto it.
    #[error(
        "the record was deleted or created since version {base}, which the write was \
         built on; read it again"
    )]
    LifeEnded { base: u64 },
    /// A create or delete sent as a write: they have calls of their own.
    #[error("a {op} is not a write: use the engine's subscribe (create) or delete")]
    NotAWrite { op: &'static str },
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The write reached the store but was not committed; it is not applied.
    #[error("the write could not be stored: {0}")]
    NotStored(String),
    /// A write for the next version (`-1`) lost the race for it to other nodes this many
    /// times in a row; it is not applied. Such a write is never refused VERSION_EXISTS (it
    /// names no version to conflict with, and deepstream clients drop that answer to it).
    #[error(
        "the record is changed by other nodes faster than this write could be stored \
         ({attempts} attempts); it was not applied, try again"
    )]
    Contended { attempts: u32 },
    /// The engine dropped the write without answering it (a bug; see `WriteDone`).
    #[error("internal error: the write was dropped without being stored or refused")]
    Unanswered,
}
