//! The protobuf transport (`/deepstream`).
//!
//! Each WebSocket binary frame carries one outer `Message { topic = 2; message = 3 }`,
//! length-delimited (a varint length, then the bytes), whose `message` is the topic's
//! own message, encoded.

use bytes::{Bytes, BytesMut};
use prost::Message as _;

use crate::error::DecodeError;
use crate::message::Message;
use crate::messages::{
    AuthMessage, ConnectionMessage, EventMessage, ParserMessage, RecordMessage, Topic,
};

/// The outer envelope of general.proto.
#[derive(Clone, PartialEq, prost::Message)]
struct Envelope {
    #[prost(enumeration = "Topic", tag = "2")]
    topic: i32,
    #[prost(bytes = "bytes", tag = "3")]
    message: Bytes,
}

/// Only the action of a topic message this crate has no type for.
#[derive(Clone, PartialEq, prost::Message)]
struct ActionOnly {
    #[prost(int32, optional, tag = "1")]
    action: Option<i32>,
}

/// Decodes one frame. `limit` bounds the frame size before any parsing happens.
pub fn decode(frame: &[u8], limit: usize) -> Result<Message, DecodeError> {
    if frame.len() > limit {
        return Err(DecodeError::TooLarge {
            size: frame.len(),
            limit,
        });
    }
    let envelope = Envelope::decode_length_delimited(frame)?;
    let body = envelope.message;
    let message = match Topic::try_from(envelope.topic) {
        Ok(Topic::Connection) => Message::Connection(ConnectionMessage::decode(body)?),
        Ok(Topic::Auth) => Message::Auth(AuthMessage::decode(body)?),
        Ok(Topic::Record) => Message::Record(RecordMessage::decode(body)?),
        Ok(Topic::Event) => Message::Event(EventMessage::decode(body)?),
        Ok(Topic::Parser) => Message::Parser(ParserMessage::decode(body)?),
        Ok(_) => Message::Other {
            topic: envelope.topic,
            action: ActionOnly::decode(body)?.action,
        },
        Err(_) => return Err(DecodeError::UnknownTopic(envelope.topic)),
    };
    Ok(message)
}

/// Encodes one message as a frame.
pub fn encode(message: &Message) -> Bytes {
    let body = match message {
        Message::Connection(m) => m.encode_to_vec(),
        Message::Auth(m) => m.encode_to_vec(),
        Message::Record(m) => m.encode_to_vec(),
        Message::Event(m) => m.encode_to_vec(),
        Message::Parser(m) => m.encode_to_vec(),
        Message::Other { action, .. } => ActionOnly { action: *action }.encode_to_vec(),
    };
    let envelope = Envelope {
        topic: message.topic(),
        message: Bytes::from(body),
    };
    let mut out = BytesMut::with_capacity(envelope.encoded_len() + 5);
    envelope
        .encode_length_delimited(&mut out)
        .expect("BytesMut grows as needed");
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{EventAction, RecordAction};

    #[test]
    fn record_message_round_trips_with_explicit_zero_version() {
        let mut m = RecordMessage::named(RecordAction::ReadResponse, "a/b");
        m.version = Some(0);
        m.data = Some("{}".into());
        let frame = encode(&Message::Record(m.clone()));
        assert_eq!(decode(&frame, 1 << 20), Ok(Message::Record(m)));
        // version 0 is on the wire: tag 13 varint (0x68) followed by 0.
        assert!(frame.windows(2).any(|w| w == [0x68, 0x00]));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\xff\xff\xff\xff",
            b"\x05\x10\x05\x1a\x09",
            b"hello world",
        ] {
            assert!(decode(bytes, 1 << 20).is_err(), "{bytes:?}");
        }
    }

    #[test]
    fn oversized_frames_are_refused_before_parsing() {
        assert_eq!(
            decode(&[0u8; 100], 10),
            Err(DecodeError::TooLarge {
                size: 100,
                limit: 10
            })
        );
    }

    #[test]
    fn unimplemented_topics_decode_with_their_action() {
        let frame = encode(&Message::Other {
            topic: Topic::Rpc as i32,
            action: Some(3),
        });
        assert_eq!(
            decode(&frame, 1 << 20),
            Ok(Message::Other {
                topic: Topic::Rpc as i32,
                action: Some(3)
            })
        );
    }

    #[test]
    fn event_message_decodes_as_the_js_client_encodes_it() {
        // EVENT SUBSCRIBE {correlationId: "0", names: ["data/change"]}, as
        // @deepstream/protobuf writes it.
        let frame = b"\x16\x10\x04\x1a\x12\x08\x03\x1a\x010\x3a\x0bdata/change";
        let Ok(Message::Event(m)) = decode(frame, 1 << 20) else {
            panic!("not an event message")
        };
        assert_eq!(m.event_action(), Some(EventAction::Subscribe));
        assert_eq!(m.correlation_id.as_deref(), Some("0"));
        assert_eq!(m.names, vec!["data/change"]);
        // originalAction is field 11 (tag 0x58) in event.proto, not 10 as in record.proto.
        let denied = EventMessage {
            original_action: Some(EventAction::Emit as i32),
            ..EventMessage::named(EventAction::MessageDenied, "e")
        };
        let frame = encode(&Message::Event(denied.clone()));
        assert!(frame.windows(2).any(|w| w == [0x58, 0x02]));
        assert_eq!(decode(&frame, 1 << 20), Ok(Message::Event(denied)));
    }
}
