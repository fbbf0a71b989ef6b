//! recordsync's WebSocket transport: the server side of RFC 6455 on a plain `TcpStream`.
//!
//! - [`handshake`] — checks an HTTP upgrade request, answers 101, and takes the TCP socket
//!   back from hyper once the answer is written.
//! - [`socket`]    — one upgraded connection: incoming messages are parsed by tungstenite,
//!   outgoing frames are written as they are, several per system call.
//!
//! Why not axum's `WebSocket`: a server-to-client frame is not masked, so the same update
//! sent to a thousand subscribers is a thousand copies of the same bytes. [`frame`] builds
//! those bytes once, when an event is encoded, and every subscriber's queue holds the same
//! reference-counted buffer; a connection writes what has queued up with one vectored
//! write. Under axum each delivery went through `Sink::start_send` and was framed again
//! into tungstenite's write buffer, behind five layers of I/O adapters (axum, tokio-
//! tungstenite's waker proxy, hyper's boxed `Upgraded`, hyper-util's `Rewind`, `TokioIo`),
//! each with its own poll. The HTTP side is still hyper and axum; tungstenite still does
//! the parsing, masking rules, control frames and the close handshake of what clients send.

pub mod handshake;
pub mod socket;

use bytes::{BufMut, Bytes, BytesMut};
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

pub use socket::Socket;

/// What a data frame carries: deepstream's protobuf transport sends binary frames, its
/// JSON transport text frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Binary,
    Text,
}

/// One complete, unmasked, unfragmented data frame with `payload`: the bytes a server
/// writes to any client, ready to be shared between connections.
pub fn frame(kind: Kind, payload: &[u8]) -> Bytes {
    let header = FrameHeader {
        is_final: true,
        opcode: OpCode::Data(match kind {
            Kind::Binary => Data::Binary,
            Kind::Text => Data::Text,
        }),
        ..FrameHeader::default()
    };
    let length = payload.len() as u64;
    let mut out = BytesMut::with_capacity(header.len(length) + payload.len()).writer();
    header
        .format(length, &mut out)
        .expect("writing to memory cannot fail");
    let mut out = out.into_inner();
    out.extend_from_slice(payload);
    out.freeze()
}

/// An empty ping: a server asks a client that sends nothing of its own whether it is
/// still there. Browsers and WebSocket libraries answer with a pong by themselves.
pub fn ping() -> Bytes {
    let header = FrameHeader {
        is_final: true,
        opcode: OpCode::Control(Control::Ping),
        ..FrameHeader::default()
    };
    let mut out = BytesMut::with_capacity(header.len(0)).writer();
    header
        .format(0, &mut out)
        .expect("writing to memory cannot fail");
    out.into_inner().freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use tungstenite::protocol::frame::Frame;

    fn parse(bytes: &[u8]) -> (FrameHeader, Vec<u8>) {
        let mut cursor = Cursor::new(bytes);
        let (header, length) = FrameHeader::parse(&mut cursor)
            .expect("a valid header")
            .expect("a complete header");
        let start = cursor.position() as usize;
        assert_eq!(
            start + length as usize,
            bytes.len(),
            "nothing after the payload"
        );
        (header, bytes[start..].to_vec())
    }

    #[test]
    fn frames_are_final_unmasked_and_carry_the_payload() {
        for (kind, data) in [(Kind::Binary, Data::Binary), (Kind::Text, Data::Text)] {
            // The three length encodings: 7 bits, 16 bits, 64 bits.
            for size in [0, 1, 125, 126, 65_535, 65_536, 200_000] {
                let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
                let bytes = frame(kind, &payload);
                let (header, body) = parse(&bytes);
                assert!(header.is_final);
                assert_eq!(header.mask, None, "servers never mask");
                assert_eq!(header.opcode, OpCode::Data(data));
                assert_eq!(body, payload, "size {size}");
            }
        }
    }

    #[test]
    fn frames_match_what_tungstenite_would_write() {
        let payload = b"\x05\x12some record update".to_vec();
        let mut theirs = Vec::new();
        Frame::message(payload.clone(), OpCode::Data(Data::Binary), true)
            .format(&mut theirs)
            .unwrap();
        assert_eq!(frame(Kind::Binary, &payload).as_ref(), theirs.as_slice());
    }
}
