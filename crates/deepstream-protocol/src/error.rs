//! Decoding errors: each names what was wrong with the bytes a client sent, and keeps the
//! parser's own error as its [`source`](std::error::Error::source).

use std::fmt;
use std::sync::Arc;

use crate::messages::ParserAction;

/// Why a frame could not be decoded into a [`Message`](crate::Message).
///
/// The message of each variant includes its source's text, so that printing the error
/// alone (as servers log it and send it back to the client) says everything; programs
/// that want the parser's error take it from [`source`](std::error::Error::source) (the
/// parser's own type, not the `Arc` that keeps this enum `Clone`). Two errors are equal
/// when they are the same kind with the same fields and their sources say the same thing
/// (the parsers' errors have no equality of their own). New kinds of failure may be
/// added: match with a `_` arm, or use [`DecodeError::parser_action`] for deepstream's
/// answer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame is larger than the limit the caller set; nothing was parsed.
    TooLarge { size: usize, limit: usize },
    /// The binary transport's frame is not the protobuf deepstream's clients send.
    Protobuf(prost::DecodeError),
    /// The JSON transport's text frame is not a deepstream message object.
    Json(Arc<serde_json::Error>),
    /// The message names a topic deepstream does not define.
    UnknownTopic(i32),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooLarge { size, limit } => {
                write!(
                    f,
                    "message of {size} bytes exceeds the limit of {limit} bytes"
                )
            }
            DecodeError::Protobuf(e) => write!(f, "malformed protobuf frame: {e}"),
            DecodeError::Json(e) => write!(f, "malformed JSON message: {e}"),
            DecodeError::UnknownTopic(topic) => write!(
                f,
                "unknown topic {topic} (deepstream's topics are numbered as in general.proto)"
            ),
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecodeError::Protobuf(e) => Some(e),
            DecodeError::Json(e) => Some(&**e),
            DecodeError::TooLarge { .. } | DecodeError::UnknownTopic(_) => None,
        }
    }
}

impl PartialEq for DecodeError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                DecodeError::TooLarge { size, limit },
                DecodeError::TooLarge { size: s, limit: l },
            ) => size == s && limit == l,
            (DecodeError::Protobuf(a), DecodeError::Protobuf(b)) => a == b,
            (DecodeError::Json(a), DecodeError::Json(b)) => a.to_string() == b.to_string(),
            (DecodeError::UnknownTopic(a), DecodeError::UnknownTopic(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for DecodeError {}

impl DecodeError {
    /// The PARSER action that answers this error on deepstream's wire, as deepstream's
    /// own server answers it.
    pub fn parser_action(&self) -> ParserAction {
        match self {
            DecodeError::TooLarge { .. } => ParserAction::MaximumMessageSizeExceeded,
            DecodeError::UnknownTopic(_) => ParserAction::UnknownTopic,
            DecodeError::Protobuf(_) | DecodeError::Json(_) => ParserAction::MessageParseError,
        }
    }
}

impl From<prost::DecodeError> for DecodeError {
    fn from(e: prost::DecodeError) -> Self {
        DecodeError::Protobuf(e)
    }
}

impl From<serde_json::Error> for DecodeError {
    fn from(e: serde_json::Error) -> Self {
        DecodeError::Json(Arc::new(e))
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn the_parser_error_is_kept_as_the_source() {
        let json = crate::json::decode("not json", 100).unwrap_err();
        assert!(matches!(json, DecodeError::Json(_)));
        let source = json.source().expect("a JSON error has a source");
        assert!(source.downcast_ref::<serde_json::Error>().is_some());
        assert!(
            json.to_string()
                .starts_with("malformed JSON message: expected")
        );
        assert_eq!(json.parser_action(), ParserAction::MessageParseError);

        let protobuf = crate::binary::decode(b"\xff\xff\xff\xff", 100).unwrap_err();
        let source = protobuf.source().expect("a protobuf error has a source");
        assert!(source.downcast_ref::<prost::DecodeError>().is_some());
        assert_eq!(protobuf.parser_action(), ParserAction::MessageParseError);
    }

    #[test]
    fn each_error_has_deepstreams_parser_action() {
        let too_large = DecodeError::TooLarge { size: 2, limit: 1 };
        assert_eq!(
            too_large.parser_action(),
            ParserAction::MaximumMessageSizeExceeded
        );
        assert_eq!(
            DecodeError::UnknownTopic(999).parser_action(),
            ParserAction::UnknownTopic
        );
    }
}
