//! Presence across a cluster: every presence message a node's connections send is relayed
//! on the bus topic [`TOPIC`] (scoped to the data set like the engine's topics), and each
//! node delivers the other nodes' messages to its own subscribers of the channel.
//!
//! Presence is news, never stored: a message the bus loses is not resent. Two things keep
//! views from going stale for long:
//! - A node that lost its bus connection (a resync) asks, on every channel it has
//!   subscribers on, for the presences again (`pr`), as a new subscriber does: its own
//!   subscribers' clients and the other nodes' send theirs again. So a node that was cut
//!   off, and whose presences the others cleared meanwhile (below), shows them again once
//!   it is back.
//! - Each node says it is alive every heartbeat interval and remembers which presences
//!   it relayed to its subscribers from each other node. A node silent for
//!   [`MISSED_HEARTBEATS`] intervals is taken for gone (crashed, or cut off): its
//!   presences are cleared (`p: null`) for this node's subscribers, as they would have
//!   been had its connections closed. At most [`MAX_REMOTE_PRESENCES`] are remembered;
//!   beyond that, a gone node's extra presences stay until their clients clear them.
//!
//! A node ignores its own messages (they come back from the bus). Messages from one node
//! arrive in the order it sent them (one publisher task, one topic).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio::time::Instant;

use recordsync_bus::{Bus, BusError, BusEvent};
use recordsync_sharedb_protocol::{PresenceReply, presence_request};

use super::presence_hub::PresenceHub;

/// The bus topic of ShareDB presence.
pub const TOPIC: &str = "recordsync.presence";

/// How many messages may wait for the bus; beyond that new ones are dropped.
const OUTGOING_BUFFER: usize = 16_384;

/// Messages handed to the bus at once, at most.
const PUBLISH_BATCH: usize = 256;

/// Heartbeat intervals a node may miss before its presences are cleared.
pub const MISSED_HEARTBEATS: u32 = 3;

/// Other nodes' presences remembered (to clear them if their node goes).
pub const MAX_REMOTE_PRESENCES: usize = 100_000;

/// One message on [`TOPIC`]: a presence message `m` for channel `ch` from the connection
/// known as `src` on node `node`; or, with neither `ch` nor `m`, a heartbeat.
#[derive(Debug, Serialize, Deserialize)]
struct Relayed<'a> {
    node: u64,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    ch: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    src: Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    m: Option<&'a RawValue>,
}

/// The parts of a relayed presence message a node remembers.
#[derive(Deserialize)]
struct Shown<'a> {
    #[serde(borrow)]
    a: Cow<'a, str>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    p: Value,
    #[serde(default)]
    pv: Option<u64>,
}

/// The sending side: queues messages for the publisher task. Never blocks.
pub struct Relay {
    node: u64,
    outgoing: mpsc::Sender<Bytes>,
}

impl Relay {
    /// Queues `text` (a presence message of `ch` from `src`) for the other nodes.
    pub fn send(&self, ch: &str, src: &str, text: &str) {
        let Ok(m) = serde_json::from_str::<&RawValue>(text) else {
            tracing::warn!(
                channel = ch,
                "a presence message that is not JSON was not relayed"
            );
            return;
        };
        self.queue(&Relayed {
            node: self.node,
            ch: Some(Cow::Borrowed(ch)),
            src: Cow::Borrowed(src),
            m: Some(m),
        });
    }

    fn heartbeat(&self) {
        self.queue(&Relayed {
            node: self.node,
            ch: None,
            src: Cow::Borrowed(""),
            m: None,
        });
    }

    fn queue(&self, message: &Relayed<'_>) {
        let bytes = serde_json::to_vec(message).expect("relayed messages serialise");
        if self.outgoing.try_send(Bytes::from(bytes)).is_err() {
            tracing::debug!("the presence relay's queue is full: a presence message was dropped");
        }
    }
}

/// Relays `hub`'s messages over `bus` from now on, and delivers the other nodes' to it.
pub async fn join(
    hub: &Arc<PresenceHub>,
    bus: Arc<dyn Bus>,
    heartbeat: Duration,
) -> Result<(), BusError> {
    let incoming = bus.subscribe(TOPIC).await?;
    let (outgoing, queue) = mpsc::channel(OUTGOING_BUFFER);
    tokio::spawn(publish(bus, queue));
    let relay = Relay {
        node: hub.node,
        outgoing,
    };
    relay.heartbeat();
    let beat = Relay {
        node: hub.node,
        outgoing: relay.outgoing.clone(),
    };
    hub.set_relay(relay);
    tokio::spawn(receive(Arc::downgrade(hub), incoming, beat, heartbeat));
    Ok(())
}

/// Sends queued messages in order, in batches.
async fn publish(bus: Arc<dyn Bus>, mut queue: mpsc::Receiver<Bytes>) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while queue.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        if let Err(e) = bus.publish_all(TOPIC, &batch).await {
            tracing::debug!("relaying {} presence messages failed: {e}", batch.len());
        }
        batch.clear();
    }
}

/// What this node knows of another: when it was last heard, and the presences it showed
/// here that are not cleared (channel, src, id → pv).
#[derive(Default)]
struct Peer {
    heard: Option<Instant>,
    shown: HashMap<(String, String, String), Option<u64>>,
}

/// Delivers other nodes' messages; says this node is alive and lets silent nodes go.
async fn receive(
    hub: Weak<PresenceHub>,
    mut incoming: mpsc::Receiver<BusEvent>,
    relay: Relay,
    heartbeat: Duration,
) {
    let mut peers: HashMap<u64, Peer> = HashMap::new();
    let mut remembered = 0usize;
    let mut tick = tokio::time::interval(heartbeat);
    loop {
        tokio::select! {
            event = incoming.recv() => {
                let Some(event) = event else { return };
                let Some(hub) = hub.upgrade() else { return };
                match event {
                    BusEvent::Message(bytes) => {
                        take(&hub, &bytes, &mut peers, &mut remembered);
                    }
                    BusEvent::Resync => {
                        // Both ways: this node's subscribers and the others' send again.
                        for ch in hub.channels() {
                            hub.publish(&ch, None, "", &presence_request(&ch));
                        }
                    }
                }
            }
            _ = tick.tick() => {
                let Some(hub) = hub.upgrade() else { return };
                relay.heartbeat();
                let silent = heartbeat * MISSED_HEARTBEATS;
                let now = Instant::now();
                let gone: Vec<u64> = peers
                    .iter()
                    .filter(|(_, p)| p.heard.is_some_and(|at| now.duration_since(at) > silent))
                    .map(|(node, _)| *node)
                    .collect();
                for node in gone {
                    if let Some(peer) = peers.remove(&node) {
                        tracing::info!(node, "a node went silent: clearing its {} presences", peer.shown.len());
                        remembered -= peer.shown.len();
                        clear(&hub, peer);
                    }
                }
            }
        }
    }
}

/// Handles one message from the bus.
fn take(hub: &PresenceHub, bytes: &[u8], peers: &mut HashMap<u64, Peer>, remembered: &mut usize) {
    let message = match serde_json::from_slice::<Relayed>(bytes) {
        Ok(message) => message,
        Err(e) => {
            tracing::warn!("ignoring a malformed presence message from the bus: {e}");
            return;
        }
    };
    if message.node == hub.node {
        return;
    }
    let peer = peers.entry(message.node).or_default();
    peer.heard = Some(Instant::now());
    let (Some(ch), Some(m)) = (message.ch, message.m) else {
        return; // a heartbeat
    };
    if let Ok(shown) = serde_json::from_str::<Shown>(m.get())
        && shown.a == "p"
        && let Some(id) = shown.id
    {
        let key = (ch.to_string(), message.src.to_string(), id);
        if shown.p.is_null() {
            if peer.shown.remove(&key).is_some() {
                *remembered -= 1;
            }
        } else if let Some(pv) = peer.shown.get_mut(&key) {
            *pv = shown.pv;
        } else if *remembered < MAX_REMOTE_PRESENCES {
            peer.shown.insert(key, shown.pv);
            *remembered += 1;
        }
    }
    hub.deliver(&ch, None, &message.src, m.get());
}

/// Clears, for this node's subscribers, the presences a gone node showed.
fn clear(hub: &PresenceHub, peer: Peer) {
    for ((ch, src, id), pv) in peer.shown {
        let text = PresenceReply {
            a: "p",
            ch: &ch,
            src: &src,
            id: &id,
            p: &Value::Null,
            pv,
            c: None,
            d: None,
            v: None,
        }
        .to_text();
        hub.deliver(&ch, None, &src, &text);
    }
}
