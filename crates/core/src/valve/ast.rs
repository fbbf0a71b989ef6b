//! A parsed rule: an expression tree. Names are resolved when the rule is parsed, so
//! evaluation never looks a variable up by its text.

use std::sync::Arc;

use regex::{Regex, RegexBuilder};

use super::error::SyntaxError;

#[derive(Debug, Clone)]
pub enum Expr {
    Undefined,
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Regex(Arc<JsRegex>),
    /// `` `a${x}b` ``: `quasis` has one more element than the expressions.
    Template(Vec<String>, Vec<Expr>),
    Array(Vec<Expr>),
    Var(Var),
    Member {
        object: Box<Expr>,
        property: Prop,
        /// `?.`: a nullish object ends the whole chain with `undefined`.
        optional: bool,
    },
    Call {
        callee: Callee,
        args: Vec<Expr>,
    },
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
}

/// The names a rule can use.
#[derive(Debug, Clone, PartialEq)]
pub enum Var {
    /// `_`, the cross-reference function, used as a value.
    CrossRef,
    User,
    Data,
    OldData,
    Now,
    Action,
    Name,
    /// A `$variable` of the rule's name pattern: its index among the pattern's captures.
    Path(usize),
    /// A name that exists nowhere: reading it throws, as in JavaScript (`typeof` excepted).
    Unknown(String),
}

#[derive(Debug, Clone)]
pub enum Prop {
    Name(String),
    Computed(Box<Expr>),
}

#[derive(Debug, Clone)]
pub enum Callee {
    /// `_('other/record')`
    CrossRef,
    /// `value.method(...)`, one of the methods deepstream allows.
    Method {
        object: Box<Expr>,
        method: Method,
        optional: bool,
    },
}

/// The functions deepstream allows a rule to call (besides `_`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    StartsWith,
    EndsWith,
    Includes,
    IndexOf,
    Match,
    ToUpperCase,
    ToLowerCase,
    Trim,
}

impl Method {
    pub fn from_name(name: &str) -> Option<Method> {
        Some(match name {
            "startsWith" => Method::StartsWith,
            "endsWith" => Method::EndsWith,
            "includes" => Method::Includes,
            "indexOf" => Method::IndexOf,
            "match" => Method::Match,
            "toUpperCase" => Method::ToUpperCase,
            "toLowerCase" => Method::ToLowerCase,
            "trim" => Method::Trim,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::StartsWith => "startsWith",
            Method::EndsWith => "endsWith",
            Method::Includes => "includes",
            Method::IndexOf => "indexOf",
            Method::Match => "match",
            Method::ToUpperCase => "toUpperCase",
            Method::ToLowerCase => "toLowerCase",
            Method::Trim => "trim",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Not,
    Neg,
    Plus,
    BitNot,
    Typeof,
    Void,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    And,
    Or,
    Nullish,
    StrictEq,
    StrictNe,
    LooseEq,
    LooseNe,
    Lt,
    Gt,
    Le,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Pow,
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    Shr,
    UShr,
}

/// A JavaScript regular expression, run by the `regex` crate: linear time whatever the
/// input, so a hostile pattern or record cannot stall the server. Patterns using
/// JavaScript features the crate lacks (look-around, back-references) are refused when
/// the rule is loaded.
#[derive(Debug)]
pub struct JsRegex {
    pub regex: Regex,
    pub source: String,
    pub flags: String,
    pub global: bool,
}

/// Bounds on one compiled pattern, in bytes of the compiled program.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl JsRegex {
    pub fn new(source: &str, flags: &str) -> Result<JsRegex, String> {
        let mut builder_flags = String::new();
        let mut global = false;
        for f in flags.chars() {
            match f {
                'g' => global = true,
                'i' | 'm' | 's' => builder_flags.push(f),
                'u' | 'y' | 'd' | 'v' => {}
                other => return Err(format!("invalid regular expression flag {other:?}")),
            }
        }
        // JavaScript lets `/` be escaped; the regex crate does not need it.
        let translated = source.replace("\\/", "/");
        let regex = RegexBuilder::new(&translated)
            .case_insensitive(builder_flags.contains('i'))
            .multi_line(builder_flags.contains('m'))
            .dot_matches_new_line(builder_flags.contains('s'))
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .nest_limit(64)
            .build()
            .map_err(|e| {
                let text = e.to_string();
                let last = text.lines().last().unwrap_or(&text).trim().to_owned();
                format!("regular expression /{source}/ is not supported: {last}")
            })?;
        Ok(JsRegex {
            regex,
            source: source.to_owned(),
            flags: flags.to_owned(),
            global,
        })
    }

    pub(crate) fn literal(
        source: &str,
        flags: &str,
        at: usize,
    ) -> Result<Arc<JsRegex>, SyntaxError> {
        JsRegex::new(source, flags)
            .map(Arc::new)
            .map_err(|m| SyntaxError::new(at, m))
    }
}

/// Walks an expression tree.
pub(crate) fn visit(expr: &Expr, f: &mut impl FnMut(&Expr)) {
    f(expr);
    match expr {
        Expr::Template(_, parts) | Expr::Array(parts) => parts.iter().for_each(|e| visit(e, f)),
        Expr::Member {
            object, property, ..
        } => {
            visit(object, f);
            if let Prop::Computed(p) = property {
                visit(p, f);
            }
        }
        Expr::Call { callee, args } => {
            if let Callee::Method { object, .. } = callee {
                visit(object, f);
            }
            args.iter().for_each(|e| visit(e, f));
        }
        Expr::Unary(_, e) => visit(e, f),
        Expr::Binary(_, a, b) => {
            visit(a, f);
            visit(b, f);
        }
        Expr::Cond(a, b, c) => {
            visit(a, f);
            visit(b, f);
            visit(c, f);
        }
        _ => {}
    }
}
