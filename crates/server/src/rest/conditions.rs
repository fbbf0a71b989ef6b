//! Versions as entity tags, and the conditional headers of a request.
//!
//! A record's REST version is its engine version (`recordsync_engine::EngineVersion`'s
//! `version`): it counts every op of the record, creates and deletes included, and never
//! repeats, so a strong ETag `"N"` names exactly one state of the record, across deletes
//! and re-creates (deepstream's own versions restart at each create, and would not).
//!
//! `If-Match: "N"` (or a list of tags, or `*`) makes a write or delete conditional on the
//! record being at one of those versions (`*`: existing at all); `If-None-Match: *` on a
//! write, on the record not existing. A `GET` with `If-None-Match` naming the current
//! version is answered 304.

use axum::http::{HeaderMap, header};

use super::errors::RestError;

/// The ETag of version `version`.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// What an `If-Match` or `If-None-Match` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tags {
    /// `*`: any version (the record exists).
    Any,
    /// These versions (tags that are not a version of ours, weak ones among them, name
    /// none and are left out: they never match).
    Versions(Vec<u64>),
}

impl Tags {
    /// Whether the record, at `current` (`None`: missing), matches.
    pub fn matches(&self, current: Option<u64>) -> bool {
        match (self, current) {
            (_, None) => false,
            (Tags::Any, Some(_)) => true,
            (Tags::Versions(list), Some(v)) => list.contains(&v),
        }
    }
}

/// The request's conditions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    pub if_match: Option<Tags>,
    pub if_none_match: Option<Tags>,
}

impl Conditions {
    pub fn from_headers(headers: &HeaderMap) -> Result<Conditions, RestError> {
        Ok(Conditions {
            if_match: tags(headers, header::IF_MATCH, "If-Match")?,
            if_none_match: tags(headers, header::IF_NONE_MATCH, "If-None-Match")?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.if_match.is_none() && self.if_none_match.is_none()
    }

    /// Checks the conditions of a write against the record's version (`None`: missing).
    pub fn check_write(&self, current: Option<u64>) -> Result<(), RestError> {
        if let Some(tags) = &self.if_match
            && !tags.matches(current)
        {
            let reason = match current {
                None => "If-Match: the record does not exist".to_owned(),
                Some(v) => format!("If-Match: the record is at version {v}"),
            };
            return Err(RestError::PreconditionFailed { reason, current });
        }
        if let Some(tags) = &self.if_none_match
            && tags.matches(current)
        {
            return Err(RestError::PreconditionFailed {
                reason: format!(
                    "If-None-Match: the record exists at version {}",
                    current.unwrap_or_default()
                ),
                current,
            });
        }
        Ok(())
    }
}

/// Reads one conditional header: `*`, or a comma-separated list of entity tags.
fn tags(
    headers: &HeaderMap,
    name: header::HeaderName,
    label: &'static str,
) -> Result<Option<Tags>, RestError> {
    let mut values = headers.get_all(name).iter().peekable();
    if values.peek().is_none() {
        return Ok(None);
    }
    let mut list = Vec::new();
    for value in values {
        let text = value.to_str().map_err(|_| RestError::BadHeader {
            header: label,
            reason: "it is not ASCII text".into(),
        })?;
        for tag in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if tag == "*" {
                return Ok(Some(Tags::Any));
            }
            if tag.starts_with("W/") {
                // weak tags never match strongly; ours are all strong
                continue;
            }
            let inner = tag
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .ok_or_else(|| RestError::BadHeader {
                    header: label,
                    reason: format!(
                        "{tag:?} is not an entity tag: quote it, as the ETag header does (\"3\")"
                    ),
                })?;
            if let Ok(version) = inner.parse::<u64>() {
                list.push(version);
            }
        }
    }
    Ok(Some(Tags::Versions(list)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(name: header::HeaderName, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn tags_are_parsed_and_matched_strongly() {
        let c = Conditions::from_headers(&with(header::IF_MATCH, "\"3\", W/\"4\", \"x\"")).unwrap();
        assert_eq!(c.if_match, Some(Tags::Versions(vec![3])));
        assert!(c.check_write(Some(3)).is_ok());
        assert!(matches!(
            c.check_write(Some(4)),
            Err(RestError::PreconditionFailed {
                current: Some(4),
                ..
            })
        ));
        assert!(c.check_write(None).is_err());
        let any = Conditions::from_headers(&with(header::IF_MATCH, "*")).unwrap();
        assert!(any.check_write(Some(0)).is_ok() && any.check_write(None).is_err());
        let create = Conditions::from_headers(&with(header::IF_NONE_MATCH, "*")).unwrap();
        assert!(create.check_write(None).is_ok() && create.check_write(Some(1)).is_err());
        assert!(matches!(
            Conditions::from_headers(&with(header::IF_MATCH, "3")),
            Err(RestError::BadHeader { .. })
        ));
        assert!(
            Conditions::from_headers(&HeaderMap::new())
                .unwrap()
                .is_empty()
        );
    }
}
