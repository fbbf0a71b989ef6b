//! deepstream's HTTP API, as deepstream 7 serves it: `POST /api` with
//! `{token?, authData?, body: [messages]}` and `POST /api/auth`.
//!
//! - [`request`] — the messages (deepstream's JIF) and deepstream's schema checks.
//! - [`records`] — running record messages and event emits: permissions, engine calls,
//!   results.
//! - [`auth`]    — who a request is (`authData`, `token`, nobody), issued tokens.
//! - [`errors`]  — result objects, batch results, deepstream's texts.
//!
//! This module is the HTTP side of deepstream's `httpServer` (its node HTTP service,
//! `src/services/http/node/node-http.ts`) as far as the API needs it: the origin checks
//! ([`crate::cors`]), preflight `OPTIONS`, methods, the `application/json`
//! content type, the body limit (`maxMessageSize`), prefix routing of `postPath`,
//! `authPath` and `getPath`, and plain-text refusals ending in a blank line, as
//! deepstream writes them. It is served as the router's fallback, so the WebSocket
//! endpoints and the health check keep their routes. Each answer and text is checked
//! against the real deepstream 7 by `interop/test/http-api.test.mjs`.

pub mod auth;
pub mod errors;
pub mod records;
pub mod request;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::ServerState;
use recordsync_core::json::{self, MAX_DEPTH};

/// The settings of the HTTP API: deepstream's `type: http` endpoint options, and the
/// `httpServer.options` it is served under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpApiConfig {
    /// Where messages are posted (a prefix: `/api/anything` is the API too).
    pub post_path: String,
    /// GET under this prefix is answered "not yet implemented", as deepstream does.
    pub get_path: String,
    /// Where `POST` logs in and gets a token, when `enable_auth_endpoint`.
    pub auth_path: String,
    pub enable_auth_endpoint: bool,
    /// Whether requests may carry `authData` (else only a token, or nothing).
    pub allow_auth_data: bool,
    /// The largest request body, in bytes (`httpServer.options.maxMessageSize`).
    pub max_body: usize,
    /// How long a request's messages may take (the endpoint's `requestTimeout`): those
    /// not done by then are answered as timed out, as deepstream does.
    pub request_timeout: std::time::Duration,
}

impl Default for HttpApiConfig {
    /// deepstream 7's defaults.
    fn default() -> Self {
        HttpApiConfig {
            post_path: "/api".into(),
            get_path: "/api".into(),
            auth_path: "/api/auth".into(),
            enable_auth_endpoint: true,
            allow_auth_data: true,
            max_body: 1024 * 1024,
            request_timeout: std::time::Duration::from_millis(20_000),
        }
    }
}

/// The methods and request headers deepstream's CORS preflight allows.
const METHODS: &str = "GET, POST, OPTIONS";
const HEADERS: &str = "X-Requested-With, X-HTTP-Method-Override, Content-Type, Accept";

/// Serves every request the router has no route for: the HTTP API's paths, and
/// deepstream's "Endpoint not found." elsewhere.
pub async fn serve(State(state): State<Arc<ServerState>>, req: Request) -> Response {
    let Some(api) = state.config.http_api.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let cors = match state.config.cors.check(req.headers()) {
        Ok(cors) => cors,
        Err(refusal) => return refused(&refusal),
    };
    let mut response = match *req.method() {
        Method::POST => post(&state, &api, req).await,
        Method::GET => {
            if target(&req).starts_with(api.get_path.as_str()) {
                text(
                    StatusCode::BAD_REQUEST,
                    "Reading records via HTTP GET is not yet implemented, please use a post request instead.",
                )
            } else {
                text(StatusCode::NOT_FOUND, "Endpoint not found.")
            }
        }
        Method::OPTIONS => preflight(req.headers()),
        _ => text(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("Unsupported method. Supported methods: {METHODS}"),
        ),
    };
    response.headers_mut().extend(cors);
    response
}

/// The path and query, which deepstream matches its path prefixes against.
fn target(req: &Request) -> &str {
    req.uri()
        .path_and_query()
        .map_or(req.uri().path(), |pq| pq.as_str())
}

/// A CORS preflight, checked as deepstream checks it.
fn preflight(headers: &HeaderMap) -> Response {
    let header_text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let Some(method) = header_text(header::ACCESS_CONTROL_REQUEST_METHOD) else {
        return text(
            StatusCode::BAD_REQUEST,
            "Missing header \"Access-Control-Request-Method\".",
        );
    };
    if !["GET", "POST", "OPTIONS"].contains(&method) {
        return text(
            StatusCode::FORBIDDEN,
            &format!("Method {method} is forbidden. Supported methods: {METHODS}"),
        );
    }
    let Some(requested) = header_text(header::ACCESS_CONTROL_REQUEST_HEADERS) else {
        return text(
            StatusCode::BAD_REQUEST,
            "Missing header \"Access-Control-Request-Headers\".",
        );
    };
    let allowed = HEADERS.to_ascii_lowercase();
    let allowed: Vec<&str> = allowed.split(", ").collect();
    // deepstream names the refused header as it appears between the commas, spaces and all.
    if let Some(refused) = requested
        .split(',')
        .find(|h| !allowed.contains(&h.trim().to_ascii_lowercase().as_str()))
    {
        return text(
            StatusCode::FORBIDDEN,
            &format!("Header {refused} is forbidden. Supported headers: {HEADERS}"),
        );
    }
    let mut response = crate::cors::preflight(METHODS, HEADERS);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A POST: the content type, the body, then the auth endpoint or the API by prefix.
async fn post(state: &Arc<ServerState>, api: &HttpApiConfig, req: Request) -> Response {
    if !is_json(req.headers()) {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Invalid \"Content-Type\" header. Supported media types: \"application/json\"",
        );
    }
    let target = target(&req).to_owned();
    let body = match read_body(req, api.max_body).await {
        Ok(body) => body,
        Err(reason) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("Failed to parse body of request: {reason}"),
            );
        }
    };
    // deepstream tries its prefixes longest (in reverse sorted order) first.
    let mut routes: Vec<(&str, bool)> = vec![(api.post_path.as_str(), false)];
    if api.enable_auth_endpoint {
        routes.push((api.auth_path.as_str(), true));
    }
    routes.sort_by(|a, b| b.0.cmp(a.0));
    match routes.iter().find(|(prefix, _)| target.starts_with(prefix)) {
        Some((_, true)) => login(state, body).await,
        Some((_, false)) => messages(state, api, body).await,
        None => text(StatusCode::NOT_FOUND, "Endpoint not found."),
    }
}

/// Whether the request says its body is JSON (`application/json`, any parameters).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// Reads and parses the body as deepstream's body parser does: at most `limit` bytes
/// ("request entity too large", refused from `Content-Length` before reading), an object
/// or an array (an empty body is `{}`), nested at most as deep as a record may be plus the
/// request's own three levels.
async fn read_body(req: Request, limit: usize) -> Result<Value, String> {
    const TOO_LARGE: &str = "request entity too large";
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(TOO_LARGE.into());
    }
    let bytes = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            if std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            {
                TOO_LARGE.to_owned()
            } else {
                format!("the body could not be read: {e}")
            }
        })?;
    let text = std::str::from_utf8(&bytes).map_err(|e| format!("the body is not UTF-8: {e}"))?;
    let trimmed = text.trim_start_matches([' ', '\t', '\n', '\r']);
    if trimmed.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return Err("the body must be a JSON object or array".into());
    }
    json::parse_within(text, MAX_DEPTH + 3).map_err(|e| e.to_string())
}

/// `POST /api/auth`: the body is the auth data; a login answers a token and the user's
/// client data.
async fn login(state: &ServerState, body: Value) -> Response {
    let credentials = match &body {
        Value::Object(_) => auth::Credentials::AuthData(&body),
        _ => auth::Credentials::Nobody,
    };
    match auth::identify(&state.config.auth, &state.tokens, credentials).await {
        Ok(user) => {
            let mut reply = Map::new();
            reply.insert("token".into(), state.tokens.issue(user.clone()).into());
            if !user.client_data.is_null() {
                reply.insert("clientData".into(), user.client_data.clone());
            }
            json_reply(&Value::Object(reply))
        }
        Err(refused) => text(
            StatusCode::UNAUTHORIZED,
            refusal_text(&refused, "Invalid authentication data."),
        ),
    }
}

/// What a refused login says: the auth type's own text, when it gave one as a string.
fn refusal_text<'a>(refused: &'a crate::auth::Refused, default: &'a str) -> &'a str {
    match &refused.client_data {
        Some(Value::String(s)) => s,
        _ => default,
    }
}

/// `POST /api`: checks the request's shape and credentials as deepstream does, then
/// every message's, then runs the messages in order.
async fn messages(state: &Arc<ServerState>, api: &HttpApiConfig, body: Value) -> Response {
    let messages = match body.get("body") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        Some(v) if truthy(v) => {
            return text(
                StatusCode::BAD_REQUEST,
                "Invalid message: the \"body\" parameter must be a non-empty array of Objects.",
            );
        }
        _ => {
            return text(
                StatusCode::BAD_REQUEST,
                "Invalid message: the \"body\" parameter must exist.",
            );
        }
    };
    let credentials = if let Some(auth_data) = body.get("authData") {
        if !api.allow_auth_data {
            return text(
                StatusCode::BAD_REQUEST,
                "Authentication using authData is disabled. Try using a token instead.",
            );
        }
        if !(auth_data.is_object() || auth_data.is_array()) {
            return text(
                StatusCode::BAD_REQUEST,
                "Invalid message: the \"authData\" parameter must be an object",
            );
        }
        auth::Credentials::AuthData(auth_data)
    } else if let Some(token) = body.get("token") {
        match token.as_str() {
            Some(token) if !token.is_empty() => auth::Credentials::Token(token),
            _ => {
                return text(
                    StatusCode::BAD_REQUEST,
                    "Invalid message: the \"token\" parameter must be a non-empty string",
                );
            }
        }
    } else {
        auth::Credentials::Nobody
    };
    let user = match auth::identify(&state.config.auth, &state.tokens, credentials).await {
        Ok(user) => user,
        Err(refused) => {
            return text(
                StatusCode::UNAUTHORIZED,
                refusal_text(&refused, "Unsuccessful authentication attempt."),
            );
        }
    };
    let mut parsed = Vec::with_capacity(messages.len());
    for (index, message) in messages.iter().enumerate() {
        match request::parse(message) {
            Ok(m) => {
                metrics::counter!("recordsync_messages_in_total", "protocol" => "http", "kind" => m.kind())
                    .increment(1);
                parsed.push(m);
            }
            Err(reason) => {
                let mut why = format!("Failed to parse JIF object at index {index}.");
                if let Some(reason) = reason {
                    why.push_str(&format!(" Reason: {reason}"));
                }
                return text(StatusCode::BAD_REQUEST, &why);
            }
        }
    }
    let results = run_within(state, user, parsed, api.request_timeout).await;
    let mut reply = Map::new();
    reply.insert("result".into(), errors::batch_result(&results).into());
    reply.insert("body".into(), Value::Array(results));
    json_reply(&Value::Object(reply))
}

/// Runs the messages in order, answering with the results of those done within
/// `timeout` (counted from here, once the request is read and checked, as deepstream
/// counts it); each one not done by then is answered [`errors::timed_out`]. As in
/// deepstream, the messages still run to their end: a write answered as timed out may yet
/// be applied.
async fn run_within(
    state: &Arc<ServerState>,
    user: Arc<crate::auth::Identity>,
    messages: Vec<request::Message>,
    timeout: std::time::Duration,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    let count = messages.len();
    let (tx, mut rx) = tokio::sync::mpsc::channel(count.max(1));
    let state = state.clone();
    tokio::spawn(async move {
        let batch = records::Batch {
            state: &state,
            user,
            writer: state.next_session_id(),
        };
        for message in &messages {
            // The answer may be gone (timed out): the messages still run.
            let _ = tx.send(batch.run(message).await).await;
        }
    });
    let mut results = Vec::with_capacity(count);
    while results.len() < count {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(result)) => results.push(result),
            Ok(None) => {
                tracing::error!("an HTTP API request's messages stopped before their end");
                break;
            }
            Err(_) => {
                tracing::warn!(
                    done = results.len(),
                    of = count,
                    "HTTP API request timeout (the endpoint's requestTimeout)"
                );
                break;
            }
        }
    }
    results.resize_with(count, errors::timed_out);
    results
}

/// JavaScript's truthiness of a JSON value (deepstream words its refusal by it).
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A request refused by the origin checks (`crate::cors`), as deepstream answers it.
pub fn refused(refusal: &crate::cors::Refusal) -> Response {
    text(StatusCode::FORBIDDEN, &refusal.to_string())
}

/// A plain-text answer as deepstream writes one: the message and a blank line.
fn text(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from(format!("{message}\r\n\r\n")),
    )
        .into_response()
}

/// A JSON answer as deepstream writes one: 200, the JSON and a blank line.
fn json_reply(value: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        Body::from(format!("{value}\r\n\r\n")),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!is_json(&h));
    }

    #[test]
    fn truthiness_is_javascripts() {
        for (v, t) in [
            (serde_json::json!(null), false),
            (serde_json::json!(0), false),
            (serde_json::json!(""), false),
            (serde_json::json!(false), false),
            (serde_json::json!(5), true),
            (serde_json::json!("x"), true),
            (serde_json::json!({}), true),
        ] {
            assert_eq!(truthy(&v), t, "{v}");
        }
    }
}
