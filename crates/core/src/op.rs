//! The write operations a record accepts.
//!
//! Each accepted write is one op: it changes the record's value and is appended to the
//! record's journal as it is, so a record can later be rebuilt at any past version.
//! Paths are checked when an op is built ([`WriteOp::validate`]), which makes applying
//! an op infallible: a batch either applies whole or is refused before anything changes.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::path::{self, Path, PathError};

/// One write to a record, as the journal stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum WriteOp {
    /// Replace the whole value (deepstream UPDATE, CREATEANDUPDATE).
    Update { data: Value },
    /// Set the value at a path, creating objects and arrays on the way (PATCH).
    Patch { path: String, data: Value },
    /// Remove the value at a path (ERASE).
    Erase { path: String },
    /// An ordered batch of sets and erases applied as one version (PATCH_MULTI).
    PatchMulti { patches: Vec<PathWrite> },
}

/// One entry of a [`WriteOp::PatchMulti`]: `data: None` erases the path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathWrite {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// Why a write was refused before it touched the record.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OpError {
    #[error("a whole-record write must be a JSON object or array")]
    NotObjectOrArray,
    #[error("invalid path {path:?}: {source}")]
    InvalidPath { path: String, source: PathError },
    #[error("a multi-path patch needs at least one entry")]
    EmptyPatchMulti,
}

impl WriteOp {
    /// Checks everything that could make [`WriteOp::apply`] fail.
    pub fn validate(&self) -> Result<(), OpError> {
        match self {
            WriteOp::Update { data } => {
                if data.is_object() || data.is_array() {
                    Ok(())
                } else {
                    Err(OpError::NotObjectOrArray)
                }
            }
            WriteOp::Patch { path, .. } | WriteOp::Erase { path } => parse(path).map(drop),
            WriteOp::PatchMulti { patches } => {
                if patches.is_empty() {
                    return Err(OpError::EmptyPatchMulti);
                }
                patches.iter().try_for_each(|p| parse(&p.path).map(drop))
            }
        }
    }

    /// Applies a validated op to `value`. Paths that fail to parse are ignored, which
    /// cannot happen after [`WriteOp::validate`] succeeded.
    pub fn apply(&self, value: &mut Value) {
        match self {
            WriteOp::Update { data } => *value = data.clone(),
            WriteOp::Patch { path, data } => set_path(value, path, Some(data.clone())),
            WriteOp::Erase { path } => set_path(value, path, None),
            WriteOp::PatchMulti { patches } => {
                for p in patches {
                    set_path(value, &p.path, p.data.clone());
                }
            }
        }
    }
}

fn parse(text: &str) -> Result<Path, OpError> {
    Path::parse(text).map_err(|source| OpError::InvalidPath {
        path: text.to_owned(),
        source,
    })
}

fn set_path(value: &mut Value, text: &str, data: Option<Value>) {
    let Ok(parsed) = Path::parse(text) else {
        return;
    };
    match data {
        Some(data) => path::set(value, &parsed, data),
        None => path::erase(value, &parsed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn update_must_be_object_or_array() {
        assert!(WriteOp::Update { data: json!({}) }.validate().is_ok());
        assert!(WriteOp::Update { data: json!([1]) }.validate().is_ok());
        assert_eq!(
            WriteOp::Update { data: json!(3) }.validate(),
            Err(OpError::NotObjectOrArray)
        );
    }

    #[test]
    fn patch_multi_applies_in_order_and_erases() {
        let op = WriteOp::PatchMulti {
            patches: vec![
                PathWrite {
                    path: "a.b".into(),
                    data: Some(json!(1)),
                },
                PathWrite {
                    path: "a.c".into(),
                    data: Some(json!(2)),
                },
                PathWrite {
                    path: "a.b".into(),
                    data: None,
                },
            ],
        };
        op.validate().unwrap();
        let mut v = json!({});
        op.apply(&mut v);
        assert_eq!(v, json!({"a": {"c": 2}}));
    }

    #[test]
    fn empty_patch_multi_is_refused() {
        let op = WriteOp::PatchMulti { patches: vec![] };
        assert_eq!(op.validate(), Err(OpError::EmptyPatchMulti));
    }

    #[test]
    fn journal_form_round_trips() {
        let op = WriteOp::Patch {
            path: "pets[1].fur".into(),
            data: json!("red"),
        };
        let text = serde_json::to_string(&op).unwrap();
        assert_eq!(text, r#"{"op":"patch","path":"pets[1].fur","data":"red"}"#);
        assert_eq!(serde_json::from_str::<WriteOp>(&text).unwrap(), op);
    }
}
