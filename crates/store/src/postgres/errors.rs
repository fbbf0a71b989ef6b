//! PostgreSQL's errors as [`StoreError`]s a user can act on.

use std::error::Error as _;

use tokio_postgres::error::SqlState;

use crate::error::{Cause, StoreError};

/// What to do about a failed statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// The server is gone or refusing work (down, restarting, unreachable, out of
    /// connection slots): `StoreError::Unavailable`; a new connection may succeed.
    Unavailable,
    /// The transaction was rolled back because of concurrent transactions (deadlock,
    /// serialization failure): running it again is safe.
    Retry,
    /// Anything else.
    Other,
}

pub(super) fn kind(e: &tokio_postgres::Error) -> Kind {
    if let Some(code) = e.code() {
        let c = code.code();
        return if code == &SqlState::T_R_DEADLOCK_DETECTED
            || code == &SqlState::T_R_SERIALIZATION_FAILURE
        {
            Kind::Retry
        } else if c.starts_with("08")
            || code == &SqlState::ADMIN_SHUTDOWN
            || code == &SqlState::CRASH_SHUTDOWN
            || code == &SqlState::CANNOT_CONNECT_NOW
            || code == &SqlState::TOO_MANY_CONNECTIONS
            || code == &SqlState::READ_ONLY_SQL_TRANSACTION
            || code == &SqlState::IDLE_SESSION_TIMEOUT
        {
            Kind::Unavailable
        } else {
            Kind::Other
        };
    }
    if e.is_closed() || has_io_cause(e) {
        return Kind::Unavailable;
    }
    // tokio-postgres's own timeouts (connect_timeout) and connect failures.
    let text = e.to_string();
    if text.starts_with("timeout") || text.starts_with("error connecting") {
        Kind::Unavailable
    } else {
        Kind::Other
    }
}

fn has_io_cause(e: &tokio_postgres::Error) -> bool {
    let mut cause = e.source();
    while let Some(c) = cause {
        if c.is::<std::io::Error>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// The whole story of `e`: tokio-postgres's `Display` says only "db error" for what the
/// server said.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!(
            "PostgreSQL said: {} (SQLSTATE {})",
            db.message(),
            db.code().code()
        );
        if let Some(detail) = db.detail() {
            s.push_str(&format!("; {detail}"));
        }
        if let Some(hint) = db.hint() {
            s.push_str(&format!("; hint: {hint}"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(&format!(": {c}"));
        cause = c.source();
    }
    s
}

/// The [`StoreError`] for `e`, which happened while doing `what` on the database
/// `target` (`host:port/db`); `e` is its source.
pub(super) fn store_error(target: &str, what: &str, e: tokio_postgres::Error) -> StoreError {
    match kind(&e) {
        Kind::Unavailable => {
            let mut error = unavailable(target, what, &describe(&e));
            if let StoreError::Unavailable(cause) = &mut error {
                *cause = Cause::with_source(cause.reason(), e);
            }
            error
        }
        Kind::Retry | Kind::Other => {
            let hint = match e.code() {
                Some(c)
                    if c == &SqlState::UNDEFINED_TABLE || c == &SqlState::INVALID_SCHEMA_NAME =>
                {
                    " (recordsync's tables are gone: were they dropped? restart recordsync to \
                     create them again)"
                }
                Some(c) if c == &SqlState::DISK_FULL => " (free disk space on the database server)",
                Some(c) if c == &SqlState::INSUFFICIENT_PRIVILEGE => {
                    " (grant the database role recordsync connects as the privileges on its schema)"
                }
                _ => "",
            };
            let reason = format!("{what} in PostgreSQL at {target}: {}{hint}", describe(&e));
            StoreError::Io(Cause::with_source(reason, e))
        }
    }
}

pub(super) fn unavailable(target: &str, what: &str, cause: &str) -> StoreError {
    StoreError::Unavailable(
        format!(
            "{what}: PostgreSQL at {target} is unreachable or not accepting work ({cause}); \
             writes fail until it is back, and recordsync reconnects by itself"
        )
        .into(),
    )
}
