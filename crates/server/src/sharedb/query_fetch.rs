//! Running a ShareDB query once: parsing `q`, asking the store (through the engine), and
//! keeping only the documents the user may read. What `qf` answers, and what a live
//! query polls.
//!
//! Results are the store's committed state, in the query's order (ties by id). A query
//! whose results would pass [`MAX_RESULTS`] is refused (`$limit` lets a client ask for a
//! window), so one request never holds an unbounded list; the store is asked for one
//! more than that, never for everything.
//!
//! Permissions: a document the user may not read is left out, as if it did not match
//! (it is filtered after `$skip`/`$limit`, so such a window may come back short), and a
//! `$count` counts only readable documents when there are rules.

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use recordsync_core::query::{Query, Selection};
use recordsync_engine::Engine;
use recordsync_sharedb_protocol::{ErrorCode, ShareDbError};
use recordsync_store::{StoreError, StoredRecord};

use super::doc::{raw_or_error, record_name};
use super::errors;
use super::permission::Guard;

/// The most documents one query answers.
pub const MAX_RESULTS: usize = 10_000;

/// What a query answers: documents, or their number (`$count`).
#[derive(Debug)]
pub enum Answer {
    Docs(Vec<ResultDoc>),
    Count(u64),
}

/// One document of a query's results.
#[derive(Debug, Clone)]
pub struct ResultDoc {
    /// The document id (`d`).
    pub id: String,
    /// Its ShareDB version.
    pub version: u64,
    /// Its value as JSON text.
    pub data: String,
}

/// One result as the wire shows it: `{d, v, data}` (json0, ShareDB's default type, is
/// not named), or for a document that no longer exists `{d, v, type: null}`.
#[derive(Serialize)]
pub struct WireResult<'a> {
    pub d: &'a str,
    pub v: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a RawValue>,
    /// `Some(())` (written `null`) for a document that does not exist.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub missing: Option<()>,
}

impl ResultDoc {
    fn of(record: StoredRecord, prefix_len: usize) -> ResultDoc {
        ResultDoc {
            id: record.name[prefix_len..].to_owned(),
            version: record.version.saturating_add(1),
            data: record.data,
        }
    }
}

/// `q` parsed, or ShareDB's refusal of a malformed message naming what is wrong.
pub fn parse(q: &Value) -> Result<Query, ShareDbError> {
    Query::parse(q).map_err(|e| {
        ShareDbError::new(
            ErrorCode::ERR_MESSAGE_BADLY_FORMED,
            format!("invalid query: {e}"),
        )
    })
}

/// Whether ShareDB decides a live query's changes document by document (no `$sort`,
/// `$orderby`, `$skip`, `$limit` or `$count` in `q`: a newly matching document goes to
/// the end), rather than by re-running the query and diffing (sharedb-mingo-memory's
/// `canPollDoc`; the keys count even when their values change nothing).
pub fn polls_by_doc(q: &Value) -> bool {
    let controls = [
        "$sort",
        "$orderby",
        "$skip",
        "$limit",
        "$count",
        "$aggregate",
    ];
    q.as_object()
        .is_some_and(|m| !controls.iter().any(|k| m.contains_key(*k)))
}

/// Runs `query` over collection `c`, as user `guard` may see it.
pub async fn run(
    engine: &Engine,
    guard: &Guard,
    c: &str,
    query: &Query,
) -> Result<Answer, ShareDbError> {
    let prefix_len = c.len() + 1;
    if query.count && guard.is_open() {
        return match engine.query(c, query).await.map_err(store_error)? {
            Selection::Count(n) => Ok(Answer::Count(n)),
            Selection::Items(items) => Ok(Answer::Count(items.len() as u64)),
        };
    }
    let mut bounded = query.clone();
    bounded.count = false;
    let cap = (MAX_RESULTS + 1) as u64;
    bounded.limit = Some(bounded.limit.map_or(cap, |l| l.min(cap)));
    let records = match engine.query(c, &bounded).await.map_err(store_error)? {
        Selection::Items(items) => items,
        Selection::Count(_) => Vec::new(),
    };
    if records.len() > MAX_RESULTS {
        return Err(ShareDbError::new(
            ErrorCode::ERR_UNKNOWN_ERROR,
            format!(
                "the query matches more than {MAX_RESULTS} documents of {c:?}: narrow it, or \
                 page through it with $sort, $skip and $limit"
            ),
        ));
    }
    let mut docs = Vec::with_capacity(records.len());
    for record in records {
        if guard.is_open() || guard.read(&record.name).await.is_ok() {
            docs.push(ResultDoc::of(record, prefix_len));
        }
    }
    Ok(if query.count {
        Answer::Count(docs.len() as u64)
    } else {
        Answer::Docs(docs)
    })
}

/// The `data` of a query reply: each result as `{d, v, data}`, in order.
pub fn wire_results(docs: &[ResultDoc], c: &str) -> Result<Vec<Box<RawValue>>, ShareDbError> {
    docs.iter()
        .map(|doc| {
            let data = raw_or_error(&doc.data, &record_name(c, &doc.id))?;
            to_raw(&WireResult {
                d: &doc.id,
                v: doc.version,
                data: Some(data),
                missing: None,
            })
        })
        .collect()
}

/// A value serialised once, to be placed in a message as it is.
pub fn to_raw(value: &impl Serialize) -> Result<Box<RawValue>, ShareDbError> {
    serde_json::value::to_raw_value(value)
        .map_err(|e| ShareDbError::new(ErrorCode::ERR_UNKNOWN_ERROR, e.to_string()))
}

fn store_error(e: recordsync_engine::EngineError) -> ShareDbError {
    match e {
        recordsync_engine::EngineError::Storage(StoreError::InvalidQuery(reason)) => {
            ShareDbError::new(ErrorCode::ERR_MESSAGE_BADLY_FORMED, reason)
        }
        other => errors::engine(other),
    }
}
