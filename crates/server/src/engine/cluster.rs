//! Several nodes, one data set: announcing committed writes on the bus, and applying
//! other nodes' announcements to this node's cached records.
//!
//! The store is the truth and the bus is only news. An announcement that follows what a
//! node holds (version `v + 1` on top of `v`) is applied and published to the node's own
//! subscribers; anything else — a gap, a record with local writes in flight, a lost bus
//! connection — makes the node refetch from the store, which publishes whatever changed.
//! So a lost or late message costs a read, never a wrong value.

use std::borrow::Cow;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use recordsync_bus::{Bus, BusEvent};

use super::Engine;

/// The bus topic every node of a cluster shares.
pub const TOPIC: &str = "recordsync.records";

/// How many announcements may wait for the bus before new ones are dropped (the other
/// nodes then heal the gap from the store).
const OUTGOING_BUFFER: usize = 65536;

/// One committed change, as announced on the bus.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Announcement<'a> {
    /// The announcing node, which ignores its own announcements.
    pub node: u64,
    /// Borrowed from the message unless JSON escaped something in it (a record name may
    /// hold quotes, backslashes, control characters).
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    pub version: u64,
    /// The journal form of the write (`recordsync_core::WriteOp`); absent for a delete
    /// or for a record created empty.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub op: Option<&'a RawValue>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

pub struct Cluster {
    pub(crate) node: u64,
    outgoing: mpsc::Sender<Bytes>,
}

impl Cluster {
    /// Connects the engine to `bus`: starts the publisher and the receiver tasks.
    pub(crate) async fn start(
        bus: Arc<dyn Bus>,
        engine: Weak<Engine>,
        node: u64,
    ) -> Result<Cluster, recordsync_bus::BusError> {
        let mut incoming = bus.subscribe(TOPIC).await?;
        let (outgoing, mut queue) = mpsc::channel::<Bytes>(OUTGOING_BUFFER);
        let publisher = bus.clone();
        tokio::spawn(async move {
            while let Some(message) = queue.recv().await {
                if let Err(e) = publisher.publish(TOPIC, message).await {
                    tracing::warn!("announcing a write failed (other nodes will resync): {e}");
                }
            }
        });
        tokio::spawn(async move {
            while let Some(event) = incoming.recv().await {
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                match event {
                    BusEvent::Message(bytes) => {
                        match serde_json::from_slice::<Announcement>(&bytes) {
                            Ok(a) if a.node == node => {}
                            Ok(a) => engine.apply_remote(&a),
                            Err(e) => tracing::warn!("ignoring a malformed bus message: {e}"),
                        }
                    }
                    BusEvent::Resync => {
                        tracing::info!(
                            "bus connection restored: refetching every subscribed record"
                        );
                        engine.resync();
                    }
                }
            }
        });
        Ok(Cluster { node, outgoing })
    }

    /// Queues an announcement; never blocks (a full queue drops it, and the gap heals).
    pub(crate) fn announce(&self, name: &str, version: u64, op: Option<&str>, deleted: bool) {
        let op = op.and_then(|text| serde_json::from_str::<&RawValue>(text).ok());
        let announcement = Announcement {
            node: self.node,
            name: Cow::Borrowed(name),
            version,
            op,
            deleted,
        };
        let bytes = serde_json::to_vec(&announcement).expect("announcements serialise");
        if self.outgoing.try_send(Bytes::from(bytes)).is_err() {
            tracing::warn!(
                record = name,
                "bus queue full: dropping an announcement (other nodes will refetch)"
            );
        }
    }
}
