//! Pub/sub between recordsync nodes.
//!
//! Several nodes serving one data set share one database (the truth) and one bus (the
//! news): a node that commits a write announces it on the bus, and every other node
//! updates its cached copy and tells its own subscribers. The bus is allowed to lose
//! messages — a node that notices a gap, or whose bus connection was lost, refetches from
//! the database — so a plain pub/sub (Redis PUBLISH, NATS core) is enough.
//!
//! Crate map (every module is private; the `pub use` block below is the public surface):
//! - `bus`        — the [`Bus`] trait, [`BusEvent`] and [`SUBSCRIPTION_BUFFER`].
//! - `error`      — [`BusError`], whose source is the bus library's own error
//!   ([`BusFailure`]).
//! - `connect`    — [`connect()`]: opens the bus a URL names; [`redact_url`], [`backoff`].
//! - `in_process` — [`InProcessBus`]: nodes in one process; tests and embedding.
//! - `redis_bus`  — [`RedisBus`]: Redis pub/sub.
//! - `nats_bus`   — [`NatsBus`]: NATS core subjects.
//! - `scoped`     — [`Scoped`]: one bus, several data sets, each on its own topics.

mod bus;
mod connect;
mod error;
mod in_process;
mod nats_bus;
mod redis_bus;
mod scoped;

pub use bus::{Bus, BusEvent, SUBSCRIPTION_BUFFER};
pub use connect::{backoff, connect, redact_url};
pub use error::{BusError, BusFailure};
pub use in_process::InProcessBus;
pub use nats_bus::NatsBus;
pub use redis_bus::RedisBus;
pub use scoped::Scoped;
