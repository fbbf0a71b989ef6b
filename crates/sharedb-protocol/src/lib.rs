//! ShareDB's wire protocol (major 1, minor 2), as the npm `sharedb` 7 client speaks it.
//!
//! There is no written specification: the protocol is what ShareDB's server
//! (`lib/agent.js`) and client (`lib/client/*.js`) exchange, one JSON object per
//! WebSocket text frame, each with its action in `a`. This crate is the one Rust
//! definition of those messages, for the server's front door, clients and benchmarks.
//!
//! Crate map (the public surface is the `pub use` block below):
//! - `request` — what a client sends: [`decode`] turns a frame's text into an
//!   [`Incoming`] (the [`Request`] and the message as sent, which error replies echo),
//!   checked as ShareDB's server checks it ([`DecodeError`] otherwise).
//! - `reply`   — what the server sends: the handshake, snapshots, ops, acknowledgements,
//!   snapshot replies and errors, each a serde type ([`Reply`] and friends).
//! - `error`   — ShareDB's error codes ([`ErrorCode`]) and the `{code, message}` object
//!   replies carry ([`ShareDbError`]).
//! - `types`   — the protocol version and the OT types' names ([`JSON0_URI`],
//!   [`is_json0`]).
//!
//! Versions on this wire are ShareDB's: a document never created is version 0, an op's
//! `v` is the version it applies to. How they map onto recordsync's engine versions is
//! the server's business (`recordsync_engine::EngineVersion`).

mod error;
mod reply;
mod request;
mod types;

pub use error::{DecodeError, ErrorCode, ShareDbError};
pub use reply::{
    Ack, BulkEntry, BulkReply, DocReply, OpBody as SentOpBody, OpMessage, PresenceReply, Reply,
    SnapshotData, SnapshotReply, error_reply, handshake_reply, init_message, presence_request,
    presence_subscription_reply,
};
pub use request::{
    BulkDocs, BulkRequest, DocRequest, Incoming, OpBody, OpRequest, PresenceMessage, QueryKind,
    QueryRequest, Request, decode,
};
pub use types::{JSON0_URI, PROTOCOL_MAJOR, PROTOCOL_MINOR, is_json0};
