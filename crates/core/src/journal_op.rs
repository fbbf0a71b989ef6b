//! What one journal entry holds ([`JournalOp`]): every kind of change a record's history
//! records, whichever protocol made it, and how a client of another protocol replays it
//! ([`ReplayOp`]).
//!
//! # Why
//!
//! A record's history runs from its create to its delete, and past that through a
//! re-create (see the history design of issue 13): the engine journals every version, and
//! a reader rebuilds any version by applying the entries after a snapshot. deepstream
//! writes path ops ([`WriteOp`]), ShareDB clients write json0 ops, and both create and
//! delete records; one type holds them all, so that the store, the engine and every
//! protocol read the same journal.
//!
//! # Journal text
//!
//! An op is stored as JSON text tagged by `"op"` ([`JournalOp::to_journal`],
//! [`JournalOp::from_journal`], and serde):
//!
//! | op | text |
//! |---|---|
//! | create | `{"op":"create","data":{}}` |
//! | delete | `{"op":"delete"}` |
//! | path ops | [`WriteOp`]'s own text, unchanged: `{"op":"update","data":…}`, `{"op":"patch","path":…,"data":…}`, `{"op":"erase","path":…}`, `{"op":"patch_multi","patches":[…]}` |
//! | json0 | `{"op":"json0","ops":[{"p":[…],"oi":…}]}` (the op's JSON form, [`json0::op_to_json`]) |
//!
//! Data sets written before journal ops existed hold path ops in exactly that text, so
//! they read as they are. Numbers are kept as written (serde_json's `arbitrary_precision`),
//! also through a trip through the text.
//!
//! # Applying
//!
//! A journal op applies to a record that may not exist (`Option<Value>`: `None` is no
//! record, or a tombstone): [`JournalOp::Create`] needs `None`, every other op needs a
//! record, and the wrong one is [`JournalError::AlreadyExists`] or
//! [`JournalError::NoRecord`]. A create may hold any JSON value, as a ShareDB create may
//! (deepstream's creates are `{}`).
//!
//! # Replaying as json0
//!
//! A ShareDB client replays history as ShareDB ops: a create (with the type's first
//! value), a json0 op, or a delete. [`JournalOp::to_replay`] gives that for every entry:
//! create and delete as themselves (they are ShareDB's own kinds of op, not json0), a
//! path op as the json0 op with the same effect on the value it was applied to
//! ([`WriteOp::to_json0`], see [`crate::path_json0`]), and a json0 op as it is.
//!
//! # Nesting
//!
//! No value an op writes nests deeper than [`json::MAX_DEPTH`] ([`JournalOp::validate`],
//! and [`JournalOp::apply`] for what a json0 op makes of a record), so the journal text
//! nests at most three levels more, which is what [`JournalOp::from_journal`] reads.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use thiserror::Error;

use crate::json::{self, JsonError, MAX_DEPTH};
use crate::json0::{self, Action, Component, Json0Error, Op};
use crate::op::{JOURNAL_LEVELS, OpError, WriteOp};

/// One journal entry's op: a record's create, a path write, a json0 op, or its delete.
/// Written and read as the text in the module docs.
#[derive(Debug, Clone, PartialEq)]
pub enum JournalOp {
    /// The record's first value (deepstream creates `{}`).
    Create { data: Value },
    /// The record goes; its history stays (a tombstone keeps its version).
    Delete,
    /// A deepstream path write, or a whole-value update.
    Write(WriteOp),
    /// A json0 op (ShareDB).
    Json0 { ops: Op },
}

/// Why a journal op was refused: it is malformed, or does not fit the record.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum JournalError {
    /// A create for a record that exists (a record can be created again only after its
    /// delete).
    #[error(
        "the record exists already: only a record that does not exist (or was deleted) can be created"
    )]
    AlreadyExists,
    /// A write or delete for a record that does not exist.
    #[error("{op} needs a record, and this one does not exist (or was deleted): create it first")]
    NoRecord { op: &'static str },
    /// A path op that [`WriteOp::validate`] refuses.
    #[error("invalid write: {0}")]
    Write(#[from] OpError),
    /// A json0 op that is malformed or does not apply to the record.
    #[error("json0 op: {0}")]
    Json0(#[from] Json0Error),
    /// A create, or a value a json0 op writes or makes of the record, nests deeper than
    /// [`MAX_DEPTH`].
    #[error("{what} is nested deeper than {limit} levels", limit = MAX_DEPTH)]
    TooDeep { what: &'static str },
    /// A journal entry's text that is not a journal op ([`JournalOp::from_journal`]
    /// refused it): what the store holds is damaged, or was written by something else.
    #[error("the journal entry is not a journal op: {0}")]
    Unreadable(#[from] JsonError),
    /// [`JournalOp::to_json0`] of a create or delete: they are ShareDB's own ops, not
    /// json0 ([`JournalOp::to_replay`] gives them).
    #[error("{op} is not a json0 op: ShareDB replays it as its own {op} op")]
    NotJson0 { op: &'static str },
}

/// What a client of ShareDB replays for a journal entry: ShareDB's create, a json0 op, or
/// ShareDB's delete (`{create: {type, data}}`, `{op: [...]}`, `{del: true}` on its wire).
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayOp {
    /// The document comes into being with this value.
    Create(Value),
    /// The document changes by this json0 op.
    Op(Op),
    /// The document goes.
    Delete,
}

impl JournalOp {
    /// The `"op"` tag of the journal text: `create`, `delete`, `update`, `patch`, `erase`,
    /// `patch_multi` or `json0`.
    pub fn kind(&self) -> &'static str {
        match self {
            JournalOp::Create { .. } => "create",
            JournalOp::Delete => "delete",
            JournalOp::Write(WriteOp::Update { .. }) => "update",
            JournalOp::Write(WriteOp::Patch { .. }) => "patch",
            JournalOp::Write(WriteOp::Erase { .. }) => "erase",
            JournalOp::Write(WriteOp::PatchMulti { .. }) => "patch_multi",
            JournalOp::Json0 { .. } => "json0",
        }
    }

    /// Checks what can be checked without the record: a path op as
    /// [`WriteOp::validate`] does, and that no value a create or json0 op carries nests
    /// deeper than [`MAX_DEPTH`] (so its journal text reads back).
    pub fn validate(&self) -> Result<(), JournalError> {
        match self {
            JournalOp::Create { data } if json::depth(data) > MAX_DEPTH => {
                Err(JournalError::TooDeep { what: "the data" })
            }
            JournalOp::Create { .. } | JournalOp::Delete => Ok(()),
            JournalOp::Write(op) => Ok(op.validate()?),
            JournalOp::Json0 { ops } => {
                let too_deep = ops
                    .iter()
                    .flat_map(|c| carried_values(c.action()))
                    .any(|v| json::depth(v) > MAX_DEPTH);
                if too_deep {
                    return Err(JournalError::TooDeep {
                        what: "a value in the json0 op",
                    });
                }
                Ok(())
            }
        }
    }

    /// Applies the op to `record` (`None`: it does not exist). The op must be
    /// [`JournalOp::validate`]d. On an error `record` is unchanged.
    ///
    /// A json0 op is applied with text0 as its only subtype ([`json0::apply`]); what it
    /// makes of the record must nest at most [`MAX_DEPTH`] levels.
    pub fn apply(&self, record: &mut Option<Value>) -> Result<(), JournalError> {
        match (self, record.as_mut()) {
            (JournalOp::Create { data }, None) => *record = Some(data.clone()),
            (JournalOp::Create { .. }, Some(_)) => return Err(JournalError::AlreadyExists),
            // A delete of a missing record leaves it missing: ShareDB accepts (and
            // journals, as a version) the del of a document that does not exist.
            (JournalOp::Delete, _) => *record = None,
            (JournalOp::Write(op), Some(value)) => op.apply(value),
            (JournalOp::Json0 { ops }, Some(value)) => {
                let changed = json0::apply(value, ops)?;
                if json::depth(&changed) > MAX_DEPTH {
                    return Err(JournalError::TooDeep {
                        what: "the record after the json0 op",
                    });
                }
                *value = changed;
            }
            (op, None) => return Err(JournalError::NoRecord { op: op.kind() }),
        }
        Ok(())
    }

    /// The op as a ShareDB client replays it, given the record it applies to (`None`: it
    /// does not exist); see the module docs. Errors where [`JournalOp::apply`] would
    /// refuse the op for that record.
    pub fn to_replay(&self, record: Option<&Value>) -> Result<ReplayOp, JournalError> {
        Ok(match (self, record) {
            (JournalOp::Create { data }, None) => ReplayOp::Create(data.clone()),
            (JournalOp::Create { .. }, Some(_)) => return Err(JournalError::AlreadyExists),
            (JournalOp::Delete, _) => ReplayOp::Delete,
            (JournalOp::Write(op), Some(value)) => ReplayOp::Op(op.to_json0(value)),
            (JournalOp::Json0 { ops }, Some(_)) => ReplayOp::Op(ops.clone()),
            (op, None) => return Err(JournalError::NoRecord { op: op.kind() }),
        })
    }

    /// The json0 op with the op's effect on `before`: [`WriteOp::to_json0`] for a path op,
    /// the op itself for a json0 op. A create or delete is [`JournalError::NotJson0`]
    /// (see [`JournalOp::to_replay`]).
    pub fn to_json0(&self, before: &Value) -> Result<Op, JournalError> {
        match self {
            JournalOp::Write(op) => Ok(op.to_json0(before)),
            JournalOp::Json0 { ops } => Ok(ops.clone()),
            JournalOp::Create { .. } | JournalOp::Delete => {
                Err(JournalError::NotJson0 { op: self.kind() })
            }
        }
    }

    /// The journal text (see the module docs).
    pub fn to_journal(&self) -> String {
        serde_json::to_string(self).expect("a journal op is JSON values under string keys")
    }

    /// Reads the journal text (see the module docs), nested at most [`MAX_DEPTH`] levels
    /// below the op's own, as [`WriteOp::from_journal`] does.
    pub fn from_journal(text: &str) -> Result<JournalOp, JsonError> {
        read_journal(text, MAX_DEPTH + JOURNAL_LEVELS)
    }
}

impl From<WriteOp> for JournalOp {
    fn from(op: WriteOp) -> JournalOp {
        JournalOp::Write(op)
    }
}

/// The JSON values a json0 component carries (what it inserts, deletes, or a subtype's
/// op); the rest of a component (its path, numbers, text, text0's `o`) nests at most two
/// levels, so the component's JSON form nests at most one level more than these.
fn carried_values(action: &Action) -> impl Iterator<Item = &Value> {
    let (first, second) = match action {
        Action::ListInsert(v)
        | Action::ListDelete(v)
        | Action::ObjectInsert(v)
        | Action::ObjectDelete(v)
        | Action::Subtype { op: v, .. } => (Some(v), None),
        Action::ListReplace { old, new } | Action::ObjectReplace { old, new } => {
            (Some(old), Some(new))
        }
        Action::NumberAdd(_)
        | Action::StringInsert(_)
        | Action::StringDelete(_)
        | Action::Text(_)
        | Action::ListMove { .. } => (None, None),
    };
    first.into_iter().chain(second)
}

/// The tags [`WriteOp`]'s journal text uses.
const WRITE_TAGS: [&str; 4] = ["update", "patch", "erase", "patch_multi"];

/// Every tag of the journal text.
const ALL_TAGS: [&str; 7] = [
    "create",
    "delete",
    "update",
    "patch",
    "erase",
    "patch_multi",
    "json0",
];

/// Just the tag of a journal text (serde skips the other fields without keeping them).
#[derive(Deserialize)]
struct Tag {
    op: String,
}

/// Reads a journal text nested at most `limit` levels: the tag first, then the text as
/// the type that tag names, so that an error names what is wrong with that type.
///
/// Not through a `serde_json::Value`: with `arbitrary_precision`, a `Value` hands an
/// integer beyond 64 bits to serde's buffer as an `i128`, which it refuses.
fn read_journal(text: &str, limit: usize) -> Result<JournalOp, JsonError> {
    let Tag { op } = json::parse_within(text, limit)?;
    if WRITE_TAGS.contains(&op.as_str()) {
        return json::parse_within(text, limit).map(JournalOp::Write);
    }
    if !ALL_TAGS.contains(&op.as_str()) {
        let unknown = <serde_json::Error as serde::de::Error>::unknown_variant(&op, &ALL_TAGS);
        return Err(JsonError::Invalid(unknown));
    }
    json::parse_within::<Own>(text, limit).map(JournalOp::from)
}

/// The ops of this module's own, as the journal text writes them.
#[derive(Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum OwnRef<'a> {
    Create { data: &'a Value },
    Delete,
    Json0 { ops: &'a [Component] },
}

/// The ops of this module's own, as the journal text is read.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Own {
    Create { data: Value },
    Delete,
    Json0 { ops: Op },
}

impl From<Own> for JournalOp {
    fn from(own: Own) -> JournalOp {
        match own {
            Own::Create { data } => JournalOp::Create { data },
            Own::Delete => JournalOp::Delete,
            Own::Json0 { ops } => JournalOp::Json0 { ops },
        }
    }
}

/// Any journal op, for serde's [`Deserialize`] (where the input cannot be read twice, as
/// [`read_journal`] does): the path ops are tried after the tags of this module's own.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum AnyOp {
    Create {
        data: Value,
    },
    Delete,
    Json0 {
        ops: Op,
    },
    #[serde(untagged)]
    Write(WriteOp),
}

impl Serialize for JournalOp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            JournalOp::Create { data } => OwnRef::Create { data }.serialize(serializer),
            JournalOp::Delete => OwnRef::Delete.serialize(serializer),
            JournalOp::Write(op) => op.serialize(serializer),
            JournalOp::Json0 { ops } => OwnRef::Json0 { ops }.serialize(serializer),
        }
    }
}

/// Reads the journal text from any serde input. Errors say less than
/// [`JournalOp::from_journal`]'s (a text that fits no op "did not match any variant").
impl<'de> Deserialize<'de> for JournalOp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<JournalOp, D::Error> {
        Ok(match AnyOp::deserialize(deserializer)? {
            AnyOp::Create { data } => JournalOp::Create { data },
            AnyOp::Delete => JournalOp::Delete,
            AnyOp::Json0 { ops } => JournalOp::Json0 { ops },
            AnyOp::Write(op) => JournalOp::Write(op),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::json0::{op_from_json, op_to_json};
    use crate::op::PathWrite;

    fn read(text: &str) -> JournalOp {
        JournalOp::from_journal(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn json0_op(ops: Value) -> JournalOp {
        JournalOp::Json0 {
            ops: op_from_json(&ops).unwrap(),
        }
    }

    /// The texts today's release stores, read as path ops and written back byte for byte
    /// (also through serde, as a field of another message would be read).
    #[test]
    fn path_ops_read_and_write_as_stored_today() {
        let cases = [
            (
                r#"{"op":"update","data":{"a":1.50,"b":[-0,1e+400]}}"#,
                WriteOp::Update {
                    data: serde_json::from_str(r#"{"a":1.50,"b":[-0,1e+400]}"#).unwrap(),
                },
            ),
            (
                r#"{"op":"patch","path":"pets[1].fur","data":"red"}"#,
                WriteOp::Patch {
                    path: "pets[1].fur".into(),
                    data: json!("red"),
                },
            ),
            (
                r#"{"op":"erase","path":"a.b"}"#,
                WriteOp::Erase { path: "a.b".into() },
            ),
            (
                r#"{"op":"patch_multi","patches":[{"path":"a","data":123456789012345678901234567890},{"path":"b"}]}"#,
                WriteOp::PatchMulti {
                    patches: vec![
                        PathWrite {
                            path: "a".into(),
                            data: Some(
                                serde_json::from_str("123456789012345678901234567890").unwrap(),
                            ),
                        },
                        PathWrite {
                            path: "b".into(),
                            data: None,
                        },
                    ],
                },
            ),
        ];
        for (text, op) in cases {
            let journal_op = read(text);
            assert_eq!(journal_op, JournalOp::Write(op.clone()), "{text}");
            assert_eq!(journal_op.to_journal(), text);
            assert_eq!(
                serde_json::to_string(&op).unwrap(),
                text,
                "WriteOp's own text"
            );
            let through_serde: JournalOp = serde_json::from_str(text).unwrap();
            assert_eq!(through_serde, journal_op);
            assert_eq!(serde_json::to_string(&through_serde).unwrap(), text);
        }
    }

    #[test]
    fn own_ops_read_and_write() {
        for (text, op) in [
            (
                r#"{"op":"create","data":{}}"#,
                JournalOp::Create { data: json!({}) },
            ),
            (
                r#"{"op":"create","data":[1.0,-0,"s"]}"#,
                JournalOp::Create {
                    data: serde_json::from_str(r#"[1.0,-0,"s"]"#).unwrap(),
                },
            ),
            (r#"{"op":"delete"}"#, JournalOp::Delete),
            (
                r#"{"op":"json0","ops":[{"p":["n"],"na":1.50},{"p":["l",0],"ld":-0,"li":1e+400},{"p":["s"],"t":"text0","o":[{"p":1,"i":"x"}]}]}"#,
                json0_op(
                    serde_json::from_str(
                        r#"[{"p":["n"],"na":1.50},{"p":["l",0],"ld":-0,"li":1e+400},{"p":["s"],"t":"text0","o":[{"p":1,"i":"x"}]}]"#,
                    )
                    .unwrap(),
                ),
            ),
            (r#"{"op":"json0","ops":[]}"#, json0_op(json!([]))),
        ] {
            assert_eq!(read(text), op, "{text}");
            assert_eq!(op.to_journal(), text);
            assert_eq!(serde_json::from_str::<JournalOp>(text).unwrap(), op);
            assert_eq!(
                serde_json::from_str::<Value>(text).unwrap()["op"],
                op.kind(),
                "kind() is the tag"
            );
        }
    }

    #[test]
    fn kind_is_the_tag_of_every_op() {
        let ops = [
            JournalOp::Create { data: json!({}) },
            JournalOp::Delete,
            WriteOp::Update { data: json!({}) }.into(),
            WriteOp::Patch {
                path: "a".into(),
                data: json!(1),
            }
            .into(),
            WriteOp::Erase { path: "a".into() }.into(),
            WriteOp::PatchMulti { patches: vec![] }.into(),
            json0_op(json!([])),
        ];
        for op in ops {
            let text = op.to_journal();
            assert_eq!(
                serde_json::from_str::<Value>(&text).unwrap()["op"],
                op.kind()
            );
        }
    }

    #[test]
    fn malformed_texts_are_refused_with_what_is_wrong() {
        let err = |text: &str| JournalOp::from_journal(text).unwrap_err().to_string();
        let unknown = err(r#"{"op":"rename","to":"x"}"#);
        assert!(
            unknown.contains("unknown variant `rename`") && unknown.contains("json0"),
            "{unknown}"
        );
        assert!(err(r#"{"data":{}}"#).contains("missing field `op`"));
        assert!(err(r#"{"op":3}"#).contains("invalid type"));
        assert!(err(r#"{"op":"patch","data":1}"#).contains("missing field `path`"));
        assert!(err(r#"{"op":"create"}"#).contains("missing field `data`"));
        let shape = err(r#"{"op":"json0","ops":[{"p":["a"],"oi":1,"li":2}]}"#);
        assert!(shape.contains("combines"), "{shape}");
        assert!(JournalOp::from_journal("[]").is_err());
        assert!(JournalOp::from_journal(r#"["update", {}]"#).is_err());
        assert!(err("{").contains("EOF"));
        // serde's own reading refuses them too, saying less.
        for text in [r#"{"op":"rename"}"#, r#"{"op":"create"}"#, r#"{"data":1}"#] {
            assert!(serde_json::from_str::<JournalOp>(text).is_err(), "{text}");
        }
    }

    /// `levels` objects inside one another, `{"a":{"a":...{"a":1}}}`.
    fn nested(levels: usize) -> Value {
        let text = format!("{}1{}", "{\"a\":".repeat(levels), "}".repeat(levels));
        json::parse_within(&text, levels).unwrap()
    }

    #[test]
    fn the_deepest_valid_ops_read_back_and_deeper_ones_are_refused() {
        let deepest = [
            JournalOp::Create {
                data: nested(MAX_DEPTH),
            },
            json0_op(json!([{"p": [], "od": {}, "oi": nested(MAX_DEPTH)}])),
            json0_op(json!([{"p": ["a"], "li": nested(MAX_DEPTH)}])),
        ];
        for op in deepest {
            op.validate().unwrap();
            assert_eq!(JournalOp::from_journal(&op.to_journal()).unwrap(), op);
        }
        let too_deep = [
            JournalOp::Create {
                data: nested(MAX_DEPTH + 1),
            },
            json0_op(json!([{"p": ["a"], "oi": nested(MAX_DEPTH + 1)}])),
            json0_op(json!([{"p": [0], "ld": nested(MAX_DEPTH + 1), "li": 1}])),
            json0_op(json!([{"p": ["a"], "od": 1, "oi": nested(MAX_DEPTH + 1)}])),
            json0_op(json!([{"p": ["a"], "t": "counter", "o": nested(MAX_DEPTH + 1)}])),
        ];
        for op in too_deep {
            assert!(
                matches!(op.validate(), Err(JournalError::TooDeep { .. })),
                "{op:?}"
            );
        }
        // The text may nest three levels more than a value (`patch_multi`'s), no further.
        let text = JournalOp::Create {
            data: nested(MAX_DEPTH + 2),
        }
        .to_journal();
        assert!(JournalOp::from_journal(&text).is_ok());
        let text = JournalOp::Create {
            data: nested(MAX_DEPTH + 3),
        }
        .to_journal();
        assert!(matches!(
            JournalOp::from_journal(&text),
            Err(JsonError::TooDeep { .. })
        ));
        assert!(matches!(
            JournalOp::from(WriteOp::Update {
                data: nested(MAX_DEPTH + 1)
            })
            .validate(),
            Err(JournalError::Write(OpError::TooDeep))
        ));
    }

    #[test]
    fn a_record_is_created_changed_and_deleted() {
        let mut record = None;
        JournalOp::Create { data: json!({}) }
            .apply(&mut record)
            .unwrap();
        assert_eq!(record, Some(json!({})));
        JournalOp::from(WriteOp::Patch {
            path: "a".into(),
            data: json!([1]),
        })
        .apply(&mut record)
        .unwrap();
        json0_op(json!([{"p": ["a", 1], "li": 2}]))
            .apply(&mut record)
            .unwrap();
        assert_eq!(record, Some(json!({"a": [1, 2]})));
        JournalOp::Delete.apply(&mut record).unwrap();
        assert_eq!(record, None);
        // A create after a delete starts again; any value, as a ShareDB create.
        JournalOp::Create { data: json!("s") }
            .apply(&mut record)
            .unwrap();
        assert_eq!(record, Some(json!("s")));
    }

    #[test]
    fn ops_that_do_not_fit_the_record_are_refused_and_change_nothing() {
        let mut exists = Some(json!({"a": 1}));
        let err = JournalOp::Create { data: json!({}) }
            .apply(&mut exists)
            .unwrap_err();
        assert!(matches!(err, JournalError::AlreadyExists), "{err}");
        assert_eq!(exists, Some(json!({"a": 1})));

        // A delete of a missing record leaves it missing (a ShareDB del of a document
        // never created is a version of its own).
        let mut missing = None;
        JournalOp::Delete.apply(&mut missing).unwrap();
        assert_eq!(missing, None);
        assert!(matches!(
            JournalOp::Delete.to_replay(None),
            Ok(ReplayOp::Delete)
        ));
        for op in [
            WriteOp::Erase { path: "a".into() }.into(),
            json0_op(json!([])),
        ] {
            let mut missing = None;
            let err = op.apply(&mut missing).unwrap_err();
            let kind = op.kind();
            assert!(
                matches!(err, JournalError::NoRecord { op } if op == kind),
                "{err}"
            );
            assert!(err.to_string().contains("does not exist"), "{err}");
            assert_eq!(missing, None);
            assert!(matches!(
                op.to_replay(None),
                Err(JournalError::NoRecord { .. })
            ));
        }

        let err = json0_op(json!([{"p": ["x", "y"], "oi": 1}]))
            .apply(&mut exists)
            .unwrap_err();
        assert!(
            matches!(err, JournalError::Json0(Json0Error::Missing { .. })),
            "{err}"
        );
        assert_eq!(exists, Some(json!({"a": 1})));

        // What a json0 op makes of the record is held to the nesting limit too.
        let mut deep = Some(json!({"a": nested(MAX_DEPTH - 1)}));
        let op = json0_op(
            json!([{"p": ["a", "a"], "od": nested(MAX_DEPTH - 2), "oi": nested(MAX_DEPTH - 1)}]),
        );
        op.validate().unwrap();
        let before = deep.clone();
        assert!(matches!(
            op.apply(&mut deep),
            Err(JournalError::TooDeep { .. })
        ));
        assert_eq!(deep, before);
    }

    #[test]
    fn every_op_replays_for_sharedb() {
        let before = json!({"a": 1});
        assert_eq!(
            JournalOp::Create { data: json!({}) }
                .to_replay(None)
                .unwrap(),
            ReplayOp::Create(json!({}))
        );
        assert!(matches!(
            JournalOp::Create { data: json!({}) }.to_replay(Some(&before)),
            Err(JournalError::AlreadyExists)
        ));
        assert_eq!(
            JournalOp::Delete.to_replay(Some(&before)).unwrap(),
            ReplayOp::Delete
        );
        let patch = JournalOp::from(WriteOp::Patch {
            path: "a".into(),
            data: json!(2),
        });
        let ReplayOp::Op(ops) = patch.to_replay(Some(&before)).unwrap() else {
            panic!("a path op replays as json0");
        };
        assert_eq!(op_to_json(&ops), json!([{"p": ["a"], "od": 1, "oi": 2}]));
        assert_eq!(patch.to_json0(&before).unwrap(), ops);
        let json0 = json0_op(json!([{"p": ["a"], "na": 1}]));
        assert_eq!(
            json0.to_replay(Some(&before)).unwrap(),
            ReplayOp::Op(op_from_json(&json!([{"p": ["a"], "na": 1}])).unwrap())
        );
        for op in [JournalOp::Create { data: json!({}) }, JournalOp::Delete] {
            let err = op.to_json0(&before).unwrap_err();
            assert!(matches!(err, JournalError::NotJson0 { .. }), "{err}");
            assert!(err.to_string().contains("not a json0 op"), "{err}");
        }
    }
}

/// Numbers come back from the journal text exactly as written, whatever the op.
#[cfg(test)]
mod number_props {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::testing::{document, number};

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("generated JSON parses")
    }

    proptest! {
        #[test]
        fn journal_texts_keep_every_number(doc in document(), n in number()) {
            let data = parse(&doc.to_json());
            let token = parse(&n);
            let ops = [
                JournalOp::Create { data: data.clone() },
                WriteOp::Update { data: data.clone() }.into(),
                WriteOp::Patch { path: "a.b".into(), data: token.clone() }.into(),
                JournalOp::Json0 {
                    ops: crate::json0::op_from_json(&json!([
                        {"p": ["x"], "od": data.clone(), "oi": token.clone()},
                        {"p": ["l"], "li": data},
                    ]))
                    .expect("a well-formed op"),
                },
            ];
            for op in ops {
                let text = op.to_journal();
                prop_assert!(text.contains(&doc.to_json()) || text.contains(&n), "{}", text);
                let read = JournalOp::from_journal(&text).expect("reads back");
                prop_assert_eq!(read.to_journal(), text.clone());
                let through_serde: JournalOp = serde_json::from_str(&text).expect("reads back");
                prop_assert_eq!(through_serde.to_journal(), text);
            }
        }
    }
}
