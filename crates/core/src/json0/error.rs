//! Why a json0 operation failed ([`Json0Error`]).
//!
//! Every place where ot-json0 throws is one of these errors, and so is every place where
//! it would return something JSON cannot carry (a list with a hole, a number beyond the
//! double range, half a character); see the module docs for the list.

use thiserror::Error;

use super::validate::ShapeError;

/// What a custom [`super::Subtype`] reports when it refuses an op.
pub type SubtypeError = Box<dyn std::error::Error + Send + Sync>;

/// Why a json0 op could not be read, applied, transformed, composed or inverted. Nothing
/// was changed: [`super::Json0::apply`] works on a copy.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Json0Error {
    /// The JSON is not a well-formed op.
    #[error("invalid json0 op: {0}")]
    Shape(#[from] ShapeError),
    /// A component names a subtype (`t`) that is not registered.
    #[error(
        "unknown subtype {0:?}: only text0 is built in; register others with \
         Json0::register"
    )]
    UnknownSubtype(String),
    /// [`super::Json0::register`] was asked to replace text0.
    #[error("text0 is built in (si and sd are text0 edits) and cannot be replaced")]
    BuiltInSubtype,
    /// The path leads nowhere: a key or index on the way is not there.
    #[error("nothing at {path}: the path must lead through values that are there")]
    Missing { path: String },
    /// The path runs into a value that is not an object or list before its end.
    #[error("the path runs into {found} at {path}; it can only go through objects and lists")]
    Blocked { path: String, found: &'static str },
    /// A string key was used on a list.
    #[error("{path} is a list: it takes a list index (a number), not the key {key:?}")]
    KeyIntoList { path: String, key: String },
    /// A number was used on an object.
    #[error("{path} is an object: it takes a key (a string), not the index {index}")]
    IndexIntoObject { path: String, index: usize },
    /// `si` or `sd` whose path does not end in a string offset.
    #[error("{field} at {path}: the last step of the path must be the string offset, a number")]
    NoOffset { field: &'static str, path: String },
    /// `li`, `ld` or `lm` where there is no list.
    #[error("{action} needs a list at {path}, but there is {found}")]
    NotAList {
        action: &'static str,
        path: String,
        found: &'static str,
    },
    /// `oi` or `od` where there is no object.
    #[error("{action} needs an object at {path}, but there is {found}")]
    NotAnObject {
        action: &'static str,
        path: String,
        found: &'static str,
    },
    /// `na` on something that is not a number.
    #[error("na needs a number at {path}, but there is {found}")]
    NotANumber { path: String, found: &'static str },
    /// `si`, `sd` or a text0 op on something that is not a string.
    #[error("{action} needs a string at {path}, but there is {found}")]
    NotAString {
        action: &'static str,
        path: String,
        found: &'static str,
    },
    /// Adding numbers (apply or compose of `na`) overflowed the double range.
    #[error("{what} is {result} in JavaScript, which JSON cannot hold")]
    NotFinite { what: String, result: String },
    /// `ld`+`li` or `lm` at an index past the end of the list, or a subtype result placed
    /// there: JavaScript would leave a hole (`undefined`) in the list.
    #[error(
        "{action} at {path}: index {index} is past the end of the list (length {len}); \
         JavaScript would leave a hole there"
    )]
    PastEnd {
        action: &'static str,
        path: String,
        index: usize,
        len: usize,
    },
    /// The op leaves no document: `od` at the root with no `oi` after it.
    #[error(
        "the op deletes the whole document (od at the root with no oi after it); \
         replace it with od and oi in one component"
    )]
    DocumentDeleted,
    /// A text delete names other text than the string has there.
    #[error("the text at offset {offset} is {found:?}, not {expected:?} as the delete says")]
    TextMismatch {
        offset: usize,
        expected: String,
        found: String,
    },
    /// A text edit would leave half of a character outside the Basic Multilingual Plane
    /// (a lone UTF-16 surrogate) in a string, which a Rust string cannot hold.
    #[error(
        "the edit leaves half a character in the string (the lone UTF-16 code unit \
         U+{unit:04X} at offset {offset} of the edited text): an offset falls between the \
         two code units of a character such as an emoji; use an offset before or after it"
    )]
    HalfCharacter { offset: usize, unit: u16 },
    /// Two concurrent text deletes remove different text where they overlap.
    #[error(
        "two concurrent deletes remove different text where they overlap ({ours:?} and \
         {theirs:?}): the ops are not on the same document"
    )]
    DeletesDiffer { ours: String, theirs: String },
    /// Two ops given to transform do not apply to one document, and transforming them as
    /// ot-json0 does gives something JSON or a well-formed component cannot hold.
    #[error("the two ops do not apply to the same document: transforming them gives {0}")]
    Mismatched(String),
    /// `lm` at a path that does not end in a list index has no inverse (ot-json0 would
    /// give a move to a key).
    #[error("{0} cannot be inverted: lm moves a list item, and its path ends in a key")]
    NotInvertible(String),
    /// A list index or offset left the range 0..=2^53-1 while transforming.
    #[error("an index went out of range (below 0 or above 2^53 - 1) while transforming")]
    IndexOutOfRange,
    /// A registered subtype refused its op.
    #[error("subtype {name:?}: {source}")]
    Subtype {
        name: String,
        #[source]
        source: SubtypeError,
    },
}
