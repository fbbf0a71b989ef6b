//! How a [`Client`](crate::Client) connects and behaves: [`Options`] and [`Reconnect`].

use std::time::Duration;

use serde_json::Value;

use crate::error::ConnectError;
use crate::merge::MergeStrategy;

/// Settings for [`Client::connect_with`](crate::Client::connect_with). Start from
/// [`Options::new`] and change what you need:
///
/// ```
/// use std::time::Duration;
/// use recordsync_client::{MergeStrategy, Options, Reconnect};
///
/// let options = Options::new("ws://127.0.0.1:6020/deepstream")
///     .auth(serde_json::json!({ "username": "ada", "password": "secret" }))
///     .unload_delay(Duration::from_secs(2))
///     .merge_strategy(MergeStrategy::LocalWins)
///     .reconnect(Reconnect { initial_delay: Duration::from_millis(100), ..Reconnect::default() });
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) url: String,
    pub(crate) auth: Value,
    pub(crate) reconnect: Reconnect,
    pub(crate) unload_delay: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) merge_strategy: MergeStrategy,
}

impl Options {
    /// Defaults for the server at `url`. The URL may leave out the scheme and the path:
    /// `localhost:6020` means `ws://localhost:6020/deepstream`.
    pub fn new(url: impl Into<String>) -> Options {
        Options {
            url: url.into(),
            auth: Value::Object(Default::default()),
            reconnect: Reconnect::default(),
            unload_delay: Duration::ZERO,
            request_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(30),
            merge_strategy: MergeStrategy::RemoteWins,
        }
    }

    /// The authentication data sent on login (deepstream's `client.login(authParams)`);
    /// `{}` by default, which servers with open authentication accept.
    pub fn auth(mut self, auth: Value) -> Options {
        self.auth = auth;
        self
    }

    /// How to reconnect after the connection is lost.
    pub fn reconnect(mut self, reconnect: Reconnect) -> Options {
        self.reconnect = reconnect;
        self
    }

    /// How long a record stays subscribed after its last handle is dropped (zero by
    /// default: the server is told at once). Asking for the record again within the delay
    /// reuses the subscription without a round trip.
    pub fn unload_delay(mut self, delay: Duration) -> Options {
        self.unload_delay = delay;
        self
    }

    /// How long requests (`head`, `snapshot`, `delete`, `listen`, acknowledged writes) wait
    /// for their answer; 15 s by default.
    pub fn request_timeout(mut self, timeout: Duration) -> Options {
        self.request_timeout = timeout;
        self
    }

    /// How long connecting and logging in may take; 10 s by default.
    pub fn connect_timeout(mut self, timeout: Duration) -> Options {
        self.connect_timeout = timeout;
        self
    }

    /// How often the client pings the server (30 s, as deepstream's client does). The
    /// connection counts as lost when nothing was heard for two intervals.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Options {
        self.heartbeat_interval = interval;
        self
    }

    /// The merge strategy for records that do not set their own.
    pub fn merge_strategy(mut self, strategy: MergeStrategy) -> Options {
        self.merge_strategy = strategy;
        self
    }

    /// The URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Reconnection with exponential backoff: the first retry waits `initial_delay`, each
/// further one twice as long up to `max_delay` (with ±20% jitter so that many clients do
/// not return at the same instant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconnect {
    pub initial_delay: Duration,
    pub max_delay: Duration,
    /// Give up after this many failed attempts in a row; `None` (the default) never gives up.
    pub max_attempts: Option<u32>,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_attempts: None,
        }
    }
}

impl Reconnect {
    /// The wait before attempt `attempt` (1 for the first retry).
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(20);
        let base = self
            .initial_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay);
        let jitter = rand::random_range(0.8..1.2);
        base.mul_f64(jitter).min(self.max_delay)
    }
}

/// Completes a server address: adds `ws://` when there is no scheme, maps `http(s)` to
/// `ws(s)`, and adds the path `/deepstream` when there is none.
pub(crate) fn normalize_url(input: &str) -> Result<String, ConnectError> {
    let invalid = |reason: &str| ConnectError::InvalidUrl {
        url: input.to_owned(),
        reason: reason.to_owned(),
        source: None,
    };
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(invalid("it is empty"));
    }
    let (scheme, rest) = match trimmed.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("ws".to_owned(), trimmed),
    };
    let scheme = match scheme.as_str() {
        "ws" | "http" => "ws",
        "wss" | "https" => {
            return Err(invalid(
                "wss:// needs TLS, which this client does not include; put a TLS-terminating proxy in front or use ws://",
            ));
        }
        _ => return Err(invalid("the scheme must be ws:// (or http://)")),
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(invalid("it names no host"));
    }
    let path = if path.is_empty() || path == "/" {
        "/deepstream"
    } else {
        path
    };
    Ok(format!("{scheme}://{authority}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_completed() {
        let n = |s| normalize_url(s).unwrap();
        assert_eq!(n("localhost:6020"), "ws://localhost:6020/deepstream");
        assert_eq!(n("ws://h:1"), "ws://h:1/deepstream");
        assert_eq!(n("ws://h:1/"), "ws://h:1/deepstream");
        assert_eq!(n("http://h:1/custom"), "ws://h:1/custom");
        assert_eq!(
            n("ws://127.0.0.1:6020/deepstream"),
            "ws://127.0.0.1:6020/deepstream"
        );
        assert!(normalize_url("").is_err());
        assert!(normalize_url("ftp://x").is_err());
        assert!(normalize_url("wss://x").is_err());
        assert!(normalize_url("ws:///path").is_err());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let r = Reconnect {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_attempts: None,
        };
        let first = r.delay(1);
        assert!(first >= Duration::from_millis(80) && first <= Duration::from_millis(120));
        let third = r.delay(3);
        assert!(third >= Duration::from_millis(320) && third <= Duration::from_millis(480));
        assert!(r.delay(30) <= Duration::from_secs(1));
    }
}
