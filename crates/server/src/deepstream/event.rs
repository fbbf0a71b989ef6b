//! The EVENT topic: deepstream's publish/subscribe. Event messages in, engine calls
//! ([`Engine::subscribe_event`], [`Engine::emit`], the event listening), replies out.
//!
//! Replies follow what deepstream 7 sends: a SUBSCRIBE or UNSUBSCRIBE of any number of
//! names is acked once, `{action, correlationId, isAck}`; a name subscribed twice is
//! answered MULTIPLE_SUBSCRIPTIONS, an unsubscribe of a name not subscribed with
//! silence; an EMIT is not answered, and reaches every subscriber but its emitter with
//! its payload unchanged. A name refused by the `event` rules is answered MESSAGE_DENIED
//! and left out; when every name of a subscribe is refused, no ack follows (as in
//! deepstream, whose client then drops the subscription).

use std::collections::HashSet;
use std::sync::Arc;

use recordsync_deepstream_protocol::{EventAction, EventMessage};
use recordsync_engine::Engine;
use recordsync_engine::listen::ListenTopic;

use super::listen::{self, Request};
use super::permission::Guard;
use super::session::Session;
use crate::permission::Action;

/// Per-connection event state: the names it subscribes to, to unsubscribe when it goes
/// away.
#[derive(Default)]
pub struct EventTopic {
    subscriptions: HashSet<Arc<str>>,
}

impl EventTopic {
    pub async fn handle(
        &mut self,
        session: &Arc<Session>,
        engine: &Engine,
        guard: &Guard,
        m: EventMessage,
    ) {
        let Some(action) = m.event_action() else {
            return error(session, &m, "unknown event action");
        };
        match action {
            EventAction::Emit => emit(session, engine, guard, &m).await,
            EventAction::Subscribe => self.subscribe(session, engine, guard, &m).await,
            EventAction::Unsubscribe => self.unsubscribe(session, engine, &m),
            EventAction::Listen
            | EventAction::Unlisten
            | EventAction::ListenAccept
            | EventAction::ListenReject => listen(session, engine, guard, &m, action).await,
            _ => error(session, &m, "this action is not one a client sends"),
        }
    }

    /// Unsubscribes everything and stops listening; called when the connection closes.
    pub fn close(&mut self, session: &Session, engine: &Engine) {
        for name in std::mem::take(&mut self.subscriptions) {
            engine.unsubscribe_event(session.id, &name);
        }
        engine
            .listening_of(ListenTopic::Event)
            .connection_closed(session.id);
    }

    async fn subscribe(
        &mut self,
        session: &Arc<Session>,
        engine: &Engine,
        guard: &Guard,
        m: &EventMessage,
    ) {
        let names = names(m);
        if names.is_empty() {
            return error(session, m, "the subscription names no event");
        }
        let mut allowed = 0;
        for name in names {
            if name.is_empty() {
                error(session, m, "an event name is empty");
                continue;
            }
            if !guard.allow_event(session, m, Action::Subscribe, name).await {
                continue;
            }
            allowed += 1;
            if engine.subscribe_event(session.clone(), name) {
                self.subscriptions.insert(Arc::from(name));
            } else {
                session.send(EventMessage {
                    original_action: Some(m.action),
                    ..EventMessage::named(EventAction::MultipleSubscriptions, name)
                });
            }
        }
        if allowed > 0 {
            ack(session, m);
        }
    }

    fn unsubscribe(&mut self, session: &Session, engine: &Engine, m: &EventMessage) {
        for name in names(m) {
            // deepstream answers a name this connection does not subscribe to with
            // silence when it comes in a (bulk) request, as every client sends them.
            if self.subscriptions.remove(name) {
                engine.unsubscribe_event(session.id, name);
            }
        }
        ack(session, m);
    }
}

/// EMIT: to every subscriber of the name on every node, but the emitter.
async fn emit(session: &Session, engine: &Engine, guard: &Guard, m: &EventMessage) {
    let Some(name) = m.name.as_deref().filter(|n| !n.is_empty()) else {
        return error(session, m, "the event has no name");
    };
    if !guard.allow_event(session, m, Action::Publish, name).await {
        return;
    }
    engine.emit(Some(session.id), name, m.data.as_deref().map(Arc::from));
}

async fn listen(
    session: &Arc<Session>,
    engine: &Engine,
    guard: &Guard,
    m: &EventMessage,
    action: EventAction,
) {
    // deepstream checks the listen rule against the pattern's text.
    let pattern = m.name.as_deref().unwrap_or_default();
    let request = match action {
        EventAction::Listen => Request::Listen,
        EventAction::Unlisten => Request::Unlisten,
        EventAction::ListenAccept => Request::Accept,
        _ => Request::Reject,
    };
    if request == Request::Listen
        && !guard
            .allow_event(session, m, Action::ListenEvents, pattern)
            .await
    {
        return;
    }
    let outcome = listen::handle(
        engine,
        session,
        ListenTopic::Event,
        request,
        pattern,
        m.subscription.as_deref(),
    );
    listen::answer_event(session, m, outcome);
}

/// The names of a (bulk) request: `names`, or else `name`.
fn names(m: &EventMessage) -> Vec<&str> {
    if m.names.is_empty() {
        m.name.as_deref().into_iter().collect()
    } else {
        m.names.iter().map(String::as_str).collect()
    }
}

fn ack(session: &Session, m: &EventMessage) {
    session.send(EventMessage {
        action: m.action,
        correlation_id: m.correlation_id.clone(),
        is_ack: Some(true),
        ..Default::default()
    });
}

/// INVALID_MESSAGE_DATA for a request that cannot be carried out, saying why.
fn error(session: &Session, m: &EventMessage, reason: &str) {
    session.send(EventMessage {
        name: m.name.clone(),
        original_action: Some(m.action),
        is_error: Some(true),
        correlation_id: m.correlation_id.clone(),
        data: Some(serde_json::Value::String(reason.to_owned()).to_string()),
        ..EventMessage::new(EventAction::InvalidMessageData)
    });
}
