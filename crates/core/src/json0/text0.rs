//! text0: the string subtype json0 edits strings with (ot-json0's `lib/text0.js`).
//!
//! A text0 op is a list of components, each an insert (`{"p": 3, "i": "abc"}`) or a
//! delete (`{"p": 3, "d": "abc"}`) at an offset, applied one after another. json0's `si`
//! and `sd` are single text0 components on the string at the path without its last step;
//! `{"t": "text0", "o": [...]}` is a whole text0 op on the string at the path. Offsets and
//! lengths are UTF-16 code units, and the work is done on code units ([`super::utf16`]), so
//! that an op may cut a character in two on the way as JavaScript does; a result that
//! keeps half a character is refused.
//!
//! As in ot-json0, inserting past the end of the string appends, and a delete must name
//! the text it deletes ([`Json0Error::TextMismatch`]). Empty inserts and deletes change
//! nothing, and [`append`] drops them.

use serde_json::{Map, Value};

use super::error::Json0Error;
use super::json_form::{kind, read_index, string_field, wrong_type};
use super::op::Side;
use super::transform_list::{self, Rules};
use super::utf16;
use super::validate::{self, ShapeError};

/// The name json0 components give the subtype in `t`.
pub const NAME: &str = "text0";

/// A text0 op.
pub type TextOp = Vec<TextComponent>;

/// One insert or delete at an offset (UTF-16 code units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextComponent {
    pub offset: usize,
    pub edit: Edit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// (`i`) Inserts this text.
    Insert(String),
    /// (`d`) Deletes this text, which must be what the string has there.
    Delete(String),
}

impl TextComponent {
    pub fn insert(offset: usize, text: impl Into<String>) -> TextComponent {
        TextComponent {
            offset,
            edit: Edit::Insert(text.into()),
        }
    }

    pub fn delete(offset: usize, text: impl Into<String>) -> TextComponent {
        TextComponent {
            offset,
            edit: Edit::Delete(text.into()),
        }
    }

    fn text(&self) -> &str {
        match &self.edit {
            Edit::Insert(s) | Edit::Delete(s) => s,
        }
    }
}

/// Reads a text0 op: a JSON array of `{"p": offset, "i": text}` / `{"p": offset, "d": text}`.
pub fn from_json(value: &Value) -> Result<TextOp, ShapeError> {
    let Value::Array(items) = value else {
        return Err(wrong_type(
            "o",
            "a text0 op: a JSON array of {p, i} and {p, d} components",
            value,
        ));
    };
    let op = items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            read_component(item, false).map_err(|e| ShapeError::InTextComponent {
                index,
                source: Box::new(e),
            })
        })
        .collect::<Result<TextOp, _>>()?;
    validate::check_text(&op)?;
    Ok(op)
}

/// A text0 op as JSON.
pub fn to_json(op: &[TextComponent]) -> Value {
    Value::Array(
        op.iter()
            .map(|c| {
                let mut out = Map::new();
                out.insert("p".into(), super::json_form::index_to_json(c.offset));
                match &c.edit {
                    Edit::Insert(s) => out.insert("i".into(), Value::String(s.clone())),
                    Edit::Delete(s) => out.insert("d".into(), Value::String(s.clone())),
                };
                Value::Object(out)
            })
            .collect(),
    )
}

/// One component; `p` may be left out when `lenient` (text0's `normalize` makes it 0).
fn read_component(value: &Value, lenient: bool) -> Result<TextComponent, ShapeError> {
    let Value::Object(fields) = value else {
        return Err(ShapeError::NotAnObject { found: kind(value) });
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "p" | "i" | "d"))
    {
        return Err(ShapeError::UnknownTextField(unknown.clone()));
    }
    let offset = match fields.get("p") {
        None | Some(Value::Null) if lenient => 0,
        p => {
            let p = p.cloned().unwrap_or(Value::Null);
            read_index(&p)
                .ok_or_else(|| wrong_type("p", "a string offset (a whole number from 0)", &p))?
        }
    };
    let edit = match (fields.get("i"), fields.get("d")) {
        (Some(i), None) => Edit::Insert(string_field("i", i.clone())?),
        (None, Some(d)) => Edit::Delete(string_field("d", d.clone())?),
        _ => return Err(ShapeError::TextInsertOrDelete),
    };
    Ok(TextComponent { offset, edit })
}

/// The string after `op`.
pub fn apply(snapshot: &str, op: &[TextComponent]) -> Result<String, Json0Error> {
    utf16::string(&apply_units(utf16::units(snapshot), op)?)
}

/// `op` applied to a string of code units, which may cut a character in two.
pub(super) fn apply_units(
    mut text: utf16::Units,
    op: &[TextComponent],
) -> Result<utf16::Units, Json0Error> {
    for c in op {
        match &c.edit {
            Edit::Insert(s) => text = utf16::inject(&text, c.offset, &utf16::units(s)),
            Edit::Delete(s) => {
                let deleted = utf16::units(s);
                let end = c.offset.saturating_add(deleted.len());
                let found = utf16::slice(&text, c.offset, end);
                if found != deleted.as_slice() {
                    return Err(Json0Error::TextMismatch {
                        offset: c.offset,
                        expected: s.clone(),
                        found: String::from_utf16_lossy(found),
                    });
                }
                let rest = utf16::slice_from(&text, end).to_vec();
                text.truncate(c.offset.min(text.len()));
                text.extend(rest);
            }
        }
    }
    Ok(text)
}

/// Appends `c` to `op`: an insert into or right after the last insert merges with it, a
/// delete that ends where the last delete started (or covers it) merges with it, and an
/// empty insert or delete is dropped. ot-json0's `text._append`. On an error `op` is
/// unchanged.
pub fn append(op: &mut TextOp, c: TextComponent) -> Result<(), Json0Error> {
    let Some(last) = op.last() else {
        if !c.text().is_empty() {
            op.push(c);
        }
        return Ok(());
    };
    let mut pieces = vec![Piece::of(last)];
    append_piece(&mut pieces, Piece::of(&c));
    let merged = pieces
        .into_iter()
        .map(Piece::into_component)
        .collect::<Result<Vec<_>, _>>()?;
    op.pop();
    op.extend(merged);
    Ok(())
}

/// `first` then `second` as one op.
pub fn compose(first: &[TextComponent], second: &[TextComponent]) -> Result<TextOp, Json0Error> {
    let mut op = pieces(first);
    for c in second {
        append_piece(&mut op, Piece::of(c));
    }
    components(op)
}

/// An op in its tidy form: components merged as [`append`] merges them. Takes a single
/// component as well as a list, and a missing `p` as 0 (text0's `normalize`).
pub fn normalize(value: &Value) -> Result<TextOp, Json0Error> {
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    let mut op = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let c = read_component(item, true).map_err(|e| ShapeError::InTextComponent {
            index,
            source: Box::new(e),
        })?;
        validate::check_text(std::slice::from_ref(&c))?;
        append_piece(&mut op, Piece::of(&c));
    }
    components(op)
}

/// The op that undoes `op`.
pub fn invert(op: &[TextComponent]) -> TextOp {
    op.iter()
        .rev()
        .map(|c| TextComponent {
            offset: c.offset,
            edit: match &c.edit {
                Edit::Insert(s) => Edit::Delete(s.clone()),
                Edit::Delete(s) => Edit::Insert(s.clone()),
            },
        })
        .collect()
}

/// `op` transformed against the concurrent `other`; `side` breaks ties between inserts
/// at the same offset ([`Side::Left`] goes first).
pub fn transform(
    op: &[TextComponent],
    other: &[TextComponent],
    side: Side,
) -> Result<TextOp, Json0Error> {
    components(transform_list::transform(
        &TextRules,
        &pieces(op),
        &pieces(other),
        side,
    )?)
}

/// Both ops transformed against each other (`left` wins ties).
pub fn transform_x(
    left: &[TextComponent],
    right: &[TextComponent],
) -> Result<(TextOp, TextOp), Json0Error> {
    let (left, right) = transform_list::transform_x(&TextRules, pieces(left), pieces(right))?;
    Ok((components(left)?, components(right)?))
}

/// `c` transformed against the concurrent component `other`: none, one or two components
/// (a delete around an insert). For json0's `si`/`sd`.
pub(super) fn transform_component(
    c: &TextComponent,
    other: &TextComponent,
    side: Side,
) -> Result<TextOp, Json0Error> {
    let mut dest = Vec::new();
    transform_piece(&mut dest, &Piece::of(c), &Piece::of(other), side)?;
    components(dest)
}

/// Where a cursor at `position` goes when `op` is applied; at an insert right at the
/// cursor it moves after the text if `side` is [`Side::Right`].
pub fn transform_cursor(position: usize, op: &[TextComponent], side: Side) -> usize {
    op.iter().fold(position, |at, c| {
        transform_position(at, &Piece::of(c), side == Side::Right)
    })
}

/// A component with its text as UTF-16 code units: what text0 computes with.
#[derive(Debug, Clone)]
struct Piece {
    offset: usize,
    insert: bool,
    text: utf16::Units,
}

impl Piece {
    fn of(c: &TextComponent) -> Piece {
        let (insert, text) = match &c.edit {
            Edit::Insert(s) => (true, s),
            Edit::Delete(s) => (false, s),
        };
        Piece {
            offset: c.offset,
            insert,
            text: utf16::units(text),
        }
    }

    fn into_component(self) -> Result<TextComponent, Json0Error> {
        let text = utf16::string(&self.text)?;
        Ok(TextComponent {
            offset: self.offset,
            edit: if self.insert {
                Edit::Insert(text)
            } else {
                Edit::Delete(text)
            },
        })
    }

    fn delete(offset: usize, text: &[u16]) -> Piece {
        Piece {
            offset,
            insert: false,
            text: text.to_vec(),
        }
    }
}

fn pieces(op: &[TextComponent]) -> Vec<Piece> {
    op.iter().map(Piece::of).collect()
}

fn components(pieces: Vec<Piece>) -> Result<TextOp, Json0Error> {
    pieces.into_iter().map(Piece::into_component).collect()
}

/// [`append`] on code units.
fn append_piece(op: &mut Vec<Piece>, c: Piece) {
    if c.text.is_empty() {
        return;
    }
    let Some(last) = op.last_mut() else {
        op.push(c);
        return;
    };
    if last.insert
        && c.insert
        && last.offset <= c.offset
        && c.offset <= last.offset + last.text.len()
    {
        last.text = utf16::inject(&last.text, c.offset - last.offset, &c.text);
    } else if !last.insert
        && !c.insert
        && c.offset <= last.offset
        && last.offset <= c.offset + c.text.len()
    {
        last.text = utf16::inject(&c.text, last.offset - c.offset, &last.text);
        last.offset = c.offset;
    } else {
        op.push(c);
    }
}

/// Where offset `position` goes when `c` is applied.
fn transform_position(position: usize, c: &Piece, insert_after: bool) -> usize {
    let len = c.text.len();
    if c.insert {
        if c.offset < position || (c.offset == position && insert_after) {
            position + len
        } else {
            position
        }
    } else if position <= c.offset {
        position
    } else if position <= c.offset + len {
        c.offset
    } else {
        position - len
    }
}

/// Appends `c` transformed against the concurrent `other` to `dest` (text0's
/// `transformComponent`).
fn transform_piece(
    dest: &mut Vec<Piece>,
    c: &Piece,
    other: &Piece,
    side: Side,
) -> Result<(), Json0Error> {
    if c.insert {
        let offset = transform_position(c.offset, other, side == Side::Right);
        append_piece(
            dest,
            Piece {
                offset,
                insert: true,
                text: c.text.clone(),
            },
        );
        return Ok(());
    }
    let deleted = &c.text;
    if other.insert {
        // The insert may land inside what we delete: delete around it.
        let mut rest = deleted.as_slice();
        if c.offset < other.offset {
            let cut = other.offset - c.offset;
            append_piece(dest, Piece::delete(c.offset, utf16::slice(deleted, 0, cut)));
            rest = utf16::slice_from(deleted, cut);
        }
        if !rest.is_empty() {
            append_piece(dest, Piece::delete(c.offset + other.text.len(), rest));
        }
        return Ok(());
    }
    let (ours_len, theirs_len) = (deleted.len(), other.text.len());
    if c.offset >= other.offset + theirs_len {
        append_piece(dest, Piece::delete(c.offset - theirs_len, deleted));
    } else if c.offset + ours_len <= other.offset {
        append_piece(dest, c.clone());
    } else {
        // They overlap: delete only what the other did not.
        let mut left = Vec::new();
        if c.offset < other.offset {
            left.extend_from_slice(utf16::slice(deleted, 0, other.offset - c.offset));
        }
        if c.offset + ours_len > other.offset + theirs_len {
            left.extend_from_slice(utf16::slice_from(
                deleted,
                other.offset + theirs_len - c.offset,
            ));
        }
        let start = c.offset.max(other.offset);
        let end = (c.offset + ours_len).min(other.offset + theirs_len);
        let ours = utf16::slice(deleted, start - c.offset, end - c.offset);
        let theirs = utf16::slice(&other.text, start - other.offset, end - other.offset);
        if ours != theirs {
            return Err(Json0Error::DeletesDiffer {
                ours: String::from_utf16_lossy(ours),
                theirs: String::from_utf16_lossy(theirs),
            });
        }
        if !left.is_empty() {
            let offset = transform_position(c.offset, other, false);
            append_piece(dest, Piece::delete(offset, &left));
        }
    }
    Ok(())
}

/// text0's rules for [`transform_list`].
struct TextRules;

impl Rules for TextRules {
    type Component = Piece;

    fn transform_component(
        &self,
        dest: &mut Vec<Piece>,
        c: &Piece,
        other: &Piece,
        side: Side,
    ) -> Result<(), Json0Error> {
        transform_piece(dest, c, other, side)
    }

    fn append(&self, op: &mut Vec<Piece>, c: Piece) -> Result<(), Json0Error> {
        append_piece(op, c);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn op(value: Value) -> TextOp {
        from_json(&value).unwrap()
    }

    #[test]
    fn apply_counts_utf16_code_units() {
        assert_eq!(
            apply("a😀b", &op(json!([{"p":3,"i":"€"}]))).unwrap(),
            "a😀€b"
        );
        assert_eq!(
            apply("a😀b", &op(json!([{"p":1,"d":"😀"},{"p":1,"i":"-"}]))).unwrap(),
            "a-b"
        );
        assert_eq!(apply("ab", &op(json!([{"p":7,"i":"c"}]))).unwrap(), "abc");
        assert_eq!(apply("ab", &op(json!([{"p":7,"d":""}]))).unwrap(), "ab");
        let err = apply("ab", &op(json!([{"p":1,"d":"bc"}]))).unwrap_err();
        assert!(
            matches!(err, Json0Error::TextMismatch { offset: 1, .. }),
            "{err}"
        );
        let err = apply("😀", &op(json!([{"p":1,"i":"x"}]))).unwrap_err();
        assert!(
            matches!(err, Json0Error::HalfCharacter { unit: 0xD83D, .. }),
            "{err}"
        );
        // Cut on the way, whole at the end.
        assert_eq!(
            apply("😀", &op(json!([{"p":1,"i":"x"},{"p":1,"d":"x"}]))).unwrap(),
            "😀"
        );
    }

    #[test]
    fn append_merges_neighbours_and_drops_empty_edits() {
        let mut o = op(json!([{"p":2,"i":"ab"}]));
        append(&mut o, TextComponent::insert(3, "😀")).unwrap();
        assert_eq!(o, op(json!([{"p":2,"i":"a😀b"}])));
        append(&mut o, TextComponent::insert(9, "")).unwrap();
        append(&mut o, TextComponent::delete(0, "")).unwrap();
        assert_eq!(o, op(json!([{"p":2,"i":"a😀b"}])));
        append(&mut o, TextComponent::delete(5, "x")).unwrap();
        append(&mut o, TextComponent::delete(4, "y")).unwrap();
        assert_eq!(o, op(json!([{"p":2,"i":"a😀b"},{"p":4,"d":"yx"}])));
        // A merge that would cut a character leaves the op as it was.
        let mut o = op(json!([{"p":0,"i":"😀"}]));
        assert!(append(&mut o, TextComponent::insert(1, "x")).is_err());
        assert_eq!(o, op(json!([{"p":0,"i":"😀"}])));
    }

    #[test]
    fn transform_splits_and_drops_deletes() {
        let t = |a: Value, b: Value, side| transform(&op(a), &op(b), side).unwrap();
        assert_eq!(
            t(
                json!([{"p":0,"d":"a😀"}]),
                json!([{"p":1,"i":"x"}]),
                Side::Left
            ),
            op(json!([{"p":0,"d":"a"},{"p":1,"d":"😀"}]))
        );
        assert_eq!(
            t(
                json!([{"p":0,"d":"abc"}]),
                json!([{"p":1,"d":"b"}]),
                Side::Left
            ),
            op(json!([{"p":0,"d":"ac"}]))
        );
        assert_eq!(
            t(
                json!([{"p":3,"i":"x"}]),
                json!([{"p":3,"i":"y"}]),
                Side::Left
            ),
            op(json!([{"p":3,"i":"x"}]))
        );
        assert_eq!(
            t(
                json!([{"p":3,"i":"x"}]),
                json!([{"p":3,"i":"😀"}]),
                Side::Right
            ),
            op(json!([{"p":5,"i":"x"}]))
        );
        let err = transform(
            &op(json!([{"p":0,"d":"ab"}])),
            &op(json!([{"p":1,"d":"c"}])),
            Side::Left,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "two concurrent deletes remove different text where they overlap (\"b\" and \"c\"): the ops are not on the same document"
        );
        let err = transform(
            &op(json!([{"p":0,"d":"😀"}])),
            &op(json!([{"p":1,"i":"x"}])),
            Side::Left,
        )
        .unwrap_err();
        assert!(matches!(err, Json0Error::HalfCharacter { .. }), "{err}");
    }

    #[test]
    fn invert_and_cursor() {
        assert_eq!(
            invert(&op(json!([{"p":0,"i":"a"},{"p":5,"d":"b"}]))),
            op(json!([{"p":5,"i":"b"},{"p":0,"d":"a"}]))
        );
        assert_eq!(
            transform_cursor(3, &op(json!([{"p":1,"i":"😀"}])), Side::Left),
            5
        );
        assert_eq!(
            transform_cursor(3, &op(json!([{"p":1,"d":"ab"}])), Side::Left),
            1
        );
    }

    #[test]
    fn json_form() {
        let o = op(json!([{"i":"x","p":1.0},{"d":"y","p":0}]));
        assert_eq!(to_json(&o), json!([{"p":1,"i":"x"},{"p":0,"d":"y"}]));
        assert!(normalize(&json!({"p":1})).is_err(), "neither i nor d");
        assert!(normalize(&json!([{"p":-1,"i":"x"}])).is_err());
    }
}
