//! deepstream's listen messages: LISTEN / UNLISTEN / LISTEN_ACCEPT / LISTEN_REJECT in,
//! SUBSCRIPTION_FOR_PATTERN_FOUND / _REMOVED and LISTEN_RESPONSE_TIMEOUT out.
//! In every one of them `name` is the pattern and `subscription` the record.

use std::sync::Arc;

use recordsync_core::listen::ListenError;
use recordsync_deepstream_protocol::{RecordAction, RecordMessage};

use super::session::Session;
use recordsync_engine::Engine;
use recordsync_engine::listen::Provider;

impl Provider for Session {
    fn id(&self) -> u64 {
        self.id
    }

    fn offer(&self, pattern: &str, name: &str) {
        self.send(RecordMessage {
            subscription: Some(name.into()),
            ..RecordMessage::named(RecordAction::SubscriptionForPatternFound, pattern)
        });
    }

    fn stop(&self, pattern: &str, name: &str) {
        self.send(RecordMessage {
            subscription: Some(name.into()),
            ..RecordMessage::named(RecordAction::SubscriptionForPatternRemoved, pattern)
        });
    }

    fn timed_out(&self, name: &str) {
        self.send(RecordMessage {
            subscription: Some(name.into()),
            ..RecordMessage::new(RecordAction::ListenResponseTimeout)
        });
    }
}

/// Handles one listen message from `session`.
pub fn handle(engine: &Engine, session: &Arc<Session>, m: &RecordMessage, action: RecordAction) {
    let listening = engine.listening();
    let pattern = m.name.as_deref().unwrap_or_default();
    match action {
        RecordAction::Listen => match listening.listen(session.clone(), pattern) {
            Ok(()) => ack(session, m),
            Err(e) => refuse(session, m, &e),
        },
        RecordAction::Unlisten => match listening.unlisten(session.id, pattern) {
            Ok(()) => ack(session, m),
            // deepstream answers an UNLISTEN of an unknown pattern with silence.
            Err(ListenError::NotListening) => {}
            Err(e) => refuse(session, m, &e),
        },
        RecordAction::ListenAccept | RecordAction::ListenReject => {
            let Some(record) = m.subscription.as_deref() else {
                return refuse_text(
                    session,
                    m,
                    RecordAction::InvalidMessageData,
                    "the response names no subscription",
                );
            };
            if action == RecordAction::ListenAccept {
                listening.accept(session.id, pattern, record);
            } else {
                listening.reject(session.id, pattern, record);
            }
        }
        _ => {}
    }
}

fn ack(session: &Session, m: &RecordMessage) {
    session.send(RecordMessage {
        action: m.action,
        name: m.name.clone(),
        correlation_id: m.correlation_id.clone(),
        is_ack: Some(true),
        ..Default::default()
    });
}

fn refuse(session: &Session, m: &RecordMessage, error: &ListenError) {
    let action = match error {
        ListenError::AlreadyListening => RecordAction::MultipleSubscriptions,
        _ => RecordAction::InvalidListenRegex,
    };
    refuse_text(session, m, action, &error.to_string());
}

fn refuse_text(session: &Session, m: &RecordMessage, action: RecordAction, reason: &str) {
    session.send(RecordMessage {
        name: m.name.clone(),
        original_action: Some(m.action),
        is_error: Some(true),
        data: Some(serde_json::Value::String(reason.to_owned()).to_string()),
        ..RecordMessage::new(action)
    });
}
