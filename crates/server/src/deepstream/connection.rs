//! One deepstream WebSocket connection: handshake, authentication, heartbeats, and the
//! dispatch of record messages.
//!
//! One task serves the connection: it reads and handles the client's messages, and it
//! writes the outbox into the socket, everything that has queued up in one flush. A
//! message's handler runs while queued frames keep being written; the next message is
//! read once it is done, so messages are handled in order.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep, sleep_until};
use tungstenite::error::CapacityError;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::Message as Frame;

use recordsync_deepstream_protocol::{
    AuthAction, AuthMessage, ConnectionAction, ConnectionMessage, DecodeError, Message,
    ParserAction, ParserMessage, Topic, binary, json,
};

use super::login::Login;
use super::record::{NameSet, RecordTopic};
use super::session::{Session, Transport};
use crate::ServerState;
use crate::net::outbox::{Outbox, OutboxReceiver, Taken};
use crate::permission::Guard;
use crate::websocket::Socket;

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
/// WebSocket close code for "message too big", what deepstream closes with too.
const TOO_BIG: u16 = 1009;
const OVERFLOW: (u16, &str) = (POLICY, "outbound queue full: the client is not reading");
const TOO_BIG_CLOSE: (u16, &str) = (TOO_BIG, "message larger than maxMessageSize");

/// What a message handler works on; moved into the handler while it runs.
struct Conn {
    stage: Stage,
    records: RecordTopic,
}

type Handling = Pin<Box<dyn Future<Output = (Conn, Flow)> + Send>>;

/// What woke the connection's task.
enum Event {
    Frame(Frame),
    Handled(Conn, Flow),
    Timer,
    Overflowed,
    /// The client sent a message larger than `maxMessageSize`: at least `size` bytes.
    TooLarge {
        size: usize,
        limit: usize,
    },
    /// The client closed the socket, or it failed.
    Gone,
}

/// Why writing stopped for good.
enum Ended {
    Overflowed,
    Gone,
}

/// The socket and the outbox that feeds it.
struct Io {
    socket: Socket,
    outbox: OutboxReceiver,
}

impl Io {
    /// Writes whatever the outbox holds, without waiting. `Err`: why the connection ends.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Result<(), Ended> {
        loop {
            match self.socket.poll_flush(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Err(Ended::Gone),
                // The client is not reading: the frames wait in the socket's queue, later
                // ones in the outbox, until the socket drains or the outbox overflows.
                Poll::Pending => {
                    return match self.outbox.poll_overflow(cx) {
                        Poll::Ready(()) => Err(Ended::Overflowed),
                        Poll::Pending => Ok(()),
                    };
                }
            }
            match self.outbox.poll_take(cx, self.socket.queue()) {
                Poll::Ready(Taken::Frames) => continue,
                Poll::Ready(Taken::Overflowed) => return Err(Ended::Overflowed),
                Poll::Pending => {
                    // Going quiet: an idle connection keeps no frame buffer. Under load
                    // this is one small allocation per write, against a system call.
                    let queue = self.socket.queue();
                    if queue.capacity() > 0 {
                        *queue = Default::default();
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Writes, and waits for the next thing to do.
    fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
        handling: &mut Option<Handling>,
        timer: Pin<&mut Sleep>,
    ) -> Poll<Event> {
        match self.poll_write(cx) {
            Ok(()) => {}
            Err(Ended::Overflowed) => return Poll::Ready(Event::Overflowed),
            Err(Ended::Gone) => return Poll::Ready(Event::Gone),
        }
        if let Some(handler) = handling {
            return match handler.as_mut().poll(cx) {
                Poll::Ready((conn, flow)) => {
                    *handling = None;
                    Poll::Ready(Event::Handled(conn, flow))
                }
                Poll::Pending => Poll::Pending,
            };
        }
        if timer.poll(cx).is_ready() {
            return Poll::Ready(Event::Timer);
        }
        let read = self.socket.poll_read(cx);
        if self.socket.has_unwritten() {
            // Reading queued a reply to a ping or to the client's close.
            if let Err(ended) = self.poll_write(cx) {
                return Poll::Ready(match ended {
                    Ended::Overflowed => Event::Overflowed,
                    Ended::Gone => Event::Gone,
                });
            }
        }
        match read {
            Poll::Ready(Ok(frame)) => Poll::Ready(Event::Frame(frame)),
            Poll::Ready(Err(tungstenite::Error::Capacity(CapacityError::MessageTooLong {
                size,
                max_size,
            }))) => Poll::Ready(Event::TooLarge {
                size,
                limit: max_size,
            }),
            Poll::Ready(Err(_)) => Poll::Ready(Event::Gone),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Writes what is queued (including what queues up meanwhile), then `close` (if any),
    /// and closes the socket. With `drain`, what the client still sends is read and
    /// dropped until it closes its side: closing a socket with unread bytes resets the
    /// connection, which can destroy the last frames before the client reads them.
    async fn finish(&mut self, close: Option<CloseFrame>, drain: bool) {
        loop {
            if poll_fn(|cx| self.socket.poll_flush(cx)).await.is_err() {
                return;
            }
            let taken =
                poll_fn(|cx| Poll::Ready(self.outbox.poll_take(cx, self.socket.queue()))).await;
            if taken != Poll::Ready(Taken::Frames) {
                break;
            }
        }
        if let Some(close) = close {
            self.socket.queue_close(Some(close));
        }
        if self.socket.finish().await.is_ok() && drain {
            self.socket.drain().await;
        }
    }
}

pub async fn run(socket: Socket, state: Arc<ServerState>, transport: Transport) {
    let config = &state.config;
    let (outbox, outbox_rx) = Outbox::new(config.outbound_queue_limit);
    let session = Arc::new(Session {
        id: state.next_session_id(),
        transport,
        outbox,
    });
    let mut io = Io {
        socket,
        outbox: outbox_rx,
    };
    let mut conn = Some(Conn {
        stage: Stage::AwaitingChallenge,
        records: RecordTopic {
            session: session.clone(),
            engine: state.engine.clone(),
            subscriptions: NameSet::default(),
            pending_writes: Arc::new(Semaphore::new(config.max_pending_writes)),
            guard: Guard::new(config, state.engine.clone()),
        },
    });
    let mut handling: Option<Handling> = None;
    let auth_deadline = Instant::now() + config.unauthenticated_timeout;
    let heartbeat = config.heartbeat_interval;
    let mut last_heard = Instant::now();
    let mut next_check = last_heard + heartbeat;
    // One timer for the heartbeat check and, until the client's first login attempt has
    // been answered, the authentication deadline. deepstream stops that deadline at the
    // first answer, success or not: a client whose login was refused (say, its token
    // after a server restart) may keep its connection and try again later, bounded by
    // `maxAuthAttempts` and the heartbeat.
    let timer = sleep_until(next_check.min(auth_deadline));
    tokio::pin!(timer);

    let close_reason: Option<(u16, &'static str)> = loop {
        let event = poll_fn(|cx| io.poll_event(cx, &mut handling, timer.as_mut())).await;
        match event {
            Event::Frame(frame) => {
                last_heard = Instant::now();
                let decoded = match (transport, frame) {
                    (Transport::Binary, Frame::Binary(bytes)) => {
                        binary::decode(&bytes, config.max_message_size)
                    }
                    (Transport::Json, Frame::Text(text)) => {
                        json::decode(text.as_str(), config.max_message_size)
                    }
                    (_, Frame::Close(_)) => break None,
                    // Pings are answered by the socket; raw frames are never returned by
                    // a reader.
                    (_, Frame::Ping(_) | Frame::Pong(_) | Frame::Frame(_)) => continue,
                    (Transport::Binary, Frame::Text(_)) => {
                        break Some((
                            POLICY,
                            "text frames are not accepted on the binary endpoint",
                        ));
                    }
                    (Transport::Json, Frame::Binary(_)) => {
                        break Some((
                            POLICY,
                            "binary frames are not accepted on the JSON endpoint",
                        ));
                    }
                };
                let message = match decoded {
                    Ok(message) => message,
                    Err(e) => {
                        parse_error(&session, &e);
                        continue;
                    }
                };
                let mut c = conn.take().expect("one message is handled at a time");
                // Boxed: the future of the deepest message handler is several KiB, and
                // inline it would be part of every connection's task, idle or not.
                handling = Some(Box::pin(async move {
                    let session = c.records.session.clone();
                    let flow = handle(&mut c.stage, &mut c.records, &session, message).await;
                    (c, flow)
                }));
            }
            Event::Handled(c, flow) => {
                conn = Some(c);
                if let Flow::Close(reason) = flow {
                    break Some(reason);
                }
            }
            Event::Timer => {
                let now = Instant::now();
                let awaiting_login = conn
                    .as_ref()
                    .is_some_and(|c| c.stage != Stage::Open && c.records.guard.failed_logins == 0);
                if awaiting_login && now >= auth_deadline {
                    session.send(ConnectionMessage {
                        action: ConnectionAction::AuthenticationTimeout as i32,
                        ..Default::default()
                    });
                    break Some((POLICY, "not authenticated in time"));
                }
                if now >= next_check {
                    // deepstream closes a connection that missed two heartbeats.
                    if now.duration_since(last_heard) > heartbeat * 2 {
                        break Some((POLICY, "no heartbeat"));
                    }
                    next_check = (next_check + heartbeat).max(now);
                }
                let due = if awaiting_login {
                    next_check.min(auth_deadline)
                } else {
                    next_check
                };
                timer.as_mut().reset(due);
            }
            Event::Overflowed => {
                tracing::warn!(
                    session = session.id,
                    "outbound queue full: disconnecting a client that does not read"
                );
                break Some(OVERFLOW);
            }
            Event::TooLarge { size, limit } => {
                // The rest of the message was never read, so nothing after it can be
                // either: tell the client why, and close as deepstream does (1009).
                session.send(ParserMessage {
                    action: ParserAction::MaximumMessageSizeExceeded as i32,
                    data: Some(
                        serde_json::Value::String(format!(
                            "the message is larger than the limit of {limit} bytes \
                             (maxMessageSize; at least {size} bytes were announced): \
                             the connection is closed"
                        ))
                        .to_string(),
                    ),
                    ..Default::default()
                });
                break Some(TOO_BIG_CLOSE);
            }
            Event::Gone => break None,
        }
    };

    if let Some(handler) = handling.take() {
        let (c, _) = handler.await;
        conn = Some(c);
    }
    if let Some(mut c) = conn.take() {
        c.records.close().await;
    }
    drop(session);
    let close = close_reason.map(|(code, reason)| CloseFrame {
        code: code.into(),
        reason: reason.into(),
    });
    if close_reason == Some(OVERFLOW) || io.outbox.overflowed() {
        // Nothing more is written to a client that does not read; the close frame is
        // offered, but not waited for.
        io.socket.discard_queue();
        io.socket.queue_close(close);
        let _ = tokio::time::timeout(Duration::from_millis(100), io.socket.finish()).await;
        return;
    }
    // Give the client a moment to take what is queued, and say goodbye. A client cut off
    // mid-message is likely still sending the rest of it.
    let drain = close_reason == Some(TOO_BIG_CLOSE);
    let _ = tokio::time::timeout(Duration::from_secs(5), io.finish(close, drain)).await;
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
