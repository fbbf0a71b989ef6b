//! Permission checks: which user may do what to which record, by Valve rules.
//!
//! The rule language lives in `recordsync_core::valve` and does no I/O. This module is
//! its runtime, and it knows no protocol: a front door turns each of its requests into
//! one or more neutral [`Request`]s — an [`Action`], the user's [`Identity`], the record's
//! name and, for a write, the new data — and answers a refusal in its own words. The
//! [`Guard`] chooses the rule, gathers the facts the rule reads from the engine (`oldData`,
//! a write's merged `data`, the records `_()` cross-references), and runs the rule until
//! it decides. It loads the record itself only when the chosen rule reads `oldData` or a
//! merged `data`: a check whose rule reads neither costs no load.
//!
//! The rules are deepstream's permissions file (its `record` section), so each action is
//! checked against one of its rule types ([`Action::rule_type`]). How deepstream's record
//! messages map to actions (a subscribe that creates checks `create` then `read`, a
//! `setData` `create` then `write`...) is the deepstream front door's business
//! (`deepstream/permission.rs`).

pub mod config;

use std::sync::Arc;

use serde_json::Value as Json;

use recordsync_core::WriteOp;
use recordsync_core::valve::{Check, Decision, Facts, Permissions, RuleType, Section};

use crate::auth::Identity;
use recordsync_engine::{Engine, now_ms};

pub use config::PermissionConfig;

/// What a request does to a record, whatever the protocol that asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Bring a missing record into being (deepstream: a subscribe that creates it,
    /// `setData`; ShareDB: a create op). Checked without data.
    Create,
    /// Learn a record's data or version, or follow its changes.
    Read,
    /// Change a record's data; the request carries the new data ([`Data`]).
    Write,
    /// Delete a record.
    Delete,
    /// Offer to provide the records a pattern matches (`name` is the pattern).
    Listen,
    /// Run a query over records. The rules have no query type: a query reveals data as a
    /// read does, so it is checked against the `read` rule of the name the front door
    /// gives (say, a collection).
    Query,
}

impl Action {
    /// The rule type of the permissions file that decides this action.
    pub fn rule_type(self) -> RuleType {
        match self {
            Action::Create => RuleType::Create,
            Action::Read | Action::Query => RuleType::Read,
            Action::Write => RuleType::Write,
            Action::Delete => RuleType::Delete,
            Action::Listen => RuleType::Listen,
        }
    }
}

/// What a write rule sees as `data`.
#[derive(Debug, Clone, Copy)]
pub enum Data<'a> {
    /// The request carries no data (reads, deletes, creates, listens).
    None,
    /// The new value as given (deepstream: UPDATE, and setData, where deepstream gives
    /// the value alone).
    Value(&'a Json),
    /// The record as it will be after this op: the op applied to the current value (what
    /// deepstream gives a rule for a patch). Costs a load of the record, when the rule
    /// reads `data`.
    Merged(&'a WriteOp),
}

/// One request to decide, in no protocol's terms.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub action: Action,
    /// Who asks: rules read its id, whether it is authenticated, and its server data.
    pub user: &'a Identity,
    /// The record (for [`Action::Listen`], the pattern).
    pub name: &'a str,
    pub data: Data<'a>,
    /// The front door's own number for the request, which rules read as `action`
    /// (deepstream's record actions: READ 3, UPDATE 18...; see docs/permissions.md).
    /// `None` when the front door has none: rules then see `NaN`, equal to no number.
    pub wire_action: Option<i32>,
}

/// The permission rules with the engine they read records from; shared by every
/// connection of every front door.
pub struct Guard {
    config: PermissionConfig,
    engine: Arc<Engine>,
}

impl Guard {
    pub fn new(config: PermissionConfig, engine: Arc<Engine>) -> Guard {
        Guard { config, engine }
    }

    /// True when every request is allowed (no permissions file), so callers can skip
    /// the work of gathering facts.
    pub fn is_open(&self) -> bool {
        self.config.is_open()
    }

    /// Whether `name` exists now (committed), for front doors whose checks depend on it
    /// (deepstream checks `create` before a subscribe creates a missing record).
    pub async fn exists(&self, name: &str) -> bool {
        matches!(self.engine.read(name).await, Ok(Some(_)))
    }

    /// Decides `request`.
    pub async fn check(&self, request: Request<'_>) -> Decision {
        let Some(permissions) = self.config.rules() else {
            return Decision::Allow;
        };
        decide(
            permissions,
            self.config.max_rule_iterations,
            &self.engine,
            request,
        )
        .await
    }
}

/// Runs the rule for `request`, loading from `engine` whatever it reads.
pub async fn decide(
    permissions: &Permissions,
    max_iterations: u32,
    engine: &Engine,
    request: Request<'_>,
) -> Decision {
    let mut check = match Check::new(
        permissions,
        Section::Record,
        request.action.rule_type(),
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
        user: request.user.rule_json(),
        data,
        old_data: own.as_ref(),
        now: now_ms() as f64,
        action: request.wire_action.map_or(f64::NAN, f64::from),
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
