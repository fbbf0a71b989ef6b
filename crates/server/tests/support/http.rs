//! Plain HTTP requests for the HTTP API's black-box tests.

use reqwest::header::CONTENT_TYPE;

/// An answer: status, content type and body text.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub text: String,
}

impl Answer {
    /// The body as JSON (deepstream ends it with a blank line).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.text.trim_end()).expect("a JSON answer")
    }
}

/// Sends `method` to `http://{addr}{path}` with `body` (and `content_type`, if any).
pub async fn request(
    addr: &str,
    method: reqwest::Method,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Answer {
    let client = reqwest::Client::new();
    let mut req = client
        .request(method, format!("http://{addr}{path}"))
        .body(body);
    if let Some(ct) = content_type {
        req = req.header(CONTENT_TYPE, ct);
    }
    let res = tokio::time::timeout(super::TIMEOUT, req.send())
        .await
        .expect("answered in time")
        .expect("an HTTP answer");
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = res.text().await.expect("a body");
    Answer {
        status,
        content_type,
        text,
    }
}

/// POSTs `body` as JSON to `path`.
pub async fn post_json(addr: &str, path: &str, body: impl Into<reqwest::Body>) -> Answer {
    request(
        addr,
        reqwest::Method::POST,
        path,
        Some("application/json"),
        body,
    )
    .await
}

/// POSTs `body` as JSON in chunks of `chunk` bytes (chunked transfer encoding, no
/// length), on a raw connection; returns the whole answer as text, headers included. The
/// server may answer and close before the body is all sent: failed writes end the sending.
pub async fn post_chunked(addr: &str, path: &str, body: &[u8], chunk: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let mut sent = tcp.write_all(head.as_bytes()).await;
    for piece in body.chunks(chunk) {
        if sent.is_err() {
            break;
        }
        let mut frame = format!("{:x}\r\n", piece.len()).into_bytes();
        frame.extend_from_slice(piece);
        frame.extend_from_slice(b"\r\n");
        sent = tcp.write_all(&frame).await;
    }
    if sent.is_ok() {
        let _ = tcp.write_all(b"0\r\n\r\n").await;
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(super::TIMEOUT, tcp.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    // the body of a chunked answer: drop the chunk sizes around it
    match text.split_once("\r\n\r\n") {
        Some((headers, rest))
            if headers
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked") =>
        {
            let mut body = String::new();
            let mut rest = rest;
            while let Some((size, after)) = rest.split_once("\r\n") {
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                if n == 0 || after.len() < n {
                    break;
                }
                body.push_str(&after[..n]);
                rest = after[n..].trim_start_matches("\r\n");
            }
            format!("{headers}\r\n\r\n{body}")
        }
        _ => text,
    }
}
