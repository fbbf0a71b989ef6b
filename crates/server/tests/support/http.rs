//! Plain HTTP requests for the HTTP API's black-box tests.

use reqwest::header::CONTENT_TYPE;

/// An answer: status, content type, headers and body text.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
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
    answer(req).await
}

/// Sends `req` and reads the whole answer, within the tests' timeout.
async fn answer(req: reqwest::RequestBuilder) -> Answer {
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
    let headers = res.headers().clone();
    let text = res.text().await.expect("a body");
    Answer {
        status,
        content_type,
        headers,
        text,
    }
}

impl Answer {
    /// A header's value as text (`None` when absent).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends `method` to `http://{addr}{path}` with `headers` and, if any, a JSON `body`
/// (`Content-Type: application/json` unless `headers` names one); for the REST API.
pub async fn send(
    addr: &str,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let client = reqwest::Client::new();
    let mut req = client.request(method, format!("http://{addr}{path}"));
    let mut typed = false;
    for (name, value) in headers {
        typed |= name.eq_ignore_ascii_case("content-type");
        req = req.header(*name, *value);
    }
    if let Some(body) = body {
        if !typed {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        req = req.body(body.to_owned());
    }
    answer(req).await
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

/// A client of a text/event-stream answer, reading it event by event.
pub struct EventStream {
    res: reqwest::Response,
    buffer: String,
}

impl EventStream {
    /// GETs `path` with `Accept: text/event-stream` and `headers`.
    pub async fn open(addr: &str, path: &str, headers: &[(&str, &str)]) -> EventStream {
        let mut req = reqwest::Client::new()
            .get(format!("http://{addr}{path}"))
            .header("accept", "text/event-stream");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = tokio::time::timeout(super::TIMEOUT, req.send())
            .await
            .expect("answered in time")
            .expect("an HTTP answer");
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.headers().get(CONTENT_TYPE).unwrap(),
            "text/event-stream"
        );
        EventStream {
            res,
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped); panics after the test timeout or at the end.
    pub async fn next(&mut self) -> Event {
        self.try_next(super::TIMEOUT)
            .await
            .expect("an event in time")
    }

    /// The next event, or `None` when nothing came within `wait` or the stream ended.
    pub async fn try_next(&mut self, wait: std::time::Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event {
                    id: None,
                    event: "message".into(),
                    data: String::new(),
                };
                let mut any = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        event.id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event.event = v.to_owned();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        if !event.data.is_empty() {
                            event.data.push('\n');
                        }
                        event.data.push_str(v);
                        any = true;
                    }
                }
                if any {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.res.chunk())
                .await
                .ok()?
                .ok()??;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("events are UTF-8"));
        }
    }

    /// Whether the server ended the stream (or the connection) within `wait`.
    pub async fn ends_within(&mut self, wait: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.res.chunk()).await {
                Err(_) => return false,
                Ok(Ok(Some(_))) => continue,
                Ok(Ok(None) | Err(_)) => return true,
            }
        }
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
    send_chunked(addr, "POST", path, body, chunk).await
}

/// [`post_chunked`] with another method.
pub async fn send_chunked(
    addr: &str,
    method: &str,
    path: &str,
    body: &[u8],
    chunk: usize,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
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
