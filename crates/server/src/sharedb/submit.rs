//! `op`: a client's create, json0 edit or delete, applied through the engine with
//! ShareDB's policy: an edit built on an older version is transformed against every op
//! committed since (`Base::At` with `OnStale::Transform`), one sent again after a
//! reconnect (same `src` and `seq`) is acknowledged once and not applied twice, and the
//! acknowledgement `{a: "op", c, d, src, seq, v}` names the version the op was applied to.
//!
//! Ops the submitter missed reach it before its acknowledgement: on a document it
//! subscribes to, through the subscription (the acknowledgement is queued by the commit
//! that publishes the op, after every earlier commit's); otherwise they are read from
//! the journal and sent first. Other subscribers get the op in version order; the
//! submitter never gets its own op back.
//!
//! The connection handles one message at a time, so an op is answered before the next is
//! read: a client that floods ops is slowed at its own socket, and one that does not read
//! its acknowledgements fills its outbox and is cut off.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::oneshot;

use recordsync_core::{JournalOp, json0};
use recordsync_engine::{
    Base, CreateRequest, EngineVersion, OnStale, WriteDone, WriteFailure, WriteRequest,
};
use recordsync_sharedb_protocol::{
    Ack, ErrorCode, OpBody, OpRequest, Reply, ShareDbError, is_json0,
};
use recordsync_store::Origin;

use super::connection::Connection;
use super::doc::{DocState, record_name};
use super::session::Session;
use super::{errors, ops};

/// How often a create that lost a race to another node is tried again before its
/// failure is reported.
const CREATE_ATTEMPTS: u32 = 5;

/// One op being submitted: the document, the op's origin and base.
struct Submit {
    c: String,
    d: String,
    name: String,
    v: Option<u64>,
    origin: Origin,
}

pub async fn submit(conn: &mut Connection, op: OpRequest) -> Result<(), ShareDbError> {
    let submit = Submit {
        name: record_name(&op.c, &op.d),
        origin: Origin {
            src: op.src.unwrap_or_else(|| conn.src.clone()),
            seq: op.seq,
        },
        c: op.c,
        d: op.d,
        v: op.v,
    };
    match op.body {
        OpBody::Edit(edit) => submit.edit(conn, edit).await,
        OpBody::Create { ty, data } => submit.create(conn, ty, data).await,
        OpBody::Delete => submit.delete(conn).await,
    }
}

impl Submit {
    async fn edit(self, conn: &mut Connection, edit: Value) -> Result<(), ShareDbError> {
        let ops = json0::op_from_json(&edit).map_err(|e| errors::op_shape(&e))?;
        let base = match self.v {
            None => Base::Next,
            // Version 0 is the document before it was ever created.
            Some(0) => {
                let state = self.state(conn).await?;
                return Err(if state.version == 0 {
                    errors::does_not_exist()
                } else {
                    errors::already_created(Some(0), state.version)
                });
            }
            Some(v) => Base::At(v - 1),
        };
        conn.guard.write(&self.name, &ops).await?;
        let request = WriteRequest {
            writer: conn.session.id,
            op: JournalOp::Json0 { ops },
            base,
            on_stale: OnStale::Transform,
            author: conn.guard.author(),
            origin: Some(self.origin.clone()),
        };
        let (done, answer) = self.answer(conn, 0);
        conn.engine.write(&self.name, request, done).await;
        let version = self.answered(answer).await?;
        self.acknowledge(conn, version.version).await;
        Ok(())
    }

    async fn create(
        self,
        conn: &mut Connection,
        ty: String,
        data: Option<Value>,
    ) -> Result<(), ShareDbError> {
        // (The decoder drops a type ShareDB would not know, as ShareDB does; this is the
        // same answer for any that gets here.)
        if !is_json0(&ty) {
            return Err(ShareDbError::new(
                ErrorCode::ERR_OT_OP_BADLY_FORMED,
                "Missing create type",
            ));
        }
        let Some(data) = data.filter(|d| !d.is_null()) else {
            return Err(ShareDbError::new(
                ErrorCode::ERR_OT_OP_NOT_APPLIED,
                "a document holds a JSON value other than null: create it with data",
            ));
        };
        conn.guard.create(&self.name).await?;
        let request = CreateRequest {
            writer: conn.session.id,
            data,
            at: self.v,
            author: conn.guard.author(),
            origin: Some(self.origin.clone()),
        };
        // A create that lost a race to another node's write of the record (a cluster) is
        // tried again on the state the engine reloads, as ShareDB retries a submit that
        // lost a race: it then finds the document created (its own create, if this was
        // sent again, else ERR_DOC_ALREADY_CREATED) or, deleted again, creates it.
        let mut attempts = 0;
        let outcome = loop {
            let (done, answer) = self.answer(conn, 0);
            conn.engine.create(&self.name, request.clone(), done).await;
            match answer.await {
                Ok(Err(WriteFailure::Conflict { .. } | WriteFailure::Contended { .. }))
                    if attempts < CREATE_ATTEMPTS =>
                {
                    attempts += 1;
                }
                outcome => break outcome,
            }
        };
        let version = match outcome {
            Ok(Ok(version)) => version.version,
            Ok(Err(WriteFailure::Exists { version })) => {
                // Sent again after a reconnect? Then its create is in the journal: this
                // life's (no version given), or one since the version it was built on.
                let from = self.v.unwrap_or(version.created);
                self.resubmitted(conn, from, version.version)
                    .await
                    .ok_or_else(|| errors::already_created(self.v, version.version + 1))?
            }
            Ok(Err(WriteFailure::Missing { next_create }))
                if self.v.is_some_and(|v| v < next_create) =>
            {
                let from = self.v.unwrap_or(0);
                self.resubmitted(conn, from, next_create - 1)
                    .await
                    .ok_or_else(|| errors::already_created(self.v, next_create))?
            }
            Ok(Err(failure)) => return Err(errors::write(failure, self.v)),
            Err(_) => return Err(errors::engine(recordsync_engine::EngineError::Shutdown)),
        };
        self.acknowledge(conn, version).await;
        Ok(())
    }

    async fn delete(self, conn: &mut Connection) -> Result<(), ShareDbError> {
        let state = self.state(conn).await?;
        if self.v.is_some_and(|v| v > state.version) {
            return Err(errors::newer_than_snapshot());
        }
        if state.data.is_none() {
            // A delete sent again after a reconnect finds the document deleted: its delete
            // is the journal's last entry.
            let last = state.version.checked_sub(1);
            if let (Some(v), Some(last)) = (self.v, last)
                && v <= last
                && self.deleted_at(conn, last).await
            {
                self.acknowledge(conn, last).await;
                return Ok(());
            }
        }
        conn.guard.delete(&self.name).await?;
        // The engine answers a delete with the version it deleted, and the delete is
        // journaled one after: the version ShareDB's acknowledgement names. A delete of a
        // missing document (ShareDB accepts it, and counts a version) is answered with the
        // version its tombstone has, which is that one.
        let offset = u64::from(state.data.is_some());
        let (done, answer) = self.answer(conn, offset);
        conn.engine
            .delete_op(
                conn.session.id,
                conn.guard.author(),
                self.origin.clone(),
                &self.name,
                done,
            )
            .await;
        let deleted = self.answered(answer).await?;
        self.acknowledge(conn, deleted.version + offset).await;
        Ok(())
    }

    /// The document's state (for the op's checks, not shown to the client: no read
    /// permission is needed).
    async fn state(&self, conn: &Connection) -> Result<DocState, ShareDbError> {
        let state = conn
            .engine
            .read_state(&self.name)
            .await
            .map_err(errors::engine)?;
        Ok(DocState::of(state))
    }

    /// The engine's answer: a [`WriteDone`] that, on a document this connection
    /// subscribes to, queues the acknowledgement at once (behind the ops published
    /// before it), and passes the result on. The acknowledgement names the version the
    /// engine answers plus `offset`.
    ///
    /// (An edit or a create is answered with the engine version it produced: the op is
    /// journaled there, and that is the ShareDB version it applied to, ShareDB counting
    /// one more than the engine.)
    fn answer(
        &self,
        conn: &Connection,
        offset: u64,
    ) -> (
        WriteDone,
        oneshot::Receiver<Result<EngineVersion, WriteFailure>>,
    ) {
        let (tx, rx) = oneshot::channel();
        let subscribed = conn.subscriptions.contains(self.name.as_str());
        let ack = subscribed.then(|| (conn.session.clone(), self.ack_parts()));
        let done = WriteDone::new(move |result: Result<EngineVersion, WriteFailure>| {
            if let (Some((session, parts)), Ok(version)) = (&ack, &result) {
                send_ack(session, parts, version.version + offset);
            }
            let _ = tx.send(result);
        });
        (done, rx)
    }

    async fn answered(
        &self,
        answer: oneshot::Receiver<Result<EngineVersion, WriteFailure>>,
    ) -> Result<EngineVersion, ShareDbError> {
        match answer.await {
            Ok(Ok(version)) => Ok(version),
            Ok(Err(failure)) => Err(errors::write(failure, self.v)),
            Err(_) => Err(errors::engine(recordsync_engine::EngineError::Shutdown)),
        }
    }

    /// Acknowledges the op as applied to (ShareDB) version `v`: on a document this
    /// connection does not subscribe to, the ops it missed since its base go first. (On a
    /// subscribed one, [`Submit::answer`]'s callback has sent it.)
    async fn acknowledge(&self, conn: &Connection, v: u64) {
        if conn.subscriptions.contains(self.name.as_str()) {
            return;
        }
        if let Some(from) = self.v.filter(|from| *from < v) {
            let doc = (self.c.as_str(), self.d.as_str(), self.name.as_str());
            if let Err(e) = ops::send(&conn.engine, &conn.session, doc, from, v).await {
                tracing::warn!(record = %self.name, "the ops a submitter missed could not be sent: {}", e.message);
            }
        }
        send_ack(&conn.session, &self.ack_parts(), v);
    }

    fn ack_parts(&self) -> AckParts {
        AckParts {
            c: self.c.clone(),
            d: self.d.clone(),
            origin: self.origin.clone(),
        }
    }

    /// The version of this op's entry among the journal's `from..=to`, if it is there
    /// (the op was sent again after a reconnect).
    async fn resubmitted(&self, conn: &Connection, from: u64, to: u64) -> Option<u64> {
        let entries = conn.engine.journal(&self.name, from, to).await.ok()?;
        entries
            .iter()
            .find(|e| e.origin.as_ref() == Some(&self.origin))
            .map(|e| e.version)
    }

    /// Whether the journal's entry `version` is a delete.
    async fn deleted_at(&self, conn: &Connection, version: u64) -> bool {
        let Ok(entries) = conn.engine.journal(&self.name, version, version).await else {
            return false;
        };
        entries
            .first()
            .and_then(|e| JournalOp::from_journal(&e.op).ok())
            .is_some_and(|op| op == JournalOp::Delete)
    }
}

/// What an acknowledgement names besides its version.
struct AckParts {
    c: String,
    d: String,
    origin: Origin,
}

fn send_ack(session: &Arc<Session>, parts: &AckParts, v: u64) {
    session.send(&Reply::Ack(Ack::new(
        &parts.c,
        &parts.d,
        &parts.origin.src,
        parts.origin.seq,
        v,
    )));
}
