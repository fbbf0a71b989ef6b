//! DIDs: parsed and checked once, so that a [`Did`] in hand is always well-formed.
//!
//! Three kinds are known:
//! - `did:key` with an Ed25519 key (`did:key:z6Mk…`): the key is the identifier, and the
//!   DID document is derived from it offline (`did_key.rs`);
//! - `did:web` (`did:web:example.com`, `did:web:example.com:users:alice`,
//!   `did:web:127.0.0.1%3A8080`): the document is fetched over HTTPS (`did_web.rs`);
//! - any other method with a syntactically valid identifier (`did:example:alice`): it
//!   resolves only through a directory of DID documents (`--did-dir`), which is what
//!   tests and offline clusters use.
//!
//! A DID here is the bare identifier: no path, query or fragment (`did:key:…#key-1` is
//! a key id, not a DID).

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::did_key;
use crate::did_web::DidWeb;

/// Longest DID accepted, in bytes.
pub const MAX_DID_LEN: usize = 2048;

/// A well-formed DID.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Did {
    text: String,
}

/// What a DID's method says about resolving it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DidMethod {
    /// `did:key` with this Ed25519 public key.
    Key(VerifyingKey),
    /// `did:web`, whose document lives at this place.
    Web(DidWeb),
    /// Another method: resolvable only from a directory of DID documents.
    Other,
}

/// Why a text is not a DID recordsync can use.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DidError {
    /// Not `did:METHOD:ID` with a lowercase method and a valid identifier.
    #[error(
        "{text:?} is not a DID: a DID is did:METHOD:ID, like did:key:z6Mk… or did:web:example.com"
    )]
    Syntax { text: String },
    /// A DID URL (with a path, query or fragment) where a DID was expected.
    #[error(
        "{text:?} is a DID URL, not a DID: leave out everything from the first '/', '?' or '#'"
    )]
    Url { text: String },
    /// Longer than [`MAX_DID_LEN`].
    #[error("the DID is {len} bytes long; at most {MAX_DID_LEN} are accepted")]
    TooLong { len: usize },
    /// A `did:key` that is not an Ed25519 key in base58btc multibase.
    #[error("{text:?} is not a usable did:key: {reason}")]
    Key { text: String, reason: String },
    /// A `did:web` whose identifier is not a host (and port, and path).
    #[error("{text:?} is not a usable did:web: {reason}")]
    Web { text: String, reason: String },
}

impl Did {
    /// The DID as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The method name (`key`, `web`, …).
    pub fn method_name(&self) -> &str {
        self.text["did:".len()..]
            .split(':')
            .next()
            .expect("checked on parsing: did:METHOD:ID")
    }

    /// Everything after `did:METHOD:`.
    pub fn method_specific_id(&self) -> &str {
        &self.text["did:".len() + self.method_name().len() + 1..]
    }

    /// What resolving this DID needs.
    pub fn method(&self) -> DidMethod {
        match self.method_name() {
            "key" => DidMethod::Key(
                did_key::decode(self.method_specific_id())
                    .expect("checked on parsing: a did:key holds an Ed25519 key"),
            ),
            "web" => DidMethod::Web(
                DidWeb::parse(self.method_specific_id())
                    .expect("checked on parsing: a did:web names a host"),
            ),
            _ => DidMethod::Other,
        }
    }

    /// The `did:key` of an Ed25519 public key.
    pub fn from_ed25519(key: &VerifyingKey) -> Did {
        Did {
            text: did_key::encode(key),
        }
    }

    /// `DID#fragment`, the id of one of its verification methods or services.
    pub fn with_fragment(&self, fragment: &str) -> String {
        format!("{}#{fragment}", self.text)
    }
}

/// Whether `c` may appear in a method-specific id (DID Core §3.1: ALPHA, DIGIT, `.`,
/// `-`, `_`, percent-encoded octets, with `:` separating segments).
fn id_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'%' | b':')
}

impl FromStr for Did {
    type Err = DidError;

    fn from_str(text: &str) -> Result<Did, DidError> {
        if text.len() > MAX_DID_LEN {
            return Err(DidError::TooLong { len: text.len() });
        }
        let syntax = || DidError::Syntax { text: text.into() };
        if text.contains(['/', '?', '#']) {
            return Err(if text.starts_with("did:") {
                DidError::Url { text: text.into() }
            } else {
                syntax()
            });
        }
        let rest = text.strip_prefix("did:").ok_or_else(syntax)?;
        let (method, id) = rest.split_once(':').ok_or_else(syntax)?;
        let method_ok = !method.is_empty()
            && method
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let id_ok = !id.is_empty()
            && id.bytes().all(id_char)
            && !id.ends_with(':')
            && percent_encoding_ok(id);
        if !method_ok || !id_ok {
            return Err(syntax());
        }
        match method {
            "key" => {
                did_key::decode(id).map_err(|reason| DidError::Key {
                    text: text.into(),
                    reason,
                })?;
            }
            "web" => {
                DidWeb::parse(id).map_err(|reason| DidError::Web {
                    text: text.into(),
                    reason,
                })?;
            }
            _ => {}
        }
        Ok(Did { text: text.into() })
    }
}

/// Every `%` is followed by two hex digits.
fn percent_encoding_ok(id: &str) -> bool {
    let bytes = id.as_bytes();
    bytes.iter().enumerate().all(|(i, &c)| {
        c != b'%'
            || (bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Did({})", self.text)
    }
}

impl Serialize for Did {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Did {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_told_apart() {
        let key: Did = "did:key:z6MkmjY8GnV5i9YTDtPETC2uUAW6ejw3nk5mXF5yci5ab7th"
            .parse()
            .unwrap();
        assert_eq!(key.method_name(), "key");
        assert!(matches!(key.method(), DidMethod::Key(_)));
        let web: Did = "did:web:example.com:users:alice".parse().unwrap();
        assert!(matches!(web.method(), DidMethod::Web(_)));
        assert_eq!(web.method_specific_id(), "example.com:users:alice");
        let other: Did = "did:example:alice_1.x%20y".parse().unwrap();
        assert_eq!(other.method(), DidMethod::Other);
    }

    #[test]
    fn malformed_dids_are_refused_with_a_reason() {
        for text in [
            "",
            "did:",
            "did:key",
            "did:key:",
            "did:KEY:abc",
            "did:example:a b",
            "did:example:a:",
            "did:example:%zz",
            "dad:example:a",
        ] {
            assert!(
                matches!(text.parse::<Did>(), Err(DidError::Syntax { .. })),
                "{text}"
            );
        }
        assert!(matches!(
            "did:example:a#key-1".parse::<Did>(),
            Err(DidError::Url { .. })
        ));
        assert!(matches!(
            "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme".parse::<Did>(),
            Err(DidError::Key { .. })
        ));
        let long = format!("did:example:{}", "a".repeat(MAX_DID_LEN));
        assert!(matches!(long.parse::<Did>(), Err(DidError::TooLong { .. })));
    }
}
