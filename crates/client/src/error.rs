//! The client's errors: [`ConnectError`] for establishing a connection, [`Error`](enum@Error) for
//! everything done over one. Each message says what happened and, where there is one,
//! what to do about it.
//!
//! Where a failure comes from somewhere else (the network, the WebSocket library, a frame
//! that does not decode, JSON (de)serialisation, a path that does not parse), that error is
//! kept, typed, as the error's [`source`](std::error::Error::source) — the error itself,
//! not the `Arc` that keeps these enums `Clone`, so `downcast_ref::<std::io::Error>()` and
//! the like work. Each message also includes the source's text, so that printing the error
//! alone (as the `recordsync` command does) says everything.
//!
//! Both enums are `#[non_exhaustive]`: new kinds of failure may be added, so match them
//! with a `_` arm.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use recordsync_core::PathError;
use tokio_tungstenite::tungstenite;

/// A failure from below the client, kept as a [`ConnectError`]'s source: a
/// [`std::io::Error`] when the network failed, a [`recordsync_deepstream_protocol::DecodeError`]
/// when the server's frame did not decode, or the WebSocket library's error otherwise
/// (behind `dyn Error`, so that the WebSocket library's version is no part of this
/// crate's surface).
pub type TransportFailure = Arc<dyn StdError + Send + Sync + 'static>;

/// Why [`Client::connect`](crate::Client::connect) could not open a session.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConnectError {
    /// The address cannot be used; `source` is the WebSocket library's reason, when it
    /// was the one to refuse it.
    InvalidUrl {
        url: String,
        reason: String,
        source: Option<TransportFailure>,
    },
    /// Nothing listens at the address. No source: the variant is the I/O error's kind
    /// (`ConnectionRefused`), and it says all there is.
    Refused { url: String },
    /// The server could not be reached, or the connection broke during the handshake.
    Unreachable {
        url: String,
        reason: String,
        source: Option<TransportFailure>,
    },
    /// The handshake took longer than [`Options::connect_timeout`](crate::Options::connect_timeout).
    Timeout { url: String, after: Duration },
    /// Something answered, but not as a deepstream server does.
    NotDeepstream {
        url: String,
        reason: String,
        source: Option<TransportFailure>,
    },
    /// The server refused the connection; `reason` is its own.
    Rejected { url: String, reason: String },
    /// The server refused the credentials; `reason` is its own.
    AuthFailed { reason: String },
}

impl ConnectError {
    /// `error` from the WebSocket library while opening `url`, sorted into what it says
    /// about the server. The I/O error, when it is one, is kept as the source.
    pub(crate) fn from_websocket(url: &str, error: tungstenite::Error) -> ConnectError {
        let url = url.to_owned();
        match error {
            tungstenite::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                ConnectError::Refused { url }
            }
            tungstenite::Error::Io(io) => ConnectError::Unreachable {
                url,
                reason: "the network failed".into(),
                source: Some(Arc::new(io)),
            },
            tungstenite::Error::Http(response) => ConnectError::NotDeepstream {
                url,
                reason: format!("the server answered HTTP {}", response.status()),
                source: None,
            },
            tungstenite::Error::Url(e) => ConnectError::InvalidUrl {
                url,
                reason: "the WebSocket library cannot use it".into(),
                source: Some(Arc::new(e)),
            },
            other => ConnectError::Unreachable {
                url,
                reason: "the WebSocket connection failed".into(),
                source: Some(Arc::new(other)),
            },
        }
    }

    /// The connection to `url` broke during the handshake, because of `error`.
    pub(crate) fn broken(url: &str, error: tungstenite::Error) -> ConnectError {
        ConnectError::Unreachable {
            url: url.to_owned(),
            reason: "the connection broke during the handshake".into(),
            source: Some(Arc::new(error)),
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::InvalidUrl {
                url,
                reason,
                source,
            } => {
                write!(f, "{url:?} is not a usable server address: {reason}")?;
                with_source(f, source.as_deref())
            }
            ConnectError::Refused { url, .. } => write!(
                f,
                "cannot connect to {url}: connection refused. Is the server running? (start one with `recordsync serve`)"
            ),
            ConnectError::Unreachable {
                url,
                reason,
                source,
            } => {
                write!(f, "cannot connect to {url}: {reason}")?;
                with_source(f, source.as_deref())
            }
            ConnectError::Timeout { url, after } => write!(
                f,
                "no answer from {url} within {after:?}: the server is slow or this is not a deepstream endpoint"
            ),
            ConnectError::NotDeepstream {
                url,
                reason,
                source,
            } => {
                write!(f, "{url} is not a deepstream endpoint: {reason}")?;
                with_source(f, source.as_deref())?;
                write!(
                    f,
                    " (deepstream and recordsync serve it on the path /deepstream)"
                )
            }
            ConnectError::Rejected { url, reason } => {
                write!(f, "the server at {url} refused the connection: {reason}")
            }
            ConnectError::AuthFailed { reason } => write!(
                f,
                "authentication failed: {reason} (check the credentials given with Options::auth)"
            ),
        }
    }
}

impl StdError for ConnectError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            ConnectError::InvalidUrl { source, .. }
            | ConnectError::Unreachable { source, .. }
            | ConnectError::NotDeepstream { source, .. } => {
                source.as_deref().map(|s| s as &(dyn StdError + 'static))
            }
            ConnectError::Refused { .. }
            | ConnectError::Timeout { .. }
            | ConnectError::Rejected { .. }
            | ConnectError::AuthFailed { .. } => None,
        }
    }
}

/// Why an operation on a record, a list or a listen did not succeed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// The client was closed, or gave up reconnecting; `source` is the last attempt's
    /// error when it gave up.
    Closed {
        reason: String,
        source: Option<Arc<ConnectError>>,
    },
    /// No answer in time. A write that timed out is still queued and may yet be applied.
    Timeout { operation: String, after: Duration },
    /// The record does not exist.
    NotFound { name: String },
    /// The server's permission rules refused `action` (deepstream's name for it).
    PermissionDenied { name: String, action: String },
    /// A concurrent write won over this one and the merge strategy kept the server's value.
    Conflict { name: String },
    /// The record was deleted.
    Deleted { name: String },
    /// The path cannot be used; `source` is the parser's reason, when it was the one to
    /// refuse it.
    InvalidPath {
        path: String,
        reason: String,
        source: Option<PathError>,
    },
    /// The value cannot be written, or read as the type asked for; `source` is
    /// serde_json's reason, when it was the one to refuse it.
    InvalidValue {
        reason: String,
        source: Option<Arc<serde_json::Error>>,
    },
    /// The server refused a listen.
    Listen { pattern: String, reason: String },
    /// Any other error the server reported, with deepstream's name for it.
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
            source: None,
        }
    }

    /// `value` could not be turned into JSON, or JSON into the type asked for.
    pub(crate) fn json(reason: impl Into<String>, source: serde_json::Error) -> Error {
        Error::InvalidValue {
            reason: reason.into(),
            source: Some(Arc::new(source)),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Closed { reason, source } => {
                write!(f, "the client is closed: {reason}")?;
                with_source(f, source.as_deref())
            }
            Error::Timeout { operation, after } => write!(
                f,
                "{operation} got no answer within {after:?} (the connection may be down; see Client::connection_state)"
            ),
            Error::NotFound { name } => write!(f, "record {name:?} does not exist"),
            Error::PermissionDenied { name, action } => write!(
                f,
                "permission denied: {action} on {name:?} (the server's permission rules refused it)"
            ),
            Error::Conflict { name } => write!(
                f,
                "record {name:?} was changed concurrently and the merge strategy kept the other write (see MergeStrategy)"
            ),
            Error::Deleted { name } => write!(f, "record {name:?} has been deleted"),
            Error::InvalidPath {
                path,
                reason,
                source,
            } => {
                write!(f, "invalid path {path:?}: {reason}")?;
                with_source(f, source.as_ref())
            }
            Error::InvalidValue { reason, source } => {
                write!(f, "invalid value: {reason}")?;
                with_source(f, source.as_deref())
            }
            Error::Listen { pattern, reason } => {
                write!(f, "cannot listen to {pattern:?}: {reason}")
            }
            Error::Server {
                name,
                action,
                reason,
            } => {
                write!(f, "the server answered {action} for {name:?}")?;
                match reason {
                    Some(reason) => write!(f, ": {reason}"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::Closed { source, .. } => {
                source.as_deref().map(|s| s as &(dyn StdError + 'static))
            }
            Error::InvalidPath { source, .. } => {
                source.as_ref().map(|s| s as &(dyn StdError + 'static))
            }
            Error::InvalidValue { source, .. } => {
                source.as_deref().map(|s| s as &(dyn StdError + 'static))
            }
            Error::Timeout { .. }
            | Error::NotFound { .. }
            | Error::PermissionDenied { .. }
            | Error::Conflict { .. }
            | Error::Deleted { .. }
            | Error::Listen { .. }
            | Error::Server { .. } => None,
        }
    }
}

// Equality: the same kind with the same fields, and sources that say the same thing.
// The sources' types (I/O, WebSocket, serde_json errors) have no equality of their own,
// so they are compared by their messages; tests compare errors whole this way.

impl PartialEq for ConnectError {
    fn eq(&self, other: &Self) -> bool {
        use ConnectError::*;
        match (self, other) {
            (
                InvalidUrl {
                    url,
                    reason,
                    source,
                },
                InvalidUrl {
                    url: u,
                    reason: r,
                    source: s,
                },
            )
            | (
                Unreachable {
                    url,
                    reason,
                    source,
                },
                Unreachable {
                    url: u,
                    reason: r,
                    source: s,
                },
            )
            | (
                NotDeepstream {
                    url,
                    reason,
                    source,
                },
                NotDeepstream {
                    url: u,
                    reason: r,
                    source: s,
                },
            ) => url == u && reason == r && same_message(source.as_deref(), s.as_deref()),
            (Refused { url }, Refused { url: u }) => url == u,
            (Timeout { url, after }, Timeout { url: u, after: a }) => url == u && after == a,
            (Rejected { url, reason }, Rejected { url: u, reason: r }) => url == u && reason == r,
            (AuthFailed { reason }, AuthFailed { reason: r }) => reason == r,
            _ => false,
        }
    }
}

impl Eq for ConnectError {}

impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        use Error::*;
        match (self, other) {
            (
                Closed { reason, source },
                Closed {
                    reason: r,
                    source: s,
                },
            ) => reason == r && s.as_deref() == source.as_deref(),
            (
                Timeout { operation, after },
                Timeout {
                    operation: o,
                    after: a,
                },
            ) => operation == o && after == a,
            (NotFound { name }, NotFound { name: n })
            | (Conflict { name }, Conflict { name: n })
            | (Deleted { name }, Deleted { name: n }) => name == n,
            (PermissionDenied { name, action }, PermissionDenied { name: n, action: a }) => {
                name == n && action == a
            }
            (
                InvalidPath {
                    path,
                    reason,
                    source,
                },
                InvalidPath {
                    path: p,
                    reason: r,
                    source: s,
                },
            ) => path == p && reason == r && source == s,
            (
                InvalidValue { reason, source },
                InvalidValue {
                    reason: r,
                    source: s,
                },
            ) => reason == r && same_message(source.as_deref(), s.as_deref()),
            (
                Listen { pattern, reason },
                Listen {
                    pattern: p,
                    reason: r,
                },
            ) => pattern == p && reason == r,
            (
                Server {
                    name,
                    action,
                    reason,
                },
                Server {
                    name: n,
                    action: a,
                    reason: r,
                },
            ) => name == n && action == a && reason == r,
            _ => false,
        }
    }
}

impl Eq for Error {}

/// Whether two optional sources say the same thing.
fn same_message(
    a: Option<&(impl fmt::Display + ?Sized)>,
    b: Option<&(impl fmt::Display + ?Sized)>,
) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.to_string() == b.to_string(),
        _ => false,
    }
}

/// Appends `: {source}` when there is a source.
fn with_source(
    f: &mut fmt::Formatter<'_>,
    source: Option<&(impl fmt::Display + ?Sized)>,
) -> fmt::Result {
    match source {
        Some(source) => write!(f, ": {source}"),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_failure_keeps_the_io_error() {
        let io = std::io::Error::new(std::io::ErrorKind::HostUnreachable, "no route to host");
        let error = ConnectError::from_websocket("ws://h:1/deepstream", tungstenite::Error::Io(io));
        assert_eq!(
            error.to_string(),
            "cannot connect to ws://h:1/deepstream: the network failed: no route to host"
        );
        let source = error.source().expect("the I/O error is kept");
        let io = source.downcast_ref::<std::io::Error>().expect("as itself");
        assert_eq!(io.kind(), std::io::ErrorKind::HostUnreachable);

        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let error = ConnectError::from_websocket("ws://h:1", tungstenite::Error::Io(refused));
        assert_eq!(
            error,
            ConnectError::Refused {
                url: "ws://h:1".into()
            }
        );
    }

    #[test]
    fn an_undecodable_frame_keeps_the_decode_error() {
        let decode =
            recordsync_deepstream_protocol::binary::decode(b"\xff\xff", 100).expect_err("garbage");
        let error = ConnectError::NotDeepstream {
            url: "ws://h:1".into(),
            reason: "it sent a frame that does not decode".into(),
            source: Some(Arc::new(decode)),
        };
        assert!(
            error
                .source()
                .and_then(|s| s.downcast_ref::<recordsync_deepstream_protocol::DecodeError>())
                .is_some()
        );
        assert!(
            error
                .to_string()
                .ends_with("(deepstream and recordsync serve it on the path /deepstream)")
        );
    }

    #[test]
    fn giving_up_keeps_the_last_attempts_error() {
        let last = ConnectError::Refused {
            url: "ws://h:1".into(),
        };
        let error = Error::Closed {
            reason: "could not reconnect to ws://h:1 after 3 attempts".into(),
            source: Some(Arc::new(last.clone())),
        };
        assert_eq!(
            error.to_string(),
            format!(
                "the client is closed: could not reconnect to ws://h:1 after 3 attempts: {last}"
            )
        );
        assert_eq!(
            error
                .source()
                .and_then(|s| s.downcast_ref::<ConnectError>()),
            Some(&last)
        );
    }

    #[test]
    fn bad_values_and_paths_keep_the_parsers_error() {
        let json = serde_json::from_str::<u8>("300").expect_err("too large for u8");
        let error = Error::json("the value at \"n\" does not read as u8", json);
        assert!(
            error
                .source()
                .and_then(|s| s.downcast_ref::<serde_json::Error>())
                .is_some()
        );
        assert!(error.to_string().starts_with(
            "invalid value: the value at \"n\" does not read as u8: invalid value: integer `300`"
        ));
        // Equal when they say the same, though serde_json's errors have no equality.
        let again = serde_json::from_str::<u8>("300").expect_err("too large for u8");
        assert_eq!(
            error,
            Error::json("the value at \"n\" does not read as u8", again)
        );

        let path = recordsync_core::Path::parse("a[").expect_err("unclosed");
        let error = Error::InvalidPath {
            path: "a[".into(),
            reason: "it does not parse".into(),
            source: Some(path.clone()),
        };
        assert_eq!(
            error.source().and_then(|s| s.downcast_ref::<PathError>()),
            Some(&path)
        );
        assert_eq!(
            error.to_string(),
            format!("invalid path \"a[\": it does not parse: {path}")
        );
    }
}
