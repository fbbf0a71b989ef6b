//! Creating a record with a value of its own: ShareDB's create op (`{create: {type,
//! data}}`), which brings a document into being in one version, unlike deepstream's
//! records that begin as `{}` (`Engine::subscribe`, or a first write).
//!
//! A create is journaled as [`JournalOp::Create`] with its data and its origin, so a
//! resubmitted create is recognisable in the journal as a resubmitted op is. It is
//! published to the record's subscribers as the create's event
//! ([`EventKind::Changed`](crate::EventKind) with a create op).

use std::sync::Arc;

use serde_json::Value;

use recordsync_core::{JournalOp, Record, Version};
use recordsync_store::{JournalEntry, Origin, StoredRecord, Write, WriteOutcome};

use crate::cell::{Head, Visible};
use crate::versions::EngineVersion;
use crate::write::created_event;
use crate::{Engine, WriteDone, WriteFailure, now_ms};

/// A create with data.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// The subscriber that sent it, which is not sent its own create back.
    pub writer: u64,
    /// The record's first value (any JSON value).
    pub data: Value,
    /// The engine version the create must have (ShareDB: the document's version the op
    /// was built on), or `None` for whatever the record's next life begins at.
    pub at: Option<Version>,
    /// The authenticated user id, kept in the journal entry.
    pub author: Option<Arc<str>>,
    /// The client op this is (ShareDB's `src`, `seq`).
    pub origin: Option<Origin>,
}

impl Engine {
    /// Creates `name` with `request.data`. `done` is answered once: with the create's
    /// version after the durable commit, or [`WriteFailure::Exists`] (the record exists),
    /// [`WriteFailure::Missing`] (`request.at` is not where the record's next life begins:
    /// it names `next_create`), [`WriteFailure::Rejected`] (the data nests too deeply),
    /// or a storage failure.
    ///
    /// Not while the record's writes are being tried again after lost races (a cluster
    /// under contention): the create would overtake them, so it is refused
    /// [`WriteFailure::Contended`] and may be sent again.
    pub async fn create(&self, name: &str, request: CreateRequest, done: WriteDone) {
        let op = JournalOp::Create { data: request.data };
        if let Err(e) = op.validate() {
            return done.answer(Err(WriteFailure::Rejected(Arc::new(e))));
        }
        let JournalOp::Create { data } = op else {
            unreachable!("built as a create above")
        };
        let held = match self.acquire_loaded(name).await {
            Ok(held) => held,
            Err(e) => return done.answer(Err(e.into())),
        };
        let cell = held.cell.clone();
        let mut st = cell.state.lock();
        if st.retries.is_some() {
            drop(st);
            return done.answer(Err(WriteFailure::Contended { attempts: 0 }));
        }
        if let Some(head) = &st.head {
            let version = head.version();
            drop(st);
            return done.answer(Err(WriteFailure::Exists { version }));
        }
        let created = st.next_create();
        if request.at.is_some_and(|at| at != created) {
            drop(st);
            return done.answer(Err(WriteFailure::Missing {
                next_create: created,
            }));
        }
        let now = now_ms();
        let json: Arc<str> = Arc::from(data.to_string());
        let base_version = st.tomb;
        let entry = JournalEntry {
            version: created,
            time: now,
            op: JournalOp::Create { data: data.clone() }.to_journal(),
            author: request.author.as_deref().map(str::to_owned),
            origin: request.origin.clone(),
        };
        let announced_op = self.cluster.get().map(|_| entry.op.clone());
        let mut record = Record::empty(now);
        record.data = data;
        let event_data = record.data.clone();
        st.head = Some(Head {
            record,
            created,
            json: json.clone(),
            stored: true,
        });
        st.submitted += 1;
        let engine = self.self_ref();
        let writer = request.writer;
        let origin = request.origin;
        let commit_cell = cell.clone();
        let stored = Write::Put {
            record: StoredRecord {
                name: cell.name.to_string(),
                version: created,
                created,
                deleted: false,
                data: json.to_string(),
                ctime: now,
                mtime: now,
            },
            base_version,
            entries: vec![entry],
        };
        self.committer.submit(
            stored,
            Box::new(move |outcome| {
                let cell = commit_cell;
                let version = EngineVersion::new(created, created);
                let result = {
                    let mut st = cell.state.lock();
                    let result = match outcome {
                        Ok(WriteOutcome::Committed) => {
                            st.visible = Some(Visible {
                                version,
                                json: json.clone(),
                            });
                            let event = created_event(
                                &cell.name,
                                version,
                                Some((event_data, json)),
                                origin.clone(),
                            );
                            st.publish(&event, Some(writer));
                            if let Some(engine) = &engine {
                                engine.announce(
                                    &cell.name,
                                    version,
                                    announced_op.as_deref(),
                                    false,
                                    origin.as_ref(),
                                );
                            }
                            Ok(version)
                        }
                        Ok(WriteOutcome::Conflict { current }) => {
                            // Another node wrote first: the next use reloads the truth.
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
                    engine.evict_if_idle(&cell);
                }
            }),
        );
        drop(st);
        drop(held);
    }
}
