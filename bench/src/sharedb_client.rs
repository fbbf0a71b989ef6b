//! The generator's ShareDB client: WebSocket text frames carrying ShareDB's protocol 1.2
//! JSON, as the npm `sharedb` 7 client writes them, and only what the ShareDB scenarios
//! need: the handshake, bulk subscribe, create, json0 ops (with `src`, `seq` and `v`),
//! their acknowledgements, other clients' ops, and fetch queries (`qf`).
//!
//! The same client drives recordsync (`/sharedb`) and ShareDB 7
//! (`bench/peers/sharedb-server.mjs`), so that both are measured with the same load and
//! the same parsing cost on the generator's side. Requests are written by hand (the hot ones with
//! `format!`, names are the generator's own and need no escaping); replies are read into
//! [`ServerMessage`], which borrows from the frame and skips what it does not name. The
//! unit tests check every request against `recordsync_sharedb_protocol::decode`, the
//! server's own reading of the protocol.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio_tungstenite::tungstenite::Message as Frame;

use recordsync_sharedb_protocol::{JSON0_URI, PROTOCOL_MAJOR, PROTOCOL_MINOR, ShareDbError};

use crate::client::{self, Result, STEP_TIMEOUT, Ws};

/// Any message a ShareDB server sends, with the fields the scenarios read. Strings borrow
/// from the frame where they can; `op` keeps only what [`Component`] names.
#[derive(Debug, Deserialize)]
pub struct ServerMessage<'a> {
    #[serde(borrow)]
    pub a: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub c: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub d: Option<Cow<'a, str>>,
    pub v: Option<u64>,
    pub seq: Option<u64>,
    #[serde(borrow)]
    pub src: Option<Cow<'a, str>>,
    /// A string in `init` and `hs`, a number in query replies.
    #[serde(borrow)]
    pub id: Option<&'a RawValue>,
    /// Present on other clients' edits (absent on acknowledgements).
    pub op: Option<Vec<Component<'a>>>,
    /// Present on other clients' creates.
    #[serde(borrow)]
    pub create: Option<&'a RawValue>,
    pub del: Option<bool>,
    #[serde(borrow)]
    pub data: Option<&'a RawValue>,
    pub extra: Option<Value>,
    pub error: Option<ShareDbError>,
}

impl ServerMessage<'_> {
    /// An op's acknowledgement: action `op`, no body, no error.
    pub fn is_ack(&self) -> bool {
        self.a.as_deref() == Some("op")
            && self.error.is_none()
            && self.op.is_none()
            && self.create.is_none()
            && self.del.is_none()
    }

    /// Another client's edit.
    pub fn is_remote_edit(&self) -> bool {
        self.a.as_deref() == Some("op") && self.error.is_none() && self.op.is_some()
    }

    /// The send time the generator's writers put in an edit (see [`stamp_op`]).
    pub fn stamp(&self) -> Option<u64> {
        self.op.as_ref()?.first()?.oi?.get().parse().ok()
    }
}

/// One json0 component, reduced to the inserted value the writers stamp.
#[derive(Debug, Deserialize)]
pub struct Component<'a> {
    #[serde(borrow)]
    pub oi: Option<&'a RawValue>,
}

/// Reads one frame's text as a [`ServerMessage`].
pub fn parse(text: &str) -> Result<ServerMessage<'_>> {
    Ok(serde_json::from_str(text)?)
}

/// A connected client that has done the handshake.
pub struct Client {
    pub ws: Ws,
    /// The connection's id, which its ops carry as `src`.
    pub src: String,
    /// The next op's `seq` (the npm client starts at 1).
    pub seq: u64,
}

/// Next text frame, within [`STEP_TIMEOUT`].
pub async fn recv_text(ws: &mut Ws) -> Result<String> {
    loop {
        let frame = tokio::time::timeout(STEP_TIMEOUT, ws.next())
            .await
            .map_err(|_| "no reply in time")?
            .ok_or("connection closed")??;
        match frame {
            Frame::Text(text) => return Ok(text.as_str().to_owned()),
            Frame::Close(c) => return Err(format!("closed by the server: {c:?}").into()),
            _ => {}
        }
    }
}

/// The `hs` request of a first connection (no earlier `src`).
pub fn handshake() -> String {
    format!(
        r#"{{"a":"hs","id":null,"protocol":{PROTOCOL_MAJOR},"protocolMinor":{PROTOCOL_MINOR}}}"#
    )
}

/// `bs` of `ids` in collection `c` (snapshots wanted).
pub fn bulk_subscribe(c: &str, ids: &[String]) -> String {
    serde_json::json!({"a": "bs", "c": c, "b": ids}).to_string()
}

/// A create of `c/d` holding `data` (JSON text). `v` is the version the client knows
/// (`None`: never fetched, as the npm client sends it then).
pub fn create(c: &str, d: &str, v: Option<u64>, src: &str, seq: u64, data: &str) -> String {
    let v = v.map_or("null".to_owned(), |v| v.to_string());
    format!(
        r#"{{"a":"op","c":"{c}","d":"{d}","v":{v},"src":"{src}","seq":{seq},"create":{{"type":"{JSON0_URI}","data":{data}}}}}"#
    )
}

/// The writers' edit of `c/d` at version `v`: field `t` replaced (`od` the value it had,
/// `oi` the send time in µs), which subscribers read back for the write-to-delivery
/// latency.
pub fn stamp_op(c: &str, d: &str, v: u64, src: &str, seq: u64, old: u64, now: u64) -> String {
    format!(
        r#"{{"a":"op","c":"{c}","d":"{d}","v":{v},"src":"{src}","seq":{seq},"op":[{{"p":["t"],"od":{old},"oi":{now}}}]}}"#
    )
}

/// `qf`: query `id` over collection `c`, `q` a Mongo-style query.
pub fn fetch_query(id: u64, c: &str, q: &Value) -> String {
    serde_json::json!({"a": "qf", "id": id, "c": c, "q": q}).to_string()
}

impl Client {
    /// Opens `ws://addr{path}` and does the handshake: the server's `init`, our `hs`, its
    /// `hs` naming our `src`.
    pub async fn connect(addr: SocketAddr, path: &str, read_buffer: usize) -> Result<Client> {
        let mut ws = client::connect(addr, path, read_buffer).await?;
        let step = async {
            let init = recv_text(&mut ws).await?;
            if parse(&init)?.a.as_deref() != Some("init") {
                return Err(format!("expected init, got {init}").into());
            }
            ws.send(Frame::text(handshake())).await?;
            loop {
                let text = recv_text(&mut ws).await?;
                let m = parse(&text)?;
                if let Some(e) = m.error {
                    return Err(format!("handshake refused: {e}").into());
                }
                if m.a.as_deref() == Some("hs") {
                    let id = m.id.ok_or("hs without an id")?;
                    let src: String = serde_json::from_str(id.get())?;
                    return Ok::<_, client::Error>(src);
                }
            }
        };
        let src = tokio::time::timeout(STEP_TIMEOUT, step)
            .await
            .map_err(|_| "ShareDB handshake timed out")??;
        Ok(Client { ws, src, seq: 1 })
    }

    /// Subscribes to `ids` of `c` in one `bs`; returns each document's version (0: never
    /// created).
    pub async fn subscribe(&mut self, c: &str, ids: &[String]) -> Result<HashMap<String, u64>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        self.ws.send(Frame::text(bulk_subscribe(c, ids))).await?;
        let step = async {
            loop {
                let text = recv_text(&mut self.ws).await?;
                let m = parse(&text)?;
                if m.a.as_deref() != Some("bs") {
                    continue;
                }
                if let Some(e) = m.error {
                    return Err(format!("bulk subscribe refused: {e}").into());
                }
                let data = m.data.ok_or("bs reply without data")?;
                let snapshots: HashMap<String, Snapshot> = serde_json::from_str(data.get())?;
                let mut versions = HashMap::with_capacity(snapshots.len());
                for (id, s) in snapshots {
                    if let Some(e) = s.error {
                        return Err(format!("subscribing to {c}/{id}: {e}").into());
                    }
                    versions.insert(id, s.v.ok_or("snapshot without v")?);
                }
                return Ok::<_, client::Error>(versions);
            }
        };
        tokio::time::timeout(STEP_TIMEOUT, step)
            .await
            .map_err(|_| "bulk subscribe timed out")?
    }

    /// Creates `c/d` with `data` (JSON text) at version `v` and waits for its
    /// acknowledgement; a document that exists already is left as it is.
    pub async fn create_and_wait(
        &mut self,
        c: &str,
        d: &str,
        v: Option<u64>,
        data: &str,
    ) -> Result<()> {
        let seq = self.next_seq();
        self.ws
            .send(Frame::text(create(c, d, v, &self.src, seq, data)))
            .await?;
        let step = async {
            loop {
                let text = recv_text(&mut self.ws).await?;
                let m = parse(&text)?;
                if m.a.as_deref() != Some("op") || m.seq != Some(seq) || m.d.as_deref() != Some(d) {
                    continue;
                }
                return match m.error {
                    Some(e) if e.code.as_str() == "ERR_DOC_ALREADY_CREATED" => Ok(()),
                    Some(e) => Err(format!("creating {c}/{d}: {e}").into()),
                    None => Ok::<_, client::Error>(()),
                };
            }
        };
        tokio::time::timeout(STEP_TIMEOUT, step)
            .await
            .map_err(|_| "create timed out")?
    }

    /// This connection's next `seq`.
    pub fn next_seq(&mut self) -> u64 {
        let s = self.seq;
        self.seq += 1;
        s
    }
}

/// One entry of a bulk reply's `data`: `{v, data}`, `{v, type: null}` or `{error}`.
#[derive(Deserialize)]
struct Snapshot {
    v: Option<u64>,
    error: Option<ShareDbError>,
}

#[cfg(test)]
mod tests {
    use recordsync_sharedb_protocol::{BulkDocs, OpBody, QueryKind, Request, decode};

    use super::*;

    #[test]
    fn requests_are_what_the_server_reads() {
        let Request::Handshake { id, protocol, .. } = decode(&handshake()).unwrap().request else {
            panic!("hs")
        };
        assert_eq!((id, protocol), (None, Some(1)));

        let ids = vec!["1".to_owned(), "2".to_owned()];
        let Request::BulkSubscribe(b) = decode(&bulk_subscribe("fan", &ids)).unwrap().request
        else {
            panic!("bs")
        };
        assert_eq!(b.b, BulkDocs::Ids(ids));

        let created = create("fan", "7", None, "s1", 1, r#"{"t":0}"#);
        let Request::Op(op) = decode(&created).unwrap().request else {
            panic!("create")
        };
        assert_eq!((op.v, op.src.as_deref(), op.seq), (None, Some("s1"), 1));
        assert!(matches!(op.body, OpBody::Create { ty, data: Some(_) } if ty == JSON0_URI));

        let stamped = stamp_op("fan", "7", 3, "s1", 2, 5, 9);
        let Request::Op(op) = decode(&stamped).unwrap().request else {
            panic!("op")
        };
        assert_eq!((op.v, op.seq), (Some(3), 2));
        assert_eq!(
            op.body,
            OpBody::Edit(serde_json::json!([{"p": ["t"], "od": 5, "oi": 9}]))
        );

        let q = serde_json::json!({"group": 3, "$sort": {"score": -1}, "$limit": 10});
        let Request::Query(query) = decode(&fetch_query(4, "q", &q)).unwrap().request else {
            panic!("qf")
        };
        assert_eq!((query.kind, query.id, query.q), (QueryKind::Fetch, 4, q));
    }

    #[test]
    fn replies_are_told_apart() {
        let ack = parse(r#"{"a":"op","c":"fan","d":"7","src":"s1","seq":2,"v":3}"#).unwrap();
        assert!(ack.is_ack() && !ack.is_remote_edit());
        let edit = parse(
            r#"{"a":"op","c":"fan","d":"7","v":3,"src":"s1","seq":2,"op":[{"p":["t"],"od":5,"oi":123456}]}"#,
        )
        .unwrap();
        assert!(edit.is_remote_edit() && !edit.is_ack());
        assert_eq!(edit.stamp(), Some(123_456));
        let refused = parse(
            r#"{"a":"op","c":"fan","d":"7","v":9,"seq":2,"op":[],"error":{"code":"ERR_X","message":"no"}}"#,
        )
        .unwrap();
        assert!(!refused.is_ack() && !refused.is_remote_edit());
        let text = format!(
            r#"{{"a":"op","c":"fan","d":"7","v":0,"create":{{"type":"{JSON0_URI}","data":{{}}}}}}"#
        );
        let create = parse(&text).unwrap();
        assert!(!create.is_ack() && !create.is_remote_edit());
    }
}
