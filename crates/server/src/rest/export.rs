//! `GET /v1/export?prefix=&history=`: a backup of the records named `prefix…` taken
//! through the running server, in the dump format of `recordsync export`
//! ([`recordsync_store::dump_format`], docs/backup.md), so that `recordsync import` loads
//! it into any store.
//!
//! The records come from one snapshot of the store ([`Engine::export`]: a redb read
//! transaction, a PostgreSQL `REPEATABLE READ` transaction), as the CLI's own export
//! reads them, whatever is written meanwhile: never from pages of a changing listing.
//! Tombstones are included, and with `history=true` each record's kept history.
//!
//! The answer streams as JSON lines (`application/x-ndjson`): the header, one line per
//! record, the trailer with the count. Its status is sent before the records are read, so
//! a failure on the way (the rules refuse a record, the store fails) ends the stream with
//! an error line, `{"error":{"code":…,"message":…}}`, instead of the trailer: a dump
//! without its trailer is refused by `import` as cut short, and the CLI reports the
//! error. With permission rules, every record exported must be readable by the user (the
//! `read` rule): a dump never leaves records out silently.
//!
//! [`Engine::export`]: recordsync_engine::Engine::export

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::mpsc::Receiver;

use recordsync_store::{RecordDump, StoreError, dump_format};

use super::errors::RestError;
use super::guard::Guard;
use crate::ServerState;
use crate::auth::Identity;

/// Bytes gathered before a chunk of the body is sent: many small records share a write.
const CHUNK: usize = 64 * 1024;

/// The media type of the answer: JSON lines.
pub const MEDIA_TYPE: &str = "application/x-ndjson";

/// Answers an export of the records named `prefix…`.
pub async fn dump(
    state: Arc<ServerState>,
    user: Arc<Identity>,
    prefix: &str,
    history: bool,
) -> Result<Response, RestError> {
    let records = state
        .engine
        .export(prefix, history)
        .await
        .map_err(RestError::engine)?;
    let mut header = Vec::new();
    dump_format::write_header(&mut header, prefix, history, now_ms())
        .map_err(|e| RestError::Internal(format!("the dump's header could not be written: {e}")))?;
    let lines = Lines {
        state,
        user,
        records,
        pending: header,
        count: 0,
        done: false,
    };
    let body = Body::from_stream(futures_util::stream::unfold(
        lines,
        |mut lines| async move {
            let chunk = lines.next().await?;
            Some((Ok::<_, Infallible>(chunk), lines))
        },
    ));
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The body's lines, produced as the store's snapshot yields records.
struct Lines {
    state: Arc<ServerState>,
    user: Arc<Identity>,
    records: Receiver<Result<RecordDump, StoreError>>,
    /// Text not sent yet.
    pending: Vec<u8>,
    count: u64,
    /// The trailer or an error line is in `pending`: nothing follows.
    done: bool,
}

impl Lines {
    /// The next chunk of the body; `None` after the last.
    async fn next(&mut self) -> Option<Bytes> {
        while !self.done && self.pending.len() < CHUNK {
            let Some(next) = self.records.recv().await else {
                // Written last: a dump without it was cut short.
                if dump_format::write_trailer(&mut self.pending, self.count).is_err() {
                    self.fail(RestError::Internal(
                        "the trailer could not be written".into(),
                    ));
                }
                self.done = true;
                break;
            };
            let dump = match next {
                Ok(dump) => dump,
                Err(e) => {
                    tracing::warn!("export through the REST API failed: {e}");
                    self.fail(RestError::Unavailable(e.to_string()));
                    break;
                }
            };
            let guard = Guard {
                state: &self.state,
                user: self.user.clone(),
            };
            if let Err(refused) = guard.read(&dump.record.name).await {
                self.fail(refused);
                break;
            }
            if let Err(e) = dump_format::write_record(&mut self.pending, &dump) {
                self.fail(RestError::Internal(format!(
                    "record {:?} could not be written: {e}",
                    dump.record.name
                )));
                break;
            }
            self.count += 1;
            // Send what is there rather than wait when the store is slower than the
            // client.
            if self.records.is_empty() {
                break;
            }
        }
        if self.pending.is_empty() {
            return None;
        }
        Some(Bytes::from(std::mem::take(&mut self.pending)))
    }

    /// Ends the dump with `error`'s line instead of the trailer.
    fn fail(&mut self, error: RestError) {
        self.pending.extend_from_slice(error.body().as_bytes());
        self.pending.push(b'\n');
        self.done = true;
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
