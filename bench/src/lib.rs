//! recordsync's load generator and its side-by-side comparison with deepstream, ShareDB
//! and a bare WebSocket broadcaster.
//!
//! Module map:
//! - [`client`]      — the generator's deepstream client (WebSocket + the project's codec).
//! - [`fanout`]      — fan-out and durable-write scenarios: throughput, latency, completeness.
//! - [`connections`] — idle-memory and connection-storm scenarios.
//! - [`sharedb`]     — the durable-write scenario against ShareDB, via its own node client.
//! - [`sharedb_client`] — the generator's ShareDB client (protocol 1.2, json0 ops, `qf`).
//! - [`sharedb_fanout`] — fan-out and durable ops in ShareDB's protocol, against
//!   recordsync and ShareDB 7 alike.
//! - [`sharedb_query`] — fetch-query latency over a populated collection.
//! - [`targets`]     — starting and stopping the servers under test.
//! - [`cluster`]     — recordsync nodes on PostgreSQL joined by a private Redis or NATS.
//! - [`ceiling`]     — the bare broadcaster (the machine's ceiling for fan-out).
//! - [`procstat`]    — CPU and memory of a process tree from /proc; the fd limit.
//! - [`histogram`]   — latency histograms.
//! - [`report`]      — markdown, JSON lines and SVG output.
//! - [`compare`]     — the whole side-by-side run.
//! - [`soak`]        — the real `recordsync` binary written to for minutes: its memory
//!   over time.
//!
//! Everything runs on 127.0.0.1, every loop is bounded in count and time, and every
//! process the harness starts is stopped when it ends, fails or is interrupted.

pub mod ceiling;
pub mod client;
pub mod cluster;
pub mod compare;
pub mod connections;
pub mod fanout;
pub mod histogram;
pub mod procstat;
pub mod progress;
pub mod report;
pub mod sharedb;
pub mod sharedb_client;
pub mod sharedb_fanout;
pub mod sharedb_query;
pub mod soak;
pub mod targets;
