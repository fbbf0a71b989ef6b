//! One deepstream WebSocket connection, as a front door of [`crate::net`]: decoding
//! frames of its transport, deepstream's connection handshake (CHALLENGE, ACCEPT, the
//! login of [`super::login`]), pings, and the dispatch of record and event messages.
//!
//! Reading, writing, the outbox, the heartbeat check and closing are
//! [`crate::net::connection`]'s.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use recordsync_deepstream_protocol::{
    AuthAction, AuthMessage, ConnectionAction, ConnectionMessage, DecodeError, Message,
    ParserAction, ParserMessage, Topic, binary, json,
};

use super::event::EventTopic;
use super::login::{Login, Outcome};
use super::permission::Guard;
use super::record::{NameSet, RecordTopic};
use super::session::{Session, Transport};
use crate::ServerState;
use crate::net::connection::{self, Close, DataFrame, Decoded, Flow, FrontDoor, Settings};
use crate::telemetry::Protocol;
use crate::websocket::Socket;

/// Where the connection is in deepstream's handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    AwaitingChallenge,
    AwaitingAuth,
    Open,
}

/// One deepstream connection's state.
pub struct Connection {
    stage: Stage,
    login: Login,
    records: RecordTopic,
    events: EventTopic,
    /// `maxMessageSize`, which a JSON message's nesting is also checked against.
    max_message_size: usize,
}

/// Serves one upgraded deepstream connection until it ends.
///
/// Not an `async fn`: that would keep a second copy of the socket (its argument) in
/// every connection's task, beside the one [`connection::serve`] holds.
pub fn serve(
    socket: Socket,
    state: Arc<ServerState>,
    transport: Transport,
) -> impl Future<Output = ()> + Send {
    let id = state.next_session_id();
    let settings = Settings {
        outbound_queue_limit: state.config.outbound_queue_limit,
        heartbeat: state.config.heartbeat_interval,
        pings: false,
        protocol: match transport {
            Transport::Binary => Protocol::DeepstreamBinary,
            Transport::Json => Protocol::DeepstreamJson,
        },
        span: state.config.connection_spans,
    };
    let open = move |outbox| {
        let config = &state.config;
        Connection {
            stage: Stage::AwaitingChallenge,
            login: Login::new(config),
            records: RecordTopic {
                session: Arc::new(Session {
                    id,
                    transport,
                    outbox,
                }),
                engine: state.engine.clone(),
                subscriptions: NameSet::default(),
                pending_writes: Arc::new(Semaphore::new(config.max_pending_writes)),
                guard: Guard::new(state.permissions.clone()),
            },
            events: EventTopic::default(),
            max_message_size: config.max_message_size,
        }
    };
    connection::serve(socket, id, settings, open)
}

impl FrontDoor for Connection {
    type Message = Message;

    fn decode(&mut self, frame: DataFrame) -> Decoded<Message> {
        let decoded = match (self.records.session.transport, frame) {
            (Transport::Binary, DataFrame::Binary(bytes)) => {
                binary::decode(&bytes, self.max_message_size)
            }
            (Transport::Json, DataFrame::Text(text)) => {
                json::decode(text.as_str(), self.max_message_size)
            }
            (Transport::Binary, DataFrame::Text(_)) => {
                return Decoded::Close(Close::policy(
                    "text frames are not accepted on the binary endpoint",
                ));
            }
            (Transport::Json, DataFrame::Binary(_)) => {
                return Decoded::Close(Close::policy(
                    "binary frames are not accepted on the JSON endpoint",
                ));
            }
        };
        match decoded {
            Ok(message) => Decoded::Message(message),
            Err(e) => {
                parse_error(&self.records.session, &e);
                Decoded::Skip
            }
        }
    }

    async fn handle(&mut self, message: Message) -> Flow {
        super::session::messages_in(&message).increment(1);
        let session = &*self.records.session;
        match (message, self.stage) {
            (Message::Record(m), Stage::Open) => {
                self.records.handle(m).await;
                Flow::Continue
            }
            (Message::Event(m), Stage::Open) => {
                let records = &self.records;
                self.events
                    .handle(&records.session, &records.engine, &records.guard, m)
                    .await;
                Flow::Continue
            }
            (Message::Connection(m), _) => connection(&mut self.stage, session, m),
            (Message::Auth(m), Stage::AwaitingAuth) => {
                if m.action == AuthAction::Request as i32 {
                    match self.login.attempt(session, &m).await {
                        Outcome::Accepted(user) => {
                            self.records.guard.set_user(user);
                            self.stage = Stage::Open;
                        }
                        Outcome::Refused => {}
                        Outcome::Close(close) => return Flow::Close(close),
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
            (
                Message::Auth(_) | Message::Record(_) | Message::Event(_),
                Stage::AwaitingChallenge,
            ) => {
                session.send(ConnectionMessage {
                    action: ConnectionAction::InvalidMessage as i32,
                    is_error: Some(true),
                    data: Some("\"send CONNECTION CHALLENGE first\"".into()),
                    ..Default::default()
                });
                Flow::Continue
            }
            (Message::Record(_) | Message::Event(_), _) => {
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
                        "\"recordsync serves records and events; the {name} topic is not supported\""
                    )),
                });
                Flow::Continue
            }
        }
    }

    /// The login timer, until the first login attempt is answered.
    fn deadline(&self) -> Option<Instant> {
        match self.stage {
            Stage::Open => None,
            Stage::AwaitingChallenge | Stage::AwaitingAuth => self.login.deadline(),
        }
    }

    fn deadline_passed(&mut self) -> Close {
        self.login.timed_out(&self.records.session)
    }

    fn too_large(&mut self, size: usize, limit: usize) {
        self.records.session.send(ParserMessage {
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
    }

    async fn close(&mut self) {
        self.events
            .close(&self.records.session, &self.records.engine);
        self.records.close().await;
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
            Flow::Close(Close::normal("closed by the client"))
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
    session.send(ParserMessage {
        action: error.parser_action() as i32,
        data: Some(serde_json::Value::String(error.to_string()).to_string()),
        ..Default::default()
    });
}
