//! deepstream's record messages as permission checks, and deepstream's refusals.
//!
//! The checks are deepstream's (its Valve `record` section), mapped onto the neutral
//! [`Action`]s of [`crate::permission`]:
//!
//! | message                                   | checks, in order                                      | rules' `action`          |
//! |-------------------------------------------|-------------------------------------------------------|--------------------------|
//! | SUBSCRIBE, SUBSCRIBE_AND_READ, SUBSCRIBE_AND_HEAD | read                                          | the message's (READ for SUBSCRIBE_AND_READ) |
//! | SUBSCRIBE_CREATE_AND_READ                 | create (only when the record is missing), then read  | CREATE, then READ        |
//! | READ, HEAD, HEAD_BULK                     | read                                                  | the message's            |
//! | UPDATE, PATCH, ERASE, PATCH_MULTI         | write, `data` the record after the op                 | the message's            |
//! | CREATE_AND_UPDATE, CREATE_AND_PATCH (setData) | create, then write with the value alone as `data` (even when the record exists) | CREATE, then UPDATE |
//! | DELETE                                    | delete                                                | DELETE                   |
//! | LISTEN                                    | listen, against the pattern's text                    | LISTEN                   |
//!
//! and its Valve `event` section ([`Guard::allow_event`]):
//!
//! | message                     | checks                                              | rules' `action` |
//! |-----------------------------|-----------------------------------------------------|-----------------|
//! | EVENT SUBSCRIBE             | subscribe, for each name                            | SUBSCRIBE (3)   |
//! | EVENT EMIT                  | publish, `data` the payload as emitted              | EMIT (2)        |
//! | EVENT LISTEN                | listen, against the pattern's text                  | LISTEN (5)      |
//!
//! (UNSUBSCRIBE, UNLISTEN and a listener's answers have no rule, as in deepstream.)
//!
//! A refusal is answered as deepstream answers it ([`Guard::refuse`],
//! [`Guard::refuse_event`]).

use std::sync::Arc;

use recordsync_core::WriteOp;
use recordsync_core::valve::Decision;
use recordsync_deepstream_protocol::{EventAction, EventMessage, RecordAction, RecordMessage};

use super::session::Session;
use crate::auth::Identity;
use crate::permission::{self, Action, Data, Request};

/// One deepstream connection's gatekeeper: the server's rules and the connection's user.
pub struct Guard {
    rules: Arc<permission::Guard>,
    user: Arc<Identity>,
}

impl Guard {
    /// A guard for a connection that has not logged in: the anonymous user.
    pub fn new(rules: Arc<permission::Guard>) -> Guard {
        Guard {
            rules,
            user: Identity::shared_anonymous(),
        }
    }

    /// Who the connection is, from the moment it logs in.
    pub fn set_user(&mut self, user: Arc<Identity>) {
        self.user = user;
    }

    /// The logged-in user's id as a journal's author: `None` for the anonymous user.
    pub fn author(&self) -> Option<Arc<str>> {
        self.user.author()
    }

    /// Decides whether the user may do `action` (deepstream action `wire`) on `name`.
    pub async fn check(
        &self,
        action: Action,
        wire: RecordAction,
        name: &str,
        data: Data<'_>,
    ) -> Decision {
        self.decide(action, wire as i32, name, data).await
    }

    async fn decide(&self, action: Action, wire: i32, name: &str, data: Data<'_>) -> Decision {
        self.rules
            .check(Request {
                action,
                user: &self.user,
                name,
                data,
                wire_action: Some(wire),
            })
            .await
    }

    /// Checks an event request `m` on `name` (an event name, or for LISTEN the pattern)
    /// against the rules' `event` section, and on refusal answers the client. An EMIT's
    /// payload is the rule's `data`; a payload that is not JSON fails a rule that reads
    /// it (MESSAGE_PERMISSION_ERROR), as in deepstream. Returns whether the request may
    /// go on.
    pub async fn allow_event(
        &self,
        session: &Session,
        m: &EventMessage,
        action: Action,
        name: &str,
    ) -> bool {
        if self.rules.is_open() {
            return true;
        }
        let parsed;
        let data = match m.data.as_deref() {
            Some(text) if action == Action::Publish => {
                match recordsync_core::json::parse::<serde_json::Value>(text) {
                    Ok(value) => {
                        parsed = value;
                        Data::Value(&parsed)
                    }
                    Err(e) => {
                        let decision =
                            Decision::Error(format!("the event's data is not JSON: {e}"));
                        self.refuse_event(session, m, name, &decision);
                        return false;
                    }
                }
            }
            _ => Data::None,
        };
        let decision = self.decide(action, m.action, name, data).await;
        if decision == Decision::Allow {
            return true;
        }
        self.refuse_event(session, m, name, &decision);
        false
    }

    /// Answers a refused event request as deepstream does: MESSAGE_DENIED (or
    /// MESSAGE_PERMISSION_ERROR when the rule failed) naming the request's action and
    /// the event (or pattern), with its correlation id.
    pub fn refuse_event(
        &self,
        session: &Session,
        m: &EventMessage,
        name: &str,
        decision: &Decision,
    ) {
        let action = match decision {
            Decision::Error(reason) => {
                tracing::warn!(event = name, user = %self.user.id, "permission rule failed: {reason}");
                EventAction::MessagePermissionError
            }
            _ => EventAction::MessageDenied,
        };
        session.send(EventMessage {
            original_action: Some(m.action),
            is_error: Some(true),
            correlation_id: m.correlation_id.clone(),
            ..EventMessage::named(action, name)
        });
    }

    /// Checks a subscription to `name` (deepstream: `read`, and `create` first when the
    /// record is missing and the request creates it). Sends the refusal itself and
    /// returns false when refused.
    pub async fn allow_subscribe(
        &self,
        session: &Session,
        m: &RecordMessage,
        name: &str,
        create: bool,
    ) -> bool {
        if self.rules.is_open() {
            return true;
        }
        if create && !self.rules.exists(name).await {
            let decision = self
                .check(Action::Create, RecordAction::Create, name, Data::None)
                .await;
            if decision != Decision::Allow {
                self.refuse(session, m, name, &decision);
                return false;
            }
        }
        let wire = match m.record_action() {
            Some(RecordAction::SubscribeAndHead) => RecordAction::SubscribeAndHead,
            Some(RecordAction::Subscribe) => RecordAction::Subscribe,
            _ => RecordAction::Read,
        };
        self.allow(session, m, Action::Read, wire, name, Data::None)
            .await
    }

    /// Checks a write (deepstream: `write`; setData is checked against `create` and then
    /// `write`, with the value alone as `data`, even when the record exists).
    pub async fn allow_write(
        &self,
        session: &Session,
        m: &RecordMessage,
        wire: RecordAction,
        name: &str,
        op: &WriteOp,
    ) -> bool {
        if self.rules.is_open() {
            return true;
        }
        match wire {
            RecordAction::CreateAndUpdate | RecordAction::CreateAndPatch => {
                if !self
                    .allow(
                        session,
                        m,
                        Action::Create,
                        RecordAction::Create,
                        name,
                        Data::None,
                    )
                    .await
                {
                    return false;
                }
                let data = match op {
                    WriteOp::Update { data } | WriteOp::Patch { data, .. } => Data::Value(data),
                    other => Data::Merged(other),
                };
                self.allow(session, m, Action::Write, RecordAction::Update, name, data)
                    .await
            }
            _ => {
                self.allow(session, m, Action::Write, wire, name, Data::Merged(op))
                    .await
            }
        }
    }

    /// Checks, and on refusal answers the client. Returns whether the request may go on.
    pub async fn allow(
        &self,
        session: &Session,
        m: &RecordMessage,
        action: Action,
        wire: RecordAction,
        name: &str,
        data: Data<'_>,
    ) -> bool {
        if self.rules.is_open() {
            return true;
        }
        let decision = self.check(action, wire, name, data).await;
        if decision == Decision::Allow {
            return true;
        }
        self.refuse(session, m, name, &decision);
        false
    }

    /// Answers a refused request as deepstream does: MESSAGE_DENIED (or
    /// MESSAGE_PERMISSION_ERROR when the rule failed) naming the request's action and the
    /// record, with its correlation id and write-ack flag. Nothing else: a refused read
    /// does not tell whether the record exists.
    pub fn refuse(&self, session: &Session, m: &RecordMessage, name: &str, decision: &Decision) {
        let action = match decision {
            Decision::Error(reason) => {
                tracing::warn!(record = name, user = %self.user.id, "permission rule failed: {reason}");
                RecordAction::MessagePermissionError
            }
            _ => RecordAction::MessageDenied,
        };
        session.send(RecordMessage {
            original_action: Some(m.action),
            is_error: Some(true),
            correlation_id: m.correlation_id.clone(),
            is_write_ack: m.is_write_ack.filter(|w| *w),
            ..RecordMessage::named(action, name)
        });
    }
}
