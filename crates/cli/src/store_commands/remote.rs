//! The store commands through a running server (`--url`): its REST API under `/v1`
//! (docs/rest.md), with the login the client commands take (`--auth JSON`).
//!
//! `--auth` is given to the server as the REST API reads credentials: `{"username",
//! "password"}` alone as Basic credentials, `{"token"}` alone as a bearer token, any
//! other login data through `POST /api/auth` (the HTTP API's login), whose token is then
//! sent as a bearer token.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;

use super::StoreCommandError;

/// How long to wait for the server to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server's REST API, and who we are to it.
pub struct Remote {
    http: reqwest::Client,
    base: Url,
    authorization: Option<Authorization>,
}

enum Authorization {
    Basic { username: String, password: String },
    Bearer(String),
}

/// A refusal as the REST API answers it: `{"error":{"code","message"}}`.
#[derive(Deserialize)]
struct Refusal {
    error: RefusalBody,
}

#[derive(Deserialize)]
struct RefusalBody {
    code: String,
    message: String,
}

impl Remote {
    /// The server at `url` (`http://host:port`, `https://…`, `host:port`, or a client
    /// command's `ws://host:port/deepstream`, whose host and port are used), logged in
    /// with `auth` (JSON login data) if given.
    pub async fn connect(url: &str, auth: Option<&str>) -> Result<Remote, StoreCommandError> {
        let base = base_url(url)?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|source| StoreCommandError::Unreachable {
                url: base.to_string(),
                source,
            })?;
        let mut remote = Remote {
            http,
            base,
            authorization: None,
        };
        if let Some(auth) = auth {
            let data: Value = serde_json::from_str(auth).map_err(StoreCommandError::InvalidAuth)?;
            remote.authorization = Some(remote.log_in(data).await?);
        }
        Ok(remote)
    }

    async fn log_in(&self, data: Value) -> Result<Authorization, StoreCommandError> {
        if let Value::Object(fields) = &data {
            let text = |key: &str| fields.get(key).and_then(Value::as_str).map(str::to_owned);
            if fields.len() == 2
                && let (Some(username), Some(password)) = (text("username"), text("password"))
            {
                return Ok(Authorization::Basic { username, password });
            }
            if fields.len() == 1
                && let Some(token) = text("token")
            {
                return Ok(Authorization::Bearer(token));
            }
        }
        let url = self.url(&["api", "auth"], &[]);
        let response = self
            .http
            .post(url.clone())
            .json(&data)
            .send()
            .await
            .map_err(|source| self.unreachable(source))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|source| self.unreachable(source))?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(StoreCommandError::Refused {
                status: StatusCode::UNAUTHORIZED.as_u16(),
                code: "unauthenticated".into(),
                message: format!("the login was refused: {}", body.trim()),
            });
        }
        let token = serde_json::from_str::<Value>(&body)
            .ok()
            .filter(|_| status.is_success())
            .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_owned))
            .ok_or_else(|| StoreCommandError::Refused {
                status: status.as_u16(),
                code: "login".into(),
                message: format!(
                    "POST {url} did not answer a token ({status}): log in with \
                     '{{\"username\":…,\"password\":…}}' or '{{\"token\":…}}' instead"
                ),
            })?;
        Ok(Authorization::Bearer(token))
    }

    /// The URL of `segments` (each percent-encoded as one path segment, `/` included)
    /// below the base, with `query`.
    pub fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends `method` to `url`; a refusal (any status but 2xx) is an error with the
    /// server's code and message.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
    ) -> Result<reqwest::Response, StoreCommandError> {
        let mut request = self.http.request(method, url);
        request = match &self.authorization {
            None => request,
            Some(Authorization::Basic { username, password }) => {
                request.basic_auth(username, Some(password))
            }
            Some(Authorization::Bearer(token)) => request.bearer_auth(token),
        };
        let response = request
            .send()
            .await
            .map_err(|source| self.unreachable(source))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        Err(refusal(status, &body))
    }

    /// A failure to reach the server (or to read its answer).
    pub fn unreachable(&self, source: reqwest::Error) -> StoreCommandError {
        StoreCommandError::Unreachable {
            url: self.base.to_string(),
            source,
        }
    }
}

/// A REST refusal's status, code and message (a body that is not one is quoted).
pub fn refusal(status: StatusCode, body: &str) -> StoreCommandError {
    let (code, message) = match serde_json::from_str::<Refusal>(body) {
        Ok(r) => (r.error.code, r.error.message),
        Err(_) if body.trim().is_empty() => (String::new(), status.to_string()),
        Err(_) => (String::new(), format!("{status}: {}", body.trim())),
    };
    StoreCommandError::Refused {
        status: status.as_u16(),
        code,
        message,
    }
}

/// The REST API's base URL from what `--url` was given.
fn base_url(given: &str) -> Result<Url, StoreCommandError> {
    let bad = |reason: String| StoreCommandError::BadUrl {
        url: given.to_owned(),
        reason,
    };
    let text = if given.contains("://") {
        given.to_owned()
    } else {
        format!("http://{given}")
    };
    let mut url = Url::parse(&text).map_err(|e| bad(e.to_string()))?;
    let secure = match url.scheme() {
        "http" | "ws" => false,
        "https" | "wss" => true,
        other => {
            return Err(bad(format!(
                "{other}:// is not HTTP; give http://host:port"
            )));
        }
    };
    if url.scheme().starts_with("ws") {
        // A client command's URL names the WebSocket endpoint: the REST API is at the
        // same host and port.
        url.set_path("/");
        let scheme = if secure { "https" } else { "http" };
        url.set_scheme(scheme)
            .map_err(|()| bad(format!("cannot make an {scheme} URL of it")))?;
    }
    if url.host_str().is_none() {
        return Err(bad("it names no host".into()));
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_every_form_give_the_servers_base() {
        let base = |s: &str| base_url(s).map(|u| u.to_string()).ok();
        assert_eq!(
            base("http://127.0.0.1:6020").as_deref(),
            Some("http://127.0.0.1:6020/")
        );
        assert_eq!(
            base("127.0.0.1:6020").as_deref(),
            Some("http://127.0.0.1:6020/")
        );
        assert_eq!(
            base("ws://h:6020/deepstream").as_deref(),
            Some("http://h:6020/")
        );
        assert_eq!(base("wss://h/deepstream").as_deref(), Some("https://h/"));
        assert_eq!(
            base("http://proxy/recordsync/").as_deref(),
            Some("http://proxy/recordsync/")
        );
        assert!(base("ftp://h").is_none());
    }

    #[test]
    fn names_are_one_path_segment_each() {
        let remote = Remote {
            http: reqwest::Client::new(),
            base: base_url("http://h:1/x/").unwrap(),
            authorization: None,
        };
        assert_eq!(
            remote
                .url(&["v1", "records", "a/b c", "history"], &[("from", "3")])
                .as_str(),
            "http://h:1/x/v1/records/a%2Fb%20c/history?from=3"
        );
    }

    #[test]
    fn refusals_keep_the_servers_code_and_message() {
        let e = refusal(
            StatusCode::FORBIDDEN,
            r#"{"error":{"code":"permission_denied","message":"no"}}"#,
        );
        assert!(matches!(
            e,
            StoreCommandError::Refused { status: 403, ref code, ref message }
                if code == "permission_denied" && message == "no"
        ));
        let e = refusal(StatusCode::BAD_GATEWAY, "upstream down");
        assert!(e.to_string().contains("upstream down"), "{e}");
    }
}
