//! `recordsync id show --identity FILE [--did-dir DIR]`.

use std::path::PathBuf;

use clap::Args;
use recordsync_identity::{DidDirectory, Identity, Resolver};
use serde_json::json;

use super::IdCommandError;

#[derive(Args)]
pub struct ShowArgs {
    /// The identity file
    #[arg(long, value_name = "FILE")]
    identity: PathBuf,
    /// A directory of DID documents: the identity's document there (its nodes) is shown
    #[arg(long, value_name = "DIR")]
    did_dir: Option<PathBuf>,
    /// Print JSON even on a terminal
    #[arg(long)]
    json: bool,
}

pub async fn run(args: ShowArgs) -> Result<(), IdCommandError> {
    let identity = Identity::load(&args.identity)?;
    let mut resolver = Resolver::offline();
    if let Some(dir) = &args.did_dir {
        resolver = resolver.with_did_dir(DidDirectory::new(dir));
    }
    let document = resolver.resolve(identity.did()).await?.to_json();
    let pretty = serde_json::to_string_pretty(&document).expect("a JSON value serialises");
    super::print(
        args.json,
        &format!("{}\n{pretty}", identity.did()),
        &json!({
            "did": identity.did(),
            "keyId": identity.key_id(),
            "document": document,
        }),
    )?;
    Ok(())
}
