//! deepstream's login handshake, after CONNECTION/ACCEPT:
//!
//! - AUTH/REQUEST with `data` a JSON object → the configured auth types decide;
//! - success: AUTH_SUCCESSFUL carrying the user's clientData (no data when it has none);
//! - failure: AUTH_UNSUCCESSFUL (with the auth type's clientData, if any); the
//!   `maxAuthAttempts`-th failure also sends TOO_MANY_AUTH_ATTEMPTS and closes the socket;
//! - data that is not a JSON object, or nests deeper than `json::MAX_DEPTH`:
//!   INVALID_MESSAGE_DATA saying which, and the socket is closed.
//!
//! The unauthenticated-connection timeout is kept by the connection itself.

use recordsync_core::json::{self, JsonError};
use serde_json::Value as Json;

use recordsync_deepstream_protocol::{AuthAction, AuthMessage};

use crate::deepstream::session::Session;
use crate::permission::Guard;

/// What the connection does after an AUTH/REQUEST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// Logged in: record messages are served from now on.
    Accepted,
    /// Refused; the client may try again.
    Refused,
    /// Refused for good: close the socket with this reason.
    Close(&'static str),
}

impl Guard {
    /// Handles one AUTH/REQUEST.
    pub async fn login(&mut self, session: &Session, m: &AuthMessage) -> Login {
        let auth_data = match m.data.as_deref().map(json::parse::<Json>) {
            Some(Ok(data)) if data.is_object() => Ok(data),
            Some(Err(e @ JsonError::TooDeep { .. })) => Err(format!("auth {e}")),
            _ => Err("auth data must be a JSON object".to_owned()),
        };
        let auth_data = match auth_data {
            Ok(data) => data,
            Err(reason) => {
                session.send(AuthMessage {
                    action: AuthAction::InvalidMessageData as i32,
                    is_error: Some(true),
                    data: Some(Json::String(reason).to_string()),
                    ..Default::default()
                });
                return Login::Close("invalid authentication data");
            }
        };
        match self.auth.authenticate(&auth_data).await {
            Ok(identity) => {
                let client_data =
                    (!identity.client_data.is_null()).then(|| identity.client_data.to_string());
                tracing::debug!(session = session.id, user = %identity.id, "logged in");
                self.set_user(identity.into_shared());
                session.send(AuthMessage {
                    action: AuthAction::AuthSuccessful as i32,
                    data: client_data,
                    ..Default::default()
                });
                Login::Accepted
            }
            Err(client_data) => {
                session.send(AuthMessage {
                    action: AuthAction::AuthUnsuccessful as i32,
                    data: client_data.filter(|d| !d.is_null()).map(|d| d.to_string()),
                    ..Default::default()
                });
                self.failed_logins += 1;
                if self.failed_logins >= self.max_auth_attempts {
                    session.send(AuthMessage {
                        action: AuthAction::TooManyAuthAttempts as i32,
                        ..Default::default()
                    });
                    return Login::Close("too many authentication attempts");
                }
                Login::Refused
            }
        }
    }
}
