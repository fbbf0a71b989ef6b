//! One deepstream client connection as the engine sees it: a subscriber with an outbox.

use std::sync::Arc;

use bytes::Bytes;

use recordsync_deepstream_protocol::{Message, RecordAction, RecordMessage, binary, json};

use crate::net::outbox::Outbox;
use crate::websocket::{self, Kind};
use recordsync_core::{JournalOp, WriteOp};
use recordsync_engine::{EngineVersion, EventKind, FrameFormat, RecordEvent, Subscriber};

/// Which deepstream transport a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Protobuf frames (`/deepstream`), what the JS client uses by default.
    Binary,
    /// JSON text frames (`/deepstream-json`).
    Json,
}

/// The engine's frame cache slots of deepstream's two transports: an event fanned out to
/// a thousand subscribers is encoded once for each.
const BINARY_FRAMES: FrameFormat = FrameFormat::slot(0);
const JSON_FRAMES: FrameFormat = FrameFormat::slot(1);

impl Transport {
    /// `message` as a complete WebSocket frame of this transport.
    pub fn encode(self, message: &Message) -> Bytes {
        match self {
            Transport::Binary => websocket::frame(Kind::Binary, &binary::encode(message)),
            Transport::Json => websocket::frame(Kind::Text, json::encode(message).as_bytes()),
        }
    }

    fn frame_format(self) -> FrameFormat {
        match self {
            Transport::Binary => BINARY_FRAMES,
            Transport::Json => JSON_FRAMES,
        }
    }
}

pub struct Session {
    pub id: u64,
    pub transport: Transport,
    pub outbox: Outbox,
}

impl Session {
    pub fn send(&self, message: impl Into<Message>) {
        self.outbox.push(self.transport.encode(&message.into()));
    }
}

impl Subscriber for Session {
    fn id(&self) -> u64 {
        self.id
    }

    fn deliver(&self, event: &Arc<RecordEvent>) {
        let transport = self.transport;
        let frame = event.frame(transport.frame_format(), |event| {
            event_message(event).map_or_else(Bytes::new, |m| transport.encode(&Message::Record(m)))
        });
        // An event deepstream's wire does not show is cached as no bytes.
        if !frame.is_empty() {
            self.outbox.push(frame);
        }
    }
}

/// The deepstream message a subscriber receives for an engine event, if any.
///
/// A create of `{}` is not shown: that is how deepstream's records begin (a subscribe, or
/// a first write, which follows as its own event), and a deepstream client holds a
/// missing record as `{}` already. A create with data (a ShareDB client's) is shown as
/// an UPDATE to version 0, what a deepstream client would see of a record set whole.
pub fn event_message(event: &RecordEvent) -> Option<RecordMessage> {
    let name = event.name.to_string();
    Some(match &event.kind {
        EventKind::Changed { op: Some(op), .. } if is_empty_create(op) => return None,
        EventKind::Changed {
            version, op, value, ..
        } => {
            let (action, path, data) = match op.as_deref() {
                Some(JournalOp::Write(WriteOp::Patch { path, data })) => (
                    RecordAction::Patch,
                    Some(path.clone()),
                    Some(data.to_string()),
                ),
                // deepstream fans an ERASE out as a PATCH without data, and the JS client
                // depends on it: a change whose version the client has already used (its
                // own write lost the race) makes it READ the record after a PATCH, but
                // merge an ERASE as if it carried the whole record, which an erase does
                // not, leaving the client with no data and deaf to its VERSION_EXISTS.
                Some(JournalOp::Write(WriteOp::Erase { path })) => {
                    (RecordAction::Patch, Some(path.clone()), None)
                }
                // Everything else goes out whole. A PATCH_MULTI too: deepstream's SDKs
                // (the JS client 7.0.5 among them) do not know the action and drop it, so
                // a subscriber would keep the old value until some later change made it
                // re-read. deepstream's wire has no json0; a reload has no op.
                _ => (RecordAction::Update, None, Some(value.to_string())),
            };
            RecordMessage {
                path,
                data,
                version: Some(version_on_wire(*version)),
                ..RecordMessage::named(action, name)
            }
        }
        EventKind::Deleted { .. } => RecordMessage::named(RecordAction::Deleted, name),
        EventKind::Provider(true) => {
            RecordMessage::named(RecordAction::SubscriptionHasProvider, name)
        }
        EventKind::Provider(false) => {
            RecordMessage::named(RecordAction::SubscriptionHasNoProvider, name)
        }
    })
}

/// Whether `op` creates the record as `{}`.
fn is_empty_create(op: &JournalOp) -> bool {
    matches!(op, JournalOp::Create { data } if data.as_object().is_some_and(|o| o.is_empty()))
}

/// deepstream's version of `version`: counted in the record's current life (see
/// `recordsync_engine::EngineVersion`), an int32 on the wire.
pub fn version_on_wire(version: EngineVersion) -> i32 {
    i32::try_from(version.in_life()).unwrap_or(i32::MAX)
}
