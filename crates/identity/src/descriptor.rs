//! Descriptors: what a message does, with DWN's field names.
//!
//! A write's descriptor (`RecordsWrite`) carries the record's metadata and the id and size
//! of its data; a delete's (`RecordsDelete`) names the record. Field names are DWN's, so
//! that a DWN-compatible front door stays possible; the values are recordsync's own
//! (`dataCid` holds a [`DataId`], a SHA-256 multihash, not an IPFS CID).
//!
//! Invariants checked by [`WriteDescriptor::check`]: `protocol` and `protocolPath` are
//! both present or both absent; `datePublished` only with `published: true`;
//! `dataFormat` is not empty. Which fields an update may change is
//! [`WriteDescriptor::changed_immutable_field`]'s to say.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::content_id::{DataId, RecordId};
use crate::did::Did;
use crate::timestamp::Timestamp;

/// The interface every message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Interface {
    /// Records: writes (creates and updates) and deletes.
    Records,
}

/// The method of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteMethod {
    /// A record's first version or a later one.
    Write,
}

/// The method of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeleteMethod {
    /// A record's deletion.
    Delete,
}

/// A tag's value: a string, a number, a boolean, or an array of strings or of numbers
/// (DWN's tag types).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct TagValue(Value);

impl TagValue {
    /// The value, if it is of a tag's types.
    pub fn new(value: Value) -> Option<TagValue> {
        let ok = match &value {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => true,
            Value::Array(items) => {
                items.iter().all(Value::is_string) || items.iter().all(Value::is_number)
            }
            _ => false,
        };
        ok.then_some(TagValue(value))
    }

    /// The value as JSON.
    pub fn as_json(&self) -> &Value {
        &self.0
    }
}

impl<'de> Deserialize<'de> for TagValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        TagValue::new(value).ok_or_else(|| {
            serde::de::Error::custom(
                "a tag is a string, a number, a boolean, or an array of strings or of numbers",
            )
        })
    }
}

/// Tags by name.
pub type Tags = BTreeMap<String, TagValue>;

/// The descriptor of a write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WriteDescriptor {
    /// Always `Records`.
    pub interface: Interface,
    /// Always `Write`.
    pub method: WriteMethod,
    /// The protocol the record belongs to (a URI), with [`Self::protocol_path`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Where in the protocol's structure the record sits (`thread/reply`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_path: Option<String>,
    /// Who the record is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<Did>,
    /// The record's schema (a URI or any name the application chooses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Tags to query by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    /// The record this one answers or belongs under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<RecordId>,
    /// The id of the data bytes.
    pub data_cid: DataId,
    /// The number of data bytes.
    pub data_size: u64,
    /// When the record was created: the first version's `messageTimestamp`, kept by
    /// every later version.
    pub date_created: Timestamp,
    /// When this message was made; the newer one wins ([`crate::Precedence`]).
    pub message_timestamp: Timestamp,
    /// Whether anyone may read the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<bool>,
    /// When it was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_published: Option<Timestamp>,
    /// The data's media type (`application/json`, `text/plain`, …).
    pub data_format: String,
}

/// The descriptor of a delete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteDescriptor {
    /// Always `Records`.
    pub interface: Interface,
    /// Always `Delete`.
    pub method: DeleteMethod,
    /// The record deleted.
    pub record_id: RecordId,
    /// Whether the record's descendants go too.
    pub prune: bool,
    /// When this message was made; the newer one wins ([`crate::Precedence`]).
    pub message_timestamp: Timestamp,
}

/// A descriptor that breaks one of its own rules.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DescriptorError {
    /// One of `protocol` and `protocolPath` without the other.
    #[error("protocol and protocolPath go together: give both or neither")]
    ProtocolPair,
    /// `datePublished` on a record that is not published.
    #[error(
        "datePublished is given but published is not true: set published, or leave datePublished out"
    )]
    DatePublishedUnpublished,
    /// An empty `dataFormat`.
    #[error("dataFormat is empty: give the data's media type, like application/json")]
    EmptyDataFormat,
}

impl WriteDescriptor {
    /// Checks the descriptor's own rules (see the module docs).
    pub fn check(&self) -> Result<(), DescriptorError> {
        if self.protocol.is_some() != self.protocol_path.is_some() {
            return Err(DescriptorError::ProtocolPair);
        }
        if self.date_published.is_some() && self.published != Some(true) {
            return Err(DescriptorError::DatePublishedUnpublished);
        }
        if self.data_format.is_empty() {
            return Err(DescriptorError::EmptyDataFormat);
        }
        Ok(())
    }

    /// The first field, by DWN name, that `update` changes although every version of a
    /// record must keep it: all but `dataCid`, `dataSize`, `dataFormat`, `published`,
    /// `datePublished`, `tags` and `messageTimestamp` (DWN's rule).
    pub fn changed_immutable_field(&self, update: &WriteDescriptor) -> Option<&'static str> {
        if self.protocol != update.protocol {
            Some("protocol")
        } else if self.protocol_path != update.protocol_path {
            Some("protocolPath")
        } else if self.recipient != update.recipient {
            Some("recipient")
        } else if self.schema != update.schema {
            Some("schema")
        } else if self.parent_id != update.parent_id {
            Some("parentId")
        } else if self.date_created != update.date_created {
            Some("dateCreated")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn descriptor() -> WriteDescriptor {
        let mut value = json!({
            "interface": "Records",
            "method": "Write",
            "schema": "https://example.com/note",
            "tags": {"n": 1.50, "s": "x", "b": true, "list": ["a", "b"]},
            "dataCid": DataId::of(b"hi").to_string(),
            "dataSize": 2,
            "dateCreated": "2026-12-07T23:40:32.000001Z",
            "messageTimestamp": "2026-12-07T23:40:32.000001Z",
            "dataFormat": "text/plain",
        });
        // A number as a client wrote it (json! would write the f64 1.5).
        value["tags"]["n"] = serde_json::from_str("1.50").unwrap();
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn serialises_with_dwn_names_and_leaves_out_what_is_absent() {
        let value = serde_json::to_value(descriptor()).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for key in [
            "interface",
            "method",
            "schema",
            "tags",
            "dataCid",
            "dataSize",
            "dateCreated",
            "messageTimestamp",
            "dataFormat",
        ] {
            assert!(keys.contains(&key), "{key} in {keys:?}");
        }
        assert_eq!(keys.len(), 9, "{keys:?}");
        // The tag's number keeps its text.
        assert_eq!(value["tags"]["n"].to_string(), "1.50");
    }

    #[test]
    fn unknown_fields_and_bad_tags_are_refused() {
        let mut value = serde_json::to_value(descriptor()).unwrap();
        value["colour"] = json!("red");
        let error = serde_json::from_value::<WriteDescriptor>(value).unwrap_err();
        assert!(error.to_string().contains("colour"), "{error}");
        for tag in [json!({"a": 1}), json!([1, "a"]), json!(null), json!([[1]])] {
            let mut value = serde_json::to_value(descriptor()).unwrap();
            value["tags"]["t"] = tag;
            assert!(serde_json::from_value::<WriteDescriptor>(value).is_err());
        }
        let mut value = serde_json::to_value(descriptor()).unwrap();
        value["method"] = json!("Delete");
        assert!(serde_json::from_value::<WriteDescriptor>(value).is_err());
    }

    #[test]
    fn its_own_rules() {
        assert_eq!(descriptor().check(), Ok(()));
        let mut d = descriptor();
        d.protocol = Some("https://example.com/chat".into());
        assert_eq!(d.check(), Err(DescriptorError::ProtocolPair));
        d.protocol_path = Some("thread".into());
        assert_eq!(d.check(), Ok(()));
        d.date_published = Some(d.date_created);
        assert_eq!(d.check(), Err(DescriptorError::DatePublishedUnpublished));
        d.published = Some(true);
        assert_eq!(d.check(), Ok(()));
        d.data_format.clear();
        assert_eq!(d.check(), Err(DescriptorError::EmptyDataFormat));
    }

    #[test]
    fn updates_may_change_data_and_publication_but_not_identity_fields() {
        let initial = descriptor();
        let mut update = initial.clone();
        update.data_cid = DataId::of(b"bye");
        update.data_size = 3;
        update.published = Some(true);
        update.data_format = "application/json".into();
        update.tags = None;
        update.message_timestamp = "2026-12-08T00:00:00.000000Z".parse().unwrap();
        assert_eq!(initial.changed_immutable_field(&update), None);
        update.schema = Some("other".into());
        assert_eq!(initial.changed_immutable_field(&update), Some("schema"));
        let mut update = initial.clone();
        update.date_created = update.message_timestamp.after(update.message_timestamp);
        assert_eq!(
            initial.changed_immutable_field(&update),
            Some("dateCreated")
        );
    }
}
