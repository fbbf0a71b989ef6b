//! The RECORD topic: deepstream record messages in, engine calls, replies out.
//!
//! Reply shapes follow what deepstream 7 sends (see the notes in `shared/notes` and the
//! captures in `interop/captures`): acks echo the request with `isAck`; errors carry the
//! request's action as `originalAction`, `isError`, and for acknowledged writes the
//! `correlationId` and `isWriteAck` the client uses to find its callback.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::Semaphore;

use recordsync_core::WriteOp;
use recordsync_core::json::{self, JsonError, MAX_DEPTH};
use recordsync_core::{OpError, PathWrite};
use recordsync_deepstream_protocol::{RecordAction, RecordMessage};

use super::permission::Guard;
use super::session::{Session, version_on_wire};
use crate::permission::{Action, Data};
use recordsync_engine::listen::ListenTopic;
use recordsync_engine::{
    Base, Engine, EngineError, EngineVersion, Snapshot, WriteDone, WriteFailure, WriteRequest,
};

/// How many names of one subscribe request are worked on at once (each may wait for its
/// record to be created in the store).
const SUBSCRIBING_AT_ONCE: usize = 64;

/// Per-connection record state.
pub struct RecordTopic {
    pub session: Arc<Session>,
    pub engine: Arc<Engine>,
    /// Names this connection subscribed to, to unsubscribe when it goes away.
    pub subscriptions: NameSet,
    /// Bounds the writes this connection has waiting for their commit: a client that
    /// writes faster than the disk is slowed at its own socket, nowhere else.
    pub pending_writes: Arc<Semaphore>,
    /// The logged-in user and the permission rules every request is checked against.
    pub guard: Guard,
}

impl RecordTopic {
    pub async fn handle(&mut self, m: RecordMessage) {
        let Some(action) = m.record_action() else {
            return self.error(
                &m,
                RecordAction::InvalidMessageData,
                "unknown record action",
            );
        };
        match action {
            RecordAction::SubscribeCreateAndRead => self.subscribe(m, true).await,
            RecordAction::SubscribeAndRead | RecordAction::Subscribe => {
                self.subscribe(m, false).await
            }
            RecordAction::SubscribeAndHead => self.subscribe_and_head(m).await,
            RecordAction::Unsubscribe => self.unsubscribe(m).await,
            RecordAction::Read => self.read(m).await,
            RecordAction::Head => self.head(m).await,
            RecordAction::HeadBulk => self.head_bulk(m).await,
            RecordAction::Update
            | RecordAction::Patch
            | RecordAction::Erase
            | RecordAction::PatchMulti
            | RecordAction::CreateAndUpdate
            | RecordAction::CreateAndPatch => self.write(m, action).await,
            RecordAction::Delete => self.delete(m).await,
            RecordAction::Listen
            | RecordAction::Unlisten
            | RecordAction::ListenAccept
            | RecordAction::ListenReject => self.listen(m, action).await,
            RecordAction::Notify => self.notify(m).await,
            _ => self.error(
                &m,
                RecordAction::InvalidMessageData,
                "this action is not one a client sends",
            ),
        }
    }

    /// Unsubscribes everything; called when the connection closes.
    pub async fn close(&mut self) {
        for name in std::mem::take(&mut self.subscriptions).into_vec() {
            let _ = self.engine.unsubscribe(self.session.id, &name).await;
        }
        self.engine.listening().connection_closed(self.session.id);
    }

    fn names(m: &RecordMessage) -> Vec<String> {
        if m.names.is_empty() {
            m.name.iter().cloned().collect()
        } else {
            m.names.clone()
        }
    }

    fn ack(&self, m: &RecordMessage) {
        self.session.send(RecordMessage {
            action: m.action,
            names: m.names.clone(),
            name: m.name.clone(),
            correlation_id: m.correlation_id.clone(),
            is_ack: Some(true),
            ..Default::default()
        });
    }

    async fn subscribe(&mut self, m: RecordMessage, create: bool) {
        self.ack(&m);
        // The names of one request are subscribed side by side: a record created by
        // subscribing is answered only once it is stored, and so the creates of one
        // request share a commit instead of waiting for one each.
        let this = &*self;
        let subscribed: Vec<Option<Arc<str>>> = futures_util::stream::iter(Self::names(&m))
            .map(|name| this.subscribe_one(&m, name, create))
            .buffered(SUBSCRIBING_AT_ONCE)
            .collect()
            .await;
        self.subscriptions.reserve(subscribed.len());
        for name in subscribed.into_iter().flatten() {
            self.subscriptions.insert(name);
        }
    }

    /// Subscribes to one name of a request; returns the engine's copy of the name, or
    /// `None` when the client was refused (and told why).
    async fn subscribe_one(
        &self,
        m: &RecordMessage,
        name: String,
        create: bool,
    ) -> Option<Arc<str>> {
        if !self
            .guard
            .allow_subscribe(&self.session, m, &name, create)
            .await
        {
            return None;
        }
        let session = &self.session;
        let initial = |snapshot: Option<Snapshot>, has_provider: bool| {
            let (version, data) = match snapshot {
                Some(s) => (version_on_wire(s.version), s.data.to_string()),
                None => (-1, "{}".to_owned()),
            };
            session.send(RecordMessage {
                version: Some(version),
                data: Some(data),
                ..RecordMessage::named(RecordAction::ReadResponse, name.clone())
            });
            if has_provider {
                session.send(RecordMessage::named(
                    RecordAction::SubscriptionHasProvider,
                    name.clone(),
                ));
            }
        };
        match self
            .engine
            .subscribe(self.session.clone(), &name, create, initial)
            .await
        {
            Ok(shared) => Some(shared),
            Err(e) => {
                self.engine_error(m, &name, e);
                None
            }
        }
    }

    async fn subscribe_and_head(&mut self, m: RecordMessage) {
        let mut reply = RecordMessage::new(RecordAction::HeadResponseBulk);
        reply.correlation_id = m.correlation_id.clone();
        let names = Self::names(&m);
        self.subscriptions.reserve(names.len());
        for name in names {
            if !self
                .guard
                .allow_subscribe(&self.session, &m, &name, false)
                .await
            {
                continue;
            }
            let versions = &mut reply.versions;
            let initial = |snapshot: Option<Snapshot>, _| {
                versions.insert(
                    name.clone(),
                    snapshot.map_or(-1, |s| version_on_wire(s.version)),
                );
            };
            match self
                .engine
                .subscribe(self.session.clone(), &name, false, initial)
                .await
            {
                Ok(shared) => self.subscriptions.insert(shared),
                Err(e) => self.engine_error(&m, &name, e),
            }
        }
        self.session.send(reply);
    }

    async fn unsubscribe(&mut self, m: RecordMessage) {
        for name in Self::names(&m) {
            self.subscriptions.remove(&name);
            if let Err(e) = self.engine.unsubscribe(self.session.id, &name).await {
                self.engine_error(&m, &name, e);
            }
        }
        self.ack(&m);
    }

    async fn read(&mut self, m: RecordMessage) {
        let Some(name) = m.name.clone() else {
            return self.error(
                &m,
                RecordAction::InvalidMessageData,
                "READ needs a record name",
            );
        };
        if !self
            .guard
            .allow(
                &self.session,
                &m,
                Action::Read,
                RecordAction::Read,
                &name,
                Data::None,
            )
            .await
        {
            return;
        }
        match self.engine.read(&name).await {
            Ok(Some(s)) => self.session.send(RecordMessage {
                version: Some(version_on_wire(s.version)),
                data: Some(s.data.to_string()),
                correlation_id: m.correlation_id.clone(),
                ..RecordMessage::named(RecordAction::ReadResponse, name)
            }),
            Ok(None) => self.session.send(RecordMessage {
                original_action: Some(m.action),
                is_error: Some(true),
                correlation_id: m.correlation_id.clone(),
                ..RecordMessage::named(RecordAction::RecordNotFound, name)
            }),
            Err(e) => self.engine_error(&m, &name, e),
        }
    }

    async fn head(&mut self, m: RecordMessage) {
        let Some(name) = m.name.clone() else {
            return self.error(
                &m,
                RecordAction::InvalidMessageData,
                "HEAD needs a record name",
            );
        };
        if !self
            .guard
            .allow(
                &self.session,
                &m,
                Action::Read,
                RecordAction::Head,
                &name,
                Data::None,
            )
            .await
        {
            return;
        }
        match self.engine.head(&name).await {
            Ok(version) => self.session.send(RecordMessage {
                version: Some(version.map_or(-1, version_on_wire)),
                correlation_id: m.correlation_id.clone(),
                ..RecordMessage::named(RecordAction::HeadResponse, name)
            }),
            Err(e) => self.engine_error(&m, &name, e),
        }
    }

    async fn head_bulk(&mut self, m: RecordMessage) {
        let mut reply = RecordMessage::new(RecordAction::HeadResponseBulk);
        reply.correlation_id = m.correlation_id.clone();
        for name in Self::names(&m) {
            if !self
                .guard
                .allow(
                    &self.session,
                    &m,
                    Action::Read,
                    RecordAction::HeadBulk,
                    &name,
                    Data::None,
                )
                .await
            {
                continue;
            }
            match self.engine.head(&name).await {
                Ok(version) => {
                    reply
                        .versions
                        .insert(name, version.map_or(-1, version_on_wire));
                }
                Err(e) => self.engine_error(&m, &name, e),
            }
        }
        self.session.send(reply);
    }

    async fn write(&mut self, m: RecordMessage, action: RecordAction) {
        let Some(name) = m.name.clone() else {
            return self.error(
                &m,
                RecordAction::InvalidMessageData,
                "a write needs a record name",
            );
        };
        let op = match write_op(&m, action) {
            Ok(op) => op,
            Err(reason) => return self.error(&m, RecordAction::InvalidMessageData, &reason),
        };
        if !self
            .guard
            .allow_write(&self.session, &m, action, &name, &op)
            .await
        {
            return;
        }
        let version = m.version.map_or(-1, i64::from);
        let Ok(permit) = self.pending_writes.clone().acquire_owned().await else {
            return;
        };
        let session = self.session.clone();
        let wants_ack = m.is_write_ack == Some(true);
        let request = m;
        let write = WriteRequest {
            author: self.guard.author(),
            ..WriteRequest::new(self.session.id, op, Base::Produces(version))
        };
        self.engine
            .write(
                &name,
                write,
                WriteDone::new(move |result| {
                    drop(permit);
                    reply_to_write(
                        &session,
                        &request,
                        result,
                        wants_ack,
                        RecordAction::WriteAcknowledgement,
                    );
                }),
            )
            .await;
    }

    async fn delete(&mut self, m: RecordMessage) {
        let Some(name) = m.name.clone() else {
            return self.error(
                &m,
                RecordAction::InvalidMessageData,
                "DELETE needs a record name",
            );
        };
        if !self
            .guard
            .allow(
                &self.session,
                &m,
                Action::Delete,
                RecordAction::Delete,
                &name,
                Data::None,
            )
            .await
        {
            return;
        }
        self.subscriptions.remove(&name);
        let session = self.session.clone();
        let request = m;
        self.engine
            .delete(
                self.session.id,
                self.guard.author(),
                &name,
                WriteDone::new(move |result| {
                    reply_to_write(
                        &session,
                        &request,
                        result,
                        true,
                        RecordAction::DeleteSuccess,
                    )
                }),
            )
            .await;
    }

    /// `record.notify(names)`: the records changed in storage outside the server (someone
    /// edited the database); subscribers on every node are told of what is there now,
    /// then the request is acknowledged. Each name is checked against the `notify` rule.
    async fn notify(&mut self, m: RecordMessage) {
        let names = Self::names(&m);
        for name in &names {
            if !self
                .guard
                .allow(
                    &self.session,
                    &m,
                    Action::Notify,
                    RecordAction::Notify,
                    name,
                    Data::None,
                )
                .await
            {
                return;
            }
        }
        match self.engine.reload_changed(&names).await {
            Ok(()) => self.ack(&m),
            Err(e) => self.error(&m, RecordAction::RecordNotifyError, &e.to_string()),
        }
    }

    async fn listen(&mut self, m: RecordMessage, action: RecordAction) {
        // deepstream checks the listen rule against the pattern's text.
        let pattern = m.name.clone().unwrap_or_default();
        if action == RecordAction::Listen
            && !self
                .guard
                .allow(
                    &self.session,
                    &m,
                    Action::Listen,
                    RecordAction::Listen,
                    &pattern,
                    Data::None,
                )
                .await
        {
            return;
        }
        use super::listen::{Request, answer_record, handle};
        let request = match action {
            RecordAction::Listen => Request::Listen,
            RecordAction::Unlisten => Request::Unlisten,
            RecordAction::ListenAccept => Request::Accept,
            _ => Request::Reject,
        };
        let outcome = handle(
            &self.engine,
            &self.session,
            ListenTopic::Record,
            request,
            &pattern,
            m.subscription.as_deref(),
        );
        answer_record(&self.session, &m, outcome);
    }

    fn engine_error(&self, m: &RecordMessage, name: &str, e: EngineError) {
        let action = match e {
            EngineError::InvalidName(_) => RecordAction::InvalidMessageData,
            EngineError::NotCreated(_) => RecordAction::RecordCreateError,
            // The store failed or the record could not be read; and whatever the engine
            // may add later is not the client's fault either.
            _ => RecordAction::RecordLoadError,
        };
        self.session.send(RecordMessage {
            original_action: Some(m.action),
            is_error: Some(true),
            correlation_id: m.correlation_id.clone(),
            data: Some(json_string(&e.to_string())),
            ..RecordMessage::named(action, name)
        });
    }

    /// An error about the request itself; `reason` travels in `data` as a JSON string.
    fn error(&self, m: &RecordMessage, action: RecordAction, reason: &str) {
        self.session.send(RecordMessage {
            name: m.name.clone(),
            original_action: Some(m.action),
            is_error: Some(true),
            correlation_id: m.correlation_id.clone(),
            is_write_ack: m.is_write_ack.filter(|w| *w),
            data: Some(json_string(reason)),
            ..RecordMessage::new(action)
        });
    }
}

/// The names a connection is subscribed to. They are the engine's own `Arc<str>`s, shared
/// with the record's cell, so a subscription costs one pointer here. A short list is
/// searched in place; past [`NameSet::SMALL`] names a hash set takes over.
#[derive(Debug)]
pub enum NameSet {
    Small(Vec<Arc<str>>),
    Large(HashSet<Arc<str>>),
}

impl Default for NameSet {
    fn default() -> Self {
        NameSet::Small(Vec::new())
    }
}

impl NameSet {
    pub const SMALL: usize = 32;

    /// Makes room for `more` names (exactly, while the list is short).
    pub fn reserve(&mut self, more: usize) {
        match self {
            NameSet::Small(list) if list.len() + more <= Self::SMALL => list.reserve_exact(more),
            NameSet::Small(_) => {}
            NameSet::Large(set) => set.reserve(more),
        }
    }

    pub fn insert(&mut self, name: Arc<str>) {
        match self {
            NameSet::Small(list) => {
                if list.iter().any(|n| Arc::ptr_eq(n, &name) || **n == *name) {
                    return;
                }
                if list.len() < Self::SMALL {
                    list.reserve_exact(1);
                    list.push(name);
                } else {
                    let mut set: HashSet<Arc<str>> = list.drain(..).collect();
                    set.insert(name);
                    *self = NameSet::Large(set);
                }
            }
            NameSet::Large(set) => {
                set.insert(name);
            }
        }
    }

    /// Removes `name`; returns whether it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        match self {
            NameSet::Small(list) => match list.iter().position(|n| **n == *name) {
                Some(i) => {
                    list.swap_remove(i);
                    true
                }
                None => false,
            },
            NameSet::Large(set) => set.remove(name),
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        match self {
            NameSet::Small(list) => list.len(),
            NameSet::Large(set) => set.len(),
        }
    }

    #[cfg(test)]
    pub fn contains(&self, name: &str) -> bool {
        match self {
            NameSet::Small(list) => list.iter().any(|n| **n == *name),
            NameSet::Large(set) => set.contains(name),
        }
    }

    pub fn into_vec(self) -> Vec<Arc<str>> {
        match self {
            NameSet::Small(list) => list,
            NameSet::Large(set) => set.into_iter().collect(),
        }
    }
}

/// Sends the outcome of a write or delete to its writer.
fn reply_to_write(
    session: &Session,
    request: &RecordMessage,
    result: Result<EngineVersion, WriteFailure>,
    wants_ack: bool,
    success: RecordAction,
) {
    let name = request.name.clone();
    let is_write_ack = request.is_write_ack.filter(|w| *w);
    let reply = match result {
        Ok(_) if !wants_ack => return,
        Ok(_) => RecordMessage {
            name,
            correlation_id: request.correlation_id.clone(),
            is_write_ack,
            ..RecordMessage::new(success)
        },
        Err(WriteFailure::VersionExists { version, data }) => RecordMessage {
            name,
            original_action: Some(ordered_action(request)),
            version: Some(version_on_wire(version)),
            data: Some(data.to_string()),
            correlation_id: request.correlation_id.clone(),
            is_write_ack,
            ..RecordMessage::new(RecordAction::VersionExists)
        },
        Err(WriteFailure::InvalidVersion { current, .. }) => RecordMessage {
            name,
            original_action: Some(ordered_action(request)),
            version: Some(version_on_wire(current)),
            data: request.data.clone(),
            is_error: Some(true),
            correlation_id: request.correlation_id.clone(),
            is_write_ack,
            ..RecordMessage::new(RecordAction::InvalidVersion)
        },
        Err(failure) => {
            let action = match (&failure, success) {
                (WriteFailure::InvalidOp(_), _) => RecordAction::InvalidMessageData,
                (_, RecordAction::DeleteSuccess) => RecordAction::RecordDeleteError,
                _ => RecordAction::RecordUpdateError,
            };
            RecordMessage {
                name,
                original_action: Some(request.action),
                is_error: Some(true),
                correlation_id: request.correlation_id.clone(),
                is_write_ack,
                data: Some(json_string(&failure.to_string())),
                ..RecordMessage::new(action)
            }
        }
    };
    session.send(reply);
}

/// The action a refusal by the version check names as `originalAction`: deepstream orders
/// an ERASE as the PATCH without data it fans it out as, so its VERSION_EXISTS and
/// INVALID_VERSION for an erase say PATCH (`interop/captures/version-exists-erase.jsonl`).
fn ordered_action(request: &RecordMessage) -> i32 {
    match request.record_action() {
        Some(RecordAction::Erase) => RecordAction::Patch as i32,
        _ => request.action,
    }
}

/// Builds the engine op for a write message, or says what is wrong with it.
fn write_op(m: &RecordMessage, action: RecordAction) -> Result<WriteOp, String> {
    let path = m.path.clone().filter(|p| !p.is_empty());
    let text = || m.data.as_deref().ok_or("the write carries no data");
    let data = || -> Result<Value, String> { json::parse(text()?).map_err(|e| e.to_string()) };
    let op = match (action, path) {
        (RecordAction::Erase, Some(path)) => WriteOp::Erase { path },
        (RecordAction::Erase, None) => return Err("ERASE needs a path".into()),
        // The form in which deepstream, and recordsync, fan an erase out; deepstream
        // takes it from clients as an erase too.
        (RecordAction::Patch | RecordAction::CreateAndPatch, Some(path)) if m.data.is_none() => {
            WriteOp::Erase { path }
        }
        (RecordAction::PatchMulti, _) => {
            // `[{"path": ..., "data": ...}]`: each entry's data sits two levels down, and
            // `validate` below checks it against the limit with its path.
            let patches: Vec<PathWrite> = match json::parse_within(text()?, MAX_DEPTH + 2) {
                Ok(patches) => patches,
                Err(JsonError::TooDeep { .. }) => return Err(OpError::TooDeep.to_string()),
                Err(e) => {
                    return Err(format!(
                        "PATCH_MULTI data must be a list of {{path, data}}: {e}"
                    ));
                }
            };
            WriteOp::PatchMulti { patches }
        }
        (_, Some(path)) => WriteOp::Patch {
            path,
            data: data()?,
        },
        (_, None) => WriteOp::Update { data: data()? },
    };
    op.validate().map_err(|e| e.to_string())?;
    Ok(op)
}

fn json_string(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(action: RecordAction, path: Option<&str>, data: Option<&str>) -> RecordMessage {
        RecordMessage {
            path: path.map(Into::into),
            data: data.map(Into::into),
            ..RecordMessage::named(action, "r")
        }
    }

    #[test]
    fn name_sets_keep_each_name_once_small_or_large() {
        let mut names = NameSet::default();
        let a: Arc<str> = Arc::from("a");
        names.reserve(2);
        names.insert(a.clone());
        names.insert(Arc::from("a"));
        names.insert(Arc::from("b"));
        assert_eq!(names.len(), 2);
        assert!(names.contains("a") && names.contains("b") && !names.contains("c"));
        assert!(names.remove("a"));
        assert!(!names.remove("a"));
        assert_eq!(names.len(), 1);
        // Past the short list, a set takes over and keeps the same answers.
        for i in 0..100 {
            names.insert(Arc::from(format!("n{i}")));
            names.insert(Arc::from(format!("n{i}")));
        }
        assert!(matches!(names, NameSet::Large(_)));
        assert_eq!(names.len(), 101);
        assert!(names.remove("n7"));
        assert!(!names.contains("n7") && names.contains("n8") && names.contains("b"));
        let mut all: Vec<String> = names.into_vec().iter().map(|n| n.to_string()).collect();
        all.sort();
        assert_eq!(all.len(), 100);
        assert_eq!(all[0], "b");
    }

    #[test]
    fn write_ops_from_messages() {
        let op = |a, p, d| write_op(&msg(a, p, d), a);
        assert!(matches!(
            op(RecordAction::Update, None, Some("{}")),
            Ok(WriteOp::Update { .. })
        ));
        assert!(matches!(
            op(RecordAction::Patch, Some("a.b"), Some("1")),
            Ok(WriteOp::Patch { .. })
        ));
        assert!(matches!(
            op(RecordAction::CreateAndPatch, Some("a"), Some("1")),
            Ok(WriteOp::Patch { .. })
        ));
        assert!(matches!(
            op(RecordAction::Erase, Some("a"), None),
            Ok(WriteOp::Erase { .. })
        ));
        // A PATCH without data is an erase, as deepstream reads it.
        assert!(matches!(
            op(RecordAction::Patch, Some("a"), None),
            Ok(WriteOp::Erase { path }) if path == "a"
        ));
        assert!(matches!(
            op(RecordAction::CreateAndPatch, Some("a"), None),
            Ok(WriteOp::Erase { .. })
        ));
        assert!(matches!(
            op(
                RecordAction::PatchMulti,
                None,
                Some(r#"[{"path":"a","data":1},{"path":"b"}]"#)
            ),
            Ok(WriteOp::PatchMulti { .. })
        ));
        assert!(
            op(RecordAction::Update, None, Some("{not json"))
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(op(RecordAction::Update, None, Some("5")).is_err());
        assert!(op(RecordAction::Update, None, None).is_err());
        assert!(op(RecordAction::Erase, None, None).is_err());
        assert!(op(RecordAction::PatchMulti, None, Some("[]")).is_err());
        assert!(op(RecordAction::PatchMulti, None, Some("{}")).is_err());
    }
}
