//! The web console (`/console` by default): a small browser app, served from the binary,
//! that browses, watches, edits and deletes records and shows the server's rates.
//!
//! The app is plain HTML, CSS and JavaScript modules checked in under `crates/server/console/`
//! and compiled in ([`ASSETS`]): no build step and nothing fetched from elsewhere. It has no
//! API of its own; it calls the REST API (`/v1`), `POST /api/auth` for a token and the
//! metrics, as any client would, so the permission rules decide what it shows. The one
//! thing it is told by this module is where those are: `settings.json`, made from the
//! configuration (paths are configurable; a part that is switched off is `null`).
//!
//! Every answer carries a Content-Security-Policy that allows scripts, styles and requests
//! from this origin only: with record names and values on the page, a value that slipped
//! into markup could not run code or send data away.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use crate::ServerState;

/// One file of the app: its name under the console's path, its content type, its bytes.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// Every file the console is made of; `index.html` is also served at the path itself.
pub const ASSETS: &[Asset] = &[
    asset(
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../console/index.html"),
    ),
    asset(
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../console/console.css"),
    ),
    asset(
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/app.js"),
    ),
    asset(
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/api.js"),
    ),
    asset(
        "metrics.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/metrics.js"),
    ),
    asset(
        "dom.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/dom.js"),
    ),
];

const fn asset(name: &'static str, content_type: &'static str, body: &'static [u8]) -> Asset {
    Asset {
        name,
        content_type,
        body,
    }
}

/// Scripts, styles, images and requests from this origin only; no plugins, no framing.
const CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; \
                   base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/// `GET {path}`: the app lives under `{path}/`, so that its files' relative URLs resolve.
pub async fn redirect(State(state): State<Arc<ServerState>>) -> Response {
    match &state.config.console_path {
        Some(path) => Redirect::permanent(&format!("{path}/")).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET {path}/`: the page.
pub async fn index(state: State<Arc<ServerState>>) -> Response {
    file(state, Path("index.html".to_owned())).await
}

/// `GET {path}/{file}`: a file of the app, or `settings.json`.
pub async fn file(State(state): State<Arc<ServerState>>, Path(name): Path<String>) -> Response {
    let mut response = if name == "settings.json" {
        settings(&state)
    } else {
        match ASSETS.iter().find(|a| a.name == name) {
            Some(a) => ([(header::CONTENT_TYPE, a.content_type)], a.body).into_response(),
            None => (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "The console has no such file.\n",
            )
                .into_response(),
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The app is part of the binary: a new server version may bring new files.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Where the app finds the APIs it uses: the REST API's base, the login endpoint (`null`:
/// none, credentials go as `Authorization: Basic`) and the metrics (`null`: not served).
fn settings(state: &ServerState) -> Response {
    let config = &state.config;
    let auth = config
        .http_api
        .as_ref()
        .filter(|api| api.enable_auth_endpoint)
        .map(|api| api.auth_path.clone());
    let body = json!({
        "rest": "/v1",
        "auth": auth,
        "metrics": config.metrics_path,
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
