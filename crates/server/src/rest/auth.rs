//! Who a REST request is: `Authorization: Bearer <token>` (a token `POST /api/auth`
//! issued, or one the configured auth types read, such as a JWT), `Authorization: Basic`
//! (user and password, given to the auth types as `{username, password}`, what the
//! `file` auth type reads), `?access_token=<token>` on an event stream (as a bearer
//! token: `EventSource` cannot send headers), or nothing (the auth types are offered `{}`: an open server
//! lets the request in as the anonymous user). The same identities and auth types as
//! `POST /api` (see `http_api::auth`).

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use serde_json::json;

use super::errors::RestError;
use crate::ServerState;
use crate::auth::Identity;
use crate::http_api::auth::{Credentials, identify};

/// Decides who the request is, or refuses it (401). `access_token` is the token of an
/// event stream's `?access_token=` (a browser's `EventSource` cannot send headers),
/// taken as a bearer token.
pub async fn user(
    state: &ServerState,
    headers: &HeaderMap,
    access_token: Option<&str>,
) -> Result<Arc<Identity>, RestError> {
    if let Some(token) = access_token {
        if headers.contains_key(header::AUTHORIZATION) {
            return Err(RestError::BadParameter {
                param: "access_token",
                reason: "give the token either as `access_token` or in the Authorization header, not both".into(),
            });
        }
        if token.is_empty() {
            return Err(RestError::Unauthenticated(
                "the access_token is empty: pass a token from POST /api/auth".into(),
            ));
        }
        return run(state, Credentials::Token(token)).await;
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return run(state, Credentials::Nobody).await;
    };
    let text = value
        .to_str()
        .map_err(|_| RestError::Unauthenticated("the Authorization header is not ASCII".into()))?;
    let (scheme, rest) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err(RestError::Unauthenticated(
                "the bearer token is empty: send `Authorization: Bearer <token>`".into(),
            ));
        }
        run(state, Credentials::Token(rest)).await
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                RestError::Unauthenticated(
                    "Basic credentials must be base64 of `user:password` (UTF-8)".into(),
                )
            })?;
        let (username, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
        let data = json!({"username": username, "password": password});
        run(state, Credentials::AuthData(&data)).await
    } else {
        Err(RestError::Unauthenticated(format!(
            "unsupported authorization scheme {scheme:?}: use Bearer (a token from POST \
             /api/auth, or a JWT) or Basic"
        )))
    }
}

async fn run(
    state: &ServerState,
    credentials: Credentials<'_>,
) -> Result<Arc<Identity>, RestError> {
    identify(&state.config.auth, &state.tokens, credentials)
        .await
        .map_err(|refused| {
            let reason = match &refused.client_data {
                Some(serde_json::Value::String(s)) => s.clone(),
                _ => "the credentials were refused".to_owned(),
            };
            RestError::Unauthenticated(format!(
                "{reason}: log in with POST /api/auth and send `Authorization: Bearer <token>`"
            ))
        })
}
