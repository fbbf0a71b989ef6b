//! [`ReqwestFetcher`] (feature `reqwest`): a [`WebFetcher`] on reqwest, for hosts that
//! use it (the server does).
//!
//! It keeps the rules [`WebFetcher`] asks for: a redirect is followed only to HTTPS, or
//! to plain HTTP on a loopback host (at most five); a plain-HTTP URL to any other host is
//! refused before connecting; the body is read up to the limit and refused beyond it;
//! every fetch has a timeout. A non-2xx answer is an error naming the status.

use std::time::Duration;

use async_trait::async_trait;
use url::Url;

use crate::did_web::is_loopback;
use crate::resolver::{FetchError, WebFetcher};

/// How long a fetch may take, by default.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;

/// Fetches `did:web` documents with reqwest.
#[derive(Debug, Clone)]
pub struct ReqwestFetcher {
    client: reqwest::Client,
}

/// Whether fetching `url` keeps to the transport rule: HTTPS, or HTTP to loopback only.
fn allowed(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => is_loopback(url.host()),
        _ => false,
    }
}

impl ReqwestFetcher {
    /// A fetcher whose every fetch ends after `timeout`.
    pub fn new(timeout: Duration) -> Result<ReqwestFetcher, FetchError> {
        let policy = reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else if allowed(attempt.url()) {
                attempt.follow()
            } else {
                let to = attempt.url().to_string();
                attempt.error(format!(
                    "a redirect to {to}: did:web documents are fetched over HTTPS (plain HTTP only on this machine)"
                ))
            }
        });
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(policy)
            .build()
            .map_err(|e| FetchError::new("no HTTP client could be made", Some(Box::new(e))))?;
        Ok(ReqwestFetcher { client })
    }
}

#[async_trait]
impl WebFetcher for ReqwestFetcher {
    async fn fetch(&self, url: &Url, max_bytes: usize) -> Result<Vec<u8>, FetchError> {
        if !allowed(url) {
            return Err(FetchError::new(
                format!(
                    "{url} is refused: did:web documents are fetched over HTTPS (plain HTTP only on this machine)"
                ),
                None,
            ));
        }
        let failed = |e: reqwest::Error| {
            // reqwest's own text says what happened (refused, timed out, a redirect
            // refused by the policy above, with its reason as the source).
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                message = format!("{message}: {cause}");
                source = cause.source();
            }
            FetchError::new(message, Some(Box::new(e)))
        };
        let mut response = self.client.get(url.clone()).send().await.map_err(failed)?;
        if !response.status().is_success() {
            return Err(FetchError::new(
                format!("the server answered {}", response.status()),
                None,
            ));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > max_bytes {
                return Err(FetchError::new(
                    format!("the document is larger than {max_bytes} bytes"),
                    None,
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_and_http_only_to_loopback() {
        for (url, expected) in [
            ("https://example.com/did.json", true),
            ("http://127.0.0.1:8080/did.json", true),
            ("http://localhost/did.json", true),
            ("http://[::1]/did.json", true),
            ("http://example.com/did.json", false),
            ("http://0.0.0.0/did.json", false),
            ("http://10.0.0.1/did.json", false),
            ("ftp://127.0.0.1/did.json", false),
        ] {
            assert_eq!(allowed(&Url::parse(url).unwrap()), expected, "{url}");
        }
    }
}
