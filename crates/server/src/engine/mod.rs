//! The engine: every record semantic, once, for every protocol.
//!
//! Front doors turn wire messages into calls here and turn [`RecordEvent`]s and call
//! results back into wire messages. The engine guarantees, per record:
//! - writes are checked and applied strictly in arrival order (the cell lock), also when
//!   some must be tried again after losing a race to another node (`retry`);
//! - a write is acknowledged, and published to subscribers, only after the store has
//!   committed it durably (the group committer calls back in submission order, so
//!   subscribers see versions in order);
//! - a new subscriber sees exactly the committed versions after the one it was sent.
//!
//! Module map: `cell` (one record's in-memory state), [`event`] (what subscribers get),
//! [`error`] (what can go wrong), [`listen`] (active providers), [`cluster`] (news between
//! nodes), `retry` (writes tried again, in order), [`WriteDone`] (every write answered).

mod cell;
pub mod cluster;
pub mod error;
pub mod event;
pub mod listen;
mod retry;
#[cfg(test)]
mod tests;
mod write_done;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde_json::Value;

use recordsync_core::{Record, Version, WriteOp, json, name, record::WriteError};
use recordsync_store::{
    GroupCommitter, JournalEntry, Store, StoreError, StoredRecord, Write, WriteOutcome,
};

use cell::{Cell, CellState, Head, Visible};
pub use error::{EngineError, WriteFailure};
pub use event::{Change, EventKind, FrameFormat, RecordEvent, Subscriber};
use listen::Listening;
use retry::{PendingWrite, Queued, Settled};
pub use write_done::WriteDone;

const SHARDS: usize = 64;

/// How long the health check waits for the store's answer.
const HEALTH_PROBE_WAIT: Duration = Duration::from_secs(5);

/// One slice of the name → cell map; a name's shard is chosen by its hash.
type Shard = Mutex<HashMap<Arc<str>, Arc<Cell>>>;

/// A record's committed state as a reader sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub version: Version,
    /// The value as JSON text.
    pub data: Arc<str>,
}

pub struct Engine {
    store: Arc<dyn Store>,
    committer: GroupCommitter,
    shards: Box<[Shard]>,
    hasher: RandomState,
    pub(crate) listening: Listening,
    /// Present when several nodes share the store: announces and applies writes.
    cluster: std::sync::OnceLock<cluster::Cluster>,
    /// Records whose refetch failed because the store could not be reached, and whether a
    /// task is waiting for the store to refetch them (see `refetch_later`).
    unfetched: Mutex<std::collections::HashSet<Arc<str>>>,
    retrying_refetches: std::sync::atomic::AtomicBool,
    /// Lets committer callbacks, which outlive the request that made them, reach the engine.
    me: Weak<Engine>,
}

/// A cell held by a task: counted in `Cell::users` so it is not evicted meanwhile.
struct Held<'a> {
    engine: &'a Engine,
    cell: Arc<Cell>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.cell.users.fetch_sub(1, Ordering::AcqRel);
        self.engine.evict_if_idle(&self.cell);
    }
}

impl Engine {
    /// Builds the engine; call inside a tokio runtime (it starts the committer and the
    /// listening tasks). `rematch_interval` is how often unprovided subscriptions are
    /// offered to listeners again.
    pub fn new(
        store: Arc<dyn Store>,
        listening: Listening,
        rematch_interval: Duration,
    ) -> Arc<Engine> {
        let engine = Arc::new_cyclic(|me| Engine {
            // A commit's updates are all queued before any connection is woken to write
            // them: a subscriber of several of the batch's records gets them in one write.
            committer: GroupCommitter::with_callback_scope(
                store.clone(),
                Arc::new(|run: &mut dyn FnMut()| crate::outbox::deferring_wakes(run)),
            ),
            store,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            listening,
            cluster: std::sync::OnceLock::new(),
            unfetched: Mutex::new(std::collections::HashSet::new()),
            retrying_refetches: std::sync::atomic::AtomicBool::new(false),
            me: me.clone(),
        });
        engine
            .listening
            .start(Arc::downgrade(&engine), rematch_interval);
        engine
    }

    /// Joins a cluster: from now on committed writes are announced on `bus`, and other
    /// nodes' announcements keep this node's cached records current.
    ///
    /// Listening becomes cluster-wide too: one node coordinates it (see [`listen`]).
    pub async fn join_cluster(
        self: &Arc<Self>,
        bus: Arc<dyn recordsync_bus::Bus>,
        timing: listen::ClusterTiming,
    ) -> Result<(), recordsync_bus::BusError> {
        let node = self.listening.node();
        let cluster = cluster::Cluster::start(bus.clone(), Arc::downgrade(self), node).await?;
        let _ = self.cluster.set(cluster);
        self.listening.join(bus, Arc::downgrade(self), timing).await
    }

    fn announce(&self, name: &str, version: Version, op: Option<&str>, deleted: bool) {
        if let Some(cluster) = self.cluster.get() {
            cluster.announce(name, version, op, deleted);
        }
    }

    /// Waits until every submitted write has been committed (for shutdown and tests).
    pub async fn flush(&self) {
        self.committer.flush().await;
    }

    /// Subscribes `subscriber` to `name`. With `create`, a missing record is created as
    /// `{}` at version 0 (deepstream's SUBSCRIBECREATEANDREAD); without, the subscriber
    /// waits for it. `initial` receives the state the subscriber starts from (`None`: the
    /// record does not exist) and whether the record has a provider; it runs under the
    /// record's lock, so whatever it queues for the client precedes every later update.
    ///
    /// A record created here is stored before `initial` runs, as deepstream stores it
    /// before it answers: once a client is told the record exists, every node reads it
    /// from the store, and a restart or a crash keeps it. (If the store refuses it, the
    /// subscription is not made: [`EngineError::NotCreated`].)
    ///
    /// Returns the engine's copy of the name, for the subscriber to keep instead of its own.
    pub async fn subscribe(
        &self,
        subscriber: Arc<dyn Subscriber>,
        name: &str,
        create: bool,
        initial: impl FnOnce(Option<Snapshot>, bool),
    ) -> Result<Arc<str>, EngineError> {
        loop {
            let held = self.acquire_loaded(name).await?;
            let creating = {
                let cell = &held.cell;
                let mut st = cell.state.lock();
                if create && st.visible.is_none() {
                    // Nothing committed yet: create it, or wait for the creation (another
                    // subscriber's, or a first write) already on its way to the store.
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    if st.in_flight() == 0 {
                        self.create_empty(cell, &mut st, tx);
                    } else {
                        st.after_in_flight(Box::new(move |_| drop(tx.send(Ok(())))));
                    }
                    rx
                } else {
                    let snapshot = st.visible.as_ref().map(|v| Snapshot {
                        version: v.version,
                        data: v.json.clone(),
                    });
                    if st.subscribers.is_empty() {
                        self.listening.record_subscribed(&cell.name);
                    }
                    if !st.is_subscribed(subscriber.id()) {
                        st.subscribers.push(subscriber);
                    }
                    initial(snapshot, self.listening.has_provider(&cell.name));
                    return Ok(cell.name.clone());
                }
            };
            drop(held);
            // Then look again: the store has the last word (another node may have created
            // the record first, or deleted it since).
            creating
                .await
                .map_err(|_| EngineError::Shutdown)?
                .map_err(EngineError::NotCreated)?;
        }
    }

    /// Ends a subscription. Returns whether there was one.
    pub async fn unsubscribe(&self, subscriber_id: u64, name: &str) -> Result<bool, EngineError> {
        name::validate(name)?;
        let held = self.acquire(name);
        let mut st = held.cell.state.lock();
        let before = st.subscribers.len();
        st.subscribers.retain(|s| s.id() != subscriber_id);
        let was = st.subscribers.len() != before;
        if was && st.subscribers.is_empty() {
            self.listening.record_unsubscribed(&held.cell.name);
        }
        Ok(was)
    }

    /// The record's committed state, or `None` when it does not exist. Never creates it.
    ///
    /// Writes accepted before the read are waited for, so a client reads its own writes
    /// (and deletes) even without waiting for their acknowledgements.
    ///
    /// In a cluster, another node may have committed a version whose announcement has
    /// not arrived yet: a read reloads the record from the store, the truth, so that every
    /// node answers the latest committed state (and its subscribers hear of it too).
    ///
    /// If the store cannot be reached then, the copy this node holds is answered, as a
    /// node on its own would.
    pub async fn read(&self, name: &str) -> Result<Option<Snapshot>, EngineError> {
        let mut copy = None;
        if self.cluster.get().is_some() {
            let cached = self.shard(name).lock().get(name).cloned();
            if let Some(cell) = cached {
                let mut st = cell.state.lock();
                let fetched = st.fetched;
                st.invalidate();
                drop(st);
                copy = fetched.then_some(cell);
            }
        }
        let held = match (self.acquire_loaded(name).await, copy) {
            (Ok(held), _) => held,
            (Err(EngineError::Storage(StoreError::Unavailable(reason))), Some(cell)) => {
                tracing::debug!(record = name, "answering this node's copy: {reason}");
                cell.users.fetch_add(1, Ordering::AcqRel);
                Held { engine: self, cell }
            }
            (Err(e), _) => return Err(e),
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        held.cell
            .state
            .lock()
            .after_in_flight(Box::new(move |visible| {
                let _ = tx.send(visible.map(|v| Snapshot {
                    version: v.version,
                    data: v.json.clone(),
                }));
            }));
        drop(held);
        rx.await.map_err(|_| EngineError::Shutdown)
    }

    /// The record's committed version, or `None` when it does not exist.
    pub async fn head(&self, name: &str) -> Result<Option<Version>, EngineError> {
        Ok(self.read(name).await?.map(|s| s.version))
    }

    /// Applies `op` as the write producing `version` (`-1`: the next), on behalf of the
    /// subscriber `writer` (who does not receive its own write back). `done` is called
    /// exactly once: after the durable commit, or as soon as the write is refused.
    pub async fn write(&self, writer: u64, name: &str, op: WriteOp, version: i64, done: WriteDone) {
        let write = PendingWrite {
            seq: None,
            writer,
            op,
            version,
            done,
            lost: 0,
        };
        self.write_attempt(name, write, None).await;
    }

    /// How often a write may lose the race for its version to another node, each time
    /// tried again on the state reloaded from the store. Each lost race means a write of
    /// another node's landed in between (or this node's create of the record lost), so a
    /// write that loses this often meets sustained contention, and is refused rather than
    /// tried forever.
    const MAX_LOST_RACES: u32 = 64;

    /// Checks `write` against the record and submits it (or refuses it). A write that
    /// arrives while the record's writes are being tried again queues behind them, and
    /// one that loses the race for its version is queued to be tried again (see
    /// [`retry`]); `settled`, given for a write taken from that queue, is dropped once it
    /// is committed, refused or queued again.
    ///
    /// Boxed: its commit callback may start the queue's task, which runs this again.
    fn write_attempt<'a>(
        &'a self,
        name: &'a str,
        mut write: PendingWrite,
        settled: Option<Settled>,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let held = match self.acquire_loaded(name).await {
                Ok(held) => held,
                Err(e) => return write.done.answer(Err(e.into())),
            };
            let cell = held.cell.clone();
            let mut st = cell.state.lock();
            if write.seq.is_none() {
                let seq = st.arrive();
                write.seq = Some(seq);
                if st.retrying {
                    // Earlier writes are being tried again: this one must not overtake.
                    st.retries.insert(seq, Queued::Write(write));
                    return;
                }
            }
            let PendingWrite {
                writer,
                ref op,
                version,
                ..
            } = write;
            let now = now_ms();
            if st.head.is_none() {
                // deepstream writes to a record nobody created as if it were `{}` at version 0.
                st.head = Some(Head {
                    record: Record::empty(now),
                    json: Arc::from("{}"),
                    stored: false,
                });
            }
            let head = st.head.as_mut().expect("set above");
            let base = head.record.version;
            let mut record = head.record.clone();
            let new_version = match record.write(op, version, now) {
                Ok(v) => v,
                Err(WriteError::VersionExists { .. }) => {
                    // The writer must hear of every write before this refusal first: a
                    // deepstream client merges against the state it has been sent.
                    let done = write.done;
                    st.after_in_flight(Box::new(move |visible| {
                        let (version, data) =
                            visible.map_or((0, Arc::from("{}")), |v| (v.version, v.json.clone()));
                        done.answer(Err(WriteFailure::VersionExists { version, data }));
                    }));
                    return;
                }
                Err(WriteError::InvalidVersion { requested, current }) => {
                    drop(st);
                    return write
                        .done
                        .answer(Err(WriteFailure::InvalidVersion { requested, current }));
                }
                Err(WriteError::Op(e)) => {
                    drop(st);
                    return write.done.answer(Err(e.into()));
                }
            };
            let json: Arc<str> = value_json(op, &record.data);
            let change = change_of(op, &json);
            let op_json = serde_json::to_string(op).expect("ops serialise");
            // Other nodes get the op as the journal has it; only clusters pay for the copy.
            let announced_op = self.cluster.get().map(|_| op_json.clone());
            let stored = Write::Put {
                record: StoredRecord {
                    name: cell.name.to_string(),
                    version: new_version,
                    data: json.to_string(),
                    ctime: record.ctime,
                    mtime: record.mtime,
                },
                base_version: head.stored.then_some(base),
                entry: Some(JournalEntry {
                    version: new_version,
                    time: now,
                    op: op_json,
                }),
            };
            *head = Head {
                record,
                json: json.clone(),
                stored: true,
            };
            st.submitted += 1;
            let engine_cell = cell.clone();
            let engine = self.self_ref();
            self.committer.submit(
                stored,
                Box::new(move |outcome| {
                    let mut st = engine_cell.state.lock();
                    let result = match outcome {
                        Ok(WriteOutcome::Committed) => {
                            st.visible = Some(Visible {
                                version: new_version,
                                json,
                            });
                            let event = RecordEvent::new(
                                engine_cell.name.clone(),
                                EventKind::Changed {
                                    version: new_version,
                                    change,
                                },
                            );
                            st.publish(&event, Some(writer));
                            if let Some(engine) = &engine {
                                engine.announce(
                                    &engine_cell.name,
                                    new_version,
                                    announced_op.as_deref(),
                                    false,
                                );
                            }
                            Ok(new_version)
                        }
                        Ok(WriteOutcome::Conflict { .. }) => {
                            // Another node wrote first, or an earlier write this one was
                            // queued behind (say, this node's create of the record) lost.
                            // Tried again on the stored state: it succeeds if it still
                            // applies, and otherwise is refused exactly as on one node,
                            // after the winner has been published here.
                            st.loaded = false;
                            write.lost += 1;
                            if write.lost >= Self::MAX_LOST_RACES {
                                Err(WriteFailure::Contended {
                                    attempts: write.lost,
                                })
                            } else if let Some(engine) = &engine {
                                st.complete_one();
                                engine.retry_later(&engine_cell, &mut st, write);
                                return; // `settled` is dropped now that it is queued
                            } else {
                                Err(WriteFailure::NotStored(
                                    "the server is shutting down".into(),
                                ))
                            }
                        }
                        Err(e) => {
                            st.loaded = false;
                            Err(WriteFailure::NotStored(e.to_string()))
                        }
                    };
                    st.complete_one();
                    drop(st);
                    let committed = result.is_ok();
                    write.done.answer(result);
                    if let (true, Some(engine)) = (committed, engine) {
                        engine.evict_if_idle(&engine_cell);
                    }
                    drop(settled);
                }),
            );
            drop(st);
            drop(held);
        })
    }

    /// Deletes the record and its journal. Every subscriber but `deleter` is told, and all
    /// subscriptions end. Deleting a record that does not exist succeeds, as in deepstream.
    pub async fn delete(&self, deleter: u64, name: &str, done: WriteDone) {
        self.delete_now(deleter, name, done, None).await;
    }

    /// [`delete`](Self::delete); `settled`, given for a delete taken from the record's
    /// queue of writes to try again (see [`retry`]), is dropped once it is committed or
    /// refused.
    pub(crate) async fn delete_now(
        &self,
        deleter: u64,
        name: &str,
        done: WriteDone,
        settled: Option<Settled>,
    ) {
        let held = match self.acquire_loaded(name).await {
            Ok(held) => held,
            Err(e) => return done.answer(Err(e.into())),
        };
        let cell = held.cell.clone();
        let mut st = cell.state.lock();
        if settled.is_none() && st.retrying {
            // Earlier writes are being tried again: the delete must not overtake them.
            let seq = st.arrive();
            st.retries.insert(seq, Queued::Delete { deleter, done });
            return;
        }
        let Some(head) = st.head.take() else {
            drop(st);
            return done.answer(Ok(0));
        };
        let version = head.record.version;
        // Only those subscribed now are told and unsubscribed: a client that subscribes
        // after this point re-creates the record and keeps its subscription.
        let told: Vec<u64> = st.subscribers.iter().map(|s| s.id()).collect();
        st.submitted += 1;
        let engine = self.self_ref();
        let engine_cell = cell.clone();
        self.committer.submit(
            Write::Delete { name: cell.name.to_string(), base_version: version },
            Box::new(move |outcome| {
                let result = {
                    let mut st = engine_cell.state.lock();
                    let result = match outcome {
                        Ok(WriteOutcome::Committed) => {
                            if st.head.is_none() {
                                st.visible = None;
                            }
                            let event = RecordEvent::new(engine_cell.name.clone(), EventKind::Deleted);
                            for s in st.subscribers.iter().filter(|s| told.contains(&s.id())) {
                                if s.id() != deleter {
                                    s.deliver(&event);
                                }
                            }
                            let had = !st.subscribers.is_empty();
                            st.subscribers.retain(|s| !told.contains(&s.id()));
                            if let Some(engine) = &engine {
                                engine.announce(&engine_cell.name, version, None, true);
                            }
                            if let (true, true, Some(engine)) = (had, st.subscribers.is_empty(), &engine) {
                                engine.listening.record_unsubscribed(&engine_cell.name);
                            }
                            Ok(version)
                        }
                        Ok(WriteOutcome::Conflict { current }) => {
                            st.loaded = false;
                            let msg = format!("another writer changed the record first (stored version {current:?})");
                            Err(WriteFailure::NotStored(msg))
                        }
                        Err(e) => {
                            st.loaded = false;
                            Err(WriteFailure::NotStored(e.to_string()))
                        }
                    };
                    st.complete_one();
                    result
                };
                done.answer(result);
                if let Some(engine) = engine {
                    engine.evict_if_idle(&engine_cell);
                }
                drop(settled);
            }),
        );
    }

    /// Sends `event` to every subscriber of `name` (used for provider changes).
    pub(crate) fn publish(&self, name: &str, kind: EventKind) {
        let cell = self.shard(name).lock().get(name).cloned();
        if let Some(cell) = cell {
            let st = cell.state.lock();
            let event = RecordEvent::new(cell.name.clone(), kind);
            st.publish(&event, None);
        }
    }

    /// Applies another node's announced change to this node's copy, if it holds one.
    pub(crate) fn apply_remote(&self, a: &cluster::Announcement<'_>) {
        let name: &str = &a.name;
        let Some(cell) = self.shard(name).lock().get(name).cloned() else {
            return; // not cached here: the next use loads it from the store
        };
        let mut st = cell.state.lock();
        if !st.loaded {
            // Being (re)loaded, or waiting to be: make sure that happens, so subscribers
            // here catch up even if nothing else touches the record. A load reading now
            // may have read before this change was committed: it does not count.
            st.invalidate();
            drop(st);
            self.refetch(&cell.name);
            return;
        }
        let known = st.visible.as_ref().map(|v| v.version);
        let settled = st.in_flight() == 0;
        if a.deleted {
            if known.is_none() {
                return;
            }
            if settled {
                st.head = None;
                st.visible = None;
                st.publish(
                    &RecordEvent::new(cell.name.clone(), EventKind::Deleted),
                    None,
                );
                if !st.subscribers.is_empty() {
                    st.subscribers.clear();
                    self.listening.record_unsubscribed(&cell.name);
                }
                return;
            }
        } else if known.is_some_and(|k| a.version <= k) {
            return; // old news
        } else if a.version == 0 {
            if known.is_none() && settled {
                let now = now_ms();
                let json: Arc<str> = Arc::from("{}");
                st.head = Some(Head {
                    record: Record::empty(now),
                    json: json.clone(),
                    stored: true,
                });
                st.visible = Some(Visible { version: 0, json });
            }
            return;
        } else if let (true, Some(k), Some(op_text), Some(head)) =
            (settled, known, a.op, st.head.as_mut())
            && k + 1 == a.version
            && head.record.version == k
            && let Ok(op) = WriteOp::from_journal(op_text.get())
            && head.record.write(&op, a.version as i64, now_ms()).is_ok()
        {
            let json: Arc<str> = value_json(&op, &head.record.data);
            head.json = json.clone();
            let change = change_of(&op, &json);
            st.visible = Some(Visible {
                version: a.version,
                json,
            });
            let event = RecordEvent::new(
                cell.name.clone(),
                EventKind::Changed {
                    version: a.version,
                    change,
                },
            );
            st.publish(&event, None);
            return;
        }
        // A gap, local writes in flight, or an op that does not apply: refetch.
        st.invalidate();
        drop(st);
        self.refetch(&cell.name);
    }

    /// Reloads `name` if this node holds it (another node could not announce a change).
    pub(crate) fn refetch_cached(&self, name: &str) {
        let Some(cell) = self.shard(name).lock().get(name).cloned() else {
            return; // not cached here: the next use loads it from the store
        };
        cell.state.lock().invalidate();
        self.refetch(&cell.name);
    }

    /// Reloads every cached record from the store (after the bus lost messages); those
    /// with subscribers are reloaded now, so that their subscribers catch up.
    pub(crate) fn resync(&self) {
        let mut subscribed = Vec::new();
        for shard in self.shards.iter() {
            for (name, cell) in shard.lock().iter() {
                let mut st = cell.state.lock();
                st.invalidate();
                if !st.subscribers.is_empty() {
                    subscribed.push(name.clone());
                }
            }
        }
        for name in subscribed {
            self.refetch(&name);
        }
    }

    /// Reloads `name` in the background; the load publishes whatever changed.
    fn refetch(&self, name: &Arc<str>) {
        let Some(engine) = self.self_ref() else {
            return;
        };
        let name = name.clone();
        tokio::spawn(async move {
            match engine.acquire_loaded(&name).await {
                Ok(_) => {}
                Err(EngineError::Storage(
                    StoreError::Unavailable(_) | StoreError::Io(_) | StoreError::Full { .. },
                )) => {
                    engine.refetch_later(name);
                }
                Err(e) => tracing::warn!(record = %name, "refetching failed: {e}"),
            }
        });
    }

    /// Refetches `name` once the store answers again: otherwise a node whose refetch
    /// failed (the database down while the bus came back, say) would leave its
    /// subscribers behind until something else touched the record. One task waits for
    /// the store, however many records wait.
    fn refetch_later(&self, name: Arc<str>) {
        self.unfetched.lock().insert(name);
        if self.retrying_refetches.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!("refetching records failed: the store cannot be reached; retrying");
        let engine = self.me.clone();
        tokio::spawn(async move {
            let mut attempt = 0u32;
            loop {
                tokio::time::sleep(Duration::from_millis((100u64 << attempt.min(6)).min(5000)))
                    .await;
                attempt += 1;
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                if engine.store.ping().await.is_err() {
                    continue;
                }
                let names = std::mem::take(&mut *engine.unfetched.lock());
                for name in &names {
                    engine.refetch(name);
                }
                // Refetches that fail again come back through refetch_later.
                engine.retrying_refetches.store(false, Ordering::Release);
                if engine.unfetched.lock().is_empty()
                    || engine.retrying_refetches.swap(true, Ordering::AcqRel)
                {
                    return;
                }
            }
        });
    }

    /// Whether the store can take work: false while it fails (a PostgreSQL that cannot
    /// be reached, an embedded store refusing writes after a failed write, on a full disk
    /// say, until it can write again). The health check answers 503 then. Each call asks the store ([`Store::ping`]: a round trip to PostgreSQL), so an
    /// idle node reports an unreachable database, and reports itself healthy again once
    /// its storage is back.
    pub async fn healthy(&self) -> bool {
        matches!(
            tokio::time::timeout(HEALTH_PROBE_WAIT, self.store.ping()).await,
            Ok(Ok(()))
        )
    }

    /// How many records are held in memory (for tests and metrics).
    pub fn cached_records(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    // --- cells -------------------------------------------------------------------

    fn shard(&self, name: &str) -> &Shard {
        let index = self.hasher.hash_one(name) as usize % SHARDS;
        &self.shards[index]
    }

    fn acquire(&self, name: &str) -> Held<'_> {
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

    async fn acquire_loaded(&self, name: &str) -> Result<Held<'_>, EngineError> {
        name::validate(name)?;
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
    async fn load(&self, cell: &Cell) -> Result<(), EngineError> {
        loop {
            let completed = {
                let mut st = cell.state.lock();
                st.reload = false;
                st.completed
            };
            let head = match self.store.get(&cell.name).await? {
                None => None,
                Some(s) => {
                    let data: Value =
                        json::parse(&s.data).map_err(|e| EngineError::CorruptValue {
                            name: s.name.clone(),
                            reason: e.to_string(),
                        })?;
                    let record = Record {
                        version: s.version,
                        data,
                        ctime: s.ctime,
                        mtime: s.mtime,
                    };
                    Some(Head {
                        record,
                        json: Arc::from(s.data),
                        stored: true,
                    })
                }
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
                    self.apply_loaded(cell, &mut st, head);
                    return Ok(());
                }
            };
            if let Some(done) = in_flight {
                done.await.map_err(|_| EngineError::Shutdown)?;
            }
        }
    }

    /// Makes `head`, read while nothing of this node's was in flight, the cell's state.
    fn apply_loaded(&self, cell: &Cell, st: &mut CellState, head: Option<Head>) {
        let visible = head.as_ref().map(|h| Visible {
            version: h.record.version,
            json: h.json.clone(),
        });
        // After a failed commit the store is the truth; subscribers holding something else
        // are brought back to it.
        let known = st.visible.as_ref().map(|v| v.version);
        match (known, &visible) {
            (Some(known), Some(v)) if known != v.version => {
                let change = Change::Whole(v.json.clone());
                let event = RecordEvent::new(
                    cell.name.clone(),
                    EventKind::Changed {
                        version: v.version,
                        change,
                    },
                );
                st.publish(&event, None);
            }
            (Some(_), None) => {
                // Deleted elsewhere (another node) while this node was not told.
                st.publish(
                    &RecordEvent::new(cell.name.clone(), EventKind::Deleted),
                    None,
                );
                if !st.subscribers.is_empty() {
                    st.subscribers.clear();
                    self.listening.record_unsubscribed(&cell.name);
                }
            }
            _ => {}
        }
        st.head = head;
        st.visible = visible;
        st.fetched = true;
        st.loaded = !st.reload;
    }

    /// Creates `{}` at version 0 (deepstream's record created by subscribing) and stores it.
    ///
    /// It is accepted at once (`head`: later writes build on it) and visible once
    /// committed, like any write. `stored` is told the outcome: `Ok` when the record was
    /// stored, or another node had created it first (the cell then reloads it), `Err` when
    /// the store failed.
    fn create_empty(
        &self,
        cell: &Arc<Cell>,
        st: &mut CellState,
        stored: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
    ) {
        let now = now_ms();
        st.head = Some(Head {
            record: Record::empty(now),
            json: Arc::from("{}"),
            stored: true,
        });
        st.submitted += 1;
        let engine = self.self_ref();
        let cell = cell.clone();
        self.committer.submit(
            Write::Put {
                record: StoredRecord {
                    name: cell.name.to_string(),
                    version: 0,
                    data: "{}".into(),
                    ctime: now,
                    mtime: now,
                },
                base_version: None,
                entry: None,
            },
            Box::new(move |outcome| {
                let mut refetch = false;
                let result = {
                    let mut st = cell.state.lock();
                    let result = match outcome {
                        Ok(WriteOutcome::Committed) => {
                            st.visible = Some(Visible {
                                version: 0,
                                json: Arc::from("{}"),
                            });
                            if let Some(engine) = &engine {
                                engine.announce(&cell.name, 0, None, false);
                            }
                            Ok(())
                        }
                        Ok(WriteOutcome::Conflict { .. }) => {
                            // Another node created it first: take its state from the store.
                            st.loaded = false;
                            refetch = true;
                            Ok(())
                        }
                        Err(e) => {
                            tracing::warn!(record = %cell.name, "creating an empty record failed: {e}");
                            st.loaded = false;
                            Err(e)
                        }
                    };
                    st.complete_one();
                    result
                };
                let _ = stored.send(result);
                if let Some(engine) = engine {
                    if refetch {
                        engine.refetch(&cell.name);
                    }
                    engine.evict_if_idle(&cell);
                }
            }),
        );
    }

    /// Drops an idle cell from the map. Lock order: shard, then cell.
    fn evict_if_idle(&self, cell: &Arc<Cell>) {
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

    /// A weak self-reference for committer callbacks, which may outlive a request.
    fn self_ref(&self) -> Option<Arc<Engine>> {
        self.me.upgrade()
    }
}

/// The record's value as JSON text after `op`: a whole-value write is serialised as the
/// client sent it, anything else from the applied value.
fn value_json(op: &WriteOp, applied: &Value) -> Arc<str> {
    match op {
        WriteOp::Update { data } => Arc::from(data.to_string()),
        _ => Arc::from(applied.to_string()),
    }
}

/// What subscribers are sent for a committed `op`, `whole` being the value after it.
///
/// A PATCH_MULTI goes out as the whole value: deepstream's SDKs (the JS client 7.0.5
/// among them) do not know the action and drop it, so a subscriber would keep the old
/// value until some later change made it re-read; every client applies an UPDATE.
fn change_of(op: &WriteOp, whole: &Arc<str>) -> Change {
    match op {
        WriteOp::Update { .. } | WriteOp::PatchMulti { .. } => Change::Whole(whole.clone()),
        WriteOp::Patch { path, data } => Change::Patch {
            path: path.clone(),
            data: data.to_string(),
        },
        WriteOp::Erase { path } => Change::Erase { path: path.clone() },
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
