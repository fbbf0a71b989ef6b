//! The permission rules on REST requests.
//!
//! Each request is checked as the deepstream request with the same effect, so a
//! permissions file written for deepstream means the same here, `action` included
//! (deepstream's record action numbers):
//!
//! | request                                  | checks, in order                                  | rules' `action` |
//! |------------------------------------------|---------------------------------------------------|-----------------|
//! | `GET` value, history, stream; listing    | read (for a listing, of each record listed)       | READ            |
//! | `PUT`                                    | create (when the record is missing), then write with `data` the new value | CREATE, UPDATE |
//! | `PATCH`                                  | create (when missing), then write with `data` the record after the patch | CREATE, PATCH |
//! | `DELETE`                                 | delete                                            | DELETE          |

use std::sync::Arc;

use recordsync_core::valve::Decision;
use recordsync_deepstream_protocol::RecordAction;

use super::errors::RestError;
use crate::ServerState;
use crate::auth::Identity;
use crate::permission::{Action, Data, Request};

/// One request's user, checked against the server's rules.
pub struct Guard<'a> {
    pub state: &'a ServerState,
    pub user: Arc<Identity>,
}

impl Guard<'_> {
    /// Whether every request is allowed (no rules): callers skip gathering facts.
    pub fn is_open(&self) -> bool {
        self.state.permissions.is_open()
    }

    /// The user id a write's journal entry names: `None` for the anonymous user.
    pub fn author(&self) -> Option<Arc<str>> {
        self.user.author()
    }

    /// Checks `action` on `name`; a refusal is 403.
    pub async fn check(
        &self,
        action: Action,
        wire: RecordAction,
        name: &str,
        data: Data<'_>,
    ) -> Result<(), RestError> {
        if self.is_open() {
            return Ok(());
        }
        let decision = self
            .state
            .permissions
            .check(Request {
                action,
                user: &self.user,
                name,
                data,
                wire_action: Some(wire as i32),
            })
            .await;
        let label = action.rule_type().name();
        match decision {
            Decision::Allow => Ok(()),
            Decision::Deny => Err(RestError::Denied {
                action: label,
                name: name.to_owned(),
            }),
            Decision::Error(reason) => {
                tracing::warn!(record = name, user = %self.user.id, "permission rule failed: {reason}");
                Err(RestError::RuleFailed {
                    action: label,
                    name: name.to_owned(),
                })
            }
        }
    }

    /// Checks a read of `name`.
    pub async fn read(&self, name: &str) -> Result<(), RestError> {
        self.check(Action::Read, RecordAction::Read, name, Data::None)
            .await
    }
}
