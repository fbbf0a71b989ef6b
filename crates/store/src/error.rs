//! [`StoreError`]: why a store could not do what was asked, with the error that made it
//! fail (an I/O error, the storage engine's, PostgreSQL's) kept as its source.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// The error a store's library or the operating system reported, kept whole as the
/// [`source`](std::error::Error::source) of a [`StoreError`]. Behind `Arc<dyn Error>`
/// because it comes from one of several libraries (std's I/O, redb, tokio-postgres,
/// deadpool, or a [`Store`](crate::Store) implemented elsewhere), none of whose types
/// should become part of this crate's surface, and because `StoreError` is `Clone` (the
/// embedded store hands the same failure to every write it refuses). Downcast it to the
/// library's type (`std::io::Error`, `redb::Error`, `tokio_postgres::Error`, ...) to
/// inspect it.
pub type StoreFailure = Arc<dyn Error + Send + Sync + 'static>;

/// What went wrong, in words a user can act on, and the error behind it when there was
/// one.
///
/// The words are complete on their own: they include the underlying error's text (and,
/// for PostgreSQL, what the server said), so printing a [`StoreError`] says everything.
/// The underlying error is kept for programs, as the `StoreError`'s
/// [`source`](std::error::Error::source). A `Cause` is made from a plain `String` or
/// `&str` when nothing underlies it (an internal inconsistency, a refusal of the store's
/// own), and with [`Cause::with_source`] otherwise.
///
/// Two causes are equal when their words are, and their sources (if any) say the same
/// thing: the libraries' errors have no equality of their own.
#[derive(Debug, Clone)]
pub struct Cause {
    reason: String,
    source: Option<StoreFailure>,
}

impl Cause {
    /// A cause with nothing underneath it.
    pub fn new(reason: impl Into<String>) -> Self {
        Cause {
            reason: reason.into(),
            source: None,
        }
    }

    /// `reason`, which should include `source`'s text, caused by `source`.
    pub fn with_source(
        reason: impl Into<String>,
        source: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> Self {
        Cause {
            reason: reason.into(),
            source: Some(Arc::from(source.into())),
        }
    }

    /// The words, as [`Display`](fmt::Display) prints them.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The underlying error, if there was one: the library's own type (not the `Arc`),
    /// so that it downcasts.
    pub fn failure(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }

    /// Appends `more` to the words (the source stays).
    pub(crate) fn push_str(&mut self, more: &str) {
        self.reason.push_str(more);
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.reason == other.reason
            && self.source.as_ref().map(ToString::to_string)
                == other.source.as_ref().map(ToString::to_string)
    }
}

impl Eq for Cause {}

impl From<String> for Cause {
    fn from(reason: String) -> Self {
        Cause::new(reason)
    }
}

impl From<&str> for Cause {
    fn from(reason: &str) -> Self {
        Cause::new(reason)
    }
}

/// Why a store could not do what was asked. Messages say what to check.
///
/// Where a library or the operating system reported the failure, its error is the
/// [`source`](std::error::Error::source) (see [`Cause`]); the message includes its text
/// too. Equality compares kinds, fields and the sources' texts. New kinds may be added:
/// match with a `_` arm.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory (or one of its files) cannot be opened: missing permissions,
    /// damage found on opening, a schema from a newer recordsync. `path` is the file or
    /// directory.
    Open { path: String, reason: Cause },
    /// A database server (PostgreSQL) could not be set up for use: wrong encoding,
    /// a schema from a newer recordsync, a failed migration, missing privileges.
    Database { target: String, reason: Cause },
    /// Reading or writing the data failed; the message says which and what to do.
    Io(Cause),
    /// The filesystem holding the data is full (or the user's disk quota is used up):
    /// `reason` says which write failed, `path` is the data directory, whose filesystem
    /// needs room. The embedded store refuses writes meanwhile, and takes them again by
    /// itself once a test write succeeds; nothing acknowledged is lost.
    Full { path: String, reason: Cause },
    /// Stored data of record `name` does not decode: the data file is damaged.
    Corrupt { name: String, reason: Cause },
    /// The store was shut down; nothing more is done.
    Closed,
    /// A database server (PostgreSQL) cannot be reached or is not accepting work now.
    /// Calls fail until it is back; the store reconnects by itself, nothing to restart.
    Unavailable(Cause),
    /// A write this backend cannot represent (PostgreSQL text cannot hold U+0000 in a
    /// record name, say). The batch it was in is not stored.
    Unstorable { name: String, reason: String },
    /// A write that breaks the [`Write`](crate::Write) contract (its journal entries do
    /// not lead from its base to its version): a bug in the caller. Nothing is stored.
    Malformed { name: String, reason: String },
    /// A query that cannot be run as asked (a collection name holding `/`, say). The
    /// query's own syntax is checked before it reaches a store
    /// (`recordsync_core::query::QueryError`).
    InvalidQuery(String),
    /// This store does not do what was asked (a [`Store`](crate::Store) written
    /// elsewhere that does not answer queries, say).
    Unsupported(String),
    /// A restore ([`Store::restore`](crate::Store::restore)) found record `name` in the
    /// store already: backups are loaded into an empty data set only. Nothing is stored.
    Exists { name: String },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Open { path, reason } => {
                write!(f, "cannot open the data directory {path}: {reason}")
            }
            StoreError::Database { target, reason } => {
                write!(f, "cannot use the database {target}: {reason}")
            }
            StoreError::Io(reason) => write!(f, "storage I/O failed: {reason}"),
            StoreError::Full { path, reason } => write!(
                f,
                "storage full: {reason}; free space on {path} (writes resume by themselves \
                 once there is room)"
            ),
            StoreError::Corrupt { name, reason } => {
                write!(f, "stored data for record {name:?} is corrupt: {reason}")
            }
            StoreError::Closed => f.write_str("the store is shut down"),
            StoreError::Unavailable(reason) => {
                write!(f, "the database is unavailable: {reason}")
            }
            StoreError::Unstorable { name, reason } => {
                write!(f, "record {name:?} cannot be stored: {reason}")
            }
            StoreError::Malformed { name, reason } => {
                write!(f, "malformed write to record {name:?}: {reason}")
            }
            StoreError::InvalidQuery(reason) => write!(f, "invalid query: {reason}"),
            StoreError::Unsupported(what) => write!(f, "this store does not support {what}"),
            StoreError::Exists { name } => write!(
                f,
                "record {name:?} exists already: a backup is restored into an empty data set only"
            ),
        }
    }
}

impl Error for StoreError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            StoreError::Open { reason, .. }
            | StoreError::Database { reason, .. }
            | StoreError::Io(reason)
            | StoreError::Full { reason, .. }
            | StoreError::Corrupt { reason, .. }
            | StoreError::Unavailable(reason) => reason.failure(),
            StoreError::Closed
            | StoreError::Unstorable { .. }
            | StoreError::Malformed { .. }
            | StoreError::InvalidQuery(_)
            | StoreError::Unsupported(_)
            | StoreError::Exists { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_underlying_error_is_the_source_and_downcasts() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left");
        let error = StoreError::Full {
            path: "/data".into(),
            reason: Cause::with_source(format!("appending to the log: {io}"), io),
        };
        assert_eq!(
            error.to_string(),
            "storage full: appending to the log: No space left; free space on /data (writes \
             resume by themselves once there is room)"
        );
        let source = error.source().expect("a full disk has a source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("the source is the I/O error itself, not a wrapper");
        assert_eq!(io.kind(), std::io::ErrorKind::StorageFull);
    }

    #[test]
    fn a_cause_from_words_has_no_source() {
        let error = StoreError::Io("disk on fire".into());
        assert_eq!(error.to_string(), "storage I/O failed: disk on fire");
        assert!(error.source().is_none());
        assert!(StoreError::Closed.source().is_none());
    }

    #[test]
    fn equality_compares_the_words_and_the_sources_texts() {
        let with = |text: &str| {
            StoreError::Unavailable(Cause::with_source(
                "PostgreSQL is down",
                std::io::Error::other(text.to_owned()),
            ))
        };
        assert_eq!(with("refused"), with("refused"));
        assert_ne!(with("refused"), with("reset"));
        assert_ne!(
            with("refused"),
            StoreError::Unavailable("PostgreSQL is down".into())
        );
        let clone = with("refused").clone();
        assert!(clone.source().is_some());
    }
}
