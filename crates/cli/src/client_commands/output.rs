//! How results are printed: readable on a terminal, JSON when piped (or with `--json`).

use std::io::{IsTerminal, Write};

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// JSON lines instead of text for people.
    pub json: bool,
}

impl Output {
    pub fn detect(force_json: bool) -> Output {
        Output {
            json: force_json || !std::io::stdout().is_terminal(),
        }
    }

    /// A value: indented on a terminal, one compact line as JSON.
    pub fn value(&self, value: &Value) -> std::io::Result<()> {
        line(&self.format_value(value))
    }

    pub fn format_value(&self, value: &Value) -> String {
        if self.json {
            value.to_string()
        } else {
            serde_json::to_string_pretty(value).expect("values serialise")
        }
    }

    /// An event or result: the `human` text on a terminal, `json` otherwise.
    pub fn event(&self, human: &str, json: Value) -> std::io::Result<()> {
        if self.json {
            line(&json.to_string())
        } else {
            line(human)
        }
    }
}

/// Prints one line and flushes it, so that a reader on a pipe sees it at once.
fn line(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}

/// `name` or `name path`, for messages.
pub fn target(name: &str, path: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{name} {path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_compact_as_json_and_indented_for_people() {
        let v = json!({"a": [1, 2]});
        assert_eq!(Output { json: true }.format_value(&v), r#"{"a":[1,2]}"#);
        assert_eq!(
            Output { json: false }.format_value(&v),
            "{\n  \"a\": [\n    1,\n    2\n  ]\n}"
        );
        assert_eq!(target("r", ""), "r");
        assert_eq!(target("r", "a.b"), "r a.b");
    }
}
