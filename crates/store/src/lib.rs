//! Storage for recordsync.
//!
//! Crate map (the public surface is the `pub use` block below, plus the namespaces of
//! the two durable backends and of the conformance tests):
//! - `store`          — the [`Store`] trait every backend implements, and its data types.
//! - `dump`           — [`RecordDump`]: a record and its kept history, for backups
//!   ([`Store::export`], [`Store::restore`]).
//! - [`dump_format`]  — the JSON lines of a backup (header, records, trailer), written
//!   and parsed, the same for the CLI and a server's export endpoint.
//! - `error`          — [`StoreError`], whose [`Cause`] keeps the underlying error
//!   ([`StoreFailure`]) as its source.
//! - `field_index`    — `FieldIndexes`: the memory and embedded stores' in-memory
//!   indexes of string fields, made by the first query that can use them and
//!   kept up to date by every write, so equality queries read only their records.
//! - `group_commit`   — [`GroupCommitter`]: many concurrent writes share one durable commit.
//! - `history`        — [`History`]: milestones and retention, the same for every store
//!   (every store keeps a record's history across deletes: a delete leaves a tombstone).
//! - `query`          — running a ShareDB query over a collection's records, shared by
//!   the stores ([`Store::query`]; the language is `recordsync_core::query`'s).
//! - `listing`        — the name range a prefix covers, for [`Store::list`].
//! - `memory`         — [`MemoryStore`], for throwaway use and tests.
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
//!   (`postgres/batch.rs`: a batch as SQL; `postgres/query.rs`: a query as SQL that
//!   narrows rows, and which indexes help; `postgres/backup.rs`: exports in one
//!   snapshot and restores; `postgres/migrations/`: the tables,
//!   documented).
//! - `conformance`    — (feature `testing`) the tests every [`Store`] must pass, reusable
//!   by backends in other crates (`store_conformance_tests!`, and
//!   `store_history_conformance_tests!` for milestones and retention).

// Public namespaces, each for what belongs to one backend and would be ambiguous at the
// root: `embedded` has its settings (`EmbeddedOptions`), file names, formats and
// statistics; `postgres` its schema version, URL helpers and statistics, and the
// `testing` helpers other crates' tests use; `conformance` the reusable test suite and
// the macros' helpers (`$crate::conformance::…`).
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
pub mod dump_format;
pub mod embedded;
pub mod postgres;

mod dump;
mod error;
mod field_index;
mod group_commit;
mod history;
mod listing;
mod memory;
mod query;
mod store;

pub use dump::{KeptHistory, KeptMilestone, RecordDump};
pub use embedded::EmbeddedStore;
pub use error::{Cause, StoreError, StoreFailure};
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
