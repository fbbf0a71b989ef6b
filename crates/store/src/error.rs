//! Storage errors.

use thiserror::Error;

/// Why a store could not do what was asked. Messages say what to check.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot open the data directory {path}: {reason}")]
    Open { path: String, reason: String },
    /// A database server (PostgreSQL) could not be set up for use: wrong encoding,
    /// a schema from a newer recordsync, a failed migration, missing privileges.
    #[error("cannot use the database {target}: {reason}")]
    Database { target: String, reason: String },
    #[error("storage I/O failed: {0}")]
    Io(String),
    /// The filesystem holding the data is full (or the user's disk quota is used up):
    /// `reason` says which write failed, `path` is the data directory, whose filesystem
    /// needs room. The embedded store refuses writes meanwhile, and takes them again by
    /// itself once a test write succeeds; nothing acknowledged is lost.
    #[error(
        "storage full: {reason}; free space on {path} (writes resume by themselves once \
         there is room)"
    )]
    Full { path: String, reason: String },
    #[error("stored data for record {name:?} is corrupt: {reason}")]
    Corrupt { name: String, reason: String },
    #[error("the store is shut down")]
    Closed,
    /// A database server (PostgreSQL) cannot be reached or is not accepting work now.
    /// Calls fail until it is back; the store reconnects by itself, nothing to restart.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A write this backend cannot represent (PostgreSQL text cannot hold U+0000 in a
    /// record name, say). The batch it was in is not stored.
    #[error("record {name:?} cannot be stored: {reason}")]
    Unstorable { name: String, reason: String },
    /// A write that breaks the [`Write`](crate::Write) contract (its journal entries do
    /// not lead from its base to its version): a bug in the caller. Nothing is stored.
    #[error("malformed write to record {name:?}: {reason}")]
    Malformed { name: String, reason: String },
}
