//! Name patterns: the keys of a permissions section (`settings/$username`, `*`).
//!
//! As in deepstream, `*` matches anything (slashes included), `$name` matches one
//! non-empty segment without `/` and makes it available to the rule as `$name`, and the
//! pattern must match the whole record name. The rest of the key is a regular expression,
//! as deepstream treats it (so `.` matches any character); a key that is not a valid
//! pattern for the `regex` crate is matched literally instead, with a warning.

use regex::Regex;

#[derive(Debug, Clone)]
pub struct NamePattern {
    /// The key as written.
    pub path: String,
    /// The `$variables`, in capture order, with their `$`.
    pub vars: Vec<String>,
    regex: Regex,
    /// deepstream ranks competing patterns by key length (in UTF-16 units).
    pub specificity: usize,
}

impl NamePattern {
    /// deepstream's checks on a key: non-empty, not starting with `/`, and every `$`
    /// followed by a letter or digit.
    pub fn validate(path: &str) -> Result<(), String> {
        if path.is_empty() {
            return Err("path can't be empty".into());
        }
        if path.starts_with('/') {
            return Err("path can't start with /".into());
        }
        let bytes = path.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'$'
                && let Some(next) = path[i + 1..].chars().next()
                && !next.is_ascii_alphanumeric()
            {
                return Err(format!("invalid variable name ${next}"));
            }
        }
        Ok(())
    }

    /// Compiles a key. The second value is a warning when the key was taken literally.
    pub fn compile(path: &str) -> Result<(NamePattern, Option<String>), String> {
        Self::validate(path)?;
        let (source, vars) = translate(path, false);
        let (regex, warning) = match Regex::new(&source) {
            Ok(r) => (r, None),
            Err(_) => {
                let (literal, _) = translate(path, true);
                let regex = Regex::new(&literal).map_err(|e| e.to_string())?;
                (
                    regex,
                    Some(format!(
                        "path {path:?} is not a valid regular expression here: it is matched literally (`*` and `$variables` still work)"
                    )),
                )
            }
        };
        Ok((
            NamePattern {
                path: path.to_owned(),
                vars,
                regex,
                specificity: path.encode_utf16().count(),
            },
            warning,
        ))
    }

    pub fn is_match(&self, name: &str) -> bool {
        self.regex.is_match(name)
    }

    /// The values of the `$variables` when `name` matches.
    pub fn captures(&self, name: &str) -> Option<Vec<String>> {
        let caps = self.regex.captures(name)?;
        Some(
            caps.iter()
                .skip(1)
                .map(|m| m.map_or(String::new(), |m| m.as_str().to_owned()))
                .collect(),
        )
    }
}

/// The regular expression for a key: `*` → `.*`, `$var` → `([^/]+)`, the rest kept as
/// regular-expression text (or escaped, with `literal`).
fn translate(path: &str, literal: bool) -> (String, Vec<String>) {
    let mut out = String::from("^(?:");
    let mut vars = Vec::new();
    let mut chars = path.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '*' => out.push_str(".*"),
            '$' if chars.peek().is_some_and(|(_, n)| n.is_ascii_alphanumeric()) => {
                let start = i;
                let mut end = i + 1;
                while let Some((j, n)) = chars.peek().copied() {
                    if n.is_ascii_alphanumeric() {
                        end = j + n.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                vars.push(path[start..end].to_owned());
                out.push_str("([^/]+)");
            }
            _ if literal => out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
            _ => out.push(c),
        }
    }
    out.push_str(")$");
    (out, vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str) -> NamePattern {
        NamePattern::compile(path).unwrap().0
    }

    #[test]
    fn variables_match_one_segment() {
        let pat = p("settings/$username");
        assert_eq!(pat.vars, vec!["$username"]);
        assert_eq!(pat.captures("settings/alice"), Some(vec!["alice".into()]));
        assert!(!pat.is_match("settings/alice/x"));
        assert!(!pat.is_match("settings/"));
        assert!(!pat.is_match("xsettings/alice"));
        let two = p("chat/$room/$msg");
        assert_eq!(
            two.captures("chat/r1/m2"),
            Some(vec!["r1".into(), "m2".into()])
        );
    }

    #[test]
    fn star_matches_anything() {
        assert!(p("*").is_match(""));
        assert!(p("*").is_match("a/b/c"));
        assert!(p("public/*").is_match("public/a/b"));
        assert!(!p("public/*").is_match("private/a"));
    }

    #[test]
    fn validation_matches_deepstream() {
        assert!(NamePattern::validate("").is_err());
        assert!(NamePattern::validate("/a").is_err());
        assert_eq!(
            NamePattern::validate("a/$-x").unwrap_err(),
            "invalid variable name $-"
        );
        assert!(NamePattern::validate("a$").is_ok());
    }

    #[test]
    fn invalid_regex_falls_back_to_literal() {
        let (pat, warning) = NamePattern::compile("a/{id}").unwrap();
        assert!(warning.is_some());
        assert!(pat.is_match("a/{id}"));
    }
}
