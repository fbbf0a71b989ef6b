//! One deepstream WebSocket connection: handshake, authentication, heartbeats, and the
//! dispatch of record messages.
//!
//! The connection's reader runs here; a separate writer task drains the outbox into the
//! socket, writing whatever has queued up before each flush.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as Frame, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Semaphore, oneshot};
use tokio::time::{Instant, interval_at, sleep_until};

use recordsync_protocol::{
    AuthAction, AuthMessage, ConnectionAction, ConnectionMessage, DecodeError, Message,
    ParserAction, ParserMessage, Topic, binary, json,
};

use super::record::RecordTopic;
use super::session::{Session, Transport};
use crate::ServerState;
use crate::auth::login::Login;
use crate::outbox::{Outbox, OutboxReceiver};
use crate::permission::Guard;

/// Where the connection is in deepstream's handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    AwaitingChallenge,
    AwaitingAuth,
    Open,
}

/// WebSocket close code for "policy violation": what a client is told when it is cut off
/// for not reading or for failing authentication.
const POLICY: u16 = 1008;
const OVERFLOW: (u16, &str) = (POLICY, "outbound queue full: the client is not reading");

pub async fn run(socket: WebSocket, state: Arc<ServerState>, transport: Transport) {
    let config = &state.config;
    let (mut sink, mut stream) = socket.split();
    let (
        outbox,
        OutboxReceiver {
            mut frames,
            overflow,
        },
    ) = Outbox::new(config.outbound_queue_limit);
    let session = Arc::new(Session {
        id: state.next_session_id(),
        transport,
        outbox,
    });
    let (close_tx, mut close_rx) = oneshot::channel::<CloseFrame>();

    let writer = tokio::spawn(async move {
        // Grows to the largest batch this connection has seen: an idle connection keeps
        // a few frames' worth, not 64.
        let mut batch = Vec::new();
        loop {
            tokio::select! {
                biased;
                n = frames.recv_many(&mut batch, 64) => {
                    if n == 0 {
                        break;
                    }
                    for frame in batch.drain(..) {
                        if sink.feed(frame).await.is_err() {
                            return;
                        }
                    }
                    if sink.flush().await.is_err() {
                        return;
                    }
                }
                close = &mut close_rx => {
                    if let Ok(close) = close {
                        let _ = sink.send(Frame::Close(Some(close))).await;
                    }
                    break;
                }
            }
        }
        let _ = sink.close().await;
    });

    let mut records = RecordTopic {
        session: session.clone(),
        engine: state.engine.clone(),
        subscriptions: HashSet::new(),
        pending_writes: Arc::new(Semaphore::new(config.max_pending_writes)),
        guard: Guard::new(config, state.engine.clone()),
    };
    let mut stage = Stage::AwaitingChallenge;
    let auth_deadline = Instant::now() + config.unauthenticated_timeout;
    let heartbeat = config.heartbeat_interval;
    let mut liveness = interval_at(Instant::now() + heartbeat, heartbeat);
    let mut last_heard = Instant::now();

    let close_reason: Option<(u16, &'static str)> = loop {
        tokio::select! {
            frame = stream.next() => {
                let Some(Ok(frame)) = frame else { break None };
                last_heard = Instant::now();
                let decoded = match (transport, frame) {
                    (Transport::Binary, Frame::Binary(bytes)) => binary::decode(&bytes, config.max_message_size),
                    (Transport::Json, Frame::Text(text)) => json::decode(text.as_str(), config.max_message_size),
                    (_, Frame::Close(_)) => break None,
                    (_, Frame::Ping(_) | Frame::Pong(_)) => continue,
                    (Transport::Binary, Frame::Text(_)) => {
                        break Some((POLICY, "text frames are not accepted on the binary endpoint"));
                    }
                    (Transport::Json, Frame::Binary(_)) => {
                        break Some((POLICY, "binary frames are not accepted on the JSON endpoint"));
                    }
                };
                let message = match decoded {
                    Ok(message) => message,
                    Err(e) => {
                        parse_error(&session, &e);
                        continue;
                    }
                };
                // Boxed: the future of the deepest message handler is several KiB, and
                // inline it would be part of every connection's task, idle or not.
                match Box::pin(handle(&mut stage, &mut records, &session, message)).await {
                    Flow::Continue => {}
                    Flow::Close(reason) => break Some(reason),
                }
            }
            _ = sleep_until(auth_deadline), if stage != Stage::Open => {
                session.send(ConnectionMessage {
                    action: ConnectionAction::AuthenticationTimeout as i32,
                    ..Default::default()
                });
                break Some((POLICY, "not authenticated in time"));
            }
            _ = liveness.tick() => {
                // deepstream closes a connection that missed two heartbeats.
                if last_heard.elapsed() > heartbeat * 2 {
                    break Some((POLICY, "no heartbeat"));
                }
            }
            _ = overflow.wait() => {
                tracing::warn!(session = session.id, "outbound queue full: disconnecting a client that does not read");
                break Some(OVERFLOW);
            }
        }
    };

    records.close().await;
    let overflowed = close_reason == Some(OVERFLOW);
    if let Some((code, reason)) = close_reason {
        let _ = close_tx.send(CloseFrame {
            code,
            reason: reason.into(),
        });
    }
    drop(records);
    drop(session);
    // A client that does not read would keep the writer blocked forever: cut it off now.
    // Otherwise give the writer a moment to deliver what is queued and say goodbye.
    let mut writer = writer;
    if overflowed
        || tokio::time::timeout(Duration::from_secs(5), &mut writer)
            .await
            .is_err()
    {
        writer.abort();
    }
}

enum Flow {
    Continue,
    Close((u16, &'static str)),
}

async fn handle(
    stage: &mut Stage,
    records: &mut RecordTopic,
    session: &Session,
    message: Message,
) -> Flow {
    match (message, *stage) {
        (Message::Connection(m), _) => connection(stage, session, m),
        (Message::Auth(m), Stage::AwaitingAuth) => {
            if m.action == AuthAction::Request as i32 {
                match records.guard.login(session, &m).await {
                    Login::Accepted => *stage = Stage::Open,
                    Login::Refused => {}
                    Login::Close(reason) => return Flow::Close((POLICY, reason)),
                }
            } else {
                session.send(AuthMessage {
                    action: AuthAction::InvalidMessage as i32,
                    is_error: Some(true),
                    ..Default::default()
                });
            }
            Flow::Continue
        }
        (Message::Record(m), Stage::Open) => {
            records.handle(m).await;
            Flow::Continue
        }
        (Message::Auth(_) | Message::Record(_), Stage::AwaitingChallenge) => {
            session.send(ConnectionMessage {
                action: ConnectionAction::InvalidMessage as i32,
                is_error: Some(true),
                data: Some("\"send CONNECTION CHALLENGE first\"".into()),
                ..Default::default()
            });
            Flow::Continue
        }
        (Message::Record(_), _) => {
            session.send(AuthMessage {
                action: AuthAction::InvalidMessage as i32,
                is_error: Some(true),
                data: Some("\"log in first\"".into()),
                ..Default::default()
            });
            Flow::Continue
        }
        (Message::Auth(_), Stage::Open) => {
            session.send(AuthMessage {
                action: AuthAction::InvalidMessage as i32,
                is_error: Some(true),
                data: Some("\"already logged in\"".into()),
                ..Default::default()
            });
            Flow::Continue
        }
        (Message::Parser(_), _) => Flow::Continue,
        (Message::Other { topic, action }, _) => {
            let name = Topic::try_from(topic)
                .map_or("unknown".to_owned(), |t| format!("{t:?}").to_uppercase());
            session.send(ParserMessage {
                action: ParserAction::UnknownTopic as i32,
                original_topic: Some(topic),
                original_action: action,
                data: Some(format!(
                    "\"recordsync serves records only; the {name} topic is not supported\""
                )),
            });
            Flow::Continue
        }
    }
}

fn connection(stage: &mut Stage, session: &Session, m: ConnectionMessage) -> Flow {
    match ConnectionAction::try_from(m.action) {
        Ok(ConnectionAction::Ping) => {
            session.send(ConnectionMessage {
                action: ConnectionAction::Pong as i32,
                ..Default::default()
            });
            Flow::Continue
        }
        Ok(ConnectionAction::Pong) => Flow::Continue,
        Ok(ConnectionAction::Challenge) if *stage == Stage::AwaitingChallenge => {
            *stage = Stage::AwaitingAuth;
            session.send(ConnectionMessage {
                action: ConnectionAction::Accept as i32,
                ..Default::default()
            });
            Flow::Continue
        }
        Ok(ConnectionAction::Closing) => {
            session.send(ConnectionMessage {
                action: ConnectionAction::Closed as i32,
                ..Default::default()
            });
            Flow::Close((1000, "closed by the client"))
        }
        _ => {
            session.send(ConnectionMessage {
                action: ConnectionAction::InvalidMessage as i32,
                is_error: Some(true),
                data: Some("\"unexpected connection message\"".into()),
                ..Default::default()
            });
            Flow::Continue
        }
    }
}

fn parse_error(session: &Session, error: &DecodeError) {
    let action = match error {
        DecodeError::TooLarge { .. } => ParserAction::MaximumMessageSizeExceeded,
        DecodeError::UnknownTopic(_) => ParserAction::UnknownTopic,
        DecodeError::Protobuf(_) | DecodeError::Json(_) => ParserAction::MessageParseError,
    };
    session.send(ParserMessage {
        action: action as i32,
        data: Some(serde_json::Value::String(error.to_string()).to_string()),
        ..Default::default()
    });
}
