//! What can go wrong in a client command, and the exit code for each.

use recordsync_client::{ConnectError, Error};
use recordsync_core::json::JsonError;
use thiserror::Error;

/// Exit codes (see the table in the module docs of `client_commands`).
pub mod code {
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const CONNECTION: u8 = 3;
    pub const AUTH: u8 = 4;
    pub const NOT_FOUND: u8 = 5;
    pub const PERMISSION: u8 = 6;
}

/// Why a client command failed. Each message is the one line printed on stderr, so it
/// includes the cause's text; the cause itself (the client's error, the JSON parser's, the
/// I/O error) is kept as the [`source`](std::error::Error::source).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CliError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Client(#[from] Error),
    /// The value given to `set` is not JSON, or nests deeper than a server accepts.
    #[error("{}", invalid_value(text, source))]
    InvalidValue {
        text: String,
        #[source]
        source: JsonError,
    },
    /// `--auth` (or `RECORDSYNC_AUTH`) is not JSON.
    #[error("--auth must be JSON, like '{{\"username\":\"ada\",\"password\":\"secret\"}}': {0}")]
    InvalidAuth(#[source] serde_json::Error),
    #[error("{0}")]
    NotFound(String),
    #[error("cannot write to stdout: {0}")]
    Output(#[from] std::io::Error),
}

/// The message for a value that `set` refuses: what is wrong, and how to write it.
fn invalid_value(text: &str, error: &JsonError) -> String {
    match error {
        JsonError::TooDeep { .. } => format!("the value is refused: {error}"),
        _ => format!(
            "the value {text:?} is not JSON ({error}); strings need quotes, e.g. '\"{text}\"'"
        ),
    }
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Connect(e) => match e {
                ConnectError::InvalidUrl { .. } => code::USAGE,
                ConnectError::AuthFailed { .. } => code::AUTH,
                // Refused, Unreachable, Timeout, NotDeepstream, Rejected, and whatever
                // the client adds: the server could not be used.
                _ => code::CONNECTION,
            },
            CliError::Client(e) => match e {
                Error::NotFound { .. } => code::NOT_FOUND,
                Error::PermissionDenied { .. } => code::PERMISSION,
                Error::InvalidPath { .. } | Error::InvalidValue { .. } => code::USAGE,
                Error::Closed { .. } => code::CONNECTION,
                _ => code::FAILURE,
            },
            CliError::InvalidValue { .. } | CliError::InvalidAuth(_) => code::USAGE,
            CliError::NotFound(_) => code::NOT_FOUND,
            CliError::Output(_) => code::FAILURE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_failure_has_its_code() {
        let refused = CliError::from(ConnectError::Refused {
            url: "ws://x".into(),
        });
        assert_eq!(refused.exit_code(), 3);
        let auth = CliError::from(ConnectError::AuthFailed {
            reason: "no".into(),
        });
        assert_eq!(auth.exit_code(), 4);
        let missing = CliError::from(Error::NotFound { name: "r".into() });
        assert_eq!(missing.exit_code(), 5);
        let denied = CliError::from(Error::PermissionDenied {
            name: "r".into(),
            action: "READ".into(),
        });
        assert_eq!(denied.exit_code(), 6);
        let not_json = serde_json::from_str::<serde_json::Value>("x").unwrap_err();
        assert_eq!(CliError::InvalidAuth(not_json).exit_code(), 2);
        let timeout = CliError::from(Error::Timeout {
            operation: "x".into(),
            after: std::time::Duration::from_secs(1),
        });
        assert_eq!(timeout.exit_code(), 1);
    }

    #[test]
    fn bad_auth_json_says_how_to_write_it_and_keeps_the_parsers_error() {
        let parse = serde_json::from_str::<serde_json::Value>("ada").unwrap_err();
        let error = CliError::InvalidAuth(parse);
        assert_eq!(error.exit_code(), 2);
        let message = error.to_string();
        assert!(
            message.starts_with(
                r#"--auth must be JSON, like '{"username":"ada","password":"secret"}': expected"#
            ),
            "{message}"
        );
        assert!(
            std::error::Error::source(&error)
                .and_then(|s| s.downcast_ref::<serde_json::Error>())
                .is_some()
        );
    }
}
