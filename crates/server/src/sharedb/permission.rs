//! ShareDB's requests as permission checks (the table is in the module docs of
//! [`super`]), and ShareDB-style refusals: a refused read is
//! `ERR_SNAPSHOT_READS_REJECTED`, a refused op `ERR_OP_SUBMIT_REJECTED` (which the
//! client answers by rolling the op back).

use std::sync::Arc;

use recordsync_core::json0::Component;
use recordsync_core::valve::Decision;
use recordsync_sharedb_protocol::{ErrorCode, ShareDbError};

use crate::auth::Identity;
use crate::permission::{self, Action, Data, Request};

/// One ShareDB connection's gatekeeper: the server's rules and the connection's user.
#[derive(Clone)]
pub struct Guard {
    rules: Arc<permission::Guard>,
    user: Arc<Identity>,
}

impl Guard {
    /// A guard for `user`, whom the connection's upgrade request was authenticated as
    /// ([`super::auth`]).
    pub fn new(rules: Arc<permission::Guard>, user: Arc<Identity>) -> Guard {
        Guard { rules, user }
    }

    /// The user's id as a journal's author: `None` for the anonymous user.
    pub fn author(&self) -> Option<Arc<str>> {
        self.user.author()
    }

    async fn check(&self, action: Action, name: &str, data: Data<'_>) -> Decision {
        if self.rules.is_open() {
            return Decision::Allow;
        }
        self.rules
            .check(Request {
                action,
                user: &self.user,
                name,
                data,
                wire_action: None,
            })
            .await
    }

    /// May the user read document `name` (fetch, subscribe, snapshots)?
    pub async fn read(&self, name: &str) -> Result<(), ShareDbError> {
        let decision = self.check(Action::Read, name, Data::None).await;
        refusal(decision, name, ErrorCode::ERR_SNAPSHOT_READS_REJECTED)
    }

    /// May the user query collection `c`? Checked as [`Action::Query`] against the name
    /// `c` (the collection: a rule for `"c"`, or a pattern matching it, decides); each
    /// document of the results is then checked as a read.
    pub async fn query(&self, c: &str) -> Result<(), ShareDbError> {
        let decision = self.check(Action::Query, c, Data::None).await;
        refusal(decision, c, ErrorCode::ERR_SNAPSHOT_READS_REJECTED)
    }

    /// True when there are no rules: every check allows, and callers may skip them.
    pub fn is_open(&self) -> bool {
        self.rules.is_open()
    }

    /// May the user create document `name`?
    pub async fn create(&self, name: &str) -> Result<(), ShareDbError> {
        let decision = self.check(Action::Create, name, Data::None).await;
        refusal(decision, name, ErrorCode::ERR_OP_SUBMIT_REJECTED)
    }

    /// May the user apply json0 `op` to document `name`?
    pub async fn write(&self, name: &str, op: &[Component]) -> Result<(), ShareDbError> {
        let decision = self.check(Action::Write, name, Data::Json0(op)).await;
        refusal(decision, name, ErrorCode::ERR_OP_SUBMIT_REJECTED)
    }

    /// May the user publish presence `value` on channel `name` (a write of `name` whose
    /// `data` is the value)?
    pub async fn write_value(
        &self,
        name: &str,
        value: &serde_json::Value,
    ) -> Result<(), ShareDbError> {
        let decision = self.check(Action::Write, name, Data::Value(value)).await;
        refusal(decision, name, ErrorCode::ERR_OP_SUBMIT_REJECTED)
    }

    /// May the user delete document `name`?
    pub async fn delete(&self, name: &str) -> Result<(), ShareDbError> {
        let decision = self.check(Action::Delete, name, Data::None).await;
        refusal(decision, name, ErrorCode::ERR_OP_SUBMIT_REJECTED)
    }
}

fn refusal(decision: Decision, name: &str, code: ErrorCode) -> Result<(), ShareDbError> {
    match decision {
        Decision::Allow => Ok(()),
        Decision::Error(reason) => {
            tracing::warn!(record = name, "permission rule failed: {reason}");
            Err(ShareDbError::new(
                code,
                format!("permission denied: the rule for {name:?} failed"),
            ))
        }
        _ => Err(ShareDbError::new(
            code,
            format!("permission denied for {name:?}"),
        )),
    }
}
