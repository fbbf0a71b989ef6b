//! Permission checks: which user may do what to which record, by Valve rules.
//!
//! The rule language lives in `recordsync_core::valve` and does no I/O. This module is
//! its runtime: it loads the permissions file named by the config ([`config`]), and for
//! each request ([`Guard::check`]) chooses the rule, gathers the facts the rule reads
//! (`oldData`, a write's merged `data`, the records `_()` cross-references) from the
//! engine, and runs the rule until it decides.
//!
//! The front doors call a [`Guard`] before every engine call that reveals or changes
//! data, and answer a refusal as deepstream does ([`Guard::refuse`]).

pub mod config;

use std::sync::Arc;

use serde_json::Value as Json;

use recordsync_core::WriteOp;
use recordsync_core::valve::{Check, Decision, Facts, Permissions, RuleType, Section};
use recordsync_deepstream_protocol::{RecordAction, RecordMessage};

use crate::Config;
use crate::auth::{AuthConfig, Identity};
use crate::deepstream::session::Session;
use recordsync_engine::{Engine, now_ms};

pub use config::PermissionConfig;

/// What a write rule sees as `data`.
#[derive(Debug, Clone, Copy)]
pub enum Data<'a> {
    /// The request carries no data (reads, deletes, creates, listens).
    None,
    /// The value as sent (UPDATE; and setData, where deepstream gives the value alone).
    Value(&'a Json),
    /// The record as it will be after this op: the op applied to the current value (what
    /// deepstream gives a rule for a patch).
    Merged(&'a WriteOp),
}

/// One connection's gatekeeper: it logs the connection in ([`Guard::login`]) and then
/// checks each request against the rules, reading records from the engine.
pub struct Guard {
    config: PermissionConfig,
    engine: Arc<Engine>,
    user: Arc<Identity>,
    pub(crate) auth: AuthConfig,
    pub(crate) max_auth_attempts: u32,
    pub(crate) failed_logins: u32,
}

impl Guard {
    /// The logged-in user's id as a journal's author: `None` for the anonymous user.
    pub fn author(&self) -> Option<Arc<str>> {
        self.user
            .is_authenticated
            .then(|| Arc::from(self.user.id.as_str()))
    }

    /// A guard for a new connection, from the server's settings.
    pub fn new(config: &Config, engine: Arc<Engine>) -> Guard {
        Guard {
            config: config.permission.clone(),
            engine,
            user: Identity::shared_anonymous(),
            auth: config.auth.clone(),
            max_auth_attempts: config.max_auth_attempts.max(1),
            failed_logins: 0,
        }
    }

    /// Who the connection is, from the moment it logs in.
    pub fn set_user(&mut self, user: Arc<Identity>) {
        self.user = user;
    }

    pub fn user(&self) -> &Identity {
        &self.user
    }

    /// True when every request is allowed (no permissions file), so callers can skip
    /// the work of gathering facts.
    pub fn is_open(&self) -> bool {
        self.config.is_open()
    }

    /// Decides whether the user may do `rule` (deepstream action `action`) on `name`.
    pub async fn check(
        &self,
        rule: RuleType,
        action: RecordAction,
        name: &str,
        data: Data<'_>,
    ) -> Decision {
        let Some(permissions) = self.config.rules() else {
            return Decision::Allow;
        };
        decide(
            permissions,
            self.config.max_rule_iterations,
            &self.engine,
            self.user.rule_json(),
            Request {
                rule,
                action,
                name,
                data,
            },
        )
        .await
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
        if self.is_open() {
            return true;
        }
        if create {
            let exists = matches!(self.engine.read(name).await, Ok(Some(_)));
            if !exists {
                let decision = self
                    .check(RuleType::Create, RecordAction::Create, name, Data::None)
                    .await;
                if decision != Decision::Allow {
                    self.refuse(session, m, name, &decision);
                    return false;
                }
            }
        }
        let action = match m.record_action() {
            Some(RecordAction::SubscribeAndHead) => RecordAction::SubscribeAndHead,
            Some(RecordAction::Subscribe) => RecordAction::Subscribe,
            _ => RecordAction::Read,
        };
        self.allow(session, m, RuleType::Read, action, name, Data::None)
            .await
    }

    /// Checks a write (deepstream: `write`; setData is checked against `create` and then
    /// `write`, with the value alone as `data`, even when the record exists).
    pub async fn allow_write(
        &self,
        session: &Session,
        m: &RecordMessage,
        action: RecordAction,
        name: &str,
        op: &WriteOp,
    ) -> bool {
        if self.is_open() {
            return true;
        }
        match action {
            RecordAction::CreateAndUpdate | RecordAction::CreateAndPatch => {
                if !self
                    .allow(
                        session,
                        m,
                        RuleType::Create,
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
                self.allow(
                    session,
                    m,
                    RuleType::Write,
                    RecordAction::Update,
                    name,
                    data,
                )
                .await
            }
            _ => {
                self.allow(session, m, RuleType::Write, action, name, Data::Merged(op))
                    .await
            }
        }
    }

    /// Checks, and on refusal answers the client. Returns whether the request may go on.
    pub async fn allow(
        &self,
        session: &Session,
        m: &RecordMessage,
        rule: RuleType,
        action: RecordAction,
        name: &str,
        data: Data<'_>,
    ) -> bool {
        if self.is_open() {
            return true;
        }
        let decision = self.check(rule, action, name, data).await;
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

/// One request to decide.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub rule: RuleType,
    pub action: RecordAction,
    pub name: &'a str,
    pub data: Data<'a>,
}

/// Runs the rule for `request`, loading from `engine` whatever it reads.
pub async fn decide(
    permissions: &Permissions,
    max_iterations: u32,
    engine: &Engine,
    user: &Json,
    request: Request<'_>,
) -> Decision {
    let mut check = match Check::new(
        permissions,
        Section::Record,
        request.rule,
        request.name,
        max_iterations,
    ) {
        Ok(check) => check,
        Err(decision) => return decision,
    };
    let rule = check.rule();
    let wants_merge = rule.uses_data && matches!(request.data, Data::Merged(_));
    let own = if rule.uses_old_data || wants_merge {
        check.loaded_own_record();
        match load(engine, request.name).await {
            Ok(value) => value,
            Err(reason) => return Decision::Error(reason),
        }
    } else {
        None
    };
    let merged;
    let data = match request.data {
        _ if !rule.uses_data => None,
        Data::None => None,
        Data::Value(v) => Some(v),
        Data::Merged(op) => {
            // A write to a missing record applies to `{}`, as the engine does.
            let mut value = own
                .clone()
                .unwrap_or_else(|| Json::Object(Default::default()));
            op.apply(&mut value);
            merged = value;
            Some(&merged)
        }
    };
    let facts = Facts {
        user,
        data,
        old_data: own.as_ref(),
        now: now_ms() as f64,
        action: f64::from(request.action as i32),
        name: request.name,
    };
    loop {
        match check.run(&facts) {
            Ok(decision) => return decision,
            Err(names) => {
                for name in names {
                    match load(engine, &name).await {
                        Ok(value) => check.provide(name, value),
                        Err(reason) => return Decision::Error(reason),
                    }
                }
            }
        }
    }
}

/// A record's committed value, `None` when it does not exist.
async fn load(engine: &Engine, name: &str) -> Result<Option<Json>, String> {
    match engine.read(name).await {
        Ok(None) => Ok(None),
        Ok(Some(snapshot)) => recordsync_core::json::parse(&snapshot.data)
            .map(Some)
            .map_err(|e| format!("record {name:?} is not valid JSON: {e}")),
        // An invalid name cannot exist: the rule sees null, as for a missing record.
        Err(recordsync_engine::EngineError::InvalidName(_)) => Ok(None),
        Err(e) => Err(format!(
            "failed to load record {name:?} for permissioning: {e}"
        )),
    }
}
