//! One decoded message of any topic.

use crate::messages::{
    AuthMessage, ConnectionMessage, EventMessage, ParserMessage, RecordMessage, Topic,
};

/// A message as it travels in either direction. Topics this server does not implement
/// (RPCs, presence, ...) decode as [`Message::Other`] so the server can answer
/// them with a clear error instead of dropping the connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Connection(ConnectionMessage),
    Auth(AuthMessage),
    Record(RecordMessage),
    Event(EventMessage),
    Parser(ParserMessage),
    /// A topic without a message type here; `action` is read when the payload has one in
    /// field 1, as every deepstream topic message does.
    Other {
        topic: i32,
        action: Option<i32>,
    },
}

impl Message {
    /// The topic number on the wire.
    pub fn topic(&self) -> i32 {
        match self {
            Message::Connection(_) => Topic::Connection as i32,
            Message::Auth(_) => Topic::Auth as i32,
            Message::Record(_) => Topic::Record as i32,
            Message::Event(_) => Topic::Event as i32,
            Message::Parser(_) => Topic::Parser as i32,
            Message::Other { topic, .. } => *topic,
        }
    }
}

impl From<RecordMessage> for Message {
    fn from(m: RecordMessage) -> Self {
        Message::Record(m)
    }
}

impl From<ConnectionMessage> for Message {
    fn from(m: ConnectionMessage) -> Self {
        Message::Connection(m)
    }
}

impl From<AuthMessage> for Message {
    fn from(m: AuthMessage) -> Self {
        Message::Auth(m)
    }
}

impl From<ParserMessage> for Message {
    fn from(m: ParserMessage) -> Self {
        Message::Parser(m)
    }
}

impl From<EventMessage> for Message {
    fn from(m: EventMessage) -> Self {
        Message::Event(m)
    }
}
