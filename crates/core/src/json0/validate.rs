//! What makes a component well formed, and why one is not ([`ShapeError`]).
//!
//! ot-json0 checks little before it runs (`checkValidOp`: "is `p` an array"), and its
//! `apply` throws on the rest as it meets it. Here every component is checked when it is
//! built ([`super::Component::new`], [`super::Component::from_json`]), so that apply,
//! transform, compose and invert work only on components that mean something:
//!
//! - A path step is an object key (a string) or a list index (a whole number from 0 to
//!   [`MAX_INDEX`], JavaScript's largest exact integer). The key `__proto__` is refused:
//!   in ot-json0 it reaches JavaScript's object prototype, not a key of the document.
//! - A component does exactly one thing: `na`, `si`, `sd`, `li`, `ld`, `ld`+`li`, `lm`,
//!   `oi`, `od`, `od`+`oi`, or `t`+`o`. (ot-json0 quietly picks one of several, or
//!   ignores unknown fields and carries them along.)
//! - The path may have any shape, as in ot-json0, whose transform rules and tests use
//!   components that could never apply (`li` at a key, `oi` at an index, `si` whose last
//!   step is not a number); `apply` refuses them, as ot-json0's current source does, and
//!   so does every operation that needs a string offset that is not there.
//! - `na` is a finite number; `lm` is an index; `si`, `sd` and text0's `i`/`d` are
//!   strings; `t` names a subtype (`text0` ops must be text0 ops).

use thiserror::Error;

use super::op::{Action, Step};
use super::text0::TextComponent;

/// The largest list index or string offset: 2^53 - 1, JavaScript's largest integer that
/// every client holds exactly.
pub const MAX_INDEX: usize = (1 << 53) - 1;

/// Why JSON is not a json0 op (or a component, or a text0 op inside one).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ShapeError {
    #[error("a json0 op is a JSON array of components, not {found}")]
    OpNotAList { found: &'static str },
    #[error("component {index}: {source}")]
    InComponent {
        index: usize,
        source: Box<ShapeError>,
    },
    #[error("a component is a JSON object, not {found}")]
    NotAnObject { found: &'static str },
    #[error("the component has no path `p` (give `\"p\": []` for the whole document)")]
    MissingPath,
    #[error("the path `p` must be a JSON array, not {found}")]
    PathNotAList { found: &'static str },
    #[error(
        "path step {position} is {found}: a step is an object key (a string) or a list \
         index (a whole number from 0 to 2^53 - 1)"
    )]
    BadStep { position: usize, found: String },
    #[error(
        "the key \"__proto__\" cannot be used in a path (ot-json0 would reach JavaScript's \
         object prototype, not the document)"
    )]
    ProtoKey,
    #[error(
        "unknown field `{0}`: a component has `p` and one of na, si, sd, li, ld, lm, oi, od, \
         or t with o"
    )]
    UnknownField(String),
    #[error("the component does nothing: give one of na, si, sd, li, ld, lm, oi, od, or t with o")]
    NoAction,
    #[error(
        "the component combines {0}: a component does one thing (only ld with li, od with \
         oi, and t with o go together)"
    )]
    Combined(String),
    #[error("`{field}` must be {expected}, not {found}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("`na` must be a finite number; {0} is beyond what a double holds")]
    NotFinite(String),
    #[error("`t` must name a subtype, not be empty")]
    EmptySubtypeName,
    #[error("text0 ops are `Action::Text`, not `Action::Subtype`")]
    Text0AsSubtype,
    #[error("text0 component {index} in `o`: {source}")]
    InTextComponent {
        index: usize,
        source: Box<ShapeError>,
    },
    #[error(
        "unknown field `{0}` in a text0 component: it has `p` and one of `i` (insert) or `d` \
         (delete)"
    )]
    UnknownTextField(String),
    #[error("a text0 component needs exactly one of `i` (insert) and `d` (delete)")]
    TextInsertOrDelete,
    #[error("index {0} is beyond the largest, 2^53 - 1")]
    IndexTooLarge(usize),
}

impl ShapeError {
    pub(super) fn in_component(self, index: usize) -> ShapeError {
        ShapeError::InComponent {
            index,
            source: Box::new(self),
        }
    }
}

/// Checks that `path` and `action` make a well-formed component (see the module docs).
pub(super) fn check(path: &[Step], action: &Action) -> Result<(), ShapeError> {
    for step in path {
        match step {
            Step::Key(key) if key == "__proto__" => return Err(ShapeError::ProtoKey),
            Step::Index(i) if *i > MAX_INDEX => return Err(ShapeError::IndexTooLarge(*i)),
            _ => {}
        }
    }
    match action {
        Action::ListMove { to } if *to > MAX_INDEX => Err(ShapeError::IndexTooLarge(*to)),
        Action::NumberAdd(n) if !crate::js_number::read(n).is_finite() => {
            Err(ShapeError::NotFinite(n.to_string()))
        }
        Action::Text(op) => check_text(op),
        Action::Subtype { name, .. } if name.is_empty() => Err(ShapeError::EmptySubtypeName),
        Action::Subtype { name, .. } if name == super::text0::NAME => {
            Err(ShapeError::Text0AsSubtype)
        }
        _ => Ok(()),
    }
}

/// Checks a text0 op's offsets.
pub(super) fn check_text(op: &[TextComponent]) -> Result<(), ShapeError> {
    for (index, c) in op.iter().enumerate() {
        if c.offset > MAX_INDEX {
            return Err(ShapeError::InTextComponent {
                index,
                source: Box::new(ShapeError::IndexTooLarge(c.offset)),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(k: &str) -> Step {
        Step::Key(k.into())
    }

    #[test]
    fn paths_of_any_shape_are_kept_as_in_ot_json0() {
        for (path, action) in [
            (
                vec![key("s"), Step::Index(3)],
                Action::StringInsert("x".into()),
            ),
            (vec![], Action::ObjectInsert(json!({}))),
            (vec![Step::Index(1)], Action::NumberAdd(1.into())),
            // Never applicable; apply refuses them.
            (
                vec![key("x"), Step::Index(3), key("x")],
                Action::StringInsert("x".into()),
            ),
            (vec![key("l")], Action::ListInsert(json!(1))),
            (vec![Step::Index(0)], Action::ObjectDelete(json!(1))),
            (vec![], Action::ListMove { to: 0 }),
        ] {
            assert_eq!(check(&path, &action), Ok(()), "{path:?} {action:?}");
        }
    }

    #[test]
    fn proto_keys_huge_indexes_and_infinite_numbers_are_refused() {
        let proto = vec![key("a"), key("__proto__"), key("b")];
        assert_eq!(
            check(&proto, &Action::ObjectInsert(json!(1))),
            Err(ShapeError::ProtoKey)
        );
        let huge = vec![Step::Index(MAX_INDEX + 1)];
        assert_eq!(
            check(&huge, &Action::ListInsert(json!(1))),
            Err(ShapeError::IndexTooLarge(MAX_INDEX + 1))
        );
        assert_eq!(
            check(&[Step::Index(0)], &Action::ListMove { to: MAX_INDEX + 1 }),
            Err(ShapeError::IndexTooLarge(MAX_INDEX + 1))
        );
        let inf: serde_json::Number = "1e400".parse().unwrap();
        assert!(matches!(
            check(&[], &Action::NumberAdd(inf)),
            Err(ShapeError::NotFinite(_))
        ));
    }

    #[test]
    fn subtype_names() {
        let named = |name: &str| Action::Subtype {
            name: name.into(),
            op: json!(null),
        };
        assert_eq!(check(&[], &named("")), Err(ShapeError::EmptySubtypeName));
        assert_eq!(check(&[], &named("text0")), Err(ShapeError::Text0AsSubtype));
        assert_eq!(check(&[], &named("rich-text")), Ok(()));
    }
}
