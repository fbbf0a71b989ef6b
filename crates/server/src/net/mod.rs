//! What every front door's connections share.
//!
//! - [`connection`] — one WebSocket connection: reading, writing the outbox, backpressure,
//!   close codes, the heartbeat check; a front door plugs in through
//!   [`connection::FrontDoor`].
//! - [`outbox`]     — each connection's bounded outbound queue, and the deferred wake-ups
//!   that let a commit's updates leave in one write per connection.
//! - [`http_connection`] — a plain HTTP request's handle on its connection (cut it off,
//!   hear of shutdown), for streamed responses.

pub mod connection;
pub mod http_connection;
pub mod outbox;
