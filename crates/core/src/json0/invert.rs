//! Inverting an op (ot-json0's `invert`): the op that undoes it, components in reverse
//! order, each inverted.
//!
//! `si`↔`sd`, `li`↔`ld`, `oi`↔`od` (a replace swaps its old and new values), `na` adds the
//! negated number, `lm` moves the item back, and a subtype op is inverted by its subtype.
//! Inverting `ld` and `od` puts back the values they carry, so an inverse undoes its op
//! only if those values are what was deleted (ops made on a document, and ops from
//! [`super::Json0::transform`], carry them).

use super::error::Json0Error;
use super::op::{Action, Component, Op, Step};
use super::{Json0, text0};
use crate::js_number;

impl Json0 {
    /// The op that undoes `op`.
    pub fn invert(&self, op: &[Component]) -> Result<Op, Json0Error> {
        self.check_subtypes(op)?;
        op.iter().rev().map(|c| self.invert_component(c)).collect()
    }

    fn invert_component(&self, c: &Component) -> Result<Component, Json0Error> {
        let mut path = c.path.clone();
        let action = match &c.action {
            Action::NumberAdd(n) => {
                // Negating a finite double gives a finite double.
                let negated = -js_number::read(n);
                Action::NumberAdd(js_number::to_json(negated).ok_or_else(|| {
                    Json0Error::NotFinite {
                        what: format!("-({n})"),
                        result: js_number::format(negated),
                    }
                })?)
            }
            Action::StringInsert(s) => Action::StringDelete(s.clone()),
            Action::StringDelete(s) => Action::StringInsert(s.clone()),
            Action::Text(op) => Action::Text(text0::invert(op)),
            Action::ListInsert(v) => Action::ListDelete(v.clone()),
            Action::ListDelete(v) => Action::ListInsert(v.clone()),
            Action::ListReplace { old, new } => Action::ListReplace {
                old: new.clone(),
                new: old.clone(),
            },
            Action::ListMove { to } => {
                let Some(Step::Index(from)) = path.last_mut() else {
                    // ot-json0 would make `lm` a key, which no list takes.
                    return Err(Json0Error::NotInvertible(c.to_json().to_string()));
                };
                // Move it back: from where it went to where it was.
                let back = std::mem::replace(from, *to);
                Action::ListMove { to: back }
            }
            Action::ObjectInsert(v) => Action::ObjectDelete(v.clone()),
            Action::ObjectDelete(v) => Action::ObjectInsert(v.clone()),
            Action::ObjectReplace { old, new } => Action::ObjectReplace {
                old: new.clone(),
                new: old.clone(),
            },
            Action::Subtype { name, op } => Action::Subtype {
                name: name.clone(),
                op: self
                    .subtype(name)?
                    .invert(op)
                    .map_err(|source| Json0Error::Subtype {
                        name: name.clone(),
                        source,
                    })?,
            },
        };
        Ok(Component { path, action })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::json0::{op_from_json, op_to_json};

    fn invert(op: Value) -> Result<Value, Json0Error> {
        Json0::new()
            .invert(&op_from_json(&op).unwrap())
            .map(|op| op_to_json(&op))
    }

    #[test]
    fn every_component_type_inverts() {
        let cases = [
            (
                json!([{"p":["n"],"na":0.1}]),
                json!([{"p":["n"],"na":-0.1}]),
            ),
            (json!([{"p":["n"],"na":0}]), json!([{"p":["n"],"na":0}])),
            (
                json!([{"p":["s",1],"si":"😀"}]),
                json!([{"p":["s",1],"sd":"😀"}]),
            ),
            (
                json!([{"p":["s",1],"sd":"x"}]),
                json!([{"p":["s",1],"si":"x"}]),
            ),
            (
                json!([{"p":["s"],"t":"text0","o":[{"p":0,"i":"a"},{"p":3,"d":"b"}]}]),
                json!([{"p":["s"],"t":"text0","o":[{"p":3,"i":"b"},{"p":0,"d":"a"}]}]),
            ),
            (json!([{"p":[0],"li":1}]), json!([{"p":[0],"ld":1}])),
            (json!([{"p":[0],"ld":1}]), json!([{"p":[0],"li":1}])),
            (
                json!([{"p":[0],"ld":1,"li":2}]),
                json!([{"p":[0],"ld":2,"li":1}]),
            ),
            (json!([{"p":["l",4],"lm":1}]), json!([{"p":["l",1],"lm":4}])),
            (json!([{"p":["k"],"oi":1}]), json!([{"p":["k"],"od":1}])),
            (json!([{"p":["k"],"od":1}]), json!([{"p":["k"],"oi":1}])),
            (
                json!([{"p":[],"od":1,"oi":2}]),
                json!([{"p":[],"od":2,"oi":1}]),
            ),
            // components in reverse order
            (
                json!([{"p":[0],"li":1},{"p":[1],"li":2}]),
                json!([{"p":[1],"ld":2},{"p":[0],"ld":1}]),
            ),
        ];
        for (op, want) in cases {
            assert_eq!(invert(op.clone()).unwrap(), want, "{op}");
        }
    }

    #[test]
    fn an_inverse_undoes_its_op() {
        let doc = json!({"l":["a","b","c"],"n":1,"s":"x😀y","o":{"k":1}});
        let op = op_from_json(&json!([
            {"p":["l",0],"lm":2},{"p":["n"],"na":41},{"p":["s",1],"sd":"😀"},
            {"p":["o","k"],"od":1,"oi":[2]},{"p":["l",1],"ld":"c"}
        ]))
        .unwrap();
        let json0 = Json0::new();
        let after = json0.apply(&doc, &op).unwrap();
        assert_eq!(
            json0.apply(&after, &json0.invert(&op).unwrap()).unwrap(),
            doc
        );
    }

    #[test]
    fn a_move_whose_path_ends_in_a_key_has_no_inverse() {
        let err = invert(json!([{"p":["l","k"],"lm":1}])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "{\"p\":[\"l\",\"k\"],\"lm\":1} cannot be inverted: lm moves a list item, and its path ends in a key"
        );
    }
}
