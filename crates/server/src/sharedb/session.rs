//! One ShareDB connection as the engine sees it: a subscriber with an outbox, whose
//! events are encoded as ShareDB `op` messages once per event (the engine's frame cache,
//! slot [`SHAREDB_FRAMES`]), however many ShareDB subscribers receive them.
//!
//! A subscription made from a version first sends the ops the client missed, read from
//! the journal, and only then the ops committed since it was registered: while it
//! catches up, this document's events are held here ([`Session::catch_up`]) and
//! released after the journal's ops ([`Session::caught_up`]), so the client sees every
//! version once, in order.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::Value;
use serde_json::value::RawValue;

use recordsync_core::{JournalOp, json, json0};
use recordsync_engine::{EventKind, FrameFormat, RecordEvent, Subscriber};
use recordsync_sharedb_protocol::{OpMessage, Reply, SentOpBody};

use super::doc::document;
use crate::net::outbox::Outbox;
use crate::telemetry::cached_counter;
use crate::websocket::{self, Kind};

/// The engine's frame cache slot of ShareDB's wire (deepstream's two transports use 0
/// and 1).
pub const SHAREDB_FRAMES: FrameFormat = FrameFormat::slot(2);

pub struct Session {
    pub id: u64,
    pub outbox: Outbox,
    /// Events held for documents whose subscription is catching up, by record name.
    held: Mutex<HashMap<Arc<str>, Vec<Bytes>>>,
    /// How many documents are catching up: while none, delivering takes no lock.
    catching_up: AtomicUsize,
}

impl Session {
    pub fn new(id: u64, outbox: Outbox) -> Session {
        Session {
            id,
            outbox,
            held: Mutex::new(HashMap::new()),
            catching_up: AtomicUsize::new(0),
        }
    }

    /// Sends one message (its JSON text) as a text frame.
    pub fn send_text(&self, text: &str) {
        cached_counter!("recordsync_messages_out_total", "protocol" => "sharedb", "kind" => "reply")
            .increment(1);
        self.outbox
            .push(websocket::frame(Kind::Text, text.as_bytes()));
    }

    pub fn send(&self, reply: &Reply<'_>) {
        self.send_text(&reply.to_text());
    }

    /// From now on, events of `name` are held until [`Session::caught_up`].
    pub fn catch_up(&self, name: &str) {
        let mut held = self.held.lock();
        if held.insert(Arc::from(name), Vec::new()).is_none() {
            self.catching_up.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Stops holding the events of `name`, and sends those held since
    /// [`Session::catch_up`] (or, with `send` false, drops them: the subscription failed).
    pub fn caught_up(&self, name: &str, send: bool) {
        let mut held = self.held.lock();
        if let Some(frames) = held.remove(name) {
            self.catching_up.fetch_sub(1, Ordering::AcqRel);
            if send {
                for frame in frames {
                    updates_out().increment(1);
                    self.outbox.push(frame);
                }
            }
        }
    }
}

impl Subscriber for Session {
    fn id(&self) -> u64 {
        self.id
    }

    fn deliver(&self, event: &Arc<RecordEvent>) {
        let frame = event.frame(SHAREDB_FRAMES, encode);
        if frame.is_empty() {
            return;
        }
        if self.catching_up.load(Ordering::Acquire) > 0 {
            let mut held = self.held.lock();
            if let Some(frames) = held.get_mut(&*event.name) {
                frames.push(frame);
                return;
            }
        }
        updates_out().increment(1);
        self.outbox.push(frame);
    }

    /// A ShareDB subscription follows its document through deletes and re-creates.
    fn survives_delete(&self) -> bool {
        true
    }
}

/// An event as a ShareDB `op` frame; empty when ShareDB's wire shows nothing of it (a
/// provider change, a record that is no document, a change without its op).
fn encode(event: &RecordEvent) -> Bytes {
    let Some((c, d)) = document(&event.name) else {
        return Bytes::new();
    };
    let text = match &event.kind {
        EventKind::Changed {
            version,
            op: Some(op),
            value,
            before,
        } => match op_body(op, value, before.as_deref()) {
            Some(Body::Create(data)) => {
                op_text(event, c, d, version.version, SentOpBody::Create(data))
            }
            Some(Body::Edit(edit)) => {
                op_text(event, c, d, version.version, SentOpBody::Edit(&edit))
            }
            Some(Body::Delete) => op_text(event, c, d, version.version, SentOpBody::Delete),
            None => {
                tracing::warn!(record = %event.name, "a change could not be shown to ShareDB clients");
                return Bytes::new();
            }
        },
        EventKind::Deleted { tomb: Some(tomb) } => op_text(event, c, d, *tomb, SentOpBody::Delete),
        // A jump (this node reloaded the record after missing changes) carries no op. The
        // client is told of a version beyond its own with an empty op: ShareDB's client
        // fetches the document when an op arrives for a version after the one it has, and
        // applies nothing of it (`Doc._handleOp`). Every subscriber is behind the jump
        // (they hold versions before it), so none applies the empty op.
        EventKind::Changed {
            op: None, version, ..
        } => op_text(
            event,
            c,
            d,
            version.version + 1,
            SentOpBody::Edit(&Value::Array(Vec::new())),
        ),
        EventKind::Deleted { tomb: None } => {
            tracing::debug!(record = %event.name, "a change without its op is not sent to ShareDB clients");
            return Bytes::new();
        }
        EventKind::Provider(_) => return Bytes::new(),
    };
    websocket::frame(Kind::Text, text.as_bytes())
}

/// The `op` message of `event`, naming the client op it was (`src`, `seq`) when its
/// writer named one: ShareDB's client tells its own ops from others' by them.
fn op_text(event: &RecordEvent, c: &str, d: &str, v: u64, body: SentOpBody<'_>) -> String {
    Reply::Op(OpMessage {
        c,
        d,
        v,
        src: event.origin.as_ref().map(|o| o.src.as_str()),
        seq: event.origin.as_ref().map(|o| o.seq),
        body,
    })
    .to_text()
}

enum Body<'a> {
    Create(&'a RawValue),
    Edit(Value),
    Delete,
}

/// A journal op as ShareDB's op body: a create with its value (`value`, the JSON text
/// after it), a json0 op as it is, a path write as the json0 op with the same effect on
/// `before`.
fn op_body<'a>(op: &JournalOp, value: &'a str, before: Option<&str>) -> Option<Body<'a>> {
    Some(match op {
        JournalOp::Create { .. } => Body::Create(super::doc::raw(value)?),
        JournalOp::Json0 { ops } => Body::Edit(json0::op_to_json(ops)),
        JournalOp::Write(write) => {
            let before: Value = json::parse(before?).ok()?;
            Body::Edit(json0::op_to_json(&write.to_json0(&before)))
        }
        JournalOp::Delete => Body::Delete,
    })
}

/// The `recordsync_messages_out_total` counter of ShareDB's change events.
fn updates_out() -> &'static metrics::Counter {
    cached_counter!("recordsync_messages_out_total", "protocol" => "sharedb", "kind" => "update")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use recordsync_core::WriteOp;
    use recordsync_engine::EngineVersion;

    use super::*;

    fn text(frame: &Bytes) -> Option<Value> {
        // A server frame of a short text: 0x81, the length, the payload.
        if frame.is_empty() {
            return None;
        }
        let payload = frame.get(2..).expect("a header");
        Some(serde_json::from_slice(payload).expect("JSON"))
    }

    fn changed(
        name: &str,
        version: u64,
        op: JournalOp,
        value: &str,
        before: Option<&str>,
    ) -> Bytes {
        let event = RecordEvent::new(
            Arc::from(name),
            EventKind::Changed {
                version: EngineVersion::new(version, 0),
                op: Some(Arc::new(op)),
                value: Arc::from(value),
                before: before.map(Arc::from),
            },
        );
        encode(&event)
    }

    #[test]
    fn every_journaled_change_is_an_op_at_its_engine_version() {
        let patch = JournalOp::Write(WriteOp::Patch {
            path: "a".into(),
            data: json!(2),
        });
        assert_eq!(
            text(&changed("c/d", 3, patch, r#"{"a":2}"#, Some(r#"{"a":1}"#))),
            Some(
                json!({"a": "op", "c": "c", "d": "d", "v": 3, "op": [{"p": ["a"], "od": 1, "oi": 2}]})
            )
        );
        let create = JournalOp::Create {
            data: json!({"x": 1.50}),
        };
        let frame = changed("c/d/e", 0, create, r#"{"x":1.50}"#, None);
        let sent = String::from_utf8(frame[2..].to_vec()).unwrap();
        assert!(
            sent.contains(r#""d":"d/e""#),
            "split at the first slash: {sent}"
        );
        assert!(
            sent.contains(r#""data":{"x":1.50}"#),
            "the value as stored: {sent}"
        );
        let deleted = RecordEvent::new(Arc::from("c/d"), EventKind::Deleted { tomb: Some(7) });
        assert_eq!(
            text(&encode(&deleted)),
            Some(json!({"a": "op", "c": "c", "d": "d", "v": 7, "del": true}))
        );
    }

    #[test]
    fn what_sharedb_cannot_show_is_no_frame() {
        let patch = || {
            JournalOp::Write(WriteOp::Patch {
                path: "a".into(),
                data: json!(2),
            })
        };
        // Not a document's record, or a path write without the value it applied to.
        assert_eq!(text(&changed("plain", 1, patch(), "{}", Some("{}"))), None);
        let jump = RecordEvent::new(
            Arc::from("c/d"),
            EventKind::Changed {
                version: EngineVersion::new(5, 0),
                op: None,
                value: Arc::from("{}"),
                before: None,
            },
        );
        // A jump: an op for a version beyond any the client has, which makes it fetch.
        assert_eq!(
            text(&encode(&jump)),
            Some(json!({"a": "op", "c": "c", "d": "d", "v": 6, "op": []}))
        );
        assert_eq!(text(&changed("c/d", 1, patch(), "{}", None)), None);
        let provider = RecordEvent::new(Arc::from("c/d"), EventKind::Provider(true));
        assert_eq!(text(&encode(&provider)), None);
        let unknown = RecordEvent::new(Arc::from("c/d"), EventKind::Deleted { tomb: None });
        assert_eq!(text(&encode(&unknown)), None);
    }
}
