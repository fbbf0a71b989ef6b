//! Running a request's record messages (and event emits): permission checks, engine
//! calls, results.
//!
//! The checks are the deepstream door's (see `deepstream/permission.rs`): a read or head
//! checks `read`, a delete `delete`, and a write, which deepstream's HTTP API sends as
//! CREATEANDUPDATE / CREATEANDPATCH, checks `create` and then `write` with the value alone
//! as `data`. A refusal names the message's action, as deepstream's does.
//!
//! Messages run one after the other, in the order of the batch, each finished (a write
//! durable) before the next starts. deepstream runs them side by side, so that a read in
//! the same batch as a write of the same record may come first; in order, a batch means
//! what it says.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::oneshot;

use recordsync_core::WriteOp;
use recordsync_core::valve::Decision;
use recordsync_deepstream_protocol::{EventAction, RecordAction};
use recordsync_engine::{Base, EngineVersion, WriteDone, WriteFailure, WriteRequest};

use super::errors;
use super::request::Message;
use crate::ServerState;
use crate::auth::Identity;
use crate::deepstream::session::version_on_wire;
use crate::permission::{Action, Data, Request};

/// One request's context: who asks, and the subscriber id its writes carry (a fresh one
/// per request, so that every subscriber, on any door, is sent its writes).
pub struct Batch<'a> {
    pub state: &'a ServerState,
    pub user: Arc<Identity>,
    pub writer: u64,
}

impl Batch<'_> {
    /// `event` `emit`: checked against the rules' `event` `publish` with the payload as
    /// `data` (deepstream's EMIT; deepstream 7's HTTP API gives such a rule no data, so a
    /// rule that reads it always refuses there), then emitted to every subscriber of the event, on
    /// every node, its payload kept as sent (numbers and key order too).
    async fn emit(&self, name: &str, data: Option<&Value>) -> Value {
        let rules = &self.state.permissions;
        if !rules.is_open() {
            let decision = rules
                .check(Request {
                    action: Action::Publish,
                    user: &self.user,
                    name,
                    data: data.map_or(Data::None, Data::Value),
                    wire_action: Some(EventAction::Emit as i32),
                })
                .await;
            match decision {
                Decision::Allow => {}
                Decision::Deny => return errors::event_refused(EventAction::MessageDenied),
                Decision::Error(reason) => {
                    tracing::warn!(event = name, user = %self.user.id, "permission rule failed: {reason}");
                    return errors::event_refused(EventAction::MessagePermissionError);
                }
            }
        }
        let data = data.map(|v| Arc::from(v.to_string()));
        self.state.engine.emit(None, name, data);
        errors::ok()
    }

    /// Runs one message; returns its result object.
    pub async fn run(&self, message: &Message) -> Value {
        match message {
            Message::Read { name } => self.read(name).await,
            Message::Head { name } => self.head(name).await,
            Message::Delete { name } => self.delete(name).await,
            Message::Write {
                name,
                path,
                data,
                version,
            } => self.write(name, path.as_deref(), data, *version).await,
            Message::Notify { names } => self.notify(names).await,
            Message::Emit { name, data } => self.emit(name, data.as_ref()).await,
            Message::Unserved { topic } => errors::unserved(topic),
        }
    }

    fn author(&self) -> Option<Arc<str>> {
        self.user.author()
    }

    /// Asks the rules; `None` when allowed, else the refusal to answer with.
    async fn refused(
        &self,
        action: Action,
        wire: RecordAction,
        reported: RecordAction,
        name: &str,
        data: Data<'_>,
    ) -> Option<Value> {
        let rules = &self.state.permissions;
        if rules.is_open() {
            return None;
        }
        let decision = rules
            .check(Request {
                action,
                user: &self.user,
                name,
                data,
                wire_action: Some(wire as i32),
            })
            .await;
        match decision {
            Decision::Allow => None,
            Decision::Deny => Some(errors::denied(reported)),
            Decision::Error(reason) => {
                tracing::warn!(record = name, user = %self.user.id, "permission rule failed: {reason}");
                Some(errors::record_error(
                    RecordAction::MessagePermissionError,
                    name,
                    "the permission rule failed",
                ))
            }
        }
    }

    /// deepstream's `notify`: the records changed in storage outside the server (someone
    /// edited the database); their subscribers, on every node, are told of what is there
    /// now. Each name is checked against the `notify` rule first; any refusal refuses the
    /// message.
    async fn notify(&self, names: &[String]) -> Value {
        let wire = RecordAction::Notify;
        for name in names {
            if let Some(refusal) = self
                .refused(Action::Notify, wire, wire, name, Data::None)
                .await
            {
                return refusal;
            }
        }
        match self.state.engine.reload_changed(names).await {
            Ok(()) => json!({ "success": true }),
            Err(e) => errors::record_error(
                RecordAction::RecordNotifyError,
                &names.join(","),
                &e.to_string(),
            ),
        }
    }

    async fn read(&self, name: &str) -> Value {
        let wire = RecordAction::Read;
        if let Some(refusal) = self
            .refused(Action::Read, wire, wire, name, Data::None)
            .await
        {
            return refusal;
        }
        match self.state.engine.read(name).await {
            Ok(Some(snapshot)) => json!({
                "version": version_on_wire(snapshot.version),
                "data": stored(&snapshot.data),
                "success": true,
            }),
            Ok(None) => errors::not_found(name),
            Err(e) => errors::record_error(RecordAction::RecordLoadError, name, &e.to_string()),
        }
    }

    async fn head(&self, name: &str) -> Value {
        let wire = RecordAction::Head;
        if let Some(refusal) = self
            .refused(Action::Read, wire, wire, name, Data::None)
            .await
        {
            return refusal;
        }
        match self.state.engine.head(name).await {
            Ok(version) => json!({
                "version": version.map_or(-1, version_on_wire),
                "success": true,
            }),
            Err(e) => errors::record_error(RecordAction::RecordLoadError, name, &e.to_string()),
        }
    }

    async fn delete(&self, name: &str) -> Value {
        let wire = RecordAction::Delete;
        if let Some(refusal) = self
            .refused(Action::Delete, wire, wire, name, Data::None)
            .await
        {
            return refusal;
        }
        let (done, answer) = answered();
        self.state
            .engine
            .delete(self.writer, self.author(), name, done)
            .await;
        match answer.await {
            Ok(Ok(_)) => errors::ok(),
            Ok(Err(failure)) => {
                errors::record_error(RecordAction::RecordDeleteError, name, &failure.to_string())
            }
            Err(_) => unanswered(RecordAction::RecordDeleteError, name),
        }
    }

    async fn write(&self, name: &str, path: Option<&str>, data: &Value, version: i64) -> Value {
        let (op, wire) = match path {
            Some(path) => (
                WriteOp::Patch {
                    path: path.to_owned(),
                    data: data.clone(),
                },
                RecordAction::CreateAndPatch,
            ),
            None => (
                WriteOp::Update { data: data.clone() },
                RecordAction::CreateAndUpdate,
            ),
        };
        if let Err(e) = op.validate() {
            return errors::record_error(RecordAction::InvalidMessageData, name, &e.to_string());
        }
        // deepstream's setData checks: create, then write with the value alone as `data`.
        if let Some(refusal) = self
            .refused(Action::Create, RecordAction::Create, wire, name, Data::None)
            .await
        {
            return refusal;
        }
        if let Some(refusal) = self
            .refused(
                Action::Write,
                RecordAction::Update,
                wire,
                name,
                Data::Value(data),
            )
            .await
        {
            return refusal;
        }
        let request = WriteRequest {
            author: self.author(),
            ..WriteRequest::new(self.writer, op, Base::Produces(version))
        };
        let (done, answer) = answered();
        self.state.engine.write(name, request, done).await;
        match answer.await {
            Ok(Ok(_)) => errors::ok(),
            Ok(Err(WriteFailure::VersionExists { version, data })) => {
                errors::version_exists(name, version_on_wire(version).into(), stored(&data))
            }
            Ok(Err(WriteFailure::InvalidVersion { current, .. })) => {
                errors::invalid_version(name, version_on_wire(current).into(), data.clone())
            }
            Ok(Err(WriteFailure::InvalidOp(e))) => {
                errors::record_error(RecordAction::InvalidMessageData, name, &e.to_string())
            }
            Ok(Err(failure)) => {
                errors::record_error(RecordAction::RecordUpdateError, name, &failure.to_string())
            }
            Err(_) => unanswered(RecordAction::RecordUpdateError, name),
        }
    }
}

type Answer = Result<EngineVersion, WriteFailure>;

/// A [`WriteDone`] whose answer arrives on the returned receiver.
fn answered() -> (WriteDone, oneshot::Receiver<Answer>) {
    let (tx, rx) = oneshot::channel();
    let done = WriteDone::new(move |result| {
        // The request may have been dropped (its client went away): nobody to tell.
        let _ = tx.send(result);
    });
    (done, rx)
}

/// The engine dropped the answer channel without answering (it answers every write; this
/// is for the impossible case, without a panic).
fn unanswered(event: RecordAction, name: &str) -> Value {
    errors::record_error(event, name, "the write was not answered")
}

/// A stored value (JSON text the engine keeps) as a JSON value, numbers as written.
fn stored(text: &str) -> Value {
    recordsync_core::json::parse(text).unwrap_or_else(|e| {
        tracing::error!("a stored value is not JSON ({e}); answering null");
        Value::Null
    })
}
