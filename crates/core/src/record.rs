//! A record's state and the one function that changes it.

use serde_json::Value;
use thiserror::Error;

use crate::op::{OpError, WriteOp};
use crate::version::{VersionCheck, check_version};

/// A record version. Version 0 is a record that exists but was never written
/// (deepstream's `{}` created by subscribing); every accepted write adds one.
pub type Version = u64;

/// A record: its current version, its JSON value and when it was created and changed
/// (milliseconds since the Unix epoch).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub version: Version,
    pub data: Value,
    pub ctime: u64,
    pub mtime: u64,
}

/// Why a write was not applied. New kinds may be added: match with a `_` arm.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WriteError {
    #[error("version {requested} already exists (the record is at version {current})")]
    VersionExists { requested: i64, current: Version },
    #[error("version {requested} is not valid (the record is at version {current})")]
    InvalidVersion { requested: i64, current: Version },
    #[error(transparent)]
    Op(#[from] OpError),
}

impl Record {
    /// A new record, `{}` at version 0: what deepstream creates for a subscriber.
    pub fn empty(now: u64) -> Record {
        Record {
            version: 0,
            data: Value::Object(Default::default()),
            ctime: now,
            mtime: now,
        }
    }

    /// Applies `op` as the write that produces version `requested` (`-1`: the next one).
    /// On error the record is unchanged. Returns the new version.
    pub fn write(&mut self, op: &WriteOp, requested: i64, now: u64) -> Result<Version, WriteError> {
        let current = self.version;
        let version = match check_version(current, requested) {
            VersionCheck::Accept(v) => v,
            VersionCheck::Exists => return Err(WriteError::VersionExists { requested, current }),
            VersionCheck::Invalid => return Err(WriteError::InvalidVersion { requested, current }),
        };
        op.validate()?;
        op.apply(&mut self.data);
        self.version = version;
        self.mtime = now;
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_advance_the_version_by_one() {
        let mut r = Record::empty(1);
        let op = WriteOp::Patch {
            path: "a".into(),
            data: json!(1),
        };
        assert_eq!(r.write(&op, 1, 2), Ok(1));
        assert_eq!(r.write(&op, -1, 3), Ok(2));
        assert_eq!(r.data, json!({"a": 1}));
        assert_eq!((r.ctime, r.mtime), (1, 3));
    }

    #[test]
    fn a_refused_write_changes_nothing() {
        let mut r = Record::empty(1);
        let before = r.clone();
        let op = WriteOp::Update {
            data: json!({"x": 1}),
        };
        assert!(matches!(
            r.write(&op, 0, 9),
            Err(WriteError::VersionExists { .. })
        ));
        assert!(matches!(
            r.write(&op, 2, 9),
            Err(WriteError::InvalidVersion { .. })
        ));
        let bad = WriteOp::Update {
            data: json!("text"),
        };
        assert!(matches!(r.write(&bad, 1, 9), Err(WriteError::Op(_))));
        assert_eq!(r, before);
    }
}
