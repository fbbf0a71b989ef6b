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
//! The rules are deepstream's permissions file (its `record` and `event` sections), so
//! each action is checked against one of its rule types ([`Action::rule_type`]) in one
//! of its sections ([`Action::section`]). How deepstream's record
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

/// What a request does to a record or an event, whatever the protocol that asked.
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
    /// Say that records changed in storage outside the server (deepstream's `notify`),
    /// so that subscribers are told of them.
    Notify,
    /// Run a query over records. The rules have no query type: a query reveals data as a
    /// read does, so it is checked against the `read` rule of the name the front door
    /// gives (say, a collection).
    Query,
    /// Emit an event (`name` is the event's; `data` its payload, as given).
    Publish,
    /// Subscribe to an event name.
    Subscribe,
    /// Offer to provide the events a pattern matches (`name` is the pattern).
    ListenEvents,
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
            Action::Notify => RuleType::Notify,
            Action::Publish => RuleType::Publish,
            Action::Subscribe => RuleType::Subscribe,
            Action::ListenEvents => RuleType::Listen,
        }
    }

    /// The section of the permissions file whose rules decide this action.
    pub fn section(self) -> Section {
        match self {
            Action::Publish | Action::Subscribe | Action::ListenEvents => Section::Event,
            _ => Section::Record,
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
    /// The record as it will be after this json0 op (ShareDB): the op applied to the
    /// current value, loaded when the rule reads `data`. An op that does not apply to it
    /// fails the rule (`Decision::Error`).
    Json0(&'a [recordsync_core::json0::Component]),
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

    /// Decides `request`. Every refusal (a rule saying no, or failing) is counted in
    /// `recordsync_permission_denied_total{action}`, whichever front door asked.
    pub async fn check(&self, request: Request<'_>) -> Decision {
        let Some(permissions) = self.config.rules() else {
            return Decision::Allow;
        };
        let action = request.action.rule_type().name();
        let decision = decide(
            permissions,
            self.config.max_rule_iterations,
            &self.engine,
            request,
        )
        .await;
        if !matches!(decision, Decision::Allow) {
            metrics::counter!("recordsync_permission_denied_total", "action" => action)
                .increment(1);
        }
        decision
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
        request.action.section(),
        request.action.rule_type(),
        request.name,
        max_iterations,
    ) {
        Ok(check) => check,
        Err(decision) => return decision,
    };
    let rule = check.rule();
    let wants_merge = rule.uses_data && matches!(request.data, Data::Merged(_) | Data::Json0(_));
    // Events are not stored: an event rule's `oldData` is null, never a record's value.
    let reads_record = request.action.section() == Section::Record;
    let own = if reads_record && (rule.uses_old_data || wants_merge) {
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
        Data::Json0(op) => {
            let Some(current) = own.as_ref() else {
                return Decision::Error(format!(
                    "record {:?} does not exist: a json0 op needs a record",
                    request.name
                ));
            };
            match recordsync_core::json0::apply(current, op) {
                Ok(value) => merged = value,
                Err(e) => return Decision::Error(format!("the json0 op does not apply: {e}")),
            }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use recordsync_engine::WriteDone;
    use recordsync_engine::listen::Listening;
    use recordsync_store::MemoryStore;

    use super::*;

    fn engine() -> Arc<Engine> {
        Engine::new(
            Arc::new(MemoryStore::new()),
            Listening::new(Duration::from_secs(1), false),
            Duration::from_secs(60),
            None,
        )
    }

    fn guard(engine: &Arc<Engine>, rules: &str, max_iterations: u32) -> Guard {
        let (rules, warnings) = Permissions::from_yaml(rules, "test").unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let mut config = PermissionConfig::with_rules(rules);
        config.max_rule_iterations = max_iterations;
        Guard::new(config, engine.clone())
    }

    async fn write(engine: &Engine, name: &str, data: Json) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let request = recordsync_engine::WriteRequest::new(
            0,
            WriteOp::Update { data },
            recordsync_engine::Base::Next,
        );
        engine
            .write(
                name,
                request,
                WriteDone::new(move |r| {
                    let _ = tx.send(r.is_ok());
                }),
            )
            .await;
        assert!(rx.await.unwrap());
    }

    fn request<'a>(action: Action, user: &'a Identity, name: &'a str) -> Request<'a> {
        Request {
            action,
            user,
            name,
            data: Data::None,
            wire_action: None,
        }
    }

    #[tokio::test]
    async fn each_action_is_decided_by_its_rule_type() {
        let engine = engine();
        let user = Identity::anonymous();
        let cases = [
            (Action::Create, "create"),
            (Action::Read, "read"),
            (Action::Query, "read"),
            (Action::Write, "write"),
            (Action::Delete, "delete"),
            (Action::Listen, "listen"),
        ];
        for (action, rule) in cases {
            // Only the rule of the action's type allows: the others all deny.
            let mut rules = String::from("record:\n  \"*\":\n");
            for other in ["create", "read", "write", "delete", "listen"] {
                rules.push_str(&format!("    {other}: {}\n", other == rule));
            }
            let guard = guard(&engine, &rules, 3);
            assert_eq!(
                guard.check(request(action, &user, "r")).await,
                Decision::Allow,
                "{action:?} is decided by `{rule}`"
            );
            for (other, _) in cases.iter().filter(|(_, r)| *r != rule) {
                assert_eq!(
                    guard.check(request(*other, &user, "r")).await,
                    Decision::Deny,
                    "{other:?} is not decided by `{rule}`"
                );
            }
        }
    }

    #[tokio::test]
    async fn rules_see_the_identity_the_front_doors_number_and_the_data() {
        let engine = engine();
        let rules = "record:\n  \"*\":\n    read: \"action === 3 && user.id === 'alice' && user.data.role === 'admin' && user.isAuthenticated\"\n    write: \"data.a === 1 && oldData.b === 2\"\n";
        let guard = guard(&engine, rules, 3);
        let alice = Identity::new(
            Some("alice".into()),
            json!({"role": "admin"}),
            json!({"name": "Alice"}),
        );
        let read = |user, wire_action| Request {
            wire_action,
            ..request(Action::Read, user, "r")
        };
        assert_eq!(guard.check(read(&alice, Some(3))).await, Decision::Allow);
        assert_eq!(guard.check(read(&alice, Some(5))).await, Decision::Deny);
        // A front door without numbers: `action` is no number.
        assert_eq!(guard.check(read(&alice, None)).await, Decision::Deny);
        let bob = Identity::new(Some("bob".into()), json!({"role": "admin"}), Json::Null);
        assert_eq!(guard.check(read(&bob, Some(3))).await, Decision::Deny);

        write(&engine, "r", json!({"b": 2})).await;
        let value = json!({"a": 1});
        let patch = WriteOp::Patch {
            path: "a".into(),
            data: json!(1),
        };
        let wrong = WriteOp::Patch {
            path: "a".into(),
            data: json!(2),
        };
        for (data, expected) in [
            (Data::Value(&value), Decision::Allow),
            // Merged into the record now, whose `b` the rule reads as `oldData.b`.
            (Data::Merged(&patch), Decision::Allow),
            (Data::Merged(&wrong), Decision::Deny),
            (Data::None, Decision::Error(String::new())),
        ] {
            let decision = guard
                .check(Request {
                    data,
                    ..request(Action::Write, &alice, "r")
                })
                .await;
            match expected {
                Decision::Error(_) => assert!(matches!(decision, Decision::Error(_))),
                expected => assert_eq!(decision, expected, "{data:?}"),
            }
        }
    }

    #[tokio::test]
    async fn only_rules_that_read_the_record_cost_its_load() {
        // With one iteration, loading the record takes the budget: a rule that needs the
        // record fails, one that does not is decided without it.
        let engine = engine();
        write(&engine, "r", json!({"a": 1})).await;
        let user = Identity::anonymous();
        let rules = "record:\n  \"*\":\n    read: \"name === 'r'\"\n    write: \"data !== null\"\n    delete: \"oldData.a === 1\"\n";
        let one = guard(&engine, rules, 1);
        assert_eq!(
            one.check(request(Action::Read, &user, "r")).await,
            Decision::Allow
        );
        let value = json!({});
        let as_given = Request {
            data: Data::Value(&value),
            ..request(Action::Write, &user, "r")
        };
        assert_eq!(one.check(as_given).await, Decision::Allow);
        let op = WriteOp::Erase { path: "a".into() };
        let merged = Request {
            data: Data::Merged(&op),
            ..request(Action::Write, &user, "r")
        };
        assert!(matches!(one.check(merged).await, Decision::Error(_)));
        assert!(matches!(
            one.check(request(Action::Delete, &user, "r")).await,
            Decision::Error(_)
        ));
        let two = guard(&engine, rules, 2);
        assert_eq!(two.check(merged).await, Decision::Allow);
        assert_eq!(
            two.check(request(Action::Delete, &user, "r")).await,
            Decision::Allow
        );
    }
}
