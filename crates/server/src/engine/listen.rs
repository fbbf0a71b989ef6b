//! The listening runtime: drives the sans-IO [`ListenRegistry`] of `recordsync-core`.
//!
//! Every input (a record gaining its first subscriber or losing its last, a LISTEN, an
//! accept, a timer) locks the registry, computes the actions, and queues them — still
//! under the lock, so the queue holds actions in the order the registry decided them. One
//! task carries the queue out: offers and stops to providers, provider changes to
//! subscribers, response timers. That task never holds the registry lock while it takes a
//! record's lock, and record code calls in here under the record's lock, so the lock
//! order is always record → registry and the two cannot deadlock.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use recordsync_core::listen::{ListenAction, ListenError, ListenRegistry, TimerId};

use super::{Engine, EventKind};

/// A connection that listens: it receives offers and stops.
pub trait Provider: Send + Sync {
    fn id(&self) -> u64;
    /// SUBSCRIPTION_FOR_PATTERN_FOUND: would you provide `name`?
    fn offer(&self, pattern: &str, name: &str);
    /// SUBSCRIPTION_FOR_PATTERN_REMOVED: stop providing `name`.
    fn stop(&self, pattern: &str, name: &str);
    /// LISTEN_RESPONSE_TIMEOUT: the offer of `name` went unanswered and moved on.
    fn timed_out(&self, name: &str);
}

type Actions = Vec<ListenAction<u64>>;

pub struct Listening {
    registry: Mutex<ListenRegistry<u64>>,
    providers: Mutex<HashMap<u64, Arc<dyn Provider>>>,
    queue: mpsc::UnboundedSender<Actions>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Actions>>>,
    response_timeout: Duration,
}

impl Listening {
    pub fn new(response_timeout: Duration) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        Listening {
            registry: Mutex::new(ListenRegistry::new(rand::random())),
            providers: Mutex::new(HashMap::new()),
            queue,
            receiver: Mutex::new(Some(receiver)),
            response_timeout,
        }
    }

    /// Starts the task that carries out actions and the periodic rematch. Called once,
    /// inside the runtime, when the engine exists.
    pub(crate) fn start(&self, engine: Weak<Engine>, rematch_interval: Duration) {
        let Some(mut receiver) = self.receiver.lock().take() else {
            return;
        };
        let worker = engine.clone();
        tokio::spawn(async move {
            let mut timers: HashMap<TimerId, AbortHandle> = HashMap::new();
            while let Some(actions) = receiver.recv().await {
                let Some(engine) = worker.upgrade() else {
                    return;
                };
                for action in actions {
                    engine.listening.carry_out(&engine, action, &mut timers);
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
                engine.listening.with_registry(|r| r.rematch());
            }
        });
    }

    /// Runs `input` on the registry and queues its actions in order.
    fn with_registry(&self, input: impl FnOnce(&mut ListenRegistry<u64>) -> Actions) {
        let mut registry = self.registry.lock();
        let actions = input(&mut registry);
        if !actions.is_empty() {
            let _ = self.queue.send(actions);
        }
    }

    fn carry_out(
        &self,
        engine: &Arc<Engine>,
        action: ListenAction<u64>,
        timers: &mut HashMap<TimerId, AbortHandle>,
    ) {
        let provider = |conn: u64| self.providers.lock().get(&conn).cloned();
        match action {
            ListenAction::Offer {
                conn,
                pattern,
                name,
                timer,
            } => {
                if let Some(p) = provider(conn) {
                    p.offer(&pattern, &name);
                }
                let engine = Arc::downgrade(engine);
                let wait = self.response_timeout;
                let handle = tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    if let Some(engine) = engine.upgrade() {
                        engine
                            .listening
                            .with_registry(|r| r.response_timeout(&name, timer));
                    }
                });
                timers.insert(timer, handle.abort_handle());
            }
            ListenAction::CancelTimer { timer } => {
                if let Some(handle) = timers.remove(&timer) {
                    handle.abort();
                }
            }
            ListenAction::TimedOut { conn, name } => {
                if let Some(p) = provider(conn) {
                    p.timed_out(&name);
                }
            }
            ListenAction::Stop {
                conn,
                pattern,
                name,
            } => {
                if let Some(p) = provider(conn) {
                    p.stop(&pattern, &name);
                }
            }
            ListenAction::ProviderChanged { name, has_provider } => {
                engine.publish(&name, EventKind::Provider(has_provider));
            }
        }
        // Timers that fired on their own leave finished handles behind.
        if timers.len() > 64 {
            timers.retain(|_, h| !h.is_finished());
        }
    }

    /// LISTEN. On `Ok` the caller acks; the offers follow.
    pub fn listen(&self, provider: Arc<dyn Provider>, pattern: &str) -> Result<(), ListenError> {
        let conn = provider.id();
        let mut registry = self.registry.lock();
        let actions = registry.listen(conn, pattern)?;
        self.providers.lock().insert(conn, provider);
        if !actions.is_empty() {
            let _ = self.queue.send(actions);
        }
        Ok(())
    }

    /// UNLISTEN. On `Ok` the caller acks.
    pub fn unlisten(&self, conn: u64, pattern: &str) -> Result<(), ListenError> {
        let mut registry = self.registry.lock();
        let actions = registry.unlisten(conn, pattern)?;
        if !actions.is_empty() {
            let _ = self.queue.send(actions);
        }
        Ok(())
    }

    pub fn accept(&self, conn: u64, pattern: &str, name: &str) {
        self.with_registry(|r| r.accept(conn, pattern, name));
    }

    pub fn reject(&self, conn: u64, pattern: &str, name: &str) {
        self.with_registry(|r| r.reject(conn, pattern, name));
    }

    /// The connection is gone: it provides and listens to nothing any more.
    pub fn connection_closed(&self, conn: u64) {
        self.with_registry(|r| r.connection_closed(conn));
        self.providers.lock().remove(&conn);
    }

    pub fn has_provider(&self, name: &str) -> bool {
        self.registry.lock().has_provider(name)
    }

    /// Called under the record's lock when it gains its first subscriber.
    pub(crate) fn record_subscribed(&self, name: &str) {
        self.with_registry(|r| r.first_subscriber(name));
    }

    /// Called under the record's lock when its last subscriber has gone.
    pub(crate) fn record_unsubscribed(&self, name: &str) {
        self.with_registry(|r| r.last_subscriber_left(name));
    }
}
