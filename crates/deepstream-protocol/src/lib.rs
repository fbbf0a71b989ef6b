//! deepstream's wire protocol (v4+), as spoken by `@deepstream/client` 7.x.
//!
//! One definition of the wire serves both the server and the Rust client.
//!
//! Module map:
//! - [`messages`] — the per-topic messages (connection, auth, record, parser) and their
//!   action enums, as protobuf structs that also (de)serialise as the JSON transport's objects.
//! - [`message`]  — [`Message`], one decoded message of any topic.
//! - [`binary`]   — the protobuf transport: one length-delimited `Message` per WebSocket frame.
//! - [`json`]     — the JSON transport: one flat JSON object per text frame.
//! - [`error`]    — [`DecodeError`].
//!
//! Field presence matters: the JS client reads fields directly and does not fill in
//! protobuf defaults, so a `version: 0` that an encoder drops arrives as `undefined`.
//! Every scalar the client may read is therefore an `Option` here and is written
//! whenever it is `Some`, zero or not.

pub mod binary;
pub mod error;
pub mod json;
pub mod message;
pub mod messages;

pub use error::DecodeError;
pub use message::Message;
pub use messages::{
    AuthAction, AuthMessage, ConnectionAction, ConnectionMessage, ParserAction, ParserMessage,
    RecordAction, RecordMessage, Topic,
};
