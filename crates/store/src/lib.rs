//! Storage for recordsync.
//!
//! Module map:
//! - [`store`]        — the [`Store`] trait every backend implements, and its data types.
//! - [`error`]        — [`StoreError`].
//! - [`group_commit`] — [`GroupCommitter`]: many concurrent writes share one durable commit.
//! - [`history`]      — [`History`]: milestones and retention, the same for every store
//!   (every store keeps a record's history across deletes: a delete leaves a tombstone).
//! - [`memory`]       — [`MemoryStore`], for throwaway use and tests.
//! - [`embedded`]     — [`EmbeddedStore`], the default: crash-safe, on disk (redb behind a
//!   write-ahead log), with its private parts in `src/embedded/`:
//!   - `codec.rs`      — the byte layout of keys and values, and of a log frame's batch;
//!   - `wal.rs`        — the write-ahead log file: frames, recycling, reading it back;
//!   - `recovery.rs`   — replaying the log into redb on opening;
//!   - `checkpoint.rs` — making redb durable so the log can start over, and when;
//!   - `options.rs`    — the settings: checkpoints, redb's cache size, retries;
//!   - `resume.rs`     — taking writes again after a failed write (a full disk);
//!   - `upgrade.rs`    — bringing a data file of an older schema to the current one;
//!   - `faults.rs`     — crash points for tests (feature `testing`).
//! - [`postgres`]     — [`PostgresStore`]: several nodes share one PostgreSQL database
//!   (`postgres/batch.rs`: a batch as SQL; `postgres/migrations/`: the tables, documented).
//! - `conformance`    — (feature `testing`) the tests every [`Store`] must pass, reusable
//!   by backends in other crates (`store_conformance_tests!`, and
//!   `store_history_conformance_tests!` for milestones and retention).

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
pub mod embedded;
pub mod error;
pub mod group_commit;
pub mod history;
pub mod memory;
pub mod postgres;
pub mod store;

pub use embedded::EmbeddedStore;
pub use error::StoreError;
pub use group_commit::{CallbackScope, CommitStats, Done, GroupCommitter};
pub use history::{History, Milestone};
pub use memory::MemoryStore;
pub use postgres::{PostgresOptions, PostgresStore};
pub use store::{JournalEntry, Origin, Store, StoredRecord, Write, WriteOutcome};

/// Milliseconds since the Unix epoch, for age-based retention (0 if the clock is before
/// 1970).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
