//! Decoding errors: each names what was wrong with the bytes a client sent.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("malformed protobuf frame: {0}")]
    Protobuf(String),
    #[error("malformed JSON message: {0}")]
    Json(String),
    #[error("unknown topic {0}")]
    UnknownTopic(i32),
}
