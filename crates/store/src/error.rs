//! Storage errors.

use thiserror::Error;

/// Why a store could not do what was asked. Messages say what to check.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    #[error("cannot open the data directory {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("storage I/O failed: {0}")]
    Io(String),
    #[error("stored data for record {name:?} is corrupt: {reason}")]
    Corrupt { name: String, reason: String },
    #[error("the store is shut down")]
    Closed,
}
