//! recordsync's identities and signed record messages: who wrote a record, and proof
//! that they did, checkable by any node.
//!
//! A user is a DID with an Ed25519 key. A record's versions and its deletion are
//! messages the author signs once; their ids are SHA-256 hashes of RFC 8785 canonical
//! JSON, so the same signed bytes are the same record and the same message on every
//! node, and a node recomputes every id and checks the signature before it takes a
//! message. The client signs ([`Identity`], [`RecordsWrite::create`]); the server
//! verifies ([`verify()`]). Nothing here opens a socket: the host brings its HTTP client
//! for `did:web` ([`WebFetcher`]). docs/identity.md describes the formats.
//!
//! Crate map (the public surface is the `pub use` block below):
//! - `did`        — [`Did`]: parsing and the method of a DID ([`DidMethod`], [`DidError`]).
//! - `did_key`    — `did:key` with Ed25519: encoding, the derived DID document, secret
//!   key text.
//! - `did_web`    — `did:web`: where its document lives ([`DidWeb`]); HTTPS, or plain
//!   HTTP to loopback hosts only.
//! - `document`   — [`DidDocument`]: signing keys by key id, node endpoints from
//!   `DecentralizedWebNode` services ([`DocumentError`]).
//! - `did_dir`    — [`DidDirectory`]: one JSON file per DID ([`did_dir_file_name`]),
//!   resolving without a network ([`DidDirError`]).
//! - `resolver`   — [`Resolver`]: directory first, then `did:key`, then `did:web` through
//!   a [`WebFetcher`] ([`ResolveError`], [`FetchError`]).
//! - `web_fetch`  — `ReqwestFetcher` (feature `reqwest`): a [`WebFetcher`] on reqwest that
//!   keeps the transport rules (HTTPS; HTTP to loopback only, redirects included).
//! - `identity`   — [`Identity`]: a DID and its signing key, the identity file (0600),
//!   never shown ([`IdentityError`]).
//! - `canonical`  — [`canonical_json`]: RFC 8785 ([`CanonicalError`]).
//! - `content_id` — [`RecordId`], [`MessageId`], [`DataId`]: SHA-256 multihashes in
//!   base32 multibase ([`IdError`]).
//! - `timestamp`  — [`Timestamp`]: microsecond UTC instants with one text each
//!   ([`TimestampError`]).
//! - `descriptor` — [`WriteDescriptor`], [`DeleteDescriptor`], [`Tags`]: DWN's field
//!   names, their rules, the fields an update must keep ([`DescriptorError`]).
//! - `message`    — [`Message`], [`RecordsWrite`], [`RecordsDelete`]: envelopes, ids,
//!   signing ([`WriteOptions`], [`UpdateOptions`], [`MessageError`]).
//! - `verify`     — [`check_message`], [`check_signature`], [`verify()`], [`check_update`]:
//!   what a receiving node checks, one [`VerifyError`] variant per mismatch.
//! - `order`      — [`Precedence`], [`Arrival`], [`newest`]: which message of a record
//!   wins, the same on every node.

mod canonical;
mod content_id;
mod descriptor;
mod did;
mod did_dir;
mod did_key;
mod did_web;
mod document;
mod identity;
mod message;
mod order;
mod resolver;
mod timestamp;
mod verify;
#[cfg(feature = "reqwest")]
mod web_fetch;

pub use canonical::{CanonicalError, canonical_json};
pub use content_id::{DataId, ID_TEXT_LEN, IdError, MessageId, RecordId};
pub use descriptor::{
    DeleteDescriptor, DeleteMethod, DescriptorError, Interface, TagValue, Tags, WriteDescriptor,
    WriteMethod,
};
pub use did::{Did, DidError, DidMethod, MAX_DID_LEN};
pub use did_dir::{DidDirError, DidDirectory, MAX_DOCUMENT_FILE, file_name as did_dir_file_name};
pub use did_web::DidWeb;
pub use document::{DidDocument, DocumentError, NODE_SERVICE_TYPE};
pub use identity::{Identity, IdentityError};
pub use message::{
    DEFAULT_DATA_FORMAT, Message, MessageError, MessageSignature, RecordsDelete, RecordsWrite,
    SIGNING_PREFIX, SignatureBytes, UpdateOptions, WriteOptions, entry_id,
};
pub use order::{Arrival, Precedence, newest};
pub use resolver::{FetchError, MAX_WEB_DOCUMENT, ResolveError, Resolver, WebFetcher};
pub use timestamp::{Timestamp, TimestampError};
pub use verify::{
    DEFAULT_MAX_FUTURE_SKEW, Verified, VerifyError, VerifyOptions, check_message, check_signature,
    check_update, verify,
};
#[cfg(feature = "reqwest")]
pub use web_fetch::{DEFAULT_FETCH_TIMEOUT, ReqwestFetcher};
