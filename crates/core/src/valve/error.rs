//! What can go wrong with a rule: when it is read (syntax) and when it runs.

use std::fmt;

/// A rule that cannot be parsed. `at` is the byte offset in the rule's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub at: usize,
    pub message: String,
}

impl SyntaxError {
    pub fn new(at: usize, message: impl Into<String>) -> Self {
        SyntaxError {
            at,
            message: message.into(),
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.at + 1)
    }
}

impl std::error::Error for SyntaxError {}

/// Why running a rule failed. deepstream answers all of these with
/// MESSAGE_PERMISSION_ERROR: the action is refused, and the reason is logged. Each holds
/// the message JavaScript (or the budget) gives, which names the part of the rule that
/// failed; there is no error underneath to keep. New kinds may be added: match with a `_`
/// arm.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EvalError {
    /// What JavaScript would throw as a TypeError (`undefined.x`, `(5).trim()`).
    Type(String),
    /// A name the rule uses that does not exist (JavaScript's ReferenceError).
    Reference(String),
    /// The rule ran past its step or memory budget.
    Budget(String),
    /// An error that ends the evaluation at once, even while records are still loading
    /// (deepstream's cross-reference of a non-string).
    Fatal(String),
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::Type(m) => write!(f, "TypeError: {m}"),
            EvalError::Reference(m) => write!(f, "ReferenceError: {m}"),
            EvalError::Budget(m) => write!(f, "rule stopped: {m}"),
            EvalError::Fatal(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for EvalError {}
