//! A record's in-memory cell: its state, its subscribers, and the bookkeeping that lets
//! the engine load it lazily and drop it when nobody needs it.
//!
//! Two states are kept. `head` is the newest *accepted* state, including writes still
//! waiting for their durable commit; new writes are checked against it, so a client can
//! pipeline writes without waiting for each acknowledgement. `visible` is the newest
//! *committed* state: reads and new subscribers see it, and a subscriber registered under
//! the same lock that publishes commits can never miss or double-see a version.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use recordsync_core::Record;

use super::event::{RecordEvent, Subscriber};
use super::retry::RetryQueue;
use super::versions::EngineVersion;

pub(crate) struct Cell {
    pub name: Arc<str>,
    /// Tasks currently holding this cell (see `Engine::acquire`); a cell in use is never
    /// evicted.
    pub users: AtomicUsize,
    /// Serialises loads from the store, so one load serves every waiting task.
    pub load: tokio::sync::Mutex<()>,
    pub state: parking_lot::Mutex<CellState>,
}

#[derive(Default)]
pub(crate) struct CellState {
    /// Whether `head` and `visible` reflect the store. Cleared after a failed commit so
    /// that the next operation reloads the truth.
    pub loaded: bool,
    /// Set by [`invalidate`](Self::invalidate): news of a change arrived (another node's
    /// announcement, a bus resync). A load whose read began before it may predate the
    /// change, so such a load leaves the cell unloaded and the next use reads again.
    pub reload: bool,
    /// Whether `head` and `visible` were ever read from the store: when `loaded` is false
    /// they are this node's last copy, which a read answers if the store cannot be
    /// reached.
    pub fetched: bool,
    /// Set when the cell left the engine's map: holders must look it up again.
    pub evicted: bool,
    pub head: Option<Head>,
    pub visible: Option<Visible>,
    /// With no `head`: the version of the record's tombstone, when the store keeps one
    /// (the record was deleted; a re-create continues from there). Part of the accepted
    /// state, like `head`: set when a delete is accepted.
    pub tomb: Option<u64>,
    /// Writes submitted to the store, and those whose commit callback has run; the
    /// difference is what is still in flight.
    pub submitted: u64,
    pub completed: u64,
    /// Replies that must not overtake the writes in flight when they were decided: each
    /// runs once `completed` reaches its number, with the state then visible.
    pub waiting: Vec<(u64, Waiter)>,
    pub subscribers: Vec<Arc<dyn Subscriber>>,
    /// This node's writes (and deletes) to the record waiting to be submitted, by arrival
    /// number: writes that lost the race for their version to another node, and those
    /// that arrived meanwhile (see `retry.rs`). `Some` exactly while a task submits them;
    /// new writes then queue behind them. Boxed: it is rare (a cluster under
    /// contention), and every record held in memory pays for the field.
    pub retries: Option<Box<RetryQueue>>,
    /// The last arrival number given to a write.
    pub arrivals: u64,
}

/// The newest accepted state: the value for path writes, and its JSON text for storage
/// and for VERSION_EXISTS replies.
pub(crate) struct Head {
    /// The value, its timestamps, and its version within the current life (deepstream's
    /// version rules apply to it).
    pub record: Record,
    /// The engine version of the create that began this life (see `crate::versions`).
    pub created: u64,
    pub json: Arc<str>,
    /// Whether the store holds this record once every pending write has committed; a
    /// record that exists only as the implicit `{}` of a first write does not.
    pub stored: bool,
}

/// The newest committed state.
#[derive(Clone)]
pub(crate) struct Visible {
    pub version: EngineVersion,
    pub json: Arc<str>,
}

impl Head {
    /// The head's engine version.
    pub fn version(&self) -> EngineVersion {
        EngineVersion::new(self.created + self.record.version, self.created)
    }
}

impl Cell {
    pub fn new(name: Arc<str>) -> Self {
        Cell {
            name,
            users: AtomicUsize::new(0),
            load: tokio::sync::Mutex::new(()),
            state: parking_lot::Mutex::new(CellState::default()),
        }
    }
}

/// A reply deferred until earlier writes were published (see `CellState::waiting`).
pub(crate) type Waiter = Box<dyn FnOnce(Option<&Visible>) + Send>;

impl CellState {
    pub fn is_idle(&self) -> bool {
        self.in_flight() == 0 && self.subscribers.is_empty() && self.retries.is_none()
    }

    /// The store's version for this record once everything accepted is committed: what a
    /// new write is based on (`None`: the store has no row for it).
    pub fn stored_base(&self) -> Option<u64> {
        match &self.head {
            Some(head) if head.stored => Some(head.version().version),
            _ => self.tomb,
        }
    }

    /// Where a new life of the record begins: after its tombstone, or at 0.
    pub fn next_create(&self) -> u64 {
        self.tomb.map_or(0, |t| t + 1)
    }

    pub fn in_flight(&self) -> u64 {
        self.submitted - self.completed
    }

    /// Runs `reply` with the visible state once every write submitted so far has been
    /// published, so that a client hears of those writes before it hears the reply.
    pub fn after_in_flight(&mut self, reply: Waiter) {
        if self.in_flight() == 0 {
            reply(self.visible.as_ref());
        } else {
            self.waiting.push((self.submitted, reply));
        }
    }

    /// Records one completed commit callback and runs the replies now due.
    pub fn complete_one(&mut self) {
        self.completed += 1;
        if self.waiting.is_empty() {
            return;
        }
        let completed = self.completed;
        let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(n, _)| *n <= completed);
        self.waiting = rest;
        for (_, reply) in due {
            reply(self.visible.as_ref());
        }
    }

    /// The store may hold something newer than this cell: the next use reloads it, and
    /// a load already reading does not count (see `reload`).
    pub fn invalidate(&mut self) {
        self.loaded = false;
        self.reload = true;
    }

    pub fn is_subscribed(&self, id: u64) -> bool {
        self.subscribers.iter().any(|s| s.id() == id)
    }

    /// Delivers `event` to every subscriber but `except`.
    pub fn publish(&self, event: &Arc<RecordEvent>, except: Option<u64>) {
        for s in &self.subscribers {
            if Some(s.id()) != except {
                s.deliver(event);
            }
        }
    }
}
