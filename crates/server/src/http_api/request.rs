//! The messages of a `POST /api` body: deepstream's JSON Interchange Format (JIF), checked
//! as deepstream checks it and turned into [`Message`]s.
//!
//! deepstream validates each message against a JSON schema (`src/jif/jif-schema.ts`: one
//! `anyOf` branch per topic and action, each with `additionalProperties: false`) with ajv
//! 6, and a message no branch accepts fails the whole request with HTTP 400 "Failed to
//! parse JIF object at index N." [`parse`] accepts exactly what the schema accepts, and
//! [`ajv_reason`] gives the " Reason: ..." deepstream appends, which is always ajv's first
//! error of the first branch (event emits); see its doc for how that comes out.

use serde_json::{Map, Value};

/// One message of a request, as the record front door runs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `record`/`list` `read`.
    Read { name: String },
    /// `record` `head`.
    Head { name: String },
    /// `record`/`list` `delete`.
    Delete { name: String },
    /// `record`/`list` `write`: the whole value (`path: None`, also for an empty path, as
    /// deepstream reads `msg.path ? patch : update`) or the value at a path.
    Write {
        name: String,
        path: Option<String>,
        data: Value,
        /// deepstream's `msg.version || -1`: absent and 0 both mean "the next version".
        version: i64,
    },
    /// `record` `notify` (a record changed in storage outside the server).
    Notify { names: Vec<String> },
    /// `event` `emit`: `data` (absent: an event without data) to every subscriber of the
    /// event `name`, on every node.
    Emit { name: String, data: Option<Value> },
    /// A well-formed message of a topic recordsync does not serve (`rpc`, `presence`).
    Unserved { topic: &'static str },
}

impl Message {
    /// The message's topic as the metrics name it (`recordsync_messages_in_total{kind}`):
    /// lists are records.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Read { .. }
            | Message::Head { .. }
            | Message::Delete { .. }
            | Message::Write { .. }
            | Message::Notify { .. } => "record",
            Message::Emit { .. } => "event",
            Message::Unserved { topic } => topic,
        }
    }
}

/// Checks one message against deepstream's schema. `Err` carries the reason deepstream
/// gives, if any (see [`ajv_reason`]).
pub fn parse(message: &Value) -> Result<Message, Option<String>> {
    accept(message).ok_or_else(|| ajv_reason(message))
}

/// The message, if some branch of the schema accepts it.
fn accept(message: &Value) -> Option<Message> {
    let obj = message.as_object()?;
    let topic = obj.get("topic")?.as_str()?;
    let action = obj.get("action")?.as_str()?;
    match (topic, action) {
        ("event", "emit") => {
            within(obj, &["topic", "action", "eventName", "data"])?;
            let name = name(obj, "eventName")?;
            Some(Message::Emit {
                name: name.to_owned(),
                data: obj.get("data").cloned(),
            })
        }
        ("rpc", "make") => {
            within(obj, &["topic", "action", "rpcName", "data"])?;
            name(obj, "rpcName")?;
            Some(Message::Unserved { topic: "rpc" })
        }
        ("presence", "query") => {
            within(obj, &["topic", "action", "names"])?;
            if let Some(names) = obj.get("names") {
                strings(names)?;
            }
            Some(Message::Unserved { topic: "presence" })
        }
        ("record", "read" | "head" | "delete") => {
            within(obj, &["topic", "action", "recordName"])?;
            let name = name(obj, "recordName")?;
            Some(match action {
                "read" => Message::Read { name },
                "head" => Message::Head { name },
                _ => Message::Delete { name },
            })
        }
        ("record", "write") => {
            let name = name(obj, "recordName")?;
            let data = obj.get("data")?.clone();
            let version = version(obj)?;
            if obj.contains_key("path") {
                // "Record Write With Path": any data, a string path (empty allowed).
                within(
                    obj,
                    &["topic", "action", "recordName", "data", "path", "version"],
                )?;
                let path = obj.get("path")?.as_str()?;
                let path = (!path.is_empty()).then(|| path.to_owned());
                Some(Message::Write {
                    name,
                    path,
                    data,
                    version,
                })
            } else {
                // "Record Writes": the whole value, an object or an array.
                within(obj, &["topic", "action", "recordName", "data", "version"])?;
                if !(data.is_object() || data.is_array()) {
                    return None;
                }
                Some(Message::Write {
                    name,
                    path: None,
                    data,
                    version,
                })
            }
        }
        ("record", "notify") => {
            within(obj, &["topic", "action", "recordNames"])?;
            let names = strings(obj.get("recordNames")?)?;
            Some(Message::Notify { names })
        }
        ("list", "read" | "delete") => {
            within(obj, &["topic", "action", "listName"])?;
            let name = name(obj, "listName")?;
            Some(if action == "read" {
                Message::Read { name }
            } else {
                Message::Delete { name }
            })
        }
        ("list", "write") => {
            within(obj, &["topic", "action", "listName", "data", "version"])?;
            let name = name(obj, "listName")?;
            let data = obj.get("data")?;
            strings(data)?;
            Some(Message::Write {
                name,
                path: None,
                data: data.clone(),
                version: version(obj)?,
            })
        }
        _ => None,
    }
}

/// `additionalProperties: false`.
fn within(obj: &Map<String, Value>, allowed: &[&str]) -> Option<()> {
    obj.keys()
        .all(|k| allowed.contains(&k.as_str()))
        .then_some(())
}

/// A required string with `minLength: 1`.
fn name(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key)?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `type: array, items: {type: string}`.
fn strings(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// The optional `version`: an integer of at least -1 (ajv's `integer` is any number
/// without a fraction, `1.0` and `1e2` included). deepstream then uses `msg.version || -1`,
/// so 0 means "the next version" as -1 does. A version beyond i64 is kept as i64::MAX,
/// which no record reaches: it is answered INVALID_VERSION, as deepstream answers it.
fn version(obj: &Map<String, Value>) -> Option<i64> {
    let Some(v) = obj.get("version") else {
        return Some(-1);
    };
    let n = v.as_number()?;
    let version = match n.as_i64() {
        Some(i) => i,
        None => {
            let f = n.as_f64()?;
            if !f.is_finite() || f.fract() != 0.0 {
                return None;
            }
            if f > i64::MAX as f64 {
                i64::MAX
            } else if f < -1.0 {
                return None;
            } else {
                f as i64
            }
        }
    };
    match version {
        v if v < -1 => None,
        0 => Some(-1),
        v => Some(v),
    }
}

/// What deepstream appends to "Failed to parse JIF object at index N." for a message no
/// branch accepts: ajv's first error, which comes from the schema's first branch (event
/// emits), rendered by deepstream only for the `required`, `type` and `minLength` keywords.
///
/// ajv 6 checks, in this order: the root's `type: object`; then that branch's
/// `additionalProperties` (any key but topic, action, eventName, data is an error without
/// a reason); then its properties in schema order, a missing required one being a
/// `required` error and a present one checked against its schema (`topic` and `action`
/// are `const`s, errors without a reason). So the reason names a missing `topic` (topic
/// 'undefined'), or, for a message whose topic is `event`, the missing or invalid
/// `action` / `eventName`. Found by running deepstream 7.0.2 (interop/test/http-api).
pub fn ajv_reason(message: &Value) -> Option<String> {
    let Some(obj) = message.as_object() else {
        return Some("property '' should be object".into());
    };
    within(obj, &["topic", "action", "eventName", "data"])?;
    let Some(topic) = obj.get("topic") else {
        return Some("property 'topic' is required for topic 'undefined'".into());
    };
    if topic.as_str() != Some("event") {
        return None;
    }
    let Some(action) = obj.get("action") else {
        return Some("property 'action' is required for topic 'event'".into());
    };
    if action.as_str() != Some("emit") {
        return None;
    }
    match obj.get("eventName") {
        None => Some("property 'eventName' is required for topic 'event'".into()),
        Some(Value::String(s)) if s.is_empty() => {
            Some("property '.eventName' should NOT be shorter than 1 characters".into())
        }
        Some(Value::String(_)) => None,
        Some(_) => Some("property '.eventName' should be string".into()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reason(v: Value) -> Option<String> {
        assert!(accept(&v).is_none(), "{v} is accepted");
        ajv_reason(&v)
    }

    #[test]
    fn record_messages_become_engine_requests() {
        assert_eq!(
            parse(&json!({"topic": "record", "action": "read", "recordName": "a"})),
            Ok(Message::Read { name: "a".into() })
        );
        assert_eq!(
            parse(&json!({"topic": "list", "action": "delete", "listName": "l"})),
            Ok(Message::Delete { name: "l".into() })
        );
        assert_eq!(
            parse(
                &json!({"topic": "record", "action": "write", "recordName": "a", "data": {"x": 1}, "version": 0})
            ),
            Ok(Message::Write {
                name: "a".into(),
                path: None,
                data: json!({"x": 1}),
                version: -1
            })
        );
        assert_eq!(
            parse(
                &json!({"topic": "record", "action": "write", "recordName": "a", "data": null, "path": "p.q", "version": 3})
            ),
            Ok(Message::Write {
                name: "a".into(),
                path: Some("p.q".into()),
                data: Value::Null,
                version: 3
            })
        );
        // an empty path is a whole-value write, whatever its data (the engine judges it)
        assert_eq!(
            parse(
                &json!({"topic": "record", "action": "write", "recordName": "a", "data": "x", "path": ""})
            ),
            Ok(Message::Write {
                name: "a".into(),
                path: None,
                data: json!("x"),
                version: -1
            })
        );
        let v: Value = serde_json::from_str(
            r#"{"topic":"record","action":"write","recordName":"a","data":{},"version":2.0}"#,
        )
        .unwrap();
        assert!(matches!(parse(&v), Ok(Message::Write { version: 2, .. })));
        assert_eq!(
            parse(&json!({"topic": "event", "action": "emit", "eventName": "e", "data": 1})),
            Ok(Message::Emit {
                name: "e".into(),
                data: Some(json!(1))
            })
        );
        assert_eq!(
            parse(&json!({"topic": "event", "action": "emit", "eventName": "e"})),
            Ok(Message::Emit {
                name: "e".into(),
                data: None
            })
        );
        assert_eq!(
            parse(&json!({"topic": "presence", "action": "query"})),
            Ok(Message::Unserved { topic: "presence" })
        );
    }

    #[test]
    fn what_the_schema_refuses() {
        for bad in [
            json!({"topic": "record", "action": "write", "recordName": "a", "data": 5}),
            json!({"topic": "record", "action": "write", "recordName": "a", "data": {}, "version": -2}),
            json!({"topic": "record", "action": "write", "recordName": "a", "data": {}, "version": 1.5}),
            json!({"topic": "record", "action": "write", "recordName": "a", "data": {}, "version": "1"}),
            json!({"topic": "record", "action": "write", "recordName": "a"}),
            json!({"topic": "record", "action": "write", "recordName": "a", "data": 1, "path": 5}),
            json!({"topic": "record", "action": "read", "recordName": ""}),
            json!({"topic": "record", "action": "read", "recordName": "a", "x": 1}),
            json!({"topic": "record", "action": "subscribe", "recordName": "a"}),
            json!({"topic": "list", "action": "write", "listName": "l", "data": [1]}),
            json!({"topic": "rpc", "action": "make"}),
        ] {
            assert_eq!(parse(&bad), Err(None), "{bad}");
        }
    }

    #[test]
    fn reasons_are_those_of_ajvs_first_branch() {
        assert_eq!(reason(json!("s")).unwrap(), "property '' should be object");
        assert_eq!(reason(json!([])).unwrap(), "property '' should be object");
        assert_eq!(
            reason(json!({})).unwrap(),
            "property 'topic' is required for topic 'undefined'"
        );
        assert_eq!(reason(json!({"topic": "record", "action": "read"})), None);
        assert_eq!(
            reason(json!({"action": "read", "recordName": "x"})),
            None,
            "recordName is an additional property of the event branch"
        );
        assert_eq!(
            reason(json!({"topic": "event"})).unwrap(),
            "property 'action' is required for topic 'event'"
        );
        assert_eq!(reason(json!({"topic": "event", "action": "x"})), None);
        assert_eq!(
            reason(json!({"topic": "event", "action": "emit"})).unwrap(),
            "property 'eventName' is required for topic 'event'"
        );
        assert_eq!(
            reason(json!({"topic": "event", "action": "emit", "eventName": null})).unwrap(),
            "property '.eventName' should be string"
        );
        assert_eq!(
            reason(json!({"topic": "event", "action": "emit", "eventName": ""})).unwrap(),
            "property '.eventName' should NOT be shorter than 1 characters"
        );
    }
}
