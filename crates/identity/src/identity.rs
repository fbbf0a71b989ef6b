//! An identity: a DID and the Ed25519 key that signs for it, kept in a file the user
//! names (`--identity FILE`).
//!
//! The file is JSON, created with mode 0600 on Unix (and refused on loading when group
//! or others may read it, as ssh refuses a private key):
//!
//! ```json
//! {"did": "did:key:z6Mk…", "keyId": "did:key:z6Mk…#z6Mk…", "secretKeyMultibase": "z3u2…"}
//! ```
//!
//! `secretKeyMultibase` is the 32-byte Ed25519 seed as Multikey writes it (`did_key.rs`).
//! For a `did:key` the key must be the DID's own key and `keyId` is `did#fingerprint`;
//! for another DID `keyId` names the verification method of its document that holds the
//! key.
//!
//! The secret key never leaves this module except as a signature: [`Identity`]'s `Debug`
//! prints `<redacted>`, it has no `Display`, and the key's text is wiped from memory after
//! use.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::did::{Did, DidMethod};
use crate::did_key;
use crate::document::DidDocument;

/// Largest identity file read, in bytes.
const MAX_IDENTITY_FILE: u64 = 64 * 1024;

/// A DID and its signing key.
pub struct Identity {
    did: Did,
    key_id: String,
    key: SigningKey,
}

/// Why an identity could not be made, written or read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The operating system's random source failed.
    #[error("no random key could be made: {0}")]
    Random(String),
    /// The file exists already: identities are never overwritten.
    #[error(
        "{path} exists already: choose another file, or delete it if you no longer need the identity it holds"
    )]
    Exists { path: PathBuf },
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Group or others may read the file.
    #[error("{path} may be read by other users (mode {mode:04o}): run `chmod 600 {path}`")]
    Permissions { path: PathBuf, mode: u32 },
    /// The file is not an identity file.
    #[error("{path} is not an identity file: {reason}")]
    Format { path: PathBuf, reason: String },
    /// The key in the file is not the DID's.
    #[error(
        "{path}: the key in this file is not the key of {did}; the file is damaged or was edited"
    )]
    KeyMismatch { path: PathBuf, did: String },
}

/// The identity file's content.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IdentityFile {
    did: Did,
    key_id: String,
    secret_key_multibase: Zeroizing<String>,
}

impl Identity {
    /// A new `did:key` identity with a key from the operating system's random source.
    pub fn generate() -> Result<Identity, IdentityError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut seed[..]).map_err(|e| IdentityError::Random(e.to_string()))?;
        Ok(Identity::from_seed(&seed))
    }

    /// The `did:key` identity of a 32-byte Ed25519 seed. For tests and for keys kept
    /// elsewhere; [`generate`](Self::generate) is the way to make a new one.
    pub fn from_seed(seed: &[u8; 32]) -> Identity {
        let key = SigningKey::from_bytes(seed);
        let did = Did::from_ed25519(&key.verifying_key());
        let key_id = did.with_fragment(did.method_specific_id());
        Identity { did, key_id, key }
    }

    /// The DID.
    pub fn did(&self) -> &Did {
        &self.did
    }

    /// The id of the verification method that holds the key (`did#fragment`).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The Ed25519 signature of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        self.key.sign(message)
    }

    /// The DID document of a `did:key` identity, derived from the key; `None` for other
    /// DIDs, whose documents live elsewhere.
    pub fn did_key_document(&self) -> Option<DidDocument> {
        match self.did.method() {
            DidMethod::Key(key) => Some(DidDocument::for_did_key(&self.did, &key)),
            _ => None,
        }
    }

    /// Writes the identity to a new file `path` (mode 0600 on Unix); an existing file is
    /// never replaced.
    pub fn create_file(&self, path: &Path) -> Result<(), IdentityError> {
        let io = |source| IdentityError::Io {
            path: path.to_owned(),
            source,
        };
        let content = IdentityFile {
            did: self.did.clone(),
            key_id: self.key_id.clone(),
            secret_key_multibase: did_key::secret_multibase(self.key.as_bytes()),
        };
        let mut text = Zeroizing::new(
            serde_json::to_string_pretty(&content).expect("an identity file serialises"),
        );
        text.push('\n');
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = match options.open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(IdentityError::Exists {
                    path: path.to_owned(),
                });
            }
            Err(e) => return Err(io(e)),
        };
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Reads an identity file (see the module docs).
    pub fn load(path: &Path) -> Result<Identity, IdentityError> {
        let io = |source| IdentityError::Io {
            path: path.to_owned(),
            source,
        };
        let format = |reason: String| IdentityError::Format {
            path: path.to_owned(),
            reason,
        };
        let meta = fs::metadata(path).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(IdentityError::Permissions {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        if meta.len() > MAX_IDENTITY_FILE {
            return Err(format(format!("it is {} bytes long", meta.len())));
        }
        let text = Zeroizing::new(fs::read_to_string(path).map_err(io)?);
        let content: IdentityFile =
            recordsync_core::json::parse_within(&text, 4).map_err(|e| format(e.to_string()))?;
        let seed = did_key::secret_from_multibase(&content.secret_key_multibase)
            .map_err(|reason| format(format!("secretKeyMultibase: {reason}")))?;
        let key = SigningKey::from_bytes(&seed);
        match content.did.method() {
            DidMethod::Key(public) if public != key.verifying_key() => {
                return Err(IdentityError::KeyMismatch {
                    path: path.to_owned(),
                    did: content.did.to_string(),
                });
            }
            _ => {}
        }
        let fragment_of_did = content
            .key_id
            .strip_prefix(content.did.as_str())
            .and_then(|rest| rest.strip_prefix('#'))
            .is_some_and(|fragment| !fragment.is_empty());
        if !fragment_of_did {
            return Err(format(format!(
                "keyId {:?} is not {}#FRAGMENT",
                content.key_id, content.did
            )));
        }
        Ok(Identity {
            did: content.did,
            key_id: content.key_id,
            key,
        })
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("did", &self.did)
            .field("key_id", &self.key_id)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u8; 32] = [42; 32];

    /// Every text form in which the secret key could leak.
    fn secret_forms(identity: &Identity) -> Vec<String> {
        let bytes = identity.key.to_bytes();
        vec![
            did_key::secret_multibase(&bytes).to_string(),
            bs58::encode(bytes).into_string(),
            bytes.iter().map(|b| format!("{b:02x}")).collect(),
            format!("{bytes:?}"),
        ]
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let identity = Identity::from_seed(&SEED);
        for shown in [format!("{identity:?}"), format!("{identity:#?}")] {
            assert!(shown.contains(identity.did().as_str()), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
            for secret in secret_forms(&identity) {
                assert!(!shown.contains(&secret), "{shown} shows {secret}");
            }
        }
    }

    #[test]
    fn a_file_round_trips_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alice.json");
        let identity = Identity::generate().unwrap();
        identity.create_file(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let loaded = Identity::load(&path).unwrap();
        assert_eq!(loaded.did(), identity.did());
        assert_eq!(loaded.key_id(), identity.key_id());
        assert_eq!(loaded.verifying_key(), identity.verifying_key());
        assert!(identity.did().as_str().starts_with("did:key:z6Mk"));
        // Two generated identities differ.
        assert_ne!(Identity::generate().unwrap().did(), identity.did());
    }

    #[test]
    fn an_existing_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.json");
        fs::write(&path, "keep me").unwrap();
        let error = Identity::from_seed(&SEED).create_file(&path).unwrap_err();
        assert!(matches!(error, IdentityError::Exists { .. }), "{error}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "keep me");
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.json");
        Identity::from_seed(&SEED).create_file(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let error = Identity::load(&path).unwrap_err();
        assert!(matches!(
            error,
            IdentityError::Permissions { mode: 0o644, .. }
        ));
        assert!(error.to_string().contains("chmod 600"), "{error}");
    }

    #[test]
    fn damaged_files_are_refused_without_showing_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            fs::write(&path, text).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            }
            path
        };
        let identity = Identity::from_seed(&SEED);
        let other = Identity::from_seed(&[1; 32]);
        let secret = did_key::secret_multibase(&SEED).to_string();
        let swapped = serde_json::json!({
            "did": other.did(), "keyId": other.key_id(), "secretKeyMultibase": secret,
        });
        let error = Identity::load(&write("swapped.json", &swapped.to_string())).unwrap_err();
        assert!(
            matches!(error, IdentityError::KeyMismatch { .. }),
            "{error}"
        );
        assert!(!error.to_string().contains(&secret));

        let bad_key_id = serde_json::json!({
            "did": identity.did(), "keyId": "did:key:other#x", "secretKeyMultibase": secret,
        });
        let error = Identity::load(&write("key_id.json", &bad_key_id.to_string())).unwrap_err();
        assert!(matches!(error, IdentityError::Format { .. }), "{error}");

        let extra = serde_json::json!({
            "did": identity.did(), "keyId": identity.key_id(), "secretKeyMultibase": secret, "x": 1,
        });
        let error = Identity::load(&write("extra.json", &extra.to_string())).unwrap_err();
        assert!(matches!(error, IdentityError::Format { .. }), "{error}");
        assert!(!error.to_string().contains(&secret), "{error}");

        let public_as_secret = serde_json::json!({
            "did": identity.did(), "keyId": identity.key_id(),
            "secretKeyMultibase": identity.did().method_specific_id(),
        });
        let error =
            Identity::load(&write("public.json", &public_as_secret.to_string())).unwrap_err();
        assert!(error.to_string().contains("secretKeyMultibase"), "{error}");
    }
}
