//! The write pipeline: a write is checked against the record's newest accepted state
//! under the cell's lock, submitted to the group committer in that same critical
//! section (so the commit queue's order is the record's version order), and published
//! and answered by its commit callback ([`WriteCommit`]) once the store has it.

use std::sync::Arc;

use serde_json::Value;

use recordsync_core::JournalError;
use recordsync_core::{JournalOp, Record, VersionCheck, WriteError, WriteOp, check_version};
use recordsync_store::{JournalEntry, Origin, StoreError, StoredRecord, Write, WriteOutcome};

use crate::cell::{Cell, CellState, Head, Visible};
use crate::event::{EventKind, RecordEvent};
use crate::journal;
use crate::request::{Base, OnStale};
use crate::retry::{PendingWrite, Queued, Settled};
use crate::versions::EngineVersion;
use crate::{Engine, EngineError, WriteDone, WriteFailure, now_ms};

impl Engine {
    /// How often a write may lose the race for its version to another node, each time
    /// tried again on the state reloaded from the store. Each lost race means a write of
    /// another node's landed in between (or this node's create of the record lost), so a
    /// write that loses this often meets sustained contention, and is refused rather than
    /// tried forever.
    pub(crate) const MAX_LOST_RACES: u32 = 64;

    /// Checks `write` against the record and submits it (or refuses it). A write that
    /// arrives while the record's writes are being tried again queues behind them, and
    /// one that loses the race for its version is queued to be tried again (see
    /// [`retry`]); `settled`, given for a write taken from that queue, is dropped once it
    /// is committed, refused or queued again.
    ///
    /// Boxed: its commit callback may start the queue's task, which runs this again.
    pub(crate) fn write_attempt<'a>(
        &'a self,
        name: &'a str,
        mut write: PendingWrite,
        settled: Option<Settled>,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let held = match self.acquire_loaded(name).await {
                Ok(held) => held,
                Err(e) => return write.done.answer(Err(e.into())),
            };
            let cell = held.cell.clone();
            let mut st = cell.state.lock();
            if write.seq.is_none() {
                let seq = st.arrive();
                write.seq = Some(seq);
                if let Some(queue) = &mut st.retries {
                    // Earlier writes are being tried again: this one must not overtake.
                    queue.insert(seq, Queued::Write(write));
                    return;
                }
            }
            let now = now_ms();
            let next_create = st.next_create();
            if st.head.is_none() && write.request.on_stale == OnStale::Transform {
                // A transforming front door (ShareDB) brings a document into being with a
                // create, never by writing to it. A write based on a version before the
                // record's delete is stale, and transformed: it meets the delete and is
                // refused (`LifeEnded`).
                if let (Base::At(base), Some(tomb), JournalOp::Json0 { ops }) =
                    (write.request.base, st.tomb, &write.request.op)
                    && base < tomb
                {
                    let ops = ops.clone();
                    drop(st);
                    drop(held);
                    return self.spawn_transform(cell.name.clone(), base, ops, write, settled);
                }
                if let Base::At(base) = write.request.base
                    && base >= next_create
                    && !write.reloaded
                {
                    drop(st);
                    drop(held);
                    return self.behind_the_store(&cell, write, settled);
                }
                drop(st);
                return write
                    .done
                    .answer(Err(WriteFailure::Missing { next_create }));
            }
            if st.head.is_none() {
                // deepstream writes to a record nobody created as if it were `{}` at
                // version 0: the write creates it, and its create is journaled with it.
                st.head = Some(Head {
                    record: Record::empty(now),
                    created: next_create,
                    json: Arc::from("{}"),
                    stored: false,
                });
            }
            let base_stored = st.stored_base();
            let head = st.head.as_mut().expect("set above");
            let created = head.created;
            let current = head.version();
            let request = &write.request;
            // The value the op applies to, for front doors that render it (see `EventKind`).
            let before = head.json.clone();
            let creates = !head.stored;
            let mut record = head.record.clone();
            let checked = requested_in_life(request.base, current)
                .map_err(Refusal::Version)
                .and_then(|requested| apply_op(&mut record, &request.op, requested, now));
            let life = match checked {
                Ok(v) => v,
                Err(Refusal::Version(WriteError::VersionExists { .. }))
                    if request.on_stale == OnStale::Transform
                        && let (Base::At(base), JournalOp::Json0 { ops }) =
                            (request.base, &request.op) =>
                {
                    // Transformed against what was committed since its base, then tried
                    // again on the result (see `transform`).
                    let ops = ops.clone();
                    drop(st);
                    drop(held);
                    return self.spawn_transform(cell.name.clone(), base, ops, write, settled);
                }
                Err(Refusal::Version(WriteError::VersionExists { .. })) => {
                    // The writer must hear of every write before this refusal first: a
                    // deepstream client merges against the state it has been sent.
                    let done = write.done;
                    st.after_in_flight(Box::new(move |visible| {
                        let (version, data) = visible.map_or(
                            (
                                EngineVersion::new(next_create, next_create),
                                Arc::from("{}"),
                            ),
                            |v| (v.version, v.json.clone()),
                        );
                        done.answer(Err(WriteFailure::VersionExists { version, data }));
                    }));
                    return;
                }
                Err(Refusal::Version(WriteError::InvalidVersion { .. }))
                    if request.on_stale == OnStale::Transform && !write.reloaded =>
                {
                    drop(st);
                    drop(held);
                    return self.behind_the_store(&cell, write, settled);
                }
                Err(Refusal::Version(WriteError::InvalidVersion { requested, .. })) => {
                    drop(st);
                    return write
                        .done
                        .answer(Err(WriteFailure::InvalidVersion { requested, current }));
                }
                Err(Refusal::Version(WriteError::Op(e))) => {
                    drop(st);
                    return write.done.answer(Err(e.into()));
                }
                Err(Refusal::Version(e)) => {
                    // A kind of refusal the core added after this match was written.
                    drop(st);
                    return write.done.answer(Err(WriteFailure::Refused(e)));
                }
                Err(Refusal::Op(e)) => {
                    drop(st);
                    return write.done.answer(Err(WriteFailure::Rejected(Arc::new(e))));
                }
                Err(Refusal::NotAWrite(op)) => {
                    drop(st);
                    return write.done.answer(Err(WriteFailure::NotAWrite { op }));
                }
            };
            let new_version = EngineVersion::new(created + life, created);
            let op = &request.op;
            let json: Arc<str> = value_json(op, &record.data);
            let op_json = op.to_journal();
            // Other nodes get the op as the journal has it; only clusters pay for the copy.
            let announced_op = self.cluster.get().map(|_| op_json.clone());
            let author = request.author.as_deref().map(str::to_owned);
            let mut entries = Vec::with_capacity(2);
            if !head.stored {
                entries.push(journal::create(created, now, author.clone()));
            }
            entries.push(JournalEntry {
                version: new_version.version,
                time: now,
                op: op_json,
                author,
                origin: request.origin.clone(),
            });
            let stored = Write::Put {
                record: StoredRecord {
                    name: cell.name.to_string(),
                    version: new_version.version,
                    created,
                    deleted: false,
                    data: json.to_string(),
                    ctime: record.ctime,
                    mtime: record.mtime,
                },
                base_version: base_stored,
                entries,
            };
            *head = Head {
                record,
                created,
                json: json.clone(),
                stored: true,
            };
            st.tomb = None;
            st.submitted += 1;
            let commit = WriteCommit {
                engine: self.self_ref(),
                cell: cell.clone(),
                write,
                settled,
                version: new_version,
                json,
                before,
                creates,
                announced_op,
            };
            self.committer
                .submit(stored, Box::new(move |outcome| commit.finish(outcome)));
            drop(st);
            drop(held);
        })
    }

    /// Tries `write` again on the record reloaded from the store: it names a version after
    /// the newest this node holds. A client can know of versions this node has not heard
    /// of yet (it reconnected from another node, or a transform read ops from the store
    /// that other nodes' announcements have not brought here yet); the store, not this
    /// node's copy, decides whether the version is really newer than the document's.
    ///
    /// Like a transform, it runs in a task of its own, so that the write pipeline never
    /// waits for a reload.
    fn behind_the_store(
        &self,
        cell: &Arc<Cell>,
        mut write: PendingWrite,
        settled: Option<Settled>,
    ) {
        cell.state.lock().invalidate();
        write.reloaded = true;
        if let Some(engine) = self.self_ref() {
            let name = cell.name.clone();
            tokio::spawn(async move {
                engine.write_attempt(&name, write, settled).await;
            });
        }
    }

    /// Hands a stale json0 write to a task that transforms it and tries it again (see
    /// `transform`).
    fn spawn_transform(
        &self,
        name: Arc<str>,
        base: u64,
        ops: recordsync_core::json0::Op,
        write: PendingWrite,
        settled: Option<Settled>,
    ) {
        if let Some(engine) = self.self_ref() {
            tokio::spawn(async move {
                engine
                    .transform_stale(&name, base, ops, write, settled)
                    .await;
            });
        }
    }

    /// [`delete`](Self::delete); `settled`, given for a delete taken from the record's
    /// queue of writes to try again (see [`retry`]), is dropped once it is committed or
    /// refused. With `expected`, the delete applies only to the record at that engine
    /// version, and is refused otherwise (see [`Engine::delete_at`]).
    #[allow(
        clippy::too_many_arguments,
        reason = "the delete's parts, passed on as they are"
    )]
    pub(crate) async fn delete_now(
        &self,
        deleter: u64,
        author: Option<Arc<str>>,
        origin: Option<Origin>,
        expected: Option<u64>,
        name: &str,
        done: WriteDone,
        settled: Option<Settled>,
    ) {
        let held = match self.acquire_loaded(name).await {
            Ok(held) => held,
            Err(e) => return done.answer(Err(e.into())),
        };
        let cell = held.cell.clone();
        let mut st = cell.state.lock();
        if settled.is_none() && st.retries.is_some() {
            // Earlier writes are being tried again: the delete must not overtake them.
            let seq = st.arrive();
            st.queue(
                seq,
                Queued::Delete {
                    deleter,
                    author,
                    origin,
                    expected,
                    done,
                },
            );
            return;
        }
        let next_create = st.next_create();
        let now = now_ms();
        if let Some(expected) = expected {
            let at = st
                .head
                .as_ref()
                .filter(|head| head.stored)
                .map(|head| head.version().version);
            if at != Some(expected) {
                // Refused with the committed state, after the writes before this delete,
                // as a stale write is (the writer learns of every write before it).
                st.after_in_flight(Box::new(move |visible| {
                    done.answer(Err(match visible {
                        Some(v) => WriteFailure::VersionExists {
                            version: v.version,
                            data: v.json.clone(),
                        },
                        None => WriteFailure::Missing { next_create },
                    }));
                }));
                return;
            }
        }
        // What is deleted: the head's life, or (a client op's delete of a missing record,
        // which ShareDB counts as a version) nothing, whose tombstone is journaled where
        // the next life would begin.
        let (deleted, tomb, ctime, base_version) = match st.head.take() {
            Some(head) if !head.stored => {
                drop(st);
                return done.answer(Ok(head.version()));
            }
            Some(head) => {
                let deleted = head.version();
                let base = Some(deleted.version);
                (deleted, deleted.version + 1, head.record.ctime, base)
            }
            None if origin.is_some() => {
                let tomb = EngineVersion::new(next_create, next_create);
                (tomb, next_create, now, st.tomb)
            }
            None => {
                // Nothing to delete: it succeeds, as in deepstream, and journals nothing.
                drop(st);
                return done.answer(Ok(EngineVersion::new(next_create, next_create)));
            }
        };
        st.tomb = Some(tomb);
        // Only those subscribed now are told and unsubscribed: a client that subscribes
        // after this point re-creates the record and keeps its subscription.
        let told: Vec<u64> = st.subscribers.iter().map(|s| s.id()).collect();
        st.submitted += 1;
        let engine = self.self_ref();
        let engine_cell = cell.clone();
        let tombstone = Write::Put {
            record: StoredRecord {
                name: cell.name.to_string(),
                version: tomb,
                created: deleted.created,
                deleted: true,
                data: "null".into(),
                ctime,
                mtime: now,
            },
            base_version,
            entries: vec![journal::delete(
                tomb,
                now,
                author.as_deref().map(str::to_owned),
                origin.clone(),
            )],
        };
        self.committer.submit(
            tombstone,
            Box::new(move |outcome| {
                let result = {
                    let mut st = engine_cell.state.lock();
                    let result = match outcome {
                        Ok(WriteOutcome::Committed) => {
                            if st.head.is_none() {
                                st.visible = None;
                            }
                            let event = RecordEvent::with_origin(
                                engine_cell.name.clone(),
                                EventKind::Deleted { tomb: Some(tomb) },
                                origin.clone(),
                            );
                            for s in st.subscribers.iter().filter(|s| told.contains(&s.id())) {
                                if s.id() != deleter {
                                    s.deliver(&event);
                                }
                            }
                            let had = !st.subscribers.is_empty();
                            st.subscribers
                                .retain(|s| !told.contains(&s.id()) || s.survives_delete());
                            if let Some(engine) = &engine {
                                engine.announce(
                                    &engine_cell.name,
                                    EngineVersion::new(tomb, deleted.created),
                                    None,
                                    true,
                                    origin.as_ref(),
                                );
                            }
                            if let (true, true, Some(engine)) =
                                (had, st.subscribers.is_empty(), &engine)
                            {
                                engine.listening.unsubscribed(&engine_cell.name);
                            }
                            Ok(deleted)
                        }
                        Ok(WriteOutcome::Conflict { current }) => {
                            st.loaded = false;
                            Err(WriteFailure::Conflict { stored: current })
                        }
                        Err(e) => {
                            st.loaded = false;
                            Err(WriteFailure::NotStored(e))
                        }
                    };
                    st.complete_one();
                    result
                };
                done.answer(result);
                if let Some(engine) = engine {
                    engine.evict_if_idle(&engine_cell);
                }
                drop(settled);
            }),
        );
    }

    /// Creates `{}` at version 0 (deepstream's record created by subscribing) and stores it.
    ///
    /// It is accepted at once (`head`: later writes build on it) and visible once
    /// committed, like any write. `stored` is told the outcome: `Ok` when the record was
    /// stored, or another node had created it first (the cell then reloads it), `Err` when
    /// the store failed.
    pub(crate) fn create_empty(
        &self,
        cell: &Arc<Cell>,
        st: &mut CellState,
        stored: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
    ) {
        let now = now_ms();
        let created = st.next_create();
        let base_version = st.tomb;
        st.head = Some(Head {
            record: Record::empty(now),
            created,
            json: Arc::from("{}"),
            stored: true,
        });
        st.submitted += 1;
        let engine = self.self_ref();
        let cell = cell.clone();
        self.committer.submit(
            Write::Put {
                record: StoredRecord {
                    name: cell.name.to_string(),
                    version: created,
                    created,
                    deleted: false,
                    data: "{}".into(),
                    ctime: now,
                    mtime: now,
                },
                base_version,
                entries: vec![journal::create(created, now, None)],
            },
            Box::new(move |outcome| {
                let mut refetch = false;
                let result = {
                    let mut st = cell.state.lock();
                    let result = match outcome {
                        Ok(WriteOutcome::Committed) => {
                            let version = EngineVersion::new(created, created);
                            st.visible = Some(Visible {
                                version,
                                json: Arc::from("{}"),
                            });
                            st.publish(&created_event(&cell.name, version, None, None), None);
                            if let Some(engine) = &engine {
                                engine.announce(&cell.name, version, None, false, None);
                            }
                            Ok(())
                        }
                        Ok(WriteOutcome::Conflict { .. }) => {
                            // Another node created it first: take its state from the store.
                            st.loaded = false;
                            refetch = true;
                            Ok(())
                        }
                        Err(e) => {
                            tracing::warn!(record = %cell.name, "creating an empty record failed: {e}");
                            st.loaded = false;
                            Err(e)
                        }
                    };
                    st.complete_one();
                    result
                };
                let _ = stored.send(result);
                if let Some(engine) = engine {
                    if refetch {
                        engine.refetch(&cell.name);
                    }
                    engine.evict_if_idle(&cell);
                }
            }),
        );
    }
}

/// A submitted write's commit callback: what it needs once the store has answered.
///
/// The group committer runs callbacks in the order writes were submitted, and a
/// record's writes are submitted under its cell's lock in the order they were accepted:
/// so these run in the record's version order. That is why publishing here gives every
/// subscriber the versions in order, and why replies that must not overtake the writes
/// in flight when they were decided (a VERSION_EXISTS, a read of one's own writes) are
/// queued in the cell and released by [`CellState::complete_one`] as each commit lands:
/// a client then hears of every earlier write before the reply.
struct WriteCommit {
    engine: Option<Arc<Engine>>,
    cell: Arc<Cell>,
    write: PendingWrite,
    /// Given for a write taken from the record's queue of writes to try again; dropped
    /// once this one is committed, refused or queued again (see `retry`).
    settled: Option<Settled>,
    version: EngineVersion,
    /// The value after the write, as JSON text.
    json: Arc<str>,
    /// The value the write applied to.
    before: Arc<str>,
    /// Whether the write also created the record (its create is journaled with it).
    creates: bool,
    /// The op as the journal has it, for other nodes (only in a cluster).
    announced_op: Option<String>,
}

impl WriteCommit {
    /// Makes the write visible and publishes it, or queues it to be tried again after a
    /// lost race, or refuses it; then answers its writer.
    fn finish(self, outcome: Result<WriteOutcome, StoreError>) {
        let WriteCommit {
            engine,
            cell,
            mut write,
            settled,
            version,
            json,
            before,
            creates,
            announced_op,
        } = self;
        let mut st = cell.state.lock();
        let result = match outcome {
            Ok(WriteOutcome::Committed) => {
                st.visible = Some(Visible {
                    version,
                    json: json.clone(),
                });
                // The write is settled: its op moves into the event (a lost race keeps it
                // for the next attempt instead).
                let op = std::mem::replace(&mut write.request.op, JournalOp::Delete);
                let writer = Some(write.request.writer);
                if creates {
                    let create = EngineVersion::new(version.created, version.created);
                    st.publish(&created_event(&cell.name, create, None, None), writer);
                }
                let kind = EventKind::Changed {
                    version,
                    op: Some(Arc::new(op)),
                    value: json,
                    before: Some(before),
                };
                let event =
                    RecordEvent::with_origin(cell.name.clone(), kind, write.request.origin.clone());
                st.publish(&event, Some(write.request.writer));
                if let Some(engine) = &engine {
                    engine.announce(
                        &cell.name,
                        version,
                        announced_op.as_deref(),
                        false,
                        write.request.origin.as_ref(),
                    );
                }
                Ok(version)
            }
            Ok(WriteOutcome::Conflict { .. }) => {
                // Another node wrote first, or an earlier write this one was queued
                // behind (say, this node's create of the record) lost. Tried again on
                // the stored state: it succeeds if it still applies, and otherwise is
                // refused exactly as on one node, after the winner has been published
                // here.
                st.loaded = false;
                write.lost += 1;
                if write.lost >= Engine::MAX_LOST_RACES {
                    Err(WriteFailure::Contended {
                        attempts: write.lost,
                    })
                } else if let Some(engine) = &engine {
                    st.complete_one();
                    engine.retry_later(&cell, &mut st, write);
                    return; // `settled` is dropped now that it is queued
                } else {
                    Err(WriteFailure::Engine(EngineError::Shutdown))
                }
            }
            Err(e) => {
                st.loaded = false;
                Err(WriteFailure::NotStored(e))
            }
        };
        st.complete_one();
        drop(st);
        let committed = result.is_ok();
        write.done.answer(result);
        if let (true, Some(engine)) = (committed, engine) {
            engine.evict_if_idle(&cell);
        }
        drop(settled);
    }
}

/// The event of a record's create at `version`, with `data` (`None`: deepstream's `{}`).
pub(crate) fn created_event(
    name: &Arc<str>,
    version: EngineVersion,
    data: Option<(Value, Arc<str>)>,
    origin: Option<Origin>,
) -> Arc<RecordEvent> {
    let (data, value) =
        data.unwrap_or_else(|| (Value::Object(Default::default()), Arc::from("{}")));
    RecordEvent::with_origin(
        name.clone(),
        EventKind::Changed {
            version,
            op: Some(Arc::new(JournalOp::Create { data })),
            value,
            before: None,
        },
        origin,
    )
}

/// The version of the current life a write based on `base` produces, by deepstream's
/// rules (`recordsync_core::version`), for a record at `current`; or why it cannot be
/// applied (its numbers as the base named them).
fn requested_in_life(base: Base, current: EngineVersion) -> Result<i64, WriteError> {
    let as_named = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    match base {
        Base::Next => Ok(-1),
        Base::Produces(requested) => Ok(requested),
        Base::At(v) if v == current.version => Ok(as_named(current.in_life() + 1)),
        Base::At(v) if v < current.version => Err(WriteError::VersionExists {
            requested: as_named(v),
            current: current.in_life(),
        }),
        Base::At(v) => Err(WriteError::InvalidVersion {
            requested: as_named(v),
            current: current.in_life(),
        }),
    }
}

/// Why a write was refused before it was accepted.
pub(crate) enum Refusal {
    /// By the version rules, or as an invalid path write.
    Version(WriteError),
    /// A json0 op that does not apply.
    Op(JournalError),
    /// A create or delete sent as a write.
    NotAWrite(&'static str),
}

/// Applies `op` to `record` as the write producing version `requested` of its life
/// (deepstream's rules, `recordsync_core::version`). Returns the new version in the life.
pub(crate) fn apply_op(
    record: &mut Record,
    op: &JournalOp,
    requested: i64,
    now: u64,
) -> Result<u64, Refusal> {
    match op {
        JournalOp::Write(op) => record.write(op, requested, now).map_err(Refusal::Version),
        JournalOp::Json0 { .. } => {
            let current = record.version;
            let version = match check_version(current, requested) {
                VersionCheck::Accept(v) => v,
                VersionCheck::Exists => {
                    return Err(Refusal::Version(WriteError::VersionExists {
                        requested,
                        current,
                    }));
                }
                VersionCheck::Invalid => {
                    return Err(Refusal::Version(WriteError::InvalidVersion {
                        requested,
                        current,
                    }));
                }
            };
            op.validate().map_err(Refusal::Op)?;
            let mut value = Some(std::mem::take(&mut record.data));
            let applied = op.apply(&mut value);
            record.data = value.expect("a json0 op keeps the record");
            applied.map_err(Refusal::Op)?;
            record.version = version;
            record.mtime = now;
            Ok(version)
        }
        JournalOp::Create { .. } | JournalOp::Delete => Err(Refusal::NotAWrite(op.kind())),
    }
}

/// The record's value as JSON text after `op`: a whole-value write is serialised as the
/// client sent it, anything else from the applied value.
pub(crate) fn value_json(op: &JournalOp, applied: &Value) -> Arc<str> {
    match op {
        JournalOp::Write(WriteOp::Update { data }) => Arc::from(data.to_string()),
        _ => Arc::from(applied.to_string()),
    }
}
