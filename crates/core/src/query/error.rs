//! [`QueryError`]: why a query was refused.

/// Why a query cannot be run. Every message names the operator, field or operand at
/// fault, in words a ShareDB user can act on. New kinds may be added: match with `_`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// A query, or a filter inside `$and`/`$or`/`$nor`/`$elemMatch`, is not an object.
    #[error("{what} must be an object, found {found}")]
    NotAnObject { what: String, found: &'static str },
    /// An operator recordsync does not know (or does not support where it stands).
    #[error("unknown operator {operator}{}", match at { Some(at) => format!(" (in {at})"), None => String::new() })]
    UnknownOperator {
        operator: String,
        /// The field it was applied to, if any.
        at: Option<String>,
    },
    /// An operator's operand has the wrong type or value.
    #[error("{operator} needs {expected}, found {found}")]
    BadOperand {
        operator: String,
        expected: &'static str,
        found: String,
    },
    /// A field's condition object mixes operators with plain keys (`{$gt: 1, x: 2}`).
    #[error("the condition on {field} mixes operators and plain fields")]
    MixedOperators { field: String },
    /// A field path that is empty, has an empty segment, or names an operator.
    #[error("bad field path {path:?}")]
    BadPath { path: String },
}

/// The JSON type of `value`, for messages.
pub(super) fn type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
