//! One bus shared by several data sets.
//!
//! Nodes serving different data sets (another PostgreSQL database or schema) may be
//! pointed at the same Redis or NATS. Their announcements name records, not data sets, so
//! a node taking another data set's news would apply foreign writes to its cached records.
//! [`Scoped`] keeps them apart: every topic gets the data set's id appended, so each data
//! set's nodes publish and subscribe on topics of their own.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::{Bus, BusError, BusEvent};

/// A bus whose topics are those of `inner` with `.{scope}` appended.
pub struct Scoped {
    inner: Arc<dyn Bus>,
    scope: String,
}

impl Scoped {
    /// `scope` becomes one more dot-separated token of every topic, so it must be a plain
    /// token (letters, digits, `-`, `_`) for NATS subjects; anything else is replaced by `_`.
    pub fn new(inner: Arc<dyn Bus>, scope: &str) -> Scoped {
        let scope = scope
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Scoped { inner, scope }
    }

    /// The topic `inner` carries for `topic`.
    pub fn topic(&self, topic: &str) -> String {
        format!("{topic}.{}", self.scope)
    }
}

#[async_trait]
impl Bus for Scoped {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BusError> {
        self.inner.publish(&self.topic(topic), payload).await
    }

    async fn publish_all(&self, topic: &str, payloads: &[Bytes]) -> Result<(), BusError> {
        self.inner.publish_all(&self.topic(topic), payloads).await
    }

    async fn subscribe(&self, topic: &str) -> Result<mpsc::Receiver<BusEvent>, BusError> {
        self.inner.subscribe(&self.topic(topic)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InProcessBus;
    use std::time::Duration;

    async fn next(rx: &mut mpsc::Receiver<BusEvent>) -> Option<BusEvent> {
        tokio::time::timeout(Duration::from_millis(200), rx.recv())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test]
    async fn data_sets_on_one_bus_hear_only_their_own() {
        let shared: Arc<dyn Bus> = Arc::new(InProcessBus::new());
        let a = Scoped::new(shared.clone(), "a1");
        let a_again = Scoped::new(shared.clone(), "a1");
        let b = Scoped::new(shared.clone(), "b2");
        let mut heard_by_a = a_again.subscribe("recordsync.records").await.unwrap();
        let mut heard_by_b = b.subscribe("recordsync.records").await.unwrap();
        let mut unscoped = shared.subscribe("recordsync.records").await.unwrap();

        a.publish("recordsync.records", Bytes::from_static(b"from a"))
            .await
            .unwrap();
        b.publish("recordsync.records", Bytes::from_static(b"from b"))
            .await
            .unwrap();

        assert_eq!(
            next(&mut heard_by_a).await,
            Some(BusEvent::Message(Bytes::from_static(b"from a")))
        );
        assert_eq!(
            next(&mut heard_by_b).await,
            Some(BusEvent::Message(Bytes::from_static(b"from b")))
        );
        assert_eq!(next(&mut heard_by_a).await, None);
        assert_eq!(next(&mut heard_by_b).await, None);
        assert_eq!(next(&mut unscoped).await, None, "scoped news stays scoped");
    }

    #[test]
    fn a_scope_is_one_plain_token() {
        let bus = Scoped::new(Arc::new(InProcessBus::new()), "x.y *>z");
        assert_eq!(bus.topic("recordsync.listen"), "recordsync.listen.x_y___z");
    }
}
