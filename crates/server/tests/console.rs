//! The web console's files, served from the binary: every file checked in under
//! `crates/server/console/` is served with the content type its kind needs (a browser
//! refuses a module script served as anything but JavaScript) and the console's security
//! headers; its settings name the APIs it calls; the config switch turns it off. (The app
//! itself is tested in a real browser: `browser/`.)

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

mod support;

use recordsync_server::{Config, StorageKind};
use reqwest::Method;
use support::http::send;
use support::{http_get, start_server};

fn memory() -> Config {
    Config {
        storage: StorageKind::Memory,
        ..Config::default()
    }
}

/// What a file of the app must be served as, by its extension.
fn content_type_of(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        _ => panic!("{name}: a console file of a kind this test does not know"),
    }
}

#[tokio::test]
async fn every_file_of_the_console_is_served_with_its_content_type() {
    let addr = start_server(memory()).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(names.contains(&"index.html".to_owned()), "{names:?}");
    assert!(names.len() >= 4, "{names:?}");
    for name in &names {
        let answer = send(&addr, Method::GET, &format!("/console/{name}"), &[], None).await;
        assert_eq!(answer.status, 200, "{name}");
        assert_eq!(answer.content_type, content_type_of(name), "{name}");
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(answer.text, on_disk, "{name} is served as checked in");
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        let csp = answer.header("content-security-policy").unwrap();
        assert!(csp.contains("default-src 'self'"), "{csp}");
    }
    // the page at the console's own path
    let index = send(&addr, Method::GET, "/console/", &[], None).await;
    assert_eq!(index.status, 200);
    assert_eq!(index.content_type, "text/html; charset=utf-8");
    assert!(
        index
            .text
            .contains("<script type=\"module\" src=\"app.js\">")
    );
    let (status, head, _) = http_get(&addr, "/console").await;
    assert_eq!(status, 308, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("location: /console/"),
        "{head}"
    );
    let missing = send(&addr, Method::GET, "/console/nothing.js", &[], None).await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn the_settings_name_the_apis_the_console_calls() {
    let addr = start_server(memory()).await;
    let answer = send(&addr, Method::GET, "/console/settings.json", &[], None).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.content_type, "application/json");
    assert_eq!(
        answer.json(),
        serde_json::json!({"rest": "/v1", "auth": "/api/auth", "metrics": "/metrics"})
    );
    // what is switched off is null
    let addr = start_server(Config {
        metrics_path: None,
        http_api: None,
        ..memory()
    })
    .await;
    let answer = send(&addr, Method::GET, "/console/settings.json", &[], None).await;
    assert_eq!(
        answer.json(),
        serde_json::json!({"rest": "/v1", "auth": null, "metrics": null})
    );
}

#[tokio::test]
async fn the_console_moves_or_is_switched_off() {
    let addr = start_server(Config {
        console_path: Some("/admin".into()),
        ..memory()
    })
    .await;
    let answer = send(&addr, Method::GET, "/admin/app.js", &[], None).await;
    assert_eq!(answer.status, 200);
    let answer = send(&addr, Method::GET, "/console/app.js", &[], None).await;
    assert_eq!(answer.status, 404);

    let addr = start_server(Config {
        console_path: None,
        ..memory()
    })
    .await;
    for path in ["/console", "/console/", "/console/index.html"] {
        let answer = send(&addr, Method::GET, path, &[], None).await;
        assert_eq!(answer.status, 404, "{path}");
    }
}
