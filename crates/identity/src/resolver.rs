//! Resolving a DID to its document: from the directory first, then by its method.
//!
//! Order, for a DID:
//! 1. the DID-document directory, when there is one and it holds a file for the DID:
//!    - for `did:key`, only the file's `service` entries are taken (its nodes); the keys
//!      always come from the DID itself, so a directory cannot change whose key a
//!      `did:key` is;
//!    - for any other method, the file is the document;
//! 2. `did:key`: the document derived from the key (no nodes);
//! 3. `did:web`: the document fetched from its URL (`did_web.rs`) through the
//!    [`WebFetcher`] the host chose; a resolver without one is offline and says so;
//! 4. any other method: unresolvable without a directory file.
//!
//! The HTTP client is the host's choice (the server and the local client each have
//! theirs): this crate does no I/O but reading the directory.

use std::sync::Arc;

use async_trait::async_trait;
use thiserror::Error;
use url::Url;

use crate::did::{Did, DidMethod};
use crate::did_dir::{DidDirError, DidDirectory};
use crate::document::{DidDocument, DocumentError};

/// Largest `did:web` document fetched, in bytes.
pub const MAX_WEB_DOCUMENT: usize = 256 * 1024;

/// Fetches a `did:web` document. The URL is `https://…` except for loopback hosts (see
/// [`crate::DidWeb`]); an implementation must not follow a redirect to plain HTTP, must
/// stop reading after `max_bytes` (an error, not a truncated document), and should time
/// out.
#[async_trait]
pub trait WebFetcher: Send + Sync {
    /// The body of a successful GET of `url`.
    async fn fetch(&self, url: &Url, max_bytes: usize) -> Result<Vec<u8>, FetchError>;
}

/// Why a fetch failed: the HTTP client's own error, kept as the source.
#[derive(Debug, Error)]
#[error("{message}")]
pub struct FetchError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl FetchError {
    /// A failure described by `message` (e.g. "404 Not Found"), with its cause if any.
    pub fn new(
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> FetchError {
        FetchError {
            message: message.into(),
            source,
        }
    }
}

/// Why a DID did not resolve.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The directory could not be read, or holds a bad file for the DID.
    #[error(transparent)]
    Directory(#[from] DidDirError),
    /// A `did:web` and no directory file for it, on a resolver without a network.
    #[error(
        "{did} is not in the DID-document directory{}, and this resolver has no network: add its document there",
        dir_hint(.dir)
    )]
    Offline { did: String, dir: Option<String> },
    /// A DID of another method, without a directory file.
    #[error(
        "{did} cannot be resolved: recordsync resolves did:key and did:web by themselves, and other methods only from a DID-document directory (--did-dir){}",
        dir_hint(.dir)
    )]
    Unsupported { did: String, dir: Option<String> },
    /// The `did:web` document could not be fetched.
    #[error("{did}: fetching {url} failed: {source}")]
    Fetch {
        did: String,
        url: String,
        #[source]
        source: FetchError,
    },
    /// The fetched document is not usable.
    #[error("{did}: the document at {url} is not usable: {source}")]
    Document {
        did: String,
        url: String,
        #[source]
        source: DocumentError,
    },
    /// The fetched document describes another DID.
    #[error("{did}: the document at {url} is the document of {found}")]
    WrongDid {
        did: String,
        url: String,
        found: String,
    },
}

fn dir_hint(dir: &Option<String>) -> String {
    dir.as_ref().map(|d| format!(" ({d})")).unwrap_or_default()
}

/// Resolves DIDs (see the module docs). Cheap to clone.
#[derive(Clone, Default)]
pub struct Resolver {
    dir: Option<DidDirectory>,
    web: Option<Arc<dyn WebFetcher>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("dir", &self.dir)
            .field("web", &self.web.is_some())
            .finish()
    }
}

impl Resolver {
    /// A resolver without directory or network: `did:key` only.
    pub fn offline() -> Resolver {
        Resolver::default()
    }

    /// This resolver, looking in `dir` first.
    pub fn with_did_dir(mut self, dir: DidDirectory) -> Resolver {
        self.dir = Some(dir);
        self
    }

    /// This resolver, fetching `did:web` documents with `fetcher`.
    pub fn with_web_fetcher(mut self, fetcher: Arc<dyn WebFetcher>) -> Resolver {
        self.web = Some(fetcher);
        self
    }

    /// The directory, if any.
    pub fn did_dir(&self) -> Option<&DidDirectory> {
        self.dir.as_ref()
    }

    /// The document of `did`.
    pub async fn resolve(&self, did: &Did) -> Result<DidDocument, ResolveError> {
        let from_dir = match &self.dir {
            Some(dir) => dir.read(did)?,
            None => None,
        };
        let dir = || self.dir.as_ref().map(|d| d.path().display().to_string());
        match did.method() {
            DidMethod::Key(key) => {
                let derived = DidDocument::for_did_key(did, &key);
                Ok(match from_dir {
                    Some(file) => derived.with_services(file.services()),
                    None => derived,
                })
            }
            _ if from_dir.is_some() => Ok(from_dir.expect("checked just above")),
            DidMethod::Web(web) => {
                let Some(fetcher) = &self.web else {
                    return Err(ResolveError::Offline {
                        did: did.to_string(),
                        dir: dir(),
                    });
                };
                let url = web.document_url();
                let body = fetcher
                    .fetch(url, MAX_WEB_DOCUMENT)
                    .await
                    .map_err(|source| ResolveError::Fetch {
                        did: did.to_string(),
                        url: url.to_string(),
                        source,
                    })?;
                let document_error = |source| ResolveError::Document {
                    did: did.to_string(),
                    url: url.to_string(),
                    source,
                };
                let text = std::str::from_utf8(&body).map_err(|_| {
                    document_error(DocumentError::Shape("it is not UTF-8 text".into()))
                })?;
                let document = DidDocument::from_json(text).map_err(document_error)?;
                if document.id() != did {
                    return Err(ResolveError::WrongDid {
                        did: did.to_string(),
                        url: url.to_string(),
                        found: document.id().to_string(),
                    });
                }
                Ok(document)
            }
            _ => Err(ResolveError::Unsupported {
                did: did.to_string(),
                dir: dir(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::did_key;
    use ed25519_dalek::SigningKey;
    use serde_json::json;
    use std::sync::Mutex;

    /// Answers from a table, and remembers what was asked.
    struct FakeWeb {
        answers: Vec<(String, Result<String, String>)>,
        asked: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl WebFetcher for FakeWeb {
        async fn fetch(&self, url: &Url, _max: usize) -> Result<Vec<u8>, FetchError> {
            self.asked.lock().unwrap().push(url.to_string());
            match self.answers.iter().find(|(u, _)| u == url.as_str()) {
                Some((_, Ok(body))) => Ok(body.clone().into_bytes()),
                Some((_, Err(message))) => Err(FetchError::new(message.clone(), None)),
                None => Err(FetchError::new("404 Not Found", None)),
            }
        }
    }

    fn key() -> ed25519_dalek::VerifyingKey {
        SigningKey::from_bytes(&[9; 32]).verifying_key()
    }

    #[tokio::test]
    async fn did_key_resolves_offline_and_takes_only_services_from_the_directory() {
        let did = Did::from_ed25519(&key());
        let offline = Resolver::offline().resolve(&did).await.unwrap();
        assert_eq!(
            offline
                .signing_key(&did.with_fragment(did.method_specific_id()))
                .unwrap(),
            key()
        );
        assert!(offline.node_endpoints().unwrap().is_empty());

        // A directory file that lists nodes and (wrongly) another key.
        let dir = tempfile::tempdir().unwrap();
        let other = did_key::public_multibase(&SigningKey::from_bytes(&[1; 32]).verifying_key());
        let file = json!({
            "id": did,
            "verificationMethod": [{"id": "#evil", "type": "Multikey", "publicKeyMultibase": other}],
            "assertionMethod": ["#evil"],
            "service": [{"id": "#dwn", "type": "DecentralizedWebNode", "serviceEndpoint": "http://127.0.0.1:7/"}],
        });
        std::fs::write(
            DidDirectory::new(dir.path()).path_of(&did),
            file.to_string(),
        )
        .unwrap();
        let resolver = Resolver::offline().with_did_dir(DidDirectory::new(dir.path()));
        let document = resolver.resolve(&did).await.unwrap();
        assert_eq!(
            document.node_endpoints().unwrap()[0].as_str(),
            "http://127.0.0.1:7/"
        );
        assert!(document.signing_key(&did.with_fragment("evil")).is_err());
        assert_eq!(
            document
                .signing_key(&did.with_fragment(did.method_specific_id()))
                .unwrap(),
            key()
        );
    }

    #[tokio::test]
    async fn did_web_is_fetched_checked_and_directory_files_win() {
        let did: Did = "did:web:127.0.0.1%3A6020".parse().unwrap();
        let url = "http://127.0.0.1:6020/.well-known/did.json".to_string();
        let good = json!({"id": did, "service": [{"id": "#dwn", "type": "DecentralizedWebNode", "serviceEndpoint": "http://127.0.0.1:6020/"}]});
        let web = Arc::new(FakeWeb {
            answers: vec![(url.clone(), Ok(good.to_string()))],
            asked: Mutex::new(Vec::new()),
        });
        let resolver = Resolver::offline().with_web_fetcher(web.clone());
        let document = resolver.resolve(&did).await.unwrap();
        assert_eq!(document.node_endpoints().unwrap().len(), 1);
        assert_eq!(
            web.asked.lock().unwrap().as_slice(),
            std::slice::from_ref(&url)
        );

        // With a directory file, no network is asked.
        let dir = tempfile::tempdir().unwrap();
        let local = json!({"id": did});
        DidDirectory::new(dir.path())
            .write(&DidDocument::from_value(local).unwrap())
            .unwrap();
        let resolver = resolver.with_did_dir(DidDirectory::new(dir.path()));
        let document = resolver.resolve(&did).await.unwrap();
        assert!(document.node_endpoints().unwrap().is_empty());
        assert_eq!(web.asked.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn each_failure_says_what_to_do() {
        let did: Did = "did:web:example.com".parse().unwrap();
        let error = Resolver::offline().resolve(&did).await.unwrap_err();
        assert!(matches!(error, ResolveError::Offline { .. }));
        assert!(error.to_string().contains("add its document"), "{error}");

        let other: Did = "did:example:alice".parse().unwrap();
        let error = Resolver::offline().resolve(&other).await.unwrap_err();
        assert!(matches!(error, ResolveError::Unsupported { .. }));
        assert!(error.to_string().contains("--did-dir"), "{error}");

        let url = "https://example.com/.well-known/did.json".to_string();
        let mallory = json!({"id": "did:web:mallory.example"}).to_string();
        for (answer, check) in [
            (Err("connection refused".to_string()), "Fetch"),
            (Ok("{".to_string()), "Document"),
            (Ok(mallory), "WrongDid"),
        ] {
            let web = Arc::new(FakeWeb {
                answers: vec![(url.clone(), answer)],
                asked: Mutex::new(Vec::new()),
            });
            let error = Resolver::offline()
                .with_web_fetcher(web)
                .resolve(&did)
                .await
                .unwrap_err();
            let kind = match error {
                ResolveError::Fetch { .. } => "Fetch",
                ResolveError::Document { .. } => "Document",
                ResolveError::WrongDid { .. } => "WrongDid",
                _ => "other",
            };
            assert_eq!(kind, check, "{error}");
        }
    }
}
