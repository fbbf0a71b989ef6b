//! Parses a rule's text into an expression tree.
//!
//! The grammar is JavaScript's expression grammar without assignment, functions, `new`
//! and object literals: literals (numbers, strings, templates, regular expressions,
//! arrays), names, member access (`.`, `[]`, `?.`), calls of the functions deepstream
//! allows, unary, binary, logical and conditional operators. Anything else is refused
//! with a message saying what and where. Nesting is bounded, so neither parsing nor
//! evaluating a rule can exhaust the stack.

use super::ast::{BinOp, Callee, Expr, JsRegex, Method, Prop, UnOp, Var};
use super::error::SyntaxError;
use super::lexer::{Tok, Token, tokenize};

/// How deeply expressions may nest (parentheses, operands, member chains).
pub const MAX_DEPTH: u32 = 100;
/// How many tokens one rule may have.
pub const MAX_TOKENS: usize = 10_000;

/// Parses `src`. `vars` are the name pattern's `$variables`, in capture order.
pub fn parse(src: &str, vars: &[String]) -> Result<Expr, SyntaxError> {
    parse_at(src, vars, 0, 0)
}

fn parse_at(src: &str, vars: &[String], offset: usize, depth: u32) -> Result<Expr, SyntaxError> {
    let mut tokens = tokenize(src).map_err(|e| SyntaxError::new(e.at + offset, e.message))?;
    if tokens.len() > MAX_TOKENS {
        return Err(SyntaxError::new(
            offset,
            format!("the rule is too long (more than {MAX_TOKENS} tokens)"),
        ));
    }
    for t in &mut tokens {
        t.at += offset;
    }
    let mut p = Parser {
        tokens,
        pos: 0,
        vars,
        src_len: src.len() + offset,
    };
    if matches!(p.peek(), Tok::Eof) {
        return Err(SyntaxError::new(offset, "the rule is empty"));
    }
    let (expr, _) = p.conditional(depth)?;
    match p.peek() {
        Tok::Eof => Ok(expr),
        Tok::Punct(";") => {
            Err(p.error_here("a rule is one expression: remove the `;` and what follows"))
        }
        Tok::Punct(",") => Err(p.error_here("the comma operator is not supported")),
        _ => Err(p.error_here(&format!("unexpected {}", describe(p.peek())))),
    }
}

struct Parser<'v> {
    tokens: Vec<Token>,
    pos: usize,
    vars: &'v [String],
    src_len: usize,
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Num(n) => format!("number {n}"),
        Tok::Str(s) => format!("string {s:?}"),
        Tok::Template { .. } => "template literal".into(),
        Tok::Regex { pattern, .. } => format!("regular expression /{pattern}/"),
        Tok::Ident(i) => format!("`{i}`"),
        Tok::Punct(p) => format!("`{p}`"),
        Tok::Eof => "end of rule".into(),
    }
}

fn binary_op(tok: &Tok) -> Option<(BinOp, u8)> {
    let Tok::Punct(p) = tok else {
        return match tok {
            Tok::Ident(i) if i == "in" => Some((BinOp::In, 10)),
            _ => None,
        };
    };
    Some(match *p {
        "??" => (BinOp::Nullish, 4),
        "||" => (BinOp::Or, 4),
        "&&" => (BinOp::And, 5),
        "|" => (BinOp::BitOr, 6),
        "^" => (BinOp::BitXor, 7),
        "&" => (BinOp::BitAnd, 8),
        "===" => (BinOp::StrictEq, 9),
        "!==" => (BinOp::StrictNe, 9),
        "==" => (BinOp::LooseEq, 9),
        "!=" => (BinOp::LooseNe, 9),
        "<" => (BinOp::Lt, 10),
        ">" => (BinOp::Gt, 10),
        "<=" => (BinOp::Le, 10),
        ">=" => (BinOp::Ge, 10),
        "<<" => (BinOp::Shl, 11),
        ">>" => (BinOp::Shr, 11),
        ">>>" => (BinOp::UShr, 11),
        "+" => (BinOp::Add, 12),
        "-" => (BinOp::Sub, 12),
        "*" => (BinOp::Mul, 13),
        "/" => (BinOp::Div, 13),
        "%" => (BinOp::Rem, 13),
        "**" => (BinOp::Pow, 14),
        _ => return None,
    })
}

type Parsed = Result<(Expr, u32), SyntaxError>;

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.tokens[self.pos].tok
    }

    fn at(&self) -> usize {
        self.tokens[self.pos].at.min(self.src_len)
    }

    fn next(&mut self) -> Token {
        let t = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, punct: &str) -> bool {
        if matches!(self.peek(), Tok::Punct(p) if *p == punct) {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, punct: &str) -> Result<(), SyntaxError> {
        if self.eat(punct) {
            Ok(())
        } else {
            Err(self.error_here(&format!(
                "expected `{punct}` but found {}",
                describe(self.peek())
            )))
        }
    }

    fn error_here(&self, message: &str) -> SyntaxError {
        SyntaxError::new(self.at(), message)
    }

    fn check_depth(&self, depth: u32) -> Result<(), SyntaxError> {
        if depth > MAX_DEPTH {
            Err(self.error_here(&format!(
                "the rule nests too deeply (more than {MAX_DEPTH} levels)"
            )))
        } else {
            Ok(())
        }
    }

    fn conditional(&mut self, depth: u32) -> Parsed {
        self.check_depth(depth)?;
        let (test, d0) = self.binary(0, depth + 1)?;
        if let Tok::Punct(
            p @ ("=" | "+=" | "-=" | "*=" | "/=" | "%=" | "**=" | "<<=" | ">>=" | ">>>=" | "&="
            | "|=" | "^="),
        ) = self.peek()
        {
            let hint = if *p == "=" {
                " (did you mean `===`?)"
            } else {
                ""
            };
            return Err(self.error_here(&format!("assignment is not allowed in a rule{hint}")));
        }
        if matches!(self.peek(), Tok::Punct("=>")) {
            return Err(self.error_here("rule can't contain user functions"));
        }
        if !self.eat("?") {
            return Ok((test, d0));
        }
        let (yes, d1) = self.conditional(depth + 1)?;
        self.expect(":")?;
        let (no, d2) = self.conditional(depth + 1)?;
        let d = 1 + d0.max(d1).max(d2);
        self.check_depth(depth + d)?;
        Ok((Expr::Cond(Box::new(test), Box::new(yes), Box::new(no)), d))
    }

    /// Binary operators by precedence climbing. The tree's depth is tracked so that a long
    /// chain (`a + a + a + ...`) is bounded like nesting is.
    fn binary(&mut self, min_prec: u8, depth: u32) -> Parsed {
        let (mut left, mut left_depth) = self.unary(depth)?;
        while let Some((op, prec)) = binary_op(self.peek()) {
            if prec < min_prec {
                break;
            }
            self.next();
            // `**` is right-associative, the others left.
            let next_min = if op == BinOp::Pow { prec } else { prec + 1 };
            let (right, right_depth) = self.binary(next_min, depth + 1)?;
            left_depth = 1 + left_depth.max(right_depth);
            self.check_depth(depth + left_depth)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok((left, left_depth))
    }

    fn unary(&mut self, depth: u32) -> Parsed {
        self.check_depth(depth)?;
        let op = match self.peek() {
            Tok::Punct("!") => Some(UnOp::Not),
            Tok::Punct("-") => Some(UnOp::Neg),
            Tok::Punct("+") => Some(UnOp::Plus),
            Tok::Punct("~") => Some(UnOp::BitNot),
            Tok::Ident(i) if i == "typeof" => Some(UnOp::Typeof),
            Tok::Ident(i) if i == "void" => Some(UnOp::Void),
            Tok::Punct("++" | "--") => {
                return Err(
                    self.error_here("`++` and `--` change values and are not allowed in a rule")
                );
            }
            Tok::Ident(i) if i == "delete" => {
                return Err(self.error_here("`delete` is not allowed in a rule"));
            }
            Tok::Ident(i) if i == "await" || i == "yield" => {
                return Err(self.error_here(&format!("`{i}` is not allowed in a rule")));
            }
            _ => None,
        };
        if let Some(op) = op {
            self.next();
            let (operand, d) = self.unary(depth + 1)?;
            return Ok((Expr::Unary(op, Box::new(operand)), d + 1));
        }
        self.postfix(depth)
    }

    /// A primary expression followed by member accesses and calls.
    fn postfix(&mut self, depth: u32) -> Parsed {
        let (mut expr, mut d) = self.primary(depth)?;
        loop {
            let at = self.at();
            match self.peek() {
                Tok::Punct(".") | Tok::Punct("?.") => {
                    let optional = matches!(self.next().tok, Tok::Punct("?."));
                    match self.peek().clone() {
                        Tok::Ident(name) => {
                            self.next();
                            expr = Expr::Member {
                                object: Box::new(expr),
                                property: Prop::Name(name),
                                optional,
                            };
                        }
                        Tok::Punct("[") if optional => {
                            self.next();
                            let (index, di) = self.conditional(depth + d + 1)?;
                            self.expect("]")?;
                            d = d.max(di);
                            expr = Expr::Member {
                                object: Box::new(expr),
                                property: Prop::Computed(Box::new(index)),
                                optional,
                            };
                        }
                        Tok::Punct("(") if optional => {
                            return Err(SyntaxError::new(
                                at,
                                "optional calls `?.()` are not supported",
                            ));
                        }
                        other => {
                            return Err(self.error_here(&format!(
                                "expected a property name after `.` but found {}",
                                describe(&other)
                            )));
                        }
                    }
                }
                Tok::Punct("[") => {
                    self.next();
                    let (index, di) = self.conditional(depth + d + 1)?;
                    self.expect("]")?;
                    d = d.max(di);
                    expr = Expr::Member {
                        object: Box::new(expr),
                        property: Prop::Computed(Box::new(index)),
                        optional: false,
                    };
                }
                Tok::Punct("(") => {
                    self.next();
                    let callee = self.callee(expr, at)?;
                    let mut args = Vec::new();
                    if !self.eat(")") {
                        loop {
                            if matches!(self.peek(), Tok::Punct("...")) {
                                return Err(self.error_here("spread arguments are not supported"));
                            }
                            let (arg, da) = self.conditional(depth + d + 1)?;
                            d = d.max(da);
                            args.push(arg);
                            if self.eat(")") {
                                break;
                            }
                            self.expect(",")?;
                            if self.eat(")") {
                                break;
                            }
                        }
                    }
                    expr = Expr::Call { callee, args };
                }
                Tok::Template { .. } => {
                    return Err(self.error_here("tagged templates are not supported"));
                }
                _ => return Ok((expr, d)),
            }
            d += 1;
            self.check_depth(depth + d)?;
        }
    }

    /// What a call calls: `_` or one of the allowed methods on a value.
    fn callee(&self, expr: Expr, at: usize) -> Result<Callee, SyntaxError> {
        let unsupported =
            |name: &str| SyntaxError::new(at, format!("function {name} is not supported"));
        match expr {
            Expr::Var(Var::CrossRef) => Ok(Callee::CrossRef),
            Expr::Member {
                object,
                property,
                optional,
            } => {
                let name = match &property {
                    Prop::Name(n) => n.clone(),
                    Prop::Computed(e) => match e.as_ref() {
                        Expr::Str(s) => s.clone(),
                        _ => return Err(unsupported("(computed)")),
                    },
                };
                match Method::from_name(&name) {
                    Some(method) => Ok(Callee::Method {
                        object,
                        method,
                        optional,
                    }),
                    None => Err(unsupported(&name)),
                }
            }
            Expr::Var(Var::Unknown(name)) => Err(unsupported(&name)),
            Expr::Var(v) => Err(unsupported(&format!("{v:?}").to_lowercase())),
            _ => Err(SyntaxError::new(
                at,
                "only `_(...)` and the string methods can be called",
            )),
        }
    }

    fn primary(&mut self, depth: u32) -> Parsed {
        self.check_depth(depth)?;
        let token = self.next();
        let at = token.at;
        let expr = match token.tok {
            Tok::Num(n) => Expr::Num(n),
            Tok::Str(s) => Expr::Str(s),
            Tok::Regex { pattern, flags } => Expr::Regex(JsRegex::literal(&pattern, &flags, at)?),
            Tok::Template { quasis, exprs } => {
                let mut parts = Vec::with_capacity(exprs.len());
                let mut d = 0;
                for (src, offset) in exprs {
                    let e = parse_at(&src, self.vars, offset, depth + 1)?;
                    parts.push(e);
                    d = 1;
                }
                return Ok((Expr::Template(quasis, parts), d));
            }
            Tok::Punct("(") => {
                let (inner, d) = self.conditional(depth + 1)?;
                if matches!(self.peek(), Tok::Punct(",")) {
                    return Err(self.error_here("the comma operator is not supported"));
                }
                self.expect(")")?;
                if matches!(self.peek(), Tok::Punct("=>")) {
                    return Err(self.error_here("rule can't contain user functions"));
                }
                return Ok((inner, d));
            }
            Tok::Punct("[") => {
                let mut items = Vec::new();
                let mut d = 0;
                while !self.eat("]") {
                    if matches!(self.peek(), Tok::Punct(",")) {
                        return Err(self.error_here("array holes are not supported"));
                    }
                    if matches!(self.peek(), Tok::Punct("...")) {
                        return Err(self.error_here("spread is not supported"));
                    }
                    let (item, di) = self.conditional(depth + 1)?;
                    d = d.max(di + 1);
                    items.push(item);
                    if !self.eat(",") {
                        self.expect("]")?;
                        break;
                    }
                }
                return Ok((Expr::Array(items), d));
            }
            Tok::Punct("{") => {
                return Err(SyntaxError::new(
                    at,
                    "object literals are not supported in rules",
                ));
            }
            Tok::Ident(name) => self.ident(name, at)?,
            other => {
                return Err(SyntaxError::new(
                    at,
                    format!("unexpected {}", describe(&other)),
                ));
            }
        };
        Ok((expr, 0))
    }

    fn ident(&self, name: String, at: usize) -> Result<Expr, SyntaxError> {
        Ok(match name.as_str() {
            "true" => Expr::Bool(true),
            "false" => Expr::Bool(false),
            "null" => Expr::Null,
            "undefined" => Expr::Undefined,
            "NaN" => Expr::Num(f64::NAN),
            "Infinity" => Expr::Num(f64::INFINITY),
            "_" => Expr::Var(Var::CrossRef),
            "user" => Expr::Var(Var::User),
            "data" => Expr::Var(Var::Data),
            "oldData" => Expr::Var(Var::OldData),
            "now" => Expr::Var(Var::Now),
            "action" => Expr::Var(Var::Action),
            "name" => Expr::Var(Var::Name),
            "new" => return Err(SyntaxError::new(at, "rule can't contain the new keyword")),
            "function" | "class" => {
                return Err(SyntaxError::new(at, "rule can't contain user functions"));
            }
            "var" | "let" | "const" | "return" | "if" | "for" | "while" | "do" | "switch"
            | "throw" | "try" | "import" | "export" | "with" | "debugger" => {
                return Err(SyntaxError::new(
                    at,
                    format!("`{name}` is not allowed in a rule: a rule is one expression"),
                ));
            }
            "instanceof" | "in" | "typeof" | "void" | "delete" => {
                return Err(SyntaxError::new(at, format!("unexpected `{name}`")));
            }
            _ => match self.vars.iter().rposition(|v| *v == name) {
                Some(i) => Expr::Var(Var::Path(i)),
                None => Expr::Var(Var::Unknown(name)),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(src: &str) -> Expr {
        parse(src, &["$username".to_owned()]).unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    fn err(src: &str) -> String {
        parse(src, &[]).unwrap_err().to_string()
    }

    #[test]
    fn parses_the_deepstream_rule_forms() {
        ok("$username === user.id");
        ok("user.isAuthenticated && data.owner === user.id");
        ok("_('settings/' + user.id).admin === true");
        ok("data.name.match(/^[a-z]+$/i) !== null");
        ok("typeof data.age === 'number' && data.age >= 18 ? true : false");
        ok("['admin', 'editor'].includes(user.data.role)");
        ok("`users/${user.id}` === name");
        ok("oldData?.owner ?? user.id");
        ok("now - data.created < 1000 * 60 * 60");
        ok("(a || b) && !c");
        ok("user.data['role'].toLowerCase().trim() == 'x'");
    }

    #[test]
    fn refuses_what_deepstream_refuses_and_what_cannot_work() {
        assert!(err("new Date()").contains("new keyword"));
        assert!(err("function () { return true }").contains("user functions"));
        assert!(err("(x) => true").contains("user functions"));
        assert!(err("data.items.some(x)").contains("function some is not supported"));
        assert!(err("eval('1')").contains("function eval is not supported"));
        assert!(err("user.id = 'x'").contains("did you mean `===`"));
        assert!(err("").contains("empty"));
        assert!(err("a ===").contains("end of rule"));
        assert!(err("({a: 1})").contains("object literals"));
        assert!(err("/(?<=a)b/.source").contains("not supported"));
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert!(err(&deep).contains("nests too deeply"));
        let long_chain = vec!["a"; 300].join(" + ");
        assert!(err(&long_chain).contains("nests too deeply"));
        let unary = format!("{}true", "!".repeat(500));
        assert!(err(&unary).contains("nests too deeply"));
        let members = format!("a{}", ".b".repeat(300));
        assert!(err(&members).contains("nests too deeply"));
    }
}
