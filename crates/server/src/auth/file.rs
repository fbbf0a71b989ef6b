//! `type: file`: users from a users.yml.
//!
//! ```yaml
//! auth:
//!   - type: file
//!     options:
//!       users: fileLoad(users.yml)   # relative to the config file (or `path: ./users.yml`)
//!       hash: 'md5'                  # deepstream's hash options, for its hashes
//!       iterations: 100
//!       keyLength: 32
//! ```
//!
//! users.yml maps a username to `password`, `serverData` (for permission rules) and
//! `clientData` (sent to the client on login). A password may be:
//! - an Argon2id PHC string (`$argon2id$...`, what `recordsync hash` prints): the
//!   recommended form, a memory-hard KDF with its own salt and parameters;
//! - deepstream's form, base64(PBKDF2(password, salt)) followed by the salt, checked
//!   with the `hash`, `iterations` and `keyLength` options, so a deepstream users.yml
//!   works unchanged;
//! - clear text, when no `hash` option is set (as deepstream allows; not recommended).

use std::path::Path;
use std::sync::Arc;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value as Json, json};

use super::{Authenticator, Context, Identity, Outcome};
use crate::config::ConfigError;
use crate::permission::config::{file_load_path, read_text, resolve};

/// A hash function deepstream's PBKDF2 can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    fn from_name(name: &str) -> Option<Digest> {
        Some(match name.to_ascii_lowercase().replace('-', "").as_str() {
            "md5" => Digest::Md5,
            "sha1" => Digest::Sha1,
            "sha224" => Digest::Sha224,
            "sha256" => Digest::Sha256,
            "sha384" => Digest::Sha384,
            "sha512" => Digest::Sha512,
            _ => return None,
        })
    }

    fn pbkdf2(self, password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) {
        use pbkdf2::pbkdf2_hmac;
        match self {
            Digest::Md5 => pbkdf2_hmac::<md5::Md5>(password, salt, rounds, out),
            Digest::Sha1 => pbkdf2_hmac::<sha1::Sha1>(password, salt, rounds, out),
            Digest::Sha224 => pbkdf2_hmac::<sha2::Sha224>(password, salt, rounds, out),
            Digest::Sha256 => pbkdf2_hmac::<sha2::Sha256>(password, salt, rounds, out),
            Digest::Sha384 => pbkdf2_hmac::<sha2::Sha384>(password, salt, rounds, out),
            Digest::Sha512 => pbkdf2_hmac::<sha2::Sha512>(password, salt, rounds, out),
        }
    }
}

/// deepstream's hash options.
#[derive(Debug, Clone, Copy)]
pub struct HashSettings {
    pub digest: Digest,
    pub iterations: u32,
    pub key_length: usize,
}

impl HashSettings {
    /// deepstream's defaults for file auth.
    pub const DEEPSTREAM_DEFAULT: HashSettings = HashSettings {
        digest: Digest::Md5,
        iterations: 100,
        key_length: 32,
    };

    /// deepstream's stored form: base64 of the derived key, then the salt as given.
    pub fn hash(&self, password: &str, salt: &str) -> String {
        let mut key = vec![0u8; self.key_length];
        self.digest.pbkdf2(
            password.as_bytes(),
            salt.as_bytes(),
            self.iterations,
            &mut key,
        );
        format!("{}{salt}", BASE64.encode(key))
    }

    fn verify(&self, password: &str, stored: &str) -> bool {
        let encoded_len = 4 * self.key_length.div_ceil(3);
        let Some((expected, salt)) = stored.split_at_checked(encoded_len) else {
            return false;
        };
        let mut key = vec![0u8; self.key_length];
        self.digest.pbkdf2(
            password.as_bytes(),
            salt.as_bytes(),
            self.iterations,
            &mut key,
        );
        constant_time_eq(BASE64.encode(key).as_bytes(), expected.as_bytes())
    }
}

#[derive(Debug, Clone)]
struct User {
    password: String,
    server_data: Json,
    client_data: Json,
}

#[derive(Debug)]
pub struct FileAuth {
    users: Arc<std::collections::HashMap<String, User>>,
    hash: Option<HashSettings>,
    report_invalid_parameters: bool,
}

/// Hashes `password` with Argon2id and a random salt: a PHC string for users.yml.
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt =
        SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes is a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 with default parameters hashes any password")
        .to_string()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl FileAuth {
    pub fn from_options(
        options: &Json,
        cx: &Context<'_>,
        warnings: &mut Vec<String>,
    ) -> Result<FileAuth, ConfigError> {
        cx.check_keys(
            options,
            &[
                "users",
                "path",
                "hash",
                "iterations",
                "keyLength",
                "reportInvalidParameters",
            ],
            warnings,
        );
        let (users_doc, file): (Json, String) = match (options.get("users"), options.get("path")) {
            (Some(Json::String(s)), _) => {
                let path = file_load_path(s, cx.dir).ok_or_else(|| {
                    cx.invalid(
                        "users",
                        format!("expected fileLoad(<file>) or a mapping of users, got {s:?}"),
                    )
                })?;
                (load_users_file(&path)?, path.display().to_string())
            }
            (Some(inline @ Json::Object(_)), _) => {
                (inline.clone(), format!("{}.options.users", cx.key))
            }
            (None, Some(Json::String(p))) => {
                let path = resolve(p, cx.dir);
                (load_users_file(&path)?, path.display().to_string())
            }
            _ => return Err(cx.invalid("users", "missing: use `users: fileLoad(users.yml)`")),
        };
        let hash = match options.get("hash") {
            None | Some(Json::Bool(false)) | Some(Json::Null) => None,
            Some(Json::String(name)) => {
                let digest = Digest::from_name(name).ok_or_else(|| {
                    cx.invalid(
                        "hash",
                        format!("unknown hash {name:?}: use md5, sha1, sha256 or sha512"),
                    )
                })?;
                let iterations = cx.number(options, "iterations", 100)?;
                let key_length = cx.number(options, "keyLength", 32)?;
                if iterations == 0 || iterations > 10_000_000 {
                    return Err(cx.invalid("iterations", "must be between 1 and 10000000"));
                }
                if key_length == 0 || key_length > 1024 {
                    return Err(cx.invalid("keyLength", "must be between 1 and 1024"));
                }
                Some(HashSettings {
                    digest,
                    iterations: iterations as u32,
                    key_length: key_length as usize,
                })
            }
            Some(other) => {
                return Err(cx.invalid("hash", format!("expected the name of a hash, got {other}")));
            }
        };
        let Some(map) = users_doc.as_object() else {
            return Err(cx.invalid("users", format!("{file}: expected a mapping of usernames to {{password, serverData, clientData}}")));
        };
        if map.is_empty() {
            return Err(cx.invalid("users", format!("{file}: no users present in user file")));
        }
        let mut users = std::collections::HashMap::new();
        let mut clear_text = 0;
        for (name, entry) in map {
            let Some(password) = entry.get("password").and_then(Json::as_str) else {
                return Err(cx.invalid("users", format!("{file}: missing password for {name}")));
            };
            if let Some(e) = entry.as_object() {
                for key in e.keys() {
                    if !["password", "serverData", "clientData"].contains(&key.as_str()) {
                        warnings.push(format!(
                            "{file}: user {name}: unknown key `{key}` is ignored"
                        ));
                    }
                }
            }
            if password.starts_with("$argon2") {
                PasswordHash::new(password).map_err(|e| {
                    cx.invalid(
                        "users",
                        format!("{file}: user {name}: invalid Argon2 hash: {e}"),
                    )
                })?;
            } else if hash.is_none() {
                clear_text += 1;
            }
            users.insert(
                name.clone(),
                User {
                    password: password.to_owned(),
                    server_data: entry.get("serverData").cloned().unwrap_or(Json::Null),
                    client_data: entry.get("clientData").cloned().unwrap_or(Json::Null),
                },
            );
        }
        if clear_text > 0 {
            warnings.push(format!(
                "{file}: {clear_text} password(s) are kept in clear text (no `hash` option): store Argon2 hashes from `recordsync hash <password>` instead"
            ));
        }
        Ok(FileAuth {
            users: Arc::new(users),
            hash,
            report_invalid_parameters: cx.report_invalid_parameters(options)?,
        })
    }

    fn check_password(&self, user: &User, password: &str) -> bool {
        if user.password.starts_with("$argon2") {
            return PasswordHash::new(&user.password).is_ok_and(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            });
        }
        match &self.hash {
            Some(settings) => settings.verify(password, &user.password),
            None => constant_time_eq(user.password.as_bytes(), password.as_bytes()),
        }
    }
}

fn load_users_file(path: &Path) -> Result<Json, ConfigError> {
    let text = read_text(path)?;
    serde_saphyr::from_str(&text).map_err(|e| ConfigError::yaml(path, e))
}

#[async_trait]
impl Authenticator for FileAuth {
    async fn authenticate(&self, auth_data: &Json) -> Outcome {
        let (Some(username), Some(password)) = (
            auth_data.get("username").and_then(Json::as_str),
            auth_data.get("password").and_then(Json::as_str),
        ) else {
            return if self.report_invalid_parameters {
                Outcome::Invalid {
                    client_data: Some(
                        json!({"error": "missing authentication parameter: username or/and password"}),
                    ),
                }
            } else {
                Outcome::NotMine
            };
        };
        let Some(user) = self.users.get(username).cloned() else {
            return Outcome::NotMine;
        };
        let password = password.to_owned();
        let hash = self.hash;
        let auth = FileAuth {
            users: self.users.clone(),
            hash,
            report_invalid_parameters: self.report_invalid_parameters,
        };
        // Key derivation is deliberately slow: off the async runtime.
        let checked = {
            let user = user.clone();
            tokio::task::spawn_blocking(move || auth.check_password(&user, &password)).await
        };
        if checked.unwrap_or(false) {
            Outcome::Valid(Identity::new(
                Some(username.to_owned()),
                user.server_data,
                user.client_data,
            ))
        } else if self.report_invalid_parameters {
            Outcome::Invalid { client_data: None }
        } else {
            Outcome::NotMine
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(users: Json, options: Json) -> FileAuth {
        let mut options = options;
        options["users"] = users;
        let cx = Context {
            key: "auth[0]",
            dir: Path::new("."),
            several: false,
        };
        FileAuth::from_options(&options, &cx, &mut Vec::new()).unwrap()
    }

    #[tokio::test]
    async fn deepstreams_example_hash_checks_out() {
        // The users.yml shipped with deepstream: "password" with its default options.
        let a = auth(
            json!({"userA": {
                "password": "rCOSZxJrgze2AZdVQh12c6ErDMOG0M+Rx5Yu7S5d91c=GS4SbTQYmoaGwjm2shEobg==",
                "serverData": {"role": "admin"},
                "clientData": {"favouriteColor": "red"}
            }}),
            json!({"hash": "md5", "iterations": 100, "keyLength": 32}),
        );
        let Outcome::Valid(user) = a
            .authenticate(&json!({"username": "userA", "password": "password"}))
            .await
        else {
            panic!("the right password is refused")
        };
        assert_eq!(user.id, "userA");
        assert_eq!(user.server_data, json!({"role": "admin"}));
        assert_eq!(user.client_data, json!({"favouriteColor": "red"}));
        assert_eq!(
            a.authenticate(&json!({"username": "userA", "password": "nope"}))
                .await,
            Outcome::Invalid { client_data: None }
        );
        assert_eq!(
            a.authenticate(&json!({"username": "nobody", "password": "x"}))
                .await,
            Outcome::NotMine
        );
        assert!(matches!(
            a.authenticate(&json!({"username": "userA"})).await,
            Outcome::Invalid {
                client_data: Some(_)
            }
        ));
    }

    #[tokio::test]
    async fn argon2_and_sha256_hashes() {
        let settings = HashSettings {
            digest: Digest::Sha256,
            iterations: 1000,
            key_length: 64,
        };
        let a = auth(
            json!({
                "ann": {"password": hash_password("s3cret")},
                "bob": {"password": settings.hash("hunter2", "c2FsdHNhbHRzYWx0")}
            }),
            json!({"hash": "sha256", "iterations": 1000, "keyLength": 64}),
        );
        assert!(matches!(
            a.authenticate(&json!({"username": "ann", "password": "s3cret"}))
                .await,
            Outcome::Valid(_)
        ));
        assert!(matches!(
            a.authenticate(&json!({"username": "ann", "password": "s3cre"}))
                .await,
            Outcome::Invalid { .. }
        ));
        assert!(matches!(
            a.authenticate(&json!({"username": "bob", "password": "hunter2"}))
                .await,
            Outcome::Valid(_)
        ));
        assert!(matches!(
            a.authenticate(&json!({"username": "bob", "password": "hunter"}))
                .await,
            Outcome::Invalid { .. }
        ));
    }

    #[test]
    fn bad_options_are_refused_with_the_key() {
        let cx = Context {
            key: "auth[0]",
            dir: Path::new("."),
            several: false,
        };
        let err = FileAuth::from_options(
            &json!({"users": {"a": {"password": "x"}}, "hash": "rot13"}),
            &cx,
            &mut Vec::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("auth[0].options.hash") && err.contains("rot13"),
            "{err}"
        );
        let err = FileAuth::from_options(&json!({"users": {"a": {}}}), &cx, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing password for a"), "{err}");
    }
}
