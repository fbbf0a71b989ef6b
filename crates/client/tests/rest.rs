//! The Rust client and recordsync's REST API on one record: a REST write reaches the
//! client's live subscription (numbers as written), and the client's write is what REST
//! reads next. (The REST API itself is tested in the server's `tests/rest.rs`.)

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

#[macro_use]
mod support;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use recordsync_client::uid;
use support::{Target, TestServer, until, within};

/// One HTTP/1.1 request on a fresh connection: the status and the body.
async fn http(server: &TestServer, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    within("the HTTP answer", tcp.read_to_string(&mut answer))
        .await
        .unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_writes_reach_a_subscribed_client_and_back() {
    let server = TestServer::start(Target::Recordsync);
    let name = format!("rest/{}", uid());
    let path = format!("/v1/records/{name}");
    let client = server.client().await;
    let record = client.record(&name);
    within("ready", record.when_ready()).await.unwrap();
    let mut values = record.subscribe("").unwrap();

    let (status, _) = http(&server, "PUT", &path, r#"{"price":1.50,"n":1}"#).await;
    assert_eq!(status, 200);
    until("the PUT", &mut values, |v| v.get("n") == Some(&json!(1))).await;
    let (status, _) = http(&server, "PATCH", &path, r#"{"path":"n","value":2}"#).await;
    assert_eq!(status, 200);
    until("the PATCH", &mut values, |v| v.get("n") == Some(&json!(2))).await;
    // the number is the text the REST client wrote
    let price: Value = serde_json::from_str("1.50").unwrap();
    assert_eq!(record.get("price"), Some(price));

    within("the client's write", record.set_with_ack("by", "client"))
        .await
        .unwrap();
    let (status, body) = http(&server, "GET", &path, "").await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"price":1.50,"n":2,"by":"client"}"#)
    );
    server.stop();
}
