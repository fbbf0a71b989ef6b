//! deepstream's login handshake, after CONNECTION/ACCEPT:
//!
//! - AUTH/REQUEST with `data` a JSON object → the configured auth types decide
//!   ([`crate::auth::AuthConfig::authenticate`]);
//! - success: AUTH_SUCCESSFUL carrying the user's clientData (no data when it has none);
//! - failure: AUTH_UNSUCCESSFUL (with the auth type's clientData, if any); the
//!   `maxAuthAttempts`-th failure also sends TOO_MANY_AUTH_ATTEMPTS and closes the socket;
//! - data that is not a JSON object, or nests deeper than `json::MAX_DEPTH`:
//!   INVALID_MESSAGE_DATA saying which, and the socket is closed;
//! - the login timer: a connection whose first login attempt has not been answered within
//!   `unauthenticatedClientTimeout` (counted from the connection's start) gets
//!   AUTHENTICATION_TIMEOUT and is closed. deepstream stops the timer at the first
//!   answer, success or not: a client whose login was refused (say, its token after a
//!   server restart) may keep its connection and try again later, bounded by
//!   `maxAuthAttempts` and the heartbeat.

use std::sync::Arc;

use recordsync_core::json::{self, JsonError};
use serde_json::Value as Json;
use tokio::time::Instant;

use recordsync_deepstream_protocol::{
    AuthAction, AuthMessage, ConnectionAction, ConnectionMessage,
};

use super::session::Session;
use crate::Config;
use crate::auth::{AuthConfig, Identity, Refused};
use crate::net::connection::Close;

/// What the connection does after an AUTH/REQUEST.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Logged in as this user: record messages are served from now on.
    Accepted(Arc<Identity>),
    /// Refused; the client may try again.
    Refused,
    /// Refused for good: close the socket.
    Close(Close),
}

/// One connection's login: the auth types to ask, the attempts so far, the timer.
pub struct Login {
    auth: AuthConfig,
    max_attempts: u32,
    failed: u32,
    /// When the connection is closed for not logging in; `None` once an attempt has been
    /// answered.
    deadline: Option<Instant>,
}

impl Login {
    /// The login of a connection that starts now.
    pub fn new(config: &Config) -> Login {
        Login {
            auth: config.auth.clone(),
            max_attempts: config.max_auth_attempts.max(1),
            failed: 0,
            deadline: Some(Instant::now() + config.unauthenticated_timeout),
        }
    }

    /// When the connection is closed unless a login attempt is answered first.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The timer ran out: tells the client, and gives the close.
    pub fn timed_out(&self, session: &Session) -> Close {
        session.send(ConnectionMessage {
            action: ConnectionAction::AuthenticationTimeout as i32,
            ..Default::default()
        });
        Close::policy("not authenticated in time")
    }

    /// Handles one AUTH/REQUEST.
    pub async fn attempt(&mut self, session: &Session, m: &AuthMessage) -> Outcome {
        let credentials = match m.data.as_deref().map(json::parse::<Json>) {
            Some(Ok(data)) if data.is_object() => Ok(data),
            Some(Err(e @ JsonError::TooDeep { .. })) => Err(format!("auth {e}")),
            _ => Err("auth data must be a JSON object".to_owned()),
        };
        let credentials = match credentials {
            Ok(data) => data,
            Err(reason) => {
                session.send(AuthMessage {
                    action: AuthAction::InvalidMessageData as i32,
                    is_error: Some(true),
                    data: Some(Json::String(reason).to_string()),
                    ..Default::default()
                });
                return Outcome::Close(Close::policy("invalid authentication data"));
            }
        };
        let result = self.auth.authenticate(&credentials).await;
        self.deadline = None;
        match result {
            Ok(identity) => {
                let client_data =
                    (!identity.client_data.is_null()).then(|| identity.client_data.to_string());
                tracing::debug!(session = session.id, user = %identity.id, "logged in");
                session.send(AuthMessage {
                    action: AuthAction::AuthSuccessful as i32,
                    data: client_data,
                    ..Default::default()
                });
                Outcome::Accepted(identity.into_shared())
            }
            Err(Refused { client_data }) => {
                session.send(AuthMessage {
                    action: AuthAction::AuthUnsuccessful as i32,
                    data: client_data.filter(|d| !d.is_null()).map(|d| d.to_string()),
                    ..Default::default()
                });
                self.failed += 1;
                if self.failed >= self.max_attempts {
                    session.send(AuthMessage {
                        action: AuthAction::TooManyAuthAttempts as i32,
                        ..Default::default()
                    });
                    return Outcome::Close(Close::policy("too many authentication attempts"));
                }
                Outcome::Refused
            }
        }
    }
}
