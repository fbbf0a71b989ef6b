//! A raw deepstream protocol client for black-box tests: it speaks the wire directly,
//! so tests see exactly the messages a real client would.
#![allow(dead_code)]

pub mod bus_faults;
pub mod file_auth;
pub mod http;
pub mod sharedb;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use recordsync_deepstream_protocol::{
    AuthAction, AuthMessage, ConnectionAction, ConnectionMessage, EventAction, EventMessage,
    Message, RecordAction, RecordMessage, binary, json,
};

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Starts a server with `config` on a free port of 127.0.0.1 (whatever port `config`
/// names), running until the test ends; returns its address.
pub async fn start_server(config: recordsync_server::Config) -> String {
    let server = recordsync_server::Server::bind(recordsync_server::Config { port: 0, ..config })
        .await
        .expect("server binds");
    let addr = server.local_addr().to_string();
    tokio::spawn(server.run(std::future::pending()));
    addr
}

/// [`start_server`] with the default settings on the memory store.
pub async fn memory_server() -> String {
    start_server(recordsync_server::Config {
        storage: recordsync_server::StorageKind::Memory,
        ..recordsync_server::Config::default()
    })
    .await
}

pub struct RawClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub json: bool,
}

impl RawClient {
    /// Connects to the binary endpoint without logging in.
    pub async fn connect_raw(addr: &str, path: &str) -> RawClient {
        let url = format!("ws://{addr}{path}");
        let (ws, _) = tokio::time::timeout(TIMEOUT, connect_async(&url))
            .await
            .expect("connect in time")
            .expect("connect");
        RawClient {
            ws,
            json: path.ends_with("-json"),
        }
    }

    /// Connects and logs in (challenge, accept, auth) on the binary endpoint.
    pub async fn connect(addr: &str) -> RawClient {
        Self::connect_to(addr, "/deepstream").await
    }

    pub async fn connect_to(addr: &str, path: &str) -> RawClient {
        let mut c = Self::connect_raw(addr, path).await;
        c.send(ConnectionMessage {
            action: ConnectionAction::Challenge as i32,
            url: Some(format!("ws://{addr}{path}")),
            protocol_version: Some("0.1a".into()),
            ..Default::default()
        })
        .await;
        match c.recv().await {
            Message::Connection(m) => assert_eq!(m.action, ConnectionAction::Accept as i32),
            other => panic!("expected ACCEPT, got {other:?}"),
        }
        c.send(AuthMessage {
            action: AuthAction::Request as i32,
            data: Some("{}".into()),
            ..Default::default()
        })
        .await;
        match c.recv().await {
            Message::Auth(m) => assert_eq!(m.action, AuthAction::AuthSuccessful as i32),
            other => panic!("expected AUTH_SUCCESSFUL, got {other:?}"),
        }
        c
    }

    pub async fn send(&mut self, m: impl Into<Message>) {
        let m = m.into();
        let frame = if self.json {
            Frame::Text(json::encode(&m).into())
        } else {
            Frame::Binary(binary::encode(&m))
        };
        self.ws.send(frame).await.expect("send");
    }

    pub async fn send_frame(&mut self, frame: Frame) {
        self.ws.send(frame).await.expect("send");
    }

    /// The next message; panics after [`TIMEOUT`].
    pub async fn recv(&mut self) -> Message {
        self.try_recv(TIMEOUT).await.expect("a message in time")
    }

    /// The next message, or `None` when nothing came within `wait` or the socket closed.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Message> {
        Some(match self.try_recv_frame(wait).await? {
            Frame::Binary(bytes) => {
                binary::decode(&bytes, usize::MAX).expect("server sent a valid frame")
            }
            Frame::Text(text) => {
                json::decode(text.as_str(), usize::MAX).expect("server sent valid JSON")
            }
            other => unreachable!("try_recv_frame returns data frames only: {other:?}"),
        })
    }

    /// The next data frame (binary or text) as it came, for tests of the exact wire form;
    /// panics after [`TIMEOUT`].
    pub async fn recv_frame(&mut self) -> Frame {
        self.try_recv_frame(TIMEOUT).await.expect("a frame in time")
    }

    /// The next data frame, or `None` when nothing came within `wait` or the socket closed.
    async fn try_recv_frame(&mut self, wait: Duration) -> Option<Frame> {
        loop {
            let frame = tokio::time::timeout(wait, self.ws.next())
                .await
                .ok()??
                .ok()?;
            match frame {
                Frame::Binary(_) | Frame::Text(_) => return Some(frame),
                Frame::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Waits for the socket to be closed by the server; panics if it stays open.
    pub async fn expect_closed(&mut self) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => panic!("the server did not close the connection"),
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Frame::Close(_)))) => return,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Waits for the server's close frame and returns its code; panics if the socket ends
    /// without one or stays open.
    pub async fn expect_close_code(&mut self) -> u16 {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => panic!("the server did not close the connection"),
                Ok(Some(Ok(Frame::Close(Some(close))))) => return close.code.into(),
                Ok(Some(Ok(Frame::Close(None)))) => panic!("a close frame without a code"),
                Ok(None) | Ok(Some(Err(_))) => panic!("the connection ended without a close frame"),
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The raw TCP stream under the WebSocket, for bytes no WebSocket client would send.
    pub fn tcp(&mut self) -> &mut TcpStream {
        match self.ws.get_mut() {
            MaybeTlsStream::Plain(tcp) => tcp,
            _ => unreachable!("tests connect without TLS"),
        }
    }

    pub async fn recv_record(&mut self) -> RecordMessage {
        match self.recv().await {
            Message::Record(m) => m,
            other => panic!("expected a record message, got {other:?}"),
        }
    }

    pub async fn recv_event(&mut self) -> EventMessage {
        match self.recv().await {
            Message::Event(m) => m,
            other => panic!("expected an event message, got {other:?}"),
        }
    }

    /// Subscribes to the events `name` and checks deepstream's ack
    /// `{action: SUBSCRIBE, correlationId, isAck}`.
    pub async fn subscribe_event(&mut self, name: &str) {
        self.send(EventMessage {
            names: vec![name.into()],
            correlation_id: Some("s".into()),
            ..EventMessage::new(EventAction::Subscribe)
        })
        .await;
        let ack = self.recv_event().await;
        assert_eq!(
            (ack.action, ack.is_ack, ack.correlation_id.as_deref()),
            (EventAction::Subscribe as i32, Some(true), Some("s")),
            "{ack:?}"
        );
    }

    /// Emits `data` (JSON text; `None`: no data) as the event `name`.
    pub async fn emit(&mut self, name: &str, data: Option<&str>) {
        self.send(EventMessage {
            data: data.map(Into::into),
            ..EventMessage::named(EventAction::Emit, name)
        })
        .await;
    }

    /// Receives record messages until one has `action`, returning it; others are skipped.
    pub async fn recv_action(&mut self, action: RecordAction) -> RecordMessage {
        loop {
            let m = self.recv_record().await;
            if m.action == action as i32 {
                return m;
            }
        }
    }

    /// Receives record messages until one has any of `actions`, returning it.
    pub async fn recv_action_in(&mut self, actions: &[RecordAction]) -> RecordMessage {
        loop {
            let m = self.recv_record().await;
            if actions.iter().any(|a| m.action == *a as i32) {
                return m;
            }
        }
    }

    /// Subscribes (SUBSCRIBECREATEANDREAD) and returns the READ_RESPONSE.
    pub async fn subscribe(&mut self, name: &str) -> RecordMessage {
        self.send(RecordMessage {
            names: vec![name.into()],
            correlation_id: Some("s".into()),
            ..RecordMessage::new(RecordAction::SubscribeCreateAndRead)
        })
        .await;
        let ack = self.recv_record().await;
        assert_eq!(ack.action, RecordAction::SubscribeCreateAndRead as i32);
        assert_eq!(ack.is_ack, Some(true));
        let read = self.recv_record().await;
        assert_eq!(read.action, RecordAction::ReadResponse as i32, "{read:?}");
        read
    }

    /// Sends a write and, with `ack`, waits for its WRITE_ACKNOWLEDGEMENT.
    pub async fn write(&mut self, m: RecordMessage, ack: Option<&str>) {
        let mut m = m;
        if let Some(id) = ack {
            m.is_write_ack = Some(true);
            m.correlation_id = Some(id.into());
        }
        self.send(m).await;
        if let Some(id) = ack {
            let reply = self.recv_record().await;
            assert_eq!(
                reply.action,
                RecordAction::WriteAcknowledgement as i32,
                "{reply:?}"
            );
            assert_eq!(reply.correlation_id.as_deref(), Some(id));
        }
    }

    /// Reads the record as a snapshot (READ): the READ_RESPONSE, or the error reply.
    pub async fn read(&mut self, name: &str) -> RecordMessage {
        self.send(RecordMessage::named(RecordAction::Read, name))
            .await;
        self.recv_action_in(&[RecordAction::ReadResponse, RecordAction::RecordNotFound])
            .await
    }

    pub async fn head(&mut self, name: &str) -> i32 {
        self.send(RecordMessage::named(RecordAction::Head, name))
            .await;
        let reply = self.recv_action(RecordAction::HeadResponse).await;
        reply.version.expect("HEAD_RESPONSE carries a version")
    }
}

pub fn update(name: &str, version: i32, data: &str) -> RecordMessage {
    RecordMessage {
        version: Some(version),
        data: Some(data.into()),
        ..RecordMessage::named(RecordAction::Update, name)
    }
}

pub fn patch(name: &str, version: i32, path: &str, data: &str) -> RecordMessage {
    RecordMessage {
        version: Some(version),
        path: Some(path.into()),
        data: Some(data.into()),
        ..RecordMessage::named(RecordAction::Patch, name)
    }
}

/// `{"a":{"a":...{"a":1}...}}`: `levels` objects inside one another.
pub fn nested_json(levels: usize) -> String {
    format!("{}1{}", "{\"a\":".repeat(levels), "}".repeat(levels))
}

pub fn json_value(text: &Option<String>) -> serde_json::Value {
    recordsync_core::json::parse(text.as_deref().expect("data present")).expect("data is JSON")
}

/// A listen message: LISTEN / UNLISTEN (`subscription` none) or an answer to an offer.
pub fn listen_msg(
    action: RecordAction,
    pattern: &str,
    subscription: Option<&str>,
) -> RecordMessage {
    RecordMessage {
        subscription: subscription.map(Into::into),
        ..RecordMessage::named(action, pattern)
    }
}

/// The status code of `GET /health-check` on the server at `addr`.
pub async fn health_status(addr: &str) -> u16 {
    http_get(addr, "/health-check").await.0
}

/// `GET path` on the server at `addr` over HTTP/1.1: the status code, the response's
/// head (status line and headers) and its body.
pub async fn http_get(addr: &str, path: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.expect("the server listens");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_string(&mut response))
        .await
        .expect("the server answers in time")
        .unwrap();
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP status line: {response}"));
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("a head and a body: {response}"));
    (code, head.to_owned(), body.to_owned())
}
