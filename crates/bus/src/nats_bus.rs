//! NATS core subjects. The client reconnects by itself and keeps its subscriptions; each
//! reconnection is reported to subscribers as [`BusEvent::Resync`], since core NATS does
//! not replay what was published meanwhile, and so is a subscription that fell so far
//! behind that the client dropped messages for it.

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc};

use crate::{Bus, BusError, BusEvent, SUBSCRIPTION_BUFFER};

/// How long connecting at start-up waits for the server's answer.
const CONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a subscription waits for the server to confirm it is subscribed again after
/// a reconnection, before it reports the resync anyway.
const FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub struct NatsBus {
    client: async_nats::Client,
    reconnected: broadcast::Sender<()>,
    /// The URL connected to, password redacted, for errors.
    url: String,
}

impl NatsBus {
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        let (reconnected, _) = broadcast::channel(16);
        let notify = reconnected.clone();
        // One attempt at start-up, so that a wrong URL or a server that is down fails
        // the node at once; once connected, the client reconnects by itself for ever.
        let client = async_nats::ConnectOptions::new()
            .event_callback(move |event| {
                let notify = notify.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            let _ = notify.send(());
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!("lost the NATS connection; reconnecting");
                            metrics::counter!("recordsync_bus_reconnects_total", "bus" => "nats")
                                .increment(1);
                        }
                        // The client dropped messages its subscriber had no room for:
                        // as after a reconnection, subscribers must refetch.
                        async_nats::Event::SlowConsumer(_) => {
                            tracing::warn!(
                                "a NATS subscription fell behind; messages were dropped"
                            );
                            let _ = notify.send(());
                        }
                        _ => {}
                    }
                }
            })
            .connect(url)
            .await
            .map_err(|e| BusError::connect(url, e))?;
        // A round trip: the server accepted this client.
        tokio::time::timeout(CONNECT_WAIT, client.flush())
            .await
            .map_err(|_| BusError::connect(url, format!("no answer within {CONNECT_WAIT:?}")))?
            .map_err(|e| BusError::connect(url, e))?;
        Ok(NatsBus {
            client,
            reconnected,
            url: crate::redact_url(url),
        })
    }
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BusError> {
        self.client
            .publish(topic.to_owned(), payload)
            .await
            .map_err(|e| BusError::publish(&self.url, e))
    }

    async fn subscribe(&self, topic: &str) -> Result<mpsc::Receiver<BusEvent>, BusError> {
        let mut subscriber = self
            .client
            .subscribe(topic.to_owned())
            .await
            .map_err(|e| BusError::subscribe(&self.url, topic, e))?;
        let mut reconnected = self.reconnected.subscribe();
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_BUFFER);
        let client = self.client.clone();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    message = subscriber.next() => match message {
                        Some(m) => BusEvent::Message(m.payload),
                        None => return,
                    },
                    r = reconnected.recv() => match r {
                        Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => {
                            // The client says it is connected before it has sent the
                            // server its subscriptions again. A round trip first, so that
                            // whatever is published after the subscriber resyncs reaches it.
                            let _ = tokio::time::timeout(FLUSH_WAIT, client.flush()).await;
                            // One resync for however many reasons arrived meanwhile.
                            while !matches!(
                                reconnected.try_recv(),
                                Err(broadcast::error::TryRecvError::Empty
                                    | broadcast::error::TryRecvError::Closed)
                            ) {}
                            BusEvent::Resync
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                };
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }
}
