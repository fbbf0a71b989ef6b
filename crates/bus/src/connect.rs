//! Opening the bus a URL names, keeping its password out of errors and logs, and the
//! backoff every reconnecting subscription uses.

use std::sync::Arc;

use crate::{Bus, BusError, NatsBus, RedisBus};

/// Connects to the bus at `url` (`redis://…` or `nats://…`).
pub async fn connect(url: &str) -> Result<Arc<dyn Bus>, BusError> {
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        Ok(Arc::new(RedisBus::connect(url).await?))
    } else if url.starts_with("nats://") || url.starts_with("tls://") {
        Ok(Arc::new(NatsBus::connect(url).await?))
    } else {
        Err(BusError::UnsupportedUrl {
            url: redact_url(url),
        })
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
