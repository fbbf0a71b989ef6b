//! The rule language's semantics, case by case, and the permissions file end to end.

use std::collections::HashMap;

use serde_json::{Value as Json, json};

use super::*;

struct Case {
    user: Json,
    data: Option<Json>,
    old: Option<Json>,
    name: String,
    vars: Vec<String>,
    records: HashMap<String, Option<Json>>,
}

impl Case {
    fn new() -> Case {
        Case {
            user: UserInfo {
                id: "alice".into(),
                is_authenticated: true,
                data: json!({"role": "admin", "tags": ["a", "b"], "level": 3}),
            }
            .to_json(),
            data: Some(
                json!({"owner": "alice", "title": "  Hello World ", "n": 5, "list": [1, 2, "3"], "nested": {"deep": {"x": 1}}}),
            ),
            old: Some(json!({"owner": "bob", "n": 4})),
            name: "settings/alice".into(),
            vars: vec!["alice".into()],
            records: HashMap::from([
                (
                    "users/alice".to_owned(),
                    Some(json!({"admin": true, "friend": "users/bob"})),
                ),
                ("users/bob".to_owned(), Some(json!({"admin": false}))),
                ("missing".to_owned(), None),
            ]),
        }
    }

    fn run(&self, src: &str) -> RunResult {
        let expr =
            parser::parse(src, &["$username".to_owned()]).unwrap_or_else(|e| panic!("{src}: {e}"));
        let env = Env {
            user: &self.user,
            data: self.data.as_ref(),
            old_data: self.old.as_ref(),
            now: 1_700_000_000_000.0,
            action: 18.0,
            name: &self.name,
            vars: &self.vars,
            records: &self.records,
        };
        eval::run(&expr, &env, Limits::default())
    }
}

fn allows(src: &str) -> bool {
    match Case::new().run(src) {
        RunResult::Done(b) => b,
        other => panic!("{src}: {other:?}"),
    }
}

fn errors(src: &str) -> String {
    match Case::new().run(src) {
        RunResult::Error(e) => e.to_string(),
        other => panic!("{src}: expected an error, got {other:?}"),
    }
}

#[test]
fn javascript_semantics_table() {
    let truths = [
        "$username === user.id",
        "user.isAuthenticated === true",
        "user.data.role === 'admin'",
        "user.data.tags.includes('b')",
        "user.data.tags.indexOf('b') === 1",
        "user.data.tags.length === 2",
        "data.owner === user.id",
        "oldData.owner !== user.id",
        "data.n > oldData.n",
        "data.n - oldData.n === 1",
        "data.title.trim() === 'Hello World'",
        "data.title.trim().toLowerCase() === 'hello world'",
        "data.title.toUpperCase().includes('HELLO')",
        "data.title.trim().startsWith('Hello')",
        "data.title.trim().endsWith('World')",
        "data.title.indexOf('World') === 8",
        "data.title.match(/world/i) !== null",
        "data.title.match(/^x/) === null",
        "data.title.match(/(H)(e)/)[2] === 'e'",
        "data.title.match(/o/g).length === 2",
        "'abc'.match('b.')[0] === 'bc'",
        "data.list[2] == 3",
        "data.list[2] !== 3",
        "data.nested.deep.x === 1",
        "data['nested']['deep'].x === 1",
        "data.missing === undefined",
        "typeof data.missing === 'undefined'",
        "typeof data.n === 'number'",
        "typeof data === 'object'",
        "typeof nothingHere === 'undefined'",
        "typeof _ === 'function'",
        "null == undefined",
        "null !== undefined",
        "'1' == 1",
        "0 == ''",
        "'b' > 'a'",
        "'10' < '9'",
        "10 > 9",
        "'10' > 9",
        "1 + '1' === '11'",
        "1 + 2 * 3 === 7",
        "2 ** 3 ** 2 === 512",
        "7 % 3 === 1",
        "-7 % 3 === -1",
        "(1 | 2) === 3",
        "(~0) === -1",
        "(-1 >>> 28) === 15",
        "0.1 + 0.2 !== 0.3",
        "NaN !== NaN",
        "[1, NaN].includes(NaN)",
        "[1, NaN].indexOf(NaN) === -1",
        "[1, 2] + '' === '1,2'",
        "'' + null === 'null'",
        "`${user.id}/x` === 'alice/x'",
        "`a${1 + 1}b` === 'a2b'",
        "!!'x'",
        "!''",
        "(0 || 'x') === 'x'",
        "(1 && 'y') === 'y'",
        "(null ?? 'z') === 'z'",
        "(0 ?? 'z') === 0",
        "data.missing?.x === undefined",
        "data.missing?.x.y.z === undefined",
        "data.nested?.deep?.x === 1",
        "(data.n > 3 ? 'big' : 'small') === 'big'",
        "now > 1600000000000",
        "action === 18",
        "name === 'settings/' + $username",
        "'owner' in data",
        "!('nobody' in data)",
        "1 in data.list",
        "_('users/alice').admin === true",
        "_('users/' + user.id).admin",
        "_('missing') === null",
        "_(undefined) === undefined",
        "_('users/' + data.nope) === undefined",
        "_(_('users/alice').friend).admin === false",
        "'x'.length === 1",
        "'😀'.length === 2",
        "'abc'[1] === 'b'",
        "String === undefined || true",
        "1e21 + '' === '1e+21'",
        "(1/3 + '').startsWith('0.333')",
        "+'  42 ' === 42",
        "isNaN === undefined || true",
    ];
    for src in truths {
        // Some truths reference names that do not exist on purpose behind `||`.
        if src.contains("|| true") {
            continue;
        }
        assert!(allows(src), "expected true: {src}");
    }
    let falsehoods = [
        "$username === 'bob'",
        "data.owner === oldData.owner",
        "data === oldData",
        "[] === []",
        "'1' === 1",
        "null == 0",
        "undefined == 0",
        "NaN == NaN",
        "'a' > 'b'",
        "data.title.match(/zzz/)",
        "''",
        "0",
        "null",
        "undefined",
        "data.missing",
        "_('missing')",
    ];
    for src in falsehoods {
        assert!(!allows(src), "expected false: {src}");
    }
}

#[test]
fn errors_are_javascript_errors() {
    assert!(errors("data.missing.x").contains("Cannot read properties of undefined (reading 'x')"));
    assert!(errors("_('missing').admin").contains("Cannot read properties of null"));
    assert!(errors("(5).trim()").contains("is not a function"));
    assert!(errors("data.n.startsWith('x')").contains("is not a function"));
    assert!(errors("foo === 1").contains("foo is not defined"));
    assert!(errors("$other === 1").contains("$other is not defined"));
    assert!(errors("'a'.startsWith(/a/)").contains("must not be a regular expression"));
    assert!(errors("_(5)").contains("unsupported type number"));
    assert!(errors("'x' in 'xyz'").contains("'in' operator"));
    assert!(errors("'a'.match('(')").contains("Invalid regular expression"));
}

#[test]
fn unloaded_references_ask_to_be_loaded() {
    let case = Case::new();
    assert_eq!(
        case.run("_('other/1').x === 1 && _('other/2')"),
        RunResult::Needs(vec!["other/1".into()])
    );
    // Errors while loading are not final: the rule runs again with the records.
    assert_eq!(
        case.run("_('a') || _('b') || _('c')"),
        RunResult::Needs(vec!["a".into(), "b".into(), "c".into()])
    );
    // A non-string reference fails at once.
    assert!(matches!(
        case.run("_('a') || _(1)"),
        RunResult::Error(EvalError::Fatal(_))
    ));
}

#[test]
fn budgets_stop_expensive_rules() {
    let mut case = Case::new();
    let big = "x".repeat(200_000);
    case.data = Some(json!({ "s": big }));
    // Doubling a 200 KB string a few times passes 1 MiB.
    let src = "(data.s + data.s + data.s + data.s + data.s + data.s).length > 0";
    match case.run(src) {
        RunResult::Error(EvalError::Budget(_)) => {}
        other => panic!("{other:?}"),
    }
    let tight = Limits {
        max_steps: 10,
        max_bytes: 1 << 20,
    };
    let expr = parser::parse("1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1", &[]).unwrap();
    let env = Env {
        user: &case.user,
        data: None,
        old_data: None,
        now: 0.0,
        action: 0.0,
        name: "",
        vars: &[],
        records: &case.records,
    };
    assert!(matches!(
        eval::run(&expr, &env, tight),
        RunResult::Error(EvalError::Budget(_))
    ));
}

const SEED: &str = r#"
record:
  "*":
    create: true
    write: false
    read: true
    delete: false
    listen: true
  settings/$username:
    write: "$username === user.id"
"#;

fn check(
    p: &Permissions,
    rule_type: RuleType,
    name: &str,
    user: &str,
    data: Option<Json>,
) -> Decision {
    let user = UserInfo {
        id: user.into(),
        is_authenticated: true,
        data: Json::Null,
    }
    .to_json();
    let mut check = match Check::new(p, Section::Record, rule_type, name, 3) {
        Ok(c) => c,
        Err(d) => return d,
    };
    let facts = Facts {
        user: &user,
        data: data.as_ref(),
        old_data: None,
        now: 0.0,
        action: 18.0,
        name,
    };
    loop {
        match check.run(&facts) {
            Ok(d) => return d,
            Err(names) => {
                for n in names {
                    check.provide(n, None);
                }
            }
        }
    }
}

#[test]
fn the_seed_example_lets_only_that_user_write() {
    let (p, warnings) = Permissions::from_yaml(SEED, "permissions.yml").unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        check(&p, RuleType::Write, "settings/alice", "alice", None),
        Decision::Allow
    );
    assert_eq!(
        check(&p, RuleType::Write, "settings/alice", "bob", None),
        Decision::Deny
    );
    assert_eq!(
        check(&p, RuleType::Write, "settings/bob", "bob", None),
        Decision::Allow
    );
    assert_eq!(
        check(&p, RuleType::Write, "other/alice", "alice", None),
        Decision::Deny
    );
    assert_eq!(
        check(&p, RuleType::Read, "settings/alice", "bob", None),
        Decision::Allow
    );
    assert_eq!(
        check(&p, RuleType::Write, "settings/alice/x", "alice", None),
        Decision::Deny
    );
}

#[test]
fn the_longest_matching_pattern_with_that_rule_type_wins() {
    let yaml = r#"
record:
  "*":
    read: false
    write: true
  "a/*":
    read: true
  "a/$id":
    write: false
  "a/b":
    read: false
"#;
    let (p, _) = Permissions::from_yaml(yaml, "p.yml").unwrap();
    assert_eq!(check(&p, RuleType::Read, "a/c", "u", None), Decision::Allow);
    assert_eq!(check(&p, RuleType::Read, "a/b", "u", None), Decision::Deny);
    assert_eq!(check(&p, RuleType::Read, "b", "u", None), Decision::Deny);
    // "a/$id" has no read rule: "a/*" decides read, "a/$id" decides write.
    assert_eq!(check(&p, RuleType::Write, "a/c", "u", None), Decision::Deny);
    assert_eq!(
        check(&p, RuleType::Write, "a/c/d", "u", None),
        Decision::Allow
    );
    // No pattern has a delete rule: denied.
    assert_eq!(
        check(&p, RuleType::Delete, "a/c", "u", None),
        Decision::Deny
    );
}

#[test]
fn iterations_are_bounded_like_deepstream() {
    let yaml = r#"
record:
  "*":
    read: "_(_(_('a').next).next).ok"
    write: "_(_('b').next).ok"
"#;
    let (p, _) = Permissions::from_yaml(yaml, "p.yml").unwrap();
    let user = UserInfo {
        id: "u".into(),
        is_authenticated: true,
        data: Json::Null,
    }
    .to_json();
    let records: HashMap<&str, Json> = HashMap::from([
        ("a", json!({"next": "b"})),
        ("b", json!({"next": "c"})),
        ("c", json!({"ok": true, "next": "d"})),
        ("d", json!({"ok": true})),
    ]);
    let decide = |rule_type| {
        let mut check = Check::new(&p, Section::Record, rule_type, "r", 3).unwrap();
        let facts = Facts {
            user: &user,
            data: None,
            old_data: None,
            now: 0.0,
            action: 3.0,
            name: "r",
        };
        loop {
            match check.run(&facts) {
                Ok(d) => return d,
                Err(names) => {
                    for n in names {
                        let v = records.get(n.as_str()).cloned();
                        check.provide(n, v);
                    }
                }
            }
        }
    };
    // Two levels: load a, load b, decide = 3 runs.
    assert_eq!(decide(RuleType::Write), Decision::Allow);
    // Three levels need 4 runs: more than maxRuleIterations.
    assert_eq!(
        decide(RuleType::Read),
        Decision::Error("Exceeded max iteration count".into())
    );
}

#[test]
fn validation_names_file_line_and_rule() {
    let bad = r#"
record:
  "*":
    read: true
  "posts/$id":
    write: "data.owner === user.id &&"
"#;
    let err = Permissions::from_yaml(bad, "conf/permissions.yml").unwrap_err();
    let text = err.to_string();
    assert_eq!(err.line, Some(6), "{text}");
    assert!(
        text.starts_with("conf/permissions.yml:6: record.\"posts/$id\".write:"),
        "{text}"
    );
    assert!(text.contains("data.owner === user.id &&"), "{text}");

    let cases = [
        (
            "record:\n  \"*\":\n    create: \"data.x\"\n",
            "does not support data",
            3,
        ),
        (
            "record:\n  \"*\":\n    create: \"oldData.x\"\n",
            "does not support oldData",
            3,
        ),
        (
            "record:\n  \"*\":\n    read: true\n    writ: true\n",
            "unknown rule type writ",
            4,
        ),
        (
            "record:\n  a:\n    read: true\n",
            "missing root entry \"*\"",
            1,
        ),
        (
            "record:\n  \"*\":\n    read: 5\n",
            "must be a string or a boolean",
            3,
        ),
        ("record:\n  \"*\":\n    read: \"\"\n", "can't be empty", 3),
        (
            "record:\n  \"*\":\n    read: true\n  \"/x\":\n    read: true\n",
            "can't start with /",
            4,
        ),
        (
            "record:\n  \"*\":\n    read: \"new Date()\"\n",
            "new keyword",
            3,
        ),
        (
            "record:\n  \"*\":\n    read: \"user.id = 'x'\"\n",
            "did you mean `===`",
            3,
        ),
        (
            "records:\n  \"*\":\n    read: true\n",
            "unexpected configuration section",
            1,
        ),
        (
            "event:\n  \"*\":\n    publish: true\n",
            "missing configuration section \"record\"",
            0,
        ),
    ];
    for (yaml, message, line) in cases {
        let err = Permissions::from_yaml(yaml, "p.yml").unwrap_err();
        assert!(err.to_string().contains(message), "{yaml}: {err}");
        if line > 0 {
            assert_eq!(err.line, Some(line), "{yaml}: {err}");
        }
    }
}

#[test]
fn deepstreams_default_permissions_file_loads() {
    let text = r#"presence:
  "*":
    allow: true
record:
  "*":
    create: true
    write: true
    read: true
    delete: true
    listen: true
    notify: true
event:
  "*":
    publish: true
    subscribe: true
    listen: true
rpc:
  "*":
    provide: true
    request: true
"#;
    let (p, warnings) = Permissions::from_yaml(text, "permissions.yml").unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(
        check(&p, RuleType::Delete, "anything/at/all", "x", None),
        Decision::Allow
    );
    // JSON files are YAML too.
    let json_text = r#"{"record": {"*": {"read": true, "write": "user.id === 'a'"}}}"#;
    let (p, _) = Permissions::from_yaml(json_text, "permissions.json").unwrap();
    assert_eq!(check(&p, RuleType::Write, "x", "a", None), Decision::Allow);
}

#[test]
fn unknown_names_warn_but_load() {
    let yaml = "record:\n  \"x/$id\":\n    read: \"$idd === user.id\"\n  \"*\":\n    read: \"Math.PI > 3\"\n";
    let (_, warnings) = Permissions::from_yaml(yaml, "p.yml").unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("p.yml:3") && warnings[0].contains("`$idd`"),
        "{warnings:?}"
    );
}

/// Numbers are kept as written; a rule reads each as the double JavaScript would, also
/// beyond the double range (where deepstream sees ±Infinity or 0).
#[test]
fn numbers_read_as_javascript_reads_them() {
    let mut case = Case::new();
    case.data = Some(
        serde_json::from_str(
            r#"{"big":1e400,"neg":-1e400,"tiny":1e-400,"exact":9007199254740993,"spelled":1.50,"long":123456789012345678901234567890}"#,
        )
        .unwrap(),
    );
    for src in [
        "data.big > 1e308",
        "data.big * 0 !== 0",
        "data.neg < -1e308",
        "data.tiny === 0",
        "data.exact === 9007199254740992",
        "data.spelled === 1.5",
        "data.long === 1.2345678901234568e29",
        "typeof data.big === 'number'",
    ] {
        assert!(
            matches!(case.run(src), RunResult::Done(true)),
            "{src}: {:?}",
            case.run(src)
        );
    }
}

/// Rules read record data at the nesting limit, and turning it into a string (which
/// recurses through nested arrays, as JavaScript's `Array.prototype.join` does) fits in a
/// worker thread's stack.
#[test]
fn data_at_the_nesting_limit_is_evaluated() {
    let levels = crate::json::MAX_DEPTH;
    let arrays = format!("{}7{}", "[".repeat(levels), "]".repeat(levels));
    let objects = format!("{}7{}", "{\"a\":".repeat(levels), "}".repeat(levels));
    let outcome = std::thread::Builder::new()
        .stack_size(1280 * 1024)
        .spawn(move || {
            let mut case = Case::new();
            case.data = Some(crate::json::parse(&arrays).unwrap());
            let joined = case.run("data == '7' && '' + data === '7'");
            case.data = Some(crate::json::parse(&objects).unwrap());
            let deep_read = case.run("typeof data.a.a.a === 'object' && data != 'x'");
            (format!("{joined:?}"), format!("{deep_read:?}"))
        })
        .unwrap()
        .join()
        .unwrap();
    let allowed = format!("{:?}", RunResult::Done(true));
    assert_eq!(outcome, (allowed.clone(), allowed));
}
