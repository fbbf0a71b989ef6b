//! The write operations a record accepts.
//!
//! Each accepted write is one op: it changes the record's value and is appended to the
//! record's journal as it is, so a record can later be rebuilt at any past version.
//! Paths are checked when an op is built ([`WriteOp::validate`]), which makes applying
//! an op infallible: a batch either applies whole or is refused before anything changes.
//!
//! Every op can also be read as the json0 op with the same effect on the value it was
//! applied to ([`WriteOp::to_json0`], in [`crate::path_json0`]), which is how a client of
//! another protocol replays it; the journal holds it as [`crate::JournalOp::Write`].
//!
//! Nesting: a value written at a path sits below one object or array per segment, so
//! `validate` counts the path's segments plus the value's own depth against
//! [`json::MAX_DEPTH`]. Every stored value was written by some op, so no record is ever
//! nested deeper than that, and every reader can parse what the store holds.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::json::{self, JsonError, MAX_DEPTH};
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

/// Why a write was refused before it touched the record. An invalid path keeps its
/// [`PathError`] as the [`source`](std::error::Error::source). New kinds may be added:
/// match with a `_` arm.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OpError {
    #[error("a whole-record write must be a JSON object or array")]
    NotObjectOrArray,
    #[error("invalid path {path:?}: {source}")]
    InvalidPath { path: String, source: PathError },
    #[error("a multi-path patch needs at least one entry")]
    EmptyPatchMulti,
    #[error("data is nested deeper than {limit} levels", limit = MAX_DEPTH)]
    TooDeep,
    #[error(
        "data at path {path:?} would be nested deeper than {limit} levels (counting the path's {segments} segments)",
        limit = MAX_DEPTH
    )]
    TooDeepAtPath { path: String, segments: usize },
}

/// Levels the journal form of an op adds around its data: `{"op": "patch_multi",
/// "patches": [{"data": ...}]}` is three, and so is `{"op": "json0", "ops": [{"oi":
/// ...}]}` ([`crate::JournalOp`]).
pub(crate) const JOURNAL_LEVELS: usize = 3;

impl WriteOp {
    /// Checks everything that could make [`WriteOp::apply`] fail, and that the value it
    /// writes nests at most [`MAX_DEPTH`] levels.
    pub fn validate(&self) -> Result<(), OpError> {
        match self {
            WriteOp::Update { data } => {
                if !(data.is_object() || data.is_array()) {
                    Err(OpError::NotObjectOrArray)
                } else if json::depth(data) > MAX_DEPTH {
                    Err(OpError::TooDeep)
                } else {
                    Ok(())
                }
            }
            WriteOp::Patch { path, data } => check_nesting(path, parse(path)?, Some(data)),
            // Erasing creates the containers above the last segment: fewer levels than
            // a path may have (`path::MAX_SEGMENTS` is far below `MAX_DEPTH`).
            WriteOp::Erase { path } => parse(path).map(drop),
            WriteOp::PatchMulti { patches } => {
                if patches.is_empty() {
                    return Err(OpError::EmptyPatchMulti);
                }
                patches
                    .iter()
                    .try_for_each(|p| check_nesting(&p.path, parse(&p.path)?, p.data.as_ref()))
            }
        }
    }

    /// Reads an op in its journal form (as stored, and as nodes announce it on the bus).
    pub fn from_journal(text: &str) -> Result<WriteOp, JsonError> {
        json::parse_within(text, MAX_DEPTH + JOURNAL_LEVELS)
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

/// Whether `data` set at `path` stays within [`MAX_DEPTH`]: one level per segment, then
/// the data's own.
fn check_nesting(text: &str, path: Path, data: Option<&Value>) -> Result<(), OpError> {
    let segments = path.segments().len();
    let depth = data.map_or(0, json::depth);
    if segments + depth > MAX_DEPTH {
        return Err(OpError::TooDeepAtPath {
            path: text.to_owned(),
            segments,
        });
    }
    Ok(())
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

    /// `levels` objects inside one another, `{"a":{"a":...{"a":1}}}`.
    fn nested(levels: usize) -> Value {
        let text = format!("{}1{}", "{\"a\":".repeat(levels), "}".repeat(levels));
        json::parse_within(&text, levels).unwrap()
    }

    #[test]
    fn written_values_nest_at_most_max_depth_levels_counting_the_path() {
        let ok = |op: WriteOp| assert_eq!(op.validate(), Ok(()));
        ok(WriteOp::Update {
            data: nested(MAX_DEPTH),
        });
        assert_eq!(
            WriteOp::Update {
                data: nested(MAX_DEPTH + 1)
            }
            .validate(),
            Err(OpError::TooDeep)
        );
        // `a.b` puts the data two levels down.
        ok(WriteOp::Patch {
            path: "a.b".into(),
            data: nested(MAX_DEPTH - 2),
        });
        let too_deep = WriteOp::Patch {
            path: "a.b".into(),
            data: nested(MAX_DEPTH - 1),
        };
        let err = too_deep.validate().unwrap_err();
        assert_eq!(
            err,
            OpError::TooDeepAtPath {
                path: "a.b".into(),
                segments: 2
            }
        );
        assert!(err.to_string().contains("deeper than 512 levels"), "{err}");
        // Indices are levels too.
        let multi = |data: Value| WriteOp::PatchMulti {
            patches: vec![
                PathWrite {
                    path: "x".into(),
                    data: None,
                },
                PathWrite {
                    path: "list[3]".into(),
                    data: Some(data),
                },
            ],
        };
        ok(multi(nested(MAX_DEPTH - 2)));
        assert!(matches!(
            multi(nested(MAX_DEPTH - 1)).validate(),
            Err(OpError::TooDeepAtPath { segments: 2, .. })
        ));
        // What a valid op writes is within the limit, so the record is too.
        let mut value = json!({});
        multi(nested(MAX_DEPTH - 2)).apply(&mut value);
        assert_eq!(json::depth(&value), MAX_DEPTH);
    }

    #[test]
    fn the_journal_form_of_the_deepest_ops_reads_back() {
        let ops = [
            WriteOp::Update {
                data: nested(MAX_DEPTH),
            },
            WriteOp::Patch {
                path: "a".into(),
                data: nested(MAX_DEPTH - 1),
            },
            WriteOp::PatchMulti {
                patches: vec![PathWrite {
                    path: "a".into(),
                    data: Some(nested(MAX_DEPTH - 1)),
                }],
            },
        ];
        for op in ops {
            op.validate().unwrap();
            let text = serde_json::to_string(&op).unwrap();
            assert_eq!(WriteOp::from_journal(&text).unwrap(), op);
        }
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

/// A store must never change a number: whatever an op does to a value, every number it
/// does not replace comes back exactly as written, and so do the numbers it writes, also
/// after a trip through the journal's form of the op.
#[cfg(test)]
mod number_props {
    use super::*;
    use crate::testing::{Doc, document, number};
    use proptest::prelude::*;

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("generated JSON parses")
    }

    /// The op after a trip through its journal form (how the store and the bus carry it).
    fn journaled(op: &WriteOp) -> WriteOp {
        serde_json::from_str(&serde_json::to_string(op).expect("ops serialise"))
            .expect("the journal form parses")
    }

    proptest! {
        #[test]
        fn whole_value_writes_keep_every_number(doc in document()) {
            let text = doc.to_json();
            let op = journaled(&WriteOp::Update { data: parse(&text) });
            let mut value = Value::Null;
            op.apply(&mut value);
            prop_assert_eq!(value.to_string(), text);
        }

        #[test]
        fn path_writes_keep_the_numbers_around_them(
            doc in document(),
            tokens in prop::collection::vec(number(), 1..4),
            picks in prop::collection::vec(any::<prop::sample::Index>(), 1..4),
            erase in any::<bool>(),
        ) {
            let paths = doc.number_paths();
            prop_assume!(!paths.is_empty());
            let mut value = parse(&doc.to_json());
            let mut expected = doc.clone();
            let mut patches = Vec::new();
            for (token, pick) in tokens.iter().zip(&picks) {
                let path = pick.get(&paths).clone();
                expected.set(&path, Doc::Number(token.clone()));
                patches.push(PathWrite { path, data: Some(parse(token)) });
            }
            // One patch alone, then the rest as one PATCH_MULTI.
            let first = patches.remove(0);
            journaled(&WriteOp::Patch { path: first.path, data: first.data.expect("set") })
                .apply(&mut value);
            if !patches.is_empty() {
                journaled(&WriteOp::PatchMulti { patches }).apply(&mut value);
            }
            prop_assert_eq!(value.to_string(), expected.to_json());
            if erase {
                let path = picks[0].get(&paths).clone();
                journaled(&WriteOp::Erase { path: path.clone() }).apply(&mut value);
                expected.erase(&path);
                prop_assert_eq!(value.to_string(), expected.to_json());
            }
        }
    }

    /// serde_json writes an exponent as `e+`/`e-`, JavaScript's spelling; every other
    /// character of a number token is kept.
    #[test]
    fn exponents_are_spelled_as_javascript_writes_them() {
        for (written, kept) in [
            ("1E5", "1e+5"),
            ("1e5", "1e+5"),
            ("1E-5", "1e-5"),
            ("2.50e+007", "2.50e+007"),
            ("-0", "-0"),
            ("-0.0", "-0.0"),
            ("1e400", "1e+400"),
            ("0.1e-400", "0.1e-400"),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
        ] {
            assert_eq!(parse(written).to_string(), kept, "{written}");
        }
    }
}
