//! `GET /v1/records/{name}`: the record's value as stored, its version as the ETag; or,
//! with `?version=N` or `?at=TIME`, its value then, from history; with `?path=`, the
//! value at that path.
//!
//! The current value is answered as the exact JSON text the engine keeps, byte for byte.
//! A past value is rebuilt from the journal and written out by the same serialiser the
//! engine stores with (numbers as written, keys in their order), and so is the value at a
//! path.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use recordsync_core::{Path, json, path};

use super::conditions::{Conditions, etag};
use super::errors::RestError;
use super::guard::Guard;

/// Which state of the record a read asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Current,
    /// An engine version.
    Version(u64),
    /// Milliseconds since the Unix epoch: the newest version committed at or before.
    At(u64),
}

/// Answers a read of `name`.
pub async fn value(
    guard: &Guard<'_>,
    name: &str,
    which: Which,
    at_path: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, RestError> {
    recordsync_core::validate_name(name).map_err(RestError::BadName)?;
    let at_path = at_path.map(parse_path).transpose()?;
    guard.read(name).await?;
    let engine = &guard.state.engine;
    let (version, text): (u64, String) = match which {
        Which::Current => {
            let snapshot = engine
                .read(name)
                .await
                .map_err(RestError::engine)?
                .ok_or_else(|| RestError::NotFound {
                    name: name.to_owned(),
                })?;
            let version = snapshot.version.version;
            let conditions = Conditions::from_headers(headers)?;
            if let Some(tags) = &conditions.if_none_match
                && tags.matches(Some(version))
            {
                return Ok(not_modified(version));
            }
            match &at_path {
                None => (version, snapshot.data.to_string()),
                Some(p) => (version, sub_value(name, &snapshot.data, p)?),
            }
        }
        Which::Version(v) => past(name, engine.value_at(name, v).await, at_path.as_ref())?,
        Which::At(t) => past(name, engine.value_at_time(name, t).await, at_path.as_ref())?,
    };
    Ok(json_with_version(StatusCode::OK, version, text))
}

/// A past value read from history: its version and JSON text (at `at_path`).
fn past(
    name: &str,
    read: Result<recordsync_engine::PastValue, recordsync_engine::EngineError>,
    at_path: Option<&(Path, String)>,
) -> Result<(u64, String), RestError> {
    let past = read.map_err(RestError::engine)?;
    let Some(data) = past.data else {
        return Err(RestError::NotAtVersion {
            name: name.to_owned(),
            version: past.version,
        });
    };
    let text =
        match at_path {
            None => data.to_string(),
            Some((p, text)) => path::get(&data, p).map(Value::to_string).ok_or_else(|| {
                RestError::PathNotFound {
                    name: name.to_owned(),
                    path: text.clone(),
                }
            })?,
        };
    Ok((past.version, text))
}

/// A `?path=` parameter.
pub fn parse_path(text: &str) -> Result<(Path, String), RestError> {
    Path::parse(text)
        .map(|p| (p, text.to_owned()))
        .map_err(|source| RestError::BadPath {
            path: text.to_owned(),
            source,
        })
}

/// The value at `at` inside the stored JSON `text`.
fn sub_value(name: &str, text: &str, (at, label): &(Path, String)) -> Result<String, RestError> {
    let value: Value = json::parse(text).map_err(|e| {
        RestError::Internal(format!("the stored value of {name:?} is not JSON: {e}"))
    })?;
    path::get(&value, at)
        .map(Value::to_string)
        .ok_or_else(|| RestError::PathNotFound {
            name: name.to_owned(),
            path: label.clone(),
        })
}

/// `body` (JSON text) answered with `status`, and `version` as its ETag.
pub fn json_with_version(status: StatusCode, version: u64, body: String) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body),
    )
        .into_response();
    if let Ok(tag) = HeaderValue::from_str(&etag(version)) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}

/// 304: the client's copy (`If-None-Match`) is current.
fn not_modified(version: u64) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    if let Ok(tag) = HeaderValue::from_str(&etag(version)) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}
