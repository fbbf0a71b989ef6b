//! The generator's deepstream client: WebSocket plus the project's own codec
//! (`recordsync_deepstream_protocol::binary`), nothing else. It speaks only what the scenarios need:
//! the handshake, login, SUBSCRIBECREATEANDREAD, and acknowledged UPDATEs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

use recordsync_deepstream_protocol::{
    AuthAction, AuthMessage, ConnectionAction, ConnectionMessage, Message, RecordAction,
    RecordMessage, binary,
};

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;
pub type Ws = WebSocketStream<TcpStream>;

/// How long one setup step (connect, login, subscribe) may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens a WebSocket to `ws://addr{path}`. `read_buffer` is the socket read size: large
/// for subscribers that receive floods of small frames, small for thousands of idle ones.
pub async fn connect(addr: SocketAddr, path: &str, read_buffer: usize) -> Result<Ws> {
    let step = async {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let config = WebSocketConfig::default()
            .read_buffer_size(read_buffer)
            .write_buffer_size(0)
            .max_write_buffer_size(1 << 20);
        let (ws, _) = client_async_with_config(format!("ws://{addr}{path}"), tcp, Some(config))
            .await
            .map_err(|e| format!("WebSocket handshake with {addr}{path}: {e}"))?;
        Ok::<Ws, Error>(ws)
    };
    tokio::time::timeout(STEP_TIMEOUT, step)
        .await
        .map_err(|_| format!("connecting to {addr} timed out"))?
}

pub fn frame(m: impl Into<Message>) -> Frame {
    Frame::Binary(binary::encode(&m.into()))
}

/// Decodes a server frame; `None` for frames that carry no deepstream message.
pub fn decode(frame: &Frame) -> Result<Option<Message>> {
    match frame {
        Frame::Binary(bytes) => Ok(Some(binary::decode(bytes, usize::MAX)?)),
        Frame::Close(c) => Err(format!("closed by the server: {c:?}").into()),
        _ => Ok(None),
    }
}

pub async fn recv(ws: &mut Ws) -> Result<Message> {
    loop {
        let frame = tokio::time::timeout(STEP_TIMEOUT, ws.next())
            .await
            .map_err(|_| "no reply in time")?
            .ok_or("connection closed")??;
        if let Some(m) = decode(&frame)? {
            return Ok(m);
        }
    }
}

/// CHALLENGE → ACCEPT, AUTH REQUEST → AUTH_SUCCESSFUL.
pub async fn login(ws: &mut Ws, url: &str) -> Result<()> {
    ws.send(frame(ConnectionMessage {
        action: ConnectionAction::Challenge as i32,
        url: Some(url.into()),
        protocol_version: Some("0.1a".into()),
        sdk_version: Some("recordsync-bench".into()),
        sdk_type: Some("rust".into()),
        ..Default::default()
    }))
    .await?;
    loop {
        match recv(ws).await? {
            Message::Connection(m) if m.action == ConnectionAction::Accept as i32 => break,
            Message::Connection(m) if m.action == ConnectionAction::Ping as i32 => continue,
            other => return Err(format!("expected ACCEPT, got {other:?}").into()),
        }
    }
    ws.send(frame(AuthMessage {
        action: AuthAction::Request as i32,
        data: Some("{}".into()),
        ..Default::default()
    }))
    .await?;
    match recv(ws).await? {
        Message::Auth(m) if m.action == AuthAction::AuthSuccessful as i32 => Ok(()),
        other => Err(format!("expected AUTH_SUCCESSFUL, got {other:?}").into()),
    }
}

/// SUBSCRIBECREATEANDREAD of `names` in one message, as the JS client batches them;
/// returns each record's version from its READ_RESPONSE.
pub async fn subscribe(ws: &mut Ws, names: &[String]) -> Result<HashMap<String, i32>> {
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    ws.send(frame(RecordMessage {
        names: names.to_vec(),
        correlation_id: Some("s".into()),
        ..RecordMessage::new(RecordAction::SubscribeCreateAndRead)
    }))
    .await?;
    let mut versions = HashMap::with_capacity(names.len());
    while versions.len() < names.len() {
        match recv(ws).await? {
            Message::Record(m) if m.action == RecordAction::ReadResponse as i32 => {
                let name = m.name.ok_or("READ_RESPONSE without a name")?;
                versions.insert(name, m.version.unwrap_or(0));
            }
            Message::Record(m) if m.is_error == Some(true) => {
                return Err(format!("subscribe refused: {m:?}").into());
            }
            _ => {}
        }
    }
    Ok(versions)
}

/// Connects, logs in and subscribes: a client ready to receive updates.
pub async fn ready_client(
    addr: SocketAddr,
    path: &str,
    read_buffer: usize,
    names: &[String],
) -> Result<(Ws, HashMap<String, i32>)> {
    let mut ws = connect(addr, path, read_buffer).await?;
    let url = format!("ws://{addr}{path}");
    tokio::time::timeout(STEP_TIMEOUT, login(&mut ws, &url))
        .await
        .map_err(|_| "login timed out")??;
    let versions = tokio::time::timeout(STEP_TIMEOUT, subscribe(&mut ws, names))
        .await
        .map_err(|_| "subscribe timed out")??;
    Ok((ws, versions))
}

/// An acknowledged whole-record UPDATE. Its data starts with the send time, which
/// subscribers read back (see [`stamp`]); `pad` makes the payload the size asked for.
pub fn update(name: &str, version: i32, correlation: u64, micros: u64, pad: &str) -> Frame {
    frame(RecordMessage {
        version: Some(version),
        data: Some(format!("{{\"t\":{micros},\"p\":\"{pad}\"}}")),
        correlation_id: Some(correlation.to_string()),
        is_write_ack: Some(true),
        ..RecordMessage::named(RecordAction::Update, name)
    })
}

/// The send time in an update's data, written by [`update`] as its first member.
pub fn stamp(data: &str) -> Option<u64> {
    let rest = data.strip_prefix("{\"t\":")?;
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

/// Microseconds since `epoch`, the clock every timestamp of a run is read from.
pub fn micros_since(epoch: Instant, at: Instant) -> u64 {
    at.saturating_duration_since(epoch).as_micros() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip() {
        let f = update("r/1", 3, 9, 123_456, "xx");
        let Some(Message::Record(m)) = decode(&f).unwrap() else {
            panic!()
        };
        assert_eq!(stamp(m.data.as_deref().unwrap()), Some(123_456));
        assert_eq!(m.version, Some(3));
        assert_eq!(stamp("{\"x\":1}"), None);
    }
}
