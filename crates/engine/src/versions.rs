//! How the engine counts versions, and how each protocol's versions map onto them: the
//! mapping lives on [`EngineVersion`], in this one place, so that it is in the crate's
//! public documentation.

use recordsync_core::Version;

/// A record version as the engine counts it, with the version of the create that began
/// the record's current life. Invariant: `created <= version`.
///
/// The engine's version counts every journaled op of a record, its creates and deletes
/// included, and never goes back: a record's history is one line of versions across
/// deletes and re-creates. A record's *life* runs from a create to the next delete; the
/// create is at version `created` (0 for a name never used before, the deleted version
/// plus one for a re-create).
///
/// | engine                        | deepstream                   | ShareDB (issue 14)        |
/// |-------------------------------|------------------------------|---------------------------|
/// | no record (never created)     | does not exist (head −1)     | version 0, type null      |
/// | create at `created`           | `{}` at version 0            | `created + 1`             |
/// | op at `v`                     | version `v − created`        | `v + 1`                   |
/// | delete at `d` (tombstone)     | does not exist (head −1)     | `d + 1`, type null        |
/// | re-create at `d + 1`          | `{}` at version 0 again      | `d + 2`                   |
///
/// deepstream's versions are [`EngineVersion::in_life`]: they restart at each create, so
/// a deepstream client sees exactly what it saw before the engine kept history. Data
/// written before history existed upgrades with `created = 0`, so its versions are
/// unchanged in both views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EngineVersion {
    pub version: Version,
    pub created: Version,
}

impl EngineVersion {
    /// `version` in a life that began at `created`.
    ///
    /// # Panics
    /// If `created > version` (a bug in the caller).
    pub fn new(version: Version, created: Version) -> EngineVersion {
        assert!(
            created <= version,
            "a life begins at or before its versions"
        );
        EngineVersion { version, created }
    }

    /// The version counted from the current life's create, which is version 0: the
    /// version deepstream clients see.
    pub fn in_life(self) -> Version {
        self.version - self.created
    }

    /// The engine version of version `life` of this life.
    pub fn of_life(self, life: Version) -> EngineVersion {
        EngineVersion::new(self.created + life, self.created)
    }

    /// The version ShareDB clients see: one more than the engine's, so that a document
    /// never created is version 0 and its create makes version 1.
    pub fn for_sharedb(self) -> Version {
        self.version + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mapping both ways, through a create, writes, a delete and a re-create.
    #[test]
    fn each_protocol_view_maps_to_the_engine_and_back() {
        // Created at 0, written twice (engine 1, 2), deleted at 3, re-created at 4,
        // written once (5).
        let first = EngineVersion::new(2, 0);
        assert_eq!((first.in_life(), first.for_sharedb()), (2, 3));
        let recreated = EngineVersion::new(4, 4);
        assert_eq!((recreated.in_life(), recreated.for_sharedb()), (0, 5));
        let written = recreated.of_life(1);
        assert_eq!(
            written,
            EngineVersion {
                version: 5,
                created: 4
            }
        );
        for v in [first, recreated, written] {
            assert_eq!(v.of_life(v.in_life()), v);
            assert_eq!(v.for_sharedb() - 1, v.version);
        }
    }
}
