//! Normalizing an op (ot-json0's `normalize`): the op in its tidy form.
//!
//! Takes what ot-json0 takes: a list of components or a single component, and a
//! component without `p` (or with `p: null`) acts on the whole document. Components are
//! appended one by one with [`super::Json0::append`], so neighbours merge as they do when
//! composing (`[{"p":[100],"si":"h"},{"p":[101],"si":"i"}]` is `[{"p":[100],"si":"hi"}]`).
//!
//! As in ot-json0, normalizing a normal op changes nothing, with one exception: `append`
//! only looks at the last component, so a merge that changes it (a replace that keeps its
//! delete, two deletes that become one further left) can make it merge with the one
//! before on a second pass: `[li null, ld null + li "", ld ""]` normalizes to
//! `[li null, ld null]`, and that to `[]`. A second pass only makes an op shorter.

use serde_json::Value;

use super::Json0;
use super::error::Json0Error;
use super::op::{Component, Op};

impl Json0 {
    /// `op` (JSON: a list of components, or one component) in its tidy form.
    pub fn normalize(&self, op: &Value) -> Result<Op, Json0Error> {
        let items: Vec<&Value> = match op {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        let mut out = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            let c = Component::from_json_lenient(item).map_err(|e| e.in_component(index))?;
            self.check_subtypes(std::slice::from_ref(&c))?;
            self.append_checked(&mut out, c)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::json0::op_to_json;

    fn normalize(op: Value) -> Result<Value, Json0Error> {
        Json0::new().normalize(&op).map(|op| op_to_json(&op))
    }

    #[test]
    fn takes_the_forms_ot_json0_takes() {
        let cases = [
            (json!([]), json!([])),
            (json!({"p":["a"],"oi":1}), json!([{"p":["a"],"oi":1}])),
            (json!({"oi":1}), json!([{"p":[],"oi":1}])),
            (
                json!([{"p":null,"na":1},{"na":2}]),
                json!([{"p":[],"na":3}]),
            ),
            (
                json!([{"p":[100],"si":"h"},{"p":[101],"si":"i"}]),
                json!([{"p":[100],"si":"hi"}]),
            ),
            (
                json!([{"p":["k"],"od":1},{"p":["k"],"oi":2},{"p":["x"],"li":0}]),
                json!([{"p":["k"],"od":1,"oi":2},{"p":["x"],"li":0}]),
            ),
        ];
        for (op, want) in cases {
            let normal = normalize(op.clone()).unwrap();
            assert_eq!(normal, want, "{op}");
            assert_eq!(
                normalize(normal.clone()).unwrap(),
                normal,
                "idempotent: {op}"
            );
        }
    }

    #[test]
    fn errors_name_the_component() {
        let err = normalize(json!([{"oi":1},{"p":[],"xx":1}])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid json0 op: component 1: unknown field `xx`: a component has `p` and one of na, si, sd, li, ld, lm, oi, od, or t with o"
        );
        assert!(normalize(json!(5)).is_err());
        assert!(matches!(
            normalize(json!({"t":"rich","o":[]})),
            Err(Json0Error::UnknownSubtype(name)) if name == "rich"
        ));
    }
}
