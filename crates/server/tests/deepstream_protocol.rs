//! Black-box tests of the deepstream front door: a real server on an ephemeral port,
//! driven by a raw protocol client.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

mod support;

use std::time::Duration;

use serde_json::json;
use tokio_tungstenite::tungstenite::Message as Frame;

use recordsync_deepstream_protocol::{
    ConnectionAction, ConnectionMessage, Message, ParserAction, RecordAction, RecordMessage, Topic,
    binary,
};
use recordsync_server::{Config, Server, StorageKind};
use support::{RawClient, json_value, listen_msg, patch, update};

/// Starts a server on a free port with in-memory storage; returns its address.
async fn start(adjust: impl FnOnce(&mut Config)) -> String {
    let mut config = Config {
        port: 0,
        storage: StorageKind::Memory,
        ..Config::default()
    };
    adjust(&mut config);
    let server = Server::bind(config).await.expect("server binds");
    let addr = server.local_addr().to_string();
    tokio::spawn(server.run(std::future::pending()));
    addr
}

async fn server() -> String {
    start(|_| {}).await
}

#[tokio::test]
async fn health_check_answers_200() {
    let addr = server().await;
    let (mut stream, _) = tokio::net::TcpStream::connect(&addr)
        .await
        .map(|s| (s, ()))
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /health-check HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

/// Sends `request` on a new connection and returns everything the server answers until it
/// closes the connection or goes quiet for a second.
async fn raw_http(addr: &str, request: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    got
}

#[tokio::test]
async fn a_request_that_is_not_an_upgrade_is_refused_with_the_reason() {
    let addr = server().await;
    let response = raw_http(
        &addr,
        b"GET /deepstream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(response.contains("'upgrade'"), "{response}");
    let response = raw_http(
        &addr,
        b"GET /deepstream HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(response.contains("'13'"), "{response}");
}

#[tokio::test]
async fn a_first_frame_sent_with_the_upgrade_request_is_not_lost() {
    let addr = server().await;
    // The upgrade request and a masked CONNECTION CHALLENGE frame in one write: the HTTP
    // layer reads both, and the frame must reach the WebSocket.
    let challenge = binary::encode(&Message::Connection(ConnectionMessage {
        action: ConnectionAction::Challenge as i32,
        ..Default::default()
    }));
    let mut request = b"GET /deepstream HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
        Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        .to_vec();
    request.push(0x82);
    request.push(0x80 | u8::try_from(challenge.len()).unwrap());
    request.extend_from_slice(&[0, 0, 0, 0]); // a zero mask leaves the payload as it is
    request.extend_from_slice(&challenge);
    let response = raw_http(&addr, &request).await;
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response")
        + 4;
    let head = String::from_utf8_lossy(&response[..head_end]);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    // Then a binary frame: the server's CONNECTION ACCEPT.
    let frame = &response[head_end..];
    assert!(frame.len() > 2, "no frame after the 101: {frame:?}");
    assert_eq!(frame[0], 0x82, "a final binary frame");
    let length = usize::from(frame[1]);
    let message = binary::decode(&frame[2..2 + length], 1 << 20).unwrap();
    assert!(
        matches!(
            message,
            Message::Connection(ConnectionMessage { action, .. })
                if action == ConnectionAction::Accept as i32
        ),
        "{message:?}"
    );
}

#[tokio::test]
async fn a_new_record_is_empty_at_version_zero_and_writes_reach_other_subscribers() {
    let addr = server().await;
    let mut a = RawClient::connect(&addr).await;
    let mut b = RawClient::connect(&addr).await;
    let read = a.subscribe("pets/rex").await;
    assert_eq!(read.version, Some(0));
    assert_eq!(json_value(&read.data), json!({}));
    let read = b.subscribe("pets/rex").await;
    assert_eq!(read.version, Some(0));

    a.write(update("pets/rex", 1, r#"{"name":"Rex"}"#), Some("1"))
        .await;
    let seen = b.recv_record().await;
    assert_eq!(seen.action, RecordAction::Update as i32);
    assert_eq!(seen.version, Some(1));
    assert_eq!(json_value(&seen.data), json!({"name": "Rex"}));

    a.write(
        patch("pets/rex", 2, "pets[1].fur.color", r#""brown""#),
        None,
    )
    .await;
    let seen = b.recv_record().await;
    assert_eq!(seen.action, RecordAction::Patch as i32);
    assert_eq!(
        (seen.version, seen.path.as_deref()),
        (Some(2), Some("pets[1].fur.color"))
    );

    // The writer gets no echo of its own writes.
    assert!(a.try_recv(Duration::from_millis(200)).await.is_none());

    a.send(RecordMessage::named(RecordAction::Read, "pets/rex"))
        .await;
    let snapshot = a.recv_record().await;
    assert_eq!(snapshot.action, RecordAction::ReadResponse as i32);
    assert_eq!(snapshot.version, Some(2));
    assert_eq!(
        json_value(&snapshot.data),
        json!({"name": "Rex", "pets": [null, {"fur": {"color": "brown"}}]})
    );
}

#[tokio::test]
async fn version_rules() {
    let addr = server().await;
    let mut a = RawClient::connect(&addr).await;
    a.subscribe("v").await;
    a.write(update("v", 1, r#"{"x":1}"#), Some("1")).await;

    // A used version: VERSION_EXISTS with the server's version and data.
    a.send(RecordMessage {
        is_write_ack: Some(true),
        correlation_id: Some("2".into()),
        ..update("v", 1, "{}")
    })
    .await;
    let reply = a.recv_record().await;
    assert_eq!(reply.action, RecordAction::VersionExists as i32);
    assert_eq!(reply.version, Some(1));
    assert_eq!(json_value(&reply.data), json!({"x": 1}));
    assert_eq!(reply.correlation_id.as_deref(), Some("2"));

    // Beyond the next version: INVALID_VERSION.
    a.send(update("v", 5, "{}")).await;
    let reply = a.recv_record().await;
    assert_eq!(reply.action, RecordAction::InvalidVersion as i32);
    assert_eq!(reply.original_action, Some(RecordAction::Update as i32));

    // -1 means "the next version".
    a.write(update("v", -1, r#"{"x":2}"#), Some("3")).await;
    assert_eq!(a.head("v").await, 2);
}

#[tokio::test]
async fn head_has_and_snapshot_of_a_missing_record_do_not_create_it() {
    let addr = server().await;
    let mut a = RawClient::connect(&addr).await;
    assert_eq!(a.head("nothing/here").await, -1);
    a.send(RecordMessage::named(RecordAction::Read, "nothing/here"))
        .await;
    let reply = a.recv_record().await;
    assert_eq!(reply.action, RecordAction::RecordNotFound as i32);
    assert_eq!(reply.is_error, Some(true));
    assert_eq!(reply.original_action, Some(RecordAction::Read as i32));
    assert_eq!(a.head("nothing/here").await, -1);
}

#[tokio::test]
async fn set_data_creates_at_version_one_and_acks() {
    let addr = server().await;
    let mut a = RawClient::connect(&addr).await;
    let mut b = RawClient::connect(&addr).await;
    b.subscribe("settings/x").await;
    let m = RecordMessage {
        version: Some(-1),
        path: Some("theme".into()),
        data: Some(r#""dark""#.into()),
        ..RecordMessage::named(RecordAction::CreateAndPatch, "settings/x")
    };
    a.write(m, Some("7")).await;
    let seen = b.recv_record().await;
    assert_eq!(
        (seen.action, seen.version),
        (RecordAction::Patch as i32, Some(1))
    );

    let m = RecordMessage {
        version: Some(-1),
        data: Some(r#"{"fresh":true}"#.into()),
        ..RecordMessage::named(RecordAction::CreateAndUpdate, "brand/new")
    };
    a.write(m, Some("8")).await;
    assert_eq!(a.head("brand/new").await, 1);
}

#[tokio::test]
async fn erase_and_patch_multi() {
    let addr = server().await;
    let mut a = RawClient::connect(&addr).await;
    let mut b = RawClient::connect(&addr).await;
    a.subscribe("m").await;
    b.subscribe("m").await;
    a.write(update("m", 1, r#"{"a":1,"b":2}"#), None).await;
    b.recv_record().await;
    let erase = RecordMessage {
        version: Some(2),
        path: Some("a".into()),
        ..RecordMessage::named(RecordAction::Erase, "m")
    };
    a.write(erase, None).await;
    let seen = b.recv_record().await;
    assert_eq!(
        (seen.action, seen.path.as_deref(), seen.data),
        (RecordAction::Patch as i32, Some("a"), None),
        "an erase reaches subscribers as a PATCH without data (see the test below)"
    );
    let multi = RecordMessage {
        version: Some(3),
        data: Some(r#"[{"path":"c","data":3},{"path":"b"}]"#.into()),
        ..RecordMessage::named(RecordAction::PatchMulti, "m")
    };
    a.write(multi, Some("m")).await;
    // deepstream's SDKs drop a PATCH_MULTI they receive: subscribers get the whole value.
    let seen = b.recv_record().await;
    assert_eq!(
        (seen.action, seen.version, seen.data.as_deref()),
        (RecordAction::Update as i32, Some(3), Some(r#"{"c":3}"#))
    );
    b.send(RecordMessage::named(RecordAction::Read, "m")).await;
    assert_eq!(json_value(&b.recv_record().await.data), json!({"c": 3}));
}

/// An erase reaches the other subscribers as deepstream sends it: a PATCH with the path
/// and the version and no data at all, on both transports. The JS client needs this form: when the fanned-out change has a
/// version its own losing write already used, it READs the record after a PATCH, but
/// merges an ERASE as if it carried the whole record, and stays without data
/// (`interop/test/conflicts.test.mjs`). Like deepstream, the server also takes a PATCH
/// without data as an erase, and its refusal of a losing erase names PATCH.
#[tokio::test]
async fn an_erase_is_fanned_out_as_a_patch_without_data() {
    let addr = server().await;
    let mut a = RawClient::connect(&addr).await;
    let mut b = RawClient::connect(&addr).await;
    let mut js = RawClient::connect_to(&addr, "/deepstream-json").await;
    for c in [&mut a, &mut b, &mut js] {
        c.subscribe("e").await;
    }
    a.write(update("e", 1, r#"{"a":1,"b":2,"c":3}"#), Some("1"))
        .await;
    b.recv_record().await;
    js.recv_record().await;

    a.send(RecordMessage {
        version: Some(2),
        path: Some("a".into()),
        ..RecordMessage::named(RecordAction::Erase, "e")
    })
    .await;
    let Frame::Binary(bytes) = b.recv_frame().await else {
        panic!("a binary frame on the binary endpoint")
    };
    let Message::Record(seen) = binary::decode(&bytes, usize::MAX).expect("a valid frame") else {
        panic!("a record message")
    };
    assert_eq!(
        (
            seen.action,
            seen.name.as_deref(),
            seen.path.as_deref(),
            seen.version,
            seen.data.as_deref()
        ),
        (
            RecordAction::Patch as i32,
            Some("e"),
            Some("a"),
            Some(2),
            None
        ),
        "binary: {seen:?}"
    );
    // Never an ack: the client would hand it to its write-ack service and drop the change.
    assert_ne!(seen.is_write_ack, Some(true), "{seen:?}");
    let Frame::Text(text) = js.recv_frame().await else {
        panic!("a text frame on the JSON endpoint")
    };
    let seen: serde_json::Value = serde_json::from_str(text.as_str()).expect("JSON");
    assert_eq!(
        (&seen["action"], &seen["path"], &seen["version"]),
        (&json!(RecordAction::Patch as i32), &json!("a"), &json!(2)),
        "{text}"
    );
    assert!(
        seen.get("data").is_none() && seen.get("parsedData").is_none(),
        "JSON: no data and no parsedData: {text}"
    );

    // A PATCH without data from a client is an erase too.
    b.send(RecordMessage {
        version: Some(3),
        path: Some("b".into()),
        ..RecordMessage::named(RecordAction::Patch, "e")
    })
    .await;
    let seen = a.recv_record().await;
    assert_eq!(
        (seen.action, seen.path.as_deref(), seen.data, seen.version),
        (RecordAction::Patch as i32, Some("b"), None, Some(3))
    );
    a.send(RecordMessage::named(RecordAction::Read, "e")).await;
    assert_eq!(json_value(&a.recv_record().await.data), json!({"c": 3}));

    // An erase that lost the race: VERSION_EXISTS names PATCH, as deepstream's does.
    a.send(RecordMessage {
        version: Some(3),
        path: Some("c".into()),
        is_write_ack: Some(true),
        correlation_id: Some("late".into()),
        ..RecordMessage::named(RecordAction::Erase, "e")
    })
    .await;
    let refused = a.recv_action(RecordAction::VersionExists).await;
    assert_eq!(
        (refused.original_action, refused.version),
        (Some(RecordAction::Patch as i32), Some(3))
    );
    assert_eq!(json_value(&refused.data), json!({"c": 3}));
    assert_eq!(refused.correlation_id.as_deref(), Some("late"));
}

#[tokio::test]
async fn delete_tells_the_other_subscribers() {
    let addr = server().await;
    let mut a = RawClient::connect(&addr).await;
    let mut b = RawClient::connect(&addr).await;
    a.subscribe("doomed").await;
    b.subscribe("doomed").await;
    a.write(update("doomed", 1, r#"{"x":1}"#), Some("1")).await;
    b.recv_record().await;
    a.send(RecordMessage {
        correlation_id: Some("d".into()),
        ..RecordMessage::named(RecordAction::Delete, "doomed")
    })
    .await;
    let reply = a.recv_record().await;
    assert_eq!(reply.action, RecordAction::DeleteSuccess as i32);
    let seen = b.recv_record().await;
    assert_eq!(
        (seen.action, seen.name.as_deref()),
        (RecordAction::Deleted as i32, Some("doomed"))
    );
    assert_eq!(a.head("doomed").await, -1);
    // Re-created afresh by the next subscriber.
    assert_eq!(a.subscribe("doomed").await.version, Some(0));
}

#[tokio::test]
async fn unsubscribed_clients_receive_nothing() {
    let addr = server().await;
    let mut a = RawClient::connect(&addr).await;
    let mut b = RawClient::connect(&addr).await;
    a.subscribe("u").await;
    b.subscribe("u").await;
    b.send(RecordMessage {
        names: vec!["u".into()],
        correlation_id: Some("x".into()),
        ..RecordMessage::new(RecordAction::Unsubscribe)
    })
    .await;
    let ack = b.recv_record().await;
    assert_eq!(
        (ack.action, ack.is_ack),
        (RecordAction::Unsubscribe as i32, Some(true))
    );
    a.write(update("u", 1, "{}"), Some("1")).await;
    assert!(b.try_recv(Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn json_transport_interoperates_with_binary() {
    let addr = server().await;
    let mut bin = RawClient::connect(&addr).await;
    let mut js = RawClient::connect_to(&addr, "/deepstream-json").await;
    assert_eq!(js.subscribe("j").await.version, Some(0));
    bin.subscribe("j").await;
    bin.write(update("j", 1, r#"{"via":"binary"}"#), None).await;
    let seen = js.recv_record().await;
    assert_eq!(json_value(&seen.data), json!({"via": "binary"}));
    js.write(update("j", 2, r#"{"via":"json"}"#), Some("j1"))
        .await;
    assert_eq!(
        json_value(&bin.recv_record().await.data),
        json!({"via": "json"})
    );
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_harms_nobody_else() {
    let addr = start(|c| c.max_message_size = 4096).await;
    let mut good = RawClient::connect(&addr).await;
    good.subscribe("safe").await;
    let mut bad = RawClient::connect(&addr).await;
    bad.subscribe("safe").await;

    // Garbage bytes: a parser error, and the connection stays usable.
    bad.send_frame(Frame::Binary(vec![0xff, 0xff, 0xff, 0x01, 0x02].into()))
        .await;
    match bad.recv().await {
        Message::Parser(p) => assert_eq!(p.action, ParserAction::MessageParseError as i32),
        other => panic!("expected a parser error, got {other:?}"),
    }
    // Data that is not JSON.
    bad.send(update("safe", 1, "{oops")).await;
    let reply = bad.recv_record().await;
    assert_eq!(reply.action, RecordAction::InvalidMessageData as i32);
    assert!(reply.data.unwrap().contains("not valid JSON"));
    // An invalid path.
    bad.send(patch("safe", 1, "a.__proto__.b", "1")).await;
    assert_eq!(
        bad.recv_record().await.action,
        RecordAction::InvalidMessageData as i32
    );
    // An empty record name.
    bad.send(update("", 1, "{}")).await;
    let reply = bad.recv_record().await;
    assert_eq!(reply.is_error, Some(true));
    // A topic recordsync does not serve.
    bad.send(Message::Other {
        topic: Topic::Rpc as i32,
        action: Some(3),
    })
    .await;
    match bad.recv().await {
        Message::Parser(p) => {
            assert_eq!(p.action, ParserAction::UnknownTopic as i32);
            assert_eq!(p.original_topic, Some(Topic::Rpc as i32));
        }
        other => panic!("expected UNKNOWN_TOPIC, got {other:?}"),
    }
    // A text frame on the binary endpoint closes that socket only.
    bad.send_frame(Frame::Text("hello".into())).await;
    bad.expect_closed().await;

    // The good client saw none of it and still works.
    good.write(update("safe", 1, r#"{"ok":true}"#), Some("ok"))
        .await;
    assert_eq!(good.head("safe").await, 1);
}

/// The next message is MAXIMUM_MESSAGE_SIZE_EXCEEDED naming the limit, and then the
/// server closes with 1009 (message too big), as deepstream closes.
async fn expect_too_large_then_closed(c: &mut RawClient, limit: usize) {
    match c.recv().await {
        Message::Parser(p) => {
            assert_eq!(p.action, ParserAction::MaximumMessageSizeExceeded as i32);
            let text = p.data.unwrap();
            assert!(text.contains(&format!("limit of {limit} bytes")), "{text}");
        }
        other => panic!("expected MAXIMUM_MESSAGE_SIZE_EXCEEDED, got {other:?}"),
    }
    assert_eq!(c.expect_close_code().await, 1009);
}

#[tokio::test]
async fn every_oversized_message_is_answered_and_its_connection_closed() {
    const LIMIT: usize = 4096;
    let addr = start(|c| c.max_message_size = LIMIT).await;
    let mut good = RawClient::connect(&addr).await;
    good.subscribe("sizes").await;
    let pad = |bytes: usize| format!("{{\"x\":\"{}\"}}", "y".repeat(bytes));

    // A message of exactly the limit is served.
    let mut exact = RawClient::connect(&addr).await;
    exact.subscribe("sizes").await;
    let mut m = RecordMessage {
        is_write_ack: Some(true),
        correlation_id: Some("exact".into()),
        ..update("sizes", 1, &pad(0))
    };
    // Length prefixes grow with the data: pad until the frame is exactly the limit.
    let mut padding = LIMIT;
    loop {
        m.data = Some(pad(padding));
        let size = binary::encode(&Message::Record(m.clone())).len();
        if size == LIMIT {
            break;
        }
        padding = padding + LIMIT - size;
    }
    exact.send(m).await;
    let ack = exact.recv_record().await;
    assert_eq!(
        ack.action,
        RecordAction::WriteAcknowledgement as i32,
        "{ack:?}"
    );
    assert_eq!(good.recv_record().await.version, Some(1));

    // Just over the limit, and far over it (tungstenite used to refuse messages over
    // twice the limit by dropping the connection without a word).
    for size in [LIMIT + 1, 3 * LIMIT, 100 * LIMIT] {
        let mut bad = RawClient::connect(&addr).await;
        bad.send_frame(Frame::Binary(vec![0x0a; size].into())).await;
        expect_too_large_then_closed(&mut bad, LIMIT).await;
    }
    // On the JSON endpoint.
    let mut bad = RawClient::connect_to(&addr, "/deepstream-json").await;
    bad.send(update("sizes", 2, &pad(LIMIT))).await;
    expect_too_large_then_closed(&mut bad, LIMIT).await;
    // In fragments, each under the limit.
    let mut bad = RawClient::connect(&addr).await;
    use tokio_tungstenite::tungstenite::protocol::frame::{
        Frame as RawFrame,
        coding::{Data, OpCode},
    };
    for (n, opcode) in [
        OpCode::Data(Data::Binary),
        OpCode::Data(Data::Continue),
        OpCode::Data(Data::Continue),
    ]
    .into_iter()
    .enumerate()
    {
        let fragment = RawFrame::message(vec![0x0a; LIMIT / 2], opcode, n == 2);
        bad.send_frame(Frame::Frame(fragment)).await;
    }
    expect_too_large_then_closed(&mut bad, LIMIT).await;
    // A header announcing a gigabyte is answered at once: the payload is never waited
    // for, so the server cannot be made to buffer it.
    let mut bad = RawClient::connect(&addr).await;
    {
        use tokio::io::AsyncWriteExt;
        let mut header = vec![0x82, 0x80 | 127];
        header.extend_from_slice(&(1u64 << 30).to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        bad.tcp().write_all(&header).await.unwrap();
    }
    expect_too_large_then_closed(&mut bad, LIMIT).await;

    // The other clients saw none of it and still work.
    good.write(update("sizes", 2, r#"{"ok":true}"#), Some("ok"))
        .await;
    assert_eq!(exact.recv_record().await.version, Some(2));
    assert_eq!(good.head("sizes").await, 2);
}

/// Record data and auth data may nest `json::MAX_DEPTH` levels, on both transports, and
/// round-trip exactly; deeper data is refused with an error naming the limit, and the
/// connection stays usable.
#[tokio::test]
async fn json_nested_to_the_limit_is_served_and_deeper_json_refused() {
    use recordsync_core::json::MAX_DEPTH;
    use support::nested_json;
    // 100,000 levels are 500 kB of JSON: within the message limit, so the depth check
    // is what refuses them.
    let addr = start(|c| c.max_message_size = 4 * 1024 * 1024).await;
    let mut bin = RawClient::connect(&addr).await;
    let mut js = RawClient::connect_to(&addr, "/deepstream-json").await;
    bin.subscribe("deep").await;
    js.subscribe("deep").await;

    let at_limit = nested_json(MAX_DEPTH);
    bin.write(update("deep", 1, &at_limit), Some("1")).await;
    let seen = js.recv_record().await;
    assert_eq!(
        seen.data.as_deref(),
        Some(at_limit.as_str()),
        "exactly as sent"
    );
    // Through the JSON endpoint, which also carries `parsedData` as the JS client does.
    let text = format!(
        r#"{{"topic":5,"action":18,"name":"deep","version":2,"data":{},"parsedData":{at_limit},"correlationId":"2","isWriteAck":true}}"#,
        serde_json::Value::String(at_limit.clone())
    );
    js.send_frame(Frame::Text(text.into())).await;
    assert_eq!(
        js.recv_record().await.action,
        RecordAction::WriteAcknowledgement as i32
    );
    assert_eq!(
        bin.recv_record().await.data.as_deref(),
        Some(at_limit.as_str())
    );
    // A path counts: `a.b` puts the data two levels down.
    bin.write(
        patch("deep", 3, "a.b", &nested_json(MAX_DEPTH - 2)),
        Some("3"),
    )
    .await;
    let seen = js.recv_record().await;
    assert_eq!(seen.action, RecordAction::Patch as i32);
    assert_eq!(
        recordsync_core::json::depth(&json_value(&seen.data)),
        MAX_DEPTH - 2
    );
    let mut reader = RawClient::connect(&addr).await;
    reader
        .send(RecordMessage::named(RecordAction::Read, "deep"))
        .await;
    let snapshot = json_value(&reader.recv_record().await.data);
    assert_eq!(recordsync_core::json::depth(&snapshot), MAX_DEPTH);

    // Deeper: refused with the limit named, and nothing changes.
    let refusals = [
        update("deep", 4, &nested_json(MAX_DEPTH + 1)),
        update("deep", 4, &format!("[{}]", nested_json(100_000))),
        patch("deep", 4, "a.b", &nested_json(MAX_DEPTH - 1)),
        RecordMessage {
            version: Some(4),
            data: Some(format!(
                r#"[{{"path":"x","data":{}}}]"#,
                nested_json(MAX_DEPTH)
            )),
            ..RecordMessage::named(RecordAction::PatchMulti, "deep")
        },
    ];
    for c in [&mut bin, &mut js] {
        for m in refusals.clone() {
            c.send(m).await;
            let reply = c.recv_record().await;
            assert_eq!(
                reply.action,
                RecordAction::InvalidMessageData as i32,
                "{reply:?}"
            );
            let text = reply.data.unwrap();
            assert!(text.contains("deeper than 512 levels"), "{text}");
        }
    }
    assert_eq!(bin.head("deep").await, 3);
    js.write(update("deep", 4, "{}"), Some("4")).await;

    // Auth data: deeper than the limit is refused with a reason, and that socket closed.
    let mut login = RawClient::connect_raw(&addr, "/deepstream").await;
    login
        .send(ConnectionMessage {
            action: ConnectionAction::Challenge as i32,
            ..Default::default()
        })
        .await;
    login.recv().await;
    login
        .send(recordsync_deepstream_protocol::AuthMessage {
            action: recordsync_deepstream_protocol::AuthAction::Request as i32,
            data: Some(nested_json(MAX_DEPTH + 1)),
            ..Default::default()
        })
        .await;
    match login.recv().await {
        Message::Auth(m) => {
            assert_eq!(
                m.action,
                recordsync_deepstream_protocol::AuthAction::InvalidMessageData as i32
            );
            assert!(m.data.unwrap().contains("deeper than 512 levels"));
        }
        other => panic!("{other:?}"),
    }
    login.expect_closed().await;
    // At the limit, auth data is taken.
    let mut login = RawClient::connect_raw(&addr, "/deepstream").await;
    login
        .send(ConnectionMessage {
            action: ConnectionAction::Challenge as i32,
            ..Default::default()
        })
        .await;
    login.recv().await;
    login
        .send(recordsync_deepstream_protocol::AuthMessage {
            action: recordsync_deepstream_protocol::AuthAction::Request as i32,
            data: Some(nested_json(MAX_DEPTH)),
            ..Default::default()
        })
        .await;
    match login.recv().await {
        Message::Auth(m) => assert_eq!(
            m.action,
            recordsync_deepstream_protocol::AuthAction::AuthSuccessful as i32
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(bin.head("deep").await, 4);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_without_slowing_others() {
    let addr = start(|c| c.outbound_queue_limit = 16).await;
    let mut writer = RawClient::connect(&addr).await;
    let mut reader = RawClient::connect(&addr).await;
    let mut sleeper = RawClient::connect(&addr).await;
    writer.subscribe("firehose").await;
    reader.subscribe("firehose").await;
    sleeper.subscribe("firehose").await;
    let payload = format!("{{\"pad\":\"{}\"}}", "z".repeat(60_000));
    // The sleeper never reads; its socket buffers and then its queue fill up.
    for v in 1..=400 {
        writer.write(update("firehose", v, &payload), None).await;
        let seen = reader.recv_record().await;
        assert_eq!(seen.version, Some(v));
    }
    sleeper.expect_closed().await;
    writer
        .write(update("firehose", 401, "{}"), Some("last"))
        .await;
    assert_eq!(reader.recv_record().await.version, Some(401));
}

#[tokio::test]
async fn listen_accept_has_provider_and_on_stop() {
    let addr = server().await;
    let mut provider = RawClient::connect(&addr).await;
    let mut subscriber = RawClient::connect(&addr).await;
    provider
        .send(listen_msg(RecordAction::Listen, "^prices/.*", None))
        .await;
    let ack = provider.recv_record().await;
    assert_eq!(
        (ack.action, ack.is_ack, ack.name.as_deref()),
        (RecordAction::Listen as i32, Some(true), Some("^prices/.*"))
    );

    subscriber.subscribe("prices/gold").await;
    let found = provider.recv_record().await;
    assert_eq!(
        found.action,
        RecordAction::SubscriptionForPatternFound as i32
    );
    assert_eq!(
        (found.name.as_deref(), found.subscription.as_deref()),
        (Some("^prices/.*"), Some("prices/gold"))
    );
    provider
        .send(listen_msg(
            RecordAction::ListenAccept,
            "^prices/.*",
            Some("prices/gold"),
        ))
        .await;
    let has = subscriber.recv_record().await;
    assert_eq!(
        (has.action, has.name.as_deref()),
        (
            RecordAction::SubscriptionHasProvider as i32,
            Some("prices/gold")
        )
    );

    // A later subscriber learns of the provider right after its read.
    let mut late = RawClient::connect(&addr).await;
    late.subscribe("prices/gold").await;
    assert_eq!(
        late.recv_record().await.action,
        RecordAction::SubscriptionHasProvider as i32
    );

    // The provider's writes reach the subscribers.
    let set = RecordMessage {
        version: Some(-1),
        data: Some(r#"{"usd":2000}"#.into()),
        ..RecordMessage::named(RecordAction::CreateAndUpdate, "prices/gold")
    };
    provider.write(set, Some("p")).await;
    assert_eq!(
        json_value(&subscriber.recv_record().await.data),
        json!({"usd": 2000})
    );

    // onStop when the last subscriber leaves.
    for c in [&mut subscriber, &mut late] {
        c.send(RecordMessage {
            names: vec!["prices/gold".into()],
            correlation_id: Some("u".into()),
            ..RecordMessage::new(RecordAction::Unsubscribe)
        })
        .await;
    }
    let removed = provider
        .recv_action(RecordAction::SubscriptionForPatternRemoved)
        .await;
    assert_eq!(removed.subscription.as_deref(), Some("prices/gold"));
}

#[tokio::test]
async fn a_rejected_match_goes_to_another_listener_and_existing_subscriptions_reach_new_listeners()
{
    let addr = server().await;
    let mut subscriber = RawClient::connect(&addr).await;
    subscriber.subscribe("feeds/a").await;
    // A listener that arrives later is offered the existing subscription.
    let mut first = RawClient::connect(&addr).await;
    first
        .send(listen_msg(RecordAction::Listen, "feeds/", None))
        .await;
    let found = first
        .recv_action(RecordAction::SubscriptionForPatternFound)
        .await;
    assert_eq!(found.subscription.as_deref(), Some("feeds/a"));
    let mut second = RawClient::connect(&addr).await;
    second
        .send(listen_msg(RecordAction::Listen, "feeds/.*", None))
        .await;
    assert_eq!(second.recv_record().await.is_ack, Some(true));
    first
        .send(listen_msg(
            RecordAction::ListenReject,
            "feeds/",
            Some("feeds/a"),
        ))
        .await;
    let found = second
        .recv_action(RecordAction::SubscriptionForPatternFound)
        .await;
    assert_eq!(
        (found.name.as_deref(), found.subscription.as_deref()),
        (Some("feeds/.*"), Some("feeds/a"))
    );
    second
        .send(listen_msg(
            RecordAction::ListenAccept,
            "feeds/.*",
            Some("feeds/a"),
        ))
        .await;
    assert_eq!(
        subscriber.recv_record().await.action,
        RecordAction::SubscriptionHasProvider as i32
    );

    // The provider goes away: the subscriber hears it, and the match is offered again.
    drop(second);
    assert_eq!(
        subscriber.recv_record().await.action,
        RecordAction::SubscriptionHasNoProvider as i32
    );
    let found = first
        .recv_action(RecordAction::SubscriptionForPatternFound)
        .await;
    assert_eq!(found.subscription.as_deref(), Some("feeds/a"));
}

#[tokio::test]
async fn invalid_listen_patterns_are_refused() {
    let addr = server().await;
    let mut c = RawClient::connect(&addr).await;
    for pattern in ["(unclosed", "(?<=lookbehind)x", "a{99999999}"] {
        c.send(listen_msg(RecordAction::Listen, pattern, None))
            .await;
        let reply = c.recv_record().await;
        assert_eq!(
            reply.action,
            RecordAction::InvalidListenRegex as i32,
            "{pattern:?}: {reply:?}"
        );
        assert_eq!(reply.name.as_deref(), Some(pattern));
    }
    // The connection still works.
    assert_eq!(c.head("x").await, -1);
}
