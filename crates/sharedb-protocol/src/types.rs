//! The protocol version and the names of OT types.

/// The protocol major version: the client refuses a server that answers another.
pub const PROTOCOL_MAJOR: u64 = 1;
/// The protocol minor version this server speaks (1.2: the `hs` handshake, `pp`, `nt`).
pub const PROTOCOL_MINOR: u64 = 2;

/// json0's URI: the default type the handshake names, and the `type` of every json0
/// snapshot and create on the wire.
pub const JSON0_URI: &str = "http://sharejs.org/types/JSONv0";

/// Whether a create's `type` names json0, by its name or its URI (ShareDB accepts both
/// and stores the URI).
pub fn is_json0(name: &str) -> bool {
    name == "json0" || name == JSON0_URI
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json0_is_known_by_name_and_uri_only() {
        assert!(is_json0("json0"));
        assert!(is_json0(JSON0_URI));
        for other in ["rich-text", "json1", "text", "JSON0", ""] {
            assert!(!is_json0(other), "{other}");
        }
    }
}
