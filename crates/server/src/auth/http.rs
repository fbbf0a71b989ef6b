//! `type: http`: a webhook decides.
//!
//! ```yaml
//! auth:
//!   - type: http
//!     options:
//!       endpointUrl: https://example.com/login   # POSTed {connectionData, authData}
//!       permittedStatusCodes: [200]              # (default: any 2xx)
//!       requestTimeout: 2000                     # ms
//!       promoteToHeader: [token]                 # auth data fields sent as headers too
//!       retryStatusCodes: [404, 504]
//!       retryAttempts: 3
//!       retryInterval: 5000                      # ms
//! ```
//!
//! A permitted reply lets the user in: its JSON body supplies `id`, `serverData` and
//! `clientData` (a plain-text body is the id). Any other status refuses the login; its
//! body's `clientData` (or its text, as `{error}`) goes back to the client. A webhook that
//! cannot be reached is retried, then the login is refused, as in deepstream.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value as Json, json};

use super::{Authenticator, Context, Identity, Outcome};
use crate::config::ConfigError;

#[derive(Debug)]
pub struct HttpAuth {
    url: String,
    client: reqwest::Client,
    /// Empty: any 2xx.
    permitted: Vec<u16>,
    retry_statuses: Vec<u16>,
    retry_attempts: u32,
    retry_interval: Duration,
    promote_to_header: Vec<String>,
    report_invalid_parameters: bool,
}

fn status_list(options: &Json, key: &str, cx: &Context<'_>) -> Result<Vec<u16>, ConfigError> {
    match options.get(key) {
        None => Ok(Vec::new()),
        Some(Json::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| (100..600).contains(n))
                    .ok_or_else(|| cx.invalid(key, format!("{v} is not an HTTP status code")))
            })
            .collect(),
        Some(other) => {
            Err(cx.invalid(key, format!("expected a list of status codes, got {other}")))
        }
    }
}

impl HttpAuth {
    pub fn from_options(
        options: &Json,
        cx: &Context<'_>,
        warnings: &mut Vec<String>,
    ) -> Result<HttpAuth, ConfigError> {
        cx.check_keys(
            options,
            &[
                "endpointUrl",
                "permittedStatusCodes",
                "requestTimeout",
                "promoteToHeader",
                "retryStatusCodes",
                "retryAttempts",
                "retryInterval",
                "reportInvalidParameters",
                "fieldsToPassThrough",
            ],
            warnings,
        );
        let url = options
            .get("endpointUrl")
            .and_then(Json::as_str)
            .ok_or_else(|| cx.invalid("endpointUrl", "missing: the URL of the login webhook"))?;
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| cx.invalid("endpointUrl", format!("{url:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(cx.invalid(
                "endpointUrl",
                format!("{url:?} must be an http:// or https:// URL"),
            ));
        }
        let timeout = Duration::from_millis(cx.number(options, "requestTimeout", 2000)?.max(1));
        let promote_to_header = match options.get("promoteToHeader") {
            None => Vec::new(),
            Some(Json::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_owned).ok_or_else(|| {
                        cx.invalid("promoteToHeader", "expected a list of field names")
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(cx.invalid("promoteToHeader", "expected a list of field names")),
        };
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(2))
            .build()
            .map_err(|e| cx.invalid("endpointUrl", format!("cannot make an HTTP client: {e}")))?;
        Ok(HttpAuth {
            url: url.to_owned(),
            client,
            permitted: status_list(options, "permittedStatusCodes", cx)?,
            retry_statuses: status_list(options, "retryStatusCodes", cx)?,
            retry_attempts: cx.number(options, "retryAttempts", 0)?.min(100) as u32,
            retry_interval: Duration::from_millis(cx.number(options, "retryInterval", 1000)?),
            promote_to_header,
            report_invalid_parameters: cx.report_invalid_parameters(options)?,
        })
    }

    fn permitted(&self, status: u16) -> bool {
        if self.permitted.is_empty() {
            (200..300).contains(&status)
        } else {
            self.permitted.contains(&status)
        }
    }

    fn refuse(&self, client_data: Option<Json>) -> Outcome {
        if self.report_invalid_parameters {
            Outcome::Invalid { client_data }
        } else {
            Outcome::NotMine
        }
    }

    async fn call(&self, auth_data: &Json) -> Result<(u16, String), String> {
        let mut request = self
            .client
            .post(&self.url)
            .json(&json!({"connectionData": {}, "authData": auth_data}));
        for field in &self.promote_to_header {
            if let Some(value) = auth_data.get(field) {
                let text = match value {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                request = request.header(field.as_str(), text);
            }
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| e.to_string())?;
        Ok((status, body))
    }
}

#[async_trait]
impl Authenticator for HttpAuth {
    async fn authenticate(&self, auth_data: &Json) -> Outcome {
        let mut attempt = 0;
        let (status, body) = loop {
            match self.call(auth_data).await {
                Ok((status, _))
                    if self.retry_statuses.contains(&status) && attempt < self.retry_attempts => {}
                Ok(reply) if !self.retry_statuses.contains(&reply.0) => break reply,
                Ok(_) | Err(_) if attempt >= self.retry_attempts => {
                    tracing::warn!(url = %self.url, "http auth: the webhook did not answer usefully; login refused");
                    return self.refuse(Some(json!({"error": "AUTH_RETRY_ATTEMPTS_EXCEEDED"})));
                }
                Err(e) => tracing::warn!(url = %self.url, "http auth error: {e}"),
                Ok(_) => {}
            }
            attempt += 1;
            tokio::time::sleep(self.retry_interval).await;
        };
        let parsed: Json =
            recordsync_core::json::parse(&body).unwrap_or_else(|_| Json::String(body.clone()));
        if (500..600).contains(&status) {
            tracing::warn!(url = %self.url, status, "http auth server error");
        }
        if !self.permitted(status) {
            return self.refuse(match parsed {
                Json::String(s) if !s.is_empty() => Some(json!({"error": s})),
                Json::Object(map) => map.get("clientData").cloned(),
                _ => None,
            });
        }
        match parsed {
            Json::String(id) if !id.is_empty() => {
                Outcome::Valid(Identity::new(Some(id), Json::Null, Json::Null))
            }
            Json::Object(map) => {
                if map.get("isValid") == Some(&Json::Bool(false)) {
                    return self.refuse(map.get("clientData").cloned());
                }
                let id = match map.get("id") {
                    Some(Json::String(s)) => Some(s.clone()),
                    Some(Json::Number(n)) => Some(n.to_string()),
                    _ => None,
                };
                Outcome::Valid(Identity::new(
                    id,
                    map.get("serverData").cloned().unwrap_or(Json::Null),
                    map.get("clientData").cloned().unwrap_or(Json::Null),
                ))
            }
            _ => Outcome::Valid(Identity::new(None, Json::Null, Json::Null)),
        }
    }
}
