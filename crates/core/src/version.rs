//! deepstream's version rules for writes.
//!
//! Every accepted write moves a record from version `v` to `v + 1`. A client names the
//! version its write produces; the server compares it with the record's current version:
//!
//! | requested            | outcome                                   |
//! |----------------------|-------------------------------------------|
//! | `current + 1`        | accepted                                  |
//! | `-1`                 | accepted as `current + 1` ("next")        |
//! | `<= current`, `>= 0` | `VERSION_EXISTS` (the client must merge)  |
//! | `> current + 1`      | `INVALID_VERSION`                         |
//! | other negatives      | `INVALID_VERSION`                         |
//!
//! A record that does not exist has current version 0 for this purpose: deepstream
//! creates a subscribed record as `{}` at version 0, and the first write makes version 1.

use crate::record::Version;

/// The outcome of comparing a write's version with the record's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionCheck {
    /// The write is accepted and produces this version.
    Accept(Version),
    /// The version is already used: the client must merge with the server's state.
    Exists,
    /// The version is beyond the next one, or otherwise meaningless.
    Invalid,
}

/// Applies the rules in the module docs.
pub fn check_version(current: Version, requested: i64) -> VersionCheck {
    let next = current + 1;
    match requested {
        -1 => VersionCheck::Accept(next),
        r if r < 0 => VersionCheck::Invalid,
        r if r as u64 == next => VersionCheck::Accept(next),
        r if (r as u64) <= current => VersionCheck::Exists,
        _ => VersionCheck::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(check_version(0, 1), VersionCheck::Accept(1));
        assert_eq!(check_version(4, 5), VersionCheck::Accept(5));
        assert_eq!(check_version(4, -1), VersionCheck::Accept(5));
        assert_eq!(check_version(4, 4), VersionCheck::Exists);
        assert_eq!(check_version(4, 0), VersionCheck::Exists);
        assert_eq!(check_version(4, 6), VersionCheck::Invalid);
        assert_eq!(check_version(4, -2), VersionCheck::Invalid);
        assert_eq!(check_version(0, 0), VersionCheck::Exists);
    }
}
