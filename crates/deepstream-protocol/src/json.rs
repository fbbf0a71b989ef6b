//! The JSON transport (`/deepstream-json`): one flat JSON object per text frame, the
//! topic message's fields beside `topic`, e.g.
//! `{"topic":5,"action":23,"names":["a"],"correlationId":"1"}`.

use serde::Deserialize;

use crate::error::DecodeError;
use crate::message::Message;
use crate::messages::Topic;

#[derive(Deserialize)]
struct TopicAndAction {
    topic: i32,
    #[serde(default)]
    action: Option<i32>,
}

/// Decodes one text frame. `limit` bounds its size before any parsing happens.
pub fn decode(text: &str, limit: usize) -> Result<Message, DecodeError> {
    if text.len() > limit {
        return Err(DecodeError::TooLarge {
            size: text.len(),
            limit,
        });
    }
    let head: TopicAndAction = serde_json::from_str(text)?;
    let message = match Topic::try_from(head.topic) {
        Ok(Topic::Connection) => Message::Connection(serde_json::from_str(text)?),
        Ok(Topic::Auth) => Message::Auth(serde_json::from_str(text)?),
        Ok(Topic::Record) => Message::Record(serde_json::from_str(text)?),
        Ok(Topic::Event) => Message::Event(serde_json::from_str(text)?),
        Ok(Topic::Parser) => Message::Parser(serde_json::from_str(text)?),
        Ok(_) => Message::Other {
            topic: head.topic,
            action: head.action,
        },
        Err(_) => return Err(DecodeError::UnknownTopic(head.topic)),
    };
    Ok(message)
}

/// Encodes one message as a text frame.
pub fn encode(message: &Message) -> String {
    let body = match message {
        Message::Connection(m) => serde_json::to_string(m),
        Message::Auth(m) => serde_json::to_string(m),
        Message::Record(m) => serde_json::to_string(m),
        Message::Event(m) => serde_json::to_string(m),
        Message::Parser(m) => serde_json::to_string(m),
        Message::Other { action, .. } => {
            serde_json::to_string(&serde_json::json!({ "action": action }))
        }
    }
    .expect("these messages always serialise");
    // `body` is a JSON object; put `topic` first in it.
    let rest = &body[1..];
    let separator = if rest == "}" { "" } else { "," };
    format!("{{\"topic\":{}{separator}{rest}", message.topic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{RecordAction, RecordMessage};

    #[test]
    fn record_message_as_the_js_client_writes_it() {
        let text = r#"{"topic":5,"action":23,"names":["a","b"],"correlationId":"7","isAck":false,"parsedData":{"x":1}}"#;
        let Message::Record(m) = decode(text, 1 << 20).unwrap() else {
            panic!("not a record")
        };
        assert_eq!(
            m.record_action(),
            Some(RecordAction::SubscribeCreateAndRead)
        );
        assert_eq!(m.names, vec!["a", "b"]);
        assert_eq!(m.correlation_id.as_deref(), Some("7"));
    }

    #[test]
    fn encode_puts_topic_first_and_keeps_zero_version() {
        let mut m = RecordMessage::named(RecordAction::ReadResponse, "a");
        m.version = Some(0);
        assert_eq!(
            encode(&Message::Record(m)),
            r#"{"topic":5,"action":4,"name":"a","version":0}"#
        );
        assert_eq!(
            encode(&Message::Other {
                topic: 6,
                action: None
            }),
            r#"{"topic":6,"action":null}"#
        );
    }

    #[test]
    fn event_message_as_the_js_client_writes_it() {
        let text = r#"{"topic":4,"action":2,"name":"e","data":"{\"b\":1,\"a\":[null]}","parsedData":{"b":1,"a":[null]}}"#;
        let Message::Event(m) = decode(text, 1 << 20).unwrap() else {
            panic!("not an event")
        };
        assert_eq!(m.event_action(), Some(crate::messages::EventAction::Emit));
        assert_eq!(m.data.as_deref(), Some(r#"{"b":1,"a":[null]}"#));
        assert_eq!(
            encode(&Message::Event(m)),
            r#"{"topic":4,"action":2,"data":"{\"b\":1,\"a\":[null]}","name":"e"}"#
        );
    }

    #[test]
    fn bad_json_is_an_error() {
        assert!(decode("not json", 100).is_err());
        assert!(decode(r#"{"topic":"x"}"#, 100).is_err());
        assert!(decode(r#"{"topic":999}"#, 100).is_err());
    }
}
