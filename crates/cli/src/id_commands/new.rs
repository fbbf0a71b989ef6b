//! `recordsync id new --out FILE [--endpoint URL]... [--did-dir DIR]`.

use std::path::PathBuf;

use clap::Args;
use recordsync_identity::{DidDirectory, Identity};
use serde_json::json;
use url::Url;

use super::IdCommandError;

#[derive(Args)]
pub struct NewArgs {
    /// The identity file to create (never overwritten; mode 0600). It holds the secret
    /// key: keep it private.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// A node that holds this identity's records (http or https URL); repeat for
    /// several. Published in the DID document written to --did-dir.
    #[arg(long, value_name = "URL", value_parser = parse_endpoint)]
    endpoint: Vec<Url>,
    /// A directory of DID documents to write the new identity's document into
    #[arg(long, value_name = "DIR")]
    did_dir: Option<PathBuf>,
    /// Print JSON even on a terminal
    #[arg(long)]
    json: bool,
}

fn parse_endpoint(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "{text:?} is not an http or https URL, like http://127.0.0.1:6020"
        ));
    }
    Ok(url)
}

pub fn run(args: NewArgs) -> Result<(), IdCommandError> {
    if !args.endpoint.is_empty() && args.did_dir.is_none() {
        return Err(IdCommandError::Usage(
            "--endpoint needs --did-dir: the endpoints are published in the DID document written there".into(),
        ));
    }
    let identity = Identity::generate()?;
    identity.create_file(&args.out)?;
    let mut document_path = None;
    if let Some(dir) = &args.did_dir {
        let document = identity
            .did_key_document()
            .expect("a generated identity is a did:key")
            .with_node_endpoints(&args.endpoint);
        document_path = Some(DidDirectory::new(dir).write(&document)?);
    }
    let did = identity.did().to_string();
    super::print(
        args.json,
        &did,
        &json!({
            "did": did,
            "identity": args.out.display().to_string(),
            "document": document_path.map(|p| p.display().to_string()),
        }),
    )?;
    Ok(())
}
