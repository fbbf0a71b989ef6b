//! The embedded store's settings: when it checkpoints, how much memory redb may use for its
//! cache, and how often it retries after a failed write.

use std::time::Duration;

use crate::history::History;

/// The embedded store's settings. The defaults are what `recordsync serve` uses, except
/// for [`cache_size`](Self::cache_size), which it takes from its configuration
/// (`storageCacheSize`, `--cache-size`).
///
/// **Checkpoints** (`checkpoint.rs`): whichever limit is reached first triggers one. The
/// defaults, one second or 16 MiB of log, come from measurements on the project's 2-core
/// VM (`bench/NOTES.md`, and `redb_growth_between_checkpoints` in `embedded.rs`):
///
/// - A checkpoint writes what the commits since the last one added (mostly the journal's
///   new entries, about as many bytes as the log got) and takes about 4 ms per MiB of log
///   (1 MiB: 5 ms, 4 MiB: 20 ms, 16 MiB: 60 ms, 64 MiB: 256 ms). Commits wait meanwhile,
///   so the byte limit bounds that wait: 16 MiB keeps it near 60 ms however fast writes
///   come. It also bounds how much a restart after a crash replays.
/// - The durable-writes benchmark (100 writers, about 25,000 acknowledged writes/s, 2.5
///   MB of log a second) gave the same throughput within noise with checkpoints every
///   100 ms, 250 ms, 1 s and 5 s; the longest acknowledgement grew with the interval
///   (30–45 ms at 1 s, 100–120 ms at 5 s). Rewritten pages (records' leaves, table roots)
///   are written once per checkpoint however often they changed, so rarer is cheaper, and
///   one second keeps a crash's replay short.
///
/// **Memory**: redb keeps the pages it read, and those written since the last checkpoint,
/// in one cache of [`cache_size`](Self::cache_size) bytes. It is the store's only memory
/// that grows with the data, so it bounds the store's memory. With redb's own default,
/// 1 GiB, a server overwriting one record levelled off at 1.4 GB resident (issue 12; the
/// soak in `bench/NOTES.md`); with 16, 64 and 256 MiB at 43, 108 and 372 MiB: about
/// 12 MiB plus 1.4–1.9 times the cache. Half the cache at most holds pages written since
/// the last checkpoint; what does not fit is written to the file early (not synced, so
/// still safe) and written again by the checkpoint if it changes again. 64 MiB leaves
/// room for a whole 16 MiB checkpoint cycle in that half, with records' pages to spare.
///
/// **Failures** (`resume.rs`): after a failed write the store refuses writes and retries
/// every [`retry_interval`](Self::retry_interval) until it can write again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// Checkpoint once this many bytes of log frames were written since the last one.
    pub checkpoint_bytes: u64,
    /// Checkpoint at most this long after the first frame written since the last one.
    pub checkpoint_interval: Duration,
    /// Bytes of redb's page cache (read cache and unwritten pages together).
    pub cache_size: usize,
    /// How often a store that refuses writes after a failure tries to take them again.
    pub retry_interval: Duration,
    /// Milestones and retention of the records' history (see [`History`]).
    pub history: History,
}

impl EmbeddedOptions {
    /// The default [`cache_size`](Self::cache_size): 64 MiB.
    pub const DEFAULT_CACHE_SIZE: usize = 64 << 20;
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            checkpoint_bytes: 16 << 20,
            checkpoint_interval: Duration::from_secs(1),
            cache_size: Self::DEFAULT_CACHE_SIZE,
            retry_interval: Duration::from_secs(1),
            history: History::default(),
        }
    }
}
