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
    /// Set when the cell left the engine's map: holders must look it up again.
    pub evicted: bool,
    pub head: Option<Head>,
    pub visible: Option<Visible>,
    /// Writes submitted to the store and not yet completed.
    pub pending: usize,
    pub subscribers: Vec<Arc<dyn Subscriber>>,
}

/// The newest accepted state: the value for path writes, and its JSON text for storage
/// and for VERSION_EXISTS replies.
pub(crate) struct Head {
    pub record: Record,
    pub json: Arc<str>,
    /// Whether the store holds this record once every pending write has committed; a
    /// record that exists only as the implicit `{}` of a first write does not.
    pub stored: bool,
}

/// The newest committed state.
#[derive(Clone)]
pub(crate) struct Visible {
    pub version: u64,
    pub json: Arc<str>,
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

impl CellState {
    pub fn is_idle(&self) -> bool {
        self.pending == 0 && self.subscribers.is_empty()
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
