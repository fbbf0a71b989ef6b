//! Splits a rule's text into tokens.
//!
//! The rule language is the expression subset of JavaScript that deepstream's Valve rules
//! use. The one context-sensitive token is `/`: it starts a regular-expression literal
//! where a value is expected (after an operator or at the start) and divides elsewhere,
//! which is how JavaScript itself decides.

use super::error::SyntaxError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Num(f64),
    Str(String),
    /// A template literal: the literal pieces and, between them, the source text of each
    /// `${...}` with its byte offset in the rule.
    Template {
        quasis: Vec<String>,
        exprs: Vec<(String, usize)>,
    },
    Regex {
        pattern: String,
        flags: String,
    },
    Ident(String),
    Punct(&'static str),
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    /// Byte offset in the rule text.
    pub at: usize,
}

/// Longest first, so that `===` is not read as `==` then `=`.
const PUNCTS: &[&str] = &[
    ">>>=", "===", "!==", "**=", "<<=", ">>=", ">>>", "...", "==", "!=", "<=", ">=", "&&", "||",
    "??", "?.", "**", "<<", ">>", "=>", "++", "--", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=",
    "(", ")", "[", "]", "{", "}", ",", ".", "?", ":", ";", "+", "-", "*", "/", "%", "!", "~", "<",
    ">", "&", "|", "^", "=",
];

pub fn tokenize(src: &str) -> Result<Vec<Token>, SyntaxError> {
    let mut lexer = Lexer { src, pos: 0 };
    let mut out: Vec<Token> = Vec::new();
    loop {
        lexer.skip_space()?;
        let at = lexer.pos;
        let Some(c) = lexer.peek() else {
            out.push(Token { tok: Tok::Eof, at });
            return Ok(out);
        };
        let tok = if c.is_ascii_digit()
            || (c == '.' && lexer.peek_at(1).is_some_and(|d| d.is_ascii_digit()))
        {
            lexer.number()?
        } else if c == '\'' || c == '"' {
            Tok::Str(lexer.string(c)?)
        } else if c == '`' {
            lexer.template()?
        } else if is_ident_start(c) {
            Tok::Ident(lexer.ident())
        } else if c == '/' && regex_allowed(out.last()) {
            lexer.regex()?
        } else {
            let rest = &src[lexer.pos..];
            match PUNCTS.iter().find(|p| rest.starts_with(**p)) {
                Some(p) => {
                    // `?.` followed by a digit is `? .5`, as in JavaScript.
                    if *p == "?." && rest[2..].starts_with(|d: char| d.is_ascii_digit()) {
                        lexer.pos += 1;
                        Tok::Punct("?")
                    } else {
                        lexer.pos += p.len();
                        Tok::Punct(p)
                    }
                }
                None => return Err(SyntaxError::new(at, format!("unexpected character {c:?}"))),
            }
        };
        out.push(Token { tok, at });
    }
}

/// A `/` starts a regular expression unless the previous token ends a value.
fn regex_allowed(prev: Option<&Token>) -> bool {
    match prev.map(|t| &t.tok) {
        None => true,
        Some(Tok::Num(_) | Tok::Str(_) | Tok::Template { .. } | Tok::Regex { .. }) => false,
        Some(Tok::Ident(name)) => matches!(
            name.as_str(),
            "typeof" | "void" | "in" | "instanceof" | "return" | "delete" | "new"
        ),
        Some(Tok::Punct(p)) => !matches!(*p, ")" | "]" | "}"),
        Some(Tok::Eof) => false,
    }
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c == '$' || c.is_alphabetic()
}

fn is_ident_part(c: char) -> bool {
    is_ident_start(c) || c.is_alphanumeric()
}

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.src[self.pos..].chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_space(&mut self) -> Result<(), SyntaxError> {
        loop {
            let rest = &self.src[self.pos..];
            if let Some(c) = rest.chars().next().filter(|c| c.is_whitespace()) {
                self.pos += c.len_utf8();
            } else if rest.starts_with("//") {
                self.pos += rest.find('\n').unwrap_or(rest.len());
            } else if let Some(body) = rest.strip_prefix("/*") {
                let end = body
                    .find("*/")
                    .ok_or_else(|| SyntaxError::new(self.pos, "unterminated comment"))?;
                self.pos += end + 4;
            } else {
                return Ok(());
            }
        }
    }

    fn ident(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(is_ident_part) {
            self.bump();
        }
        self.src[start..self.pos].to_owned()
    }

    fn number(&mut self) -> Result<Tok, SyntaxError> {
        let start = self.pos;
        let rest = &self.src[self.pos..];
        let radix = if rest.len() > 1 && rest.as_bytes()[0] == b'0' {
            match rest.as_bytes()[1] {
                b'x' | b'X' => 16,
                b'o' | b'O' => 8,
                b'b' | b'B' => 2,
                _ => 10,
            }
        } else {
            10
        };
        if radix != 10 {
            self.pos += 2;
            let digits_start = self.pos;
            while self.peek().is_some_and(|c| c.is_digit(radix) || c == '_') {
                self.bump();
            }
            let digits: String = self.src[digits_start..self.pos]
                .chars()
                .filter(|c| *c != '_')
                .collect();
            if digits.is_empty() {
                return Err(SyntaxError::new(start, "a number needs digits"));
            }
            let mut value = 0f64;
            for d in digits.chars() {
                value = value * radix as f64 + d.to_digit(radix).unwrap_or(0) as f64;
            }
            return self.end_number(start, value);
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit() || c == '_') {
            self.bump();
        }
        if self.peek() == Some('.') {
            self.bump();
            while self.peek().is_some_and(|c| c.is_ascii_digit() || c == '_') {
                self.bump();
            }
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let save = self.pos;
            self.bump();
            if matches!(self.peek(), Some('+' | '-')) {
                self.bump();
            }
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
            } else {
                self.pos = save;
            }
        }
        let text: String = self.src[start..self.pos]
            .chars()
            .filter(|c| *c != '_')
            .collect();
        let value: f64 = text
            .parse()
            .map_err(|_| SyntaxError::new(start, format!("{text:?} is not a number")))?;
        self.end_number(start, value)
    }

    fn end_number(&mut self, start: usize, value: f64) -> Result<Tok, SyntaxError> {
        if self.peek() == Some('n') {
            return Err(SyntaxError::new(start, "BigInt literals are not supported"));
        }
        if self.peek().is_some_and(is_ident_start) {
            return Err(SyntaxError::new(
                self.pos,
                "an identifier cannot start right after a number",
            ));
        }
        Ok(Tok::Num(value))
    }

    /// One escape sequence after a backslash, appended to `out`.
    fn escape(&mut self, out: &mut String) -> Result<(), SyntaxError> {
        let at = self.pos;
        let Some(c) = self.bump() else {
            return Err(SyntaxError::new(at, "unterminated string"));
        };
        match c {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '0' if !self.peek().is_some_and(|d| d.is_ascii_digit()) => out.push('\0'),
            'x' => {
                let code = self.hex_digits(2, at)?;
                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
            }
            'u' => {
                let code = if self.peek() == Some('{') {
                    self.bump();
                    let start = self.pos;
                    while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                        self.bump();
                    }
                    let digits = &self.src[start..self.pos];
                    if self.bump() != Some('}') || digits.is_empty() || digits.len() > 6 {
                        return Err(SyntaxError::new(at, "invalid \\u{...} escape"));
                    }
                    u32::from_str_radix(digits, 16).unwrap_or(0xfffd)
                } else {
                    let high = self.hex_digits(4, at)?;
                    // A surrogate pair written as two escapes.
                    if (0xd800..0xdc00).contains(&high) && self.src[self.pos..].starts_with("\\u") {
                        let save = self.pos;
                        self.pos += 2;
                        match self.hex_digits(4, at) {
                            Ok(low) if (0xdc00..0xe000).contains(&low) => {
                                0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
                            }
                            _ => {
                                self.pos = save;
                                high
                            }
                        }
                    } else {
                        high
                    }
                };
                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
            }
            '\r' => {
                if self.peek() == Some('\n') {
                    self.bump();
                }
            }
            '\n' | '\u{2028}' | '\u{2029}' => {}
            other => out.push(other),
        }
        Ok(())
    }

    fn hex_digits(&mut self, n: usize, at: usize) -> Result<u32, SyntaxError> {
        let digits = self.src[self.pos..].get(..n).unwrap_or("");
        if digits.len() != n || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(SyntaxError::new(at, "invalid escape sequence"));
        }
        self.pos += n;
        Ok(u32::from_str_radix(digits, 16).unwrap_or(0xfffd))
    }

    fn string(&mut self, quote: char) -> Result<String, SyntaxError> {
        let start = self.pos;
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None | Some('\n') | Some('\r') => {
                    return Err(SyntaxError::new(start, "unterminated string"));
                }
                Some('\\') => self.escape(&mut out)?,
                Some(c) if c == quote => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn template(&mut self) -> Result<Tok, SyntaxError> {
        let start = self.pos;
        self.bump();
        let mut quasis = Vec::new();
        let mut exprs = Vec::new();
        let mut current = String::new();
        loop {
            match self.bump() {
                None => return Err(SyntaxError::new(start, "unterminated template literal")),
                Some('`') => {
                    quasis.push(current);
                    return Ok(Tok::Template { quasis, exprs });
                }
                Some('\\') => self.escape(&mut current)?,
                Some('$') if self.peek() == Some('{') => {
                    self.bump();
                    quasis.push(std::mem::take(&mut current));
                    let expr_start = self.pos;
                    let end = self.matching_brace(expr_start)?;
                    exprs.push((self.src[expr_start..end].to_owned(), expr_start));
                    self.pos = end + 1;
                }
                Some(c) => current.push(c),
            }
        }
    }

    /// The offset of the `}` closing a `${`, skipping nested braces and strings.
    fn matching_brace(&self, from: usize) -> Result<usize, SyntaxError> {
        let mut depth = 0usize;
        let mut chars = self.src[from..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => return Ok(from + i),
                '}' => depth -= 1,
                '\'' | '"' | '`' => {
                    let quote = c;
                    loop {
                        match chars.next() {
                            None => break,
                            Some((_, '\\')) => {
                                chars.next();
                            }
                            Some((_, q)) if q == quote => break,
                            Some(_) => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Err(SyntaxError::new(
            from,
            "unterminated ${ in template literal",
        ))
    }

    fn regex(&mut self) -> Result<Tok, SyntaxError> {
        let start = self.pos;
        self.bump();
        let mut pattern = String::new();
        let mut in_class = false;
        loop {
            match self.bump() {
                None | Some('\n') | Some('\r') => {
                    return Err(SyntaxError::new(start, "unterminated regular expression"));
                }
                Some('\\') => {
                    pattern.push('\\');
                    match self.bump() {
                        Some(c) if c != '\n' => pattern.push(c),
                        _ => {
                            return Err(SyntaxError::new(start, "unterminated regular expression"));
                        }
                    }
                }
                Some('[') => {
                    in_class = true;
                    pattern.push('[');
                }
                Some(']') => {
                    in_class = false;
                    pattern.push(']');
                }
                Some('/') if !in_class => break,
                Some(c) => pattern.push(c),
            }
        }
        let flags_start = self.pos;
        while self.peek().is_some_and(is_ident_part) {
            self.bump();
        }
        let flags = self.src[flags_start..self.pos].to_owned();
        Ok(Tok::Regex { pattern, flags })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        tokenize(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn operators_and_literals() {
        assert_eq!(
            toks("a === 'x' && b !== \"y\""),
            vec![
                Tok::Ident("a".into()),
                Tok::Punct("==="),
                Tok::Str("x".into()),
                Tok::Punct("&&"),
                Tok::Ident("b".into()),
                Tok::Punct("!=="),
                Tok::Str("y".into()),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("0x1f 1.5e3 .5"),
            vec![Tok::Num(31.0), Tok::Num(1500.0), Tok::Num(0.5), Tok::Eof]
        );
        assert_eq!(toks("'\\u0041\\n'"), vec![Tok::Str("A\n".into()), Tok::Eof]);
    }

    #[test]
    fn slash_is_regex_or_division_by_context() {
        assert_eq!(
            toks("a / b"),
            vec![
                Tok::Ident("a".into()),
                Tok::Punct("/"),
                Tok::Ident("b".into()),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("x.match(/^a[/]b$/i)")[4],
            Tok::Regex {
                pattern: "^a[/]b$".into(),
                flags: "i".into()
            }
        );
    }

    #[test]
    fn templates_keep_their_expressions() {
        let t = toks("`user/${user.id}/x`");
        assert_eq!(
            t[0],
            Tok::Template {
                quasis: vec!["user/".into(), "/x".into()],
                exprs: vec![("user.id".into(), 8)]
            }
        );
    }

    #[test]
    fn errors_point_at_the_problem() {
        assert_eq!(tokenize("'abc").unwrap_err().at, 0);
        assert_eq!(tokenize("a # b").unwrap_err().at, 2);
    }
}
