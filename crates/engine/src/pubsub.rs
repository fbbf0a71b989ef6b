//! Events: deepstream's publish/subscribe. Names with subscribers, and each emitted
//! event delivered to every subscriber of its name but its emitter, on this node and,
//! through the bus, on every other node of the cluster.
//!
//! Events are not stored and have no versions: an event emitted while nobody subscribes
//! is gone, and a node that misses one on the bus (a lost connection, a full queue) does
//! not get it again, as with deepstream's own message bus.
//!
//! Invariants:
//! - the payload is delivered as the emitter sent it (JSON text, never parsed here), and
//!   encoded once per wire format however many subscribers receive it ([`Emission`]);
//! - the events of one name reach each subscriber on a node in the order that node
//!   delivered them (one lock per name's shard serialises delivery);
//! - delivering never blocks: a subscriber's queue is its own, and one that is full cuts
//!   that subscriber off ([`EventSubscriber::deliver_event`]), not the emitter or others;
//! - a name's first subscriber on this node and its last one's leaving are told to the
//!   event listening ([`crate::listen`], [`ListenTopic::Event`]) under the same lock, so
//!   listeners see subscriptions in the order they happened.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, OnceLock, Weak};

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use recordsync_bus::{Bus, BusError, BusEvent};

use crate::engine::Engine;
use crate::event::FrameFormat;
use crate::listen::ListenTopic;

/// The bus topic of events; apart from record announcements and listening.
pub const TOPIC: &str = "recordsync.events";

/// How many events may wait for the bus; beyond that new ones are dropped for the other
/// nodes (with a warning): events are news, and a bus that cannot keep up must not make
/// the emitting node hold an unbounded backlog.
const OUTGOING_BUFFER: usize = 65536;

/// Events handed to the bus at once, at most.
const PUBLISH_BATCH: usize = 256;

/// How many locks the subscriptions are spread over.
const SHARDS: usize = 16;

/// One emitted event, as subscribers receive it: its name and payload, and one cache
/// slot per wire format, so that an event fanned out to N subscribers is encoded once
/// per format (as [`RecordEvent`](crate::RecordEvent)s are).
#[derive(Debug)]
pub struct Emission {
    pub name: Arc<str>,
    /// The payload as JSON text, as the emitter sent it; `None`: emitted without data.
    pub data: Option<Arc<str>>,
    frames: [OnceLock<Bytes>; FrameFormat::SLOTS],
}

impl Emission {
    pub fn new(name: Arc<str>, data: Option<Arc<str>>) -> Arc<Emission> {
        Arc::new(Emission {
            name,
            data,
            frames: Default::default(),
        })
    }

    /// The event encoded in `format`, encoding it with `encode` the first time only.
    pub fn frame(&self, format: FrameFormat, encode: impl FnOnce(&Emission) -> Bytes) -> Bytes {
        self.frames[format.index()]
            .get_or_init(|| encode(self))
            .clone()
    }
}

/// Anything that receives emitted events: a client session of some protocol.
pub trait EventSubscriber: Send + Sync {
    /// Unique among live subscribers; the emitter's own is skipped.
    fn id(&self) -> u64;

    /// Queues the event for the client. Must not block: a subscriber whose queue is full
    /// is disconnected rather than slowing the emitter or other subscribers.
    fn deliver_event(&self, event: &Arc<Emission>);
}

type Subscribers = HashMap<u64, Arc<dyn EventSubscriber>>;

/// One lock's share of the names with subscribers.
type Shard = Mutex<HashMap<Arc<str>, Subscribers>>;

/// Who subscribes to which event name on this node.
pub(crate) struct Hub {
    shards: Box<[Shard]>,
    hasher: RandomState,
    /// The bus, once the node joins a cluster.
    outgoing: OnceLock<mpsc::Sender<Bytes>>,
}

/// One event as it travels between nodes.
#[derive(Debug, Serialize, Deserialize)]
struct Announced<'a> {
    /// The emitting node, which ignores its own events.
    node: u64,
    #[serde(borrow)]
    name: std::borrow::Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    data: Option<std::borrow::Cow<'a, str>>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            outgoing: OnceLock::new(),
        }
    }
}

impl Hub {
    fn shard(&self, name: &str) -> &Shard {
        &self.shards[self.hasher.hash_one(name) as usize % SHARDS]
    }

    /// Delivers `event` to this node's subscribers of its name, but `except`.
    fn deliver(&self, event: &Arc<Emission>, except: Option<u64>) -> usize {
        let shard = self.shard(&event.name).lock();
        let Some(subscribers) = shard.get(&event.name) else {
            return 0;
        };
        let mut delivered = 0;
        for (id, subscriber) in subscribers {
            if Some(*id) != except {
                subscriber.deliver_event(event);
                delivered += 1;
            }
        }
        delivered
    }
}

impl Engine {
    /// Subscribes `subscriber` to the events named `name`. Returns `false` when it was
    /// subscribed already (deepstream answers MULTIPLE_SUBSCRIPTIONS), `true` otherwise.
    pub fn subscribe_event(&self, subscriber: Arc<dyn EventSubscriber>, name: &str) -> bool {
        let mut shard = self.events.shard(name).lock();
        let id = subscriber.id();
        match shard.get_mut(name) {
            Some(subscribers) => subscribers.insert(id, subscriber).is_none(),
            None => {
                let name: Arc<str> = Arc::from(name);
                shard.insert(name.clone(), HashMap::from([(id, subscriber)]));
                self.listening_of(ListenTopic::Event).subscribed(&name);
                true
            }
        }
    }

    /// Ends a subscription to the events named `name`. Returns whether there was one.
    pub fn unsubscribe_event(&self, subscriber_id: u64, name: &str) -> bool {
        let mut shard = self.events.shard(name).lock();
        let Some(subscribers) = shard.get_mut(name) else {
            return false;
        };
        let was = subscribers.remove(&subscriber_id).is_some();
        if subscribers.is_empty() {
            shard.remove(name);
            self.listening_of(ListenTopic::Event).unsubscribed(name);
        }
        was
    }

    /// Emits an event: every subscriber of `name` on every node receives `data` (JSON
    /// text, passed through unchanged; `None`: no data), but `emitter`, the subscriber
    /// that sent it. Returns how many subscribers on this node received it.
    pub fn emit(&self, emitter: Option<u64>, name: &str, data: Option<Arc<str>>) -> usize {
        if let Some(outgoing) = self.events.outgoing.get() {
            let announced = Announced {
                node: self.listening().node(),
                name: name.into(),
                data: data.as_deref().map(Into::into),
            };
            let bytes = serde_json::to_vec(&announced).expect("an event serialises");
            if outgoing.try_send(Bytes::from(bytes)).is_err() {
                metrics::counter!("recordsync_events_dropped_total").increment(1);
                tracing::warn!(
                    event = name,
                    "the bus cannot keep up: an event was not sent to the other nodes"
                );
            }
        }
        let event = Emission::new(Arc::from(name), data);
        self.events.deliver(&event, emitter)
    }

    /// Takes part in the cluster's events over `bus`: this node's events go to the
    /// others, and theirs reach this node's subscribers.
    pub(crate) async fn join_events(
        &self,
        bus: Arc<dyn Bus>,
        engine: Weak<Engine>,
    ) -> Result<(), BusError> {
        let mut incoming = bus.subscribe(TOPIC).await?;
        let (outgoing, mut queue) = mpsc::channel::<Bytes>(OUTGOING_BUFFER);
        if self.events.outgoing.set(outgoing).is_err() {
            return Ok(()); // joined already
        }
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(PUBLISH_BATCH);
            while queue.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
                if let Err(e) = bus.publish_all(TOPIC, &batch).await {
                    tracing::warn!(
                        "{} events were not sent to the other nodes: {e}",
                        batch.len()
                    );
                }
                batch.clear();
            }
        });
        let me = self.listening().node();
        tokio::spawn(async move {
            while let Some(message) = incoming.recv().await {
                let BusEvent::Message(bytes) = message else {
                    // Events missed while the bus was away are gone: nothing to resync.
                    continue;
                };
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                match serde_json::from_slice::<Announced>(&bytes) {
                    Ok(announced) if announced.node != me => {
                        let event = Emission::new(
                            Arc::from(&*announced.name),
                            announced.data.as_deref().map(Arc::from),
                        );
                        engine.events.deliver(&event, None);
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("ignoring a malformed event from the bus: {e}"),
                }
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use recordsync_store::MemoryStore;

    use super::*;
    use crate::listen::Listening;

    struct Sink {
        id: u64,
        got: Mutex<Vec<(String, Option<String>)>>,
        encoded: AtomicUsize,
    }

    impl Sink {
        fn new(id: u64) -> Arc<Sink> {
            Arc::new(Sink {
                id,
                got: Mutex::new(Vec::new()),
                encoded: AtomicUsize::new(0),
            })
        }

        fn got(&self) -> Vec<(String, Option<String>)> {
            self.got.lock().clone()
        }
    }

    impl EventSubscriber for Sink {
        fn id(&self) -> u64 {
            self.id
        }

        fn deliver_event(&self, event: &Arc<Emission>) {
            event.frame(FrameFormat::slot(0), |_| {
                self.encoded.fetch_add(1, Ordering::Relaxed);
                Bytes::from_static(b"x")
            });
            self.got.lock().push((
                event.name.to_string(),
                event.data.as_deref().map(str::to_owned),
            ));
        }
    }

    fn engine() -> Arc<Engine> {
        Engine::new(
            Arc::new(MemoryStore::new()),
            Listening::new(Duration::from_secs(1), false),
            Duration::from_secs(60),
            None,
        )
    }

    #[tokio::test]
    async fn every_subscriber_but_the_emitter_gets_the_payload_unchanged() {
        let engine = engine();
        let (a, b, c) = (Sink::new(1), Sink::new(2), Sink::new(3));
        assert!(engine.subscribe_event(a.clone(), "news"));
        assert!(engine.subscribe_event(b.clone(), "news"));
        assert!(engine.subscribe_event(c.clone(), "other"));
        assert!(
            !engine.subscribe_event(a.clone(), "news"),
            "already subscribed"
        );
        let data = r#"{"z":1,"a":1.50,"s":"\u00e9"}"#;
        assert_eq!(engine.emit(Some(1), "news", Some(Arc::from(data))), 1);
        assert_eq!(engine.emit(None, "news", None), 2);
        assert_eq!(a.got(), vec![("news".to_owned(), None)]);
        assert_eq!(
            b.got(),
            vec![
                ("news".to_owned(), Some(data.to_owned())),
                ("news".to_owned(), None)
            ]
        );
        assert!(c.got().is_empty());
    }

    #[tokio::test]
    async fn unsubscribing_stops_delivery_and_is_told_whether_there_was_one() {
        let engine = engine();
        let a = Sink::new(1);
        assert!(!engine.unsubscribe_event(1, "news"));
        engine.subscribe_event(a.clone(), "news");
        assert!(engine.unsubscribe_event(1, "news"));
        assert!(!engine.unsubscribe_event(1, "news"));
        assert_eq!(engine.emit(None, "news", Some(Arc::from("1"))), 0);
        assert!(a.got().is_empty());
    }

    #[tokio::test]
    async fn an_event_is_encoded_once_per_format() {
        let engine = engine();
        let sinks: Vec<_> = (1..=50).map(Sink::new).collect();
        for sink in &sinks {
            engine.subscribe_event(sink.clone(), "many");
        }
        assert_eq!(engine.emit(None, "many", Some(Arc::from("[]"))), 50);
        let encoded: usize = sinks
            .iter()
            .map(|s| s.encoded.load(Ordering::Relaxed))
            .sum();
        assert_eq!(encoded, 1);
    }

    #[tokio::test]
    async fn events_cross_the_bus_to_other_nodes_and_not_back() {
        let bus: Arc<dyn Bus> = Arc::new(recordsync_bus::InProcessBus::new());
        let (one, two) = (engine(), engine());
        for e in [&one, &two] {
            e.join_cluster(bus.clone(), crate::listen::ClusterTiming::default())
                .await
                .unwrap();
        }
        let (a, b) = (Sink::new(1), Sink::new(2));
        one.subscribe_event(a.clone(), "x");
        two.subscribe_event(b.clone(), "x");
        one.emit(Some(1), "x", Some(Arc::from(r#"{"k":[1,"2",null]}"#)));
        for _ in 0..200 {
            if !b.got().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            b.got(),
            vec![("x".to_owned(), Some(r#"{"k":[1,"2",null]}"#.to_owned()))]
        );
        // The emitter's node does not deliver its own event a second time from the bus.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(a.got().is_empty());
    }
}
