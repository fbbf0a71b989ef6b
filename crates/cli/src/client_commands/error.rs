//! What can go wrong in a client command, and the exit code for each.

use recordsync_client::{ConnectError, Error};
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

#[derive(Debug, Error)]
pub enum CliError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Client(#[from] Error),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    NotFound(String),
    #[error("cannot write to stdout: {0}")]
    Output(#[from] std::io::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Connect(e) => match e {
                ConnectError::InvalidUrl { .. } => code::USAGE,
                ConnectError::AuthFailed { .. } => code::AUTH,
                ConnectError::Refused { .. }
                | ConnectError::Unreachable { .. }
                | ConnectError::Timeout { .. }
                | ConnectError::NotDeepstream { .. }
                | ConnectError::Rejected { .. } => code::CONNECTION,
            },
            CliError::Client(e) => match e {
                Error::NotFound { .. } => code::NOT_FOUND,
                Error::PermissionDenied { .. } => code::PERMISSION,
                Error::InvalidPath { .. } | Error::InvalidValue { .. } => code::USAGE,
                Error::Closed { .. } => code::CONNECTION,
                _ => code::FAILURE,
            },
            CliError::Usage(_) => code::USAGE,
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
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
        let timeout = CliError::from(Error::Timeout {
            operation: "x".into(),
            after: std::time::Duration::from_secs(1),
        });
        assert_eq!(timeout.exit_code(), 1);
    }
}
