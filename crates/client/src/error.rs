//! The client's errors: [`ConnectError`] for establishing a connection, [`Error`](enum@Error) for
//! everything done over one. Each message says what happened and, where there is one,
//! what to do about it.

use std::time::Duration;

use thiserror::Error;

/// Why [`Client::connect`](crate::Client::connect) could not open a session.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConnectError {
    #[error("{url:?} is not a usable server address: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "cannot connect to {url}: connection refused. Is the server running? (start one with `recordsync serve`)"
    )]
    Refused { url: String },
    #[error("cannot connect to {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "no answer from {url} within {after:?}: the server is slow or this is not a deepstream endpoint"
    )]
    Timeout { url: String, after: Duration },
    #[error(
        "{url} is not a deepstream endpoint: {reason} (deepstream and recordsync serve it on the path /deepstream)"
    )]
    NotDeepstream { url: String, reason: String },
    #[error("the server at {url} refused the connection: {reason}")]
    Rejected { url: String, reason: String },
    #[error("authentication failed: {reason} (check the credentials given with Options::auth)")]
    AuthFailed { reason: String },
}

/// Why an operation on a record, a list or a listen did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// The client was closed, or gave up reconnecting.
    #[error("the client is closed: {reason}")]
    Closed { reason: String },
    /// No answer in time. A write that timed out is still queued and may yet be applied.
    #[error(
        "{operation} got no answer within {after:?} (the connection may be down; see Client::connection_state)"
    )]
    Timeout { operation: String, after: Duration },
    #[error("record {name:?} does not exist")]
    NotFound { name: String },
    #[error("permission denied: {action} on {name:?} (the server's permission rules refused it)")]
    PermissionDenied { name: String, action: String },
    /// A concurrent write won over this one and the merge strategy kept the server's value.
    #[error(
        "record {name:?} was changed concurrently and the merge strategy kept the other write (see MergeStrategy)"
    )]
    Conflict { name: String },
    #[error("record {name:?} has been deleted")]
    Deleted { name: String },
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("invalid value: {reason}")]
    InvalidValue { reason: String },
    #[error("cannot listen to {pattern:?}: {reason}")]
    Listen { pattern: String, reason: String },
    /// Any other error the server reported, with deepstream's name for it.
    #[error("the server answered {action} for {name:?}{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Server {
        name: String,
        action: String,
        reason: Option<String>,
    },
}

impl Error {
    pub(crate) fn timeout(operation: impl Into<String>, after: Duration) -> Error {
        Error::Timeout {
            operation: operation.into(),
            after,
        }
    }

    pub(crate) fn closed() -> Error {
        Error::Closed {
            reason: "Client::close was called".into(),
        }
    }
}
