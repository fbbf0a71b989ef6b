//! `did:web`: where a DID's document lives, as the did:web method specification says.
//!
//! - `did:web:example.com` → `https://example.com/.well-known/did.json`
//! - `did:web:example.com:users:alice` → `https://example.com/users/alice/did.json`
//! - a port is percent-encoded: `did:web:example.com%3A8443` → `https://example.com:8443/…`
//!
//! Plain HTTP is used for loopback hosts only (`localhost`, `127.0.0.0/8`, `[::1]`), so
//! that tests can serve documents without certificates; every other host is HTTPS, and
//! there is no option to change that.

use std::net::IpAddr;

use url::{Host, Url};

/// Where a `did:web` document is fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DidWeb {
    url: Url,
}

impl DidWeb {
    /// Parses a did:web method-specific id (what follows `did:web:`).
    pub(crate) fn parse(id: &str) -> Result<DidWeb, String> {
        let mut segments = id.split(':');
        let host = segments.next().unwrap_or_default();
        let host = host.replace("%3A", ":").replace("%3a", ":");
        if host.is_empty() || host.contains('%') {
            return Err("the first part must be a host name (with %3A before a port)".into());
        }
        let path: Vec<&str> = segments.collect();
        if path.iter().any(|segment| segment.is_empty()) {
            return Err("a path segment is empty".into());
        }
        // The URL is built without its scheme's rule first, to learn the host.
        let probe = Url::parse(&format!("https://{host}/"))
            .map_err(|e| format!("{host:?} is not a host: {e}"))?;
        let name = host.split(':').next().unwrap_or_default();
        if !probe
            .host_str()
            .is_some_and(|h| h.eq_ignore_ascii_case(name))
        {
            return Err(format!("{host:?} is not a plain host name"));
        }
        let scheme = if is_loopback(probe.host()) {
            "http"
        } else {
            "https"
        };
        let path = if path.is_empty() {
            ".well-known".to_owned()
        } else {
            path.join("/")
        };
        let url = Url::parse(&format!("{scheme}://{host}/{path}/did.json"))
            .map_err(|e| format!("no document URL can be made of it: {e}"))?;
        Ok(DidWeb { url })
    }

    /// The URL of the DID document.
    pub fn document_url(&self) -> &Url {
        &self.url
    }
}

/// Whether `host` is this machine: `localhost`, an address in 127.0.0.0/8, or `::1`.
pub(crate) fn is_loopback(host: Option<Host<&str>>) -> bool {
    match host {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(id: &str) -> String {
        DidWeb::parse(id).unwrap().document_url().to_string()
    }

    #[test]
    fn the_specifications_examples() {
        assert_eq!(
            url("w3c-ccg.github.io"),
            "https://w3c-ccg.github.io/.well-known/did.json"
        );
        assert_eq!(
            url("w3c-ccg.github.io:user:alice"),
            "https://w3c-ccg.github.io/user/alice/did.json"
        );
        assert_eq!(
            url("example.com%3A3000:user:alice"),
            "https://example.com:3000/user/alice/did.json"
        );
    }

    #[test]
    fn only_loopback_hosts_are_plain_http() {
        assert_eq!(
            url("127.0.0.1%3A6020"),
            "http://127.0.0.1:6020/.well-known/did.json"
        );
        assert_eq!(
            url("localhost%3A6020:bob"),
            "http://localhost:6020/bob/did.json"
        );
        assert_eq!(url("127.8.9.1"), "http://127.8.9.1/.well-known/did.json");
        assert_eq!(
            url("10.0.0.1%3A80"),
            "https://10.0.0.1:80/.well-known/did.json"
        );
        assert_eq!(
            url("localhost.example.com"),
            "https://localhost.example.com/.well-known/did.json"
        );
    }

    #[test]
    fn bad_hosts_and_paths_are_refused() {
        for id in [
            "",
            "%3A80",
            "exa%20mple.com",
            "example.com::a",
            "example.com:a:",
            "user@example.com",
        ] {
            assert!(DidWeb::parse(id).is_err(), "{id}");
        }
    }
}
