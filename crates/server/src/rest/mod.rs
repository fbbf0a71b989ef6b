//! The REST API under `/v1`: records read, written, listed, watched and looked up in
//! their history over plain HTTP, described by the OpenAPI 3.1 document at
//! `/v1/openapi.json` (`docs/rest.md` is its guide).
//!
//! - [`route`]      — which endpoint a path names ([`route::ROUTES`], the one list of
//!   endpoints and methods), record names taken from the raw path.
//! - [`query`]      — query parameters, read strictly.
//! - [`auth`]       — who the request is: a bearer token, Basic credentials, or nobody.
//! - [`guard`]      — the permission rules on each request, as deepstream's requests.
//! - [`body`]       — a JSON request body: media type, size, encoding, nesting.
//! - [`conditions`] — versions as ETags; `If-Match`, `If-None-Match`.
//! - [`read`]       — a record's value now, at a path, at a version or time.
//! - [`write`]      — `PUT`, `PATCH` (path writes), `DELETE`, versioned or not.
//! - [`history`]    — a record's journal, a page at a time.
//! - [`list`]       — record names with versions, by prefix, with opaque cursors.
//! - [`stream`]     — server-sent events of a record's changes, resumable.
//! - [`export`]     — a backup in `recordsync export`'s dump format, from one snapshot.
//! - [`openapi`]    — the OpenAPI document (a checked-in JSON file).
//! - [`errors`]     — [`errors::RestError`]: each refusal's status, code and message.
//!
//! Like every front door, it only translates: reads, writes and subscriptions are the
//! engine's, so a REST write reaches deepstream and ShareDB subscribers of the record,
//! and a stream sees their writes. Values go through as the engine keeps them (JSON text,
//! numbers and key order as written).

pub mod auth;
pub mod body;
pub mod conditions;
pub mod errors;
pub mod export;
pub mod guard;
pub mod history;
pub mod list;
pub mod openapi;
pub mod query;
pub mod read;
pub mod route;
pub mod stream;
pub mod write;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};

use self::conditions::Conditions;
use self::errors::RestError;
use self::guard::Guard;
use self::query::Query;
use self::read::Which;
use self::route::Route;
use crate::ServerState;
use crate::net::http_connection::HttpConnection;

/// The REST API's settings (the config file's `rest` section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestConfig {
    /// The largest request body, in bytes (`rest.maxBodySize`).
    pub max_body: usize,
    /// The most entries a page of a listing or a history holds (`rest.maxPageSize`).
    pub max_page: u64,
}

impl Default for RestConfig {
    fn default() -> Self {
        RestConfig {
            max_body: 1024 * 1024,
            max_page: 1000,
        }
    }
}

/// The methods a preflight allows, and the request headers.
const METHODS: &str = "GET, HEAD, PUT, PATCH, DELETE";
const HEADERS: &str = "Authorization, Content-Type, Accept, If-Match, If-None-Match, Last-Event-ID";
/// The answer headers a page may read besides the simple ones.
const EXPOSED: &str = "ETag, Allow, WWW-Authenticate";

/// Serves every request under `/v1`: counts it, checks its origin (CORS, with the
/// server's `allowAllOrigins`, `origins` and `hostUrl`, see [`crate::cors`]), answers a
/// preflight, and adds the CORS headers to the answer.
pub async fn serve(State(state): State<Arc<ServerState>>, req: Request) -> Response {
    metrics::counter!("recordsync_messages_in_total", "protocol" => "rest", "kind" => kind(&req))
        .increment(1);
    let cors = match state.config.cors.check_cross_origin(req.headers()) {
        Ok(cors) => cors,
        Err(refusal) => return RestError::ForbiddenOrigin(refusal).into_response(),
    };
    let mut response = if req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(axum::http::header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        preflight()
    } else {
        match handle(&state, req).await {
            Ok(response) => response,
            Err(refusal) => refusal.into_response(),
        }
    };
    if !cors.is_empty() {
        let h = response.headers_mut();
        h.extend(cors);
        h.insert(
            axum::http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
            axum::http::HeaderValue::from_static(EXPOSED),
        );
    }
    response
}

/// A CORS preflight: the methods and headers the REST API takes (the origin was checked
/// already); browsers may keep the answer for ten minutes.
fn preflight() -> Response {
    let mut response = crate::cors::preflight(METHODS, HEADERS);
    response.headers_mut().insert(
        axum::http::header::ACCESS_CONTROL_MAX_AGE,
        axum::http::HeaderValue::from_static("600"),
    );
    response
}

/// The `kind` label of a request in `recordsync_messages_in_total{protocol="rest"}`.
fn kind(req: &Request) -> &'static str {
    let Ok(route) = Route::parse(req.uri().path()) else {
        return "unknown";
    };
    match (route, req.method().as_str()) {
        (_, "OPTIONS") => "preflight",
        (Route::OpenApi, _) => "openapi",
        (Route::Records, _) => "list",
        (Route::History(_), _) => "history",
        (Route::Export, _) => "export",
        (Route::Record(_), "PUT") => "put",
        (Route::Record(_), "PATCH") => "patch",
        (Route::Record(_), "DELETE") => "delete",
        (Route::Record(_), _) if stream::wants_events(req.headers()) => "stream",
        (Route::Record(_), _) => "read",
    }
}

async fn handle(state: &Arc<ServerState>, req: Request) -> Result<Response, RestError> {
    let Some(config) = state.config.rest.clone() else {
        return Err(RestError::NoRoute {
            path: req.uri().path().to_owned(),
        });
    };
    let route = Route::parse(req.uri().path())?;
    if !route.allows(req.method().as_str()) {
        return Err(RestError::MethodNotAllowed {
            method: req.method().to_string(),
            allowed: route.allowed(),
        });
    }
    let mut query = Query::parse(req.uri().query());
    if route == Route::OpenApi {
        query.finish()?;
        return Ok(openapi::response());
    }
    let access_token = query.take("access_token")?;
    if access_token.is_some()
        && !(matches!(route, Route::Record(_))
            && req.method() == Method::GET
            && stream::wants_events(req.headers()))
    {
        return Err(RestError::BadParameter {
            param: "access_token",
            reason: "only for event streams (which a browser's EventSource opens without \
                     headers): send `Authorization: Bearer <token>` instead"
                .into(),
        });
    }
    let user = auth::user(state, req.headers(), access_token.as_deref()).await?;
    let guard = Guard { state, user };
    match route {
        Route::OpenApi => Ok(openapi::response()),
        Route::Export => {
            let prefix = query.take("prefix")?.unwrap_or_default();
            let history = query.take_bool("history")?.unwrap_or(false);
            query.finish()?;
            export::dump(state.clone(), guard.user, &prefix, history).await
        }
        Route::Records => {
            let prefix = query.take("prefix")?.unwrap_or_default();
            let limit = page_limit(&mut query, list::DEFAULT_LIMIT, &config)?;
            let cursor = query.take("cursor")?;
            query.finish()?;
            list::page(&guard, &prefix, cursor.as_deref(), limit).await
        }
        Route::History(name) => {
            let from = query.take_u64("from")?.unwrap_or(0);
            let to = query.take_u64("to")?.unwrap_or(u64::MAX);
            let limit = page_limit(&mut query, history::DEFAULT_LIMIT, &config)?;
            query.finish()?;
            history::page(&guard, &name, from, to, limit).await
        }
        Route::Record(name) => match *req.method() {
            Method::PUT => {
                query.finish()?;
                write::put(&guard, &name, req, config.max_body).await
            }
            Method::PATCH => {
                query.finish()?;
                write::patch(&guard, &name, req, config.max_body).await
            }
            Method::DELETE => {
                query.finish()?;
                let conditions = Conditions::from_headers(req.headers())?;
                write::delete(&guard, &name, conditions).await
            }
            // GET and HEAD (route.allows let nothing else through)
            _ => {
                let path = query.take("path")?;
                let version = query.take_u64("version")?;
                let at = query.take_time("at")?;
                query.finish()?;
                let which = match (version, at) {
                    (None, None) => Which::Current,
                    (Some(v), None) => Which::Version(v),
                    (None, Some(t)) => Which::At(t),
                    (Some(_), Some(_)) => {
                        return Err(RestError::BadParameter {
                            param: "version",
                            reason: "give either `version` or `at`, not both".into(),
                        });
                    }
                };
                if req.method() == Method::GET && stream::wants_events(req.headers()) {
                    if which != Which::Current {
                        return Err(RestError::BadParameter {
                            param: "query",
                            reason: "an event stream follows the record from now on: \
                                     `version` and `at` do not apply to it (resume with \
                                     Last-Event-ID)"
                                .into(),
                        });
                    }
                    let at_path = path.as_deref().map(read::parse_path).transpose()?;
                    let connection = req.extensions().get::<HttpConnection>().cloned();
                    return stream::open(
                        &guard,
                        &name,
                        at_path.map(|(p, _)| p),
                        req.headers(),
                        connection,
                    )
                    .await;
                }
                read::value(&guard, &name, which, path.as_deref(), req.headers()).await
            }
        },
    }
}

/// The `limit` parameter of a page: `default` when absent, at most `rest.maxPageSize`.
fn page_limit(query: &mut Query, default: u64, config: &RestConfig) -> Result<u64, RestError> {
    match query.take_u64("limit")? {
        None => Ok(default.min(config.max_page)),
        Some(0) => Err(RestError::BadParameter {
            param: "limit",
            reason: "must be 1 or more".into(),
        }),
        Some(n) if n > config.max_page => Err(RestError::BadParameter {
            param: "limit",
            reason: format!(
                "at most {} (the server's rest.maxPageSize)",
                config.max_page
            ),
        }),
        Some(n) => Ok(n),
    }
}
