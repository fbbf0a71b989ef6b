//! Engine errors, as the front doors report them to clients.

use std::sync::Arc;

use thiserror::Error;

use recordsync_core::{OpError, Version, name::NameError};
use recordsync_store::StoreError;

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
}

/// Why a write or delete was not applied.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum WriteFailure {
    /// The version is already used; `version` and `data` are the server's current state,
    /// which the client merges with its own before writing again.
    #[error("version already exists: the record is at version {version}")]
    VersionExists { version: Version, data: Arc<str> },
    #[error("version {requested} is not valid: the record is at version {current}")]
    InvalidVersion { requested: i64, current: Version },
    #[error(transparent)]
    InvalidOp(#[from] OpError),
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
