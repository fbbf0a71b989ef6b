//! Hostile input: the rule parser and evaluator never panic, and every evaluation stays
//! within its step and memory budget, whatever the rule, the record data or the names.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::{Value as Json, json};

use super::*;

/// Fragments that combine into mostly-valid, often-nasty rules.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("data".to_owned()),
        Just("oldData".to_owned()),
        Just("user.data".to_owned()),
        Just("user.id".to_owned()),
        Just("$id".to_owned()),
        Just("name".to_owned()),
        Just("now".to_owned()),
        Just("_('r/' + data.s)".to_owned()),
        Just("_(name)".to_owned()),
        Just("_(_('r/a').next)".to_owned()),
        Just("data.s.match(/(a+)+b/g)".to_owned()),
        Just("data.s.toUpperCase()".to_owned()),
        Just("data.list.includes(1)".to_owned()),
        Just("data.s.indexOf(data.s)".to_owned()),
        Just("`${data.s}${data.s}`".to_owned()),
        Just("[data.s, data.s, data.list]".to_owned()),
        Just("(data.s + data.s)".to_owned()),
        Just("data?.x?.y".to_owned()),
        Just("'x'".to_owned()),
        Just("1e308".to_owned()),
        Just("-0".to_owned()),
        Just("NaN".to_owned()),
        Just("null".to_owned()),
        Just("undefined".to_owned()),
        "[a-z]{1,4}".prop_map(|s| format!("data.{s}")),
        any::<i32>().prop_map(|n| n.to_string()),
    ]
}

fn operator() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        " + ", " - ", " * ", " / ", " % ", " ** ", " === ", " !== ", " == ", " != ", " < ", " >= ",
        " && ", " || ", " ?? ", " & ", " | ", " ^ ", " << ", " >>> ", " in ",
    ])
}

fn rule() -> impl Strategy<Value = String> {
    (
        fragment(),
        prop::collection::vec((operator(), fragment()), 0..12),
        any::<u8>(),
    )
        .prop_map(|(first, rest, shape)| {
            let mut s = first;
            for (op, f) in rest {
                s.push_str(op);
                s.push_str(&f);
            }
            match shape % 4 {
                0 => s,
                1 => format!("!({s})"),
                2 => format!("({s}) ? data.s : oldData"),
                _ => format!("typeof ({s}) === 'string'"),
            }
        })
}

fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)),
        ".{0,20}".prop_map(Json::String),
        Just(Json::String("a".repeat(10_000) + "c")),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..6)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

fn run_everything(src: &str, data: &Json) {
    let Ok(expr) = parser::parse(src, &["$id".to_owned()]) else {
        return;
    };
    let user = UserInfo {
        id: "u".into(),
        is_authenticated: true,
        data: data.clone(),
    }
    .to_json();
    let records: HashMap<String, Option<Json>> = HashMap::from([
        ("r/a".to_owned(), Some(json!({"next": "r/b"}))),
        ("r/b".to_owned(), Some(data.clone())),
    ]);
    let env = Env {
        user: &user,
        data: Some(data),
        old_data: Some(data),
        now: 0.0,
        action: 18.0,
        name: "r/a",
        vars: &["x".to_owned()],
        records: &records,
    };
    let started = Instant::now();
    let _ = eval::run(&expr, &env, Limits::default());
    // Bounded: the default budget is far below this even in a debug build.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{src} took {:?}",
        started.elapsed()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(src in ".{0,200}") {
        run_everything(&src, &json!({"s": "abc", "list": [1, 2]}));
    }

    #[test]
    fn arbitrary_token_soup_never_panics(
        parts in prop::collection::vec(prop::sample::select(vec![
            "(", ")", "[", "]", "{", "}", ".", "?.", "?", ":", ",", "!", "-", "+", "*", "/",
            "`", "${", "'", "\"", "\\", "_", "data", "typeof", "new", "=>", "=", "===", "1",
            "/a/g", "match", "(", "in", " ", "$id", "\n", "0x", "1e", ";", "..."
        ]), 0..40)
    ) {
        let src: String = parts.concat();
        run_everything(&src, &json!({"s": "abc"}));
    }

    #[test]
    fn generated_rules_stay_within_budget(src in rule(), data in json_value()) {
        let data = json!({"s": data.clone(), "list": [data.clone(), 1], "x": data});
        run_everything(&src, &data);
    }

    #[test]
    fn permissions_files_never_panic(yaml in ".{0,300}") {
        let _ = Permissions::from_yaml(&yaml, "fuzz.yml");
    }

    #[test]
    fn name_patterns_never_panic(path in ".{0,40}", name in ".{0,40}") {
        if let Ok((p, _)) = NamePattern::compile(&path) {
            let _ = p.captures(&name);
        }
    }
}

#[test]
fn pathological_inputs_are_refused_or_bounded() {
    // Deep nesting is refused rather than overflowing the stack.
    for src in [
        "(".repeat(100_000),
        "!".repeat(100_000),
        "-".repeat(100_000) + "1",
        "a".to_owned() + &".b".repeat(50_000),
        "[".repeat(50_000),
        "`${".repeat(10_000),
        vec!["1"; 50_000].join("+"),
    ] {
        assert!(parser::parse(&src, &[]).is_err());
    }
    // A catastrophic-backtracking pattern is linear in the regex crate.
    let data = json!({"s": "a".repeat(100_000)});
    run_everything("data.s.match(/(a+)+b/)", &data);
    run_everything("data.s.match('(a|aa)*c')", &data);
    // Big data: comparisons that stringify huge arrays are charged before building.
    let big = json!({"s": (0..200_000).collect::<Vec<_>>()});
    run_everything("data.s == 'x' || data.s + data.s", &big);
}
