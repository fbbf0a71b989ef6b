//! Group commit: many concurrent writes share one durable commit.
//!
//! A durable commit costs an fsync (milliseconds on most disks) whatever its size, so
//! committing each write alone caps a server at a few hundred writes per second. Instead
//! writes queue up while the previous commit is in flight, and the next commit takes all
//! of them: under load the batch grows until the disk keeps up, and an idle server still
//! commits a lone write at once, without waiting for a timer.
//!
//! A batch's callbacks run once the next batch's commit has started (at once when there
//! is none), so that answering one batch overlaps the disk's work on the next.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

use crate::error::StoreError;
use crate::store::{Store, Write, WriteOutcome};

/// Called once with the fate of a submitted write.
pub type Done = Box<dyn FnOnce(Result<WriteOutcome, StoreError>) + Send>;

/// Wraps the running of one batch's callbacks: it is given a function that runs them all
/// and must call it exactly once. A server uses it to let a batch's callbacks finish their
/// work (say, queueing every update) before anything they woke gets to run.
pub type CallbackScope = Arc<dyn Fn(&mut dyn FnMut()) + Send + Sync>;

/// Default cap on writes per commit: large enough that fsync cost is amortised, small
/// enough that one commit's latency stays bounded.
pub const DEFAULT_MAX_BATCH: usize = 1024;

/// What the committer has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Calls to [`Store::commit`] (successful or not).
    pub batches: u64,
    /// Writes handed to the store, over all batches.
    pub writes: u64,
    /// Batches whose commit returned an error (or panicked).
    pub failed_batches: u64,
    /// Writes answered `Conflict` without reaching the store, because an earlier write to
    /// the same record had conflicted (see [`GroupCommitter`]).
    pub fenced: u64,
    /// The largest batch so far.
    pub max_batch: u64,
}

impl CommitStats {
    pub fn average_batch(&self) -> f64 {
        if self.batches == 0 {
            0.0
        } else {
            self.writes as f64 / self.batches as f64
        }
    }
}

struct Item {
    /// Position in submission order.
    seq: u64,
    write: Write,
    done: Done,
}

struct Queue {
    items: VecDeque<Item>,
    /// Writes ever accepted by `submit`; `flush` waits for `completed` to reach it.
    submitted: u64,
    /// Set by `shutdown`/drop: the task commits what is queued, then exits.
    closing: bool,
    /// Set by the task as it exits; later submissions are refused.
    exited: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Notify,
    /// Writes whose callbacks have run, in submission order.
    completed: watch::Sender<u64>,
    batches: AtomicU64,
    writes: AtomicU64,
    failed_batches: AtomicU64,
    fenced: AtomicU64,
    max_batch: AtomicU64,
    scope: Option<CallbackScope>,
}

/// Queues writes and commits them in batches on one tokio task.
///
/// Guarantees the engine builds on:
/// - Writes are committed in submission order: a write is in the same batch as, or a
///   later batch than, every write submitted before it. So a write may be submitted with
///   `base_version` = the version an earlier, not yet committed, write will produce.
/// - Callbacks run on the committer task, one at a time, in submission order, each only
///   after its write's commit has returned (the next batch's commit may be under way).
/// - Every submitted write's callback runs exactly once (with [`StoreError::Closed`] if
///   it was submitted after shutdown).
/// - Once a write to a record gets `Conflict`, every write to that record submitted
///   before that callback returned also gets `Conflict` (with the same `current`) and is
///   not stored. Such writes were built on the version that failed; without this fence
///   one whose `base_version` happens to equal the version another writer stored would
///   land on top of data it never saw. To write the record again, reload it (`get`) and
///   submit after the callback has returned. A commit *error* sets no fence: the
///   batch may or may not have been stored (see [`Store::commit`]).
///
/// Dropping the committer (or [`shutdown`](Self::shutdown)) commits what is queued, then
/// stops the task and releases the store.
pub struct GroupCommitter {
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for GroupCommitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommitter")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl GroupCommitter {
    /// Starts the committer task. Must be called from within a tokio runtime.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::with_max_batch(store, DEFAULT_MAX_BATCH)
    }

    pub fn with_max_batch(store: Arc<dyn Store>, max_batch: usize) -> Self {
        Self::start(store, max_batch, None)
    }

    /// Like [`new`](Self::new), running each batch's callbacks inside `scope`.
    pub fn with_callback_scope(store: Arc<dyn Store>, scope: CallbackScope) -> Self {
        Self::start(store, DEFAULT_MAX_BATCH, Some(scope))
    }

    fn start(store: Arc<dyn Store>, max_batch: usize, scope: Option<CallbackScope>) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                submitted: 0,
                closing: false,
                exited: false,
            }),
            wake: Notify::new(),
            completed: watch::Sender::new(0),
            batches: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            failed_batches: AtomicU64::new(0),
            fenced: AtomicU64::new(0),
            max_batch: AtomicU64::new(0),
            scope,
        });
        let runtime = tokio::runtime::Handle::current();
        let task = runtime.spawn(run(shared.clone(), store, max_batch.max(1)));
        Self {
            shared,
            runtime,
            task: Mutex::new(Some(task)),
        }
    }

    /// Queues `write`; `done` is called on the committer task once it is committed or
    /// has failed.
    ///
    /// Never blocks beyond a short internal lock and never calls `done` itself, so it may
    /// be called while the caller holds its own locks, even ones `done` takes.
    pub fn submit(&self, write: Write, done: Done) {
        let mut queue = self.shared.queue.lock();
        if queue.exited {
            drop(queue);
            // Not called here: the caller may hold a lock that `done` needs.
            self.runtime
                .spawn(async move { done(Err(StoreError::Closed)) });
            return;
        }
        let seq = queue.submitted;
        queue.items.push_back(Item { seq, write, done });
        queue.submitted += 1;
        drop(queue);
        self.shared.wake.notify_one();
    }

    /// Waits until every write submitted before this call has been committed (or has
    /// failed) and its callback has returned.
    pub async fn flush(&self) {
        let target = self.shared.queue.lock().submitted;
        let mut completed = self.shared.completed.subscribe();
        // Err only if the sender is gone, which it is not while `self` lives.
        let _ = completed.wait_for(|&c| c >= target).await;
    }

    /// Commits everything queued, then stops the task. Later submissions fail with
    /// [`StoreError::Closed`]. Returns once the task has released the store, so the
    /// caller may then reopen the same data directory.
    pub async fn shutdown(&self) {
        self.shared.queue.lock().closing = true;
        self.shared.wake.notify_one();
        let task = self.task.lock().take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "the group committer task failed");
        }
    }

    pub fn stats(&self) -> CommitStats {
        let s = &self.shared;
        CommitStats {
            batches: s.batches.load(Ordering::Relaxed),
            writes: s.writes.load(Ordering::Relaxed),
            failed_batches: s.failed_batches.load(Ordering::Relaxed),
            fenced: s.fenced.load(Ordering::Relaxed),
            max_batch: s.max_batch.load(Ordering::Relaxed),
        }
    }

    /// Writes submitted but whose callbacks have not run yet.
    pub fn pending(&self) -> u64 {
        // Read both under the queue lock: `submitted` cannot move meanwhile, and
        // `completed` never exceeds it.
        let queue = self.shared.queue.lock();
        queue.submitted - *self.shared.completed.borrow()
    }
}

impl Drop for GroupCommitter {
    fn drop(&mut self) {
        self.shared.queue.lock().closing = true;
        self.shared.wake.notify_one();
    }
}

/// Why a record's queued writes are refused: `until` is the first submission `seq` not
/// affected, `current` what the store reported.
struct Fence {
    until: u64,
    current: Option<u64>,
}

async fn run(shared: Arc<Shared>, store: Arc<dyn Store>, max_batch: usize) {
    let mut fences: HashMap<String, Fence> = HashMap::new();
    // The last batch committed, whose callbacks wait until the next commit has started.
    let mut finished: Option<Finished> = None;
    loop {
        let items: Vec<Item> = {
            let mut queue = shared.queue.lock();
            let n = queue.items.len().min(max_batch);
            if n == 0 && queue.closing && finished.is_none() {
                queue.exited = true;
                break;
            }
            queue.items.drain(..n).collect()
        };
        if items.is_empty() {
            match finished.take() {
                // Nothing to overlap with: answer at once.
                Some(batch) => deliver(&shared, &mut fences, batch),
                // A submit between the unlock and here leaves a permit, so none is missed.
                None => shared.wake.notified().await,
            }
            continue;
        }
        finished = Some(commit_batch(&shared, &store, items, &mut fences, finished.take()).await);
    }
    // Anything submitted between the last check and `exited` cannot exist: both happen
    // under the queue lock. Dropping the store here lets the caller reopen its files.
    drop(store);
}

/// A committed (or failed) batch whose callbacks have not run: one result per write, in
/// submission order.
struct Finished {
    callbacks: Vec<Done>,
    names: Vec<String>,
    results: Vec<Result<WriteOutcome, StoreError>>,
}

/// Commits `items`, and runs the callbacks of `previous` (the batch committed before)
/// while the store works on this one: the disk's wait for this commit then overlaps the
/// CPU work of answering the last, instead of following it. Returns this batch, answered
/// by the next call or by [`deliver`].
async fn commit_batch(
    shared: &Shared,
    store: &Arc<dyn Store>,
    items: Vec<Item>,
    fences: &mut HashMap<String, Fence>,
    mut previous: Option<Finished>,
) -> Finished {
    if let Some(previous) = &previous {
        // The previous batch's conflicts fence this batch already, as if its callbacks had
        // run before it was taken from the queue (they set the same fences again, later).
        let until = shared.queue.lock().submitted;
        for (name, result) in previous.names.iter().zip(&previous.results) {
            if let Ok(WriteOutcome::Conflict { current }) = result {
                fences.insert(
                    name.clone(),
                    Fence {
                        until,
                        current: *current,
                    },
                );
            }
        }
    }
    // Fences that cannot affect this batch or any later submission are done.
    let first_seq = items.first().map_or(u64::MAX, |i| i.seq);
    fences.retain(|_, f| f.until > first_seq);

    let total = items.len();
    let mut names = Vec::with_capacity(total);
    let mut callbacks = Vec::with_capacity(total);
    // `None`: goes to the store; its outcome comes back in order.
    let mut fenced: Vec<Option<WriteOutcome>> = Vec::with_capacity(total);
    let mut writes = Vec::with_capacity(total);
    for item in items {
        let outcome = fences
            .get(item.write.name())
            .filter(|f| item.seq < f.until)
            .map(|f| WriteOutcome::Conflict { current: f.current });
        names.push(item.write.name().to_owned());
        callbacks.push(item.done);
        if outcome.is_some() {
            shared.fenced.fetch_add(1, Ordering::Relaxed);
        } else {
            writes.push(item.write);
        }
        fenced.push(outcome);
    }

    let n = writes.len();
    let committed = if n > 0 {
        let started_at = std::time::Instant::now();
        let mut committing = std::pin::pin!(commit_writes(store, writes));
        // One poll starts the commit (a store hands it to its I/O thread and returns).
        let started =
            std::future::poll_fn(|cx| std::task::Poll::Ready(committing.as_mut().poll(cx))).await;
        if let Some(previous) = previous.take() {
            deliver(shared, fences, previous);
        }
        let committed = match started {
            std::task::Poll::Ready(committed) => committed,
            std::task::Poll::Pending => committing.await,
        };
        // Once per batch, not per write: the registry lookups are amortised over the batch.
        metrics::histogram!("recordsync_commit_batch_size").record(n as f64);
        metrics::histogram!("recordsync_commit_seconds").record(started_at.elapsed().as_secs_f64());
        shared.batches.fetch_add(1, Ordering::Relaxed);
        shared.writes.fetch_add(n as u64, Ordering::Relaxed);
        shared.max_batch.fetch_max(n as u64, Ordering::Relaxed);
        if let Err(e) = &committed {
            shared.failed_batches.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("recordsync_store_errors_total", "op" => "commit").increment(1);
            tracing::error!(error = %e, writes = n, "commit failed; every write of the batch is rejected");
        }
        committed
    } else {
        Ok(Vec::new())
    };
    if let Some(previous) = previous.take() {
        deliver(shared, fences, previous);
    }
    let mut from_store = match committed {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect::<Vec<_>>(),
        Err(e) => vec![Err(e); n],
    }
    .into_iter();
    let results = fenced
        .into_iter()
        .map(|fenced| match fenced {
            Some(outcome) => Ok(outcome),
            // `commit_writes` returns exactly one outcome per write, so this never runs dry.
            None => from_store.next().unwrap_or_else(|| {
                Err(StoreError::Io(
                    "internal error: a write got no outcome".into(),
                ))
            }),
        })
        .collect();
    Finished {
        callbacks,
        names,
        results,
    }
}

/// Runs a finished batch's callbacks, in order, inside the scope if there is one.
fn deliver(shared: &Shared, fences: &mut HashMap<String, Fence>, batch: Finished) {
    let total = batch.callbacks.len();
    let mut work = Some(batch);
    let mut run_callbacks = || {
        let Some(batch) = work.take() else {
            return;
        };
        run_callbacks(shared, fences, batch);
    };
    match &shared.scope {
        Some(scope) => scope(&mut run_callbacks),
        None => run_callbacks(),
    }
    // A scope that did not run them: they still run, exactly once.
    run_callbacks();
    shared.completed.send_modify(|c| *c += total as u64);
}

fn run_callbacks(shared: &Shared, fences: &mut HashMap<String, Fence>, batch: Finished) {
    let Finished {
        callbacks,
        names,
        results,
    } = batch;
    for ((done, name), result) in callbacks.into_iter().zip(names).zip(results) {
        let conflict = match result {
            Ok(WriteOutcome::Conflict { current }) => Some(current),
            _ => None,
        };
        // A panicking callback must not take the committer (and every later write) down.
        if std::panic::catch_unwind(AssertUnwindSafe(|| done(result))).is_err() {
            tracing::error!("a commit callback panicked; continuing with the next");
        }
        if let Some(current) = conflict {
            // Everything submitted until now was built without knowing of the conflict.
            let until = shared.queue.lock().submitted;
            fences.insert(name, Fence { until, current });
        }
    }
}

/// Runs one store commit; `Ok` holds exactly one outcome per write.
async fn commit_writes(
    store: &Arc<dyn Store>,
    writes: Vec<Write>,
) -> Result<Vec<WriteOutcome>, StoreError> {
    let n = writes.len();
    // A panicking store fails this batch, not the committer. Caught here rather than by
    // running the commit on a task of its own: that cost every commit a hop between tasks.
    let mut committing = store.commit(&writes);
    let committed = std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| committing.as_mut().poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(result)) => std::task::Poll::Ready(Ok(result)),
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    })
    .await;
    match committed {
        Ok(Ok(outcomes)) if outcomes.len() == n => Ok(outcomes),
        Ok(Ok(outcomes)) => Err(StoreError::Io(
            format!(
                "the store returned {} outcomes for a batch of {n} writes (a bug in the store)",
                outcomes.len()
            )
            .into(),
        )),
        Ok(Err(e)) => Err(e),
        Err(panic) => {
            let reason = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(StoreError::Io(
                format!("the store panicked while committing: {reason}").into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;
    use crate::store::{JournalEntry, StoredRecord};
    use async_trait::async_trait;
    use std::sync::atomic::AtomicUsize;

    fn put(name: &str, version: u64, base: Option<u64>) -> Write {
        Write::Put {
            record: StoredRecord {
                name: name.into(),
                version,
                created: 0,
                deleted: false,
                data: "{}".into(),
                ctime: 1,
                mtime: 1,
            },
            base_version: base,
            entries: (base.map_or(0, |b| b + 1)..=version)
                .map(|v| JournalEntry {
                    version: v,
                    time: 1,
                    op: "{}".into(),
                    author: None,
                    origin: None,
                })
                .collect(),
        }
    }

    /// Fails chosen commits (by number, from 0), delegating the rest.
    struct Flaky {
        inner: MemoryStore,
        calls: AtomicUsize,
        fail: Vec<usize>,
        panic: Vec<usize>,
    }

    #[async_trait]
    impl Store for Flaky {
        async fn get(&self, name: &str) -> Result<Option<StoredRecord>, StoreError> {
            self.inner.get(name).await
        }
        async fn list(
            &self,
            prefix: &str,
            after: Option<&str>,
            limit: usize,
        ) -> Result<Vec<StoredRecord>, StoreError> {
            self.inner.list(prefix, after, limit).await
        }
        async fn commit(&self, batch: &[Write]) -> Result<Vec<WriteOutcome>, StoreError> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail.contains(&call) {
                return Err(StoreError::Io("disk on fire".into()));
            }
            if self.panic.contains(&call) {
                panic!("store bug");
            }
            self.inner.commit(batch).await
        }
        async fn journal(&self, n: &str, f: u64, t: u64) -> Result<Vec<JournalEntry>, StoreError> {
            self.inner.journal(n, f, t).await
        }
        async fn milestone(
            &self,
            n: &str,
            v: u64,
        ) -> Result<Option<crate::history::Milestone>, StoreError> {
            self.inner.milestone(n, v).await
        }
        async fn history_start(&self, n: &str) -> Result<Option<u64>, StoreError> {
            self.inner.history_start(n).await
        }
        async fn version_at_time(&self, n: &str, t: u64) -> Result<Option<u64>, StoreError> {
            self.inner.version_at_time(n, t).await
        }
    }

    type Results = Arc<Mutex<Vec<(usize, Result<WriteOutcome, StoreError>)>>>;

    fn recorder(results: &Results, i: usize) -> Done {
        let results = results.clone();
        Box::new(move |r| results.lock().push((i, r)))
    }

    #[tokio::test]
    async fn failed_batch_fails_each_of_its_writes_and_later_batches_proceed() {
        let store = Arc::new(Flaky {
            inner: MemoryStore::new(),
            calls: AtomicUsize::new(0),
            fail: vec![0],
            panic: vec![1],
        });
        let gc = GroupCommitter::new(store.clone());
        let results: Results = Arc::default();
        // Submitted before the task first runs, so all three go in batch 0.
        for i in 0..3 {
            gc.submit(put(&format!("r{i}"), 1, None), recorder(&results, i));
        }
        gc.flush().await;
        gc.submit(put("p", 1, None), recorder(&results, 3));
        gc.flush().await;
        gc.submit(put("ok", 1, None), recorder(&results, 4));
        gc.flush().await;

        let results = results.lock().clone();
        assert_eq!(results.len(), 5);
        for (i, r) in &results[..3] {
            assert!(
                matches!(r, Err(StoreError::Io(m)) if m.reason().contains("disk on fire")),
                "{i}: {r:?}"
            );
        }
        assert!(
            matches!(&results[3].1, Err(StoreError::Io(m)) if m.reason().contains("panic")),
            "{results:?}"
        );
        assert_eq!(results[4], (4, Ok(WriteOutcome::Committed)));
        let stats = gc.stats();
        assert_eq!(
            (stats.batches, stats.writes, stats.failed_batches),
            (3, 5, 2)
        );
        assert!(store.get("r0").await.unwrap().is_none());
        assert!(store.get("ok").await.unwrap().is_some());
    }

    /// Holds each commit until the test lets it finish, noting when commits start.
    struct Gated {
        inner: MemoryStore,
        events: Arc<Mutex<Vec<String>>>,
        gates: Mutex<VecDeque<tokio::sync::oneshot::Receiver<()>>>,
    }

    #[async_trait]
    impl Store for Gated {
        async fn get(&self, name: &str) -> Result<Option<StoredRecord>, StoreError> {
            self.inner.get(name).await
        }
        async fn list(
            &self,
            prefix: &str,
            after: Option<&str>,
            limit: usize,
        ) -> Result<Vec<StoredRecord>, StoreError> {
            self.inner.list(prefix, after, limit).await
        }
        async fn commit(&self, batch: &[Write]) -> Result<Vec<WriteOutcome>, StoreError> {
            let names: Vec<&str> = batch.iter().map(Write::name).collect();
            self.events
                .lock()
                .push(format!("commit {}", names.join(",")));
            let gate = self.gates.lock().pop_front();
            if let Some(gate) = gate {
                let _ = gate.await;
            }
            self.inner.commit(batch).await
        }
        async fn journal(&self, n: &str, f: u64, t: u64) -> Result<Vec<JournalEntry>, StoreError> {
            self.inner.journal(n, f, t).await
        }
        async fn milestone(
            &self,
            n: &str,
            v: u64,
        ) -> Result<Option<crate::history::Milestone>, StoreError> {
            self.inner.milestone(n, v).await
        }
        async fn history_start(&self, n: &str) -> Result<Option<u64>, StoreError> {
            self.inner.history_start(n).await
        }
        async fn version_at_time(&self, n: &str, t: u64) -> Result<Option<u64>, StoreError> {
            self.inner.version_at_time(n, t).await
        }
    }

    #[tokio::test]
    async fn a_batch_is_answered_while_the_next_one_commits() {
        let events: Arc<Mutex<Vec<String>>> = Arc::default();
        let (first_tx, first_rx) = tokio::sync::oneshot::channel();
        let (second_tx, second_rx) = tokio::sync::oneshot::channel();
        let store = Arc::new(Gated {
            inner: MemoryStore::new(),
            events: events.clone(),
            gates: Mutex::new(VecDeque::from([first_rx, second_rx])),
        });
        let gc = GroupCommitter::new(store);
        let note = |what: &'static str| -> Done {
            let events = events.clone();
            Box::new(move |r| {
                assert_eq!(r.unwrap(), WriteOutcome::Committed);
                events.lock().push(format!("answer {what}"));
            })
        };
        gc.submit(put("a", 1, None), note("a"));
        // "a" is being committed; "b" queues behind it.
        while events.lock().is_empty() {
            tokio::task::yield_now().await;
        }
        gc.submit(put("b", 1, None), note("b"));
        first_tx.send(()).unwrap();
        // "a" is answered only after its commit returned, and while "b"'s is held.
        while events.lock().len() < 3 {
            tokio::task::yield_now().await;
        }
        assert_eq!(*events.lock(), ["commit a", "commit b", "answer a"]);
        second_tx.send(()).unwrap();
        gc.flush().await;
        assert_eq!(
            *events.lock(),
            ["commit a", "commit b", "answer a", "answer b"]
        );
    }

    #[tokio::test]
    async fn panicking_callback_does_not_stop_the_committer() {
        let gc = GroupCommitter::new(Arc::new(MemoryStore::new()));
        let results: Results = Arc::default();
        gc.submit(put("a", 1, None), Box::new(|_| panic!("callback bug")));
        gc.submit(put("b", 1, None), recorder(&results, 1));
        gc.flush().await;
        gc.submit(put("c", 1, None), recorder(&results, 2));
        gc.flush().await;
        assert_eq!(results.lock().len(), 2);
    }

    #[tokio::test]
    async fn a_batch_runs_its_callbacks_inside_the_scope_once_each() {
        // Records, per batch, whether the callbacks ran inside the scope.
        let inside = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let scopes = Arc::new(AtomicUsize::new(0));
        let (flag, count) = (inside.clone(), scopes.clone());
        let scope: CallbackScope = Arc::new(move |run: &mut dyn FnMut()| {
            count.fetch_add(1, Ordering::SeqCst);
            flag.store(true, Ordering::SeqCst);
            run();
            run(); // a second call does nothing
            flag.store(false, Ordering::SeqCst);
        });
        let gc = GroupCommitter::with_callback_scope(Arc::new(MemoryStore::new()), scope);
        let seen: Arc<Mutex<Vec<(usize, bool)>>> = Arc::default();
        for i in 0..5 {
            let (seen, inside) = (seen.clone(), inside.clone());
            gc.submit(
                put(&format!("s{i}"), 1, None),
                Box::new(move |r| {
                    assert!(r.is_ok());
                    seen.lock().push((i, inside.load(Ordering::SeqCst)));
                }),
            );
        }
        gc.flush().await;
        let seen = seen.lock().clone();
        assert_eq!(seen, (0..5).map(|i| (i, true)).collect::<Vec<_>>());
        assert_eq!(scopes.load(Ordering::SeqCst) as u64, gc.stats().batches);
    }

    #[tokio::test]
    async fn a_scope_that_does_not_run_the_callbacks_cannot_lose_them() {
        let scope: CallbackScope = Arc::new(|_run: &mut dyn FnMut()| {});
        let gc = GroupCommitter::with_callback_scope(Arc::new(MemoryStore::new()), scope);
        let results: Results = Arc::default();
        gc.submit(put("x", 1, None), recorder(&results, 0));
        gc.flush().await;
        assert_eq!(results.lock().len(), 1);
    }

    #[tokio::test]
    async fn max_batch_caps_each_commit() {
        let gc = GroupCommitter::with_max_batch(Arc::new(MemoryStore::new()), 10);
        let results: Results = Arc::default();
        for i in 0..95 {
            gc.submit(put(&format!("r{i}"), 1, None), recorder(&results, i));
        }
        gc.flush().await;
        let stats = gc.stats();
        assert_eq!(stats.writes, 95);
        assert_eq!(stats.batches, 10);
        assert_eq!(stats.max_batch, 10);
        let order: Vec<usize> = results.lock().iter().map(|(i, _)| *i).collect();
        assert_eq!(order, (0..95).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn submit_after_shutdown_is_refused_and_callback_still_runs() {
        let store = Arc::new(MemoryStore::new());
        let gc = GroupCommitter::new(store.clone());
        let results: Results = Arc::default();
        gc.submit(put("before", 1, None), recorder(&results, 0));
        gc.shutdown().await;
        // The queued write was committed before the task stopped.
        assert!(store.get("before").await.unwrap().is_some());
        assert_eq!(Arc::strong_count(&store), 1, "the task released the store");

        let (tx, rx) = tokio::sync::oneshot::channel();
        gc.submit(
            put("after", 1, None),
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        assert!(matches!(rx.await.unwrap(), Err(StoreError::Closed)));
        assert!(store.get("after").await.unwrap().is_none());
        gc.flush().await; // does not hang after shutdown
    }

    #[tokio::test]
    async fn dropping_the_committer_commits_the_queue_and_releases_the_store() {
        let store = Arc::new(MemoryStore::new());
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let gc = GroupCommitter::new(store.clone());
            gc.submit(
                put("x", 1, None),
                Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            );
        }
        assert_eq!(rx.await.unwrap().unwrap(), WriteOutcome::Committed);
        for _ in 0..100 {
            if Arc::strong_count(&store) == 1 {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the committer task kept the store after being dropped");
    }
}
