//! `recordsync id new` and `recordsync id show` of the real binary: the identity file
//! (0600, never overwritten), the DID document in `--did-dir` with the endpoints as a
//! `DecentralizedWebNode` service, JSON output when piped, and the secret key never on
//! stdout, stderr or in logs.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::path::Path;
use std::process::{Output, Stdio};

use recordsync_identity::{Did, DidDirectory, DidDocument};
use serde_json::Value;

mod process;
use process::{code, stderr, stdout_json};

/// Runs the binary to its end, stdout piped (JSON output), logging everything.
fn run(args: &[&str]) -> Output {
    process::recordsync(args)
        .env("RECORDSYNC_LOG", "trace")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The secret key as the identity file holds it.
fn secret_of(identity: &Path) -> String {
    let file: Value = serde_json::from_str(&std::fs::read_to_string(identity).unwrap()).unwrap();
    file["secretKeyMultibase"].as_str().unwrap().to_owned()
}

#[test]
fn id_new_writes_a_private_identity_and_its_document_with_the_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("alice.json");
    let dids = dir.path().join("dids");
    let out = run(&[
        "id",
        "new",
        "--out",
        path(&identity),
        "--endpoint",
        "http://127.0.0.1:6020",
        "--endpoint",
        "http://127.0.0.1:6021/",
        "--did-dir",
        path(&dids),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let printed = stdout_json(&out);
    let did: Did = printed["did"].as_str().unwrap().parse().unwrap();
    assert!(did.as_str().starts_with("did:key:z6Mk"), "{did}");
    assert_eq!(printed["identity"], path(&identity));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&identity).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the identity file is the owner's only");
    }
    // The document is where the directory's naming rule puts it, and lists both nodes.
    let directory = DidDirectory::new(&dids);
    assert_eq!(printed["document"], path(&directory.path_of(&did)));
    let document: DidDocument = directory.read(&did).unwrap().unwrap();
    let endpoints: Vec<String> = document
        .node_endpoints()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        endpoints,
        ["http://127.0.0.1:6020/", "http://127.0.0.1:6021/"]
    );
    assert_eq!(
        document.to_json()["service"][0]["type"],
        "DecentralizedWebNode"
    );
    // Its key is the DID's own.
    let key_id = did.with_fragment(did.method_specific_id());
    assert!(document.signing_key(&key_id).is_ok());

    let secret = secret_of(&identity);
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&secret));
    assert!(!stderr(&out).contains(&secret));
    let on_disk = std::fs::read_to_string(directory.path_of(&did)).unwrap();
    assert!(
        !on_disk.contains(&secret),
        "the public document holds no secret"
    );
}

#[test]
fn id_show_prints_the_did_and_document_but_never_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("bob.json");
    let dids = dir.path().join("dids");
    let new = run(&[
        "id",
        "new",
        "--out",
        path(&identity),
        "--endpoint",
        "https://bob.example/",
        "--did-dir",
        path(&dids),
    ]);
    assert_eq!(code(&new), 0, "{}", stderr(&new));
    let did = stdout_json(&new)["did"].as_str().unwrap().to_owned();
    let secret = secret_of(&identity);

    let shown = run(&[
        "id",
        "show",
        "--identity",
        path(&identity),
        "--did-dir",
        path(&dids),
    ]);
    assert_eq!(code(&shown), 0, "{}", stderr(&shown));
    let printed = stdout_json(&shown);
    assert_eq!(printed["did"], did.as_str());
    assert_eq!(
        printed["keyId"],
        format!("{did}#{}", &did["did:key:".len()..])
    );
    assert_eq!(printed["document"]["id"], did.as_str());
    assert_eq!(
        printed["document"]["service"][0]["serviceEndpoint"],
        "https://bob.example/"
    );
    for text in [
        String::from_utf8_lossy(&shown.stdout).into_owned(),
        stderr(&shown),
    ] {
        assert!(!text.contains(&secret), "the key was shown: {text}");
    }

    // Without the directory, the document derived from the key alone (no nodes).
    let bare = run(&["id", "show", "--identity", path(&identity), "--json"]);
    assert_eq!(code(&bare), 0, "{}", stderr(&bare));
    let printed = stdout_json(&bare);
    assert_eq!(printed["did"], did.as_str());
    assert!(printed["document"].get("service").is_none());
}

#[test]
fn an_existing_identity_file_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("alice.json");
    std::fs::write(&identity, "precious").unwrap();
    let out = run(&["id", "new", "--out", path(&identity)]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("exists already"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&identity).unwrap(), "precious");
}

#[test]
fn usage_errors_say_what_to_give() {
    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("alice.json");
    let out = run(&[
        "id",
        "new",
        "--out",
        path(&identity),
        "--endpoint",
        "http://127.0.0.1:1",
    ]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--did-dir"), "{}", stderr(&out));
    assert!(!identity.exists(), "nothing is written on a usage error");

    let out = run(&[
        "id",
        "new",
        "--out",
        path(&identity),
        "--did-dir",
        path(dir.path()),
        "--endpoint",
        "ftp://x.example",
    ]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("http or https"), "{}", stderr(&out));
    assert!(!identity.exists());
}

#[cfg(unix)]
#[test]
fn an_identity_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("alice.json");
    assert_eq!(code(&run(&["id", "new", "--out", path(&identity)])), 0);
    std::fs::set_permissions(&identity, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(&["id", "show", "--identity", path(&identity)]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}
