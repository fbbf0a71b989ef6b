//! The client's state without I/O: every record, request and listen, what to send, and
//! what each message from the server changes.
//!
//! [`Core`] sits behind one mutex shared by the handles and the connection task. Handles
//! call its methods; the connection task feeds it the server's messages
//! ([`Core::handle`]), tells it when the connection opens and drops, and sends what
//! [`Core::take_outbox`] returns. Nothing here blocks or awaits: waiters are oneshot and
//! unbounded channels, completed in place.

mod events;
pub(crate) mod record;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use recordsync_core::{Path, WriteOp};
use recordsync_deepstream_protocol::{
    ConnectionAction, ConnectionMessage, Message, RecordAction, RecordMessage,
};

use crate::error::Error;
use crate::merge::MergeStrategy;
use record::{AckWaiter, Effects, Phase, RecordState, Refusal};

/// A request's answer goes here.
pub(crate) type Waiter<T> = oneshot::Sender<Result<T, Error>>;

/// A record's status as its handles see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    Loading,
    Ready,
    Deleted,
    Failed(Error),
}

/// A record's value as [`Client::snapshot`](crate::Client::snapshot) read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub version: u64,
    pub data: Value,
}

impl Snapshot {
    /// The value at `path` (`""` for the whole value), or `None` if there is nothing
    /// there; fails only for a malformed path.
    pub fn get(&self, path: &str) -> Result<Option<&Value>, Error> {
        let path = crate::record::parse_path(path)?;
        Ok(value_at(&self.data, path.as_ref()))
    }
}

/// A match offered to a listener.
#[derive(Debug)]
pub(crate) struct Offer {
    pub name: String,
}

/// Why a provider should stop providing a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The last subscriber went away (deepstream's `onStop`).
    Unsubscribed,
    /// The connection dropped; the server offers the record again after reconnecting if
    /// it is still wanted.
    ConnectionLost,
    /// This client stopped listening to the pattern.
    Unlistened,
    /// The client was closed.
    Closed,
}

struct Subscriber {
    path: Option<Path>,
    tx: mpsc::UnboundedSender<Value>,
    last: Option<Value>,
}

enum Unload {
    No,
    At(Instant),
    Due,
}

struct Entry {
    id: u64,
    refs: usize,
    unload: Unload,
    state: RecordState,
    merge: Option<MergeStrategy>,
    subscribers: Vec<Subscriber>,
    status: watch::Sender<Status>,
    provider: watch::Sender<bool>,
    notified_rev: u64,
}

/// What a new record handle needs.
pub(crate) struct Opened {
    pub id: u64,
    pub status: watch::Receiver<Status>,
    pub provider: watch::Receiver<bool>,
}

struct ListenEntry {
    id: u64,
    offers: mpsc::UnboundedSender<Offer>,
    ack: Vec<Waiter<()>>,
}

struct SetData {
    message: RecordMessage,
    waiter: Option<Waiter<()>>,
}

pub(crate) struct Core {
    connected: bool,
    closed: Option<Error>,
    unload_delay: Duration,
    default_merge: MergeStrategy,
    next_id: u64,
    records: HashMap<String, Entry>,
    /// Correlation id of a record write in flight -> the record.
    write_routes: HashMap<String, String>,
    set_data: HashMap<String, SetData>,
    heads: HashMap<String, Vec<Waiter<Option<u64>>>>,
    reads: HashMap<String, Vec<Waiter<Snapshot>>>,
    deletes: HashMap<String, Vec<Waiter<()>>>,
    listens: HashMap<String, ListenEntry>,
    provisions: HashMap<(String, String), oneshot::Sender<StopReason>>,
    /// Event names this client subscribes to.
    events: HashMap<String, events::EventEntry>,
    outbox: Vec<Message>,
}

impl Core {
    pub fn new(unload_delay: Duration, default_merge: MergeStrategy) -> Core {
        Core {
            connected: false,
            closed: None,
            unload_delay,
            default_merge,
            next_id: 1,
            records: HashMap::new(),
            write_routes: HashMap::new(),
            set_data: HashMap::new(),
            heads: HashMap::new(),
            reads: HashMap::new(),
            deletes: HashMap::new(),
            listens: HashMap::new(),
            provisions: HashMap::new(),
            events: HashMap::new(),
            outbox: Vec::new(),
        }
    }

    fn check_open(&self) -> Result<(), Error> {
        match &self.closed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn send(&mut self, m: impl Into<Message>) {
        if self.connected {
            self.outbox.push(m.into());
        }
    }

    /// Subscribes `name`, joining the names of a SUBSCRIBECREATEANDREAD just queued.
    fn send_subscribe(&mut self, name: &str) {
        if !self.connected {
            return;
        }
        if let Some(Message::Record(last)) = self.outbox.last_mut()
            && last.action == RecordAction::SubscribeCreateAndRead as i32
        {
            last.names.push(name.to_owned());
            return;
        }
        self.outbox.push(
            RecordMessage {
                names: vec![name.to_owned()],
                correlation_id: Some(record::next_correlation_id()),
                ..RecordMessage::new(RecordAction::SubscribeCreateAndRead)
            }
            .into(),
        );
    }

    /// The messages to send, in order.
    pub fn take_outbox(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.outbox)
    }

    // ----- records -------------------------------------------------------------------

    /// A new handle on `name`: shares the existing subscription or makes one.
    pub fn open_record(&mut self, name: &str) -> Opened {
        if let Some(e) = self.records.get_mut(name) {
            e.refs += 1;
            e.unload = Unload::No;
            return Opened {
                id: e.id,
                status: e.status.subscribe(),
                provider: e.provider.subscribe(),
            };
        }
        let id = self.next_id;
        self.next_id += 1;
        if let Some(error) = self.closed.clone() {
            let (_, status) = watch::channel(Status::Failed(error));
            let (_, provider) = watch::channel(false);
            return Opened {
                id,
                status,
                provider,
            };
        }
        let (status, status_rx) = watch::channel(Status::Loading);
        let (provider, provider_rx) = watch::channel(false);
        self.records.insert(
            name.to_owned(),
            Entry {
                id,
                refs: 1,
                unload: Unload::No,
                state: RecordState::new(name),
                merge: None,
                subscribers: Vec::new(),
                status,
                provider,
                notified_rev: 0,
            },
        );
        self.send_subscribe(name);
        Opened {
            id,
            status: status_rx,
            provider: provider_rx,
        }
    }

    fn entry(&mut self, name: &str, id: u64) -> Result<&mut Entry, Error> {
        self.check_open()?;
        match self.records.get_mut(name) {
            Some(e) if e.id == id => Ok(e),
            _ => Err(Error::Deleted {
                name: name.to_owned(),
            }),
        }
    }

    /// Another handle on the same record.
    pub fn retain(&mut self, name: &str, id: u64) {
        if let Ok(e) = self.entry(name, id) {
            e.refs += 1;
            e.unload = Unload::No;
        }
    }

    /// A handle went away; the last one unsubscribes, after the unload delay.
    pub fn release(&mut self, name: &str, id: u64, now: Instant) {
        let delay = self.unload_delay;
        let Some(e) = self.records.get_mut(name).filter(|e| e.id == id) else {
            return;
        };
        e.refs = e.refs.saturating_sub(1);
        if e.refs > 0 {
            return;
        }
        e.unload = if delay.is_zero() {
            Unload::Due
        } else {
            Unload::At(now + delay)
        };
        self.try_unload(name);
    }

    /// Unsubscribes a record nobody holds once its writes are done.
    fn try_unload(&mut self, name: &str) {
        let Some(e) = self.records.get(name) else {
            return;
        };
        if e.refs > 0 || !matches!(e.unload, Unload::Due) || e.state.has_pending_writes() {
            return;
        }
        self.records.remove(name);
        self.send(RecordMessage {
            names: vec![name.to_owned()],
            correlation_id: Some(name.to_owned()),
            ..RecordMessage::new(RecordAction::Unsubscribe)
        });
    }

    /// The earliest unload deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.records
            .values()
            .filter_map(|e| match e.unload {
                Unload::At(at) => Some(at),
                _ => None,
            })
            .min()
    }

    /// Unloads the records whose delay is over.
    pub fn on_timer(&mut self, now: Instant) {
        let due: Vec<String> = self
            .records
            .iter_mut()
            .filter_map(|(name, e)| match e.unload {
                Unload::At(at) if at <= now => {
                    e.unload = Unload::Due;
                    Some(name.clone())
                }
                _ => None,
            })
            .collect();
        for name in due {
            self.try_unload(&name);
        }
    }

    pub fn get(
        &mut self,
        name: &str,
        id: u64,
        path: Option<&Path>,
    ) -> Result<Option<Value>, Error> {
        let e = self.entry(name, id)?;
        if !e.state.has_value() {
            return Ok(None);
        }
        Ok(value_at(e.state.local(), path).cloned())
    }

    pub fn version(&mut self, name: &str, id: u64) -> Option<u64> {
        self.entry(name, id).ok().and_then(|e| e.state.version())
    }

    pub fn set_merge_strategy(&mut self, name: &str, id: u64, strategy: MergeStrategy) {
        if let Ok(e) = self.entry(name, id) {
            e.merge = Some(strategy);
        }
    }

    /// A write through a record handle.
    pub fn write(
        &mut self,
        name: &str,
        id: u64,
        change: WriteOp,
        waiter: Option<AckWaiter>,
    ) -> Result<(), Error> {
        let connected = self.connected;
        let e = self.entry(name, id)?;
        let mut fx = Effects::default();
        e.state.write(
            change,
            waiter.into_iter().collect(),
            false,
            connected,
            &mut fx,
        );
        self.after(name, fx);
        Ok(())
    }

    /// A stream of the value at `path`: the current one once ready, then every change.
    pub fn subscribe(
        &mut self,
        name: &str,
        id: u64,
        path: Option<Path>,
    ) -> Result<mpsc::UnboundedReceiver<Value>, Error> {
        let e = self.entry(name, id)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut subscriber = Subscriber {
            path,
            tx,
            last: None,
        };
        if e.state.has_value() {
            notify_one(&mut subscriber, e.state.local());
        }
        e.subscribers.push(subscriber);
        Ok(rx)
    }

    /// Applies a record's effects: sends, routes, acknowledgements, notifications, status.
    fn after(&mut self, name: &str, mut fx: Effects) {
        for m in fx.send.drain(..) {
            if m.is_write_ack == Some(true)
                && let Some(cid) = &m.correlation_id
            {
                self.write_routes.insert(cid.clone(), name.to_owned());
            }
            self.send(m);
        }
        fx.deliver();
        let Some(e) = self.records.get_mut(name) else {
            return;
        };
        match e.state.phase() {
            Phase::Gone => {}
            Phase::Loading => {}
            _ => {
                if *e.status.borrow() == Status::Loading {
                    e.status.send_replace(Status::Ready);
                }
                if e.notified_rev != e.state.rev() {
                    e.notified_rev = e.state.rev();
                    let local = e.state.local();
                    e.subscribers.retain_mut(|s| notify_one(s, local));
                }
            }
        }
        self.try_unload(name);
    }

    /// Removes a deleted record; its handles see `Status::Deleted`.
    fn record_gone(&mut self, name: &str, status: Status) {
        let Some(mut e) = self.records.remove(name) else {
            return;
        };
        let mut fx = Effects::default();
        match &status {
            Status::Failed(error) => e.state.on_failed(error, &mut fx),
            _ => e.state.on_deleted(&mut fx),
        }
        fx.deliver();
        e.status.send_replace(status);
        // Dropping the subscribers' senders ends their streams.
    }

    // ----- requests ------------------------------------------------------------------

    pub fn head(&mut self, name: &str, waiter: Waiter<Option<u64>>) {
        if let Err(e) = self.check_open() {
            let _ = waiter.send(Err(e));
            return;
        }
        let waiters = self.heads.entry(name.to_owned()).or_default();
        waiters.push(waiter);
        if waiters.len() == 1 {
            self.send(RecordMessage::named(RecordAction::Head, name));
        }
    }

    pub fn read(&mut self, name: &str, waiter: Waiter<Snapshot>) {
        if let Err(e) = self.check_open() {
            let _ = waiter.send(Err(e));
            return;
        }
        let waiters = self.reads.entry(name.to_owned()).or_default();
        waiters.push(waiter);
        if waiters.len() == 1 {
            self.send(RecordMessage::named(RecordAction::Read, name));
        }
    }

    pub fn delete(&mut self, name: &str, waiter: Waiter<()>) {
        if let Err(e) = self.check_open() {
            let _ = waiter.send(Err(e));
            return;
        }
        let waiters = self.deletes.entry(name.to_owned()).or_default();
        waiters.push(waiter);
        if waiters.len() == 1 {
            self.send(RecordMessage::named(RecordAction::Delete, name));
        }
    }

    /// deepstream's `setData`: a write without subscribing (version -1: "the next one").
    pub fn set_data(
        &mut self,
        name: &str,
        change: WriteOp,
        waiter: Option<Waiter<()>>,
    ) -> Result<(), Error> {
        self.check_open()?;
        // A record this client holds takes the write itself (as deepstream's client does):
        // the server does not echo a write to its writer, so the record would miss it.
        if let Some(e) = self.records.get_mut(name) {
            let connected = self.connected;
            let mut fx = Effects::default();
            e.state.write(
                change,
                waiter.into_iter().collect(),
                true,
                connected,
                &mut fx,
            );
            self.after(name, fx);
            return Ok(());
        }
        let cid = record::next_correlation_id();
        let message = RecordMessage {
            version: Some(-1),
            is_write_ack: Some(true),
            correlation_id: Some(cid.clone()),
            ..record::change_message(name, &change, true)
        };
        self.send(message.clone());
        self.set_data.insert(cid, SetData { message, waiter });
        Ok(())
    }

    // ----- listening -----------------------------------------------------------------

    pub fn listen(
        &mut self,
        pattern: &str,
        offers: mpsc::UnboundedSender<Offer>,
        ack: Waiter<()>,
    ) -> Option<u64> {
        if let Err(e) = self.check_open() {
            let _ = ack.send(Err(e));
            return None;
        }
        if self.listens.contains_key(pattern) {
            let _ = ack.send(Err(Error::Listen {
                pattern: pattern.to_owned(),
                reason: "this client already listens to it; drop the other Listening first".into(),
            }));
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.listens.insert(
            pattern.to_owned(),
            ListenEntry {
                id,
                offers,
                ack: vec![ack],
            },
        );
        self.send(RecordMessage::named(RecordAction::Listen, pattern));
        Some(id)
    }

    pub fn unlisten(&mut self, pattern: &str, id: u64) {
        if self.listens.get(pattern).is_none_or(|l| l.id != id) {
            return;
        }
        self.listens.remove(pattern);
        self.send(RecordMessage::named(RecordAction::Unlisten, pattern));
        let stopped: Vec<_> = self
            .provisions
            .keys()
            .filter(|(p, _)| p == pattern)
            .cloned()
            .collect();
        for key in stopped {
            if let Some(stop) = self.provisions.remove(&key) {
                let _ = stop.send(StopReason::Unlistened);
            }
        }
    }

    /// Answers an offer: LISTEN_ACCEPT (remembering whom to tell when to stop) or
    /// LISTEN_REJECT.
    pub fn respond(
        &mut self,
        pattern: &str,
        listen_id: u64,
        name: &str,
        stop: Option<oneshot::Sender<StopReason>>,
    ) {
        if self.listens.get(pattern).is_none_or(|l| l.id != listen_id) {
            if let Some(stop) = stop {
                let _ = stop.send(StopReason::Unlistened);
            }
            return;
        }
        let action = if stop.is_some() {
            RecordAction::ListenAccept
        } else {
            RecordAction::ListenReject
        };
        if let Some(stop) = stop {
            if !self.connected {
                let _ = stop.send(StopReason::ConnectionLost);
                return;
            }
            self.provisions
                .insert((pattern.to_owned(), name.to_owned()), stop);
        }
        self.send(RecordMessage {
            subscription: Some(name.to_owned()),
            ..RecordMessage::named(action, pattern)
        });
    }

    // ----- the connection ------------------------------------------------------------

    /// The connection is open (again): renew every subscription and listen, resend every
    /// unanswered request. Writes follow once each record has its READ_RESPONSE.
    pub fn on_open(&mut self) {
        self.connected = true;
        self.outbox.clear();
        let names: Vec<String> = self.records.keys().cloned().collect();
        for name in names {
            self.send_subscribe(&name);
        }
        let patterns: Vec<String> = self.listens.keys().cloned().collect();
        for pattern in patterns {
            self.send(RecordMessage::named(RecordAction::Listen, pattern.as_str()));
        }
        self.renew_events();
        let mut resend: Vec<RecordMessage> = Vec::new();
        for (name, waiters) in &mut self.heads {
            waiters.retain(|w| !w.is_closed());
            if !waiters.is_empty() {
                resend.push(RecordMessage::named(RecordAction::Head, name.as_str()));
            }
        }
        for (name, waiters) in &mut self.reads {
            waiters.retain(|w| !w.is_closed());
            if !waiters.is_empty() {
                resend.push(RecordMessage::named(RecordAction::Read, name.as_str()));
            }
        }
        for (name, waiters) in &self.deletes {
            if !waiters.is_empty() {
                resend.push(RecordMessage::named(RecordAction::Delete, name.as_str()));
            }
        }
        resend.extend(self.set_data.values().map(|s| s.message.clone()));
        for m in resend {
            self.send(m);
        }
    }

    /// The connection dropped.
    pub fn on_lost(&mut self) {
        self.connected = false;
        self.outbox.clear();
        self.write_routes.clear();
        for e in self.records.values_mut() {
            e.state.on_disconnect();
        }
        for (_, stop) in self.provisions.drain() {
            let _ = stop.send(StopReason::ConnectionLost);
        }
    }

    /// The client is closed, or gave up reconnecting: everything waiting fails.
    pub fn close(&mut self, error: Error) {
        self.connected = false;
        self.closed = Some(error.clone());
        self.outbox.clear();
        let names: Vec<String> = self.records.keys().cloned().collect();
        for name in names {
            self.record_gone(&name, Status::Failed(error.clone()));
        }
        fail_all(&mut self.heads, &error);
        fail_all(&mut self.reads, &error);
        fail_all(&mut self.deletes, &error);
        for (_, s) in self.set_data.drain() {
            if let Some(w) = s.waiter {
                let _ = w.send(Err(error.clone()));
            }
        }
        for (_, l) in self.listens.drain() {
            for w in l.ack {
                let _ = w.send(Err(error.clone()));
            }
        }
        for (_, stop) in self.provisions.drain() {
            let _ = stop.send(StopReason::Closed);
        }
        self.close_events(&error);
    }

    /// One message from the server.
    pub fn handle(&mut self, message: Message) {
        match message {
            Message::Record(m) => self.handle_record(m),
            Message::Connection(m) => {
                if m.action == ConnectionAction::Ping as i32 {
                    self.send(ConnectionMessage {
                        action: ConnectionAction::Pong as i32,
                        ..Default::default()
                    });
                }
            }
            Message::Parser(m) => {
                tracing::warn!(action = m.action, data = ?m.data, "the server could not parse a message");
            }
            Message::Event(m) => self.handle_event(m),
            Message::Auth(_) | Message::Other { .. } => {}
        }
    }

    fn handle_record(&mut self, m: RecordMessage) {
        let Some(action) = m.record_action() else {
            tracing::debug!(action = m.action, "unknown record action");
            return;
        };
        let name = m.name.clone().unwrap_or_default();
        match action {
            RecordAction::ReadResponse => self.on_read_response(&name, &m),
            RecordAction::HeadResponse => {
                let version = m.version.unwrap_or(-1);
                let version = (version >= 0).then_some(version as u64);
                resolve(&mut self.heads, &name, || Ok(version));
            }
            RecordAction::HeadResponseBulk => {
                for (name, version) in &m.versions {
                    let version = (*version >= 0).then_some(*version as u64);
                    resolve(&mut self.heads, name, || Ok(version));
                }
            }
            RecordAction::Update
            | RecordAction::Patch
            | RecordAction::Erase
            | RecordAction::PatchMulti => self.on_remote_change(&name, &m, action),
            RecordAction::WriteAcknowledgement => self.on_write_answer(&m, Ok(())),
            RecordAction::DeleteSuccess => {
                resolve(&mut self.deletes, &name, || Ok(()));
                self.record_gone(&name, Status::Deleted);
            }
            RecordAction::Deleted => self.record_gone(&name, Status::Deleted),
            RecordAction::SubscriptionHasProvider | RecordAction::SubscriptionHasNoProvider => {
                if let Some(e) = self.records.get(&name) {
                    e.provider
                        .send_replace(action == RecordAction::SubscriptionHasProvider);
                }
            }
            RecordAction::SubscriptionForPatternFound => self.on_offer(&m),
            RecordAction::SubscriptionForPatternRemoved => {
                let subscription = m.subscription.clone().unwrap_or_default();
                if let Some(stop) = self.provisions.remove(&(name, subscription)) {
                    let _ = stop.send(StopReason::Unsubscribed);
                }
            }
            RecordAction::Listen if m.is_ack == Some(true) => {
                if let Some(l) = self.listens.get_mut(&name) {
                    for w in l.ack.drain(..) {
                        let _ = w.send(Ok(()));
                    }
                }
            }
            _ if m.is_ack == Some(true) => {}
            RecordAction::VersionExists | RecordAction::InvalidVersion => {
                self.on_write_answer(&m, Err(Refusal::Version))
            }
            _ => self.on_error(&name, &m, action),
        }
    }

    fn on_read_response(&mut self, name: &str, m: &RecordMessage) {
        let version = i64::from(m.version.unwrap_or(0));
        let data = match m.data.as_deref().map(recordsync_core::json::parse::<Value>) {
            Some(Ok(data)) => data,
            Some(Err(e)) => {
                tracing::warn!(record = name, "READ_RESPONSE data is not JSON: {e}");
                return;
            }
            None => Value::Object(Default::default()),
        };
        resolve(&mut self.reads, name, || {
            Ok(Snapshot {
                version: version.max(0) as u64,
                data: data.clone(),
            })
        });
        let connected = self.connected;
        let Some(e) = self.records.get_mut(name) else {
            return;
        };
        let strategy = e
            .merge
            .clone()
            .unwrap_or_else(|| self.default_merge.clone());
        let mut fx = Effects::default();
        e.state
            .on_read_response(version, data, &strategy, connected, &mut fx);
        self.after(name, fx);
    }

    fn on_remote_change(&mut self, name: &str, m: &RecordMessage, action: RecordAction) {
        // The JS client treats a write message marked isWriteAck as an acknowledgement.
        if m.is_write_ack == Some(true) {
            return;
        }
        let connected = self.connected;
        let Some(e) = self.records.get_mut(name) else {
            return;
        };
        let change = match record::remote_change(m, action) {
            Ok(change) => change,
            Err(reason) => {
                tracing::warn!(
                    record = name,
                    "unreadable update ({reason}): reloading the record"
                );
                // A version far ahead forces a merge, i.e. a READ.
                let mut fx = Effects::default();
                e.state.on_remote_change(
                    i64::MAX,
                    WriteOp::Update { data: Value::Null },
                    connected,
                    &mut fx,
                );
                self.after(name, fx);
                return;
            }
        };
        let version = i64::from(m.version.unwrap_or(-1));
        let mut fx = Effects::default();
        e.state
            .on_remote_change(version, change, connected, &mut fx);
        self.after(name, fx);
    }

    /// The answer to a write: a record's (routed by correlation id) or a `setData`'s.
    fn on_write_answer(&mut self, m: &RecordMessage, outcome: Result<(), Refusal>) {
        let Some(cid) = m.correlation_id.as_deref() else {
            // VERSION_EXISTS without a correlation id: not one of ours (we always send one).
            return;
        };
        if let Some(s) = self.set_data.remove(cid) {
            if let Some(w) = s.waiter {
                let _ = w.send(outcome.map_err(|r| match r {
                    Refusal::Fatal(e) => e,
                    Refusal::Version => write_error(m),
                }));
            }
            return;
        }
        let Some(name) = self.write_routes.remove(cid) else {
            return;
        };
        let connected = self.connected;
        let Some(e) = self.records.get_mut(&name) else {
            return;
        };
        let mut fx = Effects::default();
        match outcome {
            Ok(()) => e.state.on_ack(cid, connected, &mut fx),
            Err(refusal) => e.state.on_refused(cid, refusal, connected, &mut fx),
        }
        self.after(&name, fx);
    }

    fn on_offer(&mut self, m: &RecordMessage) {
        let pattern = m.name.clone().unwrap_or_default();
        let Some(subscription) = m.subscription.clone() else {
            return;
        };
        let delivered = self.listens.get(&pattern).is_some_and(|l| {
            l.offers
                .send(Offer {
                    name: subscription.clone(),
                })
                .is_ok()
        });
        if !delivered {
            self.send(RecordMessage {
                subscription: Some(subscription),
                ..RecordMessage::named(RecordAction::ListenReject, pattern.as_str())
            });
        }
    }

    /// An error reply, routed by what it answers.
    fn on_error(&mut self, name: &str, m: &RecordMessage, action: RecordAction) {
        let error = error_from(name, m, action);
        let original = m
            .original_action
            .and_then(|a| RecordAction::try_from(a).ok());
        if let Some(cid) = m.correlation_id.as_deref()
            && (self.set_data.contains_key(cid) || self.write_routes.contains_key(cid))
        {
            return self.on_write_answer(m, Err(Refusal::Fatal(error)));
        }
        // deepstream names no original action in INVALID_LISTEN_REGEX.
        let original = if action == RecordAction::InvalidListenRegex {
            Some(RecordAction::Listen)
        } else {
            original
        };
        match original {
            Some(
                RecordAction::SubscribeCreateAndRead
                | RecordAction::SubscribeAndRead
                | RecordAction::SubscribeAndHead
                | RecordAction::Subscribe,
            ) => {
                tracing::warn!("cannot subscribe to {name:?}: {error}");
                self.record_gone(name, Status::Failed(error));
            }
            Some(RecordAction::Read) => {
                let in_merge = self
                    .records
                    .get(name)
                    .is_some_and(|e| matches!(e.state.phase(), Phase::Merging { .. }));
                resolve(&mut self.reads, name, || Err(error.clone()));
                if in_merge {
                    if action == RecordAction::RecordNotFound {
                        self.record_gone(name, Status::Deleted);
                    } else {
                        // Without the server's value the record cannot get back in step.
                        tracing::warn!("cannot reload {name:?} after a conflict: {error}");
                        self.record_gone(name, Status::Failed(error));
                    }
                }
            }
            Some(RecordAction::Head) => resolve(&mut self.heads, name, || Err(error.clone())),
            Some(RecordAction::Delete) => resolve(&mut self.deletes, name, || Err(error.clone())),
            Some(RecordAction::Listen) => {
                if let Some(l) = self.listens.remove(name) {
                    let error = match error {
                        denied @ Error::PermissionDenied { .. } => denied,
                        Error::Server { reason, action, .. } => Error::Listen {
                            pattern: name.to_owned(),
                            reason: reason.unwrap_or(action),
                        },
                        other => other,
                    };
                    for w in l.ack {
                        let _ = w.send(Err(error.clone()));
                    }
                }
            }
            _ if action == RecordAction::RecordDeleteError => {
                resolve(&mut self.deletes, name, || Err(error.clone()))
            }
            _ => tracing::warn!("{error}"),
        }
    }
}

/// The error a reply stands for.
fn error_from(name: &str, m: &RecordMessage, action: RecordAction) -> Error {
    let original = m
        .original_action
        .and_then(|a| RecordAction::try_from(a).ok())
        .map(action_name);
    match action {
        RecordAction::RecordNotFound => Error::NotFound {
            name: name.to_owned(),
        },
        RecordAction::MessageDenied | RecordAction::MessagePermissionError => {
            Error::PermissionDenied {
                name: name.to_owned(),
                action: original.unwrap_or_else(|| "the request".into()),
            }
        }
        _ => Error::Server {
            name: name.to_owned(),
            action: action_name(action),
            reason: m
                .data
                .as_deref()
                .map(|d| serde_json::from_str::<String>(d).unwrap_or_else(|_| d.to_owned())),
        },
    }
}

fn write_error(m: &RecordMessage) -> Error {
    let name = m.name.clone().unwrap_or_default();
    match m.record_action() {
        Some(RecordAction::VersionExists) => Error::Conflict { name },
        Some(action) => error_from(&name, m, action),
        None => Error::Server {
            name,
            action: m.action.to_string(),
            reason: None,
        },
    }
}

/// deepstream's name for an action, e.g. `MESSAGE_DENIED`.
pub(crate) fn action_name(action: RecordAction) -> String {
    let debug = format!("{action:?}");
    // deepstream writes the compound actions without underscores: CREATEANDUPDATE.
    let compound = debug.contains("And");
    let mut out = String::with_capacity(debug.len() + 4);
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 && !compound {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn value_at<'a>(root: &'a Value, path: Option<&Path>) -> Option<&'a Value> {
    match path {
        None => Some(root),
        Some(path) => recordsync_core::path::get(root, path),
    }
}

/// Sends a subscriber the value at its path if it changed; false once it is gone.
fn notify_one(s: &mut Subscriber, local: &Value) -> bool {
    let value = value_at(local, s.path.as_ref())
        .cloned()
        .unwrap_or(Value::Null);
    if s.last.as_ref() == Some(&value) {
        return !s.tx.is_closed();
    }
    s.last = Some(value.clone());
    s.tx.send(value).is_ok()
}

fn resolve<T>(
    map: &mut HashMap<String, Vec<Waiter<T>>>,
    name: &str,
    outcome: impl Fn() -> Result<T, Error>,
) {
    if let Some(waiters) = map.remove(name) {
        for w in waiters {
            let _ = w.send(outcome());
        }
    }
}

fn fail_all<T>(map: &mut HashMap<String, Vec<Waiter<T>>>, error: &Error) {
    for (_, waiters) in map.drain() {
        for w in waiters {
            let _ = w.send(Err(error.clone()));
        }
    }
}

#[cfg(test)]
mod tests;
