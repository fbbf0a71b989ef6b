//! The REST API's refusals: one [`RestError`] per reason, each with its HTTP status, a
//! stable machine-readable `code` and a message a user can act on, answered as
//! `{"error": {"code": ..., "message": ...}}` (a failed precondition adds
//! `currentVersion`).
//!
//! Nothing here is a 5xx unless the server itself failed: bad input of any kind is a 4xx.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use thiserror::Error;

use recordsync_core::{JsonError, NameError, OpError, PathError};
use recordsync_engine::{EngineError, WriteFailure};

/// Why a REST request was refused. New kinds may be added: match with a `_` arm.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RestError {
    /// No route has this path.
    #[error("no such endpoint: {path} (the REST API is described at /v1/openapi.json)")]
    NoRoute { path: String },
    /// The route exists, not with this method.
    #[error("method {method} is not allowed here; allowed: {allowed}")]
    MethodNotAllowed {
        method: String,
        allowed: &'static str,
    },
    /// A query parameter (or the path's encoding) is not usable.
    #[error("invalid parameter `{param}`: {reason}")]
    BadParameter { param: &'static str, reason: String },
    #[error("{0}")]
    BadName(#[source] NameError),
    /// A path into the record's value that cannot be parsed.
    #[error("invalid path {path:?}: {source}")]
    BadPath { path: String, source: PathError },
    /// A header (`If-Match`, `Authorization`, ...) that cannot be read.
    #[error("invalid {header} header: {reason}")]
    BadHeader {
        header: &'static str,
        reason: String,
    },
    #[error("the body must be JSON: send it with `Content-Type: application/json`")]
    UnsupportedMediaType,
    #[error("the body is larger than {limit} bytes (the server's `rest.maxBodySize`)")]
    BodyTooLarge { limit: usize },
    #[error("the body could not be read: {0}")]
    BodyUnreadable(String),
    #[error("the body is not UTF-8: {0}")]
    NotUtf8(#[source] std::str::Utf8Error),
    /// The body is not JSON, or JSON nested too deeply (422).
    #[error("{0}")]
    NotJson(#[source] JsonError),
    /// The body is JSON, but not a value this request can write.
    #[error("{0}")]
    InvalidWrite(#[source] OpError),
    /// A PATCH body that is not a path write or a list of them.
    #[error("{0}")]
    BadPatch(String),
    /// The credentials were refused, or are of a kind the server does not take.
    #[error("{0}")]
    Unauthenticated(String),
    /// The page's origin (or the request's host) is not one the server allows
    /// (`httpServer.options` `allowAllOrigins`, `origins`, `hostUrl`).
    #[error("{0}")]
    ForbiddenOrigin(#[source] crate::cors::Refusal),
    /// The permission rules refused the request.
    #[error("permission denied: the rules do not allow {action} on record {name:?}")]
    Denied { action: &'static str, name: String },
    /// A permission rule could not be evaluated.
    #[error("permission denied: the rule for {action} on record {name:?} failed")]
    RuleFailed { action: &'static str, name: String },
    #[error("record {name:?} does not exist")]
    NotFound { name: String },
    #[error("record {name:?} has no value at path {path:?}")]
    PathNotFound { name: String, path: String },
    /// A past version or time that the kept history does not reach.
    #[error("{0}")]
    NotInHistory(#[source] EngineError),
    /// The record did not exist at the version read (deleted, or not yet created).
    #[error("record {name:?} did not exist at version {version}")]
    NotAtVersion { name: String, version: u64 },
    /// `If-Match` / `If-None-Match` did not hold; `current` is the record's version
    /// (`None`: it does not exist).
    #[error("{reason}")]
    PreconditionFailed {
        reason: String,
        current: Option<u64>,
    },
    /// The write met another writer (another node) and was not applied.
    #[error("{0}")]
    Conflict(#[source] WriteFailure),
    /// The store cannot be reached or is failing.
    #[error("the server cannot serve this now: {0}")]
    Unavailable(String),
    /// The server's own failure (damaged data, a bug).
    #[error("internal error: {0}")]
    Internal(String),
}

impl RestError {
    pub fn status(&self) -> StatusCode {
        use RestError as E;
        match self {
            E::NoRoute { .. } | E::NotFound { .. } | E::PathNotFound { .. } => {
                StatusCode::NOT_FOUND
            }
            E::NotInHistory(_) | E::NotAtVersion { .. } => StatusCode::NOT_FOUND,
            E::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            E::BadParameter { .. }
            | E::BadName(_)
            | E::BadPath { .. }
            | E::BadHeader { .. }
            | E::BodyUnreadable(_)
            | E::NotUtf8(_) => StatusCode::BAD_REQUEST,
            E::NotJson(JsonError::TooDeep { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
            E::NotJson(_) => StatusCode::BAD_REQUEST,
            E::InvalidWrite(_) | E::BadPatch(_) => StatusCode::UNPROCESSABLE_ENTITY,
            E::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            E::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            E::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            E::Denied { .. } | E::RuleFailed { .. } | E::ForbiddenOrigin(_) => {
                StatusCode::FORBIDDEN
            }
            E::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            E::Conflict(_) => StatusCode::CONFLICT,
            E::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            E::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code clients match on (listed in docs/rest.md and the OpenAPI document).
    pub fn code(&self) -> &'static str {
        use RestError as E;
        match self {
            E::NoRoute { .. } => "no_route",
            E::MethodNotAllowed { .. } => "method_not_allowed",
            E::BadParameter { .. } => "bad_parameter",
            E::BadName(_) => "bad_name",
            E::BadPath { .. } => "bad_path",
            E::BadHeader { .. } => "bad_header",
            E::UnsupportedMediaType => "unsupported_media_type",
            E::BodyTooLarge { .. } => "body_too_large",
            E::BodyUnreadable(_) => "body_unreadable",
            E::NotUtf8(_) => "not_utf8",
            E::NotJson(JsonError::TooDeep { .. }) => "too_deep",
            E::NotJson(_) => "not_json",
            E::InvalidWrite(_) => "invalid_value",
            E::BadPatch(_) => "bad_patch",
            E::Unauthenticated(_) => "unauthenticated",
            E::Denied { .. } => "permission_denied",
            E::ForbiddenOrigin(_) => "forbidden_origin",
            E::RuleFailed { .. } => "permission_rule_failed",
            E::NotFound { .. } => "not_found",
            E::PathNotFound { .. } => "path_not_found",
            E::NotInHistory(_) => "not_in_history",
            E::NotAtVersion { .. } => "not_at_version",
            E::PreconditionFailed { .. } => "precondition_failed",
            E::Conflict(_) => "conflict",
            E::Unavailable(_) => "unavailable",
            E::Internal(_) => "internal",
        }
    }

    /// An engine error of a read, as the client is told it.
    pub fn engine(e: EngineError) -> RestError {
        match e {
            EngineError::InvalidName(e) => RestError::BadName(e),
            e @ (EngineError::NotInHistory { .. } | EngineError::NotInHistoryAtTime { .. }) => {
                RestError::NotInHistory(e)
            }
            e @ (EngineError::Storage(_) | EngineError::NotCreated(_) | EngineError::Shutdown) => {
                RestError::Unavailable(e.to_string())
            }
            e => RestError::Internal(e.to_string()),
        }
    }
}

impl RestError {
    /// The JSON text of the refusal: `{"error": {"code": ..., "message": ...}}` (a failed
    /// precondition adds `currentVersion`). Also the last line of an export cut short.
    pub fn body(&self) -> String {
        let mut error = Map::new();
        error.insert("code".into(), self.code().into());
        error.insert("message".into(), self.to_string().into());
        if let RestError::PreconditionFailed { current, .. } = self {
            error.insert("currentVersion".into(), (*current).into());
        }
        let mut body = Map::new();
        body.insert("error".into(), Value::Object(error));
        Value::Object(body).to_string()
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(code = self.code(), "REST request failed: {self}");
        }
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            Body::from(self.body()),
        )
            .into_response();
        let headers = response.headers_mut();
        match &self {
            RestError::MethodNotAllowed { allowed, .. } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allowed));
            }
            RestError::Unauthenticated(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer, Basic realm=\"recordsync\""),
                );
            }
            RestError::PreconditionFailed {
                current: Some(v), ..
            } => {
                if let Ok(etag) = HeaderValue::from_str(&super::conditions::etag(*v)) {
                    headers.insert(header::ETAG, etag);
                }
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refusals_are_json_with_a_code_and_message() {
        let response = RestError::PreconditionFailed {
            reason: "the record is at version 3".into(),
            current: Some(3),
        }
        .into_response();
        assert_eq!(response.status(), 412);
        assert_eq!(response.headers()[header::ETAG], "\"3\"");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"error":{"code":"precondition_failed","message":"the record is at version 3","currentVersion":3}}"#
        );
        let too_deep = RestError::NotJson(JsonError::TooDeep { limit: 512 });
        assert_eq!(
            (too_deep.status(), too_deep.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "too_deep")
        );
    }
}
