//! Runs a parsed rule against the facts of one request.
//!
//! Evaluation is pure and bounded: every node visited costs a step, every string or
//! array built costs its size, and a rule that runs past either budget stops with an
//! error (which denies). Cross-references `_('name')` never do I/O here: a record that is
//! not among the loaded ones is noted as needed and read as `undefined`, and the run's
//! result says which records to load before running again. That is deepstream's own
//! model (a rule is re-run once its references have loaded, at most `maxRuleIterations`
//! times), expressed without callbacks.

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::Value as Json;

use super::ast::{BinOp, Callee, Expr, JsRegex, Method, Prop, UnOp, Var};
use super::error::EvalError;
use super::value::{
    Value, compare_strings, loose_equals, same_value_zero, strict_equals, to_int32, to_number,
    to_primitive, to_string, utf16_len,
};

/// Bounds on one run of one rule.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Nodes visited, plus one per 64 bytes of string processed.
    pub max_steps: u64,
    /// Bytes of strings and arrays the rule may build.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_steps: 100_000,
            max_bytes: 1 << 20,
        }
    }
}

/// Where `_('name')` finds records. `None`: not loaded yet; `Some(None)`: the record
/// does not exist (the rule sees `null`).
pub trait Records {
    fn get(&self, name: &str) -> Option<Option<&Json>>;
}

impl Records for HashMap<String, Option<Json>> {
    fn get(&self, name: &str) -> Option<Option<&Json>> {
        HashMap::get(self, name).map(Option::as_ref)
    }
}

/// The logged-in user as rules see it: `user.isAuthenticated`, `user.id`, `user.data`.
#[derive(Debug, Clone, PartialEq)]
pub struct UserInfo {
    pub id: String,
    pub is_authenticated: bool,
    /// deepstream's serverData (`null` when there is none).
    pub data: Json,
}

impl UserInfo {
    /// The `user` object a rule reads, built once per login.
    pub fn to_json(&self) -> Json {
        serde_json::json!({
            "isAuthenticated": self.is_authenticated,
            "id": self.id,
            "data": self.data,
        })
    }
}

/// The facts a rule runs against.
pub struct Env<'a> {
    /// `user`: [`UserInfo::to_json`].
    pub user: &'a Json,
    /// `data`: the value being written (`null` where there is none).
    pub data: Option<&'a Json>,
    /// `oldData`: the record's current value (`null` when it does not exist).
    pub old_data: Option<&'a Json>,
    /// `now`: milliseconds since the Unix epoch.
    pub now: f64,
    /// `action`: deepstream's numeric action of the request.
    pub action: f64,
    /// `name`: the record name (for listen, the pattern).
    pub name: &'a str,
    /// The values of the name pattern's `$variables`, in order.
    pub vars: &'a [String],
    pub records: &'a dyn Records,
}

/// What one run produced.
#[derive(Debug, Clone, PartialEq)]
pub enum RunResult {
    /// The rule ran to the end; `true` when its value is truthy.
    Done(bool),
    /// The rule threw (deepstream: MESSAGE_PERMISSION_ERROR).
    Error(EvalError),
    /// The rule referenced records that are not loaded: load them and run again.
    Needs(Vec<String>),
}

/// Runs `expr` once.
pub fn run(expr: &Expr, env: &Env<'_>, limits: Limits) -> RunResult {
    let mut ev = Evaluator {
        env,
        limits,
        steps: 0,
        bytes: 0,
        needs: Vec::new(),
    };
    let result = ev.eval(expr);
    match result {
        Err(e @ EvalError::Fatal(_)) | Err(e @ EvalError::Budget(_)) => RunResult::Error(e),
        // Errors while references are still loading are expected (deepstream ignores
        // them too): the rule runs again once they are there.
        _ if !ev.needs.is_empty() => RunResult::Needs(ev.needs),
        Ok(v) => RunResult::Done(v.truthy()),
        Err(e) => RunResult::Error(e),
    }
}

struct Evaluator<'e, 'a> {
    env: &'e Env<'a>,
    limits: Limits,
    steps: u64,
    bytes: usize,
    needs: Vec<String>,
}

type Res<'a> = Result<Value<'a>, EvalError>;

fn type_error<T>(msg: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError::Type(msg.into()))
}

impl<'e, 'a> Evaluator<'e, 'a>
where
    'e: 'a,
{
    fn step(&mut self, n: u64) -> Result<(), EvalError> {
        self.steps += n;
        if self.steps > self.limits.max_steps {
            return Err(EvalError::Budget(format!(
                "more than {} evaluation steps",
                self.limits.max_steps
            )));
        }
        Ok(())
    }

    /// Charges for building `bytes` of new data (and the time to do it).
    fn alloc(&mut self, bytes: usize) -> Result<(), EvalError> {
        self.bytes += bytes;
        if self.bytes > self.limits.max_bytes {
            return Err(EvalError::Budget(format!(
                "built more than {} bytes of data",
                self.limits.max_bytes
            )));
        }
        self.step(bytes as u64 / 64)
    }

    fn owned(&mut self, s: String) -> Res<'a> {
        self.alloc(s.len())?;
        Ok(Value::Str(Cow::Owned(s)))
    }

    /// ToString, charged.
    fn string_of(&mut self, v: &Value<'a>) -> Result<Cow<'a, str>, EvalError> {
        match v {
            Value::Str(s) => Ok(s.clone()),
            Value::Json(j) => {
                // Joining a large array builds a large string: charge before building.
                self.alloc(approx_size(j))?;
                Ok(Cow::Owned(to_string(v)))
            }
            other => {
                let s = to_string(other);
                self.alloc(s.len())?;
                Ok(Cow::Owned(s))
            }
        }
    }

    fn eval(&mut self, expr: &'a Expr) -> Res<'a> {
        self.step(1)?;
        match expr {
            Expr::Undefined => Ok(Value::Undefined),
            Expr::Null => Ok(Value::Null),
            Expr::Bool(b) => Ok(Value::Bool(*b)),
            Expr::Num(n) => Ok(Value::Num(*n)),
            Expr::Str(s) => Ok(Value::Str(Cow::Borrowed(s))),
            Expr::Regex(r) => Ok(Value::Regex(r.clone())),
            Expr::Template(quasis, parts) => {
                let mut out = String::new();
                for (i, q) in quasis.iter().enumerate() {
                    out.push_str(q);
                    if let Some(part) = parts.get(i) {
                        let v = self.eval(part)?;
                        let s = self.string_of(&v)?;
                        out.push_str(&s);
                    }
                }
                self.owned(out)
            }
            Expr::Array(items) => {
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    values.push(self.eval(item)?);
                }
                self.alloc(values.len() * 16)?;
                Ok(Value::Array(Rc::new(values)))
            }
            Expr::Var(var) => self.var(var),
            Expr::Member { .. } | Expr::Call { .. } => {
                Ok(self.chain(expr)?.unwrap_or(Value::Undefined))
            }
            Expr::Unary(op, operand) => self.unary(*op, operand),
            Expr::Binary(op, a, b) => self.binary(*op, a, b),
            Expr::Cond(test, yes, no) => {
                if self.eval(test)?.truthy() {
                    self.eval(yes)
                } else {
                    self.eval(no)
                }
            }
        }
    }

    fn var(&mut self, var: &Var) -> Res<'a> {
        let env = self.env;
        Ok(match var {
            Var::CrossRef => Value::Function("_"),
            Var::User => Value::from_json(env.user),
            Var::Data => env.data.map_or(Value::Null, Value::from_json),
            Var::OldData => env.old_data.map_or(Value::Null, Value::from_json),
            Var::Now => Value::Num(env.now),
            Var::Action => Value::Num(env.action),
            Var::Name => Value::Str(Cow::Borrowed(env.name)),
            Var::Path(i) => match env.vars.get(*i) {
                Some(v) => Value::Str(Cow::Borrowed(v.as_str())),
                None => Value::Undefined,
            },
            Var::Unknown(name) => {
                return Err(EvalError::Reference(format!("{name} is not defined")));
            }
        })
    }

    /// Evaluates a member/call chain. `None`: an optional link met a nullish value, which
    /// ends the whole chain with `undefined`.
    fn chain(&mut self, expr: &'a Expr) -> Result<Option<Value<'a>>, EvalError> {
        match expr {
            Expr::Member {
                object,
                property,
                optional,
            } => {
                self.step(1)?;
                let Some(obj) = self.chain(object)? else {
                    return Ok(None);
                };
                if *optional && obj.is_nullish() {
                    return Ok(None);
                }
                let key = self.property_key(property)?;
                self.get(&obj, &key).map(Some)
            }
            Expr::Call { callee, args } => {
                self.step(1)?;
                match callee {
                    Callee::CrossRef => {
                        let arg = match args.first() {
                            Some(a) => self.eval(a)?,
                            None => Value::Undefined,
                        };
                        for extra in args.iter().skip(1) {
                            self.eval(extra)?;
                        }
                        self.cross_reference(arg).map(Some)
                    }
                    Callee::Method {
                        object,
                        method,
                        optional,
                    } => {
                        let Some(obj) = self.chain(object)? else {
                            return Ok(None);
                        };
                        if *optional && obj.is_nullish() {
                            return Ok(None);
                        }
                        let mut values = Vec::with_capacity(args.len());
                        for a in args {
                            values.push(self.eval(a)?);
                        }
                        self.call(&obj, *method, &values).map(Some)
                    }
                }
            }
            other => self.eval(other).map(Some),
        }
    }

    fn property_key(&mut self, property: &'a Prop) -> Result<Cow<'a, str>, EvalError> {
        match property {
            Prop::Name(n) => Ok(Cow::Borrowed(n.as_str())),
            Prop::Computed(e) => {
                let v = self.eval(e)?;
                self.string_of(&v)
            }
        }
    }

    /// Reads `obj[key]`.
    fn get(&mut self, obj: &Value<'a>, key: &str) -> Res<'a> {
        let index = || key.parse::<usize>().ok().filter(|_| !key.starts_with('+'));
        Ok(match obj {
            Value::Undefined | Value::Null => {
                return type_error(format!(
                    "Cannot read properties of {} (reading '{key}')",
                    obj.describe()
                ));
            }
            Value::Json(Json::Object(map)) => match map.get(key) {
                Some(v) => Value::from_json(v),
                None => Value::Undefined,
            },
            Value::Json(Json::Array(items)) => match key {
                "length" => Value::Num(items.len() as f64),
                _ => match index().and_then(|i| items.get(i)) {
                    Some(v) => Value::from_json(v),
                    None => method_value(key),
                },
            },
            Value::Array(items) => match key {
                "length" => Value::Num(items.len() as f64),
                _ => match index().and_then(|i| items.get(i)) {
                    Some(v) => v.clone(),
                    None => method_value(key),
                },
            },
            Value::Str(s) => match key {
                "length" => Value::Num(utf16_len(s) as f64),
                _ => match index() {
                    Some(i) => {
                        let unit: Vec<u16> = s.encode_utf16().skip(i).take(1).collect();
                        if unit.is_empty() {
                            Value::Undefined
                        } else {
                            Value::Str(Cow::Owned(String::from_utf16_lossy(&unit)))
                        }
                    }
                    None => method_value(key),
                },
            },
            Value::Regex(r) => match key {
                "source" => Value::Str(Cow::Owned(r.source.clone())),
                "flags" => Value::Str(Cow::Owned(r.flags.clone())),
                "global" => Value::Bool(r.global),
                _ => Value::Undefined,
            },
            _ => Value::Undefined,
        })
    }

    fn cross_reference(&mut self, arg: Value<'a>) -> Res<'a> {
        let name = match &arg {
            Value::Undefined => return Ok(Value::Undefined),
            Value::Str(s) => s.clone(),
            other => {
                return Err(EvalError::Fatal(format!(
                    "crossreference got unsupported type {}",
                    other.type_of()
                )));
            }
        };
        // deepstream's guard against names built from missing values (`'user/' + x.id`).
        if name.contains("undefined") {
            return Ok(Value::Undefined);
        }
        let env = self.env;
        match env.records.get(&name) {
            Some(Some(json)) => Ok(Value::from_json(json)),
            Some(None) => Ok(Value::Null),
            None => {
                if !self.needs.iter().any(|n| *n == *name) {
                    self.alloc(name.len())?;
                    self.needs.push(name.into_owned());
                }
                Ok(Value::Undefined)
            }
        }
    }

    fn call(&mut self, obj: &Value<'a>, method: Method, args: &[Value<'a>]) -> Res<'a> {
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Undefined);
        let not_a_function = || {
            type_error(format!(
                "{}.{} is not a function",
                obj.describe(),
                method.name()
            ))
        };
        // Arrays have includes and indexOf; strings have every allowed method.
        let items: Option<Vec<Value<'a>>> = match obj {
            Value::Json(Json::Array(items)) => {
                self.step(items.len() as u64)?;
                Some(items.iter().map(Value::from_json).collect())
            }
            Value::Array(items) => {
                self.step(items.len() as u64)?;
                Some(items.as_ref().clone())
            }
            _ => None,
        };
        if let Some(items) = items {
            return match method {
                Method::Includes => {
                    let needle = arg(0);
                    let from = self.start_index(args.get(1), items.len());
                    Ok(Value::Bool(
                        items.iter().skip(from).any(|v| same_value_zero(v, &needle)),
                    ))
                }
                Method::IndexOf => {
                    let needle = arg(0);
                    let from = self.start_index(args.get(1), items.len());
                    Ok(Value::Num(
                        items
                            .iter()
                            .enumerate()
                            .skip(from)
                            .find(|(_, v)| strict_equals(v, &needle))
                            .map_or(-1.0, |(i, _)| i as f64),
                    ))
                }
                _ => not_a_function(),
            };
        }
        if obj.is_nullish() {
            return type_error(format!(
                "Cannot read properties of {} (reading '{}')",
                obj.describe(),
                method.name()
            ));
        }
        let Value::Str(s) = obj else {
            return not_a_function();
        };
        let s = s.clone();
        self.step(s.len() as u64 / 64 + 1)?;
        match method {
            Method::ToUpperCase => self.owned(s.to_uppercase()),
            Method::ToLowerCase => self.owned(s.to_lowercase()),
            Method::Trim => {
                let trimmed = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
                self.owned(trimmed.to_owned())
            }
            Method::StartsWith | Method::EndsWith | Method::Includes | Method::IndexOf => {
                let needle_value = arg(0);
                if let Value::Regex(_) = needle_value {
                    return type_error(format!(
                        "First argument to String.prototype.{} must not be a regular expression",
                        method.name()
                    ));
                }
                let needle = self.string_of(&needle_value)?;
                let units: Vec<u16> = s.encode_utf16().collect();
                let pat: Vec<u16> = needle.encode_utf16().collect();
                self.alloc((units.len() + pat.len()) * 2)?;
                let len = units.len();
                let find_from = |from: usize| -> Option<usize> {
                    if pat.len() > len {
                        return None;
                    }
                    (from..=len - pat.len()).find(|&i| units[i..i + pat.len()] == pat[..])
                };
                // The naive search is O(n·m): charge for it.
                self.step((len as u64).saturating_mul(pat.len().max(1) as u64) / 64)?;
                Ok(match method {
                    Method::StartsWith => {
                        let pos = self.start_index(args.get(1), len);
                        Value::Bool(units[pos..].starts_with(&pat))
                    }
                    Method::EndsWith => {
                        let end = match args.get(1) {
                            None | Some(Value::Undefined) => len,
                            Some(v) => clamp_index(to_number(v), len),
                        };
                        Value::Bool(units[..end].ends_with(&pat))
                    }
                    Method::Includes => {
                        let pos = self.start_index(args.get(1), len);
                        Value::Bool(find_from(pos).is_some())
                    }
                    _ => {
                        let pos = self.start_index(args.get(1), len);
                        Value::Num(find_from(pos).map_or(-1.0, |i| i as f64))
                    }
                })
            }
            Method::Match => {
                let regex = match arg(0) {
                    Value::Regex(r) => r,
                    Value::Undefined => {
                        std::sync::Arc::new(JsRegex::new("(?:)", "").map_err(EvalError::Type)?)
                    }
                    other => {
                        let source = self.string_of(&other)?;
                        self.step(source.len() as u64)?;
                        std::sync::Arc::new(JsRegex::new(&source, "").map_err(|e| {
                            EvalError::Type(format!("Invalid regular expression: {e}"))
                        })?)
                    }
                };
                self.step(s.len() as u64 / 16 + 1)?;
                if regex.global {
                    let found: Vec<Value<'a>> = regex
                        .regex
                        .find_iter(&s)
                        .map(|m| Value::Str(Cow::Owned(m.as_str().to_owned())))
                        .collect();
                    self.alloc(found.len() * 16 + s.len())?;
                    if found.is_empty() {
                        return Ok(Value::Null);
                    }
                    return Ok(Value::Array(Rc::new(found)));
                }
                match regex.regex.captures(&s) {
                    None => Ok(Value::Null),
                    Some(caps) => {
                        let groups: Vec<Value<'a>> = caps
                            .iter()
                            .map(|g| match g {
                                Some(m) => Value::Str(Cow::Owned(m.as_str().to_owned())),
                                None => Value::Undefined,
                            })
                            .collect();
                        self.alloc(groups.len() * 16 + s.len())?;
                        Ok(Value::Array(Rc::new(groups)))
                    }
                }
            }
        }
    }

    /// A `position` argument: ToIntegerOrInfinity clamped to `0..=len`.
    fn start_index(&self, v: Option<&Value<'a>>, len: usize) -> usize {
        match v {
            None | Some(Value::Undefined) => 0,
            Some(v) => clamp_index(to_number(v), len),
        }
    }

    fn unary(&mut self, op: UnOp, operand: &'a Expr) -> Res<'a> {
        if op == UnOp::Typeof {
            // typeof of an undeclared name is "undefined", not an error.
            if let Expr::Var(Var::Unknown(_)) = operand {
                return Ok(Value::Str(Cow::Borrowed("undefined")));
            }
            let v = self.eval(operand)?;
            return Ok(Value::Str(Cow::Borrowed(v.type_of())));
        }
        let v = self.eval(operand)?;
        Ok(match op {
            UnOp::Not => Value::Bool(!v.truthy()),
            UnOp::Neg => Value::Num(-to_number(&v)),
            UnOp::Plus => Value::Num(to_number(&v)),
            UnOp::BitNot => Value::Num(f64::from(!to_int32(to_number(&v)))),
            UnOp::Void => Value::Undefined,
            UnOp::Typeof => unreachable!("handled above"),
        })
    }

    fn binary(&mut self, op: BinOp, a: &'a Expr, b: &'a Expr) -> Res<'a> {
        match op {
            BinOp::And => {
                let left = self.eval(a)?;
                return if left.truthy() {
                    self.eval(b)
                } else {
                    Ok(left)
                };
            }
            BinOp::Or => {
                let left = self.eval(a)?;
                return if left.truthy() {
                    Ok(left)
                } else {
                    self.eval(b)
                };
            }
            BinOp::Nullish => {
                let left = self.eval(a)?;
                return if left.is_nullish() {
                    self.eval(b)
                } else {
                    Ok(left)
                };
            }
            _ => {}
        }
        let x = self.eval(a)?;
        let y = self.eval(b)?;
        Ok(match op {
            BinOp::StrictEq => Value::Bool(strict_equals(&x, &y)),
            BinOp::StrictNe => Value::Bool(!strict_equals(&x, &y)),
            BinOp::LooseEq => Value::Bool(self.loose(&x, &y)?),
            BinOp::LooseNe => Value::Bool(!self.loose(&x, &y)?),
            BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => {
                let px = self.primitive(&x)?;
                let py = self.primitive(&y)?;
                let ordering = match (&px, &py) {
                    (Value::Str(s), Value::Str(t)) => Some(compare_strings(s, t)),
                    _ => to_number(&px).partial_cmp(&to_number(&py)),
                };
                use std::cmp::Ordering::*;
                Value::Bool(match (op, ordering) {
                    (_, None) => false,
                    (BinOp::Lt, Some(o)) => o == Less,
                    (BinOp::Gt, Some(o)) => o == Greater,
                    (BinOp::Le, Some(o)) => o != Greater,
                    (_, Some(o)) => o != Less,
                })
            }
            BinOp::In => match &y {
                Value::Json(Json::Object(map)) => {
                    let key = self.string_of(&x)?;
                    Value::Bool(map.contains_key(key.as_ref()))
                }
                Value::Json(Json::Array(items)) => {
                    let key = self.string_of(&x)?;
                    Value::Bool(
                        key == "length" || key.parse::<usize>().is_ok_and(|i| i < items.len()),
                    )
                }
                Value::Array(items) => {
                    let key = self.string_of(&x)?;
                    Value::Bool(
                        key == "length" || key.parse::<usize>().is_ok_and(|i| i < items.len()),
                    )
                }
                other => {
                    return type_error(format!(
                        "Cannot use 'in' operator to search in {}",
                        other.describe()
                    ));
                }
            },
            BinOp::Add => {
                let px = self.primitive(&x)?;
                let py = self.primitive(&y)?;
                if matches!(px, Value::Str(_)) || matches!(py, Value::Str(_)) {
                    let left = self.string_of(&px)?;
                    let right = self.string_of(&py)?;
                    let mut out = String::with_capacity(left.len() + right.len());
                    self.alloc(left.len() + right.len())?;
                    out.push_str(&left);
                    out.push_str(&right);
                    Value::Str(Cow::Owned(out))
                } else {
                    Value::Num(to_number(&px) + to_number(&py))
                }
            }
            BinOp::Sub => Value::Num(to_number(&x) - to_number(&y)),
            BinOp::Mul => Value::Num(to_number(&x) * to_number(&y)),
            BinOp::Div => Value::Num(to_number(&x) / to_number(&y)),
            BinOp::Rem => Value::Num(to_number(&x) % to_number(&y)),
            BinOp::Pow => {
                let (base, exp) = (to_number(&x), to_number(&y));
                // JavaScript: 1 ** NaN and (±1) ** ±Infinity are NaN, unlike powf.
                if exp.is_nan() || (base.abs() == 1.0 && exp.is_infinite()) {
                    Value::Num(f64::NAN)
                } else {
                    Value::Num(base.powf(exp))
                }
            }
            BinOp::BitAnd => {
                Value::Num(f64::from(to_int32(to_number(&x)) & to_int32(to_number(&y))))
            }
            BinOp::BitOr => {
                Value::Num(f64::from(to_int32(to_number(&x)) | to_int32(to_number(&y))))
            }
            BinOp::BitXor => {
                Value::Num(f64::from(to_int32(to_number(&x)) ^ to_int32(to_number(&y))))
            }
            BinOp::Shl => Value::Num(f64::from(
                to_int32(to_number(&x)).wrapping_shl(to_int32(to_number(&y)) as u32 & 31),
            )),
            BinOp::Shr => Value::Num(f64::from(
                to_int32(to_number(&x)).wrapping_shr(to_int32(to_number(&y)) as u32 & 31),
            )),
            BinOp::UShr => Value::Num(f64::from(
                (to_int32(to_number(&x)) as u32).wrapping_shr(to_int32(to_number(&y)) as u32 & 31),
            )),
            BinOp::And | BinOp::Or | BinOp::Nullish => unreachable!("handled above"),
        })
    }

    /// ToPrimitive, charged for the string it may build.
    fn primitive(&mut self, v: &Value<'a>) -> Res<'a> {
        match v {
            Value::Json(j) => {
                self.alloc(approx_size(j))?;
                Ok(to_primitive(v))
            }
            Value::Array(items) => {
                self.alloc(items.len() * 8)?;
                let p = to_primitive(v);
                if let Value::Str(s) = &p {
                    self.alloc(s.len())?;
                }
                Ok(p)
            }
            other => Ok(to_primitive(other)),
        }
    }

    fn loose(&mut self, x: &Value<'a>, y: &Value<'a>) -> Result<bool, EvalError> {
        // Converting an object to compare it with a primitive builds its string form.
        let is_obj = |v: &Value<'_>| matches!(v, Value::Json(_) | Value::Array(_));
        if is_obj(x) != is_obj(y) {
            let px = self.primitive(x)?;
            let py = self.primitive(y)?;
            return Ok(loose_equals(&px, &py));
        }
        Ok(loose_equals(x, y))
    }
}

/// A method read as a property (`'abc'.trim` without calling it) is a function.
fn method_value(key: &str) -> Value<'static> {
    match Method::from_name(key) {
        Some(m) => Value::Function(m.name()),
        None => Value::Undefined,
    }
}

fn clamp_index(n: f64, len: usize) -> usize {
    if n.is_nan() || n <= 0.0 {
        0
    } else if n >= len as f64 {
        len
    } else {
        n as usize
    }
}

/// An upper bound on the bytes of `json`'s string form, computed without recursion
/// (record data can nest deeply).
fn approx_size(json: &Json) -> usize {
    let mut total = 0usize;
    let mut stack = vec![json];
    while let Some(j) = stack.pop() {
        total += match j {
            Json::Null | Json::Bool(_) => 5,
            Json::Number(_) => 24,
            Json::String(s) => s.len() + 2,
            Json::Array(items) => {
                stack.extend(items.iter());
                2 + items.len()
            }
            Json::Object(map) => {
                stack.extend(map.values());
                15
            }
        };
        if total > (1 << 30) {
            break;
        }
    }
    total
}
