//! The opening handshake (RFC 6455 §4.2): check the upgrade request, answer
//! `101 Switching Protocols`, and take the TCP socket back from hyper once the answer has
//! been written.
//!
//! Refusals use the status codes and wording of axum's `WebSocketUpgrade`, which served
//! these endpoints before, so a client that probed them sees the same answers.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use thiserror::Error;
use tokio::net::TcpStream;

/// Why an upgrade request was refused. Each variant's message tells the client what to fix.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Refused {
    #[error("a WebSocket upgrade must be a GET request")]
    MethodNotGet,
    #[error("Connection header did not include 'upgrade'")]
    NoConnectionUpgrade,
    #[error("`Upgrade` header did not include 'websocket'")]
    NoUpgradeWebsocket,
    #[error("`Sec-WebSocket-Version` header did not include '13'")]
    UnsupportedVersion,
    #[error("`Sec-WebSocket-Key` header missing")]
    NoKey,
    #[error("WebSocket request couldn't be upgraded since no upgrade state was present")]
    NotUpgradable,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let status = match self {
            Refused::MethodNotGet => StatusCode::METHOD_NOT_ALLOWED,
            Refused::NotUpgradable => StatusCode::UPGRADE_REQUIRED,
            _ => StatusCode::BAD_REQUEST,
        };
        (status, self.to_string()).into_response()
    }
}

/// Why an accepted upgrade produced no socket.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum UpgradeError {
    /// hyper gave up on the connection before handing it over (its error is the source).
    #[error("the connection ended during the upgrade: {0}")]
    Hyper(#[from] hyper::Error),
    /// A bug: the listener serves every connection as a plain TCP socket.
    #[error("the upgraded connection is not a TCP socket served by recordsync's listener")]
    NotTcp,
}

/// An accepted upgrade, until hyper has written the 101 and hands the socket over.
pub struct Pending(OnUpgrade);

impl Pending {
    /// The client's TCP socket, and whatever it sent after its request that hyper has
    /// already read (the start of its first WebSocket frame, possibly).
    pub async fn socket(self) -> Result<(TcpStream, Bytes), UpgradeError> {
        let upgraded = self.0.await?;
        // The listener serves every connection as `TokioIo<TcpStream>` (`http::serve`), so
        // this is the socket itself, not a wrapper around it.
        let parts = upgraded
            .downcast::<TokioIo<TcpStream>>()
            .map_err(|_| UpgradeError::NotTcp)?;
        Ok((parts.io.into_inner(), parts.read_buf))
    }
}

/// Answers an upgrade request: the `101` to return, and the socket to come.
pub fn accept(mut req: Request) -> Result<(Response, Pending), Refused> {
    if req.method() != Method::GET {
        return Err(Refused::MethodNotGet);
    }
    let key = check_headers(req.headers())?;
    let on_upgrade = req
        .extensions_mut()
        .remove::<OnUpgrade>()
        .ok_or(Refused::NotUpgradable)?;
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).expect("base64 is a valid header value"),
    );
    Ok((response, Pending(on_upgrade)))
}

/// Checks the upgrade headers; returns the client's key.
fn check_headers(headers: &HeaderMap) -> Result<HeaderValue, Refused> {
    if !has_token(headers, header::CONNECTION, "upgrade") {
        return Err(Refused::NoConnectionUpgrade);
    }
    if !has_token(headers, header::UPGRADE, "websocket") {
        return Err(Refused::NoUpgradeWebsocket);
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(Refused::UnsupportedVersion);
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .cloned()
        .ok_or(Refused::NoKey)
}

/// Whether a comma-separated header lists `token` (case-insensitive), in any of its lines.
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|item| item.trim().eq_ignore_ascii_case(token))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().method(Method::GET).uri("/deepstream");
        for (k, v) in pairs {
            builder = builder.header(*k, *v);
        }
        builder.body(Body::empty()).unwrap()
    }

    const GOOD: &[(&str, &str)] = &[
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "WebSocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    fn without(name: &str) -> Vec<(&'static str, &'static str)> {
        GOOD.iter().copied().filter(|(k, _)| *k != name).collect()
    }

    #[test]
    fn each_missing_header_is_named() {
        let cases = [
            ("connection", Refused::NoConnectionUpgrade),
            ("upgrade", Refused::NoUpgradeWebsocket),
            ("sec-websocket-version", Refused::UnsupportedVersion),
            ("sec-websocket-key", Refused::NoKey),
        ];
        for (name, refused) in cases {
            assert_eq!(
                check_headers(request(&without(name)).headers()),
                Err(refused),
                "without {name}"
            );
        }
        let mut old = without("sec-websocket-version");
        old.push(("sec-websocket-version", "8"));
        assert_eq!(
            check_headers(request(&old).headers()),
            Err(Refused::UnsupportedVersion)
        );
    }

    #[test]
    fn a_good_request_without_hypers_upgrade_state_is_refused_with_426() {
        // Outside a hyper connection served with upgrades there is nothing to upgrade.
        let refused = accept(request(GOOD)).err().expect("refused");
        assert_eq!(refused, Refused::NotUpgradable);
        assert_eq!(
            refused.into_response().status(),
            StatusCode::UPGRADE_REQUIRED
        );
    }

    #[test]
    fn the_accept_key_is_rfc_6455s() {
        // The example of RFC 6455 §1.3.
        assert_eq!(
            tungstenite::handshake::derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
