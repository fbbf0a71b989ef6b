//! One read per change, shared by every live query of a collection on this node.
//!
//! The engine tells a collection's watchers that a record changed, by name only
//! ([`recordsync_engine::Watcher`]). Each live query used to read the changed document
//! from the store itself, so a change cost as many reads as there were live queries over
//! the collection (1,000 live queries: 1,000 reads). Here one engine watcher per
//! collection (a [`Feed`]) gathers the changed names, reads them from the store in one
//! query (`{_id: {$in: [...]}}`), and hands each live query ([`Sink`]) the documents as
//! read; a live query then decides in memory, with its own filter and its own user's
//! read rule, what the change does to its results.
//!
//! Freshness: every read carries a sequence number, the feed's count of reads begun
//! ([`Feed::seq`], raised just before a read starts). A live query notes that count just
//! before (`lo`) and just after (`hi`) each query it runs over the whole collection (its
//! start, a re-poll). A read numbered at most `lo` reports changes committed before the
//! query began: they are in its answer, and the live query skips them. A read numbered
//! above `hi` began after the query ended: what it read is newer than, or the same as,
//! what the query saw. A read numbered in between overlapped the query and may be older
//! than what it saw; a live query that must never go back to an older state of a
//! document (one that follows its documents one by one) asks the feed to read it again
//! ([`Feed::refresh`]), which gives a read numbered above `hi`. The feed's reads are made
//! one after another and a sink keeps, per document, the latest; so what a live query
//! uses of a document only goes forward.
//!
//! A failed read (the store cannot be reached) is logged and every sink is told to
//! re-run its query ([`Sink::resync`]), as when news from the bus is lost.
//!
//! Lifetime: [`Feeds::join`] makes the collection's feed when the first live query of
//! the collection starts; [`Feeds::leave`] ends it (unwatches, stops its task) when the
//! last one ends.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use recordsync_core::query::{Cond, Doc, FieldPath, Filter, Query, Selection};
use recordsync_engine::{Engine, Watcher};
use recordsync_store::StoredRecord;

/// The most changed documents a live query remembers between two of its batches; past
/// that it forgets them and re-runs its whole query.
pub const MAX_PENDING: usize = 10_000;

/// The most documents one read of the feed asks the store for.
const READ_CHUNK: usize = 1_000;

/// Watcher and sink ids, unique in the process.
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// A key no other feed or live query has.
pub fn next_key() -> u64 {
    NEXT_KEY.fetch_add(1, Ordering::Relaxed)
}

/// The node's feeds, one per collection that has live queries.
pub struct Feeds {
    engine: Arc<Engine>,
    by_collection: Mutex<HashMap<String, Arc<Feed>>>,
}

/// One collection's feed.
pub struct Feed {
    collection: String,
    /// The engine watcher's id.
    key: u64,
    queue: Arc<Queue>,
    sinks: Mutex<Vec<Arc<Sink>>>,
    /// The sequence number of the last read begun (see the module docs).
    seq: AtomicU64,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// The names the feed has not read yet: its engine watcher.
struct Queue {
    key: u64,
    pending: Mutex<QueuePending>,
    wake: Notify,
}

#[derive(Default)]
struct QueuePending {
    names: BTreeSet<String>,
    /// News lost: every sink re-runs its query.
    all: bool,
}

impl Watcher for Queue {
    fn id(&self) -> u64 {
        self.key
    }

    fn changed(&self, name: &str) {
        let mut pending = self.pending.lock();
        if !pending.all {
            if pending.names.len() >= MAX_PENDING {
                pending.names.clear();
                pending.all = true;
            } else {
                pending.names.insert(name.to_owned());
            }
        }
        drop(pending);
        self.wake.notify_one();
    }

    fn resync(&self) {
        let mut pending = self.pending.lock();
        pending.names.clear();
        pending.all = true;
        drop(pending);
        self.wake.notify_one();
    }
}

/// A document as the feed read it: the stored record and its value.
#[derive(Debug)]
pub struct FeedDoc {
    record: StoredRecord,
    value: Value,
    /// The length of `collection/`, where the id starts in the record's name.
    prefix_len: usize,
}

impl FeedDoc {
    /// The document as a query sees it (the stores' own view: id, data, ShareDB version,
    /// `_m.ctime`, `_m.mtime`).
    pub fn doc(&self) -> Doc<'_> {
        Doc::new(
            &self.record.name[self.prefix_len..],
            &self.value,
            self.record.version.saturating_add(1),
            self.record.ctime,
            self.record.mtime,
        )
    }

    /// Whether the document passes `query`'s filter (not its window, not the read rule).
    pub fn matches(&self, query: &Query) -> bool {
        query.matches(&self.doc())
    }
}

/// A changed document as a sink is told of it: read at sequence number `seq`; `doc`
/// `None` when it does not exist (never created, or deleted).
#[derive(Debug, Clone)]
pub struct Seen {
    pub seq: u64,
    pub doc: Option<Arc<FeedDoc>>,
}

/// One live query's side of the feed: the changes it has not handled yet.
pub struct Sink {
    key: u64,
    pending: Mutex<SinkPending>,
    /// Woken when there is something pending.
    pub wake: Notify,
}

#[derive(Default)]
pub struct SinkPending {
    /// Changed documents by record name, each as last read.
    pub docs: BTreeMap<String, Seen>,
    /// Too many changes, or news lost: re-run the whole query.
    pub all: bool,
}

impl Sink {
    fn new(key: u64) -> Sink {
        Sink {
            key,
            pending: Mutex::new(SinkPending::default()),
            wake: Notify::new(),
        }
    }

    /// What is pending, emptied.
    pub fn take(&self) -> SinkPending {
        std::mem::take(&mut *self.pending.lock())
    }

    fn deliver(&self, reads: &[(String, Seen)]) {
        let mut pending = self.pending.lock();
        if pending.all {
            return;
        }
        for (name, seen) in reads {
            if pending.docs.len() >= MAX_PENDING && !pending.docs.contains_key(name) {
                pending.docs.clear();
                pending.all = true;
                break;
            }
            // Reads arrive in the order they were made: the later one is the newer.
            pending.docs.insert(name.clone(), seen.clone());
        }
        drop(pending);
        self.wake.notify_one();
    }

    fn resync(&self) {
        let mut pending = self.pending.lock();
        pending.docs.clear();
        pending.all = true;
        drop(pending);
        self.wake.notify_one();
    }
}

impl Feed {
    /// How many reads the feed has begun: what a live query notes before and after a
    /// whole query (see the module docs).
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// Reads `name` again and hands it to every sink (for a sink whose last read of it
    /// may be older than what it has seen).
    pub fn refresh(&self, name: &str) {
        self.queue.changed(name);
    }
}

impl Feeds {
    pub fn new(engine: Arc<Engine>) -> Arc<Feeds> {
        Arc::new(Feeds {
            engine,
            by_collection: Mutex::new(HashMap::new()),
        })
    }

    /// A new sink on `collection`'s feed (made if it is the first): from now on it is
    /// told of every change of the collection. End it with [`Feeds::leave`].
    pub fn join(&self, collection: &str) -> (Arc<Feed>, Arc<Sink>) {
        let sink = Arc::new(Sink::new(next_key()));
        let mut feeds = self.by_collection.lock();
        let feed = feeds
            .entry(collection.to_owned())
            .or_insert_with(|| {
                let queue = Arc::new(Queue {
                    key: next_key(),
                    pending: Mutex::new(QueuePending::default()),
                    wake: Notify::new(),
                });
                let feed = Arc::new(Feed {
                    collection: collection.to_owned(),
                    key: queue.key,
                    queue: queue.clone(),
                    sinks: Mutex::new(Vec::new()),
                    seq: AtomicU64::new(0),
                    task: Mutex::new(None),
                });
                self.engine.watch(collection, queue);
                let task = tokio::spawn(run(feed.clone(), self.engine.clone()));
                *feed.task.lock() = Some(task);
                feed
            })
            .clone();
        feed.sinks.lock().push(sink.clone());
        drop(feeds);
        (feed, sink)
    }

    /// Ends `sink`; the feed too if it was its last.
    pub fn leave(&self, feed: &Arc<Feed>, sink: &Sink) {
        let mut feeds = self.by_collection.lock();
        let mut sinks = feed.sinks.lock();
        sinks.retain(|s| s.key != sink.key);
        if !sinks.is_empty() {
            return;
        }
        drop(sinks);
        if feeds
            .get(&feed.collection)
            .is_some_and(|f| Arc::ptr_eq(f, feed))
        {
            feeds.remove(&feed.collection);
        }
        drop(feeds);
        self.engine.unwatch(&feed.collection, feed.key);
        if let Some(task) = feed.task.lock().take() {
            task.abort();
        }
    }

    /// How many feeds run (for tests).
    #[cfg(test)]
    pub fn running(&self) -> usize {
        self.by_collection.lock().len()
    }
}

/// The feed's task: reads each batch of changed names once and hands the documents to
/// every sink, until it is aborted.
async fn run(feed: Arc<Feed>, engine: Arc<Engine>) {
    let prefix = format!("{}/", feed.collection);
    loop {
        feed.queue.wake.notified().await;
        let QueuePending { names, all } = std::mem::take(&mut *feed.queue.pending.lock());
        let sinks: Vec<Arc<Sink>> = feed.sinks.lock().clone();
        if all {
            for sink in &sinks {
                sink.resync();
            }
            continue;
        }
        if names.is_empty() {
            continue;
        }
        let seq = feed.seq.fetch_add(1, Ordering::AcqRel) + 1;
        match read(&engine, &feed.collection, &prefix, &names).await {
            Ok(found) => {
                let reads: Vec<(String, Seen)> = names
                    .into_iter()
                    .map(|name| {
                        let doc = found.get(&name).cloned();
                        (name, Seen { seq, doc })
                    })
                    .collect();
                for sink in &sinks {
                    sink.deliver(&reads);
                }
            }
            Err(e) => {
                tracing::warn!(
                    collection = %feed.collection,
                    "live queries could not read the documents that changed (each query \
                     runs again): {e}"
                );
                for sink in &sinks {
                    sink.resync();
                }
            }
        }
    }
}

/// Reads the existing documents among `names` (records of `collection`), by name.
async fn read(
    engine: &Engine,
    collection: &str,
    prefix: &str,
    names: &BTreeSet<String>,
) -> Result<HashMap<String, Arc<FeedDoc>>, String> {
    let ids: Vec<Value> = names
        .iter()
        .filter_map(|n| n.strip_prefix(prefix))
        .map(|id| Value::String(id.to_owned()))
        .collect();
    let path = FieldPath::parse("_id").map_err(|e| format!("_id path: {e}"))?;
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(READ_CHUNK) {
        let query = Query {
            filter: Filter::Field {
                path: path.clone(),
                conds: vec![Cond::In(chunk.to_vec())],
            },
            sort: Vec::new(),
            skip: 0,
            limit: None,
            count: false,
        };
        let records = match engine
            .query(collection, &query)
            .await
            .map_err(|e| e.to_string())?
        {
            Selection::Items(items) => items,
            Selection::Count(_) => Vec::new(),
        };
        for record in records {
            if record.deleted || !record.name.starts_with(prefix) {
                continue;
            }
            let value = recordsync_core::json::parse(&record.data)
                .map_err(|e| format!("{} is not JSON: {e}", record.name))?;
            found.insert(
                record.name.clone(),
                Arc::new(FeedDoc {
                    record,
                    value,
                    prefix_len: prefix.len(),
                }),
            );
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use recordsync_core::WriteOp;
    use recordsync_engine::WriteDone;
    use recordsync_engine::listen::Listening;
    use recordsync_store::MemoryStore;

    use super::*;

    fn engine() -> Arc<Engine> {
        Engine::new(
            Arc::new(MemoryStore::new()),
            Listening::new(Duration::from_secs(1), false),
            Duration::from_secs(60),
            None,
        )
    }

    async fn write(engine: &Engine, name: &str, data: Value) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let request = recordsync_engine::WriteRequest::new(
            0,
            WriteOp::Update { data },
            recordsync_engine::Base::Next,
        );
        let done = WriteDone::new(move |r| {
            let _ = tx.send(r.is_ok());
        });
        engine.write(name, request, done).await;
        assert!(rx.await.unwrap());
    }

    async fn delete(engine: &Engine, name: &str) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let done = WriteDone::new(move |r| {
            let _ = tx.send(r.is_ok());
        });
        engine.delete(0, None, name, done).await;
        assert!(rx.await.unwrap());
    }

    /// Waits until `sink` has something pending, and takes it.
    async fn next(sink: &Sink) -> SinkPending {
        loop {
            let pending = sink.take();
            if !pending.docs.is_empty() || pending.all {
                return pending;
            }
            sink.wake.notified().await;
        }
    }

    /// Two live queries of a collection are handed the very same read of a changed
    /// document: one read per change, whatever the number of queries.
    #[tokio::test]
    async fn every_sink_of_a_collection_gets_the_one_read_of_a_change() {
        let engine = engine();
        let feeds = Feeds::new(engine.clone());
        let (feed, a) = feeds.join("books");
        let (same_feed, b) = feeds.join("books");
        assert!(Arc::ptr_eq(&feed, &same_feed));
        let (films, c) = feeds.join("films");
        assert_eq!(feeds.running(), 2);

        write(&engine, "books/x", json!({"n": 1})).await;
        let (got_a, got_b) = (next(&a).await, next(&b).await);
        let read_a = got_a.docs["books/x"].doc.clone().unwrap();
        let read_b = got_b.docs["books/x"].doc.clone().unwrap();
        assert!(Arc::ptr_eq(&read_a, &read_b), "one read, shared");
        assert_eq!(read_a.doc().id(), "x");
        assert_eq!(read_a.doc().data(), &json!({"n": 1}));
        let q = Query::parse(&json!({"n": 1})).unwrap();
        assert!(read_a.matches(&q));
        assert!(!read_a.matches(&Query::parse(&json!({"n": 2})).unwrap()));
        assert!(c.take().docs.is_empty(), "another collection hears nothing");

        delete(&engine, "books/x").await;
        let gone = next(&a).await;
        assert!(
            gone.docs["books/x"].doc.is_none(),
            "a deleted document is read as none"
        );
        assert!(gone.docs["books/x"].seq > got_a.docs["books/x"].seq);

        feeds.leave(&feed, &a);
        assert_eq!(feeds.running(), 2, "b still follows books");
        feeds.leave(&feed, &b);
        feeds.leave(&films, &c);
        assert_eq!(feeds.running(), 0);
        assert!(
            !engine.unwatch("books", feed.key),
            "the engine watch ended too"
        );
    }

    /// Reads are numbered in the order they begin; a refresh reads a document again,
    /// numbered after everything noted before it.
    #[tokio::test]
    async fn reads_are_numbered_and_a_refresh_reads_again() {
        let engine = engine();
        let feeds = Feeds::new(engine.clone());
        let (feed, sink) = feeds.join("c");
        write(&engine, "c/a", json!({})).await;
        let first = next(&sink).await.docs["c/a"].clone();
        let noted = feed.seq();
        assert!(first.seq <= noted);
        feed.refresh("c/a");
        let again = next(&sink).await.docs["c/a"].clone();
        assert!(again.seq > noted);
        assert_eq!(again.doc.unwrap().doc().data(), &json!({}));
        feeds.leave(&feed, &sink);
    }

    /// Past [`MAX_PENDING`] unhandled documents a sink asks for a whole run instead; a
    /// resync asks for one too.
    #[test]
    fn a_sink_that_falls_behind_runs_its_whole_query() {
        let sink = Sink::new(1);
        let reads: Vec<(String, Seen)> = (0..=MAX_PENDING)
            .map(|i| (format!("c/{i}"), Seen { seq: 1, doc: None }))
            .collect();
        sink.deliver(&reads[..MAX_PENDING]);
        assert!(!sink.take().all);
        sink.deliver(&reads);
        let pending = sink.take();
        assert!(pending.all && pending.docs.is_empty());
        sink.resync();
        assert!(sink.take().all);
    }
}
