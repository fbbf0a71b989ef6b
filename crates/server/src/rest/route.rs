//! Which endpoint a request's path names.
//!
//! Record names contain `/` (`collection/id`), so everything after `/v1/records/` is the
//! name, taken from the path as sent and percent-decoded here (not by the router, so that
//! an encoded `%2F` stays part of the name). A path ending in `/history` is the record's
//! history: a record whose name itself ends in `/history` is reached by encoding that
//! slash (`/v1/records/a%2Fhistory`, its history `/v1/records/a%2Fhistory/history`).
//!
//! [`ROUTES`] is the one list of endpoints and methods: the dispatcher answers exactly
//! these, and a test checks that the OpenAPI document describes exactly these.

use percent_encoding::percent_decode_str;

use super::errors::RestError;

/// An endpoint of the REST API, with the record it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v1/openapi.json`: the OpenAPI document.
    OpenApi,
    /// `/v1/records`: listing.
    Records,
    /// `/v1/records/{name}`: a record's value.
    Record(String),
    /// `/v1/records/{name}/history`: its journal.
    History(String),
    /// `/v1/export`: a backup of the records, from one snapshot.
    Export,
}

/// Every endpoint: its OpenAPI path template and the methods it answers (`HEAD` is
/// answered wherever `GET` is, as HTTP requires, and is not listed).
pub const ROUTES: &[(&str, &[&str])] = &[
    ("/v1/openapi.json", &["GET"]),
    ("/v1/records", &["GET"]),
    ("/v1/records/{name}", &["GET", "PUT", "PATCH", "DELETE"]),
    ("/v1/records/{name}/history", &["GET"]),
    ("/v1/export", &["GET"]),
];

const RECORDS: &str = "/v1/records";
const HISTORY: &str = "/history";

impl Route {
    /// The endpoint of `path` (as sent, percent-encoded); `NoRoute` for any other path.
    pub fn parse(path: &str) -> Result<Route, RestError> {
        let no_route = || RestError::NoRoute {
            path: path.to_owned(),
        };
        if path == "/v1/openapi.json" {
            return Ok(Route::OpenApi);
        }
        if path == RECORDS {
            return Ok(Route::Records);
        }
        if path == "/v1/export" {
            return Ok(Route::Export);
        }
        let Some(rest) = path
            .strip_prefix(RECORDS)
            .and_then(|rest| rest.strip_prefix('/'))
        else {
            return Err(no_route());
        };
        match rest.strip_suffix(HISTORY) {
            Some(name) if !name.is_empty() => Ok(Route::History(decode(name)?)),
            _ => Ok(Route::Record(decode(rest)?)),
        }
    }

    /// The OpenAPI path template of this endpoint.
    pub fn template(&self) -> &'static str {
        let index = match self {
            Route::OpenApi => 0,
            Route::Records => 1,
            Route::Record(_) => 2,
            Route::History(_) => 3,
            Route::Export => 4,
        };
        ROUTES[index].0
    }

    /// The methods this endpoint answers, as an `Allow` header lists them.
    pub fn allowed(&self) -> &'static str {
        match self {
            Route::Record(_) => "GET, HEAD, PUT, PATCH, DELETE",
            _ => "GET, HEAD",
        }
    }

    /// Whether `method` is one this endpoint answers.
    pub fn allows(&self, method: &str) -> bool {
        let template = self.template();
        ROUTES
            .iter()
            .filter(|(t, _)| *t == template)
            .any(|(_, methods)| {
                methods.contains(&method) || (method == "HEAD" && methods.contains(&"GET"))
            })
    }
}

/// A name from the path, percent-decoded.
fn decode(raw: &str) -> Result<String, RestError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|name| name.into_owned())
        .map_err(|e| RestError::BadParameter {
            param: "name",
            reason: format!("the percent-decoded record name is not UTF-8: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_their_slashes_and_encoded_slashes() {
        assert_eq!(Route::parse("/v1/records").ok(), Some(Route::Records));
        assert_eq!(
            Route::parse("/v1/records/books/1").ok(),
            Some(Route::Record("books/1".into()))
        );
        assert_eq!(
            Route::parse("/v1/records/books%2F1/history").ok(),
            Some(Route::History("books/1".into()))
        );
        assert_eq!(
            Route::parse("/v1/records/a%2Fhistory").ok(),
            Some(Route::Record("a/history".into()))
        );
        assert_eq!(
            Route::parse("/v1/records/caf%C3%A9").ok(),
            Some(Route::Record("café".into()))
        );
        assert_eq!(
            Route::parse("/v1/records/").ok(),
            Some(Route::Record(String::new()))
        );
        assert!(matches!(
            Route::parse("/v1/records/%FF"),
            Err(RestError::BadParameter { param: "name", .. })
        ));
        assert!(matches!(
            Route::parse("/v1/nothing"),
            Err(RestError::NoRoute { .. })
        ));
        assert!(matches!(
            Route::parse("/v1/recordsx"),
            Err(RestError::NoRoute { .. })
        ));
    }

    #[test]
    fn methods_follow_the_route_table() {
        let record = Route::Record("a".into());
        for m in ["GET", "HEAD", "PUT", "PATCH", "DELETE"] {
            assert!(record.allows(m), "{m}");
        }
        assert!(!record.allows("POST"));
        assert!(Route::Records.allows("HEAD") && !Route::Records.allows("PUT"));
        assert!(!Route::History("a".into()).allows("DELETE"));
    }
}
