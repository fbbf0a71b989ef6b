//! Storage for recordsync.
//!
//! Module map:
//! - [`store`]        — the [`Store`] trait every backend implements, and its data types.
//! - [`error`]        — [`StoreError`].
//! - [`group_commit`] — [`GroupCommitter`]: many concurrent writes share one durable commit.
//! - [`memory`]       — [`MemoryStore`], for throwaway use and tests (journals bounded).
//! - [`embedded`]     — [`EmbeddedStore`], the default: crash-safe, on disk (redb behind a
//!   write-ahead log), with its private parts in `src/embedded/`:
//!   - `codec.rs`      — the byte layout of keys and values, and of a log frame's batch;
//!   - `wal.rs`        — the write-ahead log file: frames, recycling, reading it back;
//!   - `recovery.rs`   — replaying the log into redb on opening;
//!   - `checkpoint.rs` — making redb durable so the log can start over, and when;
//!   - `options.rs`    — the settings: checkpoints, redb's cache size, retries;
//!   - `resume.rs`     — taking writes again after a failed write (a full disk);
//!   - `faults.rs`     — crash points for tests (feature `testing`).
//! - [`postgres`]     — [`PostgresStore`]: several nodes share one PostgreSQL database.
//! - `conformance`    — (feature `testing`) the tests every [`Store`] must pass, reusable
//!   by backends in other crates.

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
pub mod embedded;
pub mod error;
pub mod group_commit;
pub mod memory;
pub mod postgres;
pub mod store;

pub use embedded::EmbeddedStore;
pub use error::StoreError;
pub use group_commit::{CallbackScope, CommitStats, Done, GroupCommitter};
pub use memory::MemoryStore;
pub use postgres::{PostgresOptions, PostgresStore};
pub use store::{JournalEntry, Store, StoredRecord, Write, WriteOutcome};
