//! `GET /v1/records/{name}` with `Accept: text/event-stream`: the record's value, then
//! every change, as server-sent events.
//!
//! ```text
//! id: 7
//! event: value
//! data: {"version":7,"value":{"name":"Ada"}}
//!
//! id: 8
//! event: deleted
//! data: {"version":8}
//! ```
//!
//! Each event's id is the engine version it brings the record to. `value` carries the
//! record's whole value after the change (the text the engine keeps); `deleted` says the
//! record does not exist (deleted at `version`; `null` when it never existed). The stream
//! follows the record through deletes and re-creates. A reconnecting client sends the
//! last id it saw as `Last-Event-ID` (browsers' `EventSource` does so by itself): the
//! versions after it are replayed from history, one event each, when the history keeps
//! them (and they are at most [`MAX_REPLAY`]); otherwise the stream starts from the
//! current value. Comments (`: keep-alive`) are sent every heartbeat interval, so that
//! proxies keep the connection and a client that went away is noticed.
//!
//! With `?path=a.b`, the stream follows the value at that path instead: each `value`
//! event carries it (`null` while the record has nothing there), and an event is sent only
//! when that value changes (its id is still the record's version, so resuming works the
//! same).
//!
//! The stream subscribes to the engine like every front door's connection (a record live
//! through every protocol), and is bounded as they are: its events wait in an outbox of
//! `outboundQueueLimit` events, and a client that lets it overflow is cut off
//! (`recordsync_slow_consumers_total{protocol="sse"}`). It ends when the server stops.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::poll_fn;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use recordsync_core::{JournalOp, Path};
use recordsync_engine::{Engine, EventKind, FrameFormat, RecordEvent, RecordState, Subscriber};

use super::errors::RestError;
use super::guard::Guard;
use crate::net::http_connection::HttpConnection;
use crate::net::outbox::{Outbox, OutboxReceiver, Taken};
use crate::telemetry::{OpenConnection, Protocol, cached_counter};

/// The engine's frame cache slot of server-sent events (deepstream has 0 and 1, ShareDB 2).
const SSE_FRAMES: FrameFormat = FrameFormat::slot(3);

/// The most versions a resumed stream replays; further behind, it starts from the
/// current value.
pub const MAX_REPLAY: u64 = 10_000;

/// Whether the client asks for server-sent events.
pub fn wants_events(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            t.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

/// Starts the stream of `name`.
pub async fn open(
    guard: &Guard<'_>,
    name: &str,
    at_path: Option<Path>,
    headers: &HeaderMap,
    connection: Option<HttpConnection>,
) -> Result<Response, RestError> {
    recordsync_core::validate_name(name).map_err(RestError::BadName)?;
    let last_seen = match headers.get("last-event-id") {
        None => None,
        Some(v) => {
            let text = v.to_str().map_err(|_| RestError::BadHeader {
                header: "Last-Event-ID",
                reason: "it is not ASCII text".into(),
            })?;
            // An id this stream did not send (blank, or not a version) starts afresh.
            text.trim().parse::<u64>().ok()
        }
    };
    guard.read(name).await?;
    let state = guard.state;
    let engine = state.engine.clone();
    let (outbox, receiver) = Outbox::new(state.config.outbound_queue_limit);
    let id = state.next_session_id();
    let view = View::new(at_path);
    let subscriber = Arc::new(SseSubscriber {
        id,
        outbox,
        view: view.clone(),
    });
    let mut initial = None;
    let shared_name = engine
        .subscribe_state(subscriber, name, |s| initial = Some(s))
        .await
        .map_err(RestError::engine)?;
    let subscription = Subscription {
        engine: engine.clone(),
        id,
        name: shared_name,
    };
    let initial = initial.ok_or_else(|| RestError::Internal("no initial state".into()))?;
    let mut prelude = VecDeque::new();
    prelude.push_back(Bytes::from_static(b": ok\n\n"));
    prelude.extend(first_events(&engine, name, &initial, last_seen, &view).await);

    let receiver = Arc::new(receiver);
    let watchdog = connection.as_ref().map(|connection| {
        let receiver = receiver.clone();
        let connection = connection.clone();
        let name = name.to_owned();
        tokio::spawn(async move {
            poll_fn(|cx| receiver.poll_overflow(cx)).await;
            Protocol::Sse.slow_consumers().increment(1);
            tracing::warn!(
                record = name,
                "event stream's queue full: cutting off a client that does not read"
            );
            connection.cut_off();
        })
    });
    let mut heartbeat = tokio::time::interval(state.config.heartbeat_interval);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.reset();
    let events = Events {
        prelude,
        receiver,
        taken: VecDeque::new(),
        heartbeat,
        connection,
        _subscription: subscription,
        watchdog: watchdog.map(|w| w.abort_handle()),
        _open: OpenConnection::new(Protocol::Sse),
    };
    let body = Body::from_stream(futures_util::stream::unfold(
        events,
        |mut events| async move {
            let frame = events.next().await?;
            Some((Ok::<_, Infallible>(frame), events))
        },
    ));
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx and others would hold the events back otherwise
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// What the stream starts with: the versions after `last_seen` from history, or the
/// current state.
async fn first_events(
    engine: &Engine,
    name: &str,
    state: &RecordState,
    last_seen: Option<u64>,
    view: &View,
) -> Vec<Bytes> {
    let current = match state {
        RecordState::Exists(s) => Some(s.version.version),
        RecordState::Missing { next_create } => next_create.checked_sub(1),
    };
    let now = || match state {
        RecordState::Exists(s) => view.value_event(s.version.version, &s.data, true),
        RecordState::Missing { .. } => view.deleted_event(current),
    };
    match (last_seen, current) {
        (Some(seen), Some(current)) if seen == current => {
            // Up to date; a path stream still learns what it is comparing against.
            let _ = now();
            Vec::new()
        }
        (Some(seen), Some(current)) if seen < current && current - seen <= MAX_REPLAY => {
            match replay(engine, name, seen, current, view).await {
                Some(events) => events,
                None => now().into_iter().collect(),
            }
        }
        _ => now().into_iter().collect(),
    }
}

/// The events of versions `seen + 1 ..= current`, rebuilt from history; `None` when the
/// history does not keep them all.
async fn replay(
    engine: &Engine,
    name: &str,
    seen: u64,
    current: u64,
    view: &View,
) -> Option<Vec<Bytes>> {
    let mut value: Option<Value> = engine.value_at(name, seen).await.ok()?.data;
    let entries = engine.journal(name, seen + 1, current).await.ok()?;
    if entries.len() as u64 != current - seen {
        return None;
    }
    // What the client saw at `seen`, which a path stream compares against.
    match &value {
        Some(v) => drop(view.value_event(seen, &v.to_string(), true)),
        None => drop(view.deleted_event(Some(seen))),
    }
    let mut events = Vec::with_capacity(entries.len());
    for entry in entries {
        let op = JournalOp::from_journal(&entry.op).ok()?;
        op.apply(&mut value).ok()?;
        events.extend(match &value {
            Some(v) => view.value_event(entry.version, &v.to_string(), false),
            None => view.deleted_event(Some(entry.version)),
        });
    }
    Some(events)
}

/// What a stream shows of its record: all of it, or the value at a path (then only when
/// that value changes: the last one sent is kept to compare).
#[derive(Clone)]
struct View {
    path: Option<Arc<(Path, parking_lot::Mutex<Option<String>>)>>,
}

impl View {
    fn new(path: Option<Path>) -> View {
        View {
            path: path.map(|p| Arc::new((p, parking_lot::Mutex::new(None)))),
        }
    }

    /// The `value` event of the record at `version` being `json`; for a path stream, the
    /// value there (`null`: nothing), and nothing when it is what was sent last (unless
    /// `always`).
    fn value_event(&self, version: u64, json: &str, always: bool) -> Option<Bytes> {
        let Some(path) = &self.path else {
            return Some(value_event(version, json));
        };
        let at = recordsync_core::json::parse::<Value>(json)
            .ok()
            .and_then(|v| recordsync_core::path::get(&v, &path.0).map(Value::to_string))
            .unwrap_or_else(|| "null".to_owned());
        self.send_if_changed(&path.1, at, always)
            .map(|at| value_event(version, &at))
    }

    /// The `deleted` event; a path stream sends it when its last event was not one.
    fn deleted_event(&self, version: Option<u64>) -> Option<Bytes> {
        let Some(path) = &self.path else {
            return Some(deleted_event(version));
        };
        // A marker no JSON value equals.
        self.send_if_changed(&path.1, "deleted".to_owned(), false)
            .map(|_| deleted_event(version))
    }

    fn send_if_changed(
        &self,
        last: &parking_lot::Mutex<Option<String>>,
        now: String,
        always: bool,
    ) -> Option<String> {
        let mut last = last.lock();
        if !always && last.as_deref() == Some(now.as_str()) {
            return None;
        }
        *last = Some(now.clone());
        Some(now)
    }
}

/// A `value` event: the record at `version` is `json`.
fn value_event(version: u64, json: &str) -> Bytes {
    let data = format!("{{\"version\":{version},\"value\":{json}}}");
    event(Some(version), "value", &data)
}

/// A `deleted` event: the record does not exist (deleted at `version`).
fn deleted_event(version: Option<u64>) -> Bytes {
    let data = match version {
        Some(v) => format!("{{\"version\":{v}}}"),
        None => "{\"version\":null}".to_owned(),
    };
    event(version, "deleted", &data)
}

/// One event in the text/event-stream format. JSON outside its strings may hold line
/// breaks (never inside them): each line goes on a `data:` line of its own, which the
/// client joins with `\n`.
fn event(id: Option<u64>, kind: &str, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 40);
    if let Some(id) = id {
        out.push_str(&format!("id: {id}\n"));
    }
    out.push_str("event: ");
    out.push_str(kind);
    out.push('\n');
    for line in data.split(['\n', '\r']).filter(|l| !l.is_empty()) {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// The engine's subscriber of one stream.
struct SseSubscriber {
    id: u64,
    outbox: Outbox,
    view: View,
}

impl Subscriber for SseSubscriber {
    fn id(&self) -> u64 {
        self.id
    }

    fn deliver(&self, event: &Arc<RecordEvent>) {
        let frame = if self.view.path.is_some() {
            // The value at this stream's path: its own, not the shared frame.
            match &event.kind {
                EventKind::Changed { version, value, .. } => {
                    self.view.value_event(version.version, value, false)
                }
                EventKind::Deleted { tomb } => self.view.deleted_event(*tomb),
                EventKind::Provider(_) => None,
            }
            .unwrap_or_default()
        } else {
            event.frame(SSE_FRAMES, |event| match &event.kind {
                EventKind::Changed { version, value, .. } => value_event(version.version, value),
                EventKind::Deleted { tomb } => deleted_event(*tomb),
                EventKind::Provider(_) => Bytes::new(),
            })
        };
        if !frame.is_empty() {
            cached_counter!("recordsync_messages_out_total", "protocol" => "sse", "kind" => "update")
                .increment(1);
            self.outbox.push(frame);
        }
    }

    /// A stream follows its record through deletes and re-creates.
    fn survives_delete(&self) -> bool {
        true
    }
}

/// Ends the engine subscription when the stream goes (its client left, or was cut off).
struct Subscription {
    engine: Arc<Engine>,
    id: u64,
    name: Arc<str>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let (engine, id, name) = (self.engine.clone(), self.id, self.name.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = engine.unsubscribe(id, &name).await;
            });
        }
    }
}

/// The stream's state: what is left to send, and where more comes from.
struct Events {
    prelude: VecDeque<Bytes>,
    receiver: Arc<OutboxReceiver>,
    taken: VecDeque<Bytes>,
    heartbeat: tokio::time::Interval,
    connection: Option<HttpConnection>,
    _subscription: Subscription,
    watchdog: Option<tokio::task::AbortHandle>,
    _open: OpenConnection,
}

impl Events {
    /// The next bytes to send; `None` ends the stream.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(frame) = self.prelude.pop_front() {
            return Some(frame);
        }
        let stopping = async {
            match &self.connection {
                Some(c) => c.stopping().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            taken = poll_fn(|cx| self.receiver.poll_take(cx, &mut self.taken)) => match taken {
                Taken::Frames => {
                    self.prelude.append(&mut self.taken);
                    self.prelude.pop_front()
                }
                // The watchdog cuts the connection off.
                Taken::Overflowed => None,
            },
            _ = self.heartbeat.tick() => Some(Bytes::from_static(b": keep-alive\n\n")),
            () = stopping => None,
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        if let Some(watchdog) = &self.watchdog {
            watchdog.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_framed_as_the_spec_says() {
        assert_eq!(
            value_event(7, r#"{"a":1.50}"#),
            Bytes::from_static(
                b"id: 7\nevent: value\ndata: {\"version\":7,\"value\":{\"a\":1.50}}\n\n"
            )
        );
        assert_eq!(
            deleted_event(None),
            Bytes::from_static(b"event: deleted\ndata: {\"version\":null}\n\n")
        );
        assert_eq!(
            event(Some(1), "value", "{\n\"a\": 1\r\n}"),
            Bytes::from_static(b"id: 1\nevent: value\ndata: {\ndata: \"a\": 1\ndata: }\n\n")
        );
    }

    #[test]
    fn accept_headers() {
        let mut h = HeaderMap::new();
        assert!(!wants_events(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream;q=0.9"),
        );
        assert!(wants_events(&h));
    }
}
