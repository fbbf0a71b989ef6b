//! The errors a user sees when the server cannot start: each names what failed, says what
//! to do, and keeps the error behind it as its source.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::error::Error as _;

use recordsync_server::{Config, ConfigError, Server, ServerError, StorageKind};

#[tokio::test]
async fn a_port_in_use_is_refused_with_advice_and_the_io_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = Config {
        host: "127.0.0.1".into(),
        port,
        storage: StorageKind::Memory,
        ..Config::default()
    };
    let error = match Server::bind(config).await {
        Err(error) => error,
        Ok(_) => panic!("port {port} is taken, binding must fail"),
    };
    assert!(matches!(error, ServerError::Bind { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("cannot listen on 127.0.0.1:{port}: ")),
        "{message}"
    );
    assert!(
        message.ends_with(
            "(another process listens there: stop it, or choose another port with --port)"
        ),
        "{message}"
    );
    let io = error
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .expect("the source is the I/O error");
    assert_eq!(io.kind(), std::io::ErrorKind::AddrInUse);
}

#[test]
fn an_unreadable_config_file_keeps_the_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.yml");
    let error = Config::from_file(&path).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }), "{error:?}");
    let io = error
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .expect("the source is the I/O error");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert_eq!(
        error.to_string(),
        format!("cannot read config file {}: {io}", path.display())
    );
}

#[test]
fn a_config_file_that_is_not_yaml_keeps_the_parsers_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(&path, "port: [1, 2\n").unwrap();
    let error = Config::from_file(&path).unwrap_err();
    assert!(matches!(error, ConfigError::Yaml { .. }), "{error:?}");
    let source = error.source().expect("the parser's error is the source");
    let prefix = format!("config file {} is not valid YAML: ", path.display());
    assert_eq!(error.to_string(), format!("{prefix}{source}"));
    assert!(!source.to_string().is_empty());
}
