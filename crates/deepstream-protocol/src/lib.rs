//! deepstream's wire protocol (v4+), as spoken by `@deepstream/client` 7.x.
//!
//! One definition of the wire serves both the server and the Rust client.
//!
//! Crate map (the public surface is the `pub use` block below, plus the two transports):
//! - `messages`   — the per-topic messages ([`RecordMessage`], [`EventMessage`], [`AuthMessage`],
//!   [`ConnectionMessage`], [`ParserMessage`]) and their action enums, as protobuf
//!   structs that also (de)serialise as the JSON transport's objects.
//! - `message`    — [`Message`], one decoded message of any topic.
//! - [`binary`]   — the protobuf transport: one length-delimited `Message` per WebSocket frame.
//! - [`json`]     — the JSON transport: one flat JSON object per text frame.
//! - `error`      — [`DecodeError`], and the PARSER action that answers each.
//!
//! Field presence matters: the JS client reads fields directly and does not fill in
//! protobuf defaults, so a `version: 0` that an encoder drops arrives as `undefined`.
//! Every scalar the client may read is therefore an `Option` here and is written
//! whenever it is `Some`, zero or not.

// The two transports stay public modules: each is a namespace of its own `encode` and
// `decode`, which callers pick by the endpoint a connection came in on
// (`binary::decode` / `json::decode`).
pub mod binary;
pub mod json;

mod error;
mod message;
mod messages;

pub use error::DecodeError;
pub use message::Message;
pub use messages::{
    AuthAction, AuthMessage, ConnectionAction, ConnectionMessage, EventAction, EventMessage,
    ParserAction, ParserMessage, RecordAction, RecordMessage, Topic,
};
