//! recordsync's engine: every record semantic, once, for every protocol.
//!
//! Front doors (deepstream today; ShareDB, HTTP and others to come) turn wire messages
//! into calls on [`Engine`] and turn [`RecordEvent`]s and call results back into wire
//! messages. The engine does no networking and knows no wire format: it depends on the
//! core (records, paths, ops, listen registry), a [`recordsync_store::Store`] and, in a
//! cluster, a [`recordsync_bus::Bus`]. It guarantees, per record:
//! - writes are checked and applied strictly in arrival order (the cell lock), also when
//!   some must be tried again after losing a race to another node (`retry`);
//! - a write is acknowledged, and published to subscribers, only after the store has
//!   committed it durably (the group committer calls back in submission order, so
//!   subscribers see versions in order);
//! - a new subscriber sees exactly the committed versions after the one it was sent;
//! - every write is answered exactly once ([`WriteDone`]);
//! - versions never go back: every op, a create and a delete too, is journaled with the
//!   next version, and history stays readable across deletes ([`EngineVersion`] maps each
//!   protocol's versions onto the engine's).
//!
//! Crate map (every module but `listen` is private; the `pub use` block below is the
//! public surface):
//! - `engine`     — [`Engine`], the API front doors call; [`Snapshot`], [`RecordState`].
//! - `create`     — [`CreateRequest`]: a record created with a value of its own (ShareDB).
//! - `write`      — the write pipeline: check, submit, and the commit callback that
//!   publishes and answers.
//! - `history`    — reading a record's past: journal ranges, values at a version or time
//!   ([`PastValue`]).
//! - `transform`  — stale json0 writes transformed against the ops since their base.
//! - `reconcile`  — other nodes' writes applied here, and refetches from the store.
//! - `catch_up`   — a gap healed with the missed ops from the journal, not a jump.
//! - `cells`      — the table of records held in memory: load, hold, evict.
//! - `cell`       — one record's in-memory state.
//! - `retry`      — writes that lost a race to another node, tried again in order.
//! - `request`    — [`WriteRequest`]: a write's op, [`Base`], [`OnStale`] policy, author
//!   and origin.
//! - `versions`   — [`EngineVersion`]: versions across deletes, and each protocol's view
//!   (the mapping is documented there and on [`EngineVersion`]).
//! - `journal`    — the create and delete entries of a record's journal.
//! - `event`      — what subscribers get ([`RecordEvent`], [`EventKind`], [`Subscriber`]),
//!   encoded once per wire format ([`FrameFormat`]).
//! - `write_done` — [`WriteDone`]: every write is answered exactly once.
//! - `error`      — what can go wrong: [`EngineError`], [`WriteFailure`].
//! - `clock`      — [`now_ms`].
//! - [`listen`]   — active providers (deepstream's listening) of records and of events
//!   ([`listen::ListenTopic`]), on one node or a cluster.
//! - `pubsub`     — events (deepstream's publish/subscribe): [`Engine::emit`] to every
//!   subscriber of a name but the emitter ([`EventSubscriber`], [`Emission`]), across
//!   the cluster over the bus; not stored.
//! - `watch`      — [`Watcher`]: following every change to a collection's records, on
//!   this node and others (ShareDB's live queries).
//! - `cluster`    — the bus side of a cluster: announcements and refetch requests.

mod catch_up;
mod cell;
mod cells;
mod clock;
mod cluster;
mod create;
mod engine;
mod error;
mod event;
mod history;
mod journal;
// `listen` stays a public module: it is a runtime of its own ([`listen::Listening`], the
// [`listen::Provider`] a front door implements for each listening connection, and its
// cluster timing), whose names read as what they are only qualified.
pub mod listen;
mod pubsub;
mod reconcile;
mod request;
mod retry;
mod transform;
mod versions;
mod watch;
mod write;
mod write_done;

pub use clock::now_ms;
pub use create::CreateRequest;
pub use engine::{Engine, RecordState, Snapshot};
pub use error::{EngineError, WriteFailure};
pub use event::{EventKind, FrameFormat, RecordEvent, Subscriber};
pub use history::PastValue;
pub use pubsub::{Emission, EventSubscriber};
pub use request::{Base, OnStale, WriteRequest};
pub use versions::EngineVersion;
pub use watch::Watcher;
pub use write_done::WriteDone;
