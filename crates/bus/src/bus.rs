//! The [`Bus`] trait every bus implements, and what a subscription delivers.

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::BusError;

/// What a subscription delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent {
    /// A message published on the topic, by any node (including this one).
    Message(Bytes),
    /// Messages may have been missed (the connection to the bus was lost and is back, or
    /// this subscriber fell behind): whatever was learnt from the bus must be refetched.
    Resync,
}

/// A topic-based pub/sub that every node of a cluster connects to.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes `payload` on `topic`. Returns once the bus has taken it (or failed to).
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BusError>;

    /// Publishes `payloads` on `topic`, in order. A bus that needs a round trip per
    /// message sends them together (Redis pipelines them), so that a node's announcements
    /// do not queue behind one another's round trips. On `Err`, any of them may or may not
    /// have been published.
    async fn publish_all(&self, topic: &str, payloads: &[Bytes]) -> Result<(), BusError> {
        for payload in payloads {
            self.publish(topic, payload.clone()).await?;
        }
        Ok(())
    }

    /// Subscribes to `topic`. The subscription lives until the receiver is dropped, and
    /// survives reconnections, each of which it reports as [`BusEvent::Resync`].
    async fn subscribe(&self, topic: &str) -> Result<mpsc::Receiver<BusEvent>, BusError>;
}

/// How many events a subscription buffers before its reader must catch up.
pub const SUBSCRIPTION_BUFFER: usize = 4096;
