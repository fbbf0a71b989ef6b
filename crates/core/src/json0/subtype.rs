//! Subtypes: other OT types embedded in a json0 document (`{"p": [...], "t": name, "o": op}`),
//! as ot-json0's `registerSubtype` adds them.
//!
//! text0 is built in ([`super::text0`]); another subtype (rich text, say) implements
//! [`Subtype`] and is registered on a [`super::Json0`] with [`super::Json0::register`].
//! A component naming a subtype that is not registered is refused by every operation
//! ([`super::Json0Error::UnknownSubtype`]).

use serde_json::Value;

use super::error::SubtypeError;
use super::op::Side;

/// An OT type json0 hands the ops of a `t` component to. Its ops are JSON values (`o`);
/// the methods are ot-json0's subtype interface.
pub trait Subtype: Send + Sync + std::fmt::Debug {
    /// The name components give in `t`.
    fn name(&self) -> &str;

    /// The value at the path after `op`. `snapshot` is `None` where the path names nothing
    /// (JavaScript's `undefined`).
    fn apply(&self, snapshot: Option<&Value>, op: &Value) -> Result<Value, SubtypeError>;

    /// `op` transformed against the concurrent `other`. A result that is an empty JSON
    /// array drops the component, as in ot-json0.
    fn transform(&self, op: &Value, other: &Value, side: Side) -> Result<Value, SubtypeError>;

    /// `first` then `second` as one op.
    fn compose(&self, first: &Value, second: &Value) -> Result<Value, SubtypeError>;

    /// The op that undoes `op`.
    fn invert(&self, op: &Value) -> Result<Value, SubtypeError>;
}
