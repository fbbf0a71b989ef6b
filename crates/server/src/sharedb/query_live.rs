//! `qs` and `qu`: live queries, as ShareDB's query emitter runs them.
//!
//! A live query follows its collection through the collection's feed
//! ([`super::query_feed`]: every change committed on this node or announced by another,
//! by any front door, each changed document read from the store once for all the live
//! queries of the collection) and keeps the ids of its current results. Each change is
//! handled by the query's own task, one batch at a time, so its diffs go out in order:
//! - without `$sort $orderby $skip $limit $count` (ShareDB's `canPollDoc`), each changed
//!   document is checked alone, against the query's filter in memory and the user's read
//!   rule: one that starts matching is inserted at the end, one that stops is removed
//!   from where it is;
//! - otherwise the query is run again and the old and new id lists are diffed with
//!   arraydiff's algorithm ([`super::query_diff`]) — unless no changed document is among
//!   the results or passes the filter and the window cannot have shifted
//!   ([`Live::untouched`]), when running it again would give the same list; with
//!   `$count` the new number is sent as `{a: "q", id, extra}` when it changed.
//!
//! Diffs are `{a: "q", id, diff: [...]}`; an insert carries each new document's snapshot
//! (`{d, v, data}`). The connection is subscribed to every document in the results (see
//! [`super::query_holds`]), so ops on them reach the client as ordinary `op` messages —
//! among them the op that makes a document leave, as in ShareDB. The snapshot in an insert
//! is taken under the record's lock as the subscription is made, and that document's ops
//! are held until the diff is sent, so the client sees each version once, in order.
//!
//! `qs` with `r: [[id, v], ...]` (a client resubscribing after a reconnect, with the
//! results it has): the ops each of those documents missed since `v` are sent, then the
//! change from those results to the current ones as one diff, then the bare `{a: "qs",
//! id}`.
//!
//! Permissions: the query is checked when it starts (by [`super::query`]); a document
//! the user may not read never enters the results, so it is never announced.
//!
//! Bounds: a connection runs at most [`MAX_LIVE_QUERIES`]; results are bounded by
//! [`MAX_RESULTS`](super::query_fetch::MAX_RESULTS); a query remembers at most
//! [`MAX_PENDING`](super::query_feed::MAX_PENDING) changed documents between two
//! batches, beyond which it polls everything.
//! Errors while following (a store that cannot be reached) are logged and the query
//! carries on with the next change, as ShareDB's emitter does.
//!
//! Known limits: holding a document's events uses the session's one hold per document
//! ([`Session::catch_up`]); if the client subscribes to that document from a version at
//! the same moment, whichever finishes first releases the held events, so an op may then
//! reach the client just before the diff that inserts its document (the client skips an
//! op older than its snapshot). Documents are filtered by the read rule after
//! `$skip`/`$limit`, so a window may come back short when rules hide some.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::task::JoinHandle;

use recordsync_core::query::Query;
use recordsync_engine::{Engine, Subscriber};
use recordsync_sharedb_protocol::{ErrorCode, QueryRequest, ShareDbError};

use super::connection::Connection;
use super::doc::{DocState, raw_or_error, record_name};
use super::permission::Guard;
use super::query_diff::{Change, diff};
use super::query_feed::{self, Feed, Seen, Sink, SinkPending};
use super::query_fetch::{self, Answer, MAX_RESULTS, WireResult};
use super::query_holds::DocHolds;
use super::session::Session;
use super::{errors, ops};

/// The most live queries one connection runs at once.
pub const MAX_LIVE_QUERIES: usize = 1_000;

/// A connection's running live queries, by the client's query id.
#[derive(Default)]
pub struct LiveQueries {
    running: HashMap<u64, Running>,
}

struct Running {
    feed: Arc<Feed>,
    sink: Arc<Sink>,
    key: u64,
    task: JoinHandle<()>,
}

/// `qs`: starts live query `request` (its `q` parsed as `query`; the user may query the
/// collection), replacing one of the same id.
pub async fn subscribe(
    conn: &mut Connection,
    request: QueryRequest,
    query: Query,
) -> Result<(), ShareDbError> {
    end(conn, request.id).await;
    if conn.live.running.len() >= MAX_LIVE_QUERIES {
        return Err(ShareDbError::new(
            ErrorCode::ERR_UNKNOWN_ERROR,
            format!(
                "this connection already runs {MAX_LIVE_QUERIES} live queries, the most it \
                 may: end some (destroy them) first"
            ),
        ));
    }
    let resume = request.r.as_ref().map(client_results).transpose()?;
    let key = query_feed::next_key();
    // Join the feed first: a change while the results are read is then handled after
    // them.
    let (feed, sink) = conn.feeds.join(&request.c);
    let mut live = Live {
        id: request.id,
        key,
        by_doc: query_fetch::polls_by_doc(&request.q),
        c: request.c,
        query,
        engine: conn.engine.clone(),
        session: conn.session.clone(),
        guard: conn.guard.clone(),
        holds: conn.subscriptions.clone(),
        ids: Vec::new(),
        extra: None,
        feed: feed.clone(),
        sink: sink.clone(),
        lo: 0,
        hi: 0,
    };
    let started = match resume {
        None => live.start().await,
        Some(ids) => live.resume(ids).await,
    };
    if let Err(e) = started {
        conn.feeds.leave(&feed, &sink);
        release_all(&live.engine, &live.session, &live.holds, key).await;
        return Err(e);
    }
    let task = tokio::spawn(follow(live));
    conn.live.running.insert(
        request.id,
        Running {
            feed,
            sink,
            key,
            task,
        },
    );
    Ok(())
}

/// `qu`: ends live query `id`, if it runs.
pub async fn end(conn: &mut Connection, id: u64) {
    if let Some(running) = conn.live.running.remove(&id) {
        stop(conn, running).await;
    }
}

/// Ends every live query of the connection (it is closing).
pub async fn end_all(conn: &mut Connection) {
    for (_, running) in std::mem::take(&mut conn.live.running) {
        stop(conn, running).await;
    }
}

async fn stop(conn: &Connection, running: Running) {
    running.task.abort();
    let _ = running.task.await;
    conn.feeds.leave(&running.feed, &running.sink);
    release_all(
        &conn.engine,
        &conn.session,
        &conn.subscriptions,
        running.key,
    )
    .await;
}

/// Unsubscribes from the documents query `key` held that nothing else holds.
async fn release_all(engine: &Engine, session: &Session, holds: &DocHolds, key: u64) {
    for name in holds.release_query(key) {
        let _ = engine.unsubscribe(session.id, &name).await;
    }
}

/// The ids of `r` (`[[id, version], ...]`), with the version each has (`null`: none, as
/// 0); repeated ids count once.
fn client_results(r: &Value) -> Result<Vec<(String, u64)>, ShareDbError> {
    let bad = || ShareDbError::badly_formed("Invalid query results");
    let items = r.as_array().ok_or_else(bad)?;
    if items.len() > MAX_RESULTS {
        return Err(ShareDbError::badly_formed(format!(
            "a query's results hold at most {MAX_RESULTS} documents"
        )));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let pair = item.as_array().ok_or_else(bad)?;
        let id = pair.first().and_then(Value::as_str).ok_or_else(bad)?;
        let version = match pair.get(1) {
            None | Some(Value::Null) => 0,
            Some(v) => v.as_u64().ok_or_else(bad)?,
        };
        if seen.insert(id.to_owned()) {
            out.push((id.to_owned(), version));
        }
    }
    Ok(out)
}

/// The task of one live query: handles batches of changes until it is aborted.
async fn follow(mut live: Live) {
    let sink = live.sink.clone();
    loop {
        sink.wake.notified().await;
        let SinkPending { docs, all } = sink.take();
        if docs.is_empty() && !all {
            continue;
        }
        let result = if all {
            if live.query.count {
                live.recount().await
            } else {
                live.poll(true).await
            }
        } else {
            live.follow_changes(docs).await
        };
        if let Err(e) = result {
            tracing::warn!(
                collection = %live.c,
                query = live.id,
                "a live query could not follow a change: {}",
                e.message
            );
        }
    }
}

/// One live query's state, owned by its task.
struct Live {
    /// The client's query id.
    id: u64,
    /// The watcher's id, and the key of what the query holds in `holds`.
    key: u64,
    c: String,
    query: Query,
    by_doc: bool,
    engine: Arc<Engine>,
    session: Arc<Session>,
    guard: Guard,
    holds: DocHolds,
    /// The ids of the results the client has, in its order.
    ids: Vec<String>,
    /// The last `$count` sent.
    extra: Option<u64>,
    /// The collection's feed, and this query's place on it: the changed documents, read
    /// once for every live query of the collection.
    feed: Arc<Feed>,
    sink: Arc<Sink>,
    /// The feed's read count just before and just after the last whole query: reads
    /// numbered up to `lo` are in its answer, those above `hi` are newer than it (see
    /// [`super::query_feed`]).
    lo: u64,
    hi: u64,
}

/// A query message (`qs` reply or `q` update); absent fields are not written.
#[derive(Serialize)]
struct Message<'a> {
    a: &'static str,
    id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a [Box<RawValue>]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<&'a [Step]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extra: Option<u64>,
}

/// One diff step as the wire shows it.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Step {
    Remove {
        index: usize,
        #[serde(rename = "howMany")]
        how_many: usize,
    },
    Move {
        from: usize,
        to: usize,
        #[serde(rename = "howMany")]
        how_many: usize,
    },
    Insert {
        index: usize,
        values: Vec<Box<RawValue>>,
    },
}

impl Live {
    fn send(&self, message: &Message<'_>) {
        match serde_json::to_string(message) {
            Ok(text) => self.session.send_text(&text),
            Err(e) => tracing::warn!("a query message could not be written: {e}"),
        }
    }

    fn name(&self, id: &str) -> String {
        record_name(&self.c, id)
    }

    /// The first answer: the results with their snapshots (or the count), as the `qs`
    /// reply.
    async fn start(&mut self) -> Result<(), ShareDbError> {
        match self.run_whole().await? {
            Answer::Count(n) => {
                self.extra = Some(n);
                self.send(&Message {
                    a: "qs",
                    id: self.id,
                    data: Some(&[][..]),
                    diff: None,
                    extra: Some(n),
                });
            }
            Answer::Docs(docs) => {
                let ids: Vec<String> = docs.into_iter().map(|d| d.id).collect();
                let (ids, data) = self.follow_docs(&ids).await?;
                self.ids = ids.clone();
                self.send(&Message {
                    a: "qs",
                    id: self.id,
                    data: Some(data.as_slice()),
                    diff: None,
                    extra: None,
                });
                self.release_held(&ids);
            }
        }
        Ok(())
    }

    /// A resubscription: the ops each of the client's results missed, the change from its
    /// results to the current ones, then the bare reply.
    async fn resume(&mut self, had: Vec<(String, u64)>) -> Result<(), ShareDbError> {
        for (id, from) in &had {
            let name = self.name(id);
            if self.guard.read(&name).await.is_err() {
                continue; // never shown; the poll below removes it
            }
            self.session.catch_up(&name);
            let caught_up = self.catch_up_doc(id, &name, *from).await;
            self.session.caught_up(&name, true);
            caught_up?;
        }
        self.ids = had.into_iter().map(|(id, _)| id).collect();
        if self.query.count {
            self.recount().await?;
        } else {
            self.poll(false).await?;
        }
        self.send(&Message {
            a: "qs",
            id: self.id,
            data: None,
            diff: None,
            extra: None,
        });
        Ok(())
    }

    /// Follows document `id` and sends its ops since ShareDB version `from`.
    async fn catch_up_doc(&self, id: &str, name: &str, from: u64) -> Result<(), ShareDbError> {
        let state = self.subscribe(name).await?;
        ops::send(
            &self.engine,
            &self.session,
            (&self.c, id, name),
            from,
            state.version,
        )
        .await
    }

    /// Subscribes the connection to `name` for this query; the state it starts from.
    /// The caller holds the document's events ([`Session::catch_up`]) until the message
    /// carrying that state is sent.
    async fn subscribe(&self, name: &str) -> Result<DocState, ShareDbError> {
        self.holds.hold(Arc::from(name), self.key);
        let subscriber: Arc<dyn Subscriber> = self.session.clone();
        let mut state = None;
        let subscribed = self
            .engine
            .subscribe_state(subscriber, name, |s| state = Some(DocState::of(s)))
            .await;
        match (subscribed, state) {
            (Ok(_), Some(state)) => Ok(state),
            (Ok(_), None) => Err(ShareDbError::new(
                ErrorCode::ERR_UNKNOWN_ERROR,
                "subscribing gave no state",
            )),
            (Err(e), _) => {
                self.unfollow(name).await;
                Err(errors::engine(e))
            }
        }
    }

    async fn unfollow(&self, name: &str) {
        if self.holds.release(name, self.key) {
            let _ = self.engine.unsubscribe(self.session.id, name).await;
        }
    }

    /// Subscribes to each of `ids` with its events held, and returns those that exist
    /// with their snapshots as results (`{d, v, data}`). The caller sends them, then calls
    /// [`Live::release_held`] with the same ids.
    async fn follow_docs(
        &self,
        ids: &[String],
    ) -> Result<(Vec<String>, Vec<Box<RawValue>>), ShareDbError> {
        let mut kept = Vec::with_capacity(ids.len());
        let mut data = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            let name = self.name(id);
            self.session.catch_up(&name);
            let result = self.snapshot(id, &name).await;
            match result {
                Ok(Some(value)) => {
                    kept.push(id.clone());
                    data.push(value);
                }
                Ok(None) => {
                    // Deleted since the query read it: not a result.
                    self.session.caught_up(&name, true);
                    self.unfollow(&name).await;
                }
                Err(e) => {
                    self.release_held(&ids[..=i]);
                    return Err(e);
                }
            }
        }
        Ok((kept, data))
    }

    /// Subscribes to `id` and answers its snapshot as a result, `None` if it does not
    /// exist.
    async fn snapshot(&self, id: &str, name: &str) -> Result<Option<Box<RawValue>>, ShareDbError> {
        let state = self.subscribe(name).await?;
        let Some(text) = state.data.as_deref() else {
            return Ok(None);
        };
        let result = WireResult {
            d: id,
            v: state.version,
            data: Some(raw_or_error(text, name)?),
            missing: None,
        };
        query_fetch::to_raw(&result).map(Some)
    }

    /// Sends the events held for `ids` while their snapshots were sent.
    fn release_held(&self, ids: &[String]) {
        for id in ids {
            self.session.caught_up(&self.name(id), true);
        }
    }

    /// `$count`: the new number, if it changed.
    async fn recount(&mut self) -> Result<(), ShareDbError> {
        let n = match self.run_whole().await? {
            Answer::Count(n) => n,
            Answer::Docs(docs) => docs.len() as u64,
        };
        if self.extra != Some(n) {
            self.extra = Some(n);
            self.send(&Message {
                a: "q",
                id: self.id,
                data: None,
                diff: None,
                extra: Some(n),
            });
        }
        Ok(())
    }

    /// Runs the whole query, as the state the changes read from now on start from.
    async fn run_whole(&mut self) -> Result<Answer, ShareDbError> {
        self.lo = self.feed.seq();
        let answer = query_fetch::run(&self.engine, &self.guard, &self.c, &self.query).await;
        self.hi = self.feed.seq();
        answer
    }

    /// Handles one batch of changed documents, as read by the feed. Reads that began
    /// before the last whole query are in its results, and are skipped; a read that
    /// overlapped it may be older than what it saw, and a query that follows documents
    /// one by one has the feed read it again. Then:
    /// - `$count`: counts again;
    /// - without sort or window: each document is checked alone ([`Live::poll_docs`]);
    /// - otherwise the query runs again, unless no change can touch its results
    ///   ([`Live::untouched`]).
    async fn follow_changes(&mut self, docs: BTreeMap<String, Seen>) -> Result<(), ShareDbError> {
        let mut fresh = Vec::with_capacity(docs.len());
        for (name, seen) in docs {
            if seen.seq <= self.lo {
                continue;
            }
            if seen.seq <= self.hi && self.by_doc && !self.query.count {
                self.feed.refresh(&name);
                continue;
            }
            fresh.push((name, seen));
        }
        if fresh.is_empty() {
            return Ok(());
        }
        if self.query.count {
            self.recount().await
        } else if self.by_doc {
            self.poll_docs(fresh).await
        } else if self.untouched(&fresh) {
            Ok(())
        } else {
            self.poll(false).await
        }
    }

    /// Whether running the (sorted or windowed) query again would surely give the same
    /// results, given that only the documents `changed` changed since: none of them is
    /// among the results and none passes the filter now, and a document that left the
    /// matching set outside the results cannot have shifted the window. That holds
    /// without `$skip` (a document before the window that stopped matching would shift
    /// it) when the window had no document hidden by the read rule: no rules, or no
    /// `$limit` (nothing comes into a window that has no end), or a full window (all
    /// `$limit` documents shown, so none hidden). Otherwise the query runs again.
    fn untouched(&self, changed: &[(String, Seen)]) -> bool {
        let no_hidden =
            self.guard.is_open() || self.query.limit.is_none_or(|l| self.ids.len() as u64 >= l);
        if self.query.skip != 0 || !no_hidden {
            return false;
        }
        let prefix_len = self.c.len() + 1;
        changed.iter().all(|(name, seen)| {
            let id = name.get(prefix_len..).unwrap_or_default();
            !self.ids.iter().any(|x| x == id)
                && !seen.doc.as_ref().is_some_and(|d| d.matches(&self.query))
        })
    }

    /// Checks each changed document alone (no sort or window): in or out of the results.
    /// A document is in when it exists, passes the filter as read, and the user may read
    /// it now.
    async fn poll_docs(&mut self, changed: Vec<(String, Seen)>) -> Result<(), ShareDbError> {
        let prefix = format!("{}/", self.c);
        for (name, seen) in changed {
            let Some(id) = name.strip_prefix(&prefix) else {
                continue;
            };
            let matches = match &seen.doc {
                Some(doc) => {
                    doc.matches(&self.query)
                        && (self.guard.is_open() || self.guard.read(&name).await.is_ok())
                }
                None => false,
            };
            let at = self.ids.iter().position(|x| x == id);
            match (at, matches) {
                (None, true) => self.insert_at_end(id.to_owned()).await?,
                (Some(index), false) => {
                    self.ids.remove(index);
                    self.send_diff(&[Step::Remove { index, how_many: 1 }]);
                    self.unfollow(&name).await;
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn insert_at_end(&mut self, id: String) -> Result<(), ShareDbError> {
        let (kept, values) = self.follow_docs(std::slice::from_ref(&id)).await?;
        if !kept.is_empty() {
            let index = self.ids.len();
            self.ids.push(id.clone());
            self.send_diff(&[Step::Insert { index, values }]);
            self.release_held(&kept);
        }
        Ok(())
    }

    /// Runs the query again and sends how its results changed. `all`: a poll that
    /// replaces per-document checks (too many changes, or news lost), which for a query
    /// without order keeps ShareDB's shape: leavers removed, newcomers at the end.
    async fn poll(&mut self, all: bool) -> Result<(), ShareDbError> {
        let docs = match self.run_whole().await? {
            Answer::Docs(docs) => docs,
            Answer::Count(_) => return self.recount().await,
        };
        let mut new: Vec<String> = docs.into_iter().map(|d| d.id).collect();
        if all && self.by_doc {
            let now: HashSet<&String> = new.iter().collect();
            let had: HashSet<&String> = self.ids.iter().collect();
            let mut kept: Vec<String> = self
                .ids
                .iter()
                .filter(|id| now.contains(id))
                .cloned()
                .collect();
            kept.extend(new.iter().filter(|id| !had.contains(id)).cloned());
            new = kept;
        }
        let steps = diff(&self.ids, &new);
        if steps.is_empty() {
            return Ok(());
        }
        let still: HashSet<&String> = new.iter().collect();
        let left: Vec<String> = self
            .ids
            .iter()
            .filter(|id| !still.contains(id))
            .cloned()
            .collect();
        let mut held = Vec::new();
        let built = self.wire_steps(steps, &mut held).await;
        if built.is_err() {
            self.release_held(&held);
        }
        let wire = built?;
        self.ids = new;
        self.send_diff(&wire);
        self.release_held(&held);
        for id in left {
            self.unfollow(&self.name(&id)).await;
        }
        Ok(())
    }

    /// The steps as the wire shows them: each inserted document subscribed to, its
    /// snapshot in the insert and its events held (its id pushed to `held`).
    async fn wire_steps(
        &self,
        steps: Vec<Change<String>>,
        held: &mut Vec<String>,
    ) -> Result<Vec<Step>, ShareDbError> {
        let mut wire = Vec::with_capacity(steps.len());
        for step in steps {
            wire.push(match step {
                Change::Remove { index, how_many } => Step::Remove { index, how_many },
                Change::Move { from, to, how_many } => Step::Move { from, to, how_many },
                Change::Insert { index, values } => {
                    // A document deleted since the poll still takes its place (the next
                    // change removes it): the client applies steps by position.
                    let mut snapshots = Vec::with_capacity(values.len());
                    for id in &values {
                        let name = self.name(id);
                        self.session.catch_up(&name);
                        held.push(id.clone());
                        let state = self.subscribe(&name).await?;
                        let data = state
                            .data
                            .as_deref()
                            .map(|t| raw_or_error(t, &name))
                            .transpose()?;
                        snapshots.push(query_fetch::to_raw(&WireResult {
                            d: id,
                            v: state.version,
                            data,
                            missing: state.data.is_none().then_some(()),
                        })?);
                    }
                    Step::Insert {
                        index,
                        values: snapshots,
                    }
                }
            });
        }
        Ok(wire)
    }

    fn send_diff(&self, steps: &[Step]) {
        self.send(&Message {
            a: "q",
            id: self.id,
            data: None,
            diff: Some(steps),
            extra: None,
        });
    }
}
