//! Redis pub/sub. Publishing goes through a connection manager that reconnects by itself;
//! each subscription runs a task that re-subscribes after a lost connection and reports
//! the gap as [`BusEvent::Resync`].

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use crate::{Bus, BusError, BusEvent, SUBSCRIPTION_BUFFER, backoff};

pub struct RedisBus {
    client: redis::Client,
    publisher: ConnectionManager,
    url: String,
}

impl RedisBus {
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        let connect_error = |e: redis::RedisError| BusError::connect(url, e);
        let client = redis::Client::open(url).map_err(connect_error)?;
        // One attempt first, so that a wrong URL or a server that is down fails the node
        // at once (the connection manager would retry for several seconds first); once
        // connected, the manager and the subscriptions reconnect by themselves for ever.
        client
            .get_multiplexed_async_connection()
            .await
            .map_err(connect_error)?;
        let publisher = ConnectionManager::new(client.clone())
            .await
            .map_err(connect_error)?;
        Ok(RedisBus {
            client,
            publisher,
            url: crate::redact_url(url),
        })
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BusError> {
        let mut connection = self.publisher.clone();
        redis::cmd("PUBLISH")
            .arg(topic)
            .arg(payload.as_ref())
            .query_async::<i64>(&mut connection)
            .await
            .map(drop)
            .map_err(|e| BusError::publish(&self.url, e))
    }

    async fn publish_all(&self, topic: &str, payloads: &[Bytes]) -> Result<(), BusError> {
        match payloads {
            [] => Ok(()),
            [one] => self.publish(topic, one.clone()).await,
            many => {
                // One round trip for all of them; Redis runs a pipeline's commands in order.
                let mut pipe = redis::pipe();
                for payload in many {
                    pipe.cmd("PUBLISH")
                        .arg(topic)
                        .arg(payload.as_ref())
                        .ignore();
                }
                let mut connection = self.publisher.clone();
                pipe.query_async::<()>(&mut connection)
                    .await
                    .map_err(|e| BusError::publish(&self.url, e))
            }
        }
    }

    async fn subscribe(&self, topic: &str) -> Result<mpsc::Receiver<BusEvent>, BusError> {
        let subscribe_error = |e: redis::RedisError| BusError::subscribe(&self.url, topic, e);
        let mut pubsub = self
            .client
            .get_async_pubsub()
            .await
            .map_err(subscribe_error)?;
        pubsub.subscribe(topic).await.map_err(subscribe_error)?;
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_BUFFER);
        let client = self.client.clone();
        let topic = topic.to_owned();
        tokio::spawn(async move {
            loop {
                {
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        let payload = Bytes::copy_from_slice(message.get_payload_bytes());
                        if tx.send(BusEvent::Message(payload)).await.is_err() {
                            return;
                        }
                    }
                }
                tracing::warn!(%topic, "lost the redis subscription; reconnecting");
                metrics::counter!("recordsync_bus_reconnects_total", "bus" => "redis").increment(1);
                let mut attempt = 0;
                pubsub = loop {
                    if tx.is_closed() {
                        return;
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                    if let Ok(mut p) = client.get_async_pubsub().await
                        && p.subscribe(&topic).await.is_ok()
                    {
                        break p;
                    }
                };
                tracing::info!(%topic, "redis subscription restored");
                if tx.send(BusEvent::Resync).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }
}
