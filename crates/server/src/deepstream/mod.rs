//! The deepstream front door: deepstream's v4+ protocol over WebSocket, as the
//! `@deepstream/client` SDKs speak it, on two transports (protobuf and JSON).
//!
//! - [`connection`] — handshake, auth, heartbeats, dispatch per connection.
//! - [`session`]    — a connection as an engine subscriber; event encoding.
//! - [`record`]     — the RECORD topic.
//! - [`listen`]     — the RECORD topic's listen messages (active providers).

pub mod connection;
pub mod listen;
pub mod login;
pub mod permission;
pub mod record;
pub mod session;

pub use session::Transport;
