//! The json0 op types: an [`Op`] is a list of [`Component`]s, each a path and one
//! [`Action`].
//!
//! The types keep ot-json0's own shape: the path is the component's `p` exactly as the
//! JSON form has it, so for `si`/`sd` it ends in the string offset, and ot-json0's
//! transform rules, which count path lengths, carry over one to one. What the types add
//! is that a component does exactly one thing, with fields of the right types: a
//! [`Component`] can only be built through [`Component::new`], which checks the rules in
//! [`super::validate`], and every operation of this module keeps them.

use serde_json::{Number, Value};

use super::error::Json0Error;
use super::text0;
use super::validate::{self, ShapeError};

/// A json0 op: components applied one after another, each to what the ones before left.
pub type Op = Vec<Component>;

/// One step of a component's path (`p`): an index into a list, or a key of an object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    /// A list index: a whole number from 0 to [`super::MAX_INDEX`].
    Index(usize),
    /// An object key (any string but `__proto__`).
    Key(String),
}

/// Which of the two concurrent ops wins a tie in [`super::Json0::transform`]: ot-json0's
/// `'left'` / `'right'`. The server's op is transformed as `Left` against a client's,
/// the client's as `Right` against the server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

/// What a component does at its path. The JSON field each variant is written as is in
/// brackets.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// (`na`) Adds a number to the number at the path, as JavaScript adds doubles.
    NumberAdd(Number),
    /// (`si`) Inserts text into the string at the path without its last step, at the
    /// offset the last step gives (UTF-16 code units; a step that is not a number is
    /// refused where the offset is needed).
    StringInsert(String),
    /// (`sd`) Deletes this text from the string, at the offset the last step gives.
    StringDelete(String),
    /// (`t: "text0"`, `o`) Edits the string at the path with a [`text0`] op.
    Text(text0::TextOp),
    /// (`li`) Inserts a value into the list at the index the last step gives.
    ListInsert(Value),
    /// (`ld`) Deletes the list item at the index the last step gives. The value is what
    /// was there (for [`super::Json0::invert`]); it is not checked.
    ListDelete(Value),
    /// (`ld` + `li`) Replaces the list item at the index the last step gives.
    ListReplace { old: Value, new: Value },
    /// (`lm`) Moves the list item at the index the last step gives to index `to`.
    ListMove { to: usize },
    /// (`oi`) Sets the object key the last step gives (at the root: the whole document).
    /// A new key goes last; a key that is there keeps its place.
    ObjectInsert(Value),
    /// (`od`) Removes the object key the last step gives. The value is what was there
    /// (for [`super::Json0::invert`]); it is not checked.
    ObjectDelete(Value),
    /// (`od` + `oi`) Replaces the value of the key the last step gives, in its place.
    ObjectReplace { old: Value, new: Value },
    /// (`t`, `o`) An op of another registered subtype ([`super::Subtype`]) on the value at
    /// the path.
    Subtype { name: String, op: Value },
}

/// One component of an op: a path (`p`) and what to do there.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub(super) path: Vec<Step>,
    pub(super) action: Action,
}

impl Component {
    /// A component, if `path` fits `action` (`validate.rs` has the rules; else a [`ShapeError`](super::ShapeError)).
    pub fn new(path: Vec<Step>, action: Action) -> Result<Component, ShapeError> {
        validate::check(&path, &action)?;
        Ok(Component { path, action })
    }

    /// The path (`p`), as the JSON form has it: for `si`/`sd` it ends in the offset.
    pub fn path(&self) -> &[Step] {
        &self.path
    }

    pub fn action(&self) -> &Action {
        &self.action
    }

    /// ot-json0 counts one more path step for `na` and `t` components (they act on the
    /// value at their path, where the others act on a place in its container).
    pub(super) fn acts_on_value(&self) -> bool {
        matches!(
            self.action,
            Action::NumberAdd(_) | Action::Text(_) | Action::Subtype { .. }
        )
    }

    /// The path length ot-json0's transform compares (`cplength`).
    pub(super) fn operand_len(&self) -> usize {
        self.path.len() + usize::from(self.acts_on_value())
    }

    /// Whether the component deletes a list item (has `ld`).
    pub(super) fn has_ld(&self) -> bool {
        matches!(
            self.action,
            Action::ListDelete(_) | Action::ListReplace { .. }
        )
    }

    /// The value an object key is set to (`oi`), if any.
    pub(super) fn oi(&self) -> Option<&Value> {
        match &self.action {
            Action::ObjectInsert(new) | Action::ObjectReplace { new, .. } => Some(new),
            _ => None,
        }
    }

    /// Whether the component removes an object key's value (has `od`).
    pub(super) fn has_od(&self) -> bool {
        matches!(
            self.action,
            Action::ObjectDelete(_) | Action::ObjectReplace { .. }
        )
    }

    /// Whether this is an `si` or `sd` component.
    pub(super) fn is_string_op(&self) -> bool {
        matches!(
            self.action,
            Action::StringInsert(_) | Action::StringDelete(_)
        )
    }

    /// For `si`/`sd`: the path of the string (the path without its last step, as
    /// ot-json0's `p.pop()` leaves it).
    pub(super) fn string_path(&self) -> &[Step] {
        self.path.split_last().map_or(&[], |(_, base)| base)
    }

    /// The `si`/`sd` component as the text0 component it stands for, and the path of the
    /// string; `None` for other components. An error if the last step, the offset, is not
    /// a number (text0 refuses it, as in ot-json0).
    pub(super) fn text_edit(&self) -> Result<Option<(&[Step], text0::TextComponent)>, Json0Error> {
        let (field, edit) = match &self.action {
            Action::StringInsert(s) => ("si", text0::Edit::Insert(s.clone())),
            Action::StringDelete(s) => ("sd", text0::Edit::Delete(s.clone())),
            _ => return Ok(None),
        };
        match self.path.split_last() {
            Some((Step::Index(offset), base)) => Ok(Some((
                base,
                text0::TextComponent {
                    offset: *offset,
                    edit,
                },
            ))),
            _ => Err(Json0Error::NoOffset {
                field,
                path: super::json_form::path_text(&self.path),
            }),
        }
    }

    /// The `si`/`sd` component for a text0 component on the string at `base`.
    pub(super) fn from_text_edit(base: &[Step], edit: text0::TextComponent) -> Component {
        let mut path = base.to_vec();
        path.push(Step::Index(edit.offset));
        let action = match edit.edit {
            text0::Edit::Insert(s) => Action::StringInsert(s),
            text0::Edit::Delete(s) => Action::StringDelete(s),
        };
        Component { path, action }
    }
}

/// JavaScript's `===` on two path steps, where a missing step (a path too short, or
/// ot-json0's index -1 for the root) is `undefined`.
pub(super) fn same_step(a: Option<&Step>, b: Option<&Step>) -> bool {
    a == b
}

/// ot-json0's `pathMatches`: same length, every step `===`.
pub(super) fn same_path(a: &[Step], b: &[Step]) -> bool {
    a == b
}
