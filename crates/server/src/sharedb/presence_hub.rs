//! The node's presence channels: which ShareDB connections subscribe to each, and the
//! fan-out of presence messages to them, here and (through [`super::presence_bus`]) on the
//! cluster's other nodes.
//!
//! A message is encoded once and the same frame is queued on every subscriber's outbox;
//! a subscriber that does not read is cut off by its outbox limit, as for ops. Nothing is
//! stored here but who listens: presence values live in the clients (and, for clearing on
//! disconnect, in each connection's [`super::presence_state::PresenceState`]).
//!
//! As in ShareDB, a message never goes back to connections with the sender's `src`
//! (a client does not hear its own presence, nor its own request for presence).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use super::presence_bus::Relay;
use super::session::Session;
use crate::telemetry::cached_counter;
use crate::websocket::{self, Kind};

/// A subscriber of a channel on this node.
#[derive(Clone)]
struct Member {
    session: Arc<Session>,
    /// The connection's `src` when it subscribed (what it is known by to other nodes).
    src: Arc<str>,
}

pub struct PresenceHub {
    /// This node's id on the bus (its own relayed messages come back and are ignored).
    pub node: u64,
    /// Channel → session id → subscriber. A channel without subscribers is removed.
    channels: Mutex<HashMap<Arc<str>, HashMap<u64, Member>>>,
    /// Set once the node joins a cluster.
    relay: OnceLock<Relay>,
}

impl PresenceHub {
    pub fn new(node: u64) -> Arc<PresenceHub> {
        Arc::new(PresenceHub {
            node,
            channels: Mutex::new(HashMap::new()),
            relay: OnceLock::new(),
        })
    }

    /// From now on, messages are relayed to the other nodes too.
    pub(super) fn set_relay(&self, relay: Relay) {
        let _ = self.relay.set(relay);
    }

    /// Adds `session` (known as `src`) to `ch`'s subscribers; a second subscribe is one.
    pub fn subscribe(&self, ch: &str, session: &Arc<Session>, src: &str) {
        let mut channels = self.channels.lock();
        let members = channels.entry(Arc::from(ch)).or_default();
        members.insert(
            session.id,
            Member {
                session: session.clone(),
                src: Arc::from(src),
            },
        );
    }

    pub fn unsubscribe(&self, ch: &str, session: u64) {
        let mut channels = self.channels.lock();
        if let Some(members) = channels.get_mut(ch) {
            members.remove(&session);
            if members.is_empty() {
                channels.remove(ch);
            }
        }
    }

    /// Sends `text` (one JSON message) to `ch`'s subscribers, here and on the other
    /// nodes, but not to `session` nor to any connection known as `src`.
    pub fn publish(&self, ch: &str, session: Option<u64>, src: &str, text: &str) {
        self.deliver(ch, session, src, text);
        if let Some(relay) = self.relay.get() {
            relay.send(ch, src, text);
        }
    }

    /// Sends `text` to `ch`'s subscribers on this node only, but not to `session` nor to
    /// any connection known as `src` (the relay delivers other nodes' messages here).
    pub fn deliver(&self, ch: &str, session: Option<u64>, src: &str, text: &str) {
        let members: Vec<Arc<Session>> = {
            let channels = self.channels.lock();
            let Some(members) = channels.get(ch) else {
                return;
            };
            members
                .iter()
                .filter(|(id, m)| Some(**id) != session && &*m.src != src)
                .map(|(_, m)| m.session.clone())
                .collect()
        };
        if members.is_empty() {
            return;
        }
        let frame = websocket::frame(Kind::Text, text.as_bytes());
        for session in members {
            cached_counter!("recordsync_messages_out_total", "protocol" => "sharedb", "kind" => "presence")
                .increment(1);
            session.outbox.push(frame.clone());
        }
    }

    /// The channels with subscribers on this node.
    pub fn channels(&self) -> Vec<Arc<str>> {
        self.channels.lock().keys().cloned().collect()
    }
}
