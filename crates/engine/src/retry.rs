//! Writes that lost the race for their version to another node are tried again in the
//! order they arrived, and the writes that arrive meanwhile wait behind them.
//!
//! In a cluster a commit can find another version stored than its write was based on;
//! the group committer then fails that write and every later one to the record already
//! queued behind it. Each must be tried again on the reloaded state. Tried as they
//! happen to be scheduled, a client's later write could land before its earlier one, and
//! the earlier value would win: a `set('a', 1); set('a', 2)` ending on 1.
//!
//! So a record's writes to try again go into a queue ordered by arrival (`CellState::
//! retries`, present while the task runs), and one task per record submits them one at a time, each only once the one
//! before it has been settled (committed, refused, or queued again). A write that arrives
//! while the task runs joins the queue. Invariant: a write is submitted only when every
//! write that arrived before it on this node has been committed or is in flight ahead of
//! it — and one in flight ahead of it that loses makes it lose too (the committer fences
//! it), so both come back to the queue in their order.

use recordsync_store::Origin;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::cell::{Cell, CellState};
use super::{Engine, WriteDone, WriteRequest};

/// A write on its way to the store, with what is owed to its writer.
pub(crate) struct PendingWrite {
    /// Arrival order among this node's writes to the record; `None` until it has arrived
    /// (taken the record's lock for the first time).
    pub seq: Option<u64>,
    pub request: WriteRequest,
    pub done: WriteDone,
    /// How many times it lost the race for its version.
    pub lost: u32,
    /// Whether the record was reloaded because this write named a version after the one
    /// this node holds (see `Engine::behind_the_store`): once is enough, as the store
    /// holds every version a client or a transform can have seen.
    pub reloaded: bool,
}

/// What waits in a record's queue: a write, or a delete that arrived behind one.
pub(crate) enum Queued {
    Write(PendingWrite),
    Delete {
        deleter: u64,
        author: Option<Arc<str>>,
        origin: Option<Origin>,
        /// The version the delete applies to only (`Engine::delete_at`).
        expected: Option<u64>,
        done: WriteDone,
    },
}

/// A record's writes (and deletes) waiting to be submitted, by arrival number.
#[derive(Default)]
pub(crate) struct RetryQueue(BTreeMap<u64, Queued>);

impl RetryQueue {
    pub fn insert(&mut self, seq: u64, item: Queued) {
        self.0.insert(seq, item);
    }

    /// The one that arrived first.
    pub fn pop_first(&mut self) -> Option<Queued> {
        self.0.pop_first().map(|(_, item)| item)
    }
}

/// Dropped once a write taken from the queue is settled: the queue's task then takes the
/// next one.
pub(crate) type Settled = tokio::sync::oneshot::Sender<()>;

impl CellState {
    /// The next arrival number.
    pub fn arrive(&mut self) -> u64 {
        self.arrivals += 1;
        self.arrivals
    }

    /// Queues `item` (numbered `seq`); returns whether a task must be started for the
    /// queue (none runs yet).
    pub fn queue(&mut self, seq: u64, item: Queued) -> bool {
        match &mut self.retries {
            Some(queue) => {
                queue.insert(seq, item);
                false
            }
            None => {
                let mut queue = Box::<RetryQueue>::default();
                queue.insert(seq, item);
                self.retries = Some(queue);
                true
            }
        }
    }
}

impl Engine {
    /// Queues a write that lost the race for its version, and starts the record's queue
    /// task if none runs. Called from its commit callback, under the record's lock.
    pub(crate) fn retry_later(
        self: &Arc<Self>,
        cell: &Arc<Cell>,
        st: &mut CellState,
        write: PendingWrite,
    ) {
        let seq = write.seq.expect("a submitted write has arrived");
        if st.queue(seq, Queued::Write(write)) {
            tokio::spawn(self.clone().run_queue(cell.clone()));
        }
    }

    /// Submits the record's queued writes one at a time, in arrival order, until the
    /// queue is empty.
    pub(crate) async fn run_queue(self: Arc<Self>, cell: Arc<Cell>) {
        loop {
            let next = {
                let mut st = cell.state.lock();
                match st.retries.as_mut().and_then(|queue| queue.pop_first()) {
                    Some(next) => next,
                    None => {
                        st.retries = None;
                        drop(st);
                        self.evict_if_idle(&cell);
                        return;
                    }
                }
            };
            let (settled, outcome) = tokio::sync::oneshot::channel();
            match next {
                Queued::Write(write) => self.write_attempt(&cell.name, write, Some(settled)).await,
                Queued::Delete {
                    deleter,
                    author,
                    origin,
                    expected,
                    done,
                } => {
                    self.delete_now(
                        deleter,
                        author,
                        origin,
                        expected,
                        &cell.name,
                        done,
                        Some(settled),
                    )
                    .await
                }
            }
            // Err: dropped, which is how it is sent.
            let _ = outcome.await;
        }
    }
}
