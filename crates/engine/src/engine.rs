//! The engine's API: what front doors call. Each call finds the record's cell
//! ([`crate::cells`]), checks and submits writes through the write pipeline
//! ([`crate::write`]), and hears of other nodes' writes through [`crate::reconcile`].

use std::collections::HashMap;
use std::hash::RandomState;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use recordsync_core::validate_name;
use recordsync_store::{CallbackScope, GroupCommitter, Origin, Store, StoreError};

use crate::cells::{Held, SHARDS, Shard};
use crate::error::read_failed;
use crate::event::{EventKind, RecordEvent, Subscriber};
use crate::listen::{self, ListenTopic, Listening};
use crate::request::WriteRequest;
use crate::retry::PendingWrite;
use crate::versions::EngineVersion;
use crate::watch::{Watcher, Watchers};
use crate::{EngineError, WriteDone, cluster};

/// How long the health check waits for the store's answer.
const HEALTH_PROBE_WAIT: Duration = Duration::from_secs(5);

/// A record's committed state as a reader sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The engine's version and the current life's create (deepstream's version is
    /// `version.in_life()`; see [`EngineVersion`](crate::EngineVersion)).
    pub version: EngineVersion,
    /// The value as JSON text.
    pub data: Arc<str>,
}

/// A record's committed state, or, when it does not exist, the engine version its next
/// life would begin at (0 for a name never used, the tombstone's version plus one after a
/// delete): what a protocol that counts versions across deletes (ShareDB) shows for a
/// missing document.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordState {
    Exists(Snapshot),
    Missing { next_create: u64 },
}

impl RecordState {
    /// The state of a cell, as committed: `visible`, or where the next life begins.
    fn of(st: &crate::cell::CellState) -> RecordState {
        match (&st.visible, &st.head) {
            (Some(v), _) => RecordState::Exists(Snapshot {
                version: v.version,
                data: v.json.clone(),
            }),
            // A create accepted but not yet committed begins where the record's next
            // life does.
            (None, Some(head)) => RecordState::Missing {
                next_create: head.created,
            },
            (None, None) => RecordState::Missing {
                next_create: st.next_create(),
            },
        }
    }
}

/// Record semantics for every protocol: one per node, shared by its front doors.
pub struct Engine {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) committer: GroupCommitter,
    pub(crate) shards: Box<[Shard]>,
    pub(crate) hasher: RandomState,
    pub(crate) listening: Listening,
    /// Listening on event names: the same runtime as records', a registry of its own.
    pub(crate) event_listening: Listening,
    /// Who subscribes to which events on this node (see `crate::pubsub`).
    pub(crate) events: crate::pubsub::Hub,
    /// Present when several nodes share the store: announces and applies writes.
    pub(crate) cluster: std::sync::OnceLock<cluster::Cluster>,
    /// Records whose refetch failed because the store could not be reached, and whether a
    /// task is waiting for the store to refetch them (see `Engine::refetch_later`).
    pub(crate) unfetched: Mutex<std::collections::HashSet<Arc<str>>>,
    pub(crate) retrying_refetches: std::sync::atomic::AtomicBool,
    /// Lets committer callbacks, which outlive the request that made them, reach the engine.
    pub(crate) me: Weak<Engine>,
    /// Whoever follows whole collections (see `crate::watch`).
    pub(crate) watchers: Watchers,
}

impl Engine {
    /// Builds the engine; call inside a tokio runtime (it starts the committer and the
    /// listening tasks). `listening` is the records' listening; the events' is made
    /// like it ([`ListenTopic::Event`]). `rematch_interval` is how often unprovided
    /// subscriptions are offered to listeners again. `scope` runs each batch of commit callbacks, which
    /// publish the batch's changes: a host that wakes its connections once per batch
    /// (rather than once per change) passes a scope that defers the wake-ups; `None`
    /// runs them as they are.
    pub fn new(
        store: Arc<dyn Store>,
        listening: Listening,
        rematch_interval: Duration,
        scope: Option<CallbackScope>,
    ) -> Arc<Engine> {
        let committer = match scope {
            Some(scope) => GroupCommitter::with_callback_scope(store.clone(), scope),
            None => GroupCommitter::new(store.clone()),
        };
        let engine = Arc::new_cyclic(|me| Engine {
            committer,
            store,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            event_listening: listening.sibling(ListenTopic::Event),
            listening,
            events: crate::pubsub::Hub::default(),
            cluster: std::sync::OnceLock::new(),
            unfetched: Mutex::new(std::collections::HashSet::new()),
            retrying_refetches: std::sync::atomic::AtomicBool::new(false),
            me: me.clone(),
            watchers: Watchers::default(),
        });
        engine
            .listening
            .start(Arc::downgrade(&engine), rematch_interval);
        engine
            .event_listening
            .start(Arc::downgrade(&engine), rematch_interval);
        engine
    }

    /// Joins a cluster: from now on committed writes are announced on `bus`, and other
    /// nodes' announcements keep this node's cached records current.
    ///
    /// Events and listening become cluster-wide too: an event emitted here reaches every
    /// node's subscribers, and one node coordinates each topic's listening (see
    /// [`listen`]).
    pub async fn join_cluster(
        self: &Arc<Self>,
        bus: Arc<dyn recordsync_bus::Bus>,
        timing: listen::ClusterTiming,
    ) -> Result<(), recordsync_bus::BusError> {
        let node = self.listening.node();
        let cluster = cluster::Cluster::start(bus.clone(), Arc::downgrade(self), node).await?;
        let _ = self.cluster.set(cluster);
        self.join_events(bus.clone(), Arc::downgrade(self)).await?;
        self.event_listening
            .join(bus.clone(), Arc::downgrade(self), timing)
            .await?;
        self.listening.join(bus, Arc::downgrade(self), timing).await
    }

    pub(crate) fn announce(
        &self,
        name: &str,
        version: EngineVersion,
        op: Option<&str>,
        deleted: bool,
        origin: Option<&Origin>,
    ) {
        // Every commit of this node passes here (after the record's subscribers were told).
        self.watchers.notify(name);
        if let Some(cluster) = self.cluster.get() {
            cluster.announce(name, version, op, deleted, origin);
        }
    }

    /// Listening: active providers of records (deepstream's LISTEN), on this node or
    /// across the cluster.
    pub fn listening(&self) -> &Listening {
        &self.listening
    }

    /// Listening on `topic`: records' ([`listening`](Self::listening)) or events'.
    pub fn listening_of(&self, topic: ListenTopic) -> &Listening {
        match topic {
            ListenTopic::Record => &self.listening,
            ListenTopic::Event => &self.event_listening,
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
                        self.listening.subscribed(&cell.name);
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

    /// Subscribes `subscriber` to `name`, whether it exists or not, never creating it
    /// (ShareDB's subscribe). `initial` receives the committed state the subscriber
    /// starts from, under the record's lock, so whatever it queues for the client
    /// precedes every later event. Returns the engine's copy of the name.
    pub async fn subscribe_state(
        &self,
        subscriber: Arc<dyn Subscriber>,
        name: &str,
        initial: impl FnOnce(RecordState),
    ) -> Result<Arc<str>, EngineError> {
        let held = self.acquire_loaded(name).await?;
        let cell = &held.cell;
        let mut st = cell.state.lock();
        if st.subscribers.is_empty() {
            self.listening.subscribed(&cell.name);
        }
        if !st.is_subscribed(subscriber.id()) {
            st.subscribers.push(subscriber);
        }
        initial(RecordState::of(&st));
        Ok(cell.name.clone())
    }

    /// The record's committed state ([`RecordState`]), read as [`read`](Self::read)
    /// reads it (after the writes accepted before the read; in a cluster, from the
    /// store). Never creates it.
    pub async fn read_state(&self, name: &str) -> Result<RecordState, EngineError> {
        if let Some(snapshot) = self.read(name).await? {
            return Ok(RecordState::Exists(snapshot));
        }
        // Missing: where its next life begins is the cell's to say (loaded again if it
        // was dropped meanwhile; if the record was created meanwhile, that is the state).
        let held = self.acquire_loaded(name).await?;
        let state = RecordState::of(&held.cell.state.lock());
        Ok(state)
    }

    /// Ends a subscription. Returns whether there was one.
    pub async fn unsubscribe(&self, subscriber_id: u64, name: &str) -> Result<bool, EngineError> {
        validate_name(name)?;
        let held = self.acquire(name);
        let mut st = held.cell.state.lock();
        let before = st.subscribers.len();
        st.subscribers.retain(|s| s.id() != subscriber_id);
        let was = st.subscribers.len() != before;
        if was && st.subscribers.is_empty() {
            self.listening.unsubscribed(&held.cell.name);
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
    pub async fn head(&self, name: &str) -> Result<Option<EngineVersion>, EngineError> {
        Ok(self.read(name).await?.map(|s| s.version))
    }

    /// Applies `request` to `name` (its writer, the subscriber `request.writer`, does not
    /// receive its own write back). `done` is called exactly once: after the durable
    /// commit, or as soon as the write is refused.
    pub async fn write(&self, name: &str, request: WriteRequest, done: WriteDone) {
        let write = PendingWrite {
            seq: None,
            request,
            done,
            lost: 0,
            reloaded: false,
        };
        self.write_attempt(name, write, None).await;
    }

    /// Deletes the record: a journaled op, after which the record does not exist and its
    /// history stays readable (a re-create continues its versions). Every subscriber but
    /// `deleter` is told, and all subscriptions end. Deleting a record that does not
    /// exist succeeds, as in deepstream, and journals nothing. `author` is the deleting
    /// user's id, kept in the journal.
    pub async fn delete(
        &self,
        deleter: u64,
        author: Option<Arc<str>>,
        name: &str,
        done: WriteDone,
    ) {
        self.delete_now(deleter, author, None, None, name, done, None)
            .await;
    }

    /// [`Engine::delete`] of the record at engine version `version` only: a conditional
    /// delete (HTTP's `If-Match`). When the record is at another version it is refused
    /// with [`WriteFailure::VersionExists`](crate::WriteFailure::VersionExists) and the
    /// current state, and when it does not exist with
    /// [`WriteFailure::Missing`](crate::WriteFailure::Missing); nothing is deleted.
    pub async fn delete_at(
        &self,
        deleter: u64,
        author: Option<Arc<str>>,
        name: &str,
        version: u64,
        done: WriteDone,
    ) {
        self.delete_now(deleter, author, None, Some(version), name, done, None)
            .await;
    }

    /// [`Engine::delete`] of the client op `origin` (ShareDB's `src`, `seq`), journaled
    /// and published with it. Unlike deepstream's, such a delete of a missing record is a
    /// version too, as in ShareDB (whose del of a never-created document makes v1): its
    /// tombstone is journaled where the record's next life would have begun, and `done`
    /// is answered with that version (created there) rather than the life it deleted.
    pub async fn delete_op(
        &self,
        deleter: u64,
        author: Option<Arc<str>>,
        origin: Origin,
        name: &str,
        done: WriteDone,
    ) {
        self.delete_now(deleter, author, Some(origin), None, name, done, None)
            .await;
    }

    /// From now on, `watcher` hears of every change to a record of `collection` (the
    /// records named `collection/...`) that this node commits or hears of from another
    /// node, whether or not the record is subscribed to (see [`Watcher`]).
    pub fn watch(&self, collection: &str, watcher: Arc<dyn Watcher>) {
        self.watchers.add(collection, watcher);
    }

    /// Ends a [`watch`](Self::watch). Returns whether there was one.
    pub fn unwatch(&self, collection: &str, watcher_id: u64) -> bool {
        self.watchers.remove(collection, watcher_id)
    }

    /// Answers a ShareDB-style query over `collection` from the store (committed state:
    /// every change published to subscribers or watchers is in it). See
    /// [`Store::query`](recordsync_store::Store::query).
    pub async fn query(
        &self,
        collection: &str,
        query: &recordsync_core::query::Query,
    ) -> Result<recordsync_core::query::Selection<recordsync_store::StoredRecord>, EngineError>
    {
        metrics::counter!("recordsync_query_reads_total").increment(1);
        self.store
            .query(collection, query)
            .await
            .map_err(read_failed("query"))
    }

    /// A page of the live records whose names start with `prefix`, after `after`, in name
    /// order, at most `limit` (see [`Store::list`](recordsync_store::Store::list)): the
    /// committed state, as for [`query`](Self::query). Hosts list through the engine, as
    /// they read through it, and never hold the store.
    pub async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<recordsync_store::StoredRecord>, EngineError> {
        self.store
            .list(prefix, after, limit)
            .await
            .map_err(read_failed("list"))
    }

    /// Every record whose name starts with `prefix`, tombstones too, with its kept
    /// history when `history`, read in one snapshot of the store (see
    /// [`Store::export`](recordsync_store::Store::export)): the committed state, as for
    /// [`list`](Self::list), for a backup taken through a running server.
    pub async fn export(
        &self,
        prefix: &str,
        history: bool,
    ) -> Result<
        tokio::sync::mpsc::Receiver<Result<recordsync_store::RecordDump, StoreError>>,
        EngineError,
    > {
        self.store
            .export(prefix, history)
            .await
            .map_err(read_failed("export"))
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

    /// A weak self-reference for committer callbacks, which may outlive a request.
    pub(crate) fn self_ref(&self) -> Option<Arc<Engine>> {
        self.me.upgrade()
    }
}
