//! What the engine tells subscribers, and the per-protocol frame cache that lets one
//! event be encoded once per protocol however many subscribers receive it.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use recordsync_core::JournalOp;
use recordsync_store::Origin;

use crate::versions::EngineVersion;

/// A change to a record, as subscribers see it.
#[derive(Debug)]
pub struct RecordEvent {
    pub name: Arc<str>,
    pub kind: EventKind,
    /// The client op this event is (ShareDB's `src` and `seq`), when its writer named one
    /// and this node committed it: ShareDB's subscribers are told whose op it was.
    pub origin: Option<Origin>,
    frames: [OnceLock<Bytes>; FrameFormat::SLOTS],
}

#[derive(Debug, Clone)]
pub enum EventKind {
    /// A write was committed and produced `version`; the record's value is now `value`
    /// (JSON text). `op` is the op as the writer sent it, for a front door to render in
    /// the form its wire can express (a patch as a patch, a json0 op as json0); `None`
    /// when the value jumped (reloaded from the store after this node missed changes:
    /// the ops between are in the journal).
    ///
    /// Every journal entry is one event, a record's create too: `op` is then
    /// [`JournalOp::Create`] and `version` the create's (a write to a missing record,
    /// which journals its create with it, is published as the create's event and then
    /// the write's). So a front door that replays history (ShareDB) sees each version.
    Changed {
        version: EngineVersion,
        op: Option<Arc<JournalOp>>,
        value: Arc<str>,
        /// The value `op` was applied to (JSON text), for front doors that render a path
        /// write as the json0 op with the same effect (which depends on it); `None` for a
        /// create or a jump. Shared with the record's previous state, never copied.
        before: Option<Arc<str>>,
    },
    /// The record was deleted (`tomb`: its tombstone's engine version, when known).
    /// Subscriptions end, except those of subscribers that
    /// [survive deletes](Subscriber::survives_delete).
    Deleted { tomb: Option<u64> },
    /// The record gained (`true`) or lost (`false`) an active provider.
    Provider(bool),
}

/// One wire encoding of events, chosen by a front door: each event has one cache slot per
/// format, filled the first time a subscriber of that format needs it, so that a change
/// fanned out to N subscribers is encoded once per format (not once per subscriber).
///
/// The engine knows no wire format: each front door names its formats with slots of its
/// own (deepstream: binary and JSON), below [`FrameFormat::SLOTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameFormat(usize);

impl FrameFormat {
    /// How many formats the front doors of one process may use in all.
    pub const SLOTS: usize = 4;

    /// The format in cache slot `slot`.
    ///
    /// # Panics
    /// At compile time (in a `const`) or at once, if `slot` is not below [`Self::SLOTS`].
    pub const fn slot(slot: usize) -> FrameFormat {
        assert!(
            slot < Self::SLOTS,
            "a frame format slot is below FrameFormat::SLOTS"
        );
        FrameFormat(slot)
    }

    /// The format's cache slot.
    pub(crate) fn index(self) -> usize {
        self.0
    }
}

impl RecordEvent {
    pub fn new(name: Arc<str>, kind: EventKind) -> Arc<Self> {
        RecordEvent::with_origin(name, kind, None)
    }

    /// An event of the client op `origin`.
    pub fn with_origin(name: Arc<str>, kind: EventKind, origin: Option<Origin>) -> Arc<Self> {
        Arc::new(RecordEvent {
            name,
            kind,
            origin,
            frames: Default::default(),
        })
    }

    /// The event encoded in `format` (for a WebSocket front door, a complete frame),
    /// encoding it with `encode` the first time only.
    pub fn frame(&self, format: FrameFormat, encode: impl FnOnce(&RecordEvent) -> Bytes) -> Bytes {
        self.frames[format.0].get_or_init(|| encode(self)).clone()
    }
}

/// Anything that receives record events: a client session of some protocol.
pub trait Subscriber: Send + Sync {
    /// Unique among live subscribers; used to skip a writer's own echo and to find a
    /// subscription again on unsubscribe.
    fn id(&self) -> u64;

    /// Queues the event for the client. Must not block: a subscriber whose queue is full
    /// is disconnected rather than slowing the writer or other subscribers.
    fn deliver(&self, event: &Arc<RecordEvent>);

    /// Whether the subscription outlives a delete of the record, to hear of its re-create
    /// (ShareDB: a document's subscription follows it through deletes). deepstream's end
    /// with the record, so the default is `false`.
    fn survives_delete(&self) -> bool {
        false
    }
}
