//! What the server sends, as serde types written the way ShareDB's server writes them
//! (`lib/agent.js`): a reply copies the request's action `a`, and the request's `id` if
//! it had one, otherwise its `c` and `d` (and, for a bulk reply without data, its `b`).
//!
//! Values a document holds are borrowed as [`RawValue`]s: the server keeps them as JSON
//! text, and they go out as they are, numbers and key order as written.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::ShareDbError;
use crate::types::{JSON0_URI, PROTOCOL_MAJOR, PROTOCOL_MINOR};

/// Every reply this crate writes.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Reply<'a> {
    Doc(DocReply<'a>),
    Bulk(BulkReply<'a>),
    Op(OpMessage<'a>),
    Ack(Ack<'a>),
    Snapshot(SnapshotReply<'a>),
}

impl Reply<'_> {
    /// The reply as the text of one frame.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("replies are JSON values under string keys")
    }
}

#[derive(Serialize)]
struct Init<'a> {
    a: &'static str,
    protocol: u64,
    #[serde(rename = "protocolMinor")]
    protocol_minor: u64,
    id: &'a str,
    #[serde(rename = "type")]
    ty: &'static str,
}

fn init(a: &'static str, src: &str) -> String {
    let init = Init {
        a,
        protocol: PROTOCOL_MAJOR,
        protocol_minor: PROTOCOL_MINOR,
        id: src,
        ty: JSON0_URI,
    };
    serde_json::to_string(&init).expect("strings and numbers")
}

/// `init`, sent as soon as a connection opens; `src` is the id the server gives it.
pub fn init_message(src: &str) -> String {
    init("init", src)
}

/// The `hs` reply: the protocol, json0 as the default type, and the connection's `src`
/// (the one the client sent, if it sent one).
pub fn handshake_reply(src: &str) -> String {
    init("hs", src)
}

/// A document's snapshot in a fetch or subscribe reply: `{v, data}` for a json0
/// document (json0 is the default type, so its `type` is left out, as ShareDB does), or
/// `{v, type: null}` for one that does not exist (never created, or deleted).
#[derive(Debug, Clone, Copy)]
pub struct SnapshotData<'a> {
    pub v: u64,
    /// `None`: the document does not exist.
    pub data: Option<&'a RawValue>,
}

impl Serialize for SnapshotData<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("v", &self.v)?;
        match self.data {
            Some(data) => map.serialize_entry("data", data)?,
            None => map.serialize_entry("type", &Value::Null)?,
        }
        map.end()
    }
}

/// The reply to `f`, `s` or `u`: `{a, c, d}`, with the snapshot as `data` when one was
/// asked for (no version given).
#[derive(Debug, Clone, Serialize)]
pub struct DocReply<'a> {
    pub a: &'static str,
    pub c: &'a str,
    pub d: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<SnapshotData<'a>>,
}

/// One document's entry in a bulk reply: its snapshot, or why it could not be read.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum BulkEntry<'a> {
    Snapshot(SnapshotData<'a>),
    Error { error: ShareDbError },
}

/// The reply to `bf`, `bs` or `bu`: with ids (`b: [...]`) each document's snapshot in
/// `data` (`{id: snapshot or {error}}`); with versions (`b: {id: v}`) the ops were sent
/// before it and it echoes `b`.
#[derive(Debug, Clone, Serialize)]
pub struct BulkReply<'a> {
    pub a: &'static str,
    pub c: &'a str,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "entries")]
    pub data: Option<Vec<(&'a str, BulkEntry<'a>)>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b: Option<&'a Value>,
}

fn entries<S: Serializer>(
    data: &Option<Vec<(&str, BulkEntry<'_>)>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let entries = data.as_deref().unwrap_or_default();
    let mut map = serializer.serialize_map(Some(entries.len()))?;
    for (id, entry) in entries {
        map.serialize_entry(id, entry)?;
    }
    map.end()
}

/// What an op does, as an `op` message carries it.
#[derive(Debug, Clone, Copy)]
pub enum OpBody<'a> {
    /// `create: {type: json0's URI, data}`.
    Create(&'a RawValue),
    /// `op: [...]`, a json0 op.
    Edit(&'a Value),
    /// `del: true`.
    Delete,
}

/// An op sent to a client (a subscriber's update, or an op it missed): `{a: "op", c, d,
/// v, src, seq}` and its body. `v` is the version it applies to; `src` and `seq` are its
/// origin (absent for writes that did not come from a ShareDB client).
#[derive(Debug, Clone, Copy)]
pub struct OpMessage<'a> {
    pub c: &'a str,
    pub d: &'a str,
    pub v: u64,
    pub src: Option<&'a str>,
    pub seq: Option<u64>,
    pub body: OpBody<'a>,
}

#[derive(Serialize)]
struct Create<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    data: &'a RawValue,
}

impl Serialize for OpMessage<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("a", "op")?;
        map.serialize_entry("c", self.c)?;
        map.serialize_entry("d", self.d)?;
        map.serialize_entry("v", &self.v)?;
        if let Some(src) = self.src {
            map.serialize_entry("src", src)?;
        }
        if let Some(seq) = self.seq {
            map.serialize_entry("seq", &seq)?;
        }
        match self.body {
            OpBody::Create(data) => map.serialize_entry(
                "create",
                &Create {
                    ty: JSON0_URI,
                    data,
                },
            )?,
            OpBody::Edit(op) => map.serialize_entry("op", op)?,
            OpBody::Delete => map.serialize_entry("del", &true)?,
        }
        map.end()
    }
}

/// An op's acknowledgement: `{a: "op", c, d, src, seq, v}`, `v` the version the op was
/// applied to (after any transform).
#[derive(Debug, Clone, Serialize)]
pub struct Ack<'a> {
    pub a: &'static str,
    pub c: &'a str,
    pub d: &'a str,
    pub src: &'a str,
    pub seq: u64,
    pub v: u64,
}

impl<'a> Ack<'a> {
    pub fn new(c: &'a str, d: &'a str, src: &'a str, seq: u64, v: u64) -> Ack<'a> {
        Ack {
            a: "op",
            c,
            d,
            src,
            seq,
            v,
        }
    }
}

/// The reply to `nf` or `nt`: the snapshot at a version or time, `{a, id, v, type, data,
/// m}`; `type` is json0's URI, or null (and `data` absent) where the document did not
/// exist. `m` is null, as ShareDB's server sends it (the client reads no metadata here).
#[derive(Debug, Clone, Copy)]
pub struct SnapshotReply<'a> {
    pub a: &'static str,
    pub id: u64,
    pub v: u64,
    pub data: Option<&'a RawValue>,
}

impl Serialize for SnapshotReply<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("a", self.a)?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("v", &self.v)?;
        match self.data {
            Some(data) => {
                map.serialize_entry("type", JSON0_URI)?;
                map.serialize_entry("data", data)?;
            }
            None => map.serialize_entry("type", &Value::Null)?,
        }
        map.serialize_entry("m", &Value::Null)?;
        map.end()
    }
}

/// A presence as the server sends it: `{a: "p", ch, src, id, p, pv}`, and `c`, `d`, `v`
/// when the client sent them. It is at once the acknowledgement the sender gets (ShareDB
/// echoes the presence with `src` added) and what the channel's other subscribers get.
/// `p` null clears presence `id`. Absent fields stay absent, as ShareDB writes them.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PresenceReply<'a> {
    pub a: &'static str,
    pub ch: &'a str,
    pub src: &'a str,
    pub id: &'a str,
    pub p: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pv: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub c: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub d: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v: Option<u64>,
}

impl PresenceReply<'_> {
    /// The message as the text of one frame.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("presence messages are JSON values under string keys")
    }
}

/// `{a: "pr", ch}`: asks a subscriber of channel `ch` to send its presences again (a
/// newcomer subscribed, and learns the current values that way).
pub fn presence_request(ch: &str) -> String {
    serde_json::to_string(&serde_json::json!({"a": "pr", "ch": ch})).expect("a string")
}

/// The reply to `ps` or `pu` (`a`): `{a, ch, seq}`, `seq` as the client sent it.
pub fn presence_subscription_reply(a: &'static str, ch: &str, seq: Option<u64>) -> String {
    #[derive(Serialize)]
    struct Reply<'a> {
        a: &'static str,
        ch: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    }
    serde_json::to_string(&Reply { a, ch, seq }).expect("strings and numbers")
}

/// An error reply: the request as sent (`raw`, a JSON object) with `error` added, which
/// is how ShareDB answers every failed request. Without a request to echo (the frame was
/// not a JSON object), the reply is `{error}` alone.
pub fn error_reply(raw: Option<&Value>, error: &ShareDbError) -> String {
    let mut reply = match raw {
        Some(Value::Object(request)) => request.clone(),
        _ => serde_json::Map::new(),
    };
    reply.insert(
        "error".into(),
        serde_json::to_value(error).expect("two strings"),
    );
    Value::Object(reply).to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ErrorCode;

    fn raw(text: &str) -> &RawValue {
        serde_json::from_str(text).unwrap()
    }

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn handshake_names_protocol_json0_and_src() {
        assert_eq!(
            parse(&init_message("abc")),
            json!({"a": "init", "protocol": 1, "protocolMinor": 2, "id": "abc", "type": JSON0_URI})
        );
        assert_eq!(parse(&handshake_reply("abc"))["a"], "hs");
    }

    #[test]
    fn snapshots_leave_out_json0s_type_and_a_missing_documents_data() {
        let data = raw(r#"{"n":1.50}"#);
        let fetched = Reply::Doc(DocReply {
            a: "f",
            c: "books",
            d: "b1",
            data: Some(SnapshotData {
                v: 3,
                data: Some(data),
            }),
        });
        assert_eq!(
            fetched.to_text(),
            r#"{"a":"f","c":"books","d":"b1","data":{"v":3,"data":{"n":1.50}}}"#
        );
        let missing = Reply::Doc(DocReply {
            a: "s",
            c: "books",
            d: "b2",
            data: Some(SnapshotData { v: 0, data: None }),
        });
        assert_eq!(
            missing.to_text(),
            r#"{"a":"s","c":"books","d":"b2","data":{"v":0,"type":null}}"#
        );
        let ops_sent = Reply::Doc(DocReply {
            a: "f",
            c: "books",
            d: "b1",
            data: None,
        });
        assert_eq!(ops_sent.to_text(), r#"{"a":"f","c":"books","d":"b1"}"#);
    }

    #[test]
    fn bulk_replies_map_ids_to_snapshots_or_errors() {
        let reply = Reply::Bulk(BulkReply {
            a: "bf",
            c: "books",
            data: Some(vec![
                (
                    "b1",
                    BulkEntry::Snapshot(SnapshotData {
                        v: 1,
                        data: Some(raw("{}")),
                    }),
                ),
                (
                    "b2",
                    BulkEntry::Error {
                        error: ShareDbError::new(ErrorCode::ERR_UNKNOWN_ERROR, "no"),
                    },
                ),
            ]),
            b: None,
        });
        assert_eq!(
            parse(&reply.to_text()),
            json!({"a": "bf", "c": "books", "data": {
                "b1": {"v": 1, "data": {}},
                "b2": {"error": {"code": "ERR_UNKNOWN_ERROR", "message": "no"}}
            }})
        );
        let versions = json!({"b1": 2});
        let echoed = Reply::Bulk(BulkReply {
            a: "bs",
            c: "books",
            data: None,
            b: Some(&versions),
        });
        assert_eq!(echoed.to_text(), r#"{"a":"bs","c":"books","b":{"b1":2}}"#);
    }

    #[test]
    fn ops_acks_and_snapshot_replies_have_sharedbs_fields() {
        let edit = json!([{"p": ["n"], "na": 1}]);
        let op = OpMessage {
            c: "books",
            d: "b1",
            v: 4,
            src: Some("s1"),
            seq: Some(9),
            body: OpBody::Edit(&edit),
        };
        assert_eq!(
            Reply::Op(op).to_text(),
            r#"{"a":"op","c":"books","d":"b1","v":4,"src":"s1","seq":9,"op":[{"p":["n"],"na":1}]}"#
        );
        let create = OpMessage {
            src: None,
            seq: None,
            body: OpBody::Create(raw("{}")),
            ..op
        };
        assert_eq!(
            Reply::Op(create).to_text(),
            format!(
                r#"{{"a":"op","c":"books","d":"b1","v":4,"create":{{"type":"{JSON0_URI}","data":{{}}}}}}"#
            )
        );
        let del = OpMessage {
            body: OpBody::Delete,
            ..op
        };
        assert_eq!(parse(&Reply::Op(del).to_text())["del"], true);
        assert_eq!(
            Reply::Ack(Ack::new("books", "b1", "s1", 9, 4)).to_text(),
            r#"{"a":"op","c":"books","d":"b1","src":"s1","seq":9,"v":4}"#
        );
        let snapshot = SnapshotReply {
            a: "nf",
            id: 7,
            v: 2,
            data: Some(raw(r#"{"a":1}"#)),
        };
        assert_eq!(
            parse(&Reply::Snapshot(snapshot).to_text()),
            json!({"a": "nf", "id": 7, "v": 2, "type": JSON0_URI, "data": {"a": 1}, "m": null})
        );
        let none = SnapshotReply {
            a: "nt",
            data: None,
            ..snapshot
        };
        assert_eq!(
            parse(&Reply::Snapshot(none).to_text()),
            json!({"a": "nt", "id": 7, "v": 2, "type": null, "m": null})
        );
    }

    #[test]
    fn an_error_echoes_the_request() {
        let request =
            json!({"a": "op", "c": "books", "d": "b1", "v": 9, "src": "s", "seq": 1, "op": []});
        let error = ShareDbError::new(
            ErrorCode::ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT,
            "Invalid op submitted. Op version newer than current snapshot",
        );
        let reply = parse(&error_reply(Some(&request), &error));
        let mut expected = request.clone();
        expected["error"] = serde_json::to_value(&error).unwrap();
        assert_eq!(reply, expected);
        assert_eq!(
            parse(&error_reply(None, &error)),
            json!({"error": serde_json::to_value(&error).unwrap()})
        );
    }

    #[test]
    fn presence_is_echoed_with_src_and_leaves_out_what_was_not_sent() {
        let p = json!({"x": 1});
        let sent = PresenceReply {
            a: "p",
            ch: "room",
            src: "abc",
            id: "cursor",
            p: &p,
            pv: Some(3),
            c: None,
            d: None,
            v: None,
        };
        assert_eq!(
            sent.to_text(),
            r#"{"a":"p","ch":"room","src":"abc","id":"cursor","p":{"x":1},"pv":3}"#
        );
        assert_eq!(
            parse(&presence_request("room")),
            json!({"a": "pr", "ch": "room"})
        );
        assert_eq!(
            parse(&presence_subscription_reply("ps", "room", Some(2))),
            json!({"a": "ps", "ch": "room", "seq": 2})
        );
        assert_eq!(
            parse(&presence_subscription_reply("pu", "room", None)),
            json!({"a": "pu", "ch": "room"})
        );
    }
}
