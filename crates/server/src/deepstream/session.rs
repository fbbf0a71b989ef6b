//! One deepstream client connection as the engine sees it: a subscriber (of records and
//! of events) with an outbox.

use std::sync::Arc;

use bytes::Bytes;

use recordsync_deepstream_protocol::{
    EventAction, EventMessage, Message, RecordAction, RecordMessage, binary, json,
};

use crate::net::outbox::Outbox;
use crate::telemetry::cached_counter;
use crate::websocket::{self, Kind};
use recordsync_core::json0::{Action, Component, Step};
use recordsync_core::{JournalOp, WriteOp};
use recordsync_engine::{
    Emission, EngineVersion, EventKind, EventSubscriber, FrameFormat, RecordEvent, Subscriber,
};
use serde_json::Value;

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
        let message = message.into();
        messages_out(&message).increment(1);
        self.outbox.push(self.transport.encode(&message));
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
            cached_counter!("recordsync_messages_out_total", "protocol" => "deepstream", "kind" => "update")
                .increment(1);
            self.outbox.push(frame);
        }
    }
}

impl EventSubscriber for Session {
    fn id(&self) -> u64 {
        self.id
    }

    /// EVENT EMIT `{name, data}`, the payload as the emitter sent it; encoded once per
    /// transport however many subscribers receive it.
    fn deliver_event(&self, event: &Arc<Emission>) {
        let transport = self.transport;
        let frame = event.frame(transport.frame_format(), |event| {
            transport.encode(&Message::Event(EventMessage {
                data: event.data.as_deref().map(str::to_owned),
                ..EventMessage::named(EventAction::Emit, &*event.name)
            }))
        });
        cached_counter!("recordsync_messages_out_total", "protocol" => "deepstream", "kind" => "event")
            .increment(1);
        self.outbox.push(frame);
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
                // A json0 op (a ShareDB client's) that changes one place a deepstream
                // path can name goes out as a PATCH of that place, its value after the op
                // (an `od` alone as an erase's PATCH without data).
                Some(JournalOp::Json0 { ops }) if let Some(patch) = json0_patch(ops, value) => {
                    (RecordAction::Patch, Some(patch.path), patch.data)
                }
                // Everything else goes out whole (json0 ops that change more than one
                // place, or shift list items, too). A PATCH_MULTI too: deepstream's SDKs
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

/// A json0 op as a deepstream PATCH: its path, and the value there after the op
/// (`None`: removed).
struct Json0Patch {
    path: String,
    data: Option<String>,
}

/// The PATCH with the effect of json0 op `ops` on a record whose value after it is
/// `after` (JSON text), if there is one: the op is one component that sets, replaces,
/// removes or edits (a number added, a string edited) the value at a path of keys and
/// indices that deepstream's path syntax can write. Inserting, deleting or moving list
/// items shifts the items after them, which no path write does: those go out whole.
fn json0_patch(ops: &[Component], after: &str) -> Option<Json0Patch> {
    let [component] = ops else {
        return None;
    };
    let steps = component.path();
    let (steps, removes) = match component.action() {
        Action::ObjectInsert(_)
        | Action::ObjectReplace { .. }
        | Action::ListReplace { .. }
        | Action::NumberAdd(_)
        | Action::Text(_) => (steps, false),
        Action::ObjectDelete(_) => (steps, true),
        // The last step is the offset into the string at the path before it.
        Action::StringInsert(_) | Action::StringDelete(_) => (steps.split_last()?.1, false),
        _ => return None,
    };
    let mut path = String::new();
    for step in steps {
        match step {
            Step::Key(key) if writable_key(key) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Step::Index(i) if !path.is_empty() => path.push_str(&format!("[{i}]")),
            _ => return None,
        }
    }
    if path.is_empty() {
        return None;
    }
    let data = if removes {
        None
    } else {
        let after: Value = recordsync_core::json::parse(after).ok()?;
        let mut node = &after;
        for step in steps {
            node = match step {
                Step::Key(key) => node.get(key.as_str())?,
                Step::Index(i) => node.get(*i)?,
            };
        }
        Some(node.to_string())
    };
    Some(Json0Patch { path, data })
}

/// Whether deepstream's path syntax reads `key` back as this key: no separators or
/// brackets, nothing its trimming would change, not a key it refuses, and not digits
/// (which it reads as an array index when the container is a list).
fn writable_key(key: &str) -> bool {
    !key.is_empty()
        && !key.contains(['.', '[', ']'])
        && key.trim() == key
        && !key.bytes().all(|b| b.is_ascii_digit())
        && !matches!(key, "__proto__" | "constructor" | "prototype")
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

/// The `recordsync_messages_out_total` counter of a message's topic (record events are
/// counted apart, as `update`, and emitted events as `event`, where they are delivered).
fn messages_out(message: &Message) -> &'static metrics::Counter {
    macro_rules! kind {
        ($kind:literal) => {
            cached_counter!("recordsync_messages_out_total", "protocol" => "deepstream", "kind" => $kind)
        };
    }
    match message {
        Message::Connection(_) => kind!("connection"),
        Message::Auth(_) => kind!("auth"),
        Message::Record(_) => kind!("record"),
        Message::Event(_) => kind!("event"),
        Message::Parser(_) => kind!("parser"),
        Message::Other { .. } => kind!("other"),
    }
}

/// The `recordsync_messages_in_total` counter of a message's topic.
pub(crate) fn messages_in(message: &Message) -> &'static metrics::Counter {
    macro_rules! kind {
        ($kind:literal) => {
            cached_counter!("recordsync_messages_in_total", "protocol" => "deepstream", "kind" => $kind)
        };
    }
    match message {
        Message::Connection(_) => kind!("connection"),
        Message::Auth(_) => kind!("auth"),
        Message::Record(_) => kind!("record"),
        Message::Event(_) => kind!("event"),
        Message::Parser(_) => kind!("parser"),
        Message::Other { .. } => kind!("other"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn patch(op: Value, after: Value) -> Option<(String, Option<Value>)> {
        let ops = recordsync_core::json0::op_from_json(&op).unwrap();
        json0_patch(&ops, &after.to_string())
            .map(|p| (p.path, p.data.map(|d| serde_json::from_str(&d).unwrap())))
    }

    #[test]
    fn a_json0_op_on_one_place_is_a_patch_of_it() {
        let after = json!({"a": {"b": [10, "xy", 3]}, "n": 5, "odd.key": 1, "7": 0});
        let cases = [
            (json!([{"p": ["n"], "na": 2}]), Some(("n", Some(json!(5))))),
            (
                json!([{"p": ["a", "b", 1, 1], "si": "y"}]),
                Some(("a.b[1]", Some(json!("xy")))),
            ),
            (
                json!([{"p": ["a", "b", 0], "ld": 9, "li": 10}]),
                Some(("a.b[0]", Some(json!(10)))),
            ),
            (json!([{"p": ["a", "c"], "od": 1}]), Some(("a.c", None))),
            (
                json!([{"p": ["a"], "oi": {"b": [10, "xy", 3]}}]),
                Some(("a", Some(json!({"b": [10, "xy", 3]})))),
            ),
            // Shifting list items, the root, two components, or keys deepstream cannot
            // write: the whole value goes out instead.
            (json!([{"p": ["a", "b", 0], "li": 10}]), None),
            (json!([{"p": [], "oi": {}}]), None),
            (json!([{"p": ["n"], "na": 1}, {"p": ["n"], "na": 1}]), None),
            (json!([{"p": ["odd.key"], "oi": 1}]), None),
            (json!([{"p": ["7"], "oi": 0}]), None),
        ];
        for (op, expected) in cases {
            let expected = expected.map(|(p, d): (&str, Option<Value>)| (p.to_owned(), d));
            assert_eq!(patch(op.clone(), after.clone()), expected, "{op}");
        }
    }
}
