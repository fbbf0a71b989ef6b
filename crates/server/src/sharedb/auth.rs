//! Who a ShareDB connection is, decided once, from its WebSocket upgrade request.
//!
//! ShareDB's protocol carries no credentials: a ShareDB server authenticates the HTTP
//! request that opens the WebSocket (its app reads a session cookie or a token and hands
//! the user to `backend.listen(stream, req)` and the `connect` middleware). recordsync
//! does the same with its configured auth types, as the REST API does
//! ([`crate::rest::auth`]):
//! - `Authorization: Bearer <token>` (a token from `POST /api/auth`, or what the auth
//!   types read, such as a JWT) or `Authorization: Basic` (user and password), for
//!   clients that can set headers (Node's `ws`);
//! - `?access_token=<token>` or `?token=<token>` in the URL, for browsers, whose
//!   `WebSocket` cannot set headers;
//! - neither: the auth types are offered no credentials (`{}`), which an open server (or
//!   an auth type that admits anonymous users) lets in.
//!
//! A refusal answers the upgrade `401 Unauthorized` with a message saying what to send;
//! the WebSocket is never opened (the npm client then reconnects, as after any failed
//! connection). Once in, every read, op, query and presence of the connection is checked
//! by the Valve rules as this user (`user.id`, `user.data`), and its ops are journaled
//! with the user's id as author.

use std::sync::Arc;

use axum::http::{HeaderMap, header};

use crate::ServerState;
use crate::auth::Identity;
use crate::http_api::auth::{Credentials, identify};
use crate::rest::errors::RestError;

/// The URL parameters a token may come in.
const TOKEN_PARAMETERS: [&str; 2] = ["access_token", "token"];

/// The user of an upgrade request with `headers` and URL `query`, or why it is refused
/// (a message for the 401).
pub async fn user(
    state: &ServerState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Arc<Identity>, String> {
    let token = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(key, _)| TOKEN_PARAMETERS.contains(&key.as_ref()))
            .map(|(_, value)| value.into_owned())
    });
    match (headers.contains_key(header::AUTHORIZATION), token) {
        (true, Some(_)) => {
            Err("both an Authorization header and a token in the URL: send one of them".into())
        }
        (true, None) => crate::rest::auth::user(state, headers, None)
            .await
            .map_err(|e| match e {
                RestError::Unauthenticated(message) => message,
                other => other.to_string(),
            }),
        (false, Some(token)) if token.is_empty() => {
            Err("the token in the URL is empty: connect to /sharedb?access_token=<token>".into())
        }
        (false, Some(token)) => identify(
            &state.config.auth,
            &state.tokens,
            Credentials::Token(&token),
        )
        .await
        .map_err(|refused| {
            format!(
                "{}: log in with POST /api/auth and connect with ?access_token=<token>",
                reason(refused.client_data.as_ref())
            )
        }),
        (false, None) => identify(&state.config.auth, &state.tokens, Credentials::Nobody)
            .await
            .map_err(|refused| {
                format!(
                    "{}: this server admits no anonymous ShareDB connections; log in with \
                     POST /api/auth and connect with ?access_token=<token> (or send \
                     `Authorization: Bearer <token>`)",
                    reason(refused.client_data.as_ref())
                )
            }),
    }
}

/// What an auth type said when it refused, or a plain refusal.
fn reason(client_data: Option<&serde_json::Value>) -> String {
    match client_data {
        Some(serde_json::Value::String(s)) => s.clone(),
        _ => "the credentials were refused".to_owned(),
    }
}
