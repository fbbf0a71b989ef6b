//! The filter's typed form, and parsing it from a query object.

use serde_json::{Map, Value};

use super::error::{QueryError, type_name};
use super::path::FieldPath;

/// What a document must satisfy. An empty `And` matches everything.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every filter holds (the fields of one query object, and `$and`).
    And(Vec<Filter>),
    /// At least one holds (`$or`; never empty).
    Or(Vec<Filter>),
    /// None holds (`$nor`; never empty).
    Nor(Vec<Filter>),
    /// Every condition holds for the field at `path` (`{path: ...}`).
    Field { path: FieldPath, conds: Vec<Cond> },
}

/// A condition on the values a path reaches. Except where said, a condition holds if it
/// holds for one of them or for an element of one that is an array.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// Deep equality (`{a: v}`, `$eq`). `null` also matches a missing field.
    Eq(Value),
    /// Not `Eq`: also matches a missing field (unless the operand is `null`).
    Ne(Value),
    /// Type-bracketed comparisons: only values of the operand's type (see `order.rs`).
    /// `$gte`/`$lte` with `null` are `Eq(null)`; `$gt`/`$lt` with `null` match nothing.
    Gt(Value),
    Gte(Value),
    Lt(Value),
    Lte(Value),
    /// `Eq` to one of the values.
    In(Vec<Value>),
    /// Not `In`.
    Nin(Vec<Value>),
    /// Whether the path reaches anything at all (a `null` value exists).
    Exists(bool),
    /// A reached value is an array of this length (its elements are not looked into).
    Size(u64),
    /// A reached value is an array with an element that matches.
    ElemMatch(ElemMatch),
    /// Not every one of these conditions holds (`$not: {...}`); matches a missing field.
    Not(Vec<Cond>),
}

/// What `$elemMatch` asks of an array element.
#[derive(Debug, Clone, PartialEq)]
pub enum ElemMatch {
    /// Conditions on the element itself (`{$elemMatch: {$gt: 1, $lt: 5}}`).
    Conds(Vec<Cond>),
    /// A filter on the element's fields (`{$elemMatch: {name: "x", n: {$gt: 1}}}`); an
    /// element that is not an object has no fields.
    Filter(Box<Filter>),
}

/// Top-level keys ShareDB's adapters ignore rather than refuse (`sharedb-mongo` turns
/// them into cursor calls).
const IGNORED: [&str; 2] = ["$comment", "$hint"];

impl Filter {
    /// Parses a filter object: field conditions and `$and`/`$or`/`$nor`. `what` names it
    /// in errors. The result controls (`$sort`, ...) are [`Query`](super::Query)'s, and
    /// refused here.
    pub fn parse(value: &Value, what: &str) -> Result<Filter, QueryError> {
        let Value::Object(map) = value else {
            return Err(QueryError::NotAnObject {
                what: what.to_owned(),
                found: type_name(value),
            });
        };
        Filter::parse_entries(map.iter())
    }

    /// The filter of a query object's entries (the caller has taken out what is not a
    /// filter).
    pub(super) fn parse_entries<'a>(
        entries: impl Iterator<Item = (&'a String, &'a Value)>,
    ) -> Result<Filter, QueryError> {
        let mut all = Vec::new();
        for (key, value) in entries {
            match key.as_str() {
                "$and" => all.push(Filter::And(parse_list("$and", value)?)),
                "$or" => all.push(Filter::Or(parse_list("$or", value)?)),
                "$nor" => all.push(Filter::Nor(parse_list("$nor", value)?)),
                k if IGNORED.contains(&k) => {}
                k if k.starts_with('$') => {
                    return Err(QueryError::UnknownOperator {
                        operator: k.to_owned(),
                        at: None,
                    });
                }
                field => {
                    let path = FieldPath::parse(field)?;
                    let conds = parse_conds(value, field)?;
                    all.push(Filter::Field { path, conds });
                }
            }
        }
        Ok(if all.len() == 1 {
            all.pop().expect("one element")
        } else {
            Filter::And(all)
        })
    }
}

/// The operand of `$and`/`$or`/`$nor`: a non-empty array of filter objects.
fn parse_list(operator: &str, value: &Value) -> Result<Vec<Filter>, QueryError> {
    match value {
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| Filter::parse(item, &format!("each filter of {operator}")))
            .collect(),
        other => Err(QueryError::BadOperand {
            operator: operator.to_owned(),
            expected: "a non-empty array of filter objects",
            found: describe(other),
        }),
    }
}

/// A field's conditions: an object of operators, or a value to equal.
fn parse_conds(value: &Value, field: &str) -> Result<Vec<Cond>, QueryError> {
    match operators(value) {
        Some(Ok(map)) => map
            .iter()
            .map(|(op, operand)| parse_op(op, operand, field))
            .collect(),
        Some(Err(())) => Err(QueryError::MixedOperators {
            field: field.to_owned(),
        }),
        None => Ok(vec![Cond::Eq(value.clone())]),
    }
}

/// `Some(Ok(map))` for an object of operators only, `Some(Err(()))` for one that mixes
/// operators with plain keys, `None` for any other value (equality).
fn operators(value: &Value) -> Option<Result<&Map<String, Value>, ()>> {
    let Value::Object(map) = value else {
        return None;
    };
    let ops = map.keys().filter(|k| k.starts_with('$')).count();
    match ops {
        0 => None,
        n if n == map.len() => Some(Ok(map)),
        _ => Some(Err(())),
    }
}

fn parse_op(op: &str, operand: &Value, field: &str) -> Result<Cond, QueryError> {
    let bad = |expected: &'static str| QueryError::BadOperand {
        operator: op.to_owned(),
        expected,
        found: describe(operand),
    };
    Ok(match op {
        "$eq" => Cond::Eq(operand.clone()),
        "$ne" => Cond::Ne(operand.clone()),
        "$gt" => Cond::Gt(operand.clone()),
        "$gte" => Cond::Gte(operand.clone()),
        "$lt" => Cond::Lt(operand.clone()),
        "$lte" => Cond::Lte(operand.clone()),
        "$in" | "$nin" => {
            let Value::Array(values) = operand else {
                return Err(bad("an array"));
            };
            if op == "$in" {
                Cond::In(values.clone())
            } else {
                Cond::Nin(values.clone())
            }
        }
        "$exists" => Cond::Exists(match operand {
            Value::Bool(b) => *b,
            // MongoDB and mingo take 1 and 0 too.
            Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
            _ => return Err(bad("true or false")),
        }),
        "$size" => Cond::Size(
            operand
                .as_u64()
                .ok_or_else(|| bad("a non-negative integer"))?,
        ),
        "$elemMatch" => {
            let Value::Object(map) = operand else {
                return Err(bad("an object"));
            };
            let on_element = !map.is_empty()
                && map
                    .keys()
                    .all(|k| k.starts_with('$') && !matches!(k.as_str(), "$and" | "$or" | "$nor"));
            if map.is_empty() {
                // mingo reads `{$elemMatch: {}}` as an element equal to `{}`.
                ElemMatch::Conds(vec![Cond::Eq(operand.clone())])
            } else if on_element {
                ElemMatch::Conds(
                    map.iter()
                        .map(|(op, operand)| parse_op(op, operand, field))
                        .collect::<Result<_, _>>()?,
                )
            } else {
                ElemMatch::Filter(Box::new(Filter::parse(operand, "$elemMatch")?))
            }
            .into()
        }
        "$not" => match operators(operand) {
            Some(Ok(map)) => Cond::Not(
                map.iter()
                    .map(|(op, operand)| parse_op(op, operand, field))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(bad("an object of operators")),
        },
        other => {
            return Err(QueryError::UnknownOperator {
                operator: other.to_owned(),
                at: Some(field.to_owned()),
            });
        }
    })
}

impl From<ElemMatch> for Cond {
    fn from(m: ElemMatch) -> Cond {
        Cond::ElemMatch(m)
    }
}

/// An operand for a message: its type, and the value itself if short.
fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.len() <= 40 {
        format!("{} ({text})", type_name(value))
    } else {
        type_name(value).to_owned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> Result<Filter, QueryError> {
        Filter::parse(&v, "the query")
    }

    fn field(path: &str, conds: Vec<Cond>) -> Filter {
        Filter::Field {
            path: FieldPath::parse(path).unwrap(),
            conds,
        }
    }

    #[test]
    fn fields_and_operators() {
        assert_eq!(parse(json!({})).unwrap(), Filter::And(vec![]));
        assert_eq!(
            parse(json!({"a.b": 1})).unwrap(),
            field("a.b", vec![Cond::Eq(json!(1))])
        );
        assert_eq!(
            parse(json!({"a": {"$gt": 1, "$lte": 5}, "b": {"x": 1}})).unwrap(),
            Filter::And(vec![
                field("a", vec![Cond::Gt(json!(1)), Cond::Lte(json!(5))]),
                field("b", vec![Cond::Eq(json!({"x": 1}))]),
            ])
        );
        assert_eq!(
            parse(json!({"$or": [{"a": 1}, {"b": {"$in": [1, 2]}}]})).unwrap(),
            Filter::Or(vec![
                field("a", vec![Cond::Eq(json!(1))]),
                field("b", vec![Cond::In(vec![json!(1), json!(2)])]),
            ])
        );
        assert_eq!(
            parse(json!({"l": {"$elemMatch": {"$gt": 1}}})).unwrap(),
            field(
                "l",
                vec![Cond::ElemMatch(ElemMatch::Conds(vec![Cond::Gt(json!(1))]))]
            )
        );
        assert_eq!(
            parse(json!({"l": {"$elemMatch": {"n": 1}}})).unwrap(),
            field(
                "l",
                vec![Cond::ElemMatch(ElemMatch::Filter(Box::new(field(
                    "n",
                    vec![Cond::Eq(json!(1))]
                ))))]
            )
        );
        assert_eq!(
            parse(json!({"a": {"$not": {"$size": 2}}, "$comment": "x"})).unwrap(),
            field("a", vec![Cond::Not(vec![Cond::Size(2)])])
        );
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let err = |v: Value| parse(v).unwrap_err().to_string();
        assert_eq!(
            err(json!([])),
            "the query must be an object, found an array"
        );
        assert_eq!(
            err(json!({"a": {"$regex": "x"}})),
            "unknown operator $regex (in a)"
        );
        assert_eq!(err(json!({"$where": "x"})), "unknown operator $where");
        assert_eq!(
            err(json!({"a": {"$in": 3}})),
            "$in needs an array, found a number (3)"
        );
        assert_eq!(
            err(json!({"a": {"$size": -1}})),
            "$size needs a non-negative integer, found a number (-1)"
        );
        assert_eq!(
            err(json!({"$or": []})),
            "$or needs a non-empty array of filter objects, found an array ([])"
        );
        assert_eq!(
            err(json!({"$and": [1]})),
            "each filter of $and must be an object, found a number"
        );
        assert_eq!(
            err(json!({"a": {"$gt": 1, "b": 2}})),
            "the condition on a mixes operators and plain fields"
        );
        assert_eq!(
            err(json!({"a": {"$not": 1}})),
            "$not needs an object of operators, found a number (1)"
        );
        assert_eq!(err(json!({"a..b": 1})), "bad field path \"a..b\"");
        assert_eq!(
            err(json!({"a": {"$exists": "yes"}})),
            "$exists needs true or false, found a string (\"yes\")"
        );
    }
}
