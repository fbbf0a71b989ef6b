//! A directory of DID documents (`--did-dir DIR`): resolves DIDs of any method without a
//! network, for tests, offline clusters and identities whose nodes are listed locally.
//!
//! **File names.** The document of a DID is the file `DIR/<name>.json`, where `<name>` is
//! the DID with every byte other than ASCII letters, digits, `.`, `-` and `_`
//! percent-encoded as `%XX` (upper-case hex): `did:key:z6Mk…` is
//! `did%3Akey%3Az6Mk….json`, `did:web:localhost%3A8080` is
//! `did%3Aweb%3Alocalhost%253A8080.json`. The name is a function of the DID (no index
//! to keep), is valid on every common file system (no `:`), and maps back to the DID.
//! The file's `id` must be that DID; a file under another name is not looked at.
//!
//! Files are read on every lookup (a document written while a node runs is seen at
//! once) and written atomically (a temporary file renamed into place), so a reader never
//! sees half a document.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::did::Did;
use crate::document::{DidDocument, DocumentError};

/// Largest document file read, in bytes.
pub const MAX_DOCUMENT_FILE: u64 = 1 << 20;

/// A directory of DID documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DidDirectory {
    dir: PathBuf,
}

/// Why the directory could not be read or written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DidDirError {
    /// Reading, writing or creating a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A document file is larger than [`MAX_DOCUMENT_FILE`].
    #[error("{path}: the DID document is {len} bytes; at most {MAX_DOCUMENT_FILE} are read")]
    TooLarge { path: PathBuf, len: u64 },
    /// A document file is not a usable DID document.
    #[error("{path}: {source}")]
    Document {
        path: PathBuf,
        #[source]
        source: DocumentError,
    },
    /// A document file describes another DID than its name says.
    #[error(
        "{path} holds the document of {found}, not of {expected}: each file holds the document of the DID its name encodes"
    )]
    WrongDid {
        path: PathBuf,
        expected: String,
        found: String,
    },
}

/// The file name (without directory) of a DID's document.
pub fn file_name(did: &Did) -> String {
    let mut name = String::with_capacity(did.as_str().len() + 16);
    for byte in did.as_str().bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_') {
            name.push(char::from(byte));
        } else {
            name.push_str(&format!("%{byte:02X}"));
        }
    }
    name.push_str(".json");
    name
}

impl DidDirectory {
    /// The directory at `dir` (which need not exist yet).
    pub fn new(dir: impl Into<PathBuf>) -> DidDirectory {
        DidDirectory { dir: dir.into() }
    }

    /// Where the directory is.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The path of a DID's document file.
    pub fn path_of(&self, did: &Did) -> PathBuf {
        self.dir.join(file_name(did))
    }

    /// The document of `did`, or `None` when the directory has no file for it.
    pub fn read(&self, did: &Did) -> Result<Option<DidDocument>, DidDirError> {
        let path = self.path_of(did);
        let io = |source| DidDirError::Io {
            path: path.clone(),
            source,
        };
        let len = match fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        if len > MAX_DOCUMENT_FILE {
            return Err(DidDirError::TooLarge { path, len });
        }
        let text = fs::read_to_string(&path).map_err(io)?;
        let document = DidDocument::from_json(&text).map_err(|source| DidDirError::Document {
            path: path.clone(),
            source,
        })?;
        if document.id() != did {
            return Err(DidDirError::WrongDid {
                path,
                expected: did.to_string(),
                found: document.id().to_string(),
            });
        }
        Ok(Some(document))
    }

    /// Writes (or replaces) a document, creating the directory if needed; returns the
    /// file's path.
    pub fn write(&self, document: &DidDocument) -> Result<PathBuf, DidDirError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| DidDirError::Io { path, source }
        };
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let path = self.path_of(document.id());
        let temporary = self.dir.join(format!(
            ".{}.{}.tmp",
            file_name(document.id()),
            std::process::id()
        ));
        let mut text =
            serde_json::to_string_pretty(&document.to_json()).expect("a JSON value serialises");
        text.push('\n');
        let mut file = fs::File::create(&temporary).map_err(io(&temporary))?;
        file.write_all(text.as_bytes()).map_err(io(&temporary))?;
        file.sync_all().map_err(io(&temporary))?;
        drop(file);
        fs::rename(&temporary, &path).map_err(io(&path))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use url::Url;

    #[test]
    fn file_names_encode_the_did() {
        let web: Did = "did:web:localhost%3A8080:a_b".parse().unwrap();
        assert_eq!(file_name(&web), "did%3Aweb%3Alocalhost%253A8080%3Aa_b.json");
        let key = Did::from_ed25519(&SigningKey::from_bytes(&[1; 32]).verifying_key());
        assert_eq!(
            file_name(&key),
            format!("did%3Akey%3A{}.json", key.method_specific_id())
        );
    }

    #[test]
    fn documents_are_written_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let directory = DidDirectory::new(dir.path().join("dids"));
        let did: Did = "did:example:alice".parse().unwrap();
        assert!(directory.read(&did).unwrap().is_none());
        let document = DidDocument::from_value(serde_json::json!({"id": "did:example:alice"}))
            .unwrap()
            .with_node_endpoints(&[Url::parse("http://127.0.0.1:9/").unwrap()]);
        let path = directory.write(&document).unwrap();
        assert_eq!(path, directory.path_of(&did));
        assert_eq!(directory.read(&did).unwrap().unwrap(), document);
        // Nothing else is left in the directory.
        assert_eq!(fs::read_dir(directory.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_file_for_another_did_or_not_a_document_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let directory = DidDirectory::new(dir.path());
        let did: Did = "did:example:alice".parse().unwrap();
        fs::write(directory.path_of(&did), r#"{"id": "did:example:mallory"}"#).unwrap();
        let error = directory.read(&did).unwrap_err();
        assert!(matches!(error, DidDirError::WrongDid { .. }), "{error}");
        assert!(
            error.to_string().contains("did%3Aexample%3Aalice.json"),
            "{error}"
        );
        fs::write(directory.path_of(&did), "not json").unwrap();
        assert!(matches!(
            directory.read(&did),
            Err(DidDirError::Document { .. })
        ));
    }
}
