//! A raw ShareDB protocol client for black-box tests: JSON messages over a WebSocket, as
//! the npm `sharedb` client sends them, so tests see exactly what a real client would.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use super::TIMEOUT;

pub const JSON0_URI: &str = "http://sharejs.org/types/JSONv0";

pub struct ShareDbClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The `src` the server named this connection with.
    pub src: String,
    /// The next `seq` for [`ShareDbClient::submit`].
    pub seq: u64,
}

impl ShareDbClient {
    /// Connects to `/sharedb` and takes the `init` message, without a handshake.
    pub async fn connect_raw(addr: &str) -> (ShareDbClient, Value) {
        Self::connect_raw_at(addr, "/sharedb").await
    }

    /// Connects to the ShareDB endpoint at `path` and takes the `init` message.
    pub async fn connect_raw_at(addr: &str, path: &str) -> (ShareDbClient, Value) {
        let url = format!("ws://{addr}{path}");
        let (ws, _) = tokio::time::timeout(TIMEOUT, connect_async(&url))
            .await
            .expect("connect in time")
            .expect("connect");
        let mut client = ShareDbClient {
            ws,
            src: String::new(),
            seq: 1,
        };
        let init = client.recv().await;
        assert_eq!(init["a"], "init", "{init}");
        (client, init)
    }

    /// Connects to `path` (with its query: `/sharedb?access_token=...`) sending `headers`
    /// with the upgrade request, and shakes hands; or the status and body of a refused
    /// upgrade.
    pub async fn connect_with(
        addr: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<ShareDbClient, (u16, String)> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        use tokio_tungstenite::tungstenite::http::HeaderValue;
        let mut request = format!("ws://{addr}{path}")
            .into_client_request()
            .expect("a WebSocket URL");
        for (name, value) in headers {
            request.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .expect("a header name"),
                HeaderValue::from_str(value).expect("a header value"),
            );
        }
        let ws = match tokio::time::timeout(TIMEOUT, connect_async(request))
            .await
            .expect("connect in time")
        {
            Ok((ws, _)) => ws,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body = response
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                return Err((response.status().as_u16(), body));
            }
            Err(e) => panic!("connect: {e}"),
        };
        let mut client = ShareDbClient {
            ws,
            src: String::new(),
            seq: 1,
        };
        let init = client.recv().await;
        assert_eq!(init["a"], "init", "{init}");
        client
            .send(json!({"a": "hs", "id": null, "protocol": 1, "protocolMinor": 2}))
            .await;
        let hs = client.recv().await;
        client.src = hs["id"].as_str().expect("hs names the src").to_owned();
        Ok(client)
    }

    /// Connects and shakes hands (naming `src`, as a reconnecting client does).
    pub async fn connect_as(addr: &str, src: Option<&str>) -> ShareDbClient {
        let (mut client, _) = Self::connect_raw(addr).await;
        client
            .send(json!({"a": "hs", "id": src, "protocol": 1, "protocolMinor": 2}))
            .await;
        let hs = client.recv().await;
        assert_eq!(hs["a"], "hs", "{hs}");
        client.src = hs["id"].as_str().expect("hs names the src").to_owned();
        client
    }

    pub async fn connect(addr: &str) -> ShareDbClient {
        Self::connect_as(addr, None).await
    }

    /// Connects to the endpoint at `path` and shakes hands.
    pub async fn connect_at(addr: &str, path: &str) -> ShareDbClient {
        let (mut client, _) = Self::connect_raw_at(addr, path).await;
        client
            .send(json!({"a": "hs", "id": null, "protocol": 1, "protocolMinor": 2}))
            .await;
        let hs = client.recv().await;
        client.src = hs["id"].as_str().expect("hs names the src").to_owned();
        client
    }

    pub async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Frame::Text(text.to_owned().into()))
            .await
            .expect("send");
    }

    /// The next message; panics after [`TIMEOUT`].
    pub async fn recv(&mut self) -> Value {
        self.try_recv(TIMEOUT).await.expect("a message in time")
    }

    /// The next message, or `None` when nothing came within `wait` or the socket closed.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(wait, self.ws.next())
                .await
                .ok()??
                .ok()?;
            match frame {
                Frame::Text(text) => {
                    return Some(
                        serde_json::from_str(text.as_str()).expect("the server sends JSON"),
                    );
                }
                Frame::Binary(_) => panic!("ShareDB's wire is text frames"),
                Frame::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Asserts that nothing arrives for a moment.
    pub async fn expect_quiet(&mut self) {
        if let Some(m) = self.try_recv(Duration::from_millis(300)).await {
            panic!("expected nothing, got {m}");
        }
    }

    /// Waits for the server's close frame and returns its code.
    pub async fn expect_close_code(&mut self) -> u16 {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => panic!("the server did not close the connection"),
                Ok(Some(Ok(Frame::Close(Some(close))))) => return close.code.into(),
                Ok(Some(Ok(Frame::Close(None)))) => panic!("a close frame without a code"),
                Ok(None) | Ok(Some(Err(_))) => return 0,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Fetches a snapshot: the reply's `data` (`{v, data}` or `{v, type: null}`).
    pub async fn fetch(&mut self, c: &str, d: &str) -> Value {
        self.send(json!({"a": "f", "c": c, "d": d})).await;
        let reply = self.recv().await;
        assert_eq!(
            (reply["a"].as_str(), reply.get("error")),
            (Some("f"), None),
            "{reply}"
        );
        reply["data"].clone()
    }

    /// Subscribes: the reply's `data`.
    pub async fn subscribe(&mut self, c: &str, d: &str) -> Value {
        self.send(json!({"a": "s", "c": c, "d": d})).await;
        let reply = self.recv().await;
        assert_eq!(
            (reply["a"].as_str(), reply.get("error")),
            (Some("s"), None),
            "{reply}"
        );
        reply["data"].clone()
    }

    /// Sends an op message with the next `seq` (its body merged into `{a, c, d, v, seq}`)
    /// and returns that seq.
    pub async fn submit(&mut self, c: &str, d: &str, v: Option<u64>, body: Value) -> u64 {
        let seq = self.seq;
        self.seq += 1;
        let mut message = json!({"a": "op", "c": c, "d": d, "v": v, "src": self.src, "seq": seq});
        for (k, value) in body.as_object().expect("an object body") {
            message[k] = value.clone();
        }
        self.send(message).await;
        seq
    }

    /// Receives until the acknowledgement of `seq`, returning the ops received before it
    /// and the acknowledgement; panics on an error reply.
    pub async fn ack(&mut self, seq: u64) -> (Vec<Value>, Value) {
        let mut before = Vec::new();
        loop {
            let m = self.recv().await;
            assert!(m.get("error").is_none(), "an error: {m}");
            if m["a"] == "op"
                && m["seq"] == seq
                && m["src"] == self.src.as_str()
                && m.get("op").is_none()
                && m.get("create").is_none()
                && m.get("del").is_none()
            {
                return (before, m);
            }
            before.push(m);
        }
    }

    /// Receives until an error reply, returning it (`{..request, error: {code, message}}`).
    pub async fn error(&mut self) -> Value {
        loop {
            let m = self.recv().await;
            if m.get("error").is_some() {
                return m;
            }
        }
    }

    /// Creates `(c, d)` with `data` (version `v`) and waits for the acknowledgement's `v`.
    pub async fn create(&mut self, c: &str, d: &str, v: Option<u64>, data: Value) -> u64 {
        let seq = self
            .submit(
                c,
                d,
                v,
                json!({"create": {"type": JSON0_URI, "data": data}}),
            )
            .await;
        let (_, ack) = self.ack(seq).await;
        ack["v"].as_u64().expect("an ack names its version")
    }

    /// Submits json0 `op` on version `v` and waits for its acknowledgement's `v`.
    pub async fn edit(&mut self, c: &str, d: &str, v: u64, op: Value) -> u64 {
        let seq = self.submit(c, d, Some(v), json!({"op": op})).await;
        let (_, ack) = self.ack(seq).await;
        ack["v"].as_u64().expect("an ack names its version")
    }
}

impl ShareDbClient {
    /// Sends `text`, returning false once the connection is gone.
    pub async fn send_text_checked(&mut self, text: &str) -> bool {
        self.ws
            .send(Frame::Text(text.to_owned().into()))
            .await
            .is_ok()
    }
}
