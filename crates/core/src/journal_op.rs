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
use crate::json0::{self, Component, Json0Error, Op};
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
                // `{"p": [...], "oi": v}` is one level above its values, and text0's `o`
                // is two levels; so this bounds every value in the component.
                if ops
                    .iter()
                    .any(|c| json::depth(&c.to_json()) > MAX_DEPTH + 1)
                {
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
            (JournalOp::Delete, Some(_)) => *record = None,
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
            (JournalOp::Delete, Some(_)) => ReplayOp::Delete,
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
