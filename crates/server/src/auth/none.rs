//! `type: none`: everyone gets in. A `username` in the auth data becomes the user's id
//! (so rules can tell users apart without a password); without one the user is
//! deepstream's anonymous `open`, for which `user.isAuthenticated` is false.

use async_trait::async_trait;
use serde_json::Value as Json;

use super::{Authenticator, Identity, Outcome};

#[derive(Debug)]
pub struct NoneAuth;

#[async_trait]
impl Authenticator for NoneAuth {
    async fn authenticate(&self, auth_data: &Json) -> Outcome {
        // deepstream: `authData.username && authData.username.toString()`.
        let id = match auth_data.get("username") {
            None | Some(Json::Null) | Some(Json::Bool(false)) => None,
            Some(Json::String(s)) => Some(s.clone()),
            Some(Json::Number(n)) if n.as_f64() == Some(0.0) => None,
            Some(Json::Number(n)) => Some(recordsync_core::valve::value::number_to_string(
                n.as_f64().unwrap_or(f64::NAN),
            )),
            Some(Json::Bool(true)) => Some("true".into()),
            Some(other) => Some(recordsync_core::valve::value::to_string(
                &recordsync_core::valve::value::Value::from_json(other),
            )),
        };
        Outcome::Valid(Identity::new(id, Json::Null, Json::Null))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn username_becomes_the_id() {
        let Outcome::Valid(user) = NoneAuth.authenticate(&json!({"username": "alice"})).await
        else {
            panic!()
        };
        assert_eq!((user.id.as_str(), user.is_authenticated), ("alice", true));
        let Outcome::Valid(user) = NoneAuth.authenticate(&json!({})).await else {
            panic!()
        };
        assert_eq!((user.id.as_str(), user.is_authenticated), ("open", false));
    }
}
