//! A Rust client for live records over deepstream's protocol. It works against
//! recordsync and against deepstream 7 servers alike, speaking the same binary protobuf
//! wire as deepstream's own JavaScript client, with the message definitions the
//! recordsync server uses ([`recordsync_deepstream_protocol`]).
//!
//! # Example
//!
//! ```no_run
//! use recordsync_client::{Client, Error};
//! use serde_json::json;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Connect and log in (open authentication: `Options::auth` sets credentials).
//!     let client = Client::connect("ws://127.0.0.1:6020/deepstream").await?;
//!
//!     // A live record: subscribed on the server, created as {} if it does not exist.
//!     let driver = client.record("driver/jack");
//!     driver.when_ready().await?;
//!
//!     // Watch one path: the current value first, then every change.
//!     let mut coords = driver.subscribe("coords")?;
//!     tokio::spawn(async move {
//!         while let Some(value) = coords.next().await {
//!             println!("jack is at {value}");
//!         }
//!     });
//!
//!     // Write: applied locally at once, sent in order, queued while offline.
//!     driver.set("coords", json!({ "lat": 52.52, "lng": 13.40 }))?;
//!     // Or wait until the server has stored it.
//!     driver.set_with_ack("status", "delivering").await?;
//!     assert_eq!(driver.get("status"), Some(json!("delivering")));
//!
//!     // One-off reads and writes, without subscribing.
//!     let exists = client.has("driver/jill").await?;
//!     client.set_data_with_ack("driver/jill", "", json!({ "status": "idle" })).await?;
//!     let snapshot = client.snapshot("driver/jill").await?;
//!     println!("{exists} {} {}", snapshot.version, snapshot.data);
//!
//!     // Provide records on demand: answer whoever subscribes to weather/*.
//!     let mut listening = client.listen("^weather/.*").await?;
//!     let provider = client.clone();
//!     tokio::spawn(async move {
//!         while let Some(offer) = listening.next().await {
//!             let name = offer.name().to_owned();
//!             let mut provision = offer.accept();
//!             provider.set_data(&name, "celsius", 21).unwrap();
//!             provision.stopped().await; // the last subscriber left
//!         }
//!     });
//!
//!     // Delete: every client holding the record sees `deleted()` complete.
//!     match client.delete("driver/jill").await {
//!         Ok(()) | Err(Error::NotFound { .. }) => {}
//!         Err(e) => return Err(e.into()),
//!     }
//!     client.close().await;
//!     Ok(())
//! }
//! ```
//!
//! # Concepts
//!
//! - **Records** ([`Record`]) are JSON values (objects or arrays) with a name and a
//!   version. [`Client::record`] returns a handle at once; [`Record::when_ready`] waits
//!   for the value. Handles are reference counted, in the manner of Racer's models:
//!   asking for the same record twice, or cloning a handle, shares one server
//!   subscription, which ends when the last handle is dropped — or, with
//!   [`Options::unload_delay`], that long afterwards, so that a quick re-subscribe never
//!   unsubscribes. A record with unconfirmed writes stays subscribed until they are
//!   confirmed.
//! - **Paths** address a part of a value in deepstream's notation (`pets[1].fur.color`);
//!   `""` is the whole value. Setting a path creates what is missing on the way.
//! - **Writes** ([`Record::set`]) apply locally at once and go to the server in order.
//!   [`Record::set_with_ack`] waits until the server has stored the write.
//! - **Conflicts**: a write based on an old version is refused by the server; the client
//!   then reloads the record and reconciles with a [`MergeStrategy`]: the server's value
//!   wins (the default, as in deepstream), the local value wins, or a closure merges.
//! - **Reconnection**: when the connection drops, the client reconnects with backoff
//!   ([`Reconnect`]), renews every subscription and listen, and sends the writes made
//!   while offline (a write whose record changed meanwhile meets the merge strategy).
//!   [`Client::connection_state`] and [`Client::watch_connection`] show where it is.
//! - **Lists** ([`List`]) are records holding an array of record names.
//! - **Listening** ([`Client::listen`]) makes this client an active provider: the
//!   server offers each matching record somebody subscribes to; accept or reject it, and
//!   [`Provision::stopped`] says when the last subscriber left.
//! - **Events** ([`Client::subscribe_event`], [`Client::emit`]): deepstream's
//!   publish/subscribe; an event reaches every subscriber of its name but its emitting
//!   connection (this client's own subscriptions get it locally, as in deepstream's
//!   clients). Not stored, not queued while offline.
//! - **Unique names**: [`uid()`] makes ids from a timestamp and a random part.
//!
//! # Crate map
//!
//! Every module is private; the `pub use` block below is the crate's public surface.
//!
//! - `ack`        — [`WriteAck`], the future of a write's acknowledgement.
//! - `client`     — [`Client`]: connecting, one-off requests (`has`, `head`,
//!   `snapshot`, `set_data`, `delete`), listening, connection state.
//! - `record`     — [`Record`], the reference-counted handle, and [`Subscription`].
//! - `list`       — [`List`] and [`ListSubscription`].
//! - `listen`     — [`Listening`], [`ListenMatch`], [`Provision`].
//! - `event`      — [`EventSubscription`], the events of one name.
//! - `merge`      — [`MergeStrategy`] and [`Conflict`].
//! - `options`    — [`Options`] and [`Reconnect`].
//! - `error`      — [`ConnectError`] (connecting) and [`Error`](enum@Error) (everything
//!   after), each keeping the failure it comes from as its source.
//! - `uid`        — [`uid()`].
//! - `connection` — the task that owns the WebSocket: handshake, heartbeats,
//!   reconnection; it talks to the handles through the core. [`ConnectionState`].
//! - `core`       — the state without I/O: the records, requests and listens, and
//!   the per-record state machine (versions, unconfirmed writes, merging), tested
//!   message by message. [`Snapshot`], [`StopReason`].
//!
//! # Compatibility notes
//!
//! The client speaks the binary endpoint (`/deepstream`). Every write asks the server
//! for an acknowledgement, which is how the client knows which writes the server holds
//! when a connection drops; deepstream and recordsync both support that. RPCs and
//! presence are not implemented (nor served by recordsync yet).

mod ack;
mod client;
mod connection;
mod core;
mod error;
mod event;
mod list;
mod listen;
mod merge;
mod options;
mod record;
mod uid;

pub use ack::WriteAck;
pub use client::Client;
pub use connection::ConnectionState;
pub use core::{Snapshot, StopReason};
pub use error::{ConnectError, Error, TransportFailure};
pub use event::EventSubscription;
pub use list::{List, ListSubscription};
pub use listen::{ListenMatch, Listening, Provision};
pub use merge::{Conflict, MergeStrategy};
pub use options::{Options, Reconnect};
pub use record::{Record, Subscription};
pub use uid::uid;

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}

    #[test]
    fn handles_can_move_between_tasks() {
        send_sync::<Client>();
        send_sync::<Record>();
        send_sync::<List>();
        send_sync::<Error>();
        send_sync::<ConnectError>();
        send_sync::<MergeStrategy>();
        send::<Subscription>();
        send::<ListSubscription>();
        send::<Listening>();
        send::<ListenMatch>();
        send::<Provision>();
        send::<WriteAck>();
    }
}
