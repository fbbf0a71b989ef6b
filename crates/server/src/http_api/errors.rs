//! The answers of the HTTP API: each message's result object, the batch's result, and the
//! plain-text refusals of a whole request, in deepstream's words.
//!
//! A message's failure is deepstream's `errorToJIF` (`src/jif/jif-handler.ts`):
//! `{errorTopic, errorEvent, success: false, ...}` with the numeric record action as
//! `errorEvent`, in that key order, and the texts below. Where deepstream's text is a
//! fixed sentence (denials, version conflicts, a missing record) it is reproduced exactly;
//! for other failures deepstream writes "An error occurred: undefined." (it looks the
//! record action up in the RPC table), which says nothing: recordsync names the action
//! and the reason instead, keeping `errorEvent` and `errorParams` (the record's name).

use serde_json::{Map, Value, json};

use recordsync_deepstream_protocol::{EventAction, ParserAction, RecordAction};

/// `{success: true}`, what a write or delete answers.
pub fn ok() -> Value {
    json!({"success": true})
}

fn failure(topic: &str, event: i64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("errorTopic".into(), topic.into());
    m.insert("errorEvent".into(), event.into());
    m.insert("success".into(), false.into());
    m
}

/// MESSAGE_DENIED: the rules refused `action`.
pub fn denied(action: RecordAction) -> Value {
    let mut m = failure("record", RecordAction::MessageDenied as i64);
    m.insert("action".into(), (action as i64).into());
    m.insert(
        "error".into(),
        format!(
            "Message denied. Action \"{}\" is not permitted.",
            action_name(action)
        )
        .into(),
    );
    Value::Object(m)
}

/// An event emit's refusal, as deepstream's HTTP API words it (its event results are built
/// apart from record ones: the action and the error by name, in this key order):
/// `{success: false, error, errorEvent: "MESSAGE_DENIED", errorAction: "emit",
/// errorTopic: "event"}`. `event` is MESSAGE_DENIED, or MESSAGE_PERMISSION_ERROR when the
/// rule failed.
pub fn event_refused(event: EventAction) -> Value {
    let (name, error) = match event {
        EventAction::MessagePermissionError => (
            "MESSAGE_PERMISSION_ERROR",
            "Error while checking permissions for action 'emit': the permission rule failed.",
        ),
        _ => (
            "MESSAGE_DENIED",
            "Message denied. Action 'emit' is not permitted.",
        ),
    };
    json!({
        "success": false,
        "error": error,
        "errorEvent": name,
        "errorAction": "emit",
        "errorTopic": "event",
    })
}

/// VERSION_EXISTS: `version` is taken; the record's current version and data.
pub fn version_exists(name: &str, version: i64, data: Value) -> Value {
    let mut m = failure("record", RecordAction::VersionExists as i64);
    m.insert(
        "error".into(),
        format!("Record update failed. Version {version} exists for record \"{name}\".").into(),
    );
    m.insert("currentVersion".into(), version.into());
    m.insert("currentData".into(), data);
    Value::Object(m)
}

/// INVALID_VERSION: the version asked for is beyond the next. deepstream names the
/// record's current version, and gives the data the writer sent as `currentData`.
pub fn invalid_version(name: &str, current: i64, sent: Value) -> Value {
    let mut m = failure("record", RecordAction::InvalidVersion as i64);
    m.insert(
        "error".into(),
        format!("Record update failed. Version {current} is not valid for record \"{name}\".")
            .into(),
    );
    m.insert("currentVersion".into(), current.into());
    m.insert("currentData".into(), sent);
    Value::Object(m)
}

/// RECORD_NOT_FOUND, for a read of a missing record.
pub fn not_found(name: &str) -> Value {
    let mut m = failure("record", RecordAction::RecordNotFound as i64);
    m.insert(
        "error".into(),
        format!("Record read failed. Record \"{name}\" could not be found.").into(),
    );
    Value::Object(m)
}

/// Any other failure of a record message: `event` says which, `reason` why.
pub fn record_error(event: RecordAction, name: &str, reason: &str) -> Value {
    let mut m = failure("record", event as i64);
    m.insert(
        "error".into(),
        format!("An error occurred: {}: {reason}.", action_name(event)).into(),
    );
    m.insert("errorParams".into(), name.into());
    Value::Object(m)
}

/// A message of a topic recordsync does not serve. deepstream's WebSocket endpoints answer
/// such a message PARSER / UNKNOWN_TOPIC; this is that error in the HTTP API's form.
pub fn unserved(topic: &str) -> Value {
    let mut m = failure("parser", ParserAction::UnknownTopic as i64);
    m.insert(
        "error".into(),
        format!(
            "Topic \"{topic}\" is not served: recordsync serves records (and lists) and events."
        )
        .into(),
    );
    Value::Object(m)
}

/// A message not answered within the endpoint's `requestTimeout`, as deepstream words it
/// (`errorEvent` is deepstream's event name here, not a number).
pub fn timed_out() -> Value {
    let mut m = Map::new();
    m.insert("success".into(), false.into());
    m.insert(
        "error".into(),
        "Request exceeded timeout before a response was received.".into(),
    );
    m.insert("errorTopic".into(), "connection".into());
    m.insert("errorEvent".into(), "HTTP_REQUEST_TIMEOUT".into());
    Value::Object(m)
}

/// The batch's `result`: SUCCESS when every message succeeded, FAILURE when none did.
pub fn batch_result(results: &[Value]) -> &'static str {
    let succeeded = results
        .iter()
        .filter(|r| r.get("success") == Some(&Value::Bool(true)))
        .count();
    if succeeded == results.len() {
        "SUCCESS"
    } else if succeeded == 0 {
        "FAILURE"
    } else {
        "PARTIAL_SUCCESS"
    }
}

/// deepstream's name of a record action (`RECORD_ACTION[action]`).
fn action_name(action: RecordAction) -> String {
    use RecordAction as A;
    let name = match action {
        A::Read => "READ",
        A::Head => "HEAD",
        A::Delete => "DELETE",
        A::Notify => "NOTIFY",
        A::CreateAndUpdate => "CREATEANDUPDATE",
        A::CreateAndPatch => "CREATEANDPATCH",
        A::RecordLoadError => "RECORD_LOAD_ERROR",
        A::RecordUpdateError => "RECORD_UPDATE_ERROR",
        A::RecordDeleteError => "RECORD_DELETE_ERROR",
        A::RecordNotifyError => "RECORD_NOTIFY_ERROR",
        A::MessagePermissionError => "MESSAGE_PERMISSION_ERROR",
        A::InvalidMessageData => "INVALID_MESSAGE_DATA",
        // not an action the HTTP API answers with
        other => return format!("{other:?}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_keep_deepstreams_key_order_and_texts() {
        assert_eq!(
            denied(RecordAction::CreateAndUpdate).to_string(),
            r#"{"errorTopic":"record","errorEvent":115,"success":false,"action":16,"error":"Message denied. Action \"CREATEANDUPDATE\" is not permitted."}"#
        );
        assert_eq!(
            denied(RecordAction::Head).to_string(),
            r#"{"errorTopic":"record","errorEvent":115,"success":false,"action":5,"error":"Message denied. Action \"HEAD\" is not permitted."}"#
        );
        assert_eq!(
            version_exists("r", 2, json!({"a": 1})).to_string(),
            r#"{"errorTopic":"record","errorEvent":102,"success":false,"error":"Record update failed. Version 2 exists for record \"r\".","currentVersion":2,"currentData":{"a":1}}"#
        );
        assert_eq!(
            event_refused(EventAction::MessageDenied).to_string(),
            r#"{"success":false,"error":"Message denied. Action 'emit' is not permitted.","errorEvent":"MESSAGE_DENIED","errorAction":"emit","errorTopic":"event"}"#
        );
        assert_eq!(
            not_found("r").to_string(),
            r#"{"errorTopic":"record","errorEvent":107,"success":false,"error":"Record read failed. Record \"r\" could not be found."}"#
        );
    }

    #[test]
    fn batch_results() {
        assert_eq!(batch_result(&[ok(), ok()]), "SUCCESS");
        assert_eq!(batch_result(&[ok(), not_found("a")]), "PARTIAL_SUCCESS");
        assert_eq!(batch_result(&[unserved("rpc")]), "FAILURE");
    }
}
