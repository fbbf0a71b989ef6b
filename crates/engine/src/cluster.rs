//! Several nodes, one data set: announcing committed writes on the bus, and applying
//! other nodes' announcements to this node's cached records.
//!
//! The store is the truth and the bus is only news. An announcement that follows what a
//! node holds (version `v + 1` on top of `v`) is applied and published to the node's own
//! subscribers; anything else — a gap, a record with local writes in flight, a lost bus
//! connection — makes the node refetch from the store, which publishes whatever changed.
//! So a lost or late message costs a read, never a wrong value.
//!
//! A gap shows only when a later announcement arrives, so the announcing node also owns
//! the announcements it could not deliver: one the bus refused, or one that found the
//! queue full, is remembered by record name, and once the bus takes messages again the
//! node asks the others to refetch those records (`Refetch`). A node whose own bus
//! connection was lost refetches everything it holds when it is back (a resync).

use std::borrow::Cow;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use recordsync_bus::{Bus, BusError, BusEvent, backoff};
use recordsync_store::Origin;

use super::Engine;

/// The bus topic every node of a cluster shares.
pub const TOPIC: &str = "recordsync.records";

/// How many announcements may wait for the bus before new ones are dropped (the other
/// nodes are then asked to refetch those records).
const OUTGOING_BUFFER: usize = 65536;

/// Announcements handed to the bus at once, at most (one Redis pipeline).
const PUBLISH_BATCH: usize = 256;

/// How many undelivered records are remembered by name; beyond that the other nodes are
/// asked to refetch everything they hold.
const MAX_MISSED: usize = 10_000;

/// How many names one [`Refetch`] message carries (names are at most 1 KiB, and a NATS
/// message at most 1 MiB by default).
const REFETCH_CHUNK: usize = 256;

/// One committed change, as announced on the bus.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Announcement<'a> {
    /// The announcing node, which ignores its own announcements.
    pub node: u64,
    /// Borrowed from the message unless JSON escaped something in it (a record name may
    /// hold quotes, backslashes, control characters).
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// The engine version the change produced, and the create of the record's life.
    pub version: u64,
    #[serde(default)]
    pub created: u64,
    /// The journal form of the write (`recordsync_core::WriteOp`); absent for a delete
    /// or for a record created empty.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub op: Option<&'a RawValue>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Who sent the change (ShareDB's `src` and `seq`), so that subscribers on every node
    /// are told of it as the writer's node tells its own. Absent from older nodes'
    /// announcements, and for changes with no origin.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub origin: Option<AnnouncedOrigin<'a>>,
}

/// An [`Origin`] as announced.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AnnouncedOrigin<'a> {
    #[serde(borrow)]
    pub src: Cow<'a, str>,
    pub seq: u64,
}

impl AnnouncedOrigin<'_> {
    pub fn to_origin(&self) -> Origin {
        Origin {
            src: self.src.to_string(),
            seq: self.seq,
        }
    }
}

/// Asks the other nodes to refetch records whose announcements this node could not
/// deliver (or, with `all`, everything they hold).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Refetch {
    pub node: u64,
    pub refetch: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
}

/// Records whose announcements did not reach the bus, until the other nodes have been
/// told to refetch them.
#[derive(Default)]
struct Missed {
    state: parking_lot::Mutex<MissedNames>,
    /// Wakes the publisher when something was missed while it waited for the queue.
    wake: tokio::sync::Notify,
}

#[derive(Default)]
struct MissedNames {
    names: std::collections::HashSet<String>,
    all: bool,
}

impl MissedNames {
    fn is_empty(&self) -> bool {
        !self.all && self.names.is_empty()
    }
}

impl Missed {
    fn add(&self, name: &str) {
        if self.state.lock().is_empty() {
            tracing::warn!(
                "announcements are not reaching the bus; the other nodes will be asked to \
                 refetch the records concerned once it takes messages again"
            );
        }
        self.ask(name);
    }

    /// Has the other nodes asked to refetch `name`, by the next [`Refetch`].
    fn ask(&self, name: &str) {
        let mut missed = self.state.lock();
        if missed.all || missed.names.contains(name) {
            // Already asked for.
        } else if missed.names.len() >= MAX_MISSED {
            missed.names.clear();
            missed.all = true;
        } else {
            missed.names.insert(name.to_owned());
        }
        drop(missed);
        self.wake.notify_one();
    }

    fn is_pending(&self) -> bool {
        !self.state.lock().is_empty()
    }

    fn take(&self) -> MissedNames {
        std::mem::take(&mut *self.state.lock())
    }

    fn put_back(&self, unsent: MissedNames) {
        let mut missed = self.state.lock();
        missed.all |= unsent.all;
        if missed.all {
            missed.names.clear();
        } else {
            missed.names.extend(unsent.names);
        }
    }
}

/// The publisher: sends queued announcements in order, remembers those the bus refuses,
/// and once it takes messages again asks the other nodes to refetch what they missed.
async fn publish(
    bus: Arc<dyn Bus>,
    node: u64,
    mut queue: mpsc::Receiver<Bytes>,
    missed: Arc<Missed>,
) {
    let mut attempt = 0u32;
    let mut next_try = tokio::time::Instant::now();
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    loop {
        let pending = missed.is_pending();
        tokio::select! {
            biased;
            // Whatever queued up while the last batch was on its way goes out together.
            taken = queue.recv_many(&mut batch, PUBLISH_BATCH) => {
                if taken == 0 {
                    return; // the engine is gone
                }
                if let Err(e) = bus.publish_all(TOPIC, &batch).await {
                    tracing::debug!("announcing {taken} writes failed: {e}");
                    for message in &batch {
                        match serde_json::from_slice::<Announcement>(message) {
                            Ok(a) => missed.add(&a.name),
                            Err(_) => missed.put_back(MissedNames { all: true, ..Default::default() }),
                        }
                    }
                }
                batch.clear();
            }
            () = missed.wake.notified() => {}
            () = tokio::time::sleep_until(next_try), if pending => {}
        }
        if missed.is_pending() && tokio::time::Instant::now() >= next_try {
            match send_refetch(bus.as_ref(), node, &missed).await {
                Ok(()) => attempt = 0,
                Err(e) => {
                    tracing::debug!("asking other nodes to refetch failed: {e}");
                    next_try = tokio::time::Instant::now() + backoff(attempt);
                    attempt += 1;
                }
            }
        }
    }
}

/// Publishes what was missed as [`Refetch`] messages; whatever could not be sent is kept
/// for the next try.
async fn send_refetch(bus: &dyn Bus, node: u64, missed: &Missed) -> Result<(), BusError> {
    let taken = missed.take();
    let messages: Vec<Refetch> = if taken.all {
        vec![Refetch {
            node,
            refetch: Vec::new(),
            all: true,
        }]
    } else {
        let names: Vec<String> = taken.names.into_iter().collect();
        names
            .chunks(REFETCH_CHUNK)
            .map(|chunk| Refetch {
                node,
                refetch: chunk.to_vec(),
                all: false,
            })
            .collect()
    };
    for (i, message) in messages.iter().enumerate() {
        let bytes = serde_json::to_vec(message).expect("refetch messages serialise");
        if let Err(e) = bus.publish(TOPIC, Bytes::from(bytes)).await {
            let mut unsent = MissedNames::default();
            for m in &messages[i..] {
                unsent.all |= m.all;
                unsent.names.extend(m.refetch.iter().cloned());
            }
            missed.put_back(unsent);
            return Err(e);
        }
    }
    tracing::info!(
        "the bus takes messages again: asked the other nodes to refetch what they missed"
    );
    Ok(())
}

pub struct Cluster {
    pub(crate) node: u64,
    outgoing: mpsc::Sender<Bytes>,
    missed: Arc<Missed>,
}

impl Cluster {
    /// Connects the engine to `bus`: starts the publisher and the receiver tasks.
    pub(crate) async fn start(
        bus: Arc<dyn Bus>,
        engine: Weak<Engine>,
        node: u64,
    ) -> Result<Cluster, recordsync_bus::BusError> {
        let mut incoming = bus.subscribe(TOPIC).await?;
        let (outgoing, queue) = mpsc::channel::<Bytes>(OUTGOING_BUFFER);
        let missed = Arc::new(Missed::default());
        tokio::spawn(publish(bus.clone(), node, queue, missed.clone()));
        tokio::spawn(async move {
            while let Some(event) = incoming.recv().await {
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                match event {
                    BusEvent::Message(bytes) => {
                        match serde_json::from_slice::<Announcement>(&bytes) {
                            Ok(a) if a.node == node => {}
                            Ok(a) => engine.apply_remote(&a),
                            Err(e) => match serde_json::from_slice::<Refetch>(&bytes) {
                                Ok(r) if r.node == node => {}
                                Ok(r) if r.all => engine.resync(),
                                Ok(r) => r.refetch.iter().for_each(|n| engine.refetch_cached(n)),
                                Err(_) => tracing::warn!("ignoring a malformed bus message: {e}"),
                            },
                        }
                    }
                    BusEvent::Resync => {
                        tracing::info!(
                            "bus connection restored: refetching every subscribed record"
                        );
                        engine.resync();
                    }
                }
            }
        });
        Ok(Cluster {
            node,
            outgoing,
            missed,
        })
    }

    /// Asks the other nodes to refetch `name` (it changed in the store without an
    /// announcement); never blocks.
    pub(crate) fn ask_refetch(&self, name: &str) {
        self.missed.ask(name);
    }

    /// Queues an announcement; never blocks (a full queue drops it, and the other nodes
    /// are asked to refetch the record once the queue has room).
    pub(crate) fn announce(
        &self,
        name: &str,
        version: crate::EngineVersion,
        op: Option<&str>,
        deleted: bool,
        origin: Option<&Origin>,
    ) {
        let op = op.and_then(|text| serde_json::from_str::<&RawValue>(text).ok());
        let announcement = Announcement {
            node: self.node,
            name: Cow::Borrowed(name),
            version: version.version,
            created: version.created,
            op,
            deleted,
            origin: origin.map(|o| AnnouncedOrigin {
                src: Cow::Borrowed(&o.src),
                seq: o.seq,
            }),
        };
        let bytes = serde_json::to_vec(&announcement).expect("announcements serialise");
        if self.outgoing.try_send(Bytes::from(bytes)).is_err() {
            self.missed.add(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use async_trait::async_trait;
    use tokio::sync::watch;

    use super::*;

    /// A bus that holds every publish until the test opens it, and records what it was
    /// given.
    struct Held {
        open: watch::Receiver<bool>,
        sent: parking_lot::Mutex<Vec<Bytes>>,
    }

    #[async_trait]
    impl Bus for Held {
        async fn publish(&self, _topic: &str, payload: Bytes) -> Result<(), BusError> {
            let _ = self.open.clone().wait_for(|open| *open).await;
            self.sent.lock().push(payload);
            Ok(())
        }

        async fn subscribe(&self, _topic: &str) -> Result<mpsc::Receiver<BusEvent>, BusError> {
            unreachable!("the publisher does not subscribe")
        }
    }

    /// Announcements that find the queue full are not lost: once the bus takes messages
    /// again, the other nodes are asked to refetch those records.
    #[tokio::test]
    async fn announcements_that_find_the_queue_full_become_a_refetch() {
        let (open, opened) = watch::channel(false);
        let bus = Arc::new(Held {
            open: opened,
            sent: parking_lot::Mutex::new(Vec::new()),
        });
        let (outgoing, queue) = mpsc::channel(2);
        let missed = Arc::new(Missed::default());
        let cluster = Cluster {
            node: 7,
            outgoing,
            missed: missed.clone(),
        };
        tokio::spawn(publish(bus.clone(), 7, queue, missed));
        let names: BTreeSet<String> = (0..6).map(|i| format!("record \"{i}\"")).collect();
        for name in &names {
            cluster.announce(name, crate::EngineVersion::new(1, 0), None, false, None);
        }
        open.send_replace(true);

        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let (mut announced, mut refetched) = (BTreeSet::new(), BTreeSet::new());
            for bytes in bus.sent.lock().iter() {
                if let Ok(a) = serde_json::from_slice::<Announcement>(bytes) {
                    announced.insert(a.name.into_owned());
                } else {
                    let r: Refetch = serde_json::from_slice(bytes).expect("a refetch");
                    assert_eq!((r.node, r.all), (7, false));
                    refetched.extend(r.refetch);
                }
            }
            if !refetched.is_empty() && &announced | &refetched == names {
                assert!(announced.len() <= 3, "the queue holds two: {announced:?}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "announced {announced:?}, refetch asked for {refetched:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
