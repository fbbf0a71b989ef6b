//! A node's bus link that a test can cut (`cluster.rs`, `cluster_listen.rs`). Not in
//! `support/mod.rs`, which the CLI's tests share and which needs no bus.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use recordsync_bus::{Bus, BusError, BusEvent};

/// A node's link to a shared bus, which a test can sever: the node neither hears nor is
/// heard from then on (its publishes fail), as when the network splits it from the bus.
/// Healing it reports a resync to its subscriptions, as a real bus does after a
/// reconnect.
pub struct Severable {
    bus: Arc<dyn Bus>,
    severed: watch::Receiver<bool>,
}

impl Severable {
    /// A link to `bus`, and the switch that severs (`true`) and heals (`false`) it.
    pub fn link(bus: Arc<dyn Bus>) -> (Arc<dyn Bus>, watch::Sender<bool>) {
        let (switch, severed) = watch::channel(false);
        (Arc::new(Severable { bus, severed }), switch)
    }
}

#[async_trait]
impl Bus for Severable {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BusError> {
        if *self.severed.borrow() {
            return Err(BusError::publish("test://severable", "severed by the test"));
        }
        self.bus.publish(topic, payload).await
    }

    async fn subscribe(&self, topic: &str) -> Result<mpsc::Receiver<BusEvent>, BusError> {
        let mut from_bus = self.bus.subscribe(topic).await?;
        let (tx, rx) = mpsc::channel(recordsync_bus::SUBSCRIPTION_BUFFER);
        let mut severed = self.severed.clone();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    event = from_bus.recv() => match event {
                        Some(event) => event,
                        None => return,
                    },
                    changed = severed.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        if *severed.borrow_and_update() {
                            continue;
                        }
                        BusEvent::Resync
                    }
                };
                if !*severed.borrow() && tx.send(event).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }
}
