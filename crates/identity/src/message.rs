//! Signed messages: a record's versions ([`RecordsWrite`]) and its deletion
//! ([`RecordsDelete`]), each signed once by its author.
//!
//! The envelope of a write (JSON; a delete has no `recordId` and `contextId` of its own,
//! its descriptor names the record):
//!
//! ```json
//! {
//!   "recordId": "bciq…",
//!   "contextId": "bciq…/bciq…",
//!   "descriptor": {"interface": "Records", "method": "Write", "dataCid": "bciq…", "dataSize": 2, …},
//!   "author": "did:key:z6Mk…",
//!   "signature": {"keyId": "did:key:z6Mk…#z6Mk…", "value": "<base64url, 64 bytes>"}
//! }
//! ```
//!
//! Ids (canonical JSON is RFC 8785, `canonical.rs`; text form in `content_id.rs`):
//! - **record id** = SHA-256 of canonical `{"author": …, "descriptor": …}` of the record's
//!   first version (DWN's entry id); a write whose own entry id equals its `recordId` is
//!   the first version, and the first version's `messageTimestamp` equals its
//!   `dateCreated`;
//! - **message id** = SHA-256 of the canonical envelope, signature included;
//! - **data id** (`dataCid`) = SHA-256 of the data bytes.
//!
//! The signature is Ed25519 over `recordsync/records/v1\n` followed by the canonical
//! envelope without `signature.value` (so the key id is signed too). Ed25519 signatures
//! are deterministic, and verification is strict (`verify_strict`), so nobody but the
//! author can make a second valid envelope of the same content: the message id is as
//! stable as the content.
//!
//! `contextId` places a record in a thread: absent for a stand-alone record; the record
//! id itself for the root of a protocol's thread; `<parent's contextId>/<record id>` for
//! a record with a `parentId`. It is signed but not part of the record id (it contains
//! it).
//!
//! These are plain data: building one with [`RecordsWrite::create`] and friends makes a
//! correct message, but a value read from outside is only trusted after
//! [`crate::verify()`] (or [`crate::check_message`] and [`crate::check_signature`]).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};
use thiserror::Error;

use crate::canonical::{CanonicalError, canonical_json};
use crate::content_id::{DataId, MessageId, RecordId, sha256};
use crate::descriptor::{
    DeleteDescriptor, DeleteMethod, DescriptorError, Interface, Tags, WriteDescriptor, WriteMethod,
};
use crate::did::Did;
use crate::identity::Identity;
use crate::order::Precedence;
use crate::timestamp::Timestamp;

/// What precedes the canonical envelope in the bytes a signature signs.
pub const SIGNING_PREFIX: &[u8] = b"recordsync/records/v1\n";

/// The media type of data written without one.
pub const DEFAULT_DATA_FORMAT: &str = "application/json";

/// The JSON nesting accepted in a message (tags are the deepest part, at four levels).
const MAX_MESSAGE_DEPTH: usize = 8;

/// An Ed25519 signature: 64 bytes, base64url without padding in JSON.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SignatureBytes(pub [u8; 64]);

impl std::fmt::Debug for SignatureBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignatureBytes({})", URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl Serialize for SignatureBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl<'de> Deserialize<'de> for SignatureBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        URL_SAFE_NO_PAD
            .decode(&text)
            .ok()
            .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
            .map(SignatureBytes)
            .ok_or_else(|| {
                serde::de::Error::custom(
                    "a signature is 64 bytes in base64url without padding (86 characters)",
                )
            })
    }
}

/// Who signed, with which key, and the signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageSignature {
    /// The verification method of the author's DID document (`did#fragment`).
    pub key_id: String,
    /// The signature (see the module docs for what it signs).
    pub value: SignatureBytes,
}

/// A version of a record: its first (a create) or a later one (an update).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordsWrite {
    /// The record's id: the entry id of its first version.
    pub record_id: RecordId,
    /// Where the record sits in a thread (see the module docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    /// What is written.
    pub descriptor: WriteDescriptor,
    /// Who wrote it.
    pub author: Did,
    /// The author's signature.
    pub signature: MessageSignature,
}

/// A record's deletion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordsDelete {
    /// Which record, and when.
    pub descriptor: DeleteDescriptor,
    /// Who deleted it.
    pub author: Did,
    /// The author's signature.
    pub signature: MessageSignature,
}

/// Any message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Message {
    /// A version of a record (boxed: a write is several times the size of a delete).
    Write(Box<RecordsWrite>),
    /// A record's deletion.
    Delete(RecordsDelete),
}

/// Why a message could not be made or read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MessageError {
    /// Not JSON, or nested too deeply.
    #[error("the message is not usable JSON: {0}")]
    Json(#[source] recordsync_core::json::JsonError),
    /// JSON, but not a message: a field missing, unknown or of the wrong type.
    #[error("the message is malformed: {0}")]
    Shape(#[source] serde_json::Error),
    /// A descriptor method other than `Write` and `Delete`.
    #[error(
        "the message's descriptor has method {method:?}: recordsync knows Records Write and Records Delete"
    )]
    UnknownMethod { method: String },
    /// The descriptor breaks its own rules.
    #[error(transparent)]
    Descriptor(#[from] DescriptorError),
    /// A value with no canonical form (a number beyond a double's range).
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    /// More data than a message can describe.
    #[error("the data is {len} bytes, more than a message can describe")]
    DataTooLarge { len: usize },
}

/// How a new record is written: its metadata, all optional but the data format.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    schema: Option<String>,
    data_format: Option<String>,
    protocol: Option<(String, String)>,
    recipient: Option<Did>,
    tags: Option<Tags>,
    published: bool,
    parent: Option<(RecordId, Option<String>)>,
}

impl WriteOptions {
    /// No metadata; data format `application/json`.
    pub fn new() -> WriteOptions {
        WriteOptions::default()
    }

    /// The record's schema.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// The data's media type [default: `application/json`].
    pub fn data_format(mut self, format: impl Into<String>) -> Self {
        self.data_format = Some(format.into());
        self
    }

    /// The protocol and the record's path in it; the record starts a thread
    /// (`contextId` = its record id) unless it has a parent.
    pub fn protocol(mut self, protocol: impl Into<String>, path: impl Into<String>) -> Self {
        self.protocol = Some((protocol.into(), path.into()));
        self
    }

    /// Who the record is for.
    pub fn recipient(mut self, recipient: Did) -> Self {
        self.recipient = Some(recipient);
        self
    }

    /// Tags to query by.
    pub fn tags(mut self, tags: Tags) -> Self {
        self.tags = Some(tags);
        self
    }

    /// Published (readable by anyone) from the start.
    pub fn published(mut self, published: bool) -> Self {
        self.published = published;
        self
    }

    /// The record's parent; the record joins the parent's thread.
    pub fn parent(mut self, parent: &RecordsWrite) -> Self {
        self.parent = Some((parent.record_id, parent.context_id.clone()));
        self
    }
}

/// What an update changes besides the data; unchanged when not said.
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    data_format: Option<String>,
    published: Option<bool>,
    tags: Option<Option<Tags>>,
}

impl UpdateOptions {
    /// Nothing but the data changes.
    pub fn new() -> UpdateOptions {
        UpdateOptions::default()
    }

    /// A new data format.
    pub fn data_format(mut self, format: impl Into<String>) -> Self {
        self.data_format = Some(format.into());
        self
    }

    /// Publish or unpublish.
    pub fn published(mut self, published: bool) -> Self {
        self.published = Some(published);
        self
    }

    /// New tags, or none.
    pub fn tags(mut self, tags: Option<Tags>) -> Self {
        self.tags = Some(tags);
        self
    }
}

/// The record id of a first version with this descriptor and author.
pub fn entry_id(descriptor: &WriteDescriptor, author: &Did) -> Result<RecordId, CanonicalError> {
    let preimage = json!({"author": author, "descriptor": descriptor});
    Ok(RecordId::from_digest(sha256(&canonical_json(&preimage)?)))
}

/// The bytes a signature signs: the prefix and the canonical envelope without
/// `signature.value`.
fn signing_input<T: Serialize>(envelope: &T) -> Result<Vec<u8>, CanonicalError> {
    let mut value = serde_json::to_value(envelope).expect("messages serialise to JSON");
    if let Some(signature) = value.get_mut("signature").and_then(Value::as_object_mut) {
        signature.remove("value");
    }
    let mut input = SIGNING_PREFIX.to_vec();
    input.extend_from_slice(&canonical_json(&value)?);
    Ok(input)
}

fn message_id_of<T: Serialize>(envelope: &T) -> Result<MessageId, CanonicalError> {
    Ok(MessageId::from_digest(sha256(&canonical_json(envelope)?)))
}

fn data_size(data: &[u8]) -> Result<u64, MessageError> {
    u64::try_from(data.len()).map_err(|_| MessageError::DataTooLarge { len: data.len() })
}

/// An unsigned signature block for `identity`, replaced once the input is known.
fn unsigned(identity: &Identity) -> MessageSignature {
    MessageSignature {
        key_id: identity.key_id().to_owned(),
        value: SignatureBytes([0; 64]),
    }
}

impl RecordsWrite {
    /// The first version of a new record holding `data`, signed by `identity`, created
    /// at `now`.
    pub fn create(
        identity: &Identity,
        data: &[u8],
        options: WriteOptions,
        now: Timestamp,
    ) -> Result<RecordsWrite, MessageError> {
        let (protocol, protocol_path) = options.protocol.clone().unzip();
        let published = options.published.then_some(true);
        let descriptor = WriteDescriptor {
            interface: Interface::Records,
            method: WriteMethod::Write,
            protocol,
            protocol_path,
            recipient: options.recipient,
            schema: options.schema,
            tags: options.tags,
            parent_id: options.parent.as_ref().map(|(id, _)| *id),
            data_cid: DataId::of(data),
            data_size: data_size(data)?,
            date_created: now,
            message_timestamp: now,
            published,
            date_published: options.published.then_some(now),
            data_format: options
                .data_format
                .unwrap_or_else(|| DEFAULT_DATA_FORMAT.into()),
        };
        descriptor.check()?;
        let record_id = entry_id(&descriptor, identity.did())?;
        let context_id = match (&options.parent, &options.protocol) {
            (Some((parent_id, parent_context)), _) => Some(format!(
                "{}/{record_id}",
                parent_context
                    .clone()
                    .unwrap_or_else(|| parent_id.to_string())
            )),
            (None, Some(_)) => Some(record_id.to_string()),
            (None, None) => None,
        };
        RecordsWrite::sign(identity, record_id, context_id, descriptor)
    }

    /// A new version of the record `previous` is a version of, holding `data`, signed by
    /// `identity`. Its `messageTimestamp` is `now`, or one microsecond after
    /// `previous`'s when the clock has not moved past it, so it supersedes `previous`.
    pub fn update(
        identity: &Identity,
        previous: &RecordsWrite,
        data: &[u8],
        options: UpdateOptions,
        now: Timestamp,
    ) -> Result<RecordsWrite, MessageError> {
        let mut descriptor = previous.descriptor.clone();
        descriptor.message_timestamp = now.after(previous.descriptor.message_timestamp);
        descriptor.data_cid = DataId::of(data);
        descriptor.data_size = data_size(data)?;
        if let Some(format) = options.data_format {
            descriptor.data_format = format;
        }
        if let Some(tags) = options.tags {
            descriptor.tags = tags;
        }
        match options.published {
            Some(true) if descriptor.published != Some(true) => {
                descriptor.published = Some(true);
                descriptor.date_published = Some(descriptor.message_timestamp);
            }
            Some(false) => {
                descriptor.published = None;
                descriptor.date_published = None;
            }
            _ => {}
        }
        descriptor.check()?;
        RecordsWrite::sign(
            identity,
            previous.record_id,
            previous.context_id.clone(),
            descriptor,
        )
    }

    fn sign(
        identity: &Identity,
        record_id: RecordId,
        context_id: Option<String>,
        descriptor: WriteDescriptor,
    ) -> Result<RecordsWrite, MessageError> {
        let mut write = RecordsWrite {
            record_id,
            context_id,
            descriptor,
            author: identity.did().clone(),
            signature: unsigned(identity),
        };
        let input = signing_input(&write)?;
        write.signature.value = SignatureBytes(identity.sign(&input).to_bytes());
        Ok(write)
    }

    /// The record id this write would have as a first version.
    pub fn entry_id(&self) -> Result<RecordId, CanonicalError> {
        entry_id(&self.descriptor, &self.author)
    }

    /// Whether this is the record's first version (its entry id is its record id).
    pub fn is_initial(&self) -> Result<bool, CanonicalError> {
        Ok(self.entry_id()? == self.record_id)
    }
}

impl RecordsDelete {
    /// The deletion of `record_id` at `now`, signed by `identity`; with `prune`, its
    /// descendants go too. To supersede the record's newest version, `now` must be later
    /// than its timestamp ([`Timestamp::after`]).
    pub fn create(
        identity: &Identity,
        record_id: RecordId,
        prune: bool,
        now: Timestamp,
    ) -> Result<RecordsDelete, MessageError> {
        let mut delete = RecordsDelete {
            descriptor: DeleteDescriptor {
                interface: Interface::Records,
                method: DeleteMethod::Delete,
                record_id,
                prune,
                message_timestamp: now,
            },
            author: identity.did().clone(),
            signature: unsigned(identity),
        };
        let input = signing_input(&delete)?;
        delete.signature.value = SignatureBytes(identity.sign(&input).to_bytes());
        Ok(delete)
    }
}

impl Message {
    /// Reads a message from its JSON envelope.
    pub fn from_json(text: &str) -> Result<Message, MessageError> {
        let value: Value = recordsync_core::json::parse_within(text, MAX_MESSAGE_DEPTH)
            .map_err(MessageError::Json)?;
        Message::from_value(value)
    }

    /// Reads a message from a JSON value.
    pub fn from_value(value: Value) -> Result<Message, MessageError> {
        let method = value
            .get("descriptor")
            .and_then(|d| d.get("method"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match method.as_str() {
            "Write" => serde_json::from_value(value)
                .map(|write| Message::Write(Box::new(write)))
                .map_err(MessageError::Shape),
            "Delete" => serde_json::from_value(value)
                .map(Message::Delete)
                .map_err(MessageError::Shape),
            _ => Err(MessageError::UnknownMethod { method }),
        }
    }

    /// The envelope as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("messages serialise to JSON")
    }

    /// The message id (see the module docs).
    pub fn message_id(&self) -> Result<MessageId, CanonicalError> {
        match self {
            Message::Write(write) => message_id_of(&**write),
            Message::Delete(delete) => message_id_of(delete),
        }
    }

    /// The bytes the signature signs.
    pub fn signing_input(&self) -> Result<Vec<u8>, CanonicalError> {
        match self {
            Message::Write(write) => signing_input(&**write),
            Message::Delete(delete) => signing_input(delete),
        }
    }

    /// The record the message is about.
    pub fn record_id(&self) -> RecordId {
        match self {
            Message::Write(write) => write.record_id,
            Message::Delete(delete) => delete.descriptor.record_id,
        }
    }

    /// The author's DID.
    pub fn author(&self) -> &Did {
        match self {
            Message::Write(write) => &write.author,
            Message::Delete(delete) => &delete.author,
        }
    }

    /// The signature block.
    pub fn signature(&self) -> &MessageSignature {
        match self {
            Message::Write(write) => &write.signature,
            Message::Delete(delete) => &delete.signature,
        }
    }

    /// When the message was made.
    pub fn message_timestamp(&self) -> Timestamp {
        match self {
            Message::Write(write) => write.descriptor.message_timestamp,
            Message::Delete(delete) => delete.descriptor.message_timestamp,
        }
    }

    /// Where the message stands among the record's messages ([`Precedence`]).
    pub fn precedence(&self) -> Result<Precedence, CanonicalError> {
        Ok(Precedence {
            message_timestamp: self.message_timestamp(),
            message_id: self.message_id()?,
        })
    }
}

impl From<RecordsWrite> for Message {
    fn from(write: RecordsWrite) -> Message {
        Message::Write(Box::new(write))
    }
}

impl From<RecordsDelete> for Message {
    fn from(delete: RecordsDelete) -> Message {
        Message::Delete(delete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identity {
        Identity::from_seed(&[1; 32])
    }

    fn at(micros: i64) -> Timestamp {
        Timestamp::from_micros(1_800_000_000_000_000 + micros).unwrap()
    }

    #[test]
    fn a_first_version_is_its_own_entry() {
        let write = RecordsWrite::create(
            &alice(),
            b"{\"a\":1}",
            WriteOptions::new().schema("note"),
            at(0),
        )
        .unwrap();
        assert!(write.is_initial().unwrap());
        assert_eq!(write.descriptor.data_cid, DataId::of(b"{\"a\":1}"));
        assert_eq!(write.descriptor.data_size, 7);
        assert_eq!(
            write.descriptor.date_created,
            write.descriptor.message_timestamp
        );
        assert_eq!(write.descriptor.data_format, DEFAULT_DATA_FORMAT);
        assert_eq!(write.context_id, None);
        assert_eq!(&write.author, alice().did());
    }

    /// The format pinned: a fixed key, time and data give these exact ids and signature.
    /// They were reproduced independently (Python: hashlib, base64, the `cryptography`
    /// package's Ed25519), and docs/identity.md shows the same example; a change here
    /// changes every id, on every node.
    #[test]
    fn a_golden_message() {
        let now: Timestamp = "2026-12-07T23:40:32.123456Z".parse().unwrap();
        let data = br#"{"text":"hello"}"#;
        let write = RecordsWrite::create(
            &alice(),
            data,
            WriteOptions::new().schema("https://example.com/note"),
            now,
        )
        .unwrap();
        assert_eq!(
            write.author.as_str(),
            "did:key:z6Mkon3Necd6NkkyfoGoHxid2znGc59LU3K7mubaRcFbLfLX"
        );
        assert_eq!(
            write.descriptor.data_cid.to_string(),
            "bciqmxo642j3jencn4xn2wov4vosbh6ypiuyhez66ocauaflw34olc5q"
        );
        assert_eq!(
            write.record_id.to_string(),
            "bciqejvrsgilcsvntijlutxf7fo7d6kps6miruxw3pfoz7pso36hqnsi"
        );
        assert_eq!(
            serde_json::to_value(write.signature.value).unwrap(),
            "cRrDWCiMVh8Ie8bj7xMQzHp30VpDUltUZGSbCg67_O9ecIFatFsI71a87WUt5210npfY_5phh_17oKzOxE4fAA"
        );
        assert_eq!(
            Message::from(write).message_id().unwrap().to_string(),
            "bciqaw724fxzenvplu6yp2xwgn3253h35qy2uu5d3dawxe6qtqawou5y"
        );
    }

    #[test]
    fn ids_are_stable_across_serialisation() {
        let write = RecordsWrite::create(&alice(), b"x", WriteOptions::new(), at(0)).unwrap();
        let message = Message::from(write.clone());
        let text = serde_json::to_string_pretty(&message.to_json()).unwrap();
        let back = Message::from_json(&text).unwrap();
        assert_eq!(back, message);
        assert_eq!(back.message_id().unwrap(), message.message_id().unwrap());
        // The same content signed again is the same message (Ed25519 is deterministic).
        let again = RecordsWrite::create(&alice(), b"x", WriteOptions::new(), at(0)).unwrap();
        assert_eq!(again, write);
        // Another time, another record.
        let later = RecordsWrite::create(&alice(), b"x", WriteOptions::new(), at(1)).unwrap();
        assert_ne!(later.record_id, write.record_id);
    }

    #[test]
    fn updates_keep_the_record_and_move_time_forward() {
        let first = RecordsWrite::create(&alice(), b"1", WriteOptions::new(), at(10)).unwrap();
        // The clock went back: the update is still newer.
        let second = RecordsWrite::update(
            &alice(),
            &first,
            b"2",
            UpdateOptions::new().published(true),
            at(5),
        )
        .unwrap();
        assert_eq!(second.record_id, first.record_id);
        assert!(!second.is_initial().unwrap());
        assert_eq!(second.descriptor.message_timestamp, at(11));
        assert_eq!(second.descriptor.date_created, at(10));
        assert_eq!(second.descriptor.published, Some(true));
        assert_eq!(second.descriptor.date_published, Some(at(11)));
        let first_message = Message::from(first);
        let second_message = Message::from(second);
        assert!(second_message.precedence().unwrap() > first_message.precedence().unwrap());
    }

    #[test]
    fn threads_chain_context_ids() {
        let root = RecordsWrite::create(
            &alice(),
            b"root",
            WriteOptions::new().protocol("https://example.com/chat", "thread"),
            at(0),
        )
        .unwrap();
        assert_eq!(root.context_id, Some(root.record_id.to_string()));
        let reply = RecordsWrite::create(
            &alice(),
            b"reply",
            WriteOptions::new()
                .protocol("https://example.com/chat", "thread/reply")
                .parent(&root),
            at(1),
        )
        .unwrap();
        assert_eq!(reply.descriptor.parent_id, Some(root.record_id));
        assert_eq!(
            reply.context_id,
            Some(format!("{}/{}", root.record_id, reply.record_id))
        );
    }

    #[test]
    fn deletes_name_their_record() {
        let write = RecordsWrite::create(&alice(), b"x", WriteOptions::new(), at(0)).unwrap();
        let delete = RecordsDelete::create(&alice(), write.record_id, false, at(1)).unwrap();
        let message = Message::from(delete);
        assert_eq!(message.record_id(), write.record_id);
        let json = message.to_json();
        assert_eq!(json["descriptor"]["method"], "Delete");
        assert!(json.get("recordId").is_none());
        assert_eq!(Message::from_json(&json.to_string()).unwrap(), message);
    }

    #[test]
    fn foreign_json_is_refused_with_a_reason() {
        let write = RecordsWrite::create(&alice(), b"x", WriteOptions::new(), at(0)).unwrap();
        let mut json = Message::from(write).to_json();
        json["descriptor"]["method"] = "Query".into();
        assert!(matches!(
            Message::from_value(json.clone()),
            Err(MessageError::UnknownMethod { .. })
        ));
        json["descriptor"]["method"] = "Write".into();
        json["extra"] = 1.into();
        let error = Message::from_value(json.clone()).unwrap_err();
        assert!(error.to_string().contains("extra"), "{error}");
        json.as_object_mut().unwrap().remove("extra");
        json["signature"]["value"] = "AAAA".into();
        let error = Message::from_value(json).unwrap_err();
        assert!(error.to_string().contains("64 bytes"), "{error}");
        let deep = format!("{}{}", "[".repeat(50), "]".repeat(50));
        assert!(matches!(
            Message::from_json(&deep),
            Err(MessageError::Json(_))
        ));
    }
}
