//! Authentication: who a connection is, decided when it logs in.
//!
//! The surface every front door calls is [`AuthConfig::authenticate`]: credentials (a JSON
//! object: deepstream's auth data, say) in, an [`Identity`] or a [`Refused`] out. The
//! configured auth types (deepstream's config lists them under `auth:`) are offered the
//! login in turn and the first that knows the user decides (deepstream's "combine"
//! behaviour):
//!
//! - [`none`] — everyone gets in; the `username` they send, if any, is their id.
//! - [`file`](mod@file) — users.yml: salted password hashes, serverData, clientData.
//! - [`http`] — a webhook: the auth data is POSTed to a URL, a 2xx reply lets the user in.
//! - [`jwt`]  — a signed JSON Web Token; claims give the id and data.
//!
//! How a client logs in, and how it is refused, is its front door's: deepstream's
//! handshake (AUTH_SUCCESSFUL, AUTH_UNSUCCESSFUL, TOO_MANY_AUTH_ATTEMPTS, the login timer)
//! is `deepstream::login`.

pub mod file;
pub mod http;
pub mod jwt;
pub mod none;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value as Json, json};

use crate::config::ConfigError;

/// deepstream's user id for a connection that logged in without one.
pub const OPEN_USER: &str = "open";

/// A logged-in user.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub id: String,
    /// deepstream: every user but the anonymous `open` one is authenticated.
    pub is_authenticated: bool,
    /// Data for permission rules (`user.data`); never sent to the client.
    pub server_data: Json,
    /// Data for the client, sent when it logs in (deepstream: with AUTH_SUCCESSFUL).
    pub client_data: Json,
    rule_json: Json,
}

impl Identity {
    /// The user's id as the author of a journal entry: `None` for the anonymous user.
    pub fn author(&self) -> Option<Arc<str>> {
        self.is_authenticated.then(|| Arc::from(self.id.as_str()))
    }

    /// `id: None` is deepstream's anonymous `open` user.
    pub fn new(id: Option<String>, server_data: Json, client_data: Json) -> Identity {
        let id = id
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| OPEN_USER.to_owned());
        let is_authenticated = id != OPEN_USER;
        let rule_json = json!({
            "isAuthenticated": is_authenticated,
            "id": id,
            "data": server_data,
        });
        Identity {
            id,
            is_authenticated,
            server_data,
            client_data,
            rule_json,
        }
    }

    pub fn anonymous() -> Identity {
        Identity::new(None, Json::Null, Json::Null)
    }

    /// The anonymous user, one copy shared by every connection that is (or logged in as)
    /// it: an identity is half a KiB, too much to repeat on every idle connection.
    pub fn shared_anonymous() -> Arc<Identity> {
        static ANONYMOUS: std::sync::LazyLock<Arc<Identity>> =
            std::sync::LazyLock::new(|| Arc::new(Identity::anonymous()));
        ANONYMOUS.clone()
    }

    /// Shares the identity, using the one anonymous copy when it is that user.
    pub fn into_shared(self) -> Arc<Identity> {
        if self.id == OPEN_USER && self.server_data.is_null() && self.client_data.is_null() {
            Identity::shared_anonymous()
        } else {
            Arc::new(self)
        }
    }

    /// The `user` object permission rules read.
    pub fn rule_json(&self) -> &Json {
        &self.rule_json
    }
}

/// What one auth type says about a login.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Valid(Identity),
    /// Refused; `client_data` goes back to the client with AUTH_UNSUCCESSFUL.
    Invalid {
        client_data: Option<Json>,
    },
    /// Not this type's user: ask the next one (deepstream's `null` result).
    NotMine,
}

/// A refused login.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    /// What the auth type that refused lets the client know (a webhook's reply, file
    /// auth's "missing authentication parameter"...); `None` when it says nothing.
    pub client_data: Option<Json>,
}

#[async_trait]
pub trait Authenticator: Send + Sync + fmt::Debug {
    /// Decides on the auth data a client sent (always a JSON object).
    async fn authenticate(&self, auth_data: &Json) -> Outcome;
}

/// The configured auth types, in order.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Shared: every connection's guard holds the configuration.
    chain: Arc<[Arc<dyn Authenticator>]>,
}

impl Default for AuthConfig {
    /// deepstream's default: `auth: [{type: none}]`.
    fn default() -> Self {
        AuthConfig {
            chain: Arc::new([Arc::new(none::NoneAuth) as Arc<dyn Authenticator>]),
        }
    }
}

impl AuthConfig {
    pub fn new(chain: Vec<Arc<dyn Authenticator>>) -> AuthConfig {
        AuthConfig {
            chain: chain.into(),
        }
    }

    /// Offers a login to each auth type in turn; the first that knows the user decides.
    /// `credentials` is a JSON object (the front door refuses other shapes before asking:
    /// no auth type reads anything else). Refused when no type knows the user.
    pub async fn authenticate(&self, credentials: &Json) -> Result<Identity, Refused> {
        for auth in self.chain.iter() {
            match auth.authenticate(credentials).await {
                Outcome::Valid(identity) => return Ok(identity),
                Outcome::Invalid { client_data } => return Err(Refused { client_data }),
                Outcome::NotMine => {}
            }
        }
        Err(Refused { client_data: None })
    }

    /// Reads the `auth` section of a config document whose file is in `dir`: a list of
    /// `{type, options}` (deepstream 4+) or a single one (older configs).
    pub fn from_config(
        doc: &Json,
        dir: &Path,
    ) -> Result<Option<(AuthConfig, Vec<String>)>, ConfigError> {
        let Some(section) = doc.get("auth") else {
            return Ok(None);
        };
        let entries: Vec<&Json> = match section {
            Json::Array(list) => list.iter().collect(),
            Json::Object(_) => vec![section],
            other => {
                return Err(ConfigError::Invalid {
                    key: "auth".into(),
                    reason: format!("expected a list of {{type, options}}, got {other}"),
                });
            }
        };
        if entries.is_empty() {
            return Err(ConfigError::Invalid {
                key: "auth".into(),
                reason: "no authentication type: use `- type: none` to let everyone in".into(),
            });
        }
        let several = entries.len() > 1;
        let mut chain: Vec<Arc<dyn Authenticator>> = Vec::new();
        let mut warnings = Vec::new();
        for (i, entry) in entries.into_iter().enumerate() {
            let key = if several || section.is_array() {
                format!("auth[{i}]")
            } else {
                "auth".to_owned()
            };
            let kind = entry.get("type").and_then(Json::as_str);
            if entry.get("name").is_some() || entry.get("path").is_some() {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "custom authentication plugins cannot be loaded: use none, file, http or jwt".into(),
                });
            }
            let options = entry.get("options").cloned().unwrap_or(Json::Null);
            let context = Context {
                key: &key,
                dir,
                several,
            };
            let auth: Arc<dyn Authenticator> = match kind {
                Some("none") => Arc::new(none::NoneAuth),
                Some("file") => Arc::new(file::FileAuth::from_options(
                    &options,
                    &context,
                    &mut warnings,
                )?),
                Some("http") => Arc::new(http::HttpAuth::from_options(
                    &options,
                    &context,
                    &mut warnings,
                )?),
                Some("jwt") => Arc::new(jwt::JwtAuth::from_options(
                    &options,
                    &context,
                    &mut warnings,
                )?),
                Some("storage") => {
                    return Err(ConfigError::Invalid {
                        key: format!("{key}.type"),
                        reason: "`storage` authentication is not supported: move the users to a users.yml (`type: file`) or a webhook (`type: http`)".into(),
                    });
                }
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        key: format!("{key}.type"),
                        reason: format!(
                            "unknown authentication type {other:?}: use none, file, http or jwt"
                        ),
                    });
                }
                None => {
                    return Err(ConfigError::Invalid {
                        key: format!("{key}.type"),
                        reason: "missing: use none, file, http or jwt".into(),
                    });
                }
            };
            chain.push(auth);
        }
        Ok(Some((AuthConfig::new(chain), warnings)))
    }
}

/// Where an auth type's options are in the config, for messages and relative paths.
pub struct Context<'a> {
    pub key: &'a str,
    pub dir: &'a Path,
    /// Several auth types are configured: deepstream then defaults
    /// `reportInvalidParameters` to false, so one type's refusal lets the next one try.
    pub several: bool,
}

impl Context<'_> {
    pub fn invalid(&self, option: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: format!("{}.options.{option}", self.key),
            reason: reason.into(),
        }
    }

    /// Warns about option keys the type does not know.
    pub fn check_keys(&self, options: &Json, known: &[&str], warnings: &mut Vec<String>) {
        if let Some(map) = options.as_object() {
            for key in map.keys() {
                if !known.contains(&key.as_str()) {
                    warnings.push(format!(
                        "unknown config key `{}.options.{key}` is ignored",
                        self.key
                    ));
                }
            }
        }
    }

    pub fn report_invalid_parameters(&self, options: &Json) -> Result<bool, ConfigError> {
        match options.get("reportInvalidParameters") {
            None => Ok(!self.several),
            Some(Json::Bool(b)) => Ok(*b),
            Some(_) => Err(self.invalid("reportInvalidParameters", "expected true or false")),
        }
    }

    pub fn number(&self, options: &Json, option: &str, default: u64) -> Result<u64, ConfigError> {
        match options.get(option) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| self.invalid(option, "expected a non-negative whole number")),
        }
    }
}
