//! One record's state on the client, without I/O: the server's value as last confirmed,
//! the local writes not yet confirmed, and how the two are reconciled.
//!
//! # Model
//!
//! The record keeps the server's state as this client last knew it for certain
//! (`server_version`, `server_data`) and, on top of it, the queue of its own writes the
//! server has not confirmed (`ops`). The local value — what `get` returns and
//! subscribers see — is always `server_data` with `ops` applied in order. deepstream
//! numbers writes: the op at position `i` of the queue is sent with version
//! `server_version + i + 1`.
//!
//! Every write asks the server for an acknowledgement (`isWriteAck` with a correlation
//! id), whether or not the caller wants one. That is what lets the client know exactly
//! which of its writes the server holds when a connection drops, so that it can resend
//! the others without losing or duplicating any.
//!
//! # Conflicts
//!
//! A write based on an old version is refused (VERSION_EXISTS, or INVALID_VERSION after
//! a gap). The record then *merges*: it stops sending, waits until every write in flight
//! has its answer, reads the server's value (READ) and reconciles:
//!
//! - if the server's value is still the last confirmed one, the refused and unsent
//!   writes are simply sent again on top of it;
//! - otherwise the [`MergeStrategy`] decides: the server's value (the local writes are
//!   dropped and their acknowledgements fail with [`Error::Conflict`]) or a merged value,
//!   written as one UPDATE that carries every dropped write's acknowledgement.
//!
//! Reconnecting is the same reconciliation, fed by the READ_RESPONSE of the renewed
//! subscription. Writes that were in flight when the connection dropped are checked
//! against the server's value: those it holds are confirmed, the rest are resent.

use std::collections::VecDeque;

use serde_json::Value;
use tokio::sync::oneshot;

use recordsync_core::WriteOp;
use recordsync_deepstream_protocol::{RecordAction, RecordMessage};

use crate::error::Error;
use crate::merge::{Conflict, MergeStrategy};

/// Who waits for a write's acknowledgement.
pub(crate) type AckWaiter = oneshot::Sender<Result<(), Error>>;

/// Where the record is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Subscribed, waiting for the first READ_RESPONSE.
    Loading,
    /// In step with the server; writes are sent as they are made.
    Ready,
    /// A write was refused or an update was missed: waiting for the writes in flight to
    /// be answered, then for the READ that brings the server's value.
    Merging { read_sent: bool },
    /// The connection dropped; waiting for the renewed subscription's READ_RESPONSE.
    Resync,
    /// Deleted.
    Gone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum OpState {
    /// Not sent yet (made while loading, merging or offline).
    Unsent,
    /// Sent on the current connection, waiting for its answer.
    InFlight { cid: String, version: i64 },
    /// Acknowledged while merging: the server holds it.
    Accepted { version: i64 },
    /// Refused for its version: to be sent again or merged.
    Refused,
    /// Sent on a connection that dropped before the answer came.
    Unknown,
}

struct Op {
    change: WriteOp,
    state: OpState,
    waiters: Vec<AckWaiter>,
    /// A `set_data` write: it applies to whatever the current value is, so after a
    /// conflict it is applied again on top of the server's value instead of merged.
    rebase: bool,
}

/// What a refused write's answer means for it.
#[derive(Debug, Clone)]
pub(crate) enum Refusal {
    /// VERSION_EXISTS or INVALID_VERSION: the write may be sent again after merging.
    Version,
    /// Anything else (permission, invalid data, storage): the write is dropped.
    Fatal(Error),
}

/// The effects of a call: messages to send and acknowledgements to deliver.
#[derive(Default)]
pub(crate) struct Effects {
    pub send: Vec<RecordMessage>,
    pub resolved: Vec<(Vec<AckWaiter>, Result<(), Error>)>,
}

impl Effects {
    fn resolve(&mut self, waiters: Vec<AckWaiter>, outcome: Result<(), Error>) {
        if !waiters.is_empty() {
            self.resolved.push((waiters, outcome));
        }
    }

    /// Delivers the acknowledgements.
    pub fn deliver(&mut self) {
        for (waiters, outcome) in self.resolved.drain(..) {
            for waiter in waiters {
                let _ = waiter.send(outcome.clone());
            }
        }
    }
}

/// Merge rounds in a row that found the server's version where the previous round left
/// it, although our writes were sent on top of it in between: after this many the server
/// is refusing them for good (deepstream 7.0.2's write queue for a record can get stuck
/// after a version gap) and they fail instead of being retried forever.
const MAX_STALLED_ROUNDS: u32 = 3;

pub(crate) struct RecordState {
    name: String,
    phase: Phase,
    server_version: i64,
    server_data: Value,
    ops: VecDeque<Op>,
    local: Value,
    /// Bumped whenever `local` may have changed.
    rev: u64,
    /// The server's version at the last merge round with writes pending, and how many
    /// rounds in a row found it there.
    last_round: Option<i64>,
    stalled: u32,
}

impl RecordState {
    pub fn new(name: &str) -> RecordState {
        RecordState {
            name: name.to_owned(),
            phase: Phase::Loading,
            server_version: -1,
            server_data: Value::Object(Default::default()),
            ops: VecDeque::new(),
            local: Value::Object(Default::default()),
            rev: 0,
            last_round: None,
            stalled: 0,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The local value: the server's with this client's unconfirmed writes applied.
    pub fn local(&self) -> &Value {
        &self.local
    }

    pub fn rev(&self) -> u64 {
        self.rev
    }

    /// True once the record has a value (it stays true while merging or reconnecting).
    pub fn has_value(&self) -> bool {
        !matches!(self.phase, Phase::Loading | Phase::Gone)
    }

    /// The version the local value will have once the server holds every local write.
    pub fn version(&self) -> Option<u64> {
        self.has_value()
            .then(|| (self.server_version + self.ops.len() as i64).max(0) as u64)
    }

    /// True while local writes wait for the server.
    pub fn has_pending_writes(&self) -> bool {
        !self.ops.is_empty()
    }

    /// A local write: applied to the local value at once, sent when the record is in step
    /// with the server, queued otherwise.
    pub fn write(
        &mut self,
        change: WriteOp,
        waiters: Vec<AckWaiter>,
        rebase: bool,
        connected: bool,
        fx: &mut Effects,
    ) {
        if self.phase == Phase::Gone {
            fx.resolve(waiters, Err(self.deleted()));
            return;
        }
        let mut next = self.local.clone();
        change.apply(&mut next);
        if next == self.local && self.has_value() {
            // Nothing changes: there is nothing to send, and nothing to wait for.
            fx.resolve(waiters, Ok(()));
            return;
        }
        self.local = next;
        self.rev += 1;
        self.ops.push_back(Op {
            change,
            state: OpState::Unsent,
            waiters,
            rebase,
        });
        if self.phase == Phase::Ready && connected {
            self.send_unsent(fx);
        }
    }

    /// Sends the queued writes, each with the version its position gives it.
    fn send_unsent(&mut self, fx: &mut Effects) {
        let base = self.server_version;
        for (i, op) in self.ops.iter_mut().enumerate() {
            if op.state == OpState::Unsent {
                let version = base + i as i64 + 1;
                let cid = next_correlation_id();
                fx.send
                    .push(write_message(&self.name, &op.change, version, &cid));
                op.state = OpState::InFlight { cid, version };
            }
        }
    }

    /// A READ_RESPONSE: the subscription's first value, the answer to a merge's READ, or
    /// the renewed subscription after reconnecting.
    pub fn on_read_response(
        &mut self,
        version: i64,
        data: Value,
        strategy: &MergeStrategy,
        connected: bool,
        fx: &mut Effects,
    ) {
        match self.phase {
            Phase::Loading => {
                self.server_version = version;
                self.server_data = data;
                self.phase = Phase::Ready;
                self.recompute_local();
                if connected {
                    self.send_unsent(fx);
                }
            }
            Phase::Merging { read_sent: true } | Phase::Resync => {
                self.reconcile(version, data, strategy, connected, fx)
            }
            // Someone's snapshot of this record: the subscription keeps it current anyway.
            Phase::Ready | Phase::Merging { read_sent: false } | Phase::Gone => {}
        }
    }

    /// A change made by another client (UPDATE, PATCH, ERASE, PATCH_MULTI), with its version.
    pub fn on_remote_change(
        &mut self,
        version: i64,
        change: WriteOp,
        connected: bool,
        fx: &mut Effects,
    ) {
        if self.phase != Phase::Ready {
            // Loading, merging or reconnecting: the READ to come brings this change too.
            return;
        }
        let local_version = self.server_version + self.ops.len() as i64;
        if version == local_version + 1 {
            // The server took every write of ours before this one.
            for op in self.ops.drain(..) {
                op.change.apply(&mut self.server_data);
                fx.resolve(op.waiters, Ok(()));
            }
            change.apply(&mut self.server_data);
            self.server_version = version;
            self.local = self.server_data.clone();
            self.rev += 1;
        } else if version <= self.server_version {
            // Older than what this client knows: a late duplicate.
        } else {
            // Another client took a version one of our writes was sent with (that write
            // will be refused), or an update was missed.
            self.start_merge(connected, fx);
        }
    }

    /// A WRITE_ACKNOWLEDGEMENT for the write sent with `cid`.
    pub fn on_ack(&mut self, cid: &str, connected: bool, fx: &mut Effects) {
        let Some(j) = self.position(cid) else { return };
        // Progress: the server takes our writes.
        self.last_round = None;
        self.stalled = 0;
        if self.phase == Phase::Ready {
            // The server applies writes strictly in version order: everything before this
            // one is in too.
            for op in self.ops.drain(..=j) {
                if let OpState::InFlight { version, .. } = op.state {
                    self.server_version = version;
                }
                op.change.apply(&mut self.server_data);
                fx.resolve(op.waiters, Ok(()));
            }
        } else {
            let op = &mut self.ops[j];
            let OpState::InFlight { version, .. } = op.state else {
                unreachable!("position() finds ops in flight only")
            };
            op.state = OpState::Accepted { version };
            fx.resolve(std::mem::take(&mut op.waiters), Ok(()));
            self.maybe_read(connected, fx);
        }
    }

    /// An error answer to the write sent with `cid`.
    pub fn on_refused(&mut self, cid: &str, refusal: Refusal, connected: bool, fx: &mut Effects) {
        let Some(j) = self.position(cid) else { return };
        match refusal {
            Refusal::Version => self.ops[j].state = OpState::Refused,
            Refusal::Fatal(error) => {
                let op = self.ops.remove(j).expect("position is in range");
                fx.resolve(op.waiters, Err(error));
                // The local value still shows the dropped write; the merge's READ repairs it.
            }
        }
        self.start_merge(connected, fx);
    }

    /// The connection dropped: writes in flight have unknown fates.
    pub fn on_disconnect(&mut self) {
        for op in &mut self.ops {
            if matches!(op.state, OpState::InFlight { .. }) {
                op.state = OpState::Unknown;
            }
        }
        if matches!(self.phase, Phase::Ready | Phase::Merging { .. }) {
            self.phase = Phase::Resync;
        }
    }

    /// The record was deleted: pending writes fail.
    pub fn on_deleted(&mut self, fx: &mut Effects) {
        self.phase = Phase::Gone;
        let error = self.deleted();
        for op in self.ops.drain(..) {
            fx.resolve(op.waiters, Err(error.clone()));
        }
    }

    /// The record could not be subscribed (permission, server error): pending writes fail.
    pub fn on_failed(&mut self, error: &Error, fx: &mut Effects) {
        self.phase = Phase::Gone;
        for op in self.ops.drain(..) {
            fx.resolve(op.waiters, Err(error.clone()));
        }
    }

    fn deleted(&self) -> Error {
        Error::Deleted {
            name: self.name.clone(),
        }
    }

    fn position(&self, cid: &str) -> Option<usize> {
        self.ops
            .iter()
            .position(|op| matches!(&op.state, OpState::InFlight { cid: c, .. } if c == cid))
    }

    fn start_merge(&mut self, connected: bool, fx: &mut Effects) {
        if matches!(self.phase, Phase::Ready) {
            self.phase = Phase::Merging { read_sent: false };
        }
        self.maybe_read(connected, fx);
    }

    /// Sends the merge's READ once no write is in flight any more, so that the answer
    /// reflects every write of ours the server took.
    fn maybe_read(&mut self, connected: bool, fx: &mut Effects) {
        if self.phase != (Phase::Merging { read_sent: false }) || !connected {
            return;
        }
        if self
            .ops
            .iter()
            .any(|op| matches!(op.state, OpState::InFlight { .. }))
        {
            return;
        }
        fx.send
            .push(RecordMessage::named(RecordAction::Read, self.name.as_str()));
        self.phase = Phase::Merging { read_sent: true };
    }

    fn reconcile(
        &mut self,
        version: i64,
        data: Value,
        strategy: &MergeStrategy,
        connected: bool,
        fx: &mut Effects,
    ) {
        let merging = matches!(self.phase, Phase::Merging { .. });
        let newest_accepted = self
            .ops
            .iter()
            .filter_map(|op| match op.state {
                OpState::Accepted { version } => Some(version),
                _ => None,
            })
            .max();
        if merging
            && (version < self.server_version || newest_accepted.is_some_and(|v| version < v))
        {
            // An answer older than writes we know the server holds (a READ sent before
            // ours): ask again.
            self.phase = Phase::Merging { read_sent: false };
            self.maybe_read(connected, fx);
            return;
        }
        // Writes acknowledged while merging are in the server's value.
        self.ops
            .retain(|op| !matches!(op.state, OpState::Accepted { .. }));

        // Writes in flight when the connection dropped: the server holds the first k of
        // them if its value is exactly ours with those k applied.
        if version > self.server_version {
            let k = (version - self.server_version) as usize;
            let unknown = self
                .ops
                .iter()
                .take_while(|op| op.state == OpState::Unknown)
                .count();
            if k <= unknown {
                let mut applied = self.server_data.clone();
                for op in self.ops.iter().take(k) {
                    op.change.apply(&mut applied);
                }
                if applied == data {
                    for op in self.ops.drain(..k) {
                        fx.resolve(op.waiters, Ok(()));
                    }
                    self.server_version = version;
                    self.server_data = applied;
                }
            }
        }

        self.phase = Phase::Ready;
        if self.ops.is_empty() {
            self.last_round = None;
            self.stalled = 0;
            self.server_version = version;
            self.server_data = data;
            self.recompute_local();
            return;
        }
        if self.last_round == Some(version) {
            self.stalled += 1;
        } else {
            self.stalled = 0;
        }
        self.last_round = Some(version);
        if self.stalled >= MAX_STALLED_ROUNDS {
            // The server refuses our writes without anything else changing: give up on
            // them rather than retry forever.
            let error = Error::Server {
                name: self.name.clone(),
                action: "VERSION_EXISTS".into(),
                reason: Some(format!(
                    "the server refused this write {} times while the record stayed at version {version}; \
                     its write queue for the record looks stuck",
                    MAX_STALLED_ROUNDS + 1
                )),
            };
            tracing::warn!("{error}");
            for op in self.ops.drain(..) {
                fx.resolve(op.waiters, Err(error.clone()));
            }
            self.last_round = None;
            self.stalled = 0;
            self.server_version = version;
            self.server_data = data;
            self.recompute_local();
            return;
        }
        let unchanged = version == self.server_version && data == self.server_data;
        if unchanged || self.ops.iter().all(|op| op.rebase) {
            // Nobody wrote since our last confirmed state, or our writes apply to whatever
            // the value is (set_data): they go on top of the server's value.
            self.server_version = version;
            self.server_data = data;
            self.rebase_all(connected, fx);
            return;
        }

        // The record moved on without our writes: the merge strategy decides.
        let local = std::mem::take(&mut self.local);
        let merged = strategy.merge(&Conflict {
            name: &self.name,
            local: &local,
            remote: &data,
            remote_version: version.max(0) as u64,
        });
        self.server_version = version;
        self.server_data = data;
        if merged == self.server_data || !(merged.is_object() || merged.is_array()) {
            if !(merged.is_object() || merged.is_array()) {
                tracing::warn!(
                    record = %self.name,
                    "the merge strategy returned neither an object nor an array: keeping the server's value"
                );
            }
            // The server's value wins: our writes are dropped, except set_data writes,
            // which apply on top of it.
            let outcome = if local == self.server_data {
                Ok(())
            } else {
                Err(Error::Conflict {
                    name: self.name.clone(),
                })
            };
            let (kept, dropped): (VecDeque<Op>, VecDeque<Op>) =
                self.ops.drain(..).partition(|op| op.rebase);
            fx.resolve(
                dropped.into_iter().flat_map(|op| op.waiters).collect(),
                outcome,
            );
            self.ops = kept;
            self.rebase_all(connected, fx);
        } else {
            let waiters: Vec<AckWaiter> = self.ops.drain(..).flat_map(|op| op.waiters).collect();
            self.ops.push_back(Op {
                change: WriteOp::Update { data: merged },
                state: OpState::Unsent,
                waiters,
                rebase: false,
            });
            self.recompute_local();
            if connected {
                self.send_unsent(fx);
            }
        }
    }

    /// Sends every pending write again, on top of the server's value.
    fn rebase_all(&mut self, connected: bool, fx: &mut Effects) {
        for op in &mut self.ops {
            op.state = OpState::Unsent;
        }
        self.recompute_local();
        if connected {
            self.send_unsent(fx);
        }
    }

    fn recompute_local(&mut self) {
        let mut local = self.server_data.clone();
        for op in &self.ops {
            op.change.apply(&mut local);
        }
        self.local = local;
        self.rev += 1;
    }
}

/// Correlation ids, unique for the life of the process.
pub(crate) fn next_correlation_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}

/// The wire message of a record write, always asking for an acknowledgement.
fn write_message(name: &str, change: &WriteOp, version: i64, cid: &str) -> RecordMessage {
    let mut m = change_message(name, change, false);
    m.version = Some(version_on_wire(version));
    m.is_write_ack = Some(true);
    m.correlation_id = Some(cid.to_owned());
    m
}

/// UPDATE / PATCH / ERASE (or, for `create`, deepstream's `setData` forms CREATEANDUPDATE
/// and CREATEANDPATCH) carrying `change`.
pub(crate) fn change_message(name: &str, change: &WriteOp, create: bool) -> RecordMessage {
    let (action, path, data) = match change {
        WriteOp::Update { data } => (
            if create {
                RecordAction::CreateAndUpdate
            } else {
                RecordAction::Update
            },
            None,
            Some(data.to_string()),
        ),
        WriteOp::Patch { path, data } => (
            if create {
                RecordAction::CreateAndPatch
            } else {
                RecordAction::Patch
            },
            Some(path.clone()),
            Some(data.to_string()),
        ),
        WriteOp::Erase { path } => (RecordAction::Erase, Some(path.clone()), None),
        WriteOp::PatchMulti { patches } => (
            RecordAction::PatchMulti,
            None,
            Some(serde_json::to_string(patches).expect("patches serialise")),
        ),
    };
    RecordMessage {
        path,
        data,
        ..RecordMessage::named(action, name)
    }
}

/// The change an incoming UPDATE / PATCH / ERASE / PATCH_MULTI carries, or why it
/// cannot be read.
pub(crate) fn remote_change(m: &RecordMessage, action: RecordAction) -> Result<WriteOp, String> {
    let data = || -> Result<Value, String> {
        let text = m.data.as_deref().ok_or("no data")?;
        // Values nest up to recordsync_core::json::MAX_DEPTH levels, past serde_json's
        // own limit of 128.
        recordsync_core::json::parse(text).map_err(|e| e.to_string())
    };
    let path = m.path.clone().filter(|p| !p.is_empty());
    Ok(match (action, path) {
        (RecordAction::Erase, Some(path)) => WriteOp::Erase { path },
        // deepstream fans an ERASE out as a PATCH without data.
        (RecordAction::Patch, Some(path)) if m.data.is_none() => WriteOp::Erase { path },
        (RecordAction::PatchMulti, _) => WriteOp::PatchMulti {
            // `[{"path": ..., "data": ...}]`: the data sits two levels down.
            patches: recordsync_core::json::parse_within(
                m.data.as_deref().ok_or("no data")?,
                recordsync_core::json::MAX_DEPTH + 2,
            )
            .map_err(|e| e.to_string())?,
        },
        (_, Some(path)) => WriteOp::Patch {
            path,
            data: data()?,
        },
        (_, None) => WriteOp::Update { data: data()? },
    })
}

pub(crate) fn version_on_wire(version: i64) -> i32 {
    i32::try_from(version).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests;
