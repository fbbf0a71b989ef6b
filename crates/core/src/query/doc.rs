//! A document as a query sees it: its data, and the metadata fields of ShareDB's
//! database adapters.

use std::cell::OnceCell;

use serde_json::{Value, json};

use super::path::FieldPath;

/// The type every recordsync record has as a ShareDB document (`_type`).
pub const JSON0_TYPE_URI: &str = "http://sharejs.org/types/JSONv0";

/// A document to match, sort or select: ShareDB's `(collection, id)` with its data.
///
/// The metadata fields sharedb-mongo stores beside the data, and that queries may name,
/// come from here, not from the data (a data field of the same name is hidden, as
/// sharedb-mongo's would be overwritten): `_id` the document id, `_v` its ShareDB
/// version, `_type` [`JSON0_TYPE_URI`], `_m.ctime` / `_m.mtime` its creation and last
/// modification times (ms since the epoch). Every other path reaches into the data; a
/// data value that is not an object has no fields.
#[derive(Debug, Clone)]
pub struct Doc<'a> {
    id: &'a str,
    data: &'a Value,
    /// `(version, ctime, mtime)`, or `None` for an element matched by `$elemMatch`, which
    /// has no metadata.
    stamps: Option<(u64, u64, u64)>,
    /// `{_id, _v, _type, _m: {ctime, mtime}}`, made the first time a path names
    /// metadata: most queries never do, and a scan makes a `Doc` per record.
    meta: OnceCell<Value>,
}

impl<'a> Doc<'a> {
    /// A stored document. `version` is its ShareDB version (what `_v` compares with).
    pub fn new(id: &'a str, data: &'a Value, version: u64, ctime: u64, mtime: u64) -> Self {
        Doc {
            id,
            data,
            stamps: Some((version, ctime, mtime)),
            meta: OnceCell::new(),
        }
    }

    /// A value inside a document (an `$elemMatch` element): fields only, no metadata.
    pub(super) fn element(data: &'a Value) -> Doc<'a> {
        Doc {
            id: "",
            data,
            stamps: None,
            meta: OnceCell::new(),
        }
    }

    /// The document id (empty for an element).
    pub fn id(&self) -> &'a str {
        self.id
    }

    pub fn data(&self) -> &'a Value {
        self.data
    }

    /// Every value `path` reaches (see [`FieldPath::reach`]), from the metadata when it
    /// starts with a metadata field's name.
    pub fn reach<'s>(&'s self, path: &FieldPath) -> Vec<&'s Value> {
        if let Some((version, ctime, mtime)) = self.stamps
            && path.is_metadata()
        {
            let meta = self.meta.get_or_init(|| {
                json!({
                    "_id": self.id,
                    "_v": version,
                    "_type": JSON0_TYPE_URI,
                    "_m": {"ctime": ctime, "mtime": mtime},
                })
            });
            return path.reach(meta);
        }
        if !self.data.is_object() {
            return Vec::new();
        }
        path.reach(self.data)
    }
}
