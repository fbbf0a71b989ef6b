//! Pub/sub between recordsync nodes.
//!
//! Several nodes serving one data set share one database (the truth) and one bus (the
//! news): a node that commits a write announces it on the bus, and every other node
//! updates its cached copy and tells its own subscribers. The bus is allowed to lose
//! messages — a node that notices a gap, or whose bus connection was lost, refetches from
//! the database — so a plain pub/sub (Redis PUBLISH, NATS core) is enough.
//!
//! Module map:
//! - [`InProcessBus`] (`in_process`) — nodes in one process; tests and embedding.
//! - [`RedisBus`] (`redis_bus`)      — Redis pub/sub.
//! - [`NatsBus`] (`nats_bus`)        — NATS core subjects.
//! - [`Scoped`] (`scoped`)           — one bus, several data sets, each on its own topics.
//! - [`connect`]                     — opens the bus a URL names.

mod in_process;
mod nats_bus;
mod redis_bus;
mod scoped;

use async_trait::async_trait;
use bytes::Bytes;
use thiserror::Error;
use tokio::sync::mpsc;

pub use in_process::InProcessBus;
pub use nats_bus::NatsBus;
pub use redis_bus::RedisBus;
pub use scoped::Scoped;

/// What a subscription delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent {
    /// A message published on the topic, by any node (including this one).
    Message(Bytes),
    /// Messages may have been missed (the connection to the bus was lost and is back, or
    /// this subscriber fell behind): whatever was learnt from the bus must be refetched.
    Resync,
}

/// Why the bus could not do what was asked.
#[derive(Debug, Clone, Error)]
pub enum BusError {
    /// `url` is redacted ([`redact_url`]).
    #[error("cannot connect to the bus at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("publishing on the bus failed: {0}")]
    Publish(String),
    #[error("unsupported bus URL {0:?}: use redis://host:port or nats://host:port")]
    UnsupportedUrl(String),
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

/// Connects to the bus at `url` (`redis://…` or `nats://…`).
pub async fn connect(url: &str) -> Result<std::sync::Arc<dyn Bus>, BusError> {
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        Ok(std::sync::Arc::new(RedisBus::connect(url).await?))
    } else if url.starts_with("nats://") || url.starts_with("tls://") {
        Ok(std::sync::Arc::new(NatsBus::connect(url).await?))
    } else {
        Err(BusError::UnsupportedUrl(redact_url(url)))
    }
}

/// `url` with any password replaced by `***`, for errors and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            // A lone token (nats://token@host) is a secret too.
            None if scheme.starts_with("nats") || scheme == "tls" => {
                format!("{scheme}://***@{host}{tail}")
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Backoff between reconnection attempts: doubles from 50 ms up to 2 s.
pub fn backoff(attempt: u32) -> std::time::Duration {
    std::time::Duration::from_millis((50u64 << attempt.min(6)).min(2000))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_and_tokens_are_redacted() {
        assert_eq!(
            redact_url("redis://:secret@h:6379/0"),
            "redis://:***@h:6379/0"
        );
        assert_eq!(
            redact_url("redis://u:secret@h:6379"),
            "redis://u:***@h:6379"
        );
        assert_eq!(redact_url("nats://tok@h:4222"), "nats://***@h:4222");
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        assert_eq!(redact_url("nats://h:4222"), "nats://h:4222");
    }
}
