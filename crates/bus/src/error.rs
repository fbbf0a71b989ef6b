//! [`BusError`]: what went wrong, with the bus library's own error kept as its source.

use std::sync::Arc;

use crate::redact_url;

/// What a bus's client library reported, kept whole as the
/// [`source`](std::error::Error::source) of a [`BusError`]. Behind `Arc<dyn Error>`
/// because the error comes from one of several libraries (redis, async-nats, or a
/// [`Bus`](crate::Bus) implemented elsewhere), none of whose types should become part of this
/// crate's surface, and because `BusError` is `Clone`. Downcast it to the library's type
/// (`redis::RedisError`, `async_nats::ConnectError`, ...) to inspect it.
pub type BusFailure = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Why the bus could not do what was asked.
///
/// Each message names the bus (its URL, password redacted) and includes the failure's
/// text, so that printing the error alone (as the node's logs do) says everything; the
/// failure itself is the error's [`source`](std::error::Error::source). New kinds may be
/// added: match with a `_` arm. [`Bus`](crate::Bus) implementations outside this crate build theirs
/// with [`BusError::connect`], [`BusError::subscribe`] and [`BusError::publish`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BusError {
    /// The bus's server could not be reached, or refused this client. `url` is
    /// redacted ([`redact_url`]).
    Connect { url: String, source: BusFailure },
    /// The bus did not take a subscription to `topic`.
    Subscribe {
        url: String,
        topic: String,
        source: BusFailure,
    },
    /// The bus did not take a message; it may or may not have been delivered.
    Publish { url: String, source: BusFailure },
    /// The URL names no bus this crate can open. `url` is redacted.
    UnsupportedUrl { url: String },
}

impl BusError {
    /// Connecting to the bus at `url` failed because of `source`. `url` is redacted here.
    pub fn connect(url: &str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        BusError::Connect {
            url: redact_url(url),
            source: Arc::from(source.into()),
        }
    }

    /// Subscribing to `topic` on the bus at `url` failed because of `source`.
    pub fn subscribe(
        url: &str,
        topic: &str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        BusError::Subscribe {
            url: redact_url(url),
            topic: topic.to_owned(),
            source: Arc::from(source.into()),
        }
    }

    /// Publishing on the bus at `url` failed because of `source`.
    pub fn publish(url: &str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        BusError::Publish {
            url: redact_url(url),
            source: Arc::from(source.into()),
        }
    }
}

impl std::fmt::Display for BusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BusError::Connect { url, source } => write!(
                f,
                "cannot connect to the bus at {url}: {source} (check that the bus server runs \
                 and that the URL, user and password are right)"
            ),
            BusError::Subscribe { url, topic, source } => {
                write!(
                    f,
                    "cannot subscribe to {topic:?} on the bus at {url}: {source}"
                )
            }
            BusError::Publish { url, source } => {
                write!(f, "publishing on the bus at {url} failed: {source}")
            }
            BusError::UnsupportedUrl { url } => write!(
                f,
                "unsupported bus URL {url:?}: use redis://host:port or nats://host:port"
            ),
        }
    }
}

impl std::error::Error for BusError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // The library's error itself, not the `Arc` around it, so that it downcasts.
            BusError::Connect { source, .. }
            | BusError::Subscribe { source, .. }
            | BusError::Publish { source, .. } => Some(&**source),
            BusError::UnsupportedUrl { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn the_library_error_is_the_source_and_downcasts() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = BusError::connect("redis://u:secret@h:6379", io);
        let source = error.source().expect("a connect error has a source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("the source is the library's error, not a wrapper");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
        let message = error.to_string();
        assert!(
            message.starts_with("cannot connect to the bus at redis://u:***@h:6379: refused"),
            "{message}"
        );
        assert!(!message.contains("secret"), "{message}");
        assert!(
            message.contains("check that the bus server runs"),
            "{message}"
        );
    }

    #[test]
    fn publish_and_subscribe_errors_name_the_bus_and_the_cause() {
        let error = BusError::publish("nats://tok@h:4222", "timed out");
        assert_eq!(
            error.to_string(),
            "publishing on the bus at nats://***@h:4222 failed: timed out"
        );
        let error = BusError::subscribe("nats://h:4222", "recordsync.records", "denied");
        assert_eq!(
            error.to_string(),
            "cannot subscribe to \"recordsync.records\" on the bus at nats://h:4222: denied"
        );
        assert!(error.clone().source().is_some());
    }
}
