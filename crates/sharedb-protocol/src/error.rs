//! ShareDB's errors: the codes its server and client use (`lib/error.js`), the
//! `{code, message}` object an error reply carries, and why a frame did not decode.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

macro_rules! codes {
    ($($name:ident),* $(,)?) => {
        /// A ShareDB error code, written on the wire as its name (`"ERR_DOC_ALREADY_CREATED"`).
        ///
        /// The list is ShareDB 7's (`ShareDBError.CODES`); a code this crate does not know
        /// is kept as [`ErrorCode::Other`], so a client reading a newer server's errors
        /// still has the code.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[allow(non_camel_case_types, reason = "the codes are ShareDB's names, as written on the wire")]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($name,)*
            /// A code not in ShareDB 7's list.
            Other(String),
        }

        impl ErrorCode {
            /// The code as written on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ErrorCode::$name => stringify!($name),)*
                    ErrorCode::Other(code) => code,
                }
            }

            /// The code named `name` ([`ErrorCode::Other`] if it is not one of ShareDB 7's).
            pub fn from_name(name: &str) -> ErrorCode {
                match name {
                    $(stringify!($name) => ErrorCode::$name,)*
                    other => ErrorCode::Other(other.to_owned()),
                }
            }
        }
    };
}

codes! {
    ERR_APPLY_OP_VERSION_DOES_NOT_MATCH_SNAPSHOT,
    ERR_APPLY_SNAPSHOT_NOT_PROVIDED,
    ERR_FIXUP_IS_ONLY_VALID_ON_APPLY,
    ERR_CANNOT_FIXUP_DELETION,
    ERR_CLIENT_ID_BADLY_FORMED,
    ERR_CANNOT_PING_OFFLINE,
    ERR_CONNECTION_SEQ_INTEGER_OVERFLOW,
    ERR_CONNECTION_STATE_TRANSITION_INVALID,
    ERR_DATABASE_ADAPTER_NOT_FOUND,
    ERR_DATABASE_DOES_NOT_SUPPORT_SUBSCRIBE,
    ERR_DATABASE_METHOD_NOT_IMPLEMENTED,
    ERR_DEFAULT_TYPE_MISMATCH,
    ERR_DOC_MISSING_VERSION,
    ERR_DOC_ALREADY_CREATED,
    ERR_DOC_DOES_NOT_EXIST,
    ERR_DOC_TYPE_NOT_RECOGNIZED,
    ERR_DOC_WAS_DELETED,
    ERR_DOC_IN_HARD_ROLLBACK,
    ERR_INFLIGHT_OP_MISSING,
    ERR_INGESTED_SNAPSHOT_HAS_NO_VERSION,
    ERR_MAX_SUBMIT_RETRIES_EXCEEDED,
    ERR_MESSAGE_BADLY_FORMED,
    ERR_MILESTONE_ARGUMENT_INVALID,
    ERR_NO_OP,
    ERR_OP_ALREADY_SUBMITTED,
    ERR_OP_NOT_ALLOWED_IN_PROJECTION,
    ERR_OP_SUBMIT_REJECTED,
    ERR_PENDING_OP_REMOVED_BY_OP_SUBMIT_REJECTED,
    ERR_HARD_ROLLBACK_FETCH_FAILED,
    ERR_OP_VERSION_MISMATCH_AFTER_TRANSFORM,
    ERR_OP_VERSION_MISMATCH_DURING_TRANSFORM,
    ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT,
    ERR_OT_LEGACY_JSON0_OP_CANNOT_BE_NORMALIZED,
    ERR_OT_OP_BADLY_FORMED,
    ERR_OT_OP_NOT_APPLIED,
    ERR_OT_OP_NOT_PROVIDED,
    ERR_PRESENCE_TRANSFORM_FAILED,
    ERR_PROTOCOL_VERSION_NOT_SUPPORTED,
    ERR_QUERY_CHANNEL_MISSING,
    ERR_QUERY_EMITTER_LISTENER_NOT_ASSIGNED,
    ERR_SNAPSHOT_READ_SILENT_REJECTION,
    ERR_SNAPSHOT_READS_REJECTED,
    ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND,
    ERR_TYPE_CANNOT_BE_PROJECTED,
    ERR_TYPE_DOES_NOT_SUPPORT_COMPOSE,
    ERR_TYPE_DOES_NOT_SUPPORT_PRESENCE,
    ERR_UNKNOWN_ERROR,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ErrorCode, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(ErrorCode::from_name(&name))
    }
}

/// The error object of a reply: `{code, message}`, what the client turns into an `Error`
/// with that `code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Error)]
#[error("{code}: {message}")]
pub struct ShareDbError {
    pub code: ErrorCode,
    pub message: String,
}

impl ShareDbError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ShareDbError {
        ShareDbError {
            code,
            message: message.into(),
        }
    }

    /// ShareDB's own message for a request that is not one it knows.
    pub fn badly_formed(message: impl Into<String>) -> ShareDbError {
        ShareDbError::new(ErrorCode::ERR_MESSAGE_BADLY_FORMED, message)
    }
}

/// Why a frame did not decode into a request. Each is answered with
/// [`DecodeError::to_sharedb`]; none closes the connection.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The text is not JSON, or nests deeper than the limit. Nothing can be echoed.
    #[error("the message is not JSON: {0}")]
    NotJson(#[source] recordsync_core::JsonError),
    /// JSON, but not an object.
    #[error("Received non-object message")]
    NotObject,
    /// An object whose fields ShareDB's server would refuse (`message` is ShareDB's
    /// wording: "Invalid collection", "Invalid version", ...). The request is echoed.
    #[error("{message}")]
    BadlyFormed {
        message: String,
        /// The message as sent, for the error reply.
        raw: serde_json::Value,
    },
    /// An op message whose op ShareDB's `checkOp` refuses (`ERR_OT_OP_BADLY_FORMED`).
    #[error("{message}")]
    BadOp {
        message: String,
        raw: serde_json::Value,
    },
    /// An action ShareDB does not have ("Invalid or unknown message").
    #[error("Invalid or unknown message")]
    UnknownAction { raw: serde_json::Value },
}

impl DecodeError {
    /// The error object ShareDB answers with.
    pub fn to_sharedb(&self) -> ShareDbError {
        let code = match self {
            DecodeError::BadOp { .. } => ErrorCode::ERR_OT_OP_BADLY_FORMED,
            _ => ErrorCode::ERR_MESSAGE_BADLY_FORMED,
        };
        ShareDbError::new(code, self.to_string())
    }

    /// The message as sent, when it was a JSON object (the error reply echoes it).
    pub fn raw(&self) -> Option<&serde_json::Value> {
        match self {
            DecodeError::NotJson(_) | DecodeError::NotObject => None,
            DecodeError::BadlyFormed { raw, .. }
            | DecodeError::BadOp { raw, .. }
            | DecodeError::UnknownAction { raw } => Some(raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_written_and_read_by_name() {
        let error = ShareDbError::new(ErrorCode::ERR_DOC_ALREADY_CREATED, "exists");
        let text = serde_json::to_string(&error).unwrap();
        assert_eq!(
            text,
            r#"{"code":"ERR_DOC_ALREADY_CREATED","message":"exists"}"#
        );
        assert_eq!(serde_json::from_str::<ShareDbError>(&text).unwrap(), error);
        let newer: ShareDbError =
            serde_json::from_str(r#"{"code":"ERR_FROM_THE_FUTURE","message":""}"#).unwrap();
        assert_eq!(newer.code, ErrorCode::Other("ERR_FROM_THE_FUTURE".into()));
        assert_eq!(newer.code.as_str(), "ERR_FROM_THE_FUTURE");
        assert_eq!(
            ErrorCode::from_name("ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT"),
            ErrorCode::ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT
        );
    }
}
