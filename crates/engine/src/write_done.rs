//! The answer a writer is owed: [`WriteDone`] is called exactly once, and if the engine
//! ever lets one go unanswered, dropping it answers with an error instead of silence.
//!
//! A write's callback travels far — through the cell's waiters, the group committer, a
//! retry task — and a client that never hears back waits forever (`@deepstream/client`'s
//! `setWithAck` and `setDataWithAck` have no timeout). So the invariant is held by the
//! type: the only way to get rid of a `WriteDone` is to answer it or to drop it, and
//! dropping answers [`WriteFailure::Unanswered`] (and logs it, since it is a bug).

use std::sync::OnceLock;
use std::time::Instant;

use super::error::WriteFailure;
use super::versions::EngineVersion;

type Callback = Box<dyn FnOnce(Result<EngineVersion, WriteFailure>) + Send>;

/// The write metrics' handles, looked up once: every write is answered through here, and
/// a handle costs an atomic add where a lookup by name would hash the key each time.
///
/// Taken from the recorder installed when they are first used: a server installs its
/// recorder before it makes its engine (`recordsync_server::Server::bind_with`), so every
/// write it answers is counted. An engine used without a recorder counts into nothing.
struct WriteMetrics {
    accepted: metrics::Counter,
    refused: metrics::Counter,
    latency: metrics::Histogram,
}

fn write_metrics() -> &'static WriteMetrics {
    static METRICS: OnceLock<WriteMetrics> = OnceLock::new();
    METRICS.get_or_init(|| WriteMetrics {
        accepted: metrics::counter!("recordsync_writes_total", "outcome" => "accepted"),
        refused: metrics::counter!("recordsync_writes_total", "outcome" => "refused"),
        latency: metrics::histogram!("recordsync_write_ack_seconds"),
    })
}

/// Called once when a write or delete has been committed (with the new version) or
/// refused. Runs on whichever task settles the write (often the committer's): the
/// callback must not block.
///
/// It also keeps when the write arrived: the time to its answer is the acknowledgement
/// latency (`recordsync_write_ack_seconds`), and the answer counts the write accepted or
/// refused (`recordsync_writes_total`).
pub struct WriteDone(Option<Callback>, Instant);

impl WriteDone {
    pub fn new(
        callback: impl FnOnce(Result<EngineVersion, WriteFailure>) + Send + 'static,
    ) -> Self {
        WriteDone(Some(Box::new(callback)), Instant::now())
    }

    /// Answers the writer.
    pub fn answer(mut self, result: Result<EngineVersion, WriteFailure>) {
        if let Some(callback) = self.0.take() {
            let metrics = write_metrics();
            match &result {
                Ok(_) => metrics.accepted.increment(1),
                Err(_) => metrics.refused.increment(1),
            }
            metrics.latency.record(self.1.elapsed().as_secs_f64());
            callback(result);
        }
    }
}

impl Drop for WriteDone {
    fn drop(&mut self) {
        if let Some(callback) = self.0.take() {
            tracing::error!("a write was dropped without an answer; telling its writer it failed");
            write_metrics().refused.increment(1);
            callback(Err(WriteFailure::Unanswered));
        }
    }
}

impl std::fmt::Debug for WriteDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "WriteDone(unanswered)"
        } else {
            "WriteDone(answered)"
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use parking_lot::Mutex;

    use super::*;

    type Answers = Arc<Mutex<Vec<Result<EngineVersion, WriteFailure>>>>;

    fn recording() -> (WriteDone, Answers) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        (WriteDone::new(move |r| sink.lock().push(r)), seen)
    }

    #[test]
    fn an_answer_is_delivered_once() {
        let (done, seen) = recording();
        done.answer(Ok(EngineVersion::new(7, 0)));
        let seen = seen.lock();
        assert_eq!(seen.len(), 1);
        assert!(matches!(seen[0], Ok(v) if v.version == 7));
    }

    #[test]
    fn a_write_dropped_unanswered_is_answered_with_an_error() {
        let (done, seen) = recording();
        drop(done);
        let seen = seen.lock();
        assert_eq!(seen.len(), 1);
        assert!(matches!(seen[0], Err(WriteFailure::Unanswered)), "{seen:?}");
    }
}
