//! Which browsers' pages may call the server over HTTP: deepstream's `httpServer.options`
//! `allowAllOrigins`, `origins` and `hostUrl`, checked as deepstream 7's HTTP service
//! checks every plain HTTP request it serves (`src/services/http/node/node-http.ts`: its
//! request handler, before any route): the HTTP API, its preflights and 404s, and the
//! health check. recordsync applies the same settings to the REST API under `/v1`.
//!
//! - `allowAllOrigins: true` (the default): every answer says `Access-Control-Allow-Origin:
//!   *`, nothing is refused.
//! - `allowAllOrigins: false`: a request whose `Host` is not `hostUrl` (when set) is refused
//!   with 403 "Forbidden Host."; then one whose `Origin` (or, without one, `Referer`) is
//!   not exactly one of `origins` is refused with 403, its text naming the origin (or
//!   asking for one); an allowed one is answered with that origin, credentials allowed,
//!   and `Vary: Origin`.
//!
//! WebSocket upgrades are not checked (deepstream does not check them either).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The settings: deepstream 7's defaults are every origin, no host check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// `httpServer.options.allowAllOrigins`.
    pub allow_all_origins: bool,
    /// `httpServer.options.origins`: the origins allowed when not all are, compared as
    /// text (`https://example.com`, no trailing slash).
    pub origins: Vec<String>,
    /// `httpServer.options.hostUrl`: when not all origins are allowed, the `Host` header
    /// every request must carry (`example.com:6020`).
    pub host_url: Option<String>,
}

impl Default for Cors {
    fn default() -> Self {
        Cors {
            allow_all_origins: true,
            origins: Vec::new(),
            host_url: None,
        }
    }
}

/// Why a request was refused: deepstream's text, answered with 403.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    #[error("Forbidden Host.")]
    Host,
    #[error("CORS is configured for this. All requests must set a valid \"Origin\" header.")]
    NoOrigin,
    #[error("Origin \"{0}\" is forbidden.")]
    Origin(String),
}

impl Cors {
    /// Checks a request's headers; the headers to add to its answer, or why it is refused.
    pub fn check(&self, headers: &HeaderMap) -> Result<HeaderMap, Refusal> {
        let mut out = HeaderMap::new();
        if self.allow_all_origins {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            return Ok(out);
        }
        if let Some(host_url) = &self.host_url {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
            if host != Some(host_url.as_str()) {
                return Err(Refusal::Host);
            }
        }
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .filter(|o| !o.is_empty())
        };
        let origin = text(header::ORIGIN).or_else(|| text(header::REFERER));
        match origin {
            None => Err(Refusal::NoOrigin),
            Some(origin) if !self.origins.iter().any(|o| o == origin) => {
                Err(Refusal::Origin(origin.to_owned()))
            }
            Some(origin) => {
                if let Ok(value) = HeaderValue::from_str(origin) {
                    out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
                }
                out.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
                out.insert(header::VARY, HeaderValue::from_static("Origin"));
                Ok(out)
            }
        }
    }
}

impl Cors {
    /// The REST API's check: as [`check`](Self::check), except that a request carrying no
    /// `Origin` is let through without CORS headers. Browsers send `Origin` on every
    /// cross-origin request (and on preflights), so a page of an unlisted origin is still
    /// refused; a request without one is not a cross-origin browser request (curl, a
    /// backend, or the console's own same-origin reads, whose `Referer` is a page's URL
    /// rather than an origin).
    pub fn check_cross_origin(&self, headers: &HeaderMap) -> Result<HeaderMap, Refusal> {
        if self.allow_all_origins || headers.contains_key(header::ORIGIN) {
            return self.check(headers);
        }
        if let Some(host_url) = &self.host_url
            && headers.get(header::HOST).and_then(|v| v.to_str().ok()) != Some(host_url.as_str())
        {
            return Err(Refusal::Host);
        }
        Ok(HeaderMap::new())
    }
}

/// The answer to an accepted preflight (the origin was checked already): 204 naming the
/// `methods` and `headers` a front door takes.
pub fn preflight(methods: &'static str, headers: &'static str) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(headers),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn every_origin_by_default() {
        let out = Cors::default().check(&HeaderMap::new()).unwrap();
        assert_eq!(out[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    }

    #[test]
    fn the_host_first_then_the_origin_or_referer() {
        let cors = Cors {
            allow_all_origins: false,
            origins: vec!["https://a.example".into()],
            host_url: Some("db.example:6020".into()),
        };
        let good_host = (header::HOST, "db.example:6020");
        assert_eq!(
            cors.check(&headers(&[(header::ORIGIN, "https://a.example")])),
            Err(Refusal::Host)
        );
        assert_eq!(
            cors.check(&headers(std::slice::from_ref(&good_host))),
            Err(Refusal::NoOrigin)
        );
        assert_eq!(
            cors.check(&headers(&[
                good_host.clone(),
                (header::ORIGIN, "https://b.example")
            ]))
            .map_err(|r| r.to_string()),
            Err("Origin \"https://b.example\" is forbidden.".to_owned())
        );
        let out = cors
            .check(&headers(&[
                good_host,
                (header::REFERER, "https://a.example"),
            ]))
            .unwrap();
        assert_eq!(
            out[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://a.example"
        );
        assert_eq!(out[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(out[header::VARY], "Origin");
        let no_host_check = Cors {
            host_url: None,
            ..cors
        };
        assert!(
            no_host_check
                .check(&headers(&[(header::ORIGIN, "https://a.example")]))
                .is_ok()
        );
        // The REST API's check lets requests without an Origin through, unmarked.
        assert_eq!(
            no_host_check.check_cross_origin(&HeaderMap::new()),
            Ok(HeaderMap::new())
        );
        assert_eq!(
            no_host_check.check_cross_origin(&headers(&[(header::ORIGIN, "https://b.example")])),
            Err(Refusal::Origin("https://b.example".into()))
        );
    }
}
