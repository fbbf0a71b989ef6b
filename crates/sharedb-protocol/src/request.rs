//! What a ShareDB client sends, decoded and checked as ShareDB's server checks it
//! (`Agent.prototype._checkRequest` and `ot.checkOp` in `lib/agent.js` and `lib/ot.js`).
//!
//! A frame is parsed as JSON within recordsync's nesting limit, then read field by field,
//! so that each refusal carries ShareDB's own wording ("Invalid collection", "Invalid
//! version", "Missing op, create, or del", ...). The message as sent is kept
//! ([`Incoming::raw`]): ShareDB answers an error by echoing the request with an `error`
//! field, and a client finds its callback by the fields it sent.

use serde_json::{Map, Value};

use recordsync_core::json::{self, MAX_DEPTH};

use crate::error::DecodeError;
use crate::types::is_json0;

/// Levels a message adds around the JSON values it carries: the message, an op's list of
/// components, a component (a create's `create` object is one less).
const MESSAGE_LEVELS: usize = 3;

/// One decoded client message.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// The message as sent (a JSON object), which an error reply echoes.
    pub raw: Value,
    pub request: Request,
}

/// A client request, by its action `a`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Request {
    /// `hs`: the handshake. `id` is the `src` the client had before (a reconnect), which
    /// the server keeps; `None` for a first connection.
    Handshake {
        id: Option<String>,
        protocol: Option<u64>,
        protocol_minor: Option<u64>,
    },
    /// `f`: a snapshot (`v` absent), or the ops from version `v` on.
    Fetch(DocRequest),
    /// `s`: as `f`, and then every op on the document.
    Subscribe(DocRequest),
    /// `u`.
    Unsubscribe(DocRequest),
    /// `bf`.
    BulkFetch(BulkRequest),
    /// `bs`.
    BulkSubscribe(BulkRequest),
    /// `bu`.
    BulkUnsubscribe(BulkRequest),
    /// `op`: a create, an edit or a delete.
    Op(OpRequest),
    /// `nf`: the snapshot at version `v` (`None`: the latest).
    SnapshotFetch {
        id: u64,
        c: String,
        d: String,
        v: Option<u64>,
    },
    /// `nt`: the snapshot at time `ts` (milliseconds since the epoch; `None`: the latest).
    SnapshotFetchByTimestamp {
        id: u64,
        c: String,
        d: String,
        ts: Option<u64>,
    },
    /// `pp`.
    Ping,
    /// `qf` or `qs`.
    Query(QueryRequest),
    /// `qu`.
    QueryUnsubscribe { id: u64 },
    /// `p`: a presence update.
    Presence(PresenceMessage),
    /// `ps`: subscribe to a presence channel.
    PresenceSubscribe { ch: String, seq: Option<u64> },
    /// `pu`.
    PresenceUnsubscribe { ch: String, seq: Option<u64> },
    /// `pr`: ask the channel's peers to send their presence again.
    PresenceRequest { ch: String },
}

impl Request {
    /// The action as written on the wire.
    pub fn action(&self) -> &'static str {
        match self {
            Request::Handshake { .. } => "hs",
            Request::Fetch(_) => "f",
            Request::Subscribe(_) => "s",
            Request::Unsubscribe(_) => "u",
            Request::BulkFetch(_) => "bf",
            Request::BulkSubscribe(_) => "bs",
            Request::BulkUnsubscribe(_) => "bu",
            Request::Op(_) => "op",
            Request::SnapshotFetch { .. } => "nf",
            Request::SnapshotFetchByTimestamp { .. } => "nt",
            Request::Ping => "pp",
            Request::Query(q) => match q.kind {
                QueryKind::Fetch => "qf",
                QueryKind::Subscribe => "qs",
            },
            Request::QueryUnsubscribe { .. } => "qu",
            Request::Presence(_) => "p",
            Request::PresenceSubscribe { .. } => "ps",
            Request::PresenceUnsubscribe { .. } => "pu",
            Request::PresenceRequest { .. } => "pr",
        }
    }
}

/// A request about one document: collection `c`, id `d`, and for fetch and subscribe the
/// version `v` the client has (ops from there on are sent instead of a snapshot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocRequest {
    pub c: String,
    pub d: String,
    pub v: Option<u64>,
}

/// A bulk request: collection `c` and the documents `b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkRequest {
    pub c: String,
    pub b: BulkDocs,
}

/// The documents of a bulk request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkDocs {
    /// `b: [id, ...]`: snapshots wanted.
    Ids(Vec<String>),
    /// `b: {id: version, ...}`: the client has these versions; the ops since are wanted.
    /// In the order sent.
    Versions(Vec<(String, u64)>),
}

/// An op: collection `c`, id `d`, the version `v` it applies to (`None`: the latest, which
/// clients send for a create of a document they never fetched), its origin (`src`, `seq`;
/// `src` absent means the connection's own) and what it does.
#[derive(Debug, Clone, PartialEq)]
pub struct OpRequest {
    pub c: String,
    pub d: String,
    pub v: Option<u64>,
    pub src: Option<String>,
    pub seq: u64,
    pub body: OpBody,
}

/// What an op does.
#[derive(Debug, Clone, PartialEq)]
pub enum OpBody {
    /// `create: {type, data}`: the document comes into being (`data` absent: the type's
    /// empty value).
    Create { ty: String, data: Option<Value> },
    /// `op: [...]`: an edit in the document's type (json0: a list of components), as sent;
    /// the server parses it with the type.
    Edit(Value),
    /// `del: true`.
    Delete,
}

/// Whether a query is fetched once or followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    Fetch,
    Subscribe,
}

/// `qf`/`qs`: query `id` (a number the client picks), collection `c`, the query `q`,
/// options `o` and the results the client already has `r` (`[[id, version], ...]`).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRequest {
    pub kind: QueryKind,
    pub id: u64,
    pub c: String,
    pub q: Value,
    pub o: Option<Value>,
    pub r: Option<Value>,
}

/// `p`: presence `p` (null: cleared) of presence `id` on channel `ch`, at presence
/// version `pv`; for a document's presence also its collection, id, version and type.
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceMessage {
    pub ch: String,
    pub id: String,
    pub p: Value,
    pub pv: Option<u64>,
    pub c: Option<String>,
    pub d: Option<String>,
    pub v: Option<u64>,
    pub t: Option<String>,
}

/// Decodes one text frame.
pub fn decode(text: &str) -> Result<Incoming, DecodeError> {
    let mut raw: Value =
        json::parse_within(text, MAX_DEPTH + MESSAGE_LEVELS).map_err(DecodeError::NotJson)?;
    let Value::Object(object) = &mut raw else {
        return Err(DecodeError::NotObject);
    };
    forget_unknown_type(object);
    let object = &*object;
    match read(object) {
        Ok(request) => Ok(Incoming { raw, request }),
        Err(Refusal::Message(message)) => Err(DecodeError::BadlyFormed {
            message: message.to_owned(),
            raw,
        }),
        Err(Refusal::Op(message)) => Err(DecodeError::BadOp {
            message: message.to_owned(),
            raw,
        }),
        Err(Refusal::Unknown) => Err(DecodeError::UnknownAction { raw }),
    }
}

/// ShareDB's server looks a create's `type` up among the types it knows and keeps what it
/// finds: a type it does not know (any but json0 here) is gone before the op is checked,
/// which then fails as "Missing create type", and the echoed request has no `type`.
fn forget_unknown_type(m: &mut Map<String, Value>) {
    if m.get("a").and_then(Value::as_str) != Some("op") {
        return;
    }
    if let Some(Value::Object(create)) = m.get_mut("create")
        && create
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|ty| !is_json0(ty))
    {
        create.remove("type");
    }
}

/// Why a message was refused, in ShareDB's words.
enum Refusal {
    Message(&'static str),
    Op(&'static str),
    Unknown,
}

type Read<T> = Result<T, Refusal>;

fn read(m: &Map<String, Value>) -> Read<Request> {
    let action = match m.get("a") {
        Some(Value::String(a)) => a.as_str(),
        _ => return Err(Refusal::Unknown),
    };
    Ok(match action {
        "hs" => Request::Handshake {
            id: opt_string(m, "id").map_err(|_| Refusal::Message("Invalid client id"))?,
            protocol: opt_u64(m, "protocol").map_err(|_| Refusal::Message("Invalid protocol"))?,
            protocol_minor: opt_u64(m, "protocolMinor")
                .map_err(|_| Refusal::Message("Invalid protocol"))?,
        },
        "f" => Request::Fetch(doc(m)?),
        "s" => Request::Subscribe(doc(m)?),
        "u" => Request::Unsubscribe(doc(m)?),
        "bf" => Request::BulkFetch(bulk(m)?),
        "bs" => Request::BulkSubscribe(bulk(m)?),
        "bu" => Request::BulkUnsubscribe(bulk(m)?),
        "op" => Request::Op(op(m)?),
        "nf" | "nt" => {
            let id = opt_u64(m, "id")
                .ok()
                .flatten()
                .ok_or(Refusal::Message("Invalid snapshot request id"))?;
            let (c, d) = (collection(m)?, id_of(m)?);
            if action == "nf" {
                let v = opt_u64(m, "v").map_err(|_| Refusal::Message("Invalid version"))?;
                Request::SnapshotFetch { id, c, d, v }
            } else {
                let ts = opt_u64(m, "ts").map_err(|_| Refusal::Message("Invalid timestamp"))?;
                Request::SnapshotFetchByTimestamp { id, c, d, ts }
            }
        }
        "pp" => Request::Ping,
        "qf" | "qs" | "qu" => {
            let id = match m.get("id") {
                Some(Value::Number(n)) => n.as_u64().ok_or(Refusal::Message("Missing query ID"))?,
                _ => return Err(Refusal::Message("Missing query ID")),
            };
            if action == "qu" {
                return Ok(Request::QueryUnsubscribe { id });
            }
            Request::Query(QueryRequest {
                kind: if action == "qf" {
                    QueryKind::Fetch
                } else {
                    QueryKind::Subscribe
                },
                id,
                c: collection(m)?,
                q: m.get("q").cloned().unwrap_or(Value::Null),
                o: m.get("o").filter(|o| !o.is_null()).cloned(),
                r: m.get("r").filter(|r| !r.is_null()).cloned(),
            })
        }
        "p" => Request::Presence(PresenceMessage {
            ch: channel(m)?,
            id: match m.get("id") {
                Some(Value::String(id)) => id.clone(),
                _ => return Err(Refusal::Message("Invalid presence ID")),
            },
            p: m.get("p").cloned().unwrap_or(Value::Null),
            pv: opt_u64(m, "pv").map_err(|_| Refusal::Message("Invalid presence version"))?,
            c: opt_string(m, "c").map_err(|_| Refusal::Message("Invalid collection"))?,
            d: opt_string(m, "d").map_err(|_| Refusal::Message("Invalid id"))?,
            v: opt_u64(m, "v").map_err(|_| Refusal::Message("Invalid version"))?,
            t: opt_string(m, "t").map_err(|_| Refusal::Message("Invalid type"))?,
        }),
        "ps" | "pu" => {
            let ch = channel(m)?;
            let seq = opt_u64(m, "seq").map_err(|_| Refusal::Message("Invalid seq"))?;
            if action == "ps" {
                Request::PresenceSubscribe { ch, seq }
            } else {
                Request::PresenceUnsubscribe { ch, seq }
            }
        }
        "pr" => Request::PresenceRequest { ch: channel(m)? },
        _ => return Err(Refusal::Unknown),
    })
}

/// A field that is absent or null (`None`), or a string.
fn opt_string(m: &Map<String, Value>, key: &str) -> Result<Option<String>, ()> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(()),
    }
}

/// A field that is absent or null (`None`), or a whole number at least 0 (as JavaScript
/// writes it: `3`, or `3.0` from some encoders).
fn opt_u64(m: &Map<String, Value>, key: &str) -> Result<Option<u64>, ()> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => whole(n).map(Some).ok_or(()),
        Some(_) => Err(()),
    }
}

fn whole(n: &serde_json::Number) -> Option<u64> {
    if let Some(v) = n.as_u64() {
        return Some(v);
    }
    let f = n.as_f64()?;
    // Below 2^53 every whole number is exact; larger ones are not versions a client has.
    (f >= 0.0 && f.fract() == 0.0 && f < 9_007_199_254_740_992.0).then_some(f as u64)
}

/// The collection `c`: a string that names no further level (recordsync's record name
/// is `c/d`, split at the first `/`).
fn collection(m: &Map<String, Value>) -> Read<String> {
    match m.get("c") {
        Some(Value::String(c)) if !c.is_empty() && !c.contains('/') => Ok(c.clone()),
        _ => Err(Refusal::Message("Invalid collection")),
    }
}

fn id_of(m: &Map<String, Value>) -> Read<String> {
    match m.get("d") {
        Some(Value::String(d)) if !d.is_empty() => Ok(d.clone()),
        _ => Err(Refusal::Message("Invalid id")),
    }
}

fn channel(m: &Map<String, Value>) -> Read<String> {
    match m.get("ch") {
        Some(Value::String(ch)) => Ok(ch.clone()),
        _ => Err(Refusal::Message("Invalid presence channel")),
    }
}

fn doc(m: &Map<String, Value>) -> Read<DocRequest> {
    Ok(DocRequest {
        c: collection(m)?,
        d: id_of(m)?,
        v: opt_u64(m, "v").map_err(|_| Refusal::Message("Invalid version"))?,
    })
}

fn bulk(m: &Map<String, Value>) -> Read<BulkRequest> {
    let c = collection(m)?;
    let b = match m.get("b") {
        Some(Value::Array(ids)) => BulkDocs::Ids(
            ids.iter()
                .map(|id| match id {
                    Value::String(id) if !id.is_empty() => Ok(id.clone()),
                    _ => Err(Refusal::Message("Invalid id")),
                })
                .collect::<Read<_>>()?,
        ),
        Some(Value::Object(versions)) => BulkDocs::Versions(
            versions
                .iter()
                .map(|(id, v)| match v {
                    Value::Number(n) if !id.is_empty() => whole(n)
                        .map(|v| (id.clone(), v))
                        .ok_or(Refusal::Message("Invalid version")),
                    _ => Err(Refusal::Message("Invalid version")),
                })
                .collect::<Read<_>>()?,
        ),
        _ => return Err(Refusal::Message("Invalid bulk subscribe data")),
    };
    Ok(BulkRequest { c, b })
}

fn op(m: &Map<String, Value>) -> Read<OpRequest> {
    let c = collection(m)?;
    let d = id_of(m)?;
    let v = opt_u64(m, "v").map_err(|_| Refusal::Message("Invalid version"))?;
    let truthy = |key: &str| {
        m.get(key)
            .is_some_and(|v| !matches!(v, Value::Null | Value::Bool(false)))
    };
    // ShareDB's order: an `op` field wins, then `create`, then `del`.
    let body = if let Some(edit) = m.get("op") {
        OpBody::Edit(edit.clone())
    } else if truthy("create") {
        let Some(Value::Object(create)) = m.get("create") else {
            return Err(Refusal::Op("Create data must be an object"));
        };
        let Some(Value::String(ty)) = create.get("type") else {
            return Err(Refusal::Op("Missing create type"));
        };
        OpBody::Create {
            ty: ty.clone(),
            data: create.get("data").cloned(),
        }
    } else if truthy("del") {
        if m.get("del") != Some(&Value::Bool(true)) {
            return Err(Refusal::Op("del value must be true"));
        }
        OpBody::Delete
    } else if m.contains_key("create") || m.contains_key("del") {
        return Err(Refusal::Op("Missing op, create, or del"));
    } else {
        return Err(Refusal::Message("Invalid op message"));
    };
    let src = match m.get("src") {
        None | Some(Value::Null) => None,
        Some(Value::String(src)) => Some(src.clone()),
        Some(_) => return Err(Refusal::Op("src must be a string")),
    };
    let seq = match m.get("seq") {
        None | Some(Value::Null) => {
            return Err(Refusal::Op("Both src and seq must be set together"));
        }
        Some(Value::Number(n)) => whole(n).ok_or(Refusal::Op("seq must be a number"))?,
        Some(_) => return Err(Refusal::Op("seq must be a number")),
    };
    Ok(OpRequest {
        c,
        d,
        v,
        src,
        seq,
        body,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ErrorCode;

    fn ok(text: &str) -> Request {
        decode(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .request
    }

    fn refused(text: &str) -> (ErrorCode, String) {
        let e = decode(text).expect_err(text);
        let error = e.to_sharedb();
        (error.code, error.message)
    }

    #[test]
    fn every_message_the_client_sends_decodes() {
        assert_eq!(
            ok(r#"{"a":"hs","id":null,"protocol":1,"protocolMinor":2}"#),
            Request::Handshake {
                id: None,
                protocol: Some(1),
                protocol_minor: Some(2)
            }
        );
        assert_eq!(
            ok(r#"{"a":"hs","id":"abc","protocol":1,"protocolMinor":2}"#),
            Request::Handshake {
                id: Some("abc".into()),
                protocol: Some(1),
                protocol_minor: Some(2)
            }
        );
        let doc = |v| DocRequest {
            c: "books".into(),
            d: "b1".into(),
            v,
        };
        assert_eq!(
            ok(r#"{"a":"f","c":"books","d":"b1"}"#),
            Request::Fetch(doc(None))
        );
        assert_eq!(
            ok(r#"{"a":"s","c":"books","d":"b1","v":3}"#),
            Request::Subscribe(doc(Some(3)))
        );
        assert_eq!(
            ok(r#"{"a":"u","c":"books","d":"b1"}"#),
            Request::Unsubscribe(doc(None))
        );
        assert_eq!(
            ok(r#"{"a":"bf","c":"books","b":["b1","b2"]}"#),
            Request::BulkFetch(BulkRequest {
                c: "books".into(),
                b: BulkDocs::Ids(vec!["b1".into(), "b2".into()])
            })
        );
        assert_eq!(
            ok(r#"{"a":"bs","c":"books","b":{"b2":4,"b1":0}}"#),
            Request::BulkSubscribe(BulkRequest {
                c: "books".into(),
                b: BulkDocs::Versions(vec![("b2".into(), 4), ("b1".into(), 0)])
            })
        );
        assert!(matches!(
            ok(r#"{"a":"bu","c":"books","b":["b1"]}"#),
            Request::BulkUnsubscribe(_)
        ));
        assert_eq!(
            ok(
                r#"{"a":"op","c":"books","d":"b1","v":2,"src":"s1","seq":7,"op":[{"p":["n"],"na":1}]}"#
            ),
            Request::Op(OpRequest {
                c: "books".into(),
                d: "b1".into(),
                v: Some(2),
                src: Some("s1".into()),
                seq: 7,
                body: OpBody::Edit(json!([{"p": ["n"], "na": 1}]))
            })
        );
        assert_eq!(
            ok(
                r#"{"a":"op","c":"books","d":"b1","v":null,"seq":1,"create":{"type":"http://sharejs.org/types/JSONv0","data":{"t":"x"}}}"#
            ),
            Request::Op(OpRequest {
                c: "books".into(),
                d: "b1".into(),
                v: None,
                src: None,
                seq: 1,
                body: OpBody::Create {
                    ty: crate::JSON0_URI.into(),
                    data: Some(json!({"t": "x"}))
                }
            })
        );
        assert!(matches!(
            ok(r#"{"a":"op","c":"books","d":"b1","v":5,"src":"s","seq":2,"del":true}"#),
            Request::Op(OpRequest {
                body: OpBody::Delete,
                ..
            })
        ));
        assert_eq!(
            ok(r#"{"a":"nf","id":1,"c":"books","d":"b1","v":null}"#),
            Request::SnapshotFetch {
                id: 1,
                c: "books".into(),
                d: "b1".into(),
                v: None
            }
        );
        assert_eq!(
            ok(r#"{"a":"nt","id":2,"c":"books","d":"b1","ts":1700000000000}"#),
            Request::SnapshotFetchByTimestamp {
                id: 2,
                c: "books".into(),
                d: "b1".into(),
                ts: Some(1_700_000_000_000)
            }
        );
        assert_eq!(ok(r#"{"a":"pp"}"#), Request::Ping);
        assert!(matches!(
            ok(r#"{"a":"qs","id":3,"c":"books","q":{"n":{"$gt":1}},"r":[["b1",2]]}"#),
            Request::Query(QueryRequest {
                kind: QueryKind::Subscribe,
                id: 3,
                ..
            })
        ));
        assert!(matches!(
            ok(r#"{"a":"qf","id":4,"c":"books","q":{}}"#),
            Request::Query(_)
        ));
        assert_eq!(
            ok(r#"{"a":"qu","id":3}"#),
            Request::QueryUnsubscribe { id: 3 }
        );
        assert!(matches!(
            ok(r#"{"a":"p","ch":"room","id":"p1","p":{"x":1},"pv":0}"#),
            Request::Presence(_)
        ));
        assert!(matches!(
            ok(r#"{"a":"ps","ch":"room","seq":1}"#),
            Request::PresenceSubscribe { .. }
        ));
        assert!(matches!(
            ok(r#"{"a":"pu","ch":"room","seq":2}"#),
            Request::PresenceUnsubscribe { .. }
        ));
        assert!(matches!(
            ok(r#"{"a":"pr","ch":"room"}"#),
            Request::PresenceRequest { .. }
        ));
    }

    #[test]
    fn the_request_as_sent_is_kept_for_error_replies() {
        let text = r#"{"a":"f","c":"books","d":"b1","extra":[1.50]}"#;
        let incoming = decode(text).unwrap();
        assert_eq!(incoming.raw.to_string(), text, "numbers and key order kept");
        assert_eq!(incoming.request.action(), "f");
    }

    #[test]
    fn bad_messages_get_sharedbs_codes_and_words() {
        use ErrorCode::*;
        let cases = [
            (
                r#"{"a":"zz"}"#,
                ERR_MESSAGE_BADLY_FORMED,
                "Invalid or unknown message",
            ),
            (
                r#"{"c":"x"}"#,
                ERR_MESSAGE_BADLY_FORMED,
                "Invalid or unknown message",
            ),
            (
                r#"{"a":"f","c":1,"d":"x"}"#,
                ERR_MESSAGE_BADLY_FORMED,
                "Invalid collection",
            ),
            (
                r#"{"a":"f","c":"a/b","d":"x"}"#,
                ERR_MESSAGE_BADLY_FORMED,
                "Invalid collection",
            ),
            (
                r#"{"a":"f","c":"x","d":[]}"#,
                ERR_MESSAGE_BADLY_FORMED,
                "Invalid id",
            ),
            (
                r#"{"a":"f","c":"x","d":"y","v":-1}"#,
                ERR_MESSAGE_BADLY_FORMED,
                "Invalid version",
            ),
            (
                r#"{"a":"f","c":"x","d":"y","v":1.5}"#,
                ERR_MESSAGE_BADLY_FORMED,
                "Invalid version",
            ),
            (
                r#"{"a":"bs","c":"x","b":5}"#,
                ERR_MESSAGE_BADLY_FORMED,
                "Invalid bulk subscribe data",
            ),
            (
                r#"{"a":"qf","c":"x"}"#,
                ERR_MESSAGE_BADLY_FORMED,
                "Missing query ID",
            ),
            (
                r#"{"a":"op","c":"x","d":"y","v":0,"seq":1}"#,
                ERR_MESSAGE_BADLY_FORMED,
                "Invalid op message",
            ),
            (
                r#"{"a":"op","c":"x","d":"y","seq":1,"create":5}"#,
                ERR_OT_OP_BADLY_FORMED,
                "Create data must be an object",
            ),
            (
                r#"{"a":"op","c":"x","d":"y","seq":1,"create":{"data":{}}}"#,
                ERR_OT_OP_BADLY_FORMED,
                "Missing create type",
            ),
            (
                r#"{"a":"op","c":"x","d":"y","seq":1,"del":1}"#,
                ERR_OT_OP_BADLY_FORMED,
                "del value must be true",
            ),
            (
                r#"{"a":"op","c":"x","d":"y","op":[]}"#,
                ERR_OT_OP_BADLY_FORMED,
                "Both src and seq must be set together",
            ),
            (
                r#"{"a":"op","c":"x","d":"y","src":3,"seq":1,"op":[]}"#,
                ERR_OT_OP_BADLY_FORMED,
                "src must be a string",
            ),
        ];
        for (text, code, message) in cases {
            assert_eq!(refused(text), (code, message.to_owned()), "{text}");
            assert!(
                decode(text).unwrap_err().raw().is_some(),
                "{text} is echoed"
            );
        }
        for text in ["{nope", "[1,2]", "\"hs\""] {
            let e = decode(text).unwrap_err();
            assert_eq!(e.to_sharedb().code, ERR_MESSAGE_BADLY_FORMED, "{text}");
            assert!(e.raw().is_none(), "{text}");
        }
    }

    #[test]
    fn an_unknown_create_type_is_dropped_from_the_echo() {
        let text =
            r#"{"a":"op","c":"x","d":"y","v":0,"seq":1,"create":{"type":"text","data":"a"}}"#;
        let e = decode(text).unwrap_err();
        assert_eq!(
            (e.to_sharedb().code, e.to_sharedb().message),
            (
                ErrorCode::ERR_OT_OP_BADLY_FORMED,
                "Missing create type".to_owned()
            )
        );
        assert_eq!(
            e.raw().and_then(|raw| raw.get("create")),
            Some(&serde_json::json!({"data": "a"}))
        );
        let short =
            r#"{"a":"op","c":"x","d":"y","v":0,"seq":1,"create":{"type":"json0","data":{}}}"#;
        assert!(decode(short).is_ok());
    }

    #[test]
    fn nesting_is_bounded_by_recordsyncs_limit() {
        let deep = |levels: usize| {
            format!(
                r#"{{"a":"op","c":"x","d":"y","v":1,"src":"s","seq":1,"op":[{{"p":[],"oi":{}1{}}}]}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            )
        };
        assert!(decode(&deep(MAX_DEPTH)).is_ok());
        assert!(matches!(
            decode(&deep(MAX_DEPTH + 1)),
            Err(DecodeError::NotJson(_))
        ));
    }
}
