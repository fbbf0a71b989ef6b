//! The write pipeline: a write is checked against the record's newest accepted state
//! under the cell's lock, submitted to the group committer in that same critical
//! section (so the commit queue's order is the record's version order), and published
//! and answered by its commit callback ([`WriteCommit`]) once the store has it.

use std::sync::Arc;

use serde_json::Value;

use recordsync_core::{Record, WriteOp, record::WriteError};
use recordsync_store::{JournalEntry, StoreError, StoredRecord, Write, WriteOutcome};

use crate::cell::{Cell, CellState, Head, Visible};
use crate::event::{Change, EventKind, RecordEvent};
use crate::retry::{PendingWrite, Queued, Settled};
use crate::{Engine, WriteDone, WriteFailure, now_ms};

impl Engine {
    /// How often a write may lose the race for its version to another node, each time
    /// tried again on the state reloaded from the store. Each lost race means a write of
    /// another node's landed in between (or this node's create of the record lost), so a
    /// write that loses this often meets sustained contention, and is refused rather than
    /// tried forever.
    const MAX_LOST_RACES: u32 = 64;

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
            let PendingWrite {
                ref op, version, ..
            } = write;
            let now = now_ms();
            if st.head.is_none() {
                // deepstream writes to a record nobody created as if it were `{}` at version 0.
                st.head = Some(Head {
                    record: Record::empty(now),
                    json: Arc::from("{}"),
                    stored: false,
                });
            }
            let head = st.head.as_mut().expect("set above");
            let base = head.record.version;
            let mut record = head.record.clone();
            let new_version = match record.write(op, version, now) {
                Ok(v) => v,
                Err(WriteError::VersionExists { .. }) => {
                    // The writer must hear of every write before this refusal first: a
                    // deepstream client merges against the state it has been sent.
                    let done = write.done;
                    st.after_in_flight(Box::new(move |visible| {
                        let (version, data) =
                            visible.map_or((0, Arc::from("{}")), |v| (v.version, v.json.clone()));
                        done.answer(Err(WriteFailure::VersionExists { version, data }));
                    }));
                    return;
                }
                Err(WriteError::InvalidVersion { requested, current }) => {
                    drop(st);
                    return write
                        .done
                        .answer(Err(WriteFailure::InvalidVersion { requested, current }));
                }
                Err(WriteError::Op(e)) => {
                    drop(st);
                    return write.done.answer(Err(e.into()));
                }
            };
            let json: Arc<str> = value_json(op, &record.data);
            let change = change_of(op, &json);
            let op_json = serde_json::to_string(op).expect("ops serialise");
            // Other nodes get the op as the journal has it; only clusters pay for the copy.
            let announced_op = self.cluster.get().map(|_| op_json.clone());
            let stored = Write::Put {
                record: StoredRecord {
                    name: cell.name.to_string(),
                    version: new_version,
                    data: json.to_string(),
                    ctime: record.ctime,
                    mtime: record.mtime,
                },
                base_version: head.stored.then_some(base),
                entry: Some(JournalEntry {
                    version: new_version,
                    time: now,
                    op: op_json,
                }),
            };
            *head = Head {
                record,
                json: json.clone(),
                stored: true,
            };
            st.submitted += 1;
            let commit = WriteCommit {
                engine: self.self_ref(),
                cell: cell.clone(),
                write,
                settled,
                version: new_version,
                json,
                change,
                announced_op,
            };
            self.committer
                .submit(stored, Box::new(move |outcome| commit.finish(outcome)));
            drop(st);
            drop(held);
        })
    }

    /// [`delete`](Self::delete); `settled`, given for a delete taken from the record's
    /// queue of writes to try again (see [`retry`]), is dropped once it is committed or
    /// refused.
    pub(crate) async fn delete_now(
        &self,
        deleter: u64,
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
            st.queue(seq, Queued::Delete { deleter, done });
            return;
        }
        let Some(head) = st.head.take() else {
            drop(st);
            return done.answer(Ok(0));
        };
        let version = head.record.version;
        // Only those subscribed now are told and unsubscribed: a client that subscribes
        // after this point re-creates the record and keeps its subscription.
        let told: Vec<u64> = st.subscribers.iter().map(|s| s.id()).collect();
        st.submitted += 1;
        let engine = self.self_ref();
        let engine_cell = cell.clone();
        self.committer.submit(
            Write::Delete { name: cell.name.to_string(), base_version: version },
            Box::new(move |outcome| {
                let result = {
                    let mut st = engine_cell.state.lock();
                    let result = match outcome {
                        Ok(WriteOutcome::Committed) => {
                            if st.head.is_none() {
                                st.visible = None;
                            }
                            let event = RecordEvent::new(engine_cell.name.clone(), EventKind::Deleted);
                            for s in st.subscribers.iter().filter(|s| told.contains(&s.id())) {
                                if s.id() != deleter {
                                    s.deliver(&event);
                                }
                            }
                            let had = !st.subscribers.is_empty();
                            st.subscribers.retain(|s| !told.contains(&s.id()));
                            if let Some(engine) = &engine {
                                engine.announce(&engine_cell.name, version, None, true);
                            }
                            if let (true, true, Some(engine)) = (had, st.subscribers.is_empty(), &engine) {
                                engine.listening.record_unsubscribed(&engine_cell.name);
                            }
                            Ok(version)
                        }
                        Ok(WriteOutcome::Conflict { current }) => {
                            st.loaded = false;
                            let msg = format!("another writer changed the record first (stored version {current:?})");
                            Err(WriteFailure::NotStored(msg))
                        }
                        Err(e) => {
                            st.loaded = false;
                            Err(WriteFailure::NotStored(e.to_string()))
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
        st.head = Some(Head {
            record: Record::empty(now),
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
                    version: 0,
                    data: "{}".into(),
                    ctime: now,
                    mtime: now,
                },
                base_version: None,
                entry: None,
            },
            Box::new(move |outcome| {
                let mut refetch = false;
                let result = {
                    let mut st = cell.state.lock();
                    let result = match outcome {
                        Ok(WriteOutcome::Committed) => {
                            st.visible = Some(Visible {
                                version: 0,
                                json: Arc::from("{}"),
                            });
                            if let Some(engine) = &engine {
                                engine.announce(&cell.name, 0, None, false);
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
    version: u64,
    /// The value after the write, as JSON text.
    json: Arc<str>,
    change: Change,
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
            change,
            announced_op,
        } = self;
        let mut st = cell.state.lock();
        let result = match outcome {
            Ok(WriteOutcome::Committed) => {
                st.visible = Some(Visible { version, json });
                let event =
                    RecordEvent::new(cell.name.clone(), EventKind::Changed { version, change });
                st.publish(&event, Some(write.writer));
                if let Some(engine) = &engine {
                    engine.announce(&cell.name, version, announced_op.as_deref(), false);
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
                    Err(WriteFailure::NotStored(
                        "the server is shutting down".into(),
                    ))
                }
            }
            Err(e) => {
                st.loaded = false;
                Err(WriteFailure::NotStored(e.to_string()))
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

/// The record's value as JSON text after `op`: a whole-value write is serialised as the
/// client sent it, anything else from the applied value.
pub(crate) fn value_json(op: &WriteOp, applied: &Value) -> Arc<str> {
    match op {
        WriteOp::Update { data } => Arc::from(data.to_string()),
        _ => Arc::from(applied.to_string()),
    }
}

/// What subscribers are sent for a committed `op`, `whole` being the value after it.
///
/// A PATCH_MULTI goes out as the whole value: deepstream's SDKs (the JS client 7.0.5
/// among them) do not know the action and drop it, so a subscriber would keep the old
/// value until some later change made it re-read; every client applies an UPDATE.
pub(crate) fn change_of(op: &WriteOp, whole: &Arc<str>) -> Change {
    match op {
        WriteOp::Update { .. } | WriteOp::PatchMulti { .. } => Change::Whole(whole.clone()),
        WriteOp::Patch { path, data } => Change::Patch {
            path: path.clone(),
            data: data.to_string(),
        },
        WriteOp::Erase { path } => Change::Erase { path: path.clone() },
    }
}
