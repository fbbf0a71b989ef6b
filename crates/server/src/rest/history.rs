//! `GET /v1/records/{name}/history?from=&to=&limit=`: the record's journal, a page at a
//! time.
//!
//! Each entry is `{version, time, author, origin, op}`: the engine version the op
//! produced, when it was accepted (milliseconds since the Unix epoch), the authenticated
//! user who wrote it (`null` for the anonymous user), the writing client's `{src, seq}`
//! when it gave one (`null` otherwise), and the op as the journal keeps it (`{"op":
//! "create" | "update" | "patch" | "erase" | "patch_multi" | "json0" | "delete", ...}`).
//! The journal runs across deletes and re-creates; entries older than the server's
//! retention (`history.keepOps`, `keepAge`) are gone. A page holds at most `limit`
//! entries (at most `rest.maxPageSize`); `next` is the `from` of the next page, or
//! `null` after the last.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::value::RawValue;

use recordsync_store::JournalEntry;

use super::errors::RestError;
use super::guard::Guard;

/// Entries a page holds when the request names no `limit`.
pub const DEFAULT_LIMIT: u64 = 100;

#[derive(Serialize)]
struct Page<'a> {
    name: &'a str,
    entries: Vec<Entry<'a>>,
    next: Option<u64>,
}

#[derive(Serialize)]
struct Entry<'a> {
    version: u64,
    time: u64,
    author: Option<&'a str>,
    origin: Option<Origin<'a>>,
    op: Box<RawValue>,
}

#[derive(Serialize)]
struct Origin<'a> {
    src: &'a str,
    seq: u64,
}

/// Answers a page of `name`'s journal: versions `from..=to`, at most `limit` entries.
pub async fn page(
    guard: &Guard<'_>,
    name: &str,
    from: u64,
    to: u64,
    limit: u64,
) -> Result<Response, RestError> {
    recordsync_core::validate_name(name).map_err(RestError::BadName)?;
    if from > to {
        return Err(RestError::BadParameter {
            param: "from",
            reason: format!("from ({from}) is after to ({to})"),
        });
    }
    if limit == 0 {
        return Err(RestError::BadParameter {
            param: "limit",
            reason: "must be 1 or more".into(),
        });
    }
    guard.read(name).await?;
    let engine = &guard.state.engine;
    let last = to.min(from.saturating_add(limit - 1));
    let mut entries = engine
        .journal(name, from, last)
        .await
        .map_err(RestError::engine)?;
    if entries.is_empty() && last < to {
        // `from` lies before what retention kept: the page starts at the oldest entry.
        entries = engine
            .journal(name, from, to)
            .await
            .map_err(RestError::engine)?;
        entries.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    let next = match entries.last() {
        Some(e) if e.version < to && entries.len() as u64 == limit => Some(e.version + 1),
        Some(e) if e.version == last && last < to => Some(last + 1),
        _ => None,
    };
    let body = Page {
        name,
        entries: entries.iter().map(entry).collect::<Result<_, _>>()?,
        next,
    };
    let text = serde_json::to_string(&body)
        .map_err(|e| RestError::Internal(format!("the history could not be written: {e}")))?;
    Ok((
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        text,
    )
        .into_response())
}

fn entry(e: &JournalEntry) -> Result<Entry<'_>, RestError> {
    let op = RawValue::from_string(e.op.clone()).map_err(|err| {
        RestError::Internal(format!(
            "journal entry {} is not JSON ({err}): the store's data is damaged",
            e.version
        ))
    })?;
    Ok(Entry {
        version: e.version,
        time: e.time,
        author: e.author.as_deref(),
        origin: e.origin.as_ref().map(|o| Origin {
            src: &o.src,
            seq: o.seq,
        }),
        op,
    })
}
