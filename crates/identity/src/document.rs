//! DID documents: the keys that may sign for a DID, and the nodes that hold its records.
//!
//! A document is kept as the JSON it was read from (so it is shown and stored unchanged)
//! and read for two things:
//! - **signing keys**: a verification method may sign records for its DID when it is
//!   referenced from (or embedded in) `assertionMethod` or `authentication`. Its key is an
//!   Ed25519 key as `publicKeyMultibase` (`z6Mk…`, types `Multikey` and
//!   `Ed25519VerificationKey2020`) or as `publicKeyJwk` (`{"kty":"OKP","crv":"Ed25519","x":…}`).
//! - **nodes**: every `service` whose `type` is (or includes) `DecentralizedWebNode`
//!   contributes its `serviceEndpoint`, one URL or an array of URLs (http or https), in
//!   document order, without repeats. Unlike web5, the `enc` and `sig` properties are not
//!   required: a recordsync node uses neither.
//!
//! Relative ids (`#key-1`) are read against the document's `id`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::VerifyingKey;
use serde_json::{Map, Value, json};
use thiserror::Error;
use url::Url;

use crate::did::Did;
use crate::did_key;

/// The service type that names a DID's nodes.
pub const NODE_SERVICE_TYPE: &str = "DecentralizedWebNode";

/// The JSON nesting accepted in a DID document.
pub(crate) const MAX_DOCUMENT_DEPTH: usize = 64;

/// A parsed DID document.
#[derive(Debug, Clone, PartialEq)]
pub struct DidDocument {
    id: Did,
    json: Map<String, Value>,
}

/// Why a DID document cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// Not JSON, or nested too deeply.
    #[error("the DID document is not usable JSON: {0}")]
    Json(#[source] recordsync_core::json::JsonError),
    /// Not an object, or a required member is missing or of the wrong type.
    #[error("the DID document is malformed: {0}")]
    Shape(String),
    /// Its `id` is not a DID.
    #[error("the DID document's id is not a DID: {0}")]
    Id(#[source] crate::did::DidError),
    /// A `DecentralizedWebNode` service's endpoint is not one URL or an array of URLs.
    #[error("service {service:?} of {did}: {reason}")]
    ServiceEndpoint {
        did: String,
        service: String,
        reason: String,
    },
    /// No verification method with this id may sign for the DID.
    #[error(
        "{key_id} is not a signing key of {did}: its DID document lists no such key under assertionMethod or authentication"
    )]
    KeyNotFound { did: String, key_id: String },
    /// The verification method exists but its key cannot be used.
    #[error("the key {key_id} cannot be used: {reason}")]
    Key { key_id: String, reason: String },
}

impl DidDocument {
    /// Parses a document from JSON text.
    pub fn from_json(text: &str) -> Result<DidDocument, DocumentError> {
        let value: Value = recordsync_core::json::parse_within(text, MAX_DOCUMENT_DEPTH)
            .map_err(DocumentError::Json)?;
        DidDocument::from_value(value)
    }

    /// Reads a document from a JSON value; checks its `id`, its services' endpoints and
    /// the shape of its verification methods.
    pub fn from_value(value: Value) -> Result<DidDocument, DocumentError> {
        let Value::Object(json) = value else {
            return Err(DocumentError::Shape("it is not a JSON object".into()));
        };
        let id = json
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| DocumentError::Shape("it has no \"id\" string".into()))?
            .parse::<Did>()
            .map_err(DocumentError::Id)?;
        for member in [
            "verificationMethod",
            "service",
            "assertionMethod",
            "authentication",
        ] {
            if json.get(member).is_some_and(|v| !v.is_array()) {
                return Err(DocumentError::Shape(format!("{member:?} is not an array")));
            }
        }
        let document = DidDocument { id, json };
        document.node_endpoints()?;
        Ok(document)
    }

    /// The DID this document describes.
    pub fn id(&self) -> &Did {
        &self.id
    }

    /// The document as JSON, unchanged.
    pub fn to_json(&self) -> Value {
        Value::Object(self.json.clone())
    }

    /// The document of a `did:key`, derived from the DID (see `did_key.rs`).
    pub(crate) fn for_did_key(did: &Did, key: &VerifyingKey) -> DidDocument {
        DidDocument {
            id: did.clone(),
            json: did_key::document(did, key),
        }
    }

    /// This document with its `DecentralizedWebNode` service replaced by one with
    /// `endpoints` (`#dwn`), or without one when `endpoints` is empty.
    pub fn with_node_endpoints(&self, endpoints: &[Url]) -> DidDocument {
        let mut json = self.json.clone();
        let mut services: Vec<Value> = json
            .get("service")
            .and_then(Value::as_array)
            .map(|services| {
                services
                    .iter()
                    .filter(|s| !is_node_service(s))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if !endpoints.is_empty() {
            let urls: Vec<&str> = endpoints.iter().map(Url::as_str).collect();
            services.push(json!({
                "id": "#dwn",
                "type": NODE_SERVICE_TYPE,
                "serviceEndpoint": if urls.len() == 1 { json!(urls[0]) } else { json!(urls) },
            }));
        }
        if services.is_empty() {
            json.remove("service");
        } else {
            json.insert("service".into(), Value::Array(services));
        }
        DidDocument {
            id: self.id.clone(),
            json,
        }
    }

    /// The services of this document, as JSON.
    pub(crate) fn services(&self) -> Option<&Value> {
        self.json.get("service")
    }

    /// This document with `services` in place of its own (or none).
    pub(crate) fn with_services(&self, services: Option<&Value>) -> DidDocument {
        let mut json = self.json.clone();
        match services {
            Some(services) => json.insert("service".into(), services.clone()),
            None => json.remove("service"),
        };
        DidDocument {
            id: self.id.clone(),
            json,
        }
    }

    /// The URLs of the DID's nodes (see the module docs), in document order.
    pub fn node_endpoints(&self) -> Result<Vec<Url>, DocumentError> {
        let mut urls: Vec<Url> = Vec::new();
        let services = self.json.get("service").and_then(Value::as_array);
        for service in services
            .into_iter()
            .flatten()
            .filter(|s| is_node_service(s))
        {
            let name = service
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("(no id)")
                .to_owned();
            let bad = |reason: String| DocumentError::ServiceEndpoint {
                did: self.id.to_string(),
                service: name.clone(),
                reason,
            };
            let texts: Vec<&Value> = match service.get("serviceEndpoint") {
                Some(Value::String(_)) => vec![&service["serviceEndpoint"]],
                Some(Value::Array(items)) => items.iter().collect(),
                _ => {
                    return Err(bad(
                        "serviceEndpoint must be a URL or an array of URLs".into()
                    ));
                }
            };
            for text in texts {
                let text = text
                    .as_str()
                    .ok_or_else(|| bad("every endpoint must be a URL string".into()))?;
                let url = Url::parse(text).map_err(|e| bad(format!("{text:?}: {e}")))?;
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                    return Err(bad(format!("{text:?} is not an http or https URL")));
                }
                if !urls.contains(&url) {
                    urls.push(url);
                }
            }
        }
        Ok(urls)
    }

    /// The Ed25519 key of verification method `key_id` (absolute, `did#fragment`), if it
    /// may sign for this DID (see the module docs).
    pub fn signing_key(&self, key_id: &str) -> Result<VerifyingKey, DocumentError> {
        let not_found = || DocumentError::KeyNotFound {
            did: self.id.to_string(),
            key_id: key_id.into(),
        };
        let absolute = |id: &str| -> String {
            if id.starts_with('#') {
                format!("{}{id}", self.id)
            } else {
                id.to_owned()
            }
        };
        let listed = |relationship: &str| -> Vec<&Value> {
            self.json
                .get(relationship)
                .and_then(Value::as_array)
                .map(|items| items.iter().collect())
                .unwrap_or_default()
        };
        let mut allowed = false;
        let mut embedded: Option<&Value> = None;
        for entry in listed("assertionMethod")
            .into_iter()
            .chain(listed("authentication"))
        {
            match entry {
                Value::String(reference) if absolute(reference) == key_id => allowed = true,
                Value::Object(method)
                    if method
                        .get("id")
                        .and_then(Value::as_str)
                        .is_some_and(|id| absolute(id) == key_id) =>
                {
                    allowed = true;
                    embedded = Some(entry);
                }
                _ => {}
            }
        }
        if !allowed {
            return Err(not_found());
        }
        let method = match embedded {
            Some(method) => method,
            None => listed("verificationMethod")
                .into_iter()
                .find(|m| {
                    m.get("id")
                        .and_then(Value::as_str)
                        .is_some_and(|id| absolute(id) == key_id)
                })
                .ok_or_else(not_found)?,
        };
        let key_error = |reason: &str| DocumentError::Key {
            key_id: key_id.into(),
            reason: reason.into(),
        };
        if let Some(multibase) = method.get("publicKeyMultibase").and_then(Value::as_str) {
            return did_key::public_from_multibase(multibase).map_err(|e| key_error(&e));
        }
        if let Some(jwk) = method.get("publicKeyJwk") {
            if jwk.get("kty").and_then(Value::as_str) != Some("OKP")
                || jwk.get("crv").and_then(Value::as_str) != Some("Ed25519")
            {
                return Err(key_error(
                    "only Ed25519 keys are supported (a JWK with kty OKP and crv Ed25519)",
                ));
            }
            let bytes = jwk
                .get("x")
                .and_then(Value::as_str)
                .and_then(|x| URL_SAFE_NO_PAD.decode(x).ok())
                .and_then(|x| <[u8; 32]>::try_from(x).ok())
                .ok_or_else(|| key_error("its JWK \"x\" is not 32 bytes of base64url"))?;
            return VerifyingKey::from_bytes(&bytes)
                .map_err(|_| key_error("its JWK \"x\" is not an Ed25519 public key"));
        }
        Err(key_error(
            "it has neither publicKeyMultibase nor publicKeyJwk",
        ))
    }
}

/// Whether a service entry's `type` is (or includes) `DecentralizedWebNode`.
fn is_node_service(service: &Value) -> bool {
    match service.get("type") {
        Some(Value::String(kind)) => kind == NODE_SERVICE_TYPE,
        Some(Value::Array(kinds)) => kinds.iter().any(|k| k == NODE_SERVICE_TYPE),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn key() -> VerifyingKey {
        SigningKey::from_bytes(&[3; 32]).verifying_key()
    }

    fn web_document(extra: Value) -> Value {
        let mut document = json!({
            "id": "did:web:example.com",
            "verificationMethod": [{
                "id": "#key-1",
                "type": "Multikey",
                "controller": "did:web:example.com",
                "publicKeyMultibase": did_key::public_multibase(&key()),
            }, {
                "id": "did:web:example.com#jwk",
                "type": "JsonWebKey2020",
                "controller": "did:web:example.com",
                "publicKeyJwk": {"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(key().as_bytes())},
            }, {
                "id": "#unlisted",
                "type": "Multikey",
                "publicKeyMultibase": did_key::public_multibase(&key()),
            }],
            "assertionMethod": ["#key-1", "did:web:example.com#jwk"],
        });
        for (k, v) in extra.as_object().unwrap() {
            document[k] = v.clone();
        }
        document
    }

    #[test]
    fn node_endpoints_come_from_one_url_or_several() {
        let document = DidDocument::from_value(web_document(json!({"service": [
            {"id": "#dwn", "type": "DecentralizedWebNode", "serviceEndpoint": ["https://a.example/", "https://b.example/x"]},
            {"id": "#other", "type": "LinkedDomains", "serviceEndpoint": {"origins": ["https://c.example"]}},
            {"id": "#dwn2", "type": ["Foo", "DecentralizedWebNode"], "serviceEndpoint": "http://127.0.0.1:6020"},
            {"id": "#dup", "type": "DecentralizedWebNode", "serviceEndpoint": "https://a.example/"},
        ]})))
        .unwrap();
        let urls: Vec<String> = document
            .node_endpoints()
            .unwrap()
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(
            urls,
            [
                "https://a.example/",
                "https://b.example/x",
                "http://127.0.0.1:6020/"
            ]
        );
    }

    #[test]
    fn a_bad_node_endpoint_names_its_service() {
        for endpoint in [
            json!({"a": 1}),
            json!("ftp://x.example"),
            json!(["https://ok.example", 3]),
            json!("not a url"),
        ] {
            let error = DidDocument::from_value(web_document(json!({"service": [
                {"id": "#dwn", "type": "DecentralizedWebNode", "serviceEndpoint": endpoint},
            ]})))
            .unwrap_err();
            assert!(
                matches!(&error, DocumentError::ServiceEndpoint { service, .. } if service == "#dwn"),
                "{error}"
            );
        }
    }

    #[test]
    fn signing_keys_must_be_listed_for_assertion_or_authentication() {
        let document = DidDocument::from_value(web_document(json!({}))).unwrap();
        assert_eq!(
            document.signing_key("did:web:example.com#key-1").unwrap(),
            key()
        );
        assert_eq!(
            document.signing_key("did:web:example.com#jwk").unwrap(),
            key()
        );
        let error = document
            .signing_key("did:web:example.com#unlisted")
            .unwrap_err();
        assert!(
            matches!(error, DocumentError::KeyNotFound { .. }),
            "{error}"
        );
        assert!(matches!(
            document.signing_key("did:web:example.com#nothing"),
            Err(DocumentError::KeyNotFound { .. })
        ));
        // An embedded method under authentication counts too.
        let document = DidDocument::from_value(web_document(json!({"authentication": [{
            "id": "#auth", "type": "Multikey", "publicKeyMultibase": did_key::public_multibase(&key()),
        }]})))
        .unwrap();
        assert_eq!(
            document.signing_key("did:web:example.com#auth").unwrap(),
            key()
        );
    }

    #[test]
    fn malformed_documents_are_refused() {
        assert!(matches!(
            DidDocument::from_json("[]"),
            Err(DocumentError::Shape(_))
        ));
        assert!(matches!(
            DidDocument::from_json("{}"),
            Err(DocumentError::Shape(_))
        ));
        assert!(matches!(
            DidDocument::from_json("{\"id\":\"x\"}"),
            Err(DocumentError::Id(_))
        ));
        assert!(matches!(
            DidDocument::from_json("{"),
            Err(DocumentError::Json(_))
        ));
        let deep = format!(
            "{{\"id\":\"did:example:a\",\"x\":{}{}}}",
            "[".repeat(100),
            "]".repeat(100)
        );
        assert!(matches!(
            DidDocument::from_json(&deep),
            Err(DocumentError::Json(_))
        ));
    }

    #[test]
    fn node_endpoints_can_be_replaced() {
        let did = Did::from_ed25519(&key());
        let document = DidDocument::for_did_key(&did, &key());
        assert!(document.node_endpoints().unwrap().is_empty());
        let urls = [
            Url::parse("http://127.0.0.1:1/").unwrap(),
            Url::parse("http://127.0.0.1:2/").unwrap(),
        ];
        let with = document.with_node_endpoints(&urls);
        assert_eq!(with.node_endpoints().unwrap(), urls);
        assert_eq!(
            with.to_json()["service"][0]["serviceEndpoint"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let one = document.with_node_endpoints(&urls[..1]);
        assert_eq!(
            one.to_json()["service"][0]["serviceEndpoint"],
            "http://127.0.0.1:1/"
        );
        assert!(
            with.with_node_endpoints(&[])
                .to_json()
                .get("service")
                .is_none()
        );
    }
}
