//! The deepstream front door: deepstream's v4+ protocol over WebSocket, as the
//! `@deepstream/client` SDKs speak it, on two transports (protobuf and JSON).
//!
//! - [`connection`] — deepstream's [`crate::net::connection::FrontDoor`]: decoding frames
//!   of its transport, the connection handshake, dispatch per connection.
//! - [`login`]      — the login handshake and its refusals, and the login timer.
//! - [`session`]    — a connection as an engine subscriber; event encoding.
//! - [`record`]     — the RECORD topic.
//! - [`event`]      — the EVENT topic (publish/subscribe, listening on event names).
//! - [`permission`] — which permission checks each record and event message makes, and deepstream's
//!   refusals.
//! - [`listen`]     — the listen messages (active providers) of the RECORD and EVENT
//!   topics, on the engine's one listening runtime.

pub mod connection;
pub mod event;
pub mod listen;
pub mod login;
pub mod permission;
pub mod record;
pub mod session;

pub use session::Transport;
