//! A bus inside one process: several engines (nodes) in one program, mainly for tests.

use std::collections::HashMap;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc};

use crate::{Bus, BusError, BusEvent, SUBSCRIPTION_BUFFER};

#[derive(Default)]
pub struct InProcessBus {
    topics: Mutex<HashMap<String, broadcast::Sender<Bytes>>>,
}

impl InProcessBus {
    pub fn new() -> Self {
        Self::default()
    }

    fn topic(&self, topic: &str) -> broadcast::Sender<Bytes> {
        self.topics
            .lock()
            .entry(topic.to_owned())
            .or_insert_with(|| broadcast::channel(SUBSCRIPTION_BUFFER).0)
            .clone()
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BusError> {
        // No receivers is fine: nobody is listening yet.
        let _ = self.topic(topic).send(payload);
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<mpsc::Receiver<BusEvent>, BusError> {
        let mut source = self.topic(topic).subscribe();
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_BUFFER);
        tokio::spawn(async move {
            loop {
                let event = match source.recv().await {
                    Ok(payload) => BusEvent::Message(payload),
                    Err(broadcast::error::RecvError::Lagged(_)) => BusEvent::Resync,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }
}
