//! Differential test of `recordsync_core::json0` against the npm `ot-json0` package.
//!
//! `json0-differential/cases.mjs` (Node) makes seeded random documents and ops, runs them
//! through ot-json0 1.1.0 (apply, transform left and right, apply of the transformed ops,
//! compose, apply of the composition, invert, normalize, and apply/transform of ops that
//! may not fit the document), and writes each case with ot-json0's answers as a JSON line.
//! This test reads the lines as node writes them and asks `json0` the same questions:
//!
//! - where ot-json0 returned a value, `json0` must return the same, compared as text:
//!   documents byte for byte (numbers as written, keys in order), ops component for
//!   component in their JSON form;
//! - where ot-json0 threw, `json0` must return an error;
//! - where ot-json0 did something that recordsync refuses by the rules in the `json0`
//!   module docs (a list with a hole, a number beyond the double range, half a character,
//!   a path through a string, …; `cases.mjs` marks these `js_only` and says why),
//!   `json0` must return an error.
//!
//! 100,000 cases by default (each one op pair); `JSON0_CASES` and `JSON0_SEED` change
//! that. `install.sh` installs ot-json0 from the lock file (npm ci) on the first run.

#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use recordsync_core::json0::{self, Json0Error, Op, Side, op_from_json, op_to_json};
use serde_json::Value;

/// What json0 answered: a document or an op, as JSON.
type Answer = Result<Value, Json0Error>;

#[test]
fn json0_agrees_with_ot_json0_on_100000_random_op_pairs() {
    let cases: usize = env_or("JSON0_CASES", 100_000);
    let seed: u64 = env_or("JSON0_SEED", 1);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/json0-differential");

    let install = Command::new("bash")
        .arg(dir.join("install.sh"))
        .status()
        .expect("bash runs tests/json0-differential/install.sh");
    assert!(
        install.success(),
        "installing ot-json0 failed (needs node and npm)"
    );

    let mut node = Command::new("node")
        .current_dir(&dir)
        .args([
            "cases.mjs",
            "--seed",
            &seed.to_string(),
            "--count",
            &cases.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs (the differential test needs Node 20 or later)");
    let lines = BufReader::new(node.stdout.take().unwrap()).lines();

    let mut report = Report::default();
    let mut seen = 0;
    for line in lines {
        let line = line.unwrap();
        let case: Value = serde_json::from_str(&line).unwrap();
        check_case(&case, &mut report);
        seen += 1;
    }
    assert!(node.wait().unwrap().success(), "cases.mjs failed");
    assert_eq!(seen, cases, "cases.mjs wrote every case");

    eprintln!("json0 differential, seed {seed}, {cases} cases:");
    for (check, tally) in &report.tally {
        eprintln!(
            "  {check:<16} {:>6} same value, {:>6} both refuse, {:>5} refused as JavaScript-only",
            tally[0], tally[1], tally[2]
        );
    }
    assert!(
        report.failures.is_empty(),
        "{} disagreements with ot-json0; the first ones:\n\n{}",
        report.failure_count,
        report.failures.join("\n\n")
    );
}

#[derive(Default)]
struct Report {
    /// Per check: how many agreed on a value, on an error, on a JavaScript-only result.
    tally: BTreeMap<&'static str, [usize; 3]>,
    failures: Vec<String>,
    failure_count: usize,
}

impl Report {
    fn check(&mut self, case: &Value, name: &'static str, got: Answer, expect: &Value) {
        let tally = self.tally.entry(name).or_default();
        let problem = match (expect.get("ok"), expect.get("js_only"), &got) {
            (Some(want), _, Ok(value)) => {
                if same_text(value, want, name) {
                    tally[0] += 1;
                    return;
                }
                format!(
                    "ot-json0 gave {}\n  json0    gave {}",
                    canonical(want, name),
                    value
                )
            }
            (Some(want), _, Err(e)) => {
                format!(
                    "ot-json0 gave {}\n  json0 refused: {e}",
                    canonical(want, name)
                )
            }
            (None, Some(_), Err(_)) => {
                tally[2] += 1;
                return;
            }
            (None, None, Err(_)) => {
                tally[1] += 1;
                return;
            }
            (None, _, Ok(value)) => format!("ot-json0 answered {expect}\n  json0    gave {value}"),
        };
        self.failure_count += 1;
        if self.failures.len() < 10 {
            self.failures.push(format!(
                "case {} {name}:\n  {problem}\n  case: {}",
                case["case"],
                without_expectations(case)
            ));
        }
    }
}

fn check_case(case: &Value, report: &mut Report) {
    let expect = &case["expect"];
    let doc = &case["doc"];
    let a = op(&case["a"]);
    let b = op(&case["b"]);
    let c = op(&case["c"]);

    report.check(case, "apply_a", json0::apply(doc, &a), &expect["apply_a"]);
    report.check(case, "apply_b", json0::apply(doc, &b), &expect["apply_b"]);
    report.check(
        case,
        "left",
        as_json(json0::transform(&a, &b, Side::Left)),
        &expect["left"],
    );
    report.check(
        case,
        "right",
        as_json(json0::transform(&b, &a, Side::Right)),
        &expect["right"],
    );
    // Applying the transformed ops: the inputs are ot-json0's own results.
    for (name, after, op_name) in [
        ("after_a_right", "apply_a", "right"),
        ("after_b_left", "apply_b", "left"),
    ] {
        if let (Some(want), Some(doc), Some(op)) = (
            expect.get(name),
            expect[after].get("ok"),
            expect[op_name].get("ok"),
        ) {
            report.check(case, name, json0::apply(doc, &self::op(op)), want);
        }
    }
    report.check(
        case,
        "compose_ac",
        as_json(json0::compose(&a, &c)),
        &expect["compose_ac"],
    );
    if let (Some(want), Some(composed)) =
        (expect.get("apply_composed"), expect["compose_ac"].get("ok"))
    {
        report.check(
            case,
            "apply_composed",
            json0::apply(doc, &op(composed)),
            want,
        );
    }
    report.check(
        case,
        "invert_a",
        as_json(json0::invert(&a)),
        &expect["invert_a"],
    );
    report.check(
        case,
        "normalize_a",
        as_json(json0::normalize(&case["a"])),
        &expect["normalize_a"],
    );
    report.check(
        case,
        "normalize_single",
        as_json(json0::normalize(&case["single"])),
        &expect["normalize_single"],
    );
    // Ops that may not fit the document: json0 may refuse them when reading them.
    let wild = op_from_json(&case["wild"]);
    let refused = |e: &json0::ShapeError| Json0Error::Shape(e.clone());
    report.check(
        case,
        "apply_wild",
        wild.as_ref()
            .map_err(refused)
            .and_then(|w| json0::apply(doc, w)),
        &expect["apply_wild"],
    );
    report.check(
        case,
        "transform_wild",
        as_json(
            wild.as_ref()
                .map_err(refused)
                .and_then(|w| json0::transform(w, &a, Side::Left)),
        ),
        &expect["transform_wild"],
    );
}

/// An op ot-json0 made or returned; every one must read.
fn op(value: &Value) -> Op {
    op_from_json(value).unwrap_or_else(|e| panic!("ot-json0's op {value} does not read: {e}"))
}

fn as_json(op: Result<Op, Json0Error>) -> Answer {
    op.map(|op| op_to_json(&op))
}

/// Whether `got` is `want` as text: documents as they are, ops in their canonical JSON
/// form (ot-json0 writes a component's fields in the order it set them).
fn same_text(got: &Value, want: &Value, check: &str) -> bool {
    let got = got.to_string();
    got == canonical(want, check)
}

fn canonical(want: &Value, check: &str) -> String {
    let is_op = matches!(
        check,
        "left"
            | "right"
            | "compose_ac"
            | "invert_a"
            | "normalize_a"
            | "normalize_single"
            | "transform_wild"
    );
    if is_op {
        match op_from_json(want) {
            Ok(op) => op_to_json(&op).to_string(),
            Err(e) => format!("{want} (which json0 does not read: {e})"),
        }
    } else {
        want.to_string()
    }
}

fn without_expectations(case: &Value) -> Value {
    let mut case = case.clone();
    if let Some(map) = case.as_object_mut() {
        map.shift_remove("expect");
    }
    case
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
