//! The bare broadcaster: the ceiling of this machine for the fan-out scenario.
//!
//! A minimal tokio WebSocket server with the same socket stack as recordsync (tungstenite,
//! a reader and a writer task per connection, frames shared, not copied). It answers just
//! enough of deepstream's handshake for the generator to log in and subscribe, and forwards
//! each UPDATE frame, byte for byte, to the connections subscribed to that name, acking the
//! writer. No versions, no storage, no JSON: what is left is the cost of moving frames.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use recordsync_deepstream_protocol::{
    AuthAction, AuthMessage, ConnectionAction, ConnectionMessage, Message, RecordAction,
    RecordMessage, binary,
};

type Subscribers = RwLock<HashMap<String, Vec<(u64, mpsc::Sender<Frame>)>>>;

/// Serves on `listener` until the process ends.
pub async fn serve(listener: TcpListener) {
    let subscribers: Arc<Subscribers> = Arc::default();
    let mut next_id = 0u64;
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        next_id += 1;
        tokio::spawn(connection(tcp, next_id, subscribers.clone()));
    }
}

fn encode(m: impl Into<Message>) -> Frame {
    Frame::Binary(binary::encode(&m.into()))
}

async fn connection(tcp: TcpStream, id: u64, subscribers: Arc<Subscribers>) {
    let _ = tcp.set_nodelay(true);
    let config = WebSocketConfig::default();
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Frame>(65536);
    let writer = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(64);
        while rx.recv_many(&mut batch, 64).await > 0 {
            for frame in batch.drain(..) {
                if sink.feed(frame).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    let mut mine: Vec<String> = Vec::new();
    while let Some(Ok(frame)) = stream.next().await {
        let Frame::Binary(bytes) = frame else {
            continue;
        };
        let Ok(message) = binary::decode(&bytes, 1 << 20) else {
            continue;
        };
        let reply = match message {
            Message::Connection(m) if m.action == ConnectionAction::Challenge as i32 => {
                Some(encode(ConnectionMessage {
                    action: ConnectionAction::Accept as i32,
                    ..Default::default()
                }))
            }
            Message::Connection(m) if m.action == ConnectionAction::Ping as i32 => {
                Some(encode(ConnectionMessage {
                    action: ConnectionAction::Pong as i32,
                    ..Default::default()
                }))
            }
            Message::Auth(_) => Some(encode(AuthMessage {
                action: AuthAction::AuthSuccessful as i32,
                ..Default::default()
            })),
            Message::Record(m) if m.action == RecordAction::Update as i32 => {
                if let Some(name) = &m.name {
                    let map = subscribers.read().expect("not poisoned");
                    for (sub, out) in map.get(name).into_iter().flatten() {
                        if *sub != id {
                            let _ = out.try_send(Frame::Binary(bytes.clone()));
                        }
                    }
                }
                (m.is_write_ack == Some(true)).then(|| {
                    encode(RecordMessage {
                        name: m.name,
                        correlation_id: m.correlation_id,
                        is_write_ack: Some(true),
                        ..RecordMessage::new(RecordAction::WriteAcknowledgement)
                    })
                })
            }
            Message::Record(m) if m.action == RecordAction::SubscribeCreateAndRead as i32 => {
                let _ = tx.try_send(encode(RecordMessage {
                    action: m.action,
                    names: m.names.clone(),
                    correlation_id: m.correlation_id.clone(),
                    is_ack: Some(true),
                    ..Default::default()
                }));
                let mut map = subscribers.write().expect("not poisoned");
                for name in m.names {
                    map.entry(name.clone()).or_default().push((id, tx.clone()));
                    let _ = tx.try_send(encode(RecordMessage {
                        version: Some(0),
                        data: Some("{}".into()),
                        ..RecordMessage::named(RecordAction::ReadResponse, name.clone())
                    }));
                    mine.push(name);
                }
                None
            }
            _ => None,
        };
        if let Some(reply) = reply {
            let _ = tx.try_send(reply);
        }
    }
    {
        let mut map = subscribers.write().expect("not poisoned");
        for name in mine {
            if let Some(list) = map.get_mut(&name) {
                list.retain(|(sub, _)| *sub != id);
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}
