//! `GET /v1/records?prefix=&limit=&cursor=`: the names of live records with their
//! versions, in name order, a page at a time.
//!
//! `next` is an opaque cursor for the page after this one (`null` after the last): it
//! stands for "the names after the last one of this page", so paging is stable while
//! records come and go (a record created behind the cursor is not seen, one ahead is).
//! A page holds at most `limit` names (at most `rest.maxPageSize`); with permission
//! rules, names the user may not read are left out, so a page may hold fewer.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Serialize;

use super::errors::RestError;
use super::guard::Guard;

/// Names a page holds when the request names no `limit`.
pub const DEFAULT_LIMIT: u64 = 100;

/// What a cursor's text begins with, so that a later form can be told apart.
const CURSOR_TAG: &str = "n:";

#[derive(Serialize)]
struct Page {
    records: Vec<Listed>,
    next: Option<String>,
}

#[derive(Serialize)]
struct Listed {
    name: String,
    version: u64,
}

/// Answers one page of the names starting with `prefix`, after `cursor`.
pub async fn page(
    guard: &Guard<'_>,
    prefix: &str,
    cursor: Option<&str>,
    limit: u64,
) -> Result<Response, RestError> {
    let after = cursor.map(decode_cursor).transpose()?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut found = guard
        .state
        .engine
        .list(prefix, after.as_deref(), limit.saturating_add(1))
        .await
        .map_err(RestError::engine)?;
    let more = found.len() > limit;
    found.truncate(limit);
    let next = more
        .then(|| found.last().map(|r| encode_cursor(&r.name)))
        .flatten();
    let mut records = Vec::with_capacity(found.len());
    for record in found {
        if !guard.is_open() && guard.read(&record.name).await.is_err() {
            continue;
        }
        records.push(Listed {
            name: record.name,
            version: record.version,
        });
    }
    let text = serde_json::to_string(&Page { records, next })
        .map_err(|e| RestError::Internal(format!("the listing could not be written: {e}")))?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        text,
    )
        .into_response())
}

fn encode_cursor(last: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CURSOR_TAG}{last}"))
}

fn decode_cursor(cursor: &str) -> Result<String, RestError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(CURSOR_TAG).map(str::to_owned))
        .ok_or_else(|| RestError::BadParameter {
            param: "cursor",
            reason: "not a cursor this server gave: pass the `next` of a listing as it is".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_others_are_refused() {
        for name in ["a", "books/1", "café", ""] {
            assert_eq!(decode_cursor(&encode_cursor(name)).unwrap(), name);
        }
        assert!(decode_cursor("books/1").is_err());
        assert!(decode_cursor("").is_err());
    }
}
