//! The permission matrix of interop/fixtures/permissions (the same cases the interop suite
//! runs through the real JS client against deepstream and recordsync), run here through
//! the engine directly: each operation becomes the permission checks recordsync's
//! deepstream front door makes for it, decided by `permission::decide` over a real engine.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::path::PathBuf;

use serde_json::{Value as Json, json};

use recordsync_core::WriteOp;
use recordsync_core::valve::Decision;
use recordsync_deepstream_protocol::RecordAction;
use recordsync_engine::{Base, Engine, WriteDone, WriteRequest};
use recordsync_server::auth::Identity;
use recordsync_server::permission::{Action, Data, PermissionConfig, Request, decide};
use recordsync_server::{Config, Server, StorageKind};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop/fixtures/permissions")
}

async fn seed(engine: &Engine, name: &str, value: &Json) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let op = WriteOp::Update {
        data: value.clone(),
    };
    engine
        .write(
            name,
            WriteRequest::new(0, op, Base::Next),
            WriteDone::new(move |r| {
                let _ = tx.send(r.is_ok());
            }),
        )
        .await;
    assert!(rx.await.unwrap(), "seeding {name}");
}

struct Checker<'a> {
    config: &'a PermissionConfig,
    engine: &'a Engine,
    user: &'a Identity,
}

impl Checker<'_> {
    async fn check(
        &self,
        rule: Action,
        action: RecordAction,
        name: &str,
        data: Data<'_>,
    ) -> Decision {
        let rules = self.config.rules().expect("rules loaded");
        decide(
            rules,
            self.config.max_rule_iterations,
            self.engine,
            Request {
                action: rule,
                user: self.user,
                name,
                data,
                wire_action: Some(action as i32),
            },
        )
        .await
    }

    /// The checks in order; the first refusal decides.
    async fn all(&self, checks: Vec<(Action, RecordAction, Data<'_>)>, name: &str) -> Decision {
        for (rule, action, data) in checks {
            let d = self.check(rule, action, name, data).await;
            if d != Decision::Allow {
                return d;
            }
        }
        Decision::Allow
    }

    /// What subscribing does: create (when missing) then read.
    async fn subscribe(&self, name: &str) -> Decision {
        let exists = matches!(self.engine.read(name).await, Ok(Some(_)));
        if !exists {
            let d = self
                .check(Action::Create, RecordAction::Create, name, Data::None)
                .await;
            if d != Decision::Allow {
                return d;
            }
        }
        self.check(Action::Read, RecordAction::Read, name, Data::None)
            .await
    }
}

fn outcome(d: &Decision) -> &'static str {
    match d {
        Decision::Allow => "allow",
        Decision::Deny => "deny",
        Decision::Error(_) => "error",
    }
}

#[tokio::test]
async fn the_interop_permission_matrix_through_the_engine() {
    let (config, _) = PermissionConfig::from_file(&fixtures().join("permissions.yml")).unwrap();
    let users: Json =
        serde_saphyr::from_str(&std::fs::read_to_string(fixtures().join("users.yml")).unwrap())
            .unwrap();
    let matrix: Json =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("matrix.json")).unwrap())
            .unwrap();
    let cases = matrix["cases"].as_array().unwrap();
    assert!(cases.len() >= 200, "the matrix has {} cases", cases.len());

    let server = Server::bind(Config {
        port: 0,
        storage: StorageKind::Memory,
        ..Config::default()
    })
    .await
    .unwrap();
    let engine = server.engine();
    let identities: std::collections::HashMap<String, Identity> = users
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, u)| {
            (
                name.clone(),
                Identity::new(
                    Some(name.clone()),
                    u["serverData"].clone(),
                    u["clientData"].clone(),
                ),
            )
        })
        .collect();

    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let u = format!("r{i}");
        let name = c["name"].as_str().unwrap().replace("{u}", &u);
        if let Some(s) = c.get("seed") {
            for also in s.get("also").and_then(Json::as_array).into_iter().flatten() {
                seed(
                    &engine,
                    &also["name"].as_str().unwrap().replace("{u}", &u),
                    &also["value"],
                )
                .await;
            }
            seed(&engine, &name, &s["value"]).await;
        }
        let user = &identities[c["user"].as_str().unwrap()];
        let checker = Checker {
            config: &config,
            engine: &engine,
            user,
        };
        let value = c.get("value").cloned().unwrap_or(Json::Null);
        let path = c.get("path").and_then(Json::as_str).map(str::to_owned);
        let op = c["op"].as_str().unwrap();
        let decision = match op {
            "snapshot" => {
                checker
                    .check(Action::Read, RecordAction::Read, &name, Data::None)
                    .await
            }
            "head" | "has" => {
                checker
                    .check(Action::Read, RecordAction::Head, &name, Data::None)
                    .await
            }
            "subscribe" => checker.subscribe(&name).await,
            "setData" | "setDataPath" => {
                checker
                    .all(
                        vec![
                            (Action::Create, RecordAction::Create, Data::None),
                            (Action::Write, RecordAction::Update, Data::Value(&value)),
                        ],
                        &name,
                    )
                    .await
            }
            "listen" => {
                checker
                    .check(Action::Listen, RecordAction::Listen, &name, Data::None)
                    .await
            }
            // The client writes, erases and deletes through a subscribed record.
            _ => match checker.subscribe(&name).await {
                Decision::Allow => {
                    let write = match (op, &path) {
                        ("set", None) => Some((
                            RecordAction::Update,
                            WriteOp::Update {
                                data: value.clone(),
                            },
                        )),
                        ("set" | "setPath", Some(p)) => Some((
                            RecordAction::Patch,
                            WriteOp::Patch {
                                path: p.clone(),
                                data: value.clone(),
                            },
                        )),
                        ("erase", Some(p)) => {
                            Some((RecordAction::Erase, WriteOp::Erase { path: p.clone() }))
                        }
                        ("delete", _) => None,
                        other => panic!("unknown op {other:?}"),
                    };
                    match write {
                        Some((action, op)) => {
                            checker
                                .check(Action::Write, action, &name, Data::Merged(&op))
                                .await
                        }
                        None => {
                            checker
                                .check(Action::Delete, RecordAction::Delete, &name, Data::None)
                                .await
                        }
                    }
                }
                refused => refused,
            },
        };
        let expected = c["expect"].as_str().unwrap();
        if outcome(&decision) != expected {
            failures.push(format!(
                "#{} {} {op} {name} {value}: expected {expected}, got {decision:?}",
                i + 1,
                c["user"]
            ));
        }
        // Apply allowed state changes the client would make, so later cases see them.
        if decision == Decision::Allow {
            let missing = engine.read(&name).await.unwrap().is_none();
            match op {
                "subscribe" if missing => seed(&engine, &name, &json!({})).await,
                "setData" | "set" if path.is_none() => seed(&engine, &name, &value).await,
                _ => {}
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
