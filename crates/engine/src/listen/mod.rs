//! The listening runtime: active data providers, on one node or across a cluster.
//!
//! One runtime serves every topic deepstream listens on ([`ListenTopic`]: records and
//! events): the engine holds one [`Listening`] per topic, each with its own registry and
//! its own bus topic, and a front door tells a provider's offers apart by the topic
//! they come with. Only records' subscribers hear whether a name has a provider
//! (deepstream tells event subscribers nothing).
//!
//! - `wire`: what nodes say to each other about listening.
//! - `peers`: which nodes are alive, and so which one coordinates (the lowest live id).
//! - `coordinator`: the cluster's one [`ListenRegistry`](recordsync_core::listen), rebuilt
//!   from the nodes' reports when the coordinator changes (sans-IO).
//! - `mirror`: what this node knows of its own listeners and subscriptions, for checking
//!   requests locally and for reporting to a new coordinator.
//! - `link`: the bus side: heartbeats, and messages to and from other nodes.
//!
//! On one node the coordinator is local and nothing goes on a bus. Every input (a record
//! gaining its first subscriber on this node or losing its last, a LISTEN, an accept, a
//! timer) is checked against the mirror, then handed to the coordinator: locally, under
//! its lock, which also queues the resulting actions so that the queue holds them in the
//! order they were decided; or on the bus, to the coordinating node. One task carries the
//! queue out: offers and stops to providers (here or on their node), provider changes to
//! subscribers, response timers.
//!
//! Lock order: record → mirror → coordinator state. The task that carries actions out
//! takes a record's lock only while holding neither of the others.

mod coordinator;
mod link;
mod mirror;
mod peers;
mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use recordsync_core::listen::{ListenAction, ListenError, TimerId};

use super::{Engine, EventKind};
use coordinator::{Coordinator, Directive};
use link::Link;
use mirror::Mirror;
use peers::Peers;
use wire::{Endpoint, Input, Message, ProviderCall};

pub use link::ClusterTiming;

/// What a listener listens for: the names of one kind of subscription. Each topic has
/// its own registry, so a pattern on records never matches an event's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ListenTopic {
    /// Records: subscribers are told when a record gains or loses its provider.
    Record,
    /// Events (publish/subscribe): subscribers are told nothing of providers.
    Event,
}

impl ListenTopic {
    /// The topic's name in metrics' labels.
    fn label(self) -> &'static str {
        match self {
            ListenTopic::Record => "record",
            ListenTopic::Event => "event",
        }
    }

    /// The bus topic on which the nodes of a cluster coordinate this topic's listening.
    fn bus_topic(self) -> &'static str {
        match self {
            ListenTopic::Record => wire::TOPIC,
            ListenTopic::Event => wire::EVENT_TOPIC,
        }
    }
}

/// A connection that listens: it receives offers and stops, each for a name of `topic`.
pub trait Provider: Send + Sync {
    fn id(&self) -> u64;
    /// SUBSCRIPTION_FOR_PATTERN_FOUND: would you provide `name`?
    fn offer(&self, topic: ListenTopic, pattern: &str, name: &str);
    /// SUBSCRIPTION_FOR_PATTERN_REMOVED: stop providing `name`.
    fn stop(&self, topic: ListenTopic, pattern: &str, name: &str);
    /// LISTEN_RESPONSE_TIMEOUT: the offer of `name` went unanswered and moved on.
    fn timed_out(&self, topic: ListenTopic, name: &str);
}

/// A batch of the coordinator's decisions, with the coordinator generation that made it
/// (a response timer of an earlier coordinator must not reach a later one).
struct Job {
    generation: u64,
    directives: Vec<Directive>,
}

/// Whether this node coordinates, and its view of the cluster.
struct Coordination {
    peers: Peers,
    /// `Some` exactly while this node coordinates.
    coordinator: Option<Coordinator>,
    /// Bumped each time this node starts coordinating.
    generation: u64,
    /// The coordinator this node last acted on; a change of view is a change from it.
    current: u64,
}

pub struct Listening {
    topic: ListenTopic,
    me: u64,
    mirror: Mutex<Mirror>,
    state: Mutex<Coordination>,
    providers: Mutex<HashMap<u64, Arc<dyn Provider>>>,
    /// The records with a subscriber on this node that have a provider.
    provided: Mutex<HashSet<Arc<str>>>,
    queue: mpsc::UnboundedSender<Job>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
    link: OnceLock<Link>,
    response_timeout: Duration,
    /// deepstream's `listen.shuffleProviders`, for every coordinator this node becomes.
    shuffle: bool,
}

impl Listening {
    /// Listening on records. `shuffle`: deepstream's `listen.shuffleProviders`.
    pub fn new(response_timeout: Duration, shuffle: bool) -> Self {
        Listening::on(
            ListenTopic::Record,
            rand::random(),
            response_timeout,
            shuffle,
        )
    }

    /// Listening on `topic`, with this one's node id and settings (the engine makes its
    /// event listening so from the record listening it is given).
    pub(crate) fn sibling(&self, topic: ListenTopic) -> Listening {
        Listening::on(topic, self.me, self.response_timeout, self.shuffle)
    }

    fn on(topic: ListenTopic, me: u64, response_timeout: Duration, shuffle: bool) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        Listening {
            topic,
            me,
            mirror: Mutex::new(Mirror::default()),
            state: Mutex::new(Coordination {
                peers: Peers::new(me, Duration::MAX),
                coordinator: Some(Coordinator::new(rand::random(), shuffle)),
                generation: 0,
                current: me,
            }),
            providers: Mutex::new(HashMap::new()),
            provided: Mutex::new(HashSet::new()),
            queue,
            receiver: Mutex::new(Some(receiver)),
            link: OnceLock::new(),
            response_timeout,
            shuffle,
        }
    }

    /// What this runtime listens for.
    pub fn topic(&self) -> ListenTopic {
        self.topic
    }

    /// This node's id in the cluster.
    pub fn node(&self) -> u64 {
        self.me
    }

    /// Starts the task that carries out actions and the periodic rematch. Called once,
    /// inside the runtime, when the engine exists.
    pub(crate) fn start(&self, engine: Weak<Engine>, rematch_interval: Duration) {
        let Some(mut receiver) = self.receiver.lock().take() else {
            return;
        };
        let worker = engine.clone();
        let topic = self.topic;
        tokio::spawn(async move {
            let mut timers: HashMap<(u64, TimerId), AbortHandle> = HashMap::new();
            while let Some(job) = receiver.recv().await {
                let Some(engine) = worker.upgrade() else {
                    return;
                };
                for directive in job.directives {
                    engine.listening_of(topic).carry_out(
                        &engine,
                        job.generation,
                        directive,
                        &mut timers,
                    );
                }
            }
        });
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(rematch_interval);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                engine
                    .listening_of(topic)
                    .coordinate(|c| Ok::<_, ()>(c.rematch()));
            }
        });
    }

    /// Runs `decide` on the coordinator if this node coordinates, queueing its actions in
    /// order. Returns `None` when another node coordinates.
    fn coordinate<T>(
        &self,
        decide: impl FnOnce(&mut Coordinator) -> Result<Vec<Directive>, T>,
    ) -> Option<Result<(), T>> {
        let mut st = self.state.lock();
        let generation = st.generation;
        let coordinator = st.coordinator.as_mut()?;
        Some(decide(coordinator).map(|directives| self.enqueue(generation, directives)))
    }

    /// Like [`coordinate`](Self::coordinate), for a decision that belongs to one
    /// coordinator generation (a response timer): dropped if that coordinator is gone.
    fn coordinate_in<T>(
        &self,
        generation: u64,
        decide: impl FnOnce(&mut Coordinator) -> Result<Vec<Directive>, T>,
    ) -> Option<Result<(), T>> {
        let mut st = self.state.lock();
        if st.generation != generation {
            return None;
        }
        let coordinator = st.coordinator.as_mut()?;
        Some(decide(coordinator).map(|directives| self.enqueue(generation, directives)))
    }

    fn enqueue(&self, generation: u64, directives: Vec<Directive>) {
        if !directives.is_empty() {
            let _ = self.queue.send(Job {
                generation,
                directives,
            });
        }
    }

    /// Hands `input` to the coordinator, here or on its node.
    fn submit(&self, input: Input) -> Result<(), ListenError> {
        let me = self.me;
        let mut st = self.state.lock();
        let generation = st.generation;
        match st.coordinator.as_mut() {
            Some(c) => {
                let directives = c.input(me, input)?;
                self.enqueue(generation, directives);
            }
            None => {
                if let Some(link) = self.link.get() {
                    link.send(Message::Input {
                        from: me,
                        to: st.current,
                        input,
                    });
                }
            }
        }
        Ok(())
    }

    fn carry_out(
        &self,
        engine: &Arc<Engine>,
        generation: u64,
        directive: Directive,
        timers: &mut HashMap<(u64, TimerId), AbortHandle>,
    ) {
        let action = match directive {
            Directive::Registry(action) => action,
            Directive::ProviderKnown { node, name } => {
                if node == self.me {
                    self.provider_changed(engine, &name, true);
                } else if let Some(link) = self.link.get() {
                    link.send(Message::ProviderChanged {
                        from: self.me,
                        to: Some(node),
                        name: name.to_string(),
                        has_provider: true,
                    });
                }
                return;
            }
            Directive::Settled { provided } => {
                self.providers_settled(engine, &provided.iter().map(|n| &**n).collect());
                if let Some(link) = self.link.get() {
                    link.send(Message::Providers {
                        from: self.me,
                        provided: provided.iter().map(|n| n.to_string()).collect(),
                    });
                }
                return;
            }
        };
        match action {
            ListenAction::Offer {
                conn,
                pattern,
                name,
                timer,
            } => {
                self.call(
                    conn,
                    ProviderCall::Offer {
                        pattern: pattern.to_string(),
                        name: name.to_string(),
                    },
                );
                let engine = Arc::downgrade(engine);
                let wait = self.response_timeout;
                let topic = self.topic;
                let handle = tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    if let Some(engine) = engine.upgrade() {
                        engine.listening_of(topic).coordinate_in(generation, |c| {
                            Ok::<_, ()>(c.response_timeout(&name, timer))
                        });
                    }
                });
                timers.insert((generation, timer), handle.abort_handle());
            }
            ListenAction::CancelTimer { timer } => {
                if let Some(handle) = timers.remove(&(generation, timer)) {
                    handle.abort();
                }
            }
            ListenAction::TimedOut { conn, name } => {
                self.call(
                    conn,
                    ProviderCall::TimedOut {
                        name: name.to_string(),
                    },
                );
            }
            ListenAction::Stop {
                conn,
                pattern,
                name,
            } => {
                self.call(
                    conn,
                    ProviderCall::Stop {
                        pattern: pattern.to_string(),
                        name: name.to_string(),
                    },
                );
            }
            ListenAction::ProviderChanged { name, has_provider } => {
                self.provider_changed(engine, &name, has_provider);
                if let Some(link) = self.link.get() {
                    link.send(Message::ProviderChanged {
                        from: self.me,
                        to: None,
                        name: name.to_string(),
                        has_provider,
                    });
                }
            }
        }
        // Timers that fired on their own leave finished handles behind.
        if timers.len() > 64 {
            timers.retain(|_, h| !h.is_finished());
        }
    }

    /// Sends `call` to a provider connection, here or on its node.
    fn call(&self, endpoint: Endpoint, call: ProviderCall) {
        if endpoint.node == self.me {
            self.call_local(endpoint.conn, call);
        } else if let Some(link) = self.link.get() {
            link.send(Message::Call {
                from: self.me,
                to: endpoint.node,
                conn: endpoint.conn,
                call,
            });
        }
    }

    /// Carries out a call on one of this node's provider connections.
    fn call_local(&self, conn: u64, call: ProviderCall) {
        let Some(provider) = self.providers.lock().get(&conn).cloned() else {
            return;
        };
        match call {
            ProviderCall::Offer { pattern, name } => provider.offer(self.topic, &pattern, &name),
            ProviderCall::Stop { pattern, name } => {
                self.mirror.lock().stopped(conn, &name);
                provider.stop(self.topic, &pattern, &name);
            }
            ProviderCall::TimedOut { name } => provider.timed_out(self.topic, &name),
        }
    }

    /// `name` gained or lost its provider: this node's subscribers of it are told, unless
    /// that is what they were told last.
    fn provider_changed(&self, engine: &Engine, name: &str, has_provider: bool) {
        let changed = {
            let mirror = self.mirror.lock();
            // Only records subscribed here are remembered, so the set stays small and
            // never holds a record that lost its provider while nobody here watched.
            match mirror.subscribed_key(name) {
                Some(key) if has_provider => self.provided.lock().insert(key),
                Some(_) => self.provided.lock().remove(name),
                None => false,
            }
        };
        if changed && self.topic == ListenTopic::Record {
            engine.publish(name, EventKind::Provider(has_provider));
        }
    }

    /// The coordinator's full word on which subscribed records have a provider.
    fn providers_settled(&self, engine: &Engine, provided: &HashSet<&str>) {
        let subscribed = self.mirror.lock().subscribed_names();
        for name in subscribed {
            self.provider_changed(engine, &name, provided.contains(&*name));
        }
    }

    /// LISTEN. On `Ok` the caller acks; the offers follow.
    pub fn listen(&self, provider: Arc<dyn Provider>, pattern: &str) -> Result<(), ListenError> {
        let conn = provider.id();
        let mut mirror = self.mirror.lock();
        mirror.listen(conn, pattern)?;
        self.providers.lock().insert(conn, provider);
        let result = self.submit(Input::Listen {
            conn,
            pattern: pattern.to_owned(),
        });
        if result.is_err() {
            mirror.unlisten(conn, pattern);
        }
        mirror.count_providers(self.topic.label());
        result
    }

    /// UNLISTEN. On `Ok` the caller acks.
    pub fn unlisten(&self, conn: u64, pattern: &str) -> Result<(), ListenError> {
        let mut mirror = self.mirror.lock();
        if !mirror.unlisten(conn, pattern) {
            return Err(ListenError::NotListening);
        }
        mirror.count_providers(self.topic.label());
        self.submit(Input::Unlisten {
            conn,
            pattern: pattern.to_owned(),
        })
    }

    pub fn accept(&self, conn: u64, pattern: &str, name: &str) {
        let mut mirror = self.mirror.lock();
        mirror.accepted(conn, pattern, name);
        let _ = self.submit(Input::Accept {
            conn,
            pattern: pattern.to_owned(),
            name: name.to_owned(),
        });
    }

    pub fn reject(&self, conn: u64, pattern: &str, name: &str) {
        let _mirror = self.mirror.lock();
        let _ = self.submit(Input::Reject {
            conn,
            pattern: pattern.to_owned(),
            name: name.to_owned(),
        });
    }

    /// The connection is gone: it provides and listens to nothing any more.
    pub fn connection_closed(&self, conn: u64) {
        let mut mirror = self.mirror.lock();
        if mirror.closed(conn) {
            mirror.count_providers(self.topic.label());
            let _ = self.submit(Input::Closed { conn });
        }
        drop(mirror);
        self.providers.lock().remove(&conn);
    }

    /// Whether `name` has a provider, as this node last heard.
    pub fn has_provider(&self, name: &str) -> bool {
        self.provided.lock().contains(name)
    }

    /// Called when `name` gains its first subscriber on this node (under the record's
    /// lock; for an event, under the event hub's).
    pub(crate) fn subscribed(&self, name: &str) {
        let mut mirror = self.mirror.lock();
        mirror.subscribed(name);
        let _ = self.submit(Input::Subscribed {
            name: name.to_owned(),
        });
    }

    /// Called when the last subscriber of `name` on this node has gone (under the same
    /// lock as [`subscribed`](Self::subscribed)).
    pub(crate) fn unsubscribed(&self, name: &str) {
        let mut mirror = self.mirror.lock();
        mirror.unsubscribed(name);
        self.provided.lock().remove(name);
        let _ = self.submit(Input::Unsubscribed {
            name: name.to_owned(),
        });
    }
}
