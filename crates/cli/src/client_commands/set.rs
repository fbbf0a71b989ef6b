//! `recordsync set NAME [PATH] JSON`: writes without subscribing (deepstream's `setData`),
//! waiting until the server has stored the value.

use std::process::ExitCode;

use clap::Args;
use recordsync_core::json;
use serde_json::{Value, json};

use super::output::target;
use super::{CliError, ConnectArgs};

#[derive(Args, Debug)]
// A negative number is a value to write (`set n/1 count -1`), not an option.
#[command(
    override_usage = "recordsync set [OPTIONS] <NAME> [PATH] <JSON>",
    allow_negative_numbers = true
)]
pub struct SetArgs {
    /// The record (created if it does not exist)
    pub name: String,
    /// PATH (like `address.city` or `pets[0]`) and JSON, or just JSON: the value replaces
    /// the whole record then and must be an object or array. Quote strings: '"text"'
    #[arg(value_name = "PATH|JSON")]
    pub first: String,
    #[arg(value_name = "JSON", hide = true)]
    pub second: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub async fn run(args: SetArgs) -> Result<ExitCode, CliError> {
    let (path, text) = match &args.second {
        None => ("", args.first.as_str()),
        Some(text) => (args.first.as_str(), text.as_str()),
    };
    let value = parse_json(text)?;
    let client = args.connect.connect().await?;
    client.set_data_with_ack(&args.name, path, &value).await?;
    client.close().await;
    args.connect.output().event(
        &format!("set {}", target(&args.name, path)),
        json!({ "name": args.name, "path": path, "value": value }),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The value to write: JSON nested at most as deep as a server accepts
/// (`recordsync_core::json::MAX_DEPTH`).
pub(super) fn parse_json(text: &str) -> Result<Value, CliError> {
    json::parse(text).map_err(|source| CliError::InvalidValue {
        text: text.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_must_be_json_and_the_error_says_how_to_quote() {
        assert_eq!(parse_json("42").unwrap(), json!(42));
        assert_eq!(parse_json(r#"{"a":1}"#).unwrap(), json!({"a": 1}));
        let err = parse_json("Alice").unwrap_err().to_string();
        assert!(
            err.contains("not JSON") && err.contains(r#"'"Alice"'"#),
            "{err}"
        );
        // As deep as a server accepts, past serde_json's own limit of 128; no deeper.
        let deep = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        assert!(parse_json(&deep(json::MAX_DEPTH)).is_ok());
        let err = parse_json(&deep(json::MAX_DEPTH + 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nested deeper than 512 levels"), "{err}");
        // The parser's error is kept, typed.
        let err = parse_json("Alice").unwrap_err();
        assert!(matches!(err, CliError::InvalidValue { .. }), "{err:?}");
        assert!(
            std::error::Error::source(&err)
                .and_then(|s| s.downcast_ref::<json::JsonError>())
                .is_some()
        );
        assert_eq!(err.exit_code(), 2);
    }
}
