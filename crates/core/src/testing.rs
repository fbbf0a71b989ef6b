//! Generators for property tests in every crate (feature `testing`): JSON documents full
//! of numbers spelled as JavaScript's `JSON.stringify` writes them, and in the other
//! spellings recordsync keeps as written.
//!
//! A store must never change a number. recordsync keeps every number token as the client
//! wrote it (serde_json's `arbitrary_precision`: a number is held as its text, never as a
//! binary float), so the property every crate checks is plain text equality: a document
//! generated here comes back from any path byte for byte. The one rewriting serde_json
//! does is the exponent's spelling (`1E5` and `1e5` come back as `1e+5`), which is the
//! spelling JavaScript writes; [`number`] therefore generates exponents as `e+` / `e-`,
//! and [`tests`] pins the rewriting.
//!
//! [`query`] generates documents and Mongo-style filters for the query engine's tests.

use proptest::prelude::*;

pub mod query;

/// `x` as JavaScript's `JSON.stringify` writes a finite number ([`crate::js_number::format`]).
///
/// # Panics
/// If `x` is not finite (JSON has no spelling for it).
pub fn js_number(x: f64) -> String {
    assert!(x.is_finite(), "JSON has no number {x}");
    crate::js_number::format(x)
}

/// Any finite double, from uniformly random bits: every exponent is as likely as any other,
/// so subnormals, huge and tiny values are all common.
pub fn any_double() -> impl Strategy<Value = f64> {
    any::<u64>().prop_filter_map("not finite", |bits| {
        let x = f64::from_bits(bits);
        x.is_finite().then_some(x)
    })
}

/// Number tokens that must come back exactly as written: JavaScript's spellings of
/// random doubles and of the extremes, integers beyond 2^53 and beyond 64 bits, and
/// spellings JavaScript never writes but JSON allows (`-0`, `1.50`, `1e+400`).
pub fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => any_double().prop_map(js_number),
        2 => any::<i64>().prop_map(|i| i.to_string()),
        1 => any::<u64>().prop_map(|u| u.to_string()),
        // Beyond 64 bits: 20 to 40 digits.
        1 => "-?[1-9][0-9]{19,39}",
        // Decimals with more digits than a double holds, and trailing zeros.
        1 => "-?(0|[1-9][0-9]{0,3})\\.[0-9]{1,30}",
        // Exponents beyond the double range, in JavaScript's spelling of exponents.
        1 => "-?[1-9](\\.[0-9]{1,5})?e[+-][0-9]{1,4}",
        1 => prop::sample::select(EXTREMES).prop_map(str::to_owned),
    ]
}

/// Numbers at the edges: the largest and smallest doubles, 2^53 ± 1, negative zero.
pub const EXTREMES: &[&str] = &[
    "1e+308",
    "1.7976931348623157e+308",
    "-1.7976931348623157e+308",
    "5e-324",
    "-5e-324",
    "2.2250738585072014e-308",
    "9007199254740991",
    "9007199254740992",
    "9007199254740993",
    "-9007199254740993",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "3990.8571428571427",
    "0.1",
    "0.30000000000000004",
    "-0",
    "-0.0",
    "0.0",
    "1e+21",
    "1e-7",
    "123e-20",
    // Beyond what PostgreSQL's numeric (and so jsonb) can hold.
    "1e+200000",
    "-2.5e-20000",
];

/// A JSON document as a tree whose number leaves are tokens, so that a test can write it
/// out exactly and change one leaf.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    Number(String),
    Text(String),
    Bool(bool),
    Null,
    Array(Vec<Doc>),
    /// Keys are unique and in the order written.
    Object(Vec<(String, Doc)>),
}

impl Doc {
    /// Compact JSON text, as `JSON.stringify` writes it.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Doc::Number(token) => out.push_str(token),
            Doc::Text(s) => out.push_str(&serde_json::to_string(s).expect("strings serialise")),
            Doc::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Doc::Null => out.push_str("null"),
            Doc::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Doc::Object(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(key).expect("strings serialise"));
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }

    /// The deepstream path of every number leaf (`a.b[2].c`), in document order. Keys are
    /// generated as plain identifiers, so every key is a valid path segment.
    pub fn number_paths(&self) -> Vec<String> {
        let mut paths = Vec::new();
        self.collect_number_paths(String::new(), &mut paths);
        paths
    }

    fn collect_number_paths(&self, here: String, paths: &mut Vec<String>) {
        match self {
            Doc::Number(_) if !here.is_empty() => paths.push(here),
            Doc::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    item.collect_number_paths(format!("{here}[{i}]"), paths);
                }
            }
            Doc::Object(entries) => {
                for (key, value) in entries {
                    let path = if here.is_empty() {
                        key.clone()
                    } else {
                        format!("{here}.{key}")
                    };
                    value.collect_number_paths(path, paths);
                }
            }
            _ => {}
        }
    }

    /// Replaces the leaf at `path` (one of [`Doc::number_paths`]) with `leaf`.
    ///
    /// # Panics
    /// If `path` names no leaf of this document.
    pub fn set(&mut self, path: &str, leaf: Doc) {
        *self.at(&path_parts(path)) = leaf;
    }

    /// Erases the leaf at `path` (one of [`Doc::number_paths`]) as deepstream's ERASE
    /// does: an object key is removed, an array element becomes `null`.
    pub fn erase(&mut self, path: &str) {
        let mut parts = path_parts(path);
        let last = parts.pop().expect("a path has a part");
        match (self.at(&parts), last) {
            (Doc::Object(entries), Part::Key(key)) => entries.retain(|(k, _)| k != key),
            (Doc::Array(items), Part::Index(i)) => items[i] = Doc::Null,
            (doc, part) => panic!("{part:?} does not fit {doc:?}"),
        }
    }

    fn at(&mut self, parts: &[Part<'_>]) -> &mut Doc {
        let mut at = self;
        for part in parts {
            at = match (at, part) {
                (Doc::Object(entries), Part::Key(key)) => {
                    &mut entries
                        .iter_mut()
                        .find(|(k, _)| k == key)
                        .expect("the path names a key of the document")
                        .1
                }
                (Doc::Array(items), Part::Index(i)) => &mut items[*i],
                (doc, part) => panic!("{part:?} does not fit {doc:?}"),
            };
        }
        at
    }
}

#[derive(Debug)]
enum Part<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits a path made by [`Doc::number_paths`] (keys are identifiers, indexes in brackets).
fn path_parts(path: &str) -> Vec<Part<'_>> {
    let mut parts = Vec::new();
    for piece in path.split('.') {
        let (key, indexes) = piece.split_once('[').unwrap_or((piece, ""));
        if !key.is_empty() {
            parts.push(Part::Key(key));
        }
        for index in indexes.split('[').filter(|s| !s.is_empty()) {
            let digits = index.trim_end_matches(']');
            parts.push(Part::Index(digits.parse().expect("an index")));
        }
    }
    parts
}

/// Documents whose leaves are mostly numbers from [`number`]: an object at the top (what a
/// whole-record write needs), nested objects and arrays, keys as identifiers.
pub fn document() -> impl Strategy<Value = Doc> {
    document_of(number())
}

/// Documents whose numbers are random doubles as JavaScript spells them: what a server
/// written in JavaScript (deepstream) also keeps as written.
pub fn js_document() -> impl Strategy<Value = Doc> {
    document_of(any_double().prop_map(js_number))
}

/// Documents whose number leaves come from `numbers`.
pub fn document_of(numbers: impl Strategy<Value = String> + 'static) -> impl Strategy<Value = Doc> {
    let leaf = prop_oneof![
        8 => numbers.prop_map(Doc::Number),
        1 => "[a-zé€😀 ]{0,6}".prop_map(Doc::Text),
        1 => any::<bool>().prop_map(Doc::Bool),
        1 => Just(Doc::Null),
    ];
    let tree = leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..8).prop_map(Doc::Array),
            object_of(inner),
        ]
    });
    object_of(tree)
}

fn object_of(values: impl Strategy<Value = Doc>) -> impl Strategy<Value = Doc> {
    prop::collection::vec(("[a-z][a-z0-9_]{0,5}", values), 1..8).prop_map(|entries| {
        let mut seen = std::collections::HashSet::new();
        Doc::Object(
            entries
                .into_iter()
                .filter(|(k, _)| seen.insert(k.clone()))
                .collect(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_a_document_reach_its_numbers() {
        let mut doc = Doc::Object(vec![
            ("a".into(), Doc::Number("1".into())),
            (
                "b".into(),
                Doc::Array(vec![
                    Doc::Null,
                    Doc::Array(vec![Doc::Number("2".into())]),
                    Doc::Object(vec![("c".into(), Doc::Number("3".into()))]),
                ]),
            ),
        ]);
        assert_eq!(doc.number_paths(), ["a", "b[1][0]", "b[2].c"]);
        doc.set("b[2].c", Doc::Number("-0".into()));
        doc.set("b[1][0]", Doc::Text("x".into()));
        assert_eq!(doc.to_json(), r#"{"a":1,"b":[null,["x"],{"c":-0}]}"#);
        doc.erase("b[2].c");
        doc.erase("b[1][0]");
        doc.erase("a");
        assert_eq!(doc.to_json(), r#"{"b":[null,[null],{}]}"#);
    }
}
