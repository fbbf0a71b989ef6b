//! `did:web` resolved over real HTTP on the loopback interface with [`ReqwestFetcher`]:
//! the document found where the DID says, its nodes read; a missing document, an
//! oversized one, another DID's, and a redirect off this machine each refused.
//!
//! The server is a few lines of HTTP/1.1 on a tokio listener (one canned answer per
//! path), so that the test needs nothing but loopback.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::collections::HashMap;
use std::sync::Arc;

use recordsync_identity::{
    DEFAULT_FETCH_TIMEOUT, Did, MAX_WEB_DOCUMENT, ReqwestFetcher, ResolveError, Resolver,
};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// Serves `answers` (path → full HTTP response) on 127.0.0.1; unknown paths get a 404.
/// Returns the port.
async fn serve(answers: impl Fn(u16) -> HashMap<String, String> + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let answers = Arc::new(answers(port));
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let answers = answers.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let path = text.split_whitespace().nth(1).unwrap_or("").to_owned();
                let answer = answers.get(&path).cloned().unwrap_or_else(|| {
                    "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        .to_owned()
                });
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    port
}

fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn resolver() -> Resolver {
    Resolver::offline().with_web_fetcher(Arc::new(
        ReqwestFetcher::new(DEFAULT_FETCH_TIMEOUT).unwrap(),
    ))
}

#[tokio::test]
async fn a_did_web_on_loopback_resolves_over_plain_http() {
    let port = serve(|port| {
        let document = json!({
            "id": format!("did:web:127.0.0.1%3A{port}:users:alice"),
            "service": [{"id": "#dwn", "type": "DecentralizedWebNode",
                         "serviceEndpoint": ["http://127.0.0.1:6020", "https://node.example/"]}],
        });
        HashMap::from([(
            "/users/alice/did.json".to_owned(),
            ok(&document.to_string()),
        )])
    })
    .await;
    let did: Did = format!("did:web:127.0.0.1%3A{port}:users:alice")
        .parse()
        .unwrap();
    let document = resolver().resolve(&did).await.unwrap();
    let nodes: Vec<String> = document
        .node_endpoints()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(nodes, ["http://127.0.0.1:6020/", "https://node.example/"]);
}

#[tokio::test]
async fn missing_oversized_foreign_and_redirected_documents_are_refused() {
    let port = serve(|port| {
        let big = format!(
            "{{\"id\":\"did:web:127.0.0.1%3A{port}:big\",\"x\":\"{}\"}}",
            "a".repeat(MAX_WEB_DOCUMENT)
        );
        HashMap::from([
            ("/big/did.json".to_owned(), ok(&big)),
            (
                "/other/did.json".to_owned(),
                ok(&json!({"id": "did:web:example.com"}).to_string()),
            ),
            (
                "/away/did.json".to_owned(),
                // A redirect over plain HTTP to a host that is not loopback: refused by
                // the policy (its message names HTTPS). 0.0.0.0 is not a loopback
                // address, yet a connection to it would stay on this machine, so even a
                // broken policy sends nothing off it.
                "HTTP/1.1 302 Found\r\nlocation: http://0.0.0.0:9/did.json\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned(),
            ),
        ])
    })
    .await;
    let did = |path: &str| -> Did {
        format!("did:web:127.0.0.1%3A{port}:{path}")
            .parse()
            .unwrap()
    };
    let resolver = resolver();

    let error = resolver.resolve(&did("nobody")).await.unwrap_err();
    assert!(matches!(error, ResolveError::Fetch { .. }), "{error}");
    assert!(error.to_string().contains("404"), "{error}");

    let error = resolver.resolve(&did("big")).await.unwrap_err();
    assert!(error.to_string().contains("larger than"), "{error}");

    let error = resolver.resolve(&did("other")).await.unwrap_err();
    assert!(matches!(error, ResolveError::WrongDid { .. }), "{error}");

    let error = resolver.resolve(&did("away")).await.unwrap_err();
    assert!(matches!(error, ResolveError::Fetch { .. }), "{error}");
    assert!(error.to_string().contains("HTTPS"), "{error}");
}
