//! The per-topic messages, numbered as in deepstream's `.proto` files.
//!
//! Each struct derives both `prost::Message` (protobuf transport) and serde (JSON
//! transport, field names as the JS client spells them). Enum fields are `i32` on the
//! wire, as protobuf defines them; unknown values survive decoding so that the engine can
//! answer "unknown action" instead of failing the whole frame.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// TOPIC in general.proto.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Topic {
    Unknown = 0,
    Parser = 1,
    Connection = 2,
    Auth = 3,
    Event = 4,
    Record = 5,
    Rpc = 6,
    Presence = 7,
    Monitoring = 8,
    Cluster = 9,
    Lock = 10,
    StateRegistry = 11,
    Error = 100,
}

/// CONNECTION_ACTION in connection.proto.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ConnectionAction {
    Unknown = 0,
    Error = 1,
    Ping = 2,
    Pong = 3,
    Accept = 4,
    Challenge = 5,
    Reject = 6,
    Redirect = 7,
    Closing = 8,
    Closed = 9,
    AuthenticationTimeout = 100,
    InvalidMessage = 101,
}

/// ConnectionMessage in connection.proto.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConnectionMessage {
    #[prost(enumeration = "ConnectionAction", tag = "1")]
    pub action: i32,
    #[prost(string, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[prost(bool, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    #[prost(bool, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_ack: Option<bool>,
    #[prost(string, optional, tag = "5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[prost(string, optional, tag = "6")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    #[prost(string, optional, tag = "7")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdk_version: Option<String>,
    #[prost(string, optional, tag = "8")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdk_type: Option<String>,
}

/// AUTH_ACTION in auth.proto.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum AuthAction {
    Unknown = 0,
    Error = 1,
    Request = 2,
    AuthSuccessful = 3,
    AuthUnsuccessful = 4,
    TooManyAuthAttempts = 100,
    InvalidMessage = 101,
    InvalidMessageData = 102,
}

/// AuthMessage in auth.proto.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthMessage {
    #[prost(enumeration = "AuthAction", tag = "1")]
    pub action: i32,
    #[prost(string, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[prost(bool, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    #[prost(bool, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_ack: Option<bool>,
}

/// PARSER_ACTION in parser.proto.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ParserAction {
    Unknown = 0,
    UnknownTopic = 1,
    UnknownAction = 2,
    InvalidMessage = 3,
    MessageParseError = 4,
    MaximumMessageSizeExceeded = 5,
    Error = 6,
    InvalidMetaParams = 7,
}

/// ParserMessage in parser.proto: how the server says "I could not understand that".
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default)]
pub struct ParserMessage {
    #[prost(enumeration = "ParserAction", tag = "1")]
    pub action: i32,
    #[prost(string, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[prost(enumeration = "Topic", optional, tag = "8")]
    #[serde(rename = "originalTOPIC", skip_serializing_if = "Option::is_none")]
    pub original_topic: Option<i32>,
    #[prost(int32, optional, tag = "9")]
    #[serde(rename = "originalAction", skip_serializing_if = "Option::is_none")]
    pub original_action: Option<i32>,
}

/// RECORD_ACTION in record.proto.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum RecordAction {
    Unknown = 0,
    Error = 1,
    Notify = 2,
    Read = 3,
    ReadResponse = 4,
    Head = 5,
    HeadResponse = 6,
    HeadBulk = 7,
    HeadResponseBulk = 8,
    Delete = 9,
    DeleteSuccess = 10,
    DeleteBulk = 11,
    DeleteBulkSuccess = 12,
    Deleted = 13,
    WriteAcknowledgement = 14,
    Create = 15,
    CreateAndUpdate = 16,
    CreateAndPatch = 17,
    Update = 18,
    Patch = 19,
    Erase = 20,
    SubscribeAndHead = 21,
    SubscribeAndRead = 22,
    SubscribeCreateAndRead = 23,
    SubscribeCreateAndUpdate = 24,
    Subscribe = 25,
    Unsubscribe = 26,
    Listen = 27,
    Unlisten = 28,
    ListenAccept = 29,
    ListenReject = 30,
    SubscriptionHasProvider = 31,
    SubscriptionHasNoProvider = 32,
    SubscriptionForPatternFound = 33,
    SubscriptionForPatternRemoved = 34,
    PatchMulti = 35,
    CacheRetrievalTimeout = 100,
    StorageRetrievalTimeout = 101,
    VersionExists = 102,
    RecordLoadError = 103,
    RecordCreateError = 104,
    RecordUpdateError = 105,
    RecordDeleteError = 106,
    RecordNotFound = 107,
    InvalidVersion = 108,
    InvalidPatchOnHotpath = 109,
    InvalidListenRegex = 110,
    ListenResponseTimeout = 111,
    ListenUnsuccessful = 112,
    RecordNotifyError = 113,
    MessagePermissionError = 114,
    MessageDenied = 115,
    InvalidMessageData = 116,
    MultipleSubscriptions = 117,
    NotSubscribed = 118,
}

/// RecordMessage in record.proto.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RecordMessage {
    #[prost(enumeration = "RecordAction", tag = "1")]
    pub action: i32,
    /// The payload as JSON text.
    #[prost(string, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[prost(string, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[prost(bool, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    #[prost(bool, optional, tag = "5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_ack: Option<bool>,
    #[prost(string, optional, tag = "6")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[prost(string, repeated, tag = "7")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    #[prost(string, optional, tag = "8")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[prost(string, optional, tag = "9")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    #[prost(enumeration = "RecordAction", optional, tag = "10")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_action: Option<i32>,
    #[prost(bool, optional, tag = "11")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_write_ack: Option<bool>,
    #[prost(string, optional, tag = "12")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[prost(int32, optional, tag = "13")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    #[prost(map = "string, int32", tag = "14")]
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub versions: HashMap<String, i32>,
}

impl RecordMessage {
    /// A message with only its action set.
    pub fn new(action: RecordAction) -> Self {
        RecordMessage {
            action: action as i32,
            ..Default::default()
        }
    }

    /// The same message with `name` set.
    pub fn named(action: RecordAction, name: impl Into<String>) -> Self {
        RecordMessage {
            name: Some(name.into()),
            ..RecordMessage::new(action)
        }
    }

    /// The action, or `None` for a number this protocol version does not know.
    pub fn record_action(&self) -> Option<RecordAction> {
        RecordAction::try_from(self.action).ok()
    }
}

/// EVENT_ACTION in event.proto.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum EventAction {
    Unknown = 0,
    Error = 1,
    Emit = 2,
    Subscribe = 3,
    Unsubscribe = 4,
    Listen = 5,
    Unlisten = 6,
    ListenAccept = 7,
    ListenReject = 8,
    SubscriptionHasProvider = 9,
    SubscriptionHasNoProvider = 10,
    SubscriptionForPatternFound = 11,
    SubscriptionForPatternRemoved = 12,
    InvalidListenRegex = 100,
    ListenResponseTimeout = 101,
    ListenUnsuccessful = 102,
    MessagePermissionError = 103,
    MessageDenied = 104,
    InvalidMessageData = 105,
    MultipleSubscriptions = 106,
    NotSubscribed = 107,
}

/// EventMessage in event.proto. Its fields are numbered unlike [`RecordMessage`]'s from
/// `subscription` on: `originalAction` is field 11 here.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EventMessage {
    #[prost(enumeration = "EventAction", tag = "1")]
    pub action: i32,
    /// The payload as JSON text, passed through unchanged; `None` for an event emitted
    /// without data.
    #[prost(string, optional, tag = "2")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[prost(string, optional, tag = "3")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[prost(bool, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    #[prost(bool, optional, tag = "5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_ack: Option<bool>,
    #[prost(string, optional, tag = "6")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[prost(string, repeated, tag = "7")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    #[prost(string, optional, tag = "8")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    #[prost(enumeration = "EventAction", optional, tag = "11")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_action: Option<i32>,
}

impl EventMessage {
    /// A message with only its action set.
    pub fn new(action: EventAction) -> Self {
        EventMessage {
            action: action as i32,
            ..Default::default()
        }
    }

    /// The same message with `name` set.
    pub fn named(action: EventAction, name: impl Into<String>) -> Self {
        EventMessage {
            name: Some(name.into()),
            ..EventMessage::new(action)
        }
    }

    /// The action, or `None` for a number this protocol version does not know.
    pub fn event_action(&self) -> Option<EventAction> {
        EventAction::try_from(self.action).ok()
    }
}
