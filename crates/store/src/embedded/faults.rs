//! Crash points for tests (built with the `testing` feature or in this crate's unit tests
//! only): with `RECORDSYNC_STORE_FAULT=<point>:<n>` in the environment, the process aborts
//! the `n`-th time it reaches `<point>` (counting from 1), as if it were killed there.
//! Unset, every point is a no-op.
//!
//! Points:
//! - `log-torn`: half of a log frame has been written, nothing synced.
//! - `after-log-sync`: a batch's frame is synced, its redb commit has not run. Before
//!   aborting, prints `INLOG <name> <version>` on stdout for each write of the frame, so a
//!   test can check that recovery brought them back.
//! - `after-redb-commit`: the batch is in the log and in redb (not durably), the caller has
//!   not been answered.
//! - `checkpoint-before-commit`: a checkpoint's durable redb commit is about to run.
//! - `checkpoint-mid`: aborts from another thread a moment (`RECORDSYNC_STORE_FAULT_DELAY_US`,
//!   default 300 µs) after a checkpoint's durable commit starts, so somewhere inside it or
//!   just after.
//! - `checkpoint-after-commit`: the checkpoint is durable, the log not yet recycled.
//! - `reclaim-after-sweep`: opening has pruned history beyond the settings (not durably),
//!   the file is not compacted yet (`reclaim.rs`).
//! - `reclaim-mid-compaction`: like `checkpoint-mid`, once the file's compaction starts.
//! - `reclaim-after-compaction`: compacted, `reclaim_pending` not yet cleared.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that arms a crash point.
pub const ENV: &str = "RECORDSYNC_STORE_FAULT";
/// Microseconds `checkpoint-mid` waits before aborting.
pub const DELAY_ENV: &str = "RECORDSYNC_STORE_FAULT_DELAY_US";

struct Armed {
    point: String,
    at: u64,
    hits: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var(ENV).ok()?;
            let (point, at) = spec.rsplit_once(':')?;
            Some(Armed {
                point: point.to_owned(),
                at: at.parse().ok()?,
                hits: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Whether this visit of `point` is the one that must crash.
pub fn hit(point: &str) -> bool {
    armed().is_some_and(|a| a.point == point && a.hits.fetch_add(1, Ordering::SeqCst) + 1 == a.at)
}

/// Ends the process at once: no destructors, no flushing, like SIGKILL.
pub fn crash(point: &str) -> ! {
    eprintln!("FAULT {point}: aborting the process");
    std::process::abort()
}

/// Crashes if this visit of `point` is the armed one.
pub fn check(point: &str) {
    if hit(point) {
        crash(point);
    }
}

/// If this visit of `point` is the armed one, crashes from another thread after the
/// configured delay, while the caller carries on.
pub fn check_later(point: &'static str) {
    if hit(point) {
        let delay = std::env::var(DELAY_ENV)
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or(300);
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_micros(delay));
            crash(point);
        });
    }
}
