//! Reading a request's JSON body: its media type, its size, its encoding, its nesting.
//!
//! The body must be `application/json` (or a `+json` type), at most `rest.maxBodySize`
//! bytes (a `Content-Length` over it is refused before anything is read; a body without
//! one is read up to the limit and no further), UTF-8, and JSON nested at most
//! `recordsync_core::json::MAX_DEPTH` levels. Numbers keep their exact text
//! (`recordsync_core::json`), so what is written is stored as written.

use axum::extract::Request;
use axum::http::{HeaderMap, header};
use serde_json::Value;

use recordsync_core::json;

use super::errors::RestError;

/// Whether the request says its body is JSON.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase())
        .is_some_and(|t| {
            t == "application/json" || (t.starts_with("application/") && t.ends_with("+json"))
        })
}

/// The request's body as JSON.
pub async fn read_json(req: Request, limit: usize) -> Result<Value, RestError> {
    if !is_json(req.headers()) {
        return Err(RestError::UnsupportedMediaType);
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(RestError::BodyTooLarge { limit });
    }
    let bytes = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            if std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            {
                RestError::BodyTooLarge { limit }
            } else {
                RestError::BodyUnreadable(e.to_string())
            }
        })?;
    let text = std::str::from_utf8(&bytes).map_err(RestError::NotUtf8)?;
    json::parse(text).map_err(RestError::NotJson)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn req(content_type: &str, body: impl Into<Body>) -> Request {
        axum::http::Request::builder()
            .header(header::CONTENT_TYPE, content_type)
            .body(body.into())
            .unwrap()
    }

    #[tokio::test]
    async fn bodies_are_checked_in_order() {
        let v = read_json(req("application/json", r#"{"n": 1.50}"#), 100)
            .await
            .unwrap();
        assert_eq!(v.to_string(), r#"{"n":1.50}"#, "numbers as written");
        assert!(
            read_json(req("application/merge-patch+json", "[]"), 100)
                .await
                .is_ok()
        );
        for (ct, body, code) in [
            ("text/plain", "{}".to_owned(), "unsupported_media_type"),
            ("application/json", "x".repeat(101), "body_too_large"),
            ("application/json", "{".to_owned(), "not_json"),
            ("application/json", "".to_owned(), "not_json"),
            (
                "application/json",
                "[".repeat(600) + &"]".repeat(600),
                "too_deep",
            ),
        ] {
            let limit = if code == "body_too_large" { 100 } else { 2000 };
            let e = read_json(req(ct, body), limit).await.unwrap_err();
            assert_eq!(e.code(), code);
        }
        let e = read_json(req("application/json", vec![b'"', 0xff, b'"']), 100)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "not_utf8");
    }
}
