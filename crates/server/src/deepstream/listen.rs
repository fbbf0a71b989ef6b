//! deepstream's listen messages, on the RECORD and EVENT topics alike: LISTEN / UNLISTEN /
//! LISTEN_ACCEPT / LISTEN_REJECT in, SUBSCRIPTION_FOR_PATTERN_FOUND / _REMOVED and
//! LISTEN_RESPONSE_TIMEOUT out. In every one of them `name` is the pattern and
//! `subscription` the record or event name.
//!
//! Both topics share the engine's one listening runtime (one [`Listening`] per
//! [`ListenTopic`]); this module turns a request into its call and says how to answer
//! ([`Outcome`]), and each topic's module writes the answer in its own message type.

use std::sync::Arc;

use recordsync_core::listen::ListenError;
use recordsync_deepstream_protocol::{EventAction, EventMessage, RecordAction, RecordMessage};

use super::session::Session;
use recordsync_engine::Engine;
use recordsync_engine::listen::{ListenTopic, Listening, Provider};

impl Provider for Session {
    fn id(&self) -> u64 {
        self.id
    }

    fn offer(&self, topic: ListenTopic, pattern: &str, name: &str) {
        match topic {
            ListenTopic::Event => self.send(EventMessage {
                subscription: Some(name.into()),
                ..EventMessage::named(EventAction::SubscriptionForPatternFound, pattern)
            }),
            _ => self.send(RecordMessage {
                subscription: Some(name.into()),
                ..RecordMessage::named(RecordAction::SubscriptionForPatternFound, pattern)
            }),
        }
    }

    fn stop(&self, topic: ListenTopic, pattern: &str, name: &str) {
        match topic {
            ListenTopic::Event => self.send(EventMessage {
                subscription: Some(name.into()),
                ..EventMessage::named(EventAction::SubscriptionForPatternRemoved, pattern)
            }),
            _ => self.send(RecordMessage {
                subscription: Some(name.into()),
                ..RecordMessage::named(RecordAction::SubscriptionForPatternRemoved, pattern)
            }),
        }
    }

    fn timed_out(&self, topic: ListenTopic, name: &str) {
        match topic {
            ListenTopic::Event => self.send(EventMessage {
                subscription: Some(name.into()),
                ..EventMessage::new(EventAction::ListenResponseTimeout)
            }),
            _ => self.send(RecordMessage {
                subscription: Some(name.into()),
                ..RecordMessage::new(RecordAction::ListenResponseTimeout)
            }),
        }
    }
}

/// A listen message, whatever its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Listen,
    Unlisten,
    Accept,
    Reject,
}

/// How a listen message is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Echo the request with `isAck`.
    Ack,
    /// Nothing (deepstream answers an UNLISTEN of an unknown pattern, and a listener's
    /// answers, with silence; offers follow on their own).
    Silent,
    /// The pattern is already listened to by this connection: MULTIPLE_SUBSCRIPTIONS.
    AlreadyListening(String),
    /// The pattern is not a usable regex: INVALID_LISTEN_REGEX.
    InvalidPattern(String),
    /// An answer without the subscription it answers: INVALID_MESSAGE_DATA.
    NoSubscription,
}

/// Carries out one listen message of `session` on `topic`. `pattern` is the message's
/// `name`, `subscription` its `subscription`.
pub fn handle(
    engine: &Engine,
    session: &Arc<Session>,
    topic: ListenTopic,
    request: Request,
    pattern: &str,
    subscription: Option<&str>,
) -> Outcome {
    let listening: &Listening = engine.listening_of(topic);
    let refused = |e: ListenError| match e {
        ListenError::AlreadyListening => Outcome::AlreadyListening(e.to_string()),
        _ => Outcome::InvalidPattern(e.to_string()),
    };
    match request {
        Request::Listen => match listening.listen(session.clone(), pattern) {
            Ok(()) => Outcome::Ack,
            Err(e) => refused(e),
        },
        Request::Unlisten => match listening.unlisten(session.id, pattern) {
            Ok(()) => Outcome::Ack,
            Err(ListenError::NotListening) => Outcome::Silent,
            Err(e) => refused(e),
        },
        Request::Accept | Request::Reject => {
            let Some(name) = subscription else {
                return Outcome::NoSubscription;
            };
            if request == Request::Accept {
                listening.accept(session.id, pattern, name);
            } else {
                listening.reject(session.id, pattern, name);
            }
            Outcome::Silent
        }
    }
}

/// The RECORD topic's answer to a listen message.
pub fn answer_record(session: &Session, m: &RecordMessage, outcome: Outcome) {
    let (action, reason) = match outcome {
        Outcome::Silent => return,
        Outcome::Ack => {
            return session.send(RecordMessage {
                action: m.action,
                name: m.name.clone(),
                correlation_id: m.correlation_id.clone(),
                is_ack: Some(true),
                ..Default::default()
            });
        }
        Outcome::AlreadyListening(reason) => (RecordAction::MultipleSubscriptions, reason),
        Outcome::InvalidPattern(reason) => (RecordAction::InvalidListenRegex, reason),
        Outcome::NoSubscription => (RecordAction::InvalidMessageData, no_subscription()),
    };
    session.send(RecordMessage {
        name: m.name.clone(),
        original_action: Some(m.action),
        is_error: Some(true),
        data: Some(serde_json::Value::String(reason).to_string()),
        ..RecordMessage::new(action)
    });
}

/// The EVENT topic's answer to a listen message.
pub fn answer_event(session: &Session, m: &EventMessage, outcome: Outcome) {
    let (action, reason) = match outcome {
        Outcome::Silent => return,
        Outcome::Ack => {
            return session.send(EventMessage {
                action: m.action,
                name: m.name.clone(),
                correlation_id: m.correlation_id.clone(),
                is_ack: Some(true),
                ..Default::default()
            });
        }
        Outcome::AlreadyListening(reason) => (EventAction::MultipleSubscriptions, reason),
        Outcome::InvalidPattern(reason) => (EventAction::InvalidListenRegex, reason),
        Outcome::NoSubscription => (EventAction::InvalidMessageData, no_subscription()),
    };
    session.send(EventMessage {
        name: m.name.clone(),
        original_action: Some(m.action),
        is_error: Some(true),
        data: Some(serde_json::Value::String(reason).to_string()),
        ..EventMessage::new(action)
    });
}

fn no_subscription() -> String {
    "the response names no subscription".to_owned()
}
