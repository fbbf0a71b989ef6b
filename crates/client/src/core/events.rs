//! Events in the core: which event names this client subscribes to (each name once on
//! the server, however many [`EventSubscription`](crate::EventSubscription)s share it),
//! emits, and what the server sends on the EVENT topic.

use serde_json::Value;
use tokio::sync::mpsc;

use recordsync_deepstream_protocol::{EventAction, EventMessage};

use super::{Core, Waiter};
use crate::error::Error;

/// One event name this client subscribes to.
pub(crate) struct EventEntry {
    /// Each subscription's id and where its events go.
    pub subscribers: Vec<(u64, mpsc::UnboundedSender<Option<Value>>)>,
    /// Waiting for the server's ack of the subscribe.
    pub acks: Vec<Waiter<()>>,
    /// Whether the server has acked it on this connection.
    pub acked: bool,
}

impl Core {
    /// Subscribes to the events `name`: the server is asked once per name; `ack` is
    /// answered when it has acked (at once when it had already). Returns the
    /// subscription's id, or `None` (and `ack` answered) when the client is closed.
    pub fn subscribe_event(
        &mut self,
        name: &str,
        events: mpsc::UnboundedSender<Option<Value>>,
        ack: Waiter<()>,
    ) -> Option<u64> {
        if let Err(e) = self.check_open() {
            let _ = ack.send(Err(e));
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        let first = !self.events.contains_key(name);
        let entry = self
            .events
            .entry(name.to_owned())
            .or_insert_with(|| EventEntry {
                subscribers: Vec::new(),
                acks: Vec::new(),
                acked: false,
            });
        entry.subscribers.push((id, events));
        if entry.acked {
            let _ = ack.send(Ok(()));
        } else {
            entry.acks.push(ack);
        }
        if first {
            self.send(subscribe_message(name));
        }
        Some(id)
    }

    /// Ends subscription `id` to `name`; the server is told when it was the last one.
    pub fn unsubscribe_event(&mut self, name: &str, id: u64) {
        let Some(entry) = self.events.get_mut(name) else {
            return;
        };
        entry.subscribers.retain(|(s, _)| *s != id);
        if entry.subscribers.is_empty() {
            self.events.remove(name);
            self.send(EventMessage {
                names: vec![name.to_owned()],
                correlation_id: Some(name.to_owned()),
                ..EventMessage::new(EventAction::Unsubscribe)
            });
        }
    }

    /// Emits an event (`data`: JSON text, `None` for none). As deepstream's own client
    /// does, this client's own subscriptions to `name` get it at once: the server sends
    /// an event to every subscriber but its emitter.
    pub fn emit(&mut self, name: &str, data: Option<String>) -> Result<(), Error> {
        self.check_open()?;
        if let Some(entry) = self.events.get_mut(name) {
            let value = data.as_deref().and_then(|d| serde_json::from_str(d).ok());
            deliver(entry, value);
        }
        self.send(EventMessage {
            data,
            ..EventMessage::named(EventAction::Emit, name)
        });
        Ok(())
    }

    /// The connection is open (again): every event name is subscribed again.
    pub(super) fn renew_events(&mut self) {
        let names: Vec<String> = self.events.keys().cloned().collect();
        for name in names {
            if let Some(entry) = self.events.get_mut(&name) {
                entry.acked = false;
            }
            self.send(subscribe_message(&name));
        }
    }

    /// The client is closed: every subscription ends, every waiter fails with `error`.
    pub(super) fn close_events(&mut self, error: &Error) {
        for (_, entry) in self.events.drain() {
            for ack in entry.acks {
                let _ = ack.send(Err(error.clone()));
            }
        }
    }

    /// A message of the EVENT topic.
    pub(super) fn handle_event(&mut self, m: EventMessage) {
        let name = m.name.clone().unwrap_or_default();
        match m.event_action() {
            Some(EventAction::Emit) => {
                if let Some(entry) = self.events.get_mut(&name) {
                    let value = m.data.as_deref().and_then(|d| serde_json::from_str(d).ok());
                    deliver(entry, value);
                }
            }
            Some(EventAction::Subscribe) if m.is_ack == Some(true) => {
                let name = m.correlation_id.unwrap_or_default();
                if let Some(entry) = self.events.get_mut(&name) {
                    entry.acked = true;
                    for ack in entry.acks.drain(..) {
                        let _ = ack.send(Ok(()));
                    }
                }
            }
            Some(EventAction::MessageDenied | EventAction::MessagePermissionError)
                if m.original_action == Some(EventAction::Subscribe as i32) =>
            {
                // The subscription is refused: its streams end, its waiters fail.
                if let Some(entry) = self.events.remove(&name) {
                    for ack in entry.acks {
                        let _ = ack.send(Err(Error::PermissionDenied {
                            name: name.clone(),
                            action: "SUBSCRIBE".into(),
                        }));
                    }
                }
            }
            _ => tracing::debug!(action = m.action, event = name, "event message ignored"),
        }
    }
}

fn subscribe_message(name: &str) -> EventMessage {
    EventMessage {
        names: vec![name.to_owned()],
        correlation_id: Some(name.to_owned()),
        ..EventMessage::new(EventAction::Subscribe)
    }
}

/// Hands an event to every live subscription of the entry, forgetting dropped ones.
fn deliver(entry: &mut EventEntry, value: Option<Value>) {
    entry
        .subscribers
        .retain(|(_, tx)| tx.send(value.clone()).is_ok());
}

#[cfg(test)]
mod tests {
    use recordsync_deepstream_protocol::Message;
    use serde_json::json;
    use tokio::sync::oneshot;

    use super::*;
    use crate::merge::MergeStrategy;

    fn events(out: Vec<Message>) -> Vec<EventMessage> {
        out.into_iter()
            .map(|m| match m {
                Message::Event(e) => e,
                other => panic!("expected an event message, got {other:?}"),
            })
            .collect()
    }

    fn ack(name: &str) -> Message {
        EventMessage {
            is_ack: Some(true),
            correlation_id: Some(name.into()),
            ..EventMessage::new(EventAction::Subscribe)
        }
        .into()
    }

    #[test]
    fn one_server_subscription_per_name_renewed_after_a_reconnect() {
        let mut c = Core::new(std::time::Duration::ZERO, MergeStrategy::RemoteWins);
        c.on_open();
        let (tx1, mut rx1) = mpsc::unbounded_channel();
        let (tx2, mut rx2) = mpsc::unbounded_channel();
        let (ack1, mut acked1) = oneshot::channel();
        let (ack2, mut acked2) = oneshot::channel();
        let first = c.subscribe_event("e", tx1, ack1).unwrap();
        let second = c.subscribe_event("e", tx2, ack2).unwrap();
        let out = events(c.take_outbox());
        assert_eq!(out.len(), 1, "one SUBSCRIBE: {out:?}");
        assert_eq!(out[0].names, vec!["e"]);
        assert!(acked1.try_recv().is_err(), "not acked yet");
        c.handle(ack("e"));
        assert!(matches!(acked1.try_recv(), Ok(Ok(()))));
        assert!(matches!(acked2.try_recv(), Ok(Ok(()))));

        // The server's events reach both subscriptions; this client's own emit too,
        // locally, and goes out once.
        c.handle(
            EventMessage {
                data: Some(r#"{"b":1,"a":2}"#.into()),
                ..EventMessage::named(EventAction::Emit, "e")
            }
            .into(),
        );
        c.emit("e", None).unwrap();
        for rx in [&mut rx1, &mut rx2] {
            assert_eq!(rx.try_recv().unwrap(), Some(json!({"b": 1, "a": 2})));
            assert_eq!(rx.try_recv().unwrap(), None);
        }
        let out = events(c.take_outbox());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].event_action(), Some(EventAction::Emit));

        c.on_lost();
        c.on_open();
        let out = events(c.take_outbox());
        assert_eq!(out.len(), 1, "renewed once: {out:?}");
        assert_eq!(out[0].event_action(), Some(EventAction::Subscribe));

        c.unsubscribe_event("e", first);
        assert!(c.take_outbox().is_empty(), "a subscription is left");
        c.unsubscribe_event("e", second);
        let out = events(c.take_outbox());
        assert_eq!(out[0].event_action(), Some(EventAction::Unsubscribe));
    }

    #[test]
    fn a_refused_subscription_ends_and_fails_its_waiter() {
        let mut c = Core::new(std::time::Duration::ZERO, MergeStrategy::RemoteWins);
        c.on_open();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (ack, mut acked) = oneshot::channel();
        c.subscribe_event("secret", tx, ack).unwrap();
        c.handle(
            EventMessage {
                original_action: Some(EventAction::Subscribe as i32),
                is_error: Some(true),
                ..EventMessage::named(EventAction::MessageDenied, "secret")
            }
            .into(),
        );
        assert!(matches!(
            acked.try_recv(),
            Ok(Err(Error::PermissionDenied { .. }))
        ));
        assert_eq!(
            rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected),
            "the stream has ended"
        );
    }
}
