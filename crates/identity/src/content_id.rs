//! Content ids: SHA-256 digests named by what they identify ([`RecordId`],
//! [`MessageId`], [`DataId`]), with one text form.
//!
//! Text form: the multibase prefix `b` followed by lowercase, unpadded RFC 4648 base32 of
//! a multihash (`0x12` sha2-256, `0x20` 32 bytes, then the digest): 56 characters, always
//! starting with `bciq`. It is URL-safe, file-name-safe and case-free, and names its hash
//! function, so a later change of algorithm is visible in the id itself. Parsing accepts
//! exactly this form (no upper case, no padding, no other multibase), so one digest has
//! one text and two ids are equal exactly when their texts are.
//!
//! Ordering compares the 32 digest bytes (not the text, whose base32 alphabet is not in
//! ASCII order); this is the tie-break of [`crate::Precedence`].

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use data_encoding::{Encoding, Specification};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use thiserror::Error;

/// The multihash header of a SHA-256 digest: function code 0x12, length 32.
const MULTIHASH_SHA2_256: [u8; 2] = [0x12, 0x20];

/// Length of an id's text: `b` plus base32 of 34 bytes (55 characters).
pub const ID_TEXT_LEN: usize = 56;

/// RFC 4648 base32 in lower case, without padding, refusing non-zero trailing bits.
static BASE32_LOWER: LazyLock<Encoding> = LazyLock::new(|| {
    let mut spec = Specification::new();
    spec.symbols.push_str("abcdefghijklmnopqrstuvwxyz234567");
    spec.check_trailing_bits = true;
    spec.encoding()
        .expect("a valid base32 specification (32 distinct symbols, no padding)")
});

/// Why a text is not a content id. Each message shows the text and the expected form.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IdError {
    /// The text does not start with the base32 multibase prefix `b`.
    #[error(
        "{text:?} is not an id: ids are `b` followed by 55 lowercase base32 characters (like bciq…)"
    )]
    Multibase { text: String },
    /// The text after `b` is not lowercase base32 of the right length.
    #[error("{text:?} is not an id: after `b` must come 55 lowercase base32 characters (a-z, 2-7)")]
    Encoding { text: String },
    /// The decoded bytes are not a SHA-256 multihash.
    #[error("{text:?} is not an id: it is not a SHA-256 multihash (ids start with bciq)")]
    Hash { text: String },
}

/// SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn encode(digest: &[u8; 32]) -> String {
    let mut multihash = [0u8; 34];
    multihash[..2].copy_from_slice(&MULTIHASH_SHA2_256);
    multihash[2..].copy_from_slice(digest);
    let mut text = String::with_capacity(ID_TEXT_LEN);
    text.push('b');
    text.push_str(&BASE32_LOWER.encode(&multihash));
    text
}

fn decode(text: &str) -> Result<[u8; 32], IdError> {
    let Some(body) = text.strip_prefix('b') else {
        return Err(IdError::Multibase { text: text.into() });
    };
    let encoding = || IdError::Encoding { text: text.into() };
    if text.len() != ID_TEXT_LEN {
        return Err(encoding());
    }
    let bytes = BASE32_LOWER
        .decode(body.as_bytes())
        .map_err(|_| encoding())?;
    let (header, digest) = bytes.split_at(2);
    if header != MULTIHASH_SHA2_256 {
        return Err(IdError::Hash { text: text.into() });
    }
    digest.try_into().map_err(|_| encoding())
}

macro_rules! content_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 32]);

        impl $name {
            /// The id whose digest is `digest`.
            pub fn from_digest(digest: [u8; 32]) -> Self {
                Self(digest)
            }

            /// The SHA-256 digest.
            pub fn digest(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&encode(&self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(text: &str) -> Result<Self, IdError> {
                decode(text).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

content_id!(
    /// A record's id: the hash of its first version's descriptor and author
    /// (`{"author", "descriptor"}` in canonical JSON). Every later version, on every node,
    /// carries the same record id.
    RecordId
);
content_id!(
    /// A message's id: the hash of the whole signed envelope in canonical JSON, signature
    /// included. The same signed bytes have the same id on every node, so a node that is
    /// sent a message twice knows it already has it.
    MessageId
);
content_id!(
    /// The id of a record's data: the hash of the data bytes exactly as written.
    DataId
);

impl DataId {
    /// The id of `data`.
    pub fn of(data: &[u8]) -> DataId {
        DataId(sha256(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_data_id_of_known_bytes() {
        // SHA-256 of the empty string is e3b0c442…, of "abc" ba7816bf… (FIPS 180-2).
        assert_eq!(
            DataId::of(b"").digest()[..4],
            [0xe3, 0xb0, 0xc4, 0x42],
            "SHA-256 of nothing"
        );
        assert_eq!(DataId::of(b"abc").digest()[..4], [0xba, 0x78, 0x16, 0xbf]);
        let text = DataId::of(b"abc").to_string();
        assert_eq!(text.len(), ID_TEXT_LEN);
        assert!(text.starts_with("bciq"), "{text}");
    }

    #[test]
    fn other_forms_are_refused_with_their_reason() {
        let good = DataId::of(b"x").to_string();
        assert!(matches!(
            good.to_uppercase().parse::<DataId>(),
            Err(IdError::Multibase { .. })
        ));
        let upper_body = format!("b{}", good[1..].to_uppercase());
        assert!(matches!(
            upper_body.parse::<DataId>(),
            Err(IdError::Encoding { .. })
        ));
        assert!(matches!(
            format!("{good}a").parse::<DataId>(),
            Err(IdError::Encoding { .. })
        ));
        assert!(matches!(
            "z6Mk".parse::<DataId>(),
            Err(IdError::Multibase { .. })
        ));
        // A multihash of another function (0x13, sha2-512 code) with 32 bytes.
        let mut other = vec![0x13, 0x20];
        other.extend_from_slice(&[7; 32]);
        let text = format!("b{}", BASE32_LOWER.encode(&other));
        let err = text.parse::<DataId>().unwrap_err();
        assert!(matches!(err, IdError::Hash { .. }));
        assert!(err.to_string().contains("SHA-256"));
    }

    #[test]
    fn non_zero_trailing_bits_are_refused_so_one_digest_has_one_text() {
        let good = DataId::of(b"y").to_string();
        // 34 bytes = 272 bits in 55 characters (275 bits): the last character carries
        // 3 unused bits, which must be zero.
        let last = good.as_bytes()[ID_TEXT_LEN - 1];
        let alphabet = b"abcdefghijklmnopqrstuvwxyz234567";
        let index = alphabet.iter().position(|&c| c == last).unwrap();
        let changed = alphabet[index ^ 1] as char;
        let mangled = format!("{}{changed}", &good[..ID_TEXT_LEN - 1]);
        assert!(mangled.parse::<DataId>().is_err(), "{mangled}");
    }

    proptest! {
        #[test]
        fn text_round_trips_and_orders_by_digest(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            let (ia, ib) = (MessageId::from_digest(a), MessageId::from_digest(b));
            prop_assert_eq!(ia.to_string().parse::<MessageId>().unwrap(), ia);
            prop_assert_eq!(ia.to_string().len(), ID_TEXT_LEN);
            prop_assert_eq!(ia.cmp(&ib), a.cmp(&b));
            let json = serde_json::to_string(&ia).unwrap();
            prop_assert_eq!(serde_json::from_str::<MessageId>(&json).unwrap(), ia);
        }
    }
}
