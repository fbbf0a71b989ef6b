//! Engine errors, as the front doors report them to clients: the deepstream front door
//! sends each one's `to_string()` as the data of its error message, so every message
//! stands alone and says what the client (or the operator) can do. Errors from the store
//! and the core are kept whole as each error's [`source`](std::error::Error::source).

use std::fmt;
use std::sync::Arc;

use recordsync_core::{JournalError, JsonError, NameError, OpError, WriteError};
use recordsync_store::StoreError;

use crate::versions::EngineVersion;

/// Why a read or subscribe failed. New kinds may be added: match with a `_` arm.
///
/// `Clone` (a failed load answers every caller waiting on it), so the core's errors,
/// which are not, are kept in an `Arc`; [`source`](std::error::Error::source) gives the
/// error itself, not the `Arc`, so that it downcasts to its own type.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EngineError {
    InvalidName(NameError),
    Storage(StoreError),
    /// A record created by subscribing could not be stored; the subscription was not made.
    NotCreated(StoreError),
    /// A value the store holds for `name` (its current value or a milestone) is not
    /// JSON: the store's data is damaged.
    CorruptValue {
        name: String,
        source: Arc<JsonError>,
    },
    /// Entry `version` of `name`'s journal cannot be read, or does not apply to the value
    /// before it: the store's data is damaged (the source says how).
    CorruptJournal {
        name: String,
        version: u64,
        source: Arc<JournalError>,
    },
    /// The store holds `name` at `version`, before the create of its life at `created`,
    /// which the store's contract excludes: its data is damaged.
    CorruptVersions {
        name: String,
        version: u64,
        created: u64,
    },
    Shutdown,
    /// A past version that cannot be read: before the record's history start (pruned by
    /// the store's retention setting), after its current version, or of a record that
    /// never existed (`start` and `current` are `None`).
    NotInHistory {
        name: String,
        version: u64,
        start: Option<u64>,
        current: Option<u64>,
    },
    NotInHistoryAtTime {
        name: String,
        time: u64,
    },
}

fn stored_version(stored: Option<u64>) -> String {
    match stored {
        Some(version) => format!("the store holds version {version}"),
        None => "the store no longer holds it".to_owned(),
    }
}

fn readable(start: Option<u64>, current: Option<u64>) -> String {
    match (start, current) {
        (Some(start), Some(current)) => format!("versions {start} to {current}"),
        _ => "none, the record never existed".to_owned(),
    }
}

/// Why a write or delete was not applied. New kinds may be added: match with a `_` arm.
///
/// `Clone` (answers are handed around with the write), so the core's errors, which are
/// not, are kept in an `Arc`; [`source`](std::error::Error::source) gives the error
/// itself, not the `Arc`, so that it downcasts to its own type.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum WriteFailure {
    /// The version is already used; `version` and `data` are the server's current state,
    /// which the client merges with its own before writing again.
    VersionExists {
        version: EngineVersion,
        data: Arc<str>,
    },
    /// `requested` is as the write's [`Base`](crate::Base) named it.
    InvalidVersion {
        requested: i64,
        current: EngineVersion,
    },
    InvalidOp(OpError),
    /// A json0 op that does not apply to the record.
    Rejected(Arc<JournalError>),
    /// The record was deleted or created again since the write's base version, so the
    /// write (built on another life of the record) cannot be transformed onto it.
    LifeEnded {
        base: u64,
    },
    /// A create for a record that exists (at `version`); or a transforming write for one
    /// that does not (see `Missing`).
    Exists {
        version: EngineVersion,
    },
    /// The record does not exist, and the request needs it to (a transforming front
    /// door's write: ShareDB creates documents with a create, never by writing), or is a
    /// create naming another version than the one the record's next life begins at,
    /// `next_create` (something was created or deleted since the version it was built on).
    Missing {
        next_create: u64,
    },
    /// A create or delete sent as a write: they have calls of their own.
    NotAWrite {
        op: &'static str,
    },
    Engine(EngineError),
    /// The write reached the store but was not committed; it is not applied. The store's
    /// error says why and what to check.
    NotStored(StoreError),
    /// Another writer (another node, or a write that bypassed this engine) changed the
    /// record in the store first; the write is not applied. `stored` is the version the
    /// store holds (`None`: it holds no record).
    Conflict {
        stored: Option<u64>,
    },
    /// A write for the next version (`-1`) lost the race for it to other nodes this many
    /// times in a row; it is not applied. Such a write is never refused VERSION_EXISTS (it
    /// names no version to conflict with, and deepstream clients drop that answer to it).
    Contended {
        attempts: u32,
    },
    /// A refusal by the core's write rules that has no kind of its own here (one the
    /// core added later); its message says why.
    Refused(WriteError),
    /// The engine dropped the write without answering it (a bug; see `WriteDone`).
    Unanswered,
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::InvalidName(e) => write!(f, "{e}"),
            EngineError::Storage(e) => write!(f, "storage failed: {e}"),
            EngineError::NotCreated(e) => write!(f, "the record could not be created: {e}"),
            EngineError::CorruptValue { name, source } => {
                write!(
                    f,
                    "stored value of record {name:?} is not valid JSON: {source}"
                )
            }
            EngineError::CorruptJournal {
                name,
                version,
                source,
            } => write!(
                f,
                "journal entry {version} of record {name:?} is damaged: {source} (the store's \
                 data is corrupt; restore it from a backup)"
            ),
            EngineError::CorruptVersions {
                name,
                version,
                created,
            } => write!(
                f,
                "stored record {name:?} is at version {version}, before its create at version \
                 {created} (the store's data is corrupt; restore it from a backup)"
            ),
            EngineError::Shutdown => write!(f, "the server is shutting down"),
            EngineError::NotInHistory {
                name,
                version,
                start,
                current,
            } => write!(
                f,
                "version {version} of record {name:?} is not in its history (readable: {})",
                readable(*start, *current)
            ),
            EngineError::NotInHistoryAtTime { name, time } => write!(
                f,
                "record {name:?} has no version as old as time {time} in its kept history"
            ),
        }
    }
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Its message is the name error's own, so its source is the name error's.
            EngineError::InvalidName(e) => e.source(),
            EngineError::Storage(e) | EngineError::NotCreated(e) => Some(e),
            EngineError::CorruptValue { source, .. } => Some(&**source),
            EngineError::CorruptJournal { source, .. } => Some(&**source),
            EngineError::CorruptVersions { .. }
            | EngineError::Shutdown
            | EngineError::NotInHistory { .. }
            | EngineError::NotInHistoryAtTime { .. } => None,
        }
    }
}

impl From<NameError> for EngineError {
    fn from(e: NameError) -> Self {
        EngineError::InvalidName(e)
    }
}

/// Converts a failed store read into the engine's error, counting it in
/// `recordsync_store_errors_total{op}` (commits are counted where they fail, by the group
/// committer): every read the engine makes of the store goes through this.
pub(crate) fn read_failed(op: &'static str) -> impl FnOnce(StoreError) -> EngineError {
    move |e| {
        metrics::counter!("recordsync_store_errors_total", "op" => op).increment(1);
        EngineError::Storage(e)
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        EngineError::Storage(e)
    }
}

impl fmt::Display for WriteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteFailure::VersionExists { version, .. } => write!(
                f,
                "version already exists: the record is at version {}",
                version.version
            ),
            WriteFailure::InvalidVersion { requested, current } => write!(
                f,
                "version {requested} is not valid: the record is at version {}",
                current.version
            ),
            WriteFailure::InvalidOp(e) => write!(f, "{e}"),
            WriteFailure::Rejected(e) => write!(f, "the op was refused: {e}"),
            WriteFailure::LifeEnded { base } => write!(
                f,
                "the record was deleted or created since version {base}, which the write was \
                 built on; read it again"
            ),
            WriteFailure::Exists { version } => write!(
                f,
                "the record exists already (at version {}): only a record that does not exist \
                 (or was deleted) can be created",
                version.version
            ),
            WriteFailure::Missing { next_create } => write!(
                f,
                "the record does not exist (a create would make version {next_create}): create \
                 it first"
            ),
            WriteFailure::NotAWrite { op } => write!(
                f,
                "a {op} is not a write: use the engine's subscribe (create) or delete"
            ),
            WriteFailure::Engine(e) => write!(f, "{e}"),
            WriteFailure::NotStored(e) => write!(f, "the write could not be stored: {e}"),
            WriteFailure::Conflict { stored } => write!(
                f,
                "the write could not be stored: another writer changed the record first ({}); \
                 it was not applied, read the record and try again",
                stored_version(*stored)
            ),
            WriteFailure::Contended { attempts } => write!(
                f,
                "the record is changed by other nodes faster than this write could be stored \
                 ({attempts} attempts); it was not applied, try again"
            ),
            WriteFailure::Refused(e) => write!(f, "{e}"),
            WriteFailure::Unanswered => write!(
                f,
                "internal error: the write was dropped without being stored or refused"
            ),
        }
    }
}

impl std::error::Error for WriteFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // These print their inner error's message as their own, so their source is
            // the inner error's.
            WriteFailure::InvalidOp(e) => e.source(),
            WriteFailure::Engine(e) => e.source(),
            WriteFailure::Refused(e) => e.source(),
            WriteFailure::Rejected(e) => Some(&**e),
            WriteFailure::NotStored(e) => Some(e),
            WriteFailure::VersionExists { .. }
            | WriteFailure::InvalidVersion { .. }
            | WriteFailure::LifeEnded { .. }
            | WriteFailure::Exists { .. }
            | WriteFailure::Missing { .. }
            | WriteFailure::NotAWrite { .. }
            | WriteFailure::Conflict { .. }
            | WriteFailure::Contended { .. }
            | WriteFailure::Unanswered => None,
        }
    }
}

impl From<OpError> for WriteFailure {
    fn from(e: OpError) -> Self {
        WriteFailure::InvalidOp(e)
    }
}

impl From<EngineError> for WriteFailure {
    fn from(e: EngineError) -> Self {
        WriteFailure::Engine(e)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use recordsync_core::{JournalOp, json};

    use super::*;

    #[test]
    fn corrupt_data_keeps_the_parsers_error_and_says_what_to_do() {
        let parse = json::parse::<serde_json::Value>("{").expect_err("not JSON");
        let value = EngineError::CorruptValue {
            name: "a".into(),
            source: Arc::new(parse),
        };
        assert!(
            value.to_string().starts_with(
                "stored value of record \"a\" is not valid JSON: data is not valid JSON: "
            ),
            "{value}"
        );
        let source = value.source().expect("the parser's error is the source");
        assert!(source.downcast_ref::<JsonError>().is_some());

        let unreadable = JournalOp::from_journal("[").expect_err("not a journal op");
        let journal = EngineError::CorruptJournal {
            name: "a".into(),
            version: 7,
            source: Arc::new(unreadable.into()),
        };
        let message = journal.to_string();
        assert!(
            message.starts_with(
                "journal entry 7 of record \"a\" is damaged: the journal entry is not a journal \
                 op: data is not valid JSON: "
            ),
            "{message}"
        );
        assert!(message.ends_with("restore it from a backup)"), "{message}");
        let source = journal.source().expect("the journal error is the source");
        assert!(matches!(
            source.downcast_ref::<JournalError>(),
            Some(JournalError::Unreadable(_))
        ));

        let versions = EngineError::CorruptVersions {
            name: "a".into(),
            version: 2,
            created: 5,
        };
        assert_eq!(
            versions.to_string(),
            "stored record \"a\" is at version 2, before its create at version 5 (the store's \
             data is corrupt; restore it from a backup)"
        );
    }

    #[test]
    fn write_failures_a_client_is_sent_say_what_to_do() {
        let conflict = WriteFailure::Conflict { stored: Some(4) };
        assert_eq!(
            conflict.to_string(),
            "the write could not be stored: another writer changed the record first (the store \
             holds version 4); it was not applied, read the record and try again"
        );
        assert_eq!(
            WriteFailure::Conflict { stored: None }.to_string(),
            "the write could not be stored: another writer changed the record first (the store \
             no longer holds it); it was not applied, read the record and try again"
        );
        let not_stored = WriteFailure::NotStored(StoreError::Closed);
        assert_eq!(
            not_stored.to_string(),
            "the write could not be stored: the store is shut down"
        );
        assert_eq!(
            not_stored
                .source()
                .and_then(|s| s.downcast_ref::<StoreError>()),
            Some(&StoreError::Closed)
        );
        // Cloning keeps the source (answers are cloned to every waiter).
        assert!(not_stored.clone().source().is_some());
        assert_eq!(
            WriteFailure::Engine(EngineError::Shutdown).to_string(),
            "the server is shutting down"
        );
    }
}
