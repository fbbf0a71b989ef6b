//! Who a request is: `authData`, a `token`, or nobody, through the configured auth types;
//! and the tokens `POST /api/auth` issues.
//!
//! deepstream hands `{token}` to its auth types and leaves tokens to them (its e2e suite's
//! own auth plugin issues some; the stock `none` and `file` types issue none, so
//! `/api/auth` answers them with `clientData` alone). recordsync issues a token on every
//! successful `/api/auth`: an opaque random string that stands for the identity the login
//! gave, until it expires ([`TOKEN_LIFETIME`]) or the server restarts. A `token` a request
//! brings is looked up among those first; one recordsync did not issue is handed to the
//! auth types as `{token}`, as deepstream does (a `jwt` auth type reads it there).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use parking_lot::Mutex;
use rand::RngCore;
use serde_json::{Map, Value};

use crate::auth::{AuthConfig, Identity, Refused};

/// How long an issued token stands for its user.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Tokens kept at most; past that, the oldest are forgotten first. Bounds the memory that
/// repeated logins can take.
pub const MAX_TOKENS: usize = 100_000;

/// The tokens issued by this server, each with the identity it stands for.
#[derive(Default)]
pub struct Tokens {
    inner: Mutex<TokenTable>,
}

#[derive(Default)]
struct TokenTable {
    by_token: HashMap<String, (Arc<Identity>, Instant)>,
    /// Issue order, for expiry and the bound.
    order: VecDeque<(Instant, String)>,
}

impl Tokens {
    /// A new token for `user`.
    pub fn issue(&self, user: Arc<Identity>) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = Instant::now();
        let mut table = self.inner.lock();
        table.forget_expired(now);
        while table.order.len() >= MAX_TOKENS {
            if let Some((_, old)) = table.order.pop_front() {
                table.by_token.remove(&old);
            }
        }
        table.by_token.insert(token.clone(), (user, now));
        table.order.push_back((now, token.clone()));
        token
    }

    /// The user a token issued here (and not expired) stands for.
    pub fn user(&self, token: &str) -> Option<Arc<Identity>> {
        let now = Instant::now();
        let mut table = self.inner.lock();
        table.forget_expired(now);
        table.by_token.get(token).map(|(user, _)| user.clone())
    }
}

impl TokenTable {
    fn forget_expired(&mut self, now: Instant) {
        while let Some((issued, _)) = self.order.front() {
            if now.duration_since(*issued) < TOKEN_LIFETIME {
                break;
            }
            if let Some((_, token)) = self.order.pop_front() {
                self.by_token.remove(&token);
            }
        }
    }
}

/// The credentials of a `POST /api` request, after deepstream's checks of their shape.
pub enum Credentials<'a> {
    /// `authData`: an object (an array, which deepstream lets through as an object, is
    /// offered as no data).
    AuthData(&'a Value),
    Token(&'a str),
    /// Neither: the auth types are offered `{}` (an open server lets the request in).
    Nobody,
}

/// Decides who the request is.
pub async fn identify(
    auth: &AuthConfig,
    tokens: &Tokens,
    credentials: Credentials<'_>,
) -> Result<Arc<Identity>, Refused> {
    let data = match credentials {
        Credentials::AuthData(v) if v.is_object() => v.clone(),
        Credentials::AuthData(_) | Credentials::Nobody => Value::Object(Map::new()),
        Credentials::Token(token) => {
            if let Some(user) = tokens.user(token) {
                return Ok(user);
            }
            let mut m = Map::new();
            m.insert("token".into(), token.into());
            Value::Object(m)
        }
    };
    auth.authenticate(&data).await.map(Identity::into_shared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_stand_for_their_user_and_are_unguessable_strings() {
        let tokens = Tokens::default();
        let alice = Arc::new(Identity::new(
            Some("alice".into()),
            Value::Null,
            Value::Null,
        ));
        let a = tokens.issue(alice.clone());
        let b = tokens.issue(Identity::shared_anonymous());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "32 random bytes, base64url");
        assert_eq!(tokens.user(&a).unwrap().id, "alice");
        assert_eq!(tokens.user(&b).unwrap().id, "open");
        assert!(tokens.user("made-up").is_none());
    }

    #[tokio::test]
    async fn an_unknown_token_goes_to_the_auth_types() {
        let tokens = Tokens::default();
        // auth none lets every request in, a token or not
        let user = identify(&AuthConfig::default(), &tokens, Credentials::Token("x"))
            .await
            .unwrap();
        assert!(!user.is_authenticated);
    }
}
