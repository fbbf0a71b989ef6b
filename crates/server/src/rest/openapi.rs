//! The OpenAPI 3.1 document of the REST API, served at `/v1/openapi.json`.
//!
//! It is written by hand (`openapi.json`, beside this file) and compiled in: the document
//! is the API's contract, reviewed as such, and a test below checks that it describes
//! exactly the endpoints and methods [`super::route::ROUTES`] serves. Schemathesis fuzzes
//! the server against it (`scripts/fuzz-rest.sh`).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// `GET /v1/openapi.json`.
pub fn response() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::super::route::{ROUTES, Route};
    use super::*;

    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    /// Every (path, method) the document describes is one the router serves, and every
    /// one the router serves is described.
    #[test]
    fn the_document_describes_exactly_the_routes_served() {
        let doc: Value = serde_json::from_str(DOCUMENT).expect("the document is JSON");
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..4]), Some("3.1."));
        let mut described = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in METHODS {
                if item.get(method).is_some() {
                    described.insert((path.clone(), method.to_ascii_uppercase()));
                }
            }
        }
        let served: BTreeSet<(String, String)> = ROUTES
            .iter()
            .flat_map(|(path, methods)| {
                methods
                    .iter()
                    .map(move |m| ((*path).to_owned(), (*m).to_owned()))
            })
            .collect();
        assert_eq!(described, served);
        // and each template is what the router makes of a path of that shape
        for (template, methods) in ROUTES {
            let path = template.replace("{name}", "books/1");
            let route = Route::parse(&path).expect("a served path parses");
            assert_eq!(route.template(), *template);
            for m in *methods {
                assert!(route.allows(m), "{template} {m}");
            }
            for m in METHODS.map(str::to_ascii_uppercase) {
                if !methods.contains(&m.as_str()) && m != "HEAD" {
                    assert!(!route.allows(&m), "{template} does not serve {m}");
                }
            }
        }
    }
}
