//! `did:key` with Ed25519, as the did:key method specification defines it: the
//! identifier is `z` (base58btc multibase) followed by base58btc of the multicodec
//! `ed25519-pub` (0xed, as the varint `0xed 0x01`) and the 32-byte public key, so every
//! such DID starts with `did:key:z6Mk`.
//!
//! The DID document is derived from the DID alone (no network): one `Multikey`
//! verification method `did:key:z6Mk…#z6Mk…` holding the same multibase key, referenced
//! from `authentication`, `assertionMethod`, `capabilityInvocation` and
//! `capabilityDelegation`. The optional X25519 `keyAgreement` key is not derived:
//! recordsync does not encrypt.
//!
//! Secret keys use the same scheme with the multicodec `ed25519-priv` (0x1300, the
//! varint `0x80 0x26`) and the 32-byte seed, as Multikey's `secretKeyMultibase` does.

use ed25519_dalek::VerifyingKey;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::did::Did;

/// The varint of multicodec `ed25519-pub` (0xed).
const ED25519_PUB: [u8; 2] = [0xed, 0x01];
/// The varint of multicodec `ed25519-priv` (0x1300).
const ED25519_PRIV: [u8; 2] = [0x80, 0x26];

/// `z` + base58btc(multicodec ‖ key).
fn multibase(codec: [u8; 2], key: &[u8; 32]) -> String {
    let mut bytes = Zeroizing::new([0u8; 34]);
    bytes[..2].copy_from_slice(&codec);
    bytes[2..].copy_from_slice(key);
    format!("z{}", bs58::encode(&bytes[..]).into_string())
}

/// The 32 bytes after `codec` in a `z` multibase text.
fn from_multibase(text: &str, codec: [u8; 2], what: &str) -> Result<Zeroizing<[u8; 32]>, String> {
    let Some(body) = text.strip_prefix('z') else {
        return Err(format!(
            "a {what} is base58btc multibase, starting with 'z'"
        ));
    };
    let bytes = Zeroizing::new(
        bs58::decode(body)
            .into_vec()
            .map_err(|_| format!("a {what} is base58btc after the 'z', and this is not"))?,
    );
    if bytes.len() < 2 || bytes[..2] != codec {
        return Err(format!(
            "only Ed25519 keys are supported (a {what} starting with {}), and this is another kind of key",
            if codec == ED25519_PUB { "z6Mk" } else { "z3u2" }
        ));
    }
    let key: [u8; 32] = bytes[2..].try_into().map_err(|_| {
        format!(
            "an Ed25519 {what} holds 32 bytes, this one {}",
            bytes.len() - 2
        )
    })?;
    Ok(Zeroizing::new(key))
}

/// The `publicKeyMultibase` of an Ed25519 public key (`z6Mk…`).
pub(crate) fn public_multibase(key: &VerifyingKey) -> String {
    multibase(ED25519_PUB, key.as_bytes())
}

/// The Ed25519 public key in a `publicKeyMultibase` text.
pub(crate) fn public_from_multibase(text: &str) -> Result<VerifyingKey, String> {
    let bytes = from_multibase(text, ED25519_PUB, "public key")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "the bytes are not an Ed25519 public key".into())
}

/// The `secretKeyMultibase` of an Ed25519 seed.
pub(crate) fn secret_multibase(seed: &[u8; 32]) -> Zeroizing<String> {
    Zeroizing::new(multibase(ED25519_PRIV, seed))
}

/// The Ed25519 seed in a `secretKeyMultibase` text.
pub(crate) fn secret_from_multibase(text: &str) -> Result<Zeroizing<[u8; 32]>, String> {
    from_multibase(text, ED25519_PRIV, "secret key")
}

/// `did:key:z6Mk…` of a public key.
pub(crate) fn encode(key: &VerifyingKey) -> String {
    format!("did:key:{}", public_multibase(key))
}

/// The public key of a `did:key` identifier (what follows `did:key:`).
pub(crate) fn decode(id: &str) -> Result<VerifyingKey, String> {
    public_from_multibase(id)
}

/// The DID document of a `did:key` (see the module docs).
pub(crate) fn document(did: &Did, key: &VerifyingKey) -> Map<String, Value> {
    let fingerprint = public_multibase(key);
    let method_id = did.with_fragment(&fingerprint);
    json!({
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": did,
        "verificationMethod": [{
            "id": method_id,
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": fingerprint,
        }],
        "authentication": [method_id],
        "assertionMethod": [method_id],
        "capabilityInvocation": [method_id],
        "capabilityDelegation": [method_id],
    })
    .as_object()
    .cloned()
    .expect("json! of an object literal is an object")
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ed25519_dalek::SigningKey;

    fn b64(text: &str) -> [u8; 32] {
        URL_SAFE_NO_PAD.decode(text).unwrap().try_into().unwrap()
    }

    /// A published pair: a JWK private key (seed `d`, public `x`) and its did:key.
    #[test]
    fn a_known_seed_gives_its_known_did() {
        let seed = b64("tgr09BrmcCmU2_h7GVVCounejExvJ7ip1jg1V9CaEEI");
        let key = SigningKey::from_bytes(&seed).verifying_key();
        assert_eq!(
            key.as_bytes(),
            &b64("pnvgfL5yo8jxZq1aFctlnmaba5bbsQqiihuaEyhTfpg")
        );
        assert_eq!(
            encode(&key),
            "did:key:z6Mkqf9HERbJSA1bGKyom3g4Ng1y3y9yCQVpLLWAHMvfjaJB"
        );
    }

    /// A published did:key document's `publicKeyBase58` (the raw key) and its DID.
    #[test]
    fn a_known_did_decodes_to_its_known_key() {
        let key = decode("z6MkmjY8GnV5i9YTDtPETC2uUAW6ejw3nk5mXF5yci5ab7th").unwrap();
        assert_eq!(
            bs58::encode(key.as_bytes()).into_string(),
            "8HH5gYEeNc3z7PYXmd54d4x6qAfCNrqQqEB3nS7Zfu7K"
        );
    }

    #[test]
    fn other_keys_and_encodings_are_refused() {
        // secp256k1 (multicodec 0xe7): a valid did:key, but not Ed25519.
        let error = decode("zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme").unwrap_err();
        assert!(error.contains("only Ed25519"), "{error}");
        assert!(decode("6MkmjY8GnV5i9YTDtPETC2uUAW6ejw3nk5mXF5yci5ab7th").is_err());
        assert!(decode("z6Mk0OIl").is_err(), "0, O, I and l are not base58");
        assert!(decode("z6Mkmj").is_err(), "too short");
    }

    #[test]
    fn secret_keys_round_trip_and_are_told_from_public_ones() {
        let seed = [7u8; 32];
        let text = secret_multibase(&seed);
        assert!(text.starts_with("z3u2"), "{}", *text);
        assert_eq!(*secret_from_multibase(&text).unwrap(), seed);
        let public = public_multibase(&SigningKey::from_bytes(&seed).verifying_key());
        assert!(secret_from_multibase(&public).is_err());
        assert!(public_from_multibase(&text).is_err());
    }

    #[test]
    fn the_derived_document_names_the_key_for_signing() {
        let did: Did = "did:key:z6Mkqf9HERbJSA1bGKyom3g4Ng1y3y9yCQVpLLWAHMvfjaJB"
            .parse()
            .unwrap();
        let key = decode(did.method_specific_id()).unwrap();
        let document = document(&did, &key);
        let method = &document["verificationMethod"][0];
        assert_eq!(
            method["id"],
            "did:key:z6Mkqf9HERbJSA1bGKyom3g4Ng1y3y9yCQVpLLWAHMvfjaJB#z6Mkqf9HERbJSA1bGKyom3g4Ng1y3y9yCQVpLLWAHMvfjaJB"
        );
        assert_eq!(method["publicKeyMultibase"], did.method_specific_id());
        assert_eq!(document["assertionMethod"][0], method["id"]);
    }
}
