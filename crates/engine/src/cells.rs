//! The cell table: every record this node holds in memory, by name, in shards. A cell
//! is loaded from the store on first use and dropped as soon as it is idle (no
//! subscribers, nothing in flight, nobody holding it).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;
use serde_json::Value;

use recordsync_core::{Record, json, validate_name};

use crate::catch_up::CatchUp;
use crate::cell::{Cell, CellState, Head, Visible};
use crate::error::read_failed;
use crate::event::{EventKind, RecordEvent};
use crate::{Engine, EngineError};

pub(crate) const SHARDS: usize = 64;

/// One slice of the name → cell map; a name's shard is chosen by its hash.
pub(crate) type Shard = Mutex<HashMap<Arc<str>, Arc<Cell>>>;

/// A cell held by a task: counted in `Cell::users` so it is not evicted meanwhile.
pub(crate) struct Held<'a> {
    pub engine: &'a Engine,
    pub cell: Arc<Cell>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.cell.users.fetch_sub(1, Ordering::AcqRel);
        self.engine.evict_if_idle(&self.cell);
    }
}

impl Engine {
    pub(crate) fn shard(&self, name: &str) -> &Shard {
        let index = self.hasher.hash_one(name) as usize % SHARDS;
        &self.shards[index]
    }

    pub(crate) fn acquire(&self, name: &str) -> Held<'_> {
        let mut shard = self.shard(name).lock();
        let cell = match shard.get(name) {
            Some(cell) => cell.clone(),
            None => {
                let name: Arc<str> = Arc::from(name);
                let cell = Arc::new(Cell::new(name.clone()));
                shard.insert(name, cell.clone());
                cell
            }
        };
        cell.users.fetch_add(1, Ordering::AcqRel);
        Held { engine: self, cell }
    }

    pub(crate) async fn acquire_loaded(&self, name: &str) -> Result<Held<'_>, EngineError> {
        validate_name(name)?;
        let held = self.acquire(name);
        if !held.cell.state.lock().loaded {
            let _loading = held.cell.load.lock().await;
            if !held.cell.state.lock().loaded {
                self.load(&held.cell).await?;
            }
        }
        Ok(held)
    }

    /// Reads the record from the store into the cell, telling its subscribers of any
    /// difference.
    ///
    /// The read must not predate anything the cell already shows: this node's own writes
    /// in flight or committed while the store was being read (waited for, and the store
    /// read again), and news that arrived meanwhile (the cell then stays unloaded, and the
    /// refetch that the news started reads again).
    pub(crate) async fn load(&self, cell: &Cell) -> Result<(), EngineError> {
        loop {
            let completed = {
                let mut st = cell.state.lock();
                st.reload = false;
                st.completed
            };
            let (head, tomb) = match self
                .store
                .get(&cell.name)
                .await
                .map_err(read_failed("get"))?
            {
                None => (None, None),
                Some(s) if s.deleted => (None, Some(s.version)),
                Some(s) => {
                    let data: Value =
                        json::parse(&s.data).map_err(|e| EngineError::CorruptValue {
                            name: s.name.clone(),
                            source: Arc::new(e),
                        })?;
                    let life = s.version.checked_sub(s.created).ok_or_else(|| {
                        EngineError::CorruptVersions {
                            name: s.name.clone(),
                            version: s.version,
                            created: s.created,
                        }
                    })?;
                    let record = Record {
                        version: life,
                        data,
                        ctime: s.ctime,
                        mtime: s.mtime,
                    };
                    let head = Head {
                        record,
                        created: s.created,
                        json: Arc::from(s.data),
                        stored: true,
                    };
                    (Some(head), None)
                }
            };
            let catch_up = match &head {
                Some(loaded) => self.catch_up(cell, loaded).await,
                None => None,
            };
            let in_flight = {
                let mut st = cell.state.lock();
                if st.in_flight() > 0 {
                    // This node's writes are being committed: read again once they are.
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    st.after_in_flight(Box::new(move |_| {
                        let _ = tx.send(());
                    }));
                    Some(rx)
                } else if st.completed != completed {
                    // One was committed while the store was read: read again.
                    None
                } else {
                    self.apply_loaded(cell, &mut st, head, tomb, catch_up);
                    return Ok(());
                }
            };
            if let Some(done) = in_flight {
                done.await.map_err(|_| EngineError::Shutdown)?;
            }
        }
    }

    /// Makes `head`, read while nothing of this node's was in flight, the cell's state.
    /// Subscribers holding an older version are sent the ops in between when `catch_up`
    /// bridges the gap (see `crate::catch_up`), else one jump to the new version.
    pub(crate) fn apply_loaded(
        &self,
        cell: &Cell,
        st: &mut CellState,
        head: Option<Head>,
        tomb: Option<u64>,
        catch_up: Option<CatchUp>,
    ) {
        let visible = head.as_ref().map(|h| Visible {
            version: h.version(),
            json: h.json.clone(),
        });
        // After a failed commit the store is the truth; subscribers holding something else
        // are brought back to it.
        let known = st.visible.as_ref().map(|v| v.version);
        match (known, &visible) {
            (Some(known), Some(v)) if known != v.version => {
                if let Some(catch_up) = catch_up.filter(|c| c.bridges(known, v.version)) {
                    for event in &catch_up.events {
                        st.publish(event, None);
                    }
                    self.watchers.notify(&cell.name);
                    set_loaded(st, head, tomb, visible);
                    return;
                }
                let event = RecordEvent::new(
                    cell.name.clone(),
                    EventKind::Changed {
                        version: v.version,
                        op: None,
                        value: v.json.clone(),
                        before: None,
                    },
                );
                st.publish(&event, None);
                self.watchers.notify(&cell.name);
            }
            (Some(_), None) => {
                // Deleted elsewhere (another node) while this node was not told.
                self.deleted_elsewhere(&cell.name, st, tomb, None);
                self.watchers.notify(&cell.name);
            }
            _ => {}
        }
        set_loaded(st, head, tomb, visible);
    }

    /// Drops an idle cell from the map. Lock order: shard, then cell.
    pub(crate) fn evict_if_idle(&self, cell: &Arc<Cell>) {
        let mut shard = self.shard(&cell.name).lock();
        let mut st = cell.state.lock();
        if st.evicted || !st.is_idle() || cell.users.load(Ordering::Acquire) != 0 {
            return;
        }
        st.evicted = true;
        if shard.get(&cell.name).is_some_and(|c| Arc::ptr_eq(c, cell)) {
            shard.remove(&cell.name);
        }
    }
}

/// Makes what was read from the store the cell's state.
fn set_loaded(st: &mut CellState, head: Option<Head>, tomb: Option<u64>, visible: Option<Visible>) {
    st.head = head;
    st.tomb = tomb;
    st.visible = visible;
    st.fetched = true;
    st.loaded = !st.reload;
}
