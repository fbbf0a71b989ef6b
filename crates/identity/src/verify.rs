//! Verifying a message a node receives: every id recomputed, every rule checked, the
//! signature checked against the author's key.
//!
//! Steps, in order (the first failure is the answer, each with its own [`VerifyError`]):
//! 1. the descriptor's own rules ([`crate::WriteDescriptor::check`]);
//! 2. `messageTimestamp` at most `max_future_skew` ahead of the receiver's clock;
//! 3. `contextId` consistent with the record id and `parentId`;
//! 4. the data, when given: its id and size equal `dataCid` and `dataSize`;
//! 5. a first version (entry id = record id) has `messageTimestamp` = `dateCreated`;
//! 6. the message id, when the sender named one, equals the recomputed one;
//! 7. the signature's key id belongs to the author's DID, the author's document lists
//!    that key for signing, and the Ed25519 signature verifies (strictly) over the
//!    signing input.
//!
//! Steps 1-6 are [`check_message`] (pure); step 7 is [`check_signature`] (given the
//! document) or [`verify()`] (resolving it). Whether an update's record exists, and
//! whether it keeps its first version's immutable fields ([`check_update`]), needs the
//! receiver's store: that part is the node's.

use std::time::Duration;

use ed25519_dalek::Signature;
use thiserror::Error;

use crate::canonical::CanonicalError;
use crate::content_id::{DataId, MessageId, RecordId};
use crate::descriptor::DescriptorError;
use crate::document::{DidDocument, DocumentError};
use crate::message::{Message, RecordsWrite};
use crate::resolver::{ResolveError, Resolver};
use crate::timestamp::Timestamp;

/// How far ahead of the receiver's clock a message timestamp may be, by default.
pub const DEFAULT_MAX_FUTURE_SKEW: Duration = Duration::from_secs(5 * 60);

/// The receiver's side of verification: its clock and its tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyOptions {
    now: Timestamp,
    max_future_skew: Duration,
}

impl VerifyOptions {
    /// Verification at `now`, allowing [`DEFAULT_MAX_FUTURE_SKEW`].
    pub fn at(now: Timestamp) -> VerifyOptions {
        VerifyOptions {
            now,
            max_future_skew: DEFAULT_MAX_FUTURE_SKEW,
        }
    }

    /// These options allowing timestamps up to `skew` ahead of `now`.
    pub fn max_future_skew(mut self, skew: Duration) -> VerifyOptions {
        self.max_future_skew = skew;
        self
    }
}

/// What a checked message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The recomputed message id.
    pub message_id: MessageId,
    /// The record it is about.
    pub record_id: RecordId,
    /// Whether it is the record's first version.
    pub initial: bool,
    /// Whether its data was given and checked.
    pub data_checked: bool,
}

/// Why a message was refused. Each message says what is wrong and what would fix it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The descriptor breaks its own rules.
    #[error("the message's descriptor is invalid: {0}")]
    Descriptor(#[from] DescriptorError),
    /// A value with no canonical form.
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    /// The message is dated too far ahead of the receiver's clock.
    #[error(
        "the message is dated {timestamp}, more than {}s ahead of this node's clock ({now}): check the sender's clock",
        max_skew.as_secs()
    )]
    TimestampInFuture {
        timestamp: Timestamp,
        now: Timestamp,
        max_skew: Duration,
    },
    /// `contextId` does not fit the record id and `parentId`.
    #[error("contextId {context_id:?} is inconsistent: {reason}")]
    ContextId { context_id: String, reason: String },
    /// The data's id is not the message's `dataCid`.
    #[error(
        "the data does not belong to this message: its id is {computed} but the message's dataCid is {claimed}; send the data the message was signed with"
    )]
    DataIdMismatch { claimed: DataId, computed: DataId },
    /// The data's size is not the message's `dataSize`.
    #[error(
        "the data is {actual} bytes but the message's dataSize is {claimed}; send the data the message was signed with"
    )]
    DataSizeMismatch { claimed: u64, actual: u64 },
    /// A first version whose `messageTimestamp` differs from its `dateCreated`.
    #[error(
        "a record's first version must have messageTimestamp equal to dateCreated, and this one has {message_timestamp} and {date_created}"
    )]
    InitialTimestamp {
        date_created: Timestamp,
        message_timestamp: Timestamp,
    },
    /// The message was sent under an id that is not its own.
    #[error(
        "the message was sent as {claimed} but its id is {computed}: it was changed after it was signed, or sent under another message's id"
    )]
    MessageIdMismatch {
        claimed: MessageId,
        computed: MessageId,
    },
    /// An update names another record than the first version given with it.
    #[error("the update is for record {claimed}, but the first version given is record {computed}")]
    RecordIdMismatch {
        claimed: RecordId,
        computed: RecordId,
    },
    /// What was given as a first version is not one.
    #[error(
        "the message given as record {record_id}'s first version is a later version: send the record's first version"
    )]
    NotInitial { record_id: RecordId },
    /// An update changes a field every version must keep.
    #[error(
        "the update changes {field}, which every version of a record keeps from its first: write a new record instead"
    )]
    ImmutableFieldChanged { field: &'static str },
    /// The signature's key is not one of the author's.
    #[error(
        "the message is signed with {key_id}, which is not a key of its author {author}: sign with the author's own key"
    )]
    KeyIdNotOfAuthor { key_id: String, author: String },
    /// The author's DID did not resolve.
    #[error("the author's DID document cannot be had: {0}")]
    Resolve(#[from] ResolveError),
    /// The author's document does not give a usable key for the key id.
    #[error(transparent)]
    Key(#[from] DocumentError),
    /// The signature does not verify.
    #[error(
        "the signature does not verify with {key_id}: the message was changed after it was signed, or signed with another key"
    )]
    BadSignature { key_id: String },
}

/// Steps 1-6 of the module docs: everything but the signature. `data` is the record's
/// data when the receiver has it; `claimed` the message id the sender named.
pub fn check_message(
    message: &Message,
    data: Option<&[u8]>,
    claimed: Option<&MessageId>,
    options: &VerifyOptions,
) -> Result<Verified, VerifyError> {
    if let Message::Write(write) = message {
        write.descriptor.check()?;
    }
    let timestamp = message.message_timestamp();
    if timestamp > options.now.saturating_add(options.max_future_skew) {
        return Err(VerifyError::TimestampInFuture {
            timestamp,
            now: options.now,
            max_skew: options.max_future_skew,
        });
    }
    let mut initial = false;
    let mut data_checked = false;
    if let Message::Write(write) = message {
        check_context(write)?;
        if let Some(data) = data {
            let computed = DataId::of(data);
            if computed != write.descriptor.data_cid {
                return Err(VerifyError::DataIdMismatch {
                    claimed: write.descriptor.data_cid,
                    computed,
                });
            }
            let actual = u64::try_from(data.len()).unwrap_or(u64::MAX);
            if actual != write.descriptor.data_size {
                return Err(VerifyError::DataSizeMismatch {
                    claimed: write.descriptor.data_size,
                    actual,
                });
            }
            data_checked = true;
        }
        initial = write.is_initial()?;
        if initial && write.descriptor.message_timestamp != write.descriptor.date_created {
            return Err(VerifyError::InitialTimestamp {
                date_created: write.descriptor.date_created,
                message_timestamp: write.descriptor.message_timestamp,
            });
        }
    }
    let message_id = message.message_id()?;
    if let Some(claimed) = claimed
        && *claimed != message_id
    {
        return Err(VerifyError::MessageIdMismatch {
            claimed: *claimed,
            computed: message_id,
        });
    }
    Ok(Verified {
        message_id,
        record_id: message.record_id(),
        initial,
        data_checked,
    })
}

/// The `contextId` rules of `message.rs`: absent, or `…/<parentId>/<recordId>` with a
/// parent, or exactly the record id without one; a `parentId` needs a `contextId`.
fn check_context(write: &RecordsWrite) -> Result<(), VerifyError> {
    let Some(context_id) = &write.context_id else {
        return match write.descriptor.parent_id {
            Some(_) => Err(VerifyError::ContextId {
                context_id: String::new(),
                reason: "a record with a parentId needs a contextId (its parent's contextId, then its own record id)".into(),
            }),
            None => Ok(()),
        };
    };
    let error = |reason: String| VerifyError::ContextId {
        context_id: context_id.clone(),
        reason,
    };
    let segments: Vec<&str> = context_id.split('/').collect();
    for segment in &segments {
        segment
            .parse::<RecordId>()
            .map_err(|e| error(format!("each segment is a record id, and {e}")))?;
    }
    let record_id = write.record_id.to_string();
    if segments.last() != Some(&record_id.as_str()) {
        return Err(error(format!("it must end with the record id {record_id}")));
    }
    match write.descriptor.parent_id {
        Some(parent) => {
            let parent = parent.to_string();
            if segments.len() < 2 || segments[segments.len() - 2] != parent {
                return Err(error(format!(
                    "the segment before the record id must be the parentId {parent}"
                )));
            }
        }
        None if segments.len() != 1 => {
            return Err(error(
                "a record without a parentId starts its thread: its contextId is its record id"
                    .into(),
            ));
        }
        None => {}
    }
    Ok(())
}

/// Step 7 of the module docs, with the author's document in hand.
pub fn check_signature(message: &Message, document: &DidDocument) -> Result<(), VerifyError> {
    let author = message.author();
    let key_id = &message.signature().key_id;
    let of_author = key_id
        .strip_prefix(author.as_str())
        .and_then(|rest| rest.strip_prefix('#'))
        .is_some_and(|fragment| !fragment.is_empty());
    if !of_author || document.id() != author {
        return Err(VerifyError::KeyIdNotOfAuthor {
            key_id: key_id.clone(),
            author: author.to_string(),
        });
    }
    let key = document.signing_key(key_id)?;
    let input = message.signing_input()?;
    let signature = Signature::from_bytes(&message.signature().value.0);
    key.verify_strict(&input, &signature)
        .map_err(|_| VerifyError::BadSignature {
            key_id: key_id.clone(),
        })
}

/// Verifies a message completely (see the module docs), resolving its author's DID.
pub async fn verify(
    message: &Message,
    data: Option<&[u8]>,
    claimed: Option<&MessageId>,
    resolver: &Resolver,
    options: &VerifyOptions,
) -> Result<Verified, VerifyError> {
    let verified = check_message(message, data, claimed, options)?;
    let document = resolver.resolve(message.author()).await?;
    check_signature(message, &document)?;
    Ok(verified)
}

/// Checks that `update` is a later version of the record whose first version is
/// `initial`: `initial` is a first version, `update` names its record, and keeps its
/// immutable fields.
pub fn check_update(initial: &RecordsWrite, update: &RecordsWrite) -> Result<(), VerifyError> {
    let computed = initial.entry_id()?;
    if computed != initial.record_id {
        return Err(VerifyError::NotInitial {
            record_id: initial.record_id,
        });
    }
    if update.record_id != computed {
        return Err(VerifyError::RecordIdMismatch {
            claimed: update.record_id,
            computed,
        });
    }
    if let Some(field) = initial
        .descriptor
        .changed_immutable_field(&update.descriptor)
    {
        return Err(VerifyError::ImmutableFieldChanged { field });
    }
    if initial.context_id != update.context_id {
        return Err(VerifyError::ImmutableFieldChanged { field: "contextId" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::did::Did;
    use crate::identity::Identity;
    use crate::message::{RecordsDelete, UpdateOptions, WriteOptions};
    use proptest::prelude::*;
    use serde_json::Value;

    fn alice() -> Identity {
        Identity::from_seed(&[1; 32])
    }

    fn mallory() -> Identity {
        Identity::from_seed(&[2; 32])
    }

    fn at(micros: i64) -> Timestamp {
        Timestamp::from_micros(1_800_000_000_000_000 + micros).unwrap()
    }

    fn options() -> VerifyOptions {
        VerifyOptions::at(at(0))
    }

    fn document(identity: &Identity) -> DidDocument {
        identity.did_key_document().unwrap()
    }

    fn write(data: &[u8]) -> RecordsWrite {
        RecordsWrite::create(&alice(), data, WriteOptions::new().schema("note"), at(0)).unwrap()
    }

    /// The message with its JSON changed by `change`, read back.
    fn edited(message: &Message, change: impl FnOnce(&mut Value)) -> Message {
        let mut json = message.to_json();
        change(&mut json);
        Message::from_value(json).unwrap()
    }

    #[tokio::test]
    async fn a_signed_message_verifies_end_to_end() {
        let message = Message::from(write(b"hi"));
        let id = message.message_id().unwrap();
        let verified = verify(
            &message,
            Some(b"hi"),
            Some(&id),
            &Resolver::offline(),
            &options(),
        )
        .await
        .unwrap();
        assert_eq!(verified.message_id, id);
        assert!(verified.initial && verified.data_checked);
        let delete = Message::from(
            RecordsDelete::create(&alice(), message.record_id(), false, at(1)).unwrap(),
        );
        let verified = verify(&delete, None, None, &Resolver::offline(), &options())
            .await
            .unwrap();
        assert!(!verified.initial);
        assert_eq!(verified.record_id, message.record_id());
    }

    #[test]
    fn each_mismatch_has_its_own_error() {
        let message = Message::from(write(b"hi"));
        let id = message.message_id().unwrap();
        assert!(matches!(
            check_message(&message, Some(b"ho"), None, &options()),
            Err(VerifyError::DataIdMismatch { .. })
        ));
        // Same bytes claimed by a descriptor with another size.
        let resized = edited(&message, |j| j["descriptor"]["dataSize"] = 3.into());
        assert!(matches!(
            check_message(&resized, Some(b"hi"), None, &options()),
            Err(VerifyError::DataSizeMismatch {
                claimed: 3,
                actual: 2
            })
        ));
        let other_id = Message::from(write(b"other")).message_id().unwrap();
        let error = check_message(&message, None, Some(&other_id), &options()).unwrap_err();
        assert!(
            matches!(error, VerifyError::MessageIdMismatch { .. }),
            "{error}"
        );
        assert_eq!(
            check_message(&message, None, Some(&id), &options())
                .unwrap()
                .message_id,
            id
        );
        // An edited descriptor is another message: the signature no longer verifies.
        let edited_schema = edited(&message, |j| j["descriptor"]["schema"] = "x".into());
        let error = check_signature(&edited_schema, &document(&alice())).unwrap_err();
        assert!(matches!(error, VerifyError::BadSignature { .. }), "{error}");
    }

    #[test]
    fn the_future_is_refused_beyond_the_skew() {
        let message = Message::from(
            RecordsWrite::create(&alice(), b"x", WriteOptions::new(), at(60_000_000)).unwrap(),
        );
        let strict = options().max_future_skew(Duration::from_secs(59));
        let error = check_message(&message, None, None, &strict).unwrap_err();
        assert!(
            matches!(error, VerifyError::TimestampInFuture { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("clock"), "{error}");
        let lenient = options().max_future_skew(Duration::from_secs(60));
        assert!(check_message(&message, None, None, &lenient).is_ok());
    }

    #[test]
    fn a_first_version_must_be_dated_at_its_creation() {
        let first = write(b"x");
        let mut changed = first.clone();
        changed.descriptor.message_timestamp = at(1);
        // The descriptor changed, so it is another entry; make it claim to be initial.
        changed.record_id = changed.entry_id().unwrap();
        let error = check_message(
            &Message::from(changed),
            None,
            None,
            &VerifyOptions::at(at(10)),
        )
        .unwrap_err();
        assert!(
            matches!(error, VerifyError::InitialTimestamp { .. }),
            "{error}"
        );
    }

    #[test]
    fn signatures_must_come_from_the_authors_key() {
        let message = Message::from(write(b"x"));
        // Mallory signs the same content as Alice: the key id is Mallory's.
        let forged = edited(&message, |j| {
            j["signature"]["keyId"] = mallory().key_id().into();
        });
        assert!(matches!(
            check_signature(&forged, &document(&alice())),
            Err(VerifyError::KeyIdNotOfAuthor { .. })
        ));
        // Mallory claims Alice's key id but signed with his own key.
        let mut stolen =
            RecordsWrite::create(&mallory(), b"x", WriteOptions::new(), at(0)).unwrap();
        stolen.author = alice().did().clone();
        stolen.signature.key_id = alice().key_id().into();
        assert!(matches!(
            check_signature(&Message::from(stolen), &document(&alice())),
            Err(VerifyError::BadSignature { .. })
        ));
        // A key id of the author that the document does not list.
        let unlisted = edited(&message, |j| {
            j["signature"]["keyId"] = alice().did().with_fragment("other").into();
        });
        assert!(matches!(
            check_signature(&unlisted, &document(&alice())),
            Err(VerifyError::Key(DocumentError::KeyNotFound { .. }))
        ));
        // The document of someone else.
        assert!(matches!(
            check_signature(&message, &document(&mallory())),
            Err(VerifyError::KeyIdNotOfAuthor { .. })
        ));
    }

    #[test]
    fn context_ids_must_fit_record_and_parent() {
        let root = RecordsWrite::create(
            &alice(),
            b"root",
            WriteOptions::new().protocol("p", "thread"),
            at(0),
        )
        .unwrap();
        let reply = RecordsWrite::create(
            &alice(),
            b"reply",
            WriteOptions::new()
                .protocol("p", "thread/reply")
                .parent(&root),
            at(0),
        )
        .unwrap();
        for message in [&root, &reply] {
            check_message(&Message::from(message.clone()), None, None, &options()).unwrap();
        }
        let mut cases: Vec<RecordsWrite> = Vec::new();
        let mut bad = reply.clone();
        bad.context_id = Some(reply.record_id.to_string());
        cases.push(bad);
        let mut bad = reply.clone();
        bad.context_id = None;
        cases.push(bad);
        let mut bad = root.clone();
        bad.context_id = Some(format!("{}/{}", reply.record_id, root.record_id));
        cases.push(bad);
        let mut bad = root.clone();
        bad.context_id = Some("not-an-id".into());
        cases.push(bad);
        for bad in cases {
            let error = check_message(&Message::from(bad), None, None, &options()).unwrap_err();
            assert!(matches!(error, VerifyError::ContextId { .. }), "{error}");
        }
    }

    #[test]
    fn updates_must_keep_their_records_identity() {
        let first = write(b"1");
        let second =
            RecordsWrite::update(&alice(), &first, b"2", UpdateOptions::new(), at(1)).unwrap();
        check_update(&first, &second).unwrap();
        assert!(matches!(
            check_update(&second, &second),
            Err(VerifyError::NotInitial { .. })
        ));
        let other = write(b"other");
        assert!(matches!(
            check_update(&other, &second),
            Err(VerifyError::RecordIdMismatch { .. })
        ));
        let mut renamed = second.clone();
        renamed.descriptor.schema = Some("other".into());
        assert!(matches!(
            check_update(&first, &renamed),
            Err(VerifyError::ImmutableFieldChanged { field: "schema" })
        ));
        let mut moved = second;
        moved.context_id = Some(moved.record_id.to_string());
        assert!(matches!(
            check_update(&first, &moved),
            Err(VerifyError::ImmutableFieldChanged { field: "contextId" })
        ));
    }

    #[tokio::test]
    async fn an_unresolvable_author_is_its_own_error() {
        let mut stranger = write(b"x");
        stranger.author = "did:example:nobody".parse::<Did>().unwrap();
        let error = verify(
            &Message::from(stranger),
            None,
            None,
            &Resolver::offline(),
            &options(),
        )
        .await
        .unwrap_err();
        assert!(matches!(error, VerifyError::Resolve(_)), "{error}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Changing any one byte of the canonical envelope, where the result is still a
        /// message, makes verification fail: another id, or a bad signature.
        #[test]
        fn any_changed_byte_fails_verification(
            data in prop::collection::vec(any::<u8>(), 0..64),
            position in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let message = Message::from(
                RecordsWrite::create(&alice(), &data, WriteOptions::new().schema("s"), at(0)).unwrap(),
            );
            let id = message.message_id().unwrap();
            let mut bytes = crate::canonical::canonical_json(&message.to_json()).unwrap();
            let at_byte = position.index(bytes.len());
            bytes[at_byte] ^= flip;
            let Ok(text) = String::from_utf8(bytes) else { return Ok(()) };
            let Ok(changed) = Message::from_json(&text) else { return Ok(()) };
            let checked = check_message(&changed, Some(&data), Some(&id), &options());
            let signed = check_signature(&changed, &document(&alice()));
            prop_assert!(
                checked.is_err() || signed.is_err(),
                "a changed message verified: {}", text
            );
        }

        /// Flipping a data byte is always caught.
        #[test]
        fn any_changed_data_byte_fails_verification(
            data in prop::collection::vec(any::<u8>(), 1..64),
            position in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let message = Message::from(
                RecordsWrite::create(&alice(), &data, WriteOptions::new(), at(0)).unwrap(),
            );
            let mut changed = data.clone();
            let at_byte = position.index(changed.len());
            changed[at_byte] ^= flip;
            let is_data_id_mismatch = matches!(
                check_message(&message, Some(&changed), None, &options()),
                Err(VerifyError::DataIdMismatch { .. })
            );
            prop_assert!(is_data_id_mismatch);
        }

        /// Ids do not depend on how the envelope's JSON is laid out.
        #[test]
        fn ids_are_stable_under_reformatting(data in prop::collection::vec(any::<u8>(), 0..32)) {
            let message = Message::from(
                RecordsWrite::create(&alice(), &data, WriteOptions::new().schema("s"), at(0)).unwrap(),
            );
            let pretty = serde_json::to_string_pretty(&message.to_json()).unwrap();
            let reordered: serde_json::Map<String, Value> =
                message.to_json().as_object().unwrap().clone().into_iter().rev().collect();
            for text in [pretty, Value::Object(reordered).to_string()] {
                let back = Message::from_json(&text).unwrap();
                prop_assert_eq!(back.message_id().unwrap(), message.message_id().unwrap());
                prop_assert!(check_signature(&back, &document(&alice())).is_ok());
            }
        }
    }
}
