//! Listen patterns: JavaScript regular expressions as deepstream uses them, compiled with
//! the `regex` crate under size limits.
//!
//! deepstream runs `new RegExp(pattern).test(name)`: no flags, unanchored search. The
//! `regex` crate gives the same search semantics for the syntax both share, in linear time,
//! which is what makes accepting patterns from clients safe. Where the dialects differ:
//! - look-around and backreferences (JS only) are refused with [`PatternError::Unsupported`];
//!   without backtracking they cannot be supported, and a clear refusal beats a silent
//!   approximation;
//! - JS (Annex B) treats some malformed syntax as literals (`user/{id}`, `a{`); the `regex`
//!   crate refuses it with [`PatternError::Syntax`]. Escaping the brace works in both;
//! - `\d`, `\w`, `\b` are Unicode-aware here and ASCII-only in JS, so they differ only on
//!   names with non-ASCII letters or digits.

use regex::{Regex, RegexBuilder};
use thiserror::Error;

/// Why a listen pattern was refused. The runtime answers all of these with
/// `INVALID_LISTEN_REGEX`. New kinds may be added: match with a `_` arm.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum PatternError {
    #[error("listen pattern is {len} bytes long; the limit is {max}")]
    TooLong { len: usize, max: usize },
    #[error(
        "listen pattern uses {0}, JavaScript regex syntax that is not supported here: \
         rewrite the pattern without it"
    )]
    Unsupported(&'static str),
    /// The `regex` crate refused the pattern; its error is the
    /// [`source`](std::error::Error::source), and the message names the problem in one
    /// line (the `regex` crate's own message draws the pattern over several).
    #[error("listen pattern is not a valid regular expression: {}", last_line(&.0.to_string()))]
    Syntax(#[source] regex::Error),
    #[error(
        "listen pattern compiles to more than {limit} bytes: make it simpler (fewer \
         repetitions and alternatives)"
    )]
    TooComplex { limit: usize },
}

/// How much a pattern may cost. Both bounds exist because patterns come from clients:
/// length bounds parse time, the size limits bound the memory of each compiled regex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternLimits {
    /// Longest pattern source accepted, in bytes.
    pub max_len: usize,
    /// Bound on the compiled program and, separately, on its lazy-DFA cache, in bytes.
    pub size_limit: usize,
}

impl Default for PatternLimits {
    fn default() -> Self {
        PatternLimits {
            max_len: 1024,
            size_limit: 1 << 20,
        }
    }
}

/// A compiled listen pattern.
#[derive(Debug, Clone)]
pub struct ListenPattern {
    regex: Regex,
}

impl ListenPattern {
    /// Compiles `source` as deepstream would accept it, within `limits`.
    pub fn compile(source: &str, limits: PatternLimits) -> Result<Self, PatternError> {
        if source.len() > limits.max_len {
            return Err(PatternError::TooLong {
                len: source.len(),
                max: limits.max_len,
            });
        }
        let regex = RegexBuilder::new(source)
            .size_limit(limits.size_limit)
            .dfa_size_limit(limits.size_limit)
            .build()
            .map_err(|e| match e {
                regex::Error::CompiledTooBig(limit) => PatternError::TooComplex { limit },
                regex::Error::Syntax(_) => match js_only_feature(source) {
                    Some(feature) => PatternError::Unsupported(feature),
                    None => PatternError::Syntax(e),
                },
                other => PatternError::Syntax(other),
            })?;
        Ok(ListenPattern { regex })
    }

    /// `RegExp.prototype.test`: does the pattern occur anywhere in `name`?
    pub fn matches(&self, name: &str) -> bool {
        self.regex.is_match(name)
    }

    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }
}

/// The `regex` crate's syntax errors draw the pattern with a caret over several lines;
/// its last line names the problem, which is what fits in a log line or error message.
fn last_line(msg: &str) -> String {
    let line = msg
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(msg);
    line.trim().trim_start_matches("error: ").to_string()
}

/// Names the JS-only construct in a pattern the `regex` crate refused, so the client learns
/// the pattern is valid JS we cannot run rather than a typo. Only consulted after a failed
/// compile, so it can never refuse a pattern that compiles.
fn js_only_feature(source: &str) -> Option<&'static str> {
    let b = source.as_bytes();
    let mut in_class = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                match b.get(i + 1) {
                    Some(b'1'..=b'9') if !in_class => return Some("a backreference"),
                    Some(b'k') if !in_class && b.get(i + 2) == Some(&b'<') => {
                        return Some("a named backreference");
                    }
                    _ => {}
                }
                i += 2;
                continue;
            }
            b'[' if !in_class => in_class = true,
            b']' if in_class => in_class = false,
            b'(' if !in_class => {
                let rest = &b[i + 1..];
                if [&b"?="[..], b"?!", b"?<=", b"?<!"]
                    .iter()
                    .any(|p| rest.starts_with(p))
                {
                    return Some("look-around");
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(p: &str) -> Result<ListenPattern, PatternError> {
        ListenPattern::compile(p, PatternLimits::default())
    }

    #[test]
    fn search_is_unanchored_like_regexp_test() {
        let p = compile("a/[0-9]").unwrap();
        assert!(p.matches("a/1"));
        assert!(p.matches("xa/1y"));
        assert!(!p.matches("a/x"));
        let anchored = compile("^settings/.*$").unwrap();
        assert!(anchored.matches("settings/security"));
        assert!(!anchored.matches("my/settings/security"));
        assert!(compile("").unwrap().matches("anything"));
    }

    #[test]
    fn js_escapes_that_both_dialects_share_compile() {
        assert!(compile(r"a\/b").unwrap().matches("a/b"));
        assert!(compile(r"\u0041").unwrap().matches("A"));
        assert!(compile(r"(?<id>\d+)").unwrap().matches("x12"));
    }

    #[test]
    fn js_only_syntax_is_refused_by_name() {
        assert_eq!(
            compile("a(?=b)").unwrap_err(),
            PatternError::Unsupported("look-around")
        );
        assert_eq!(
            compile("(?<!x)a").unwrap_err(),
            PatternError::Unsupported("look-around")
        );
        assert_eq!(
            compile(r"(\w)\1").unwrap_err(),
            PatternError::Unsupported("a backreference")
        );
        assert_eq!(
            compile(r"(?<n>x)\k<n>").unwrap_err(),
            PatternError::Unsupported("a named backreference")
        );
    }

    #[test]
    fn malformed_patterns_are_syntax_errors_on_one_line() {
        for p in ["us(", "[a-", "user/{id}", "*a"] {
            let error = compile(p).unwrap_err();
            let PatternError::Syntax(source) = &error else {
                panic!("{p}: {error:?}");
            };
            // The regex crate's error is kept whole as the source; the message is the
            // problem in one line.
            assert!(source.to_string().contains('\n'), "{p}: {source}");
            let message = error.to_string();
            assert!(
                message.starts_with("listen pattern is not a valid regular expression: "),
                "{message}"
            );
            assert!(!message.contains('\n'), "{message}");
            assert!(
                std::error::Error::source(&error)
                    .and_then(|s| s.downcast_ref::<regex::Error>())
                    .is_some()
            );
        }
        // A bracket inside a class is not a look-around, so this stays a syntax error.
        assert!(matches!(compile("[(?=]("), Err(PatternError::Syntax(_))));
    }

    #[test]
    fn hostile_patterns_are_bounded() {
        let long = "a".repeat(1025);
        assert_eq!(
            compile(&long).unwrap_err(),
            PatternError::TooLong {
                len: 1025,
                max: 1024
            }
        );
        assert_eq!(
            compile(r"\w{1000}\w{1000}").unwrap_err(),
            PatternError::TooComplex { limit: 1 << 20 }
        );
    }
}
