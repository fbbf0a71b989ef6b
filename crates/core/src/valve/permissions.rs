//! A permissions file (deepstream's permissions.yml): reading, validating, and choosing
//! the rule that applies to a request.
//!
//! The file maps sections (`record`, `event`, `rpc`, `presence`) to name patterns, and
//! each pattern to rules by type (`read`, `write`, ...). A rule is `true`, `false` or an
//! expression. For a request, deepstream takes, among the patterns that match the name
//! *and have a rule of the requested type*, the one with the longest key (the later one
//! on a tie); no such pattern denies. recordsync does the same.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::Value as Json;
use serde_saphyr::Spanned;

use super::ast::{Expr, Var, visit};
use super::eval::{self, Env, Limits, RunResult};
use super::parser;
use super::pattern::NamePattern;

/// The sections of a permissions file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    Record,
    Event,
    Rpc,
    Presence,
}

impl Section {
    pub const ALL: [Section; 4] = [
        Section::Record,
        Section::Event,
        Section::Rpc,
        Section::Presence,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Section::Record => "record",
            Section::Event => "event",
            Section::Rpc => "rpc",
            Section::Presence => "presence",
        }
    }

    fn from_name(s: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|sec| sec.name() == s)
    }

    /// The rule types a section has.
    pub fn rule_types(self) -> &'static [RuleType] {
        use RuleType::*;
        match self {
            Section::Record => &[Create, Write, Read, Delete, Listen, Notify],
            Section::Event => &[Publish, Subscribe, Listen],
            Section::Rpc => &[Provide, Request],
            Section::Presence => &[Allow],
        }
    }
}

/// What a rule permits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleType {
    Create,
    Read,
    Write,
    Delete,
    Listen,
    Notify,
    Publish,
    Subscribe,
    Provide,
    Request,
    Allow,
}

impl RuleType {
    pub fn name(self) -> &'static str {
        match self {
            RuleType::Create => "create",
            RuleType::Read => "read",
            RuleType::Write => "write",
            RuleType::Delete => "delete",
            RuleType::Listen => "listen",
            RuleType::Notify => "notify",
            RuleType::Publish => "publish",
            RuleType::Subscribe => "subscribe",
            RuleType::Provide => "provide",
            RuleType::Request => "request",
            RuleType::Allow => "allow",
        }
    }

    /// Whether the request carries data a rule can read as `data` (deepstream's table).
    pub fn supports_data(self) -> bool {
        matches!(
            self,
            RuleType::Write | RuleType::Publish | RuleType::Subscribe | RuleType::Request
        )
    }

    /// Whether the record exists beforehand, so a rule can read `oldData`.
    pub fn supports_old_data(self) -> bool {
        matches!(self, RuleType::Read | RuleType::Write | RuleType::Delete)
    }
}

/// One rule, ready to run.
#[derive(Debug, Clone)]
pub struct Rule {
    pub kind: RuleKind,
    /// The rule reads `data`.
    pub uses_data: bool,
    /// The rule reads `oldData`.
    pub uses_old_data: bool,
    /// The rule calls `_()`.
    pub uses_cross_references: bool,
    /// Line of the rule in its file (1-based; 0 when not from a file).
    pub line: u64,
}

#[derive(Debug, Clone)]
pub enum RuleKind {
    Const(bool),
    Expr { text: String, expr: Expr },
}

impl Rule {
    pub fn constant(allow: bool) -> Rule {
        Rule {
            kind: RuleKind::Const(allow),
            uses_data: false,
            uses_old_data: false,
            uses_cross_references: false,
            line: 0,
        }
    }

    /// Parses a rule expression for a pattern with `vars`.
    pub fn parse(text: &str, vars: &[String]) -> Result<Rule, String> {
        if text.len() > MAX_RULE_BYTES {
            return Err(format!("rule is longer than {MAX_RULE_BYTES} bytes"));
        }
        let expr = parser::parse(text, vars).map_err(|e| e.to_string())?;
        let (mut uses_data, mut uses_old_data, mut uses_cross_references) = (false, false, false);
        visit(&expr, &mut |e| match e {
            Expr::Var(Var::Data) => uses_data = true,
            Expr::Var(Var::OldData) => uses_old_data = true,
            Expr::Var(Var::CrossRef)
            | Expr::Call {
                callee: super::ast::Callee::CrossRef,
                ..
            } => uses_cross_references = true,
            _ => {}
        });
        Ok(Rule {
            kind: RuleKind::Expr {
                text: text.to_owned(),
                expr,
            },
            uses_data,
            uses_old_data,
            uses_cross_references,
            line: 0,
        })
    }

    /// The rule's text, for messages.
    pub fn text(&self) -> String {
        match &self.kind {
            RuleKind::Const(b) => b.to_string(),
            RuleKind::Expr { text, .. } => text.clone(),
        }
    }

    /// Names the rule reads that exist nowhere (a likely typo).
    pub fn unknown_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if let RuleKind::Expr { expr, .. } = &self.kind {
            visit(expr, &mut |e| {
                if let Expr::Var(Var::Unknown(n)) = e
                    && !names.contains(n)
                {
                    names.push(n.clone());
                }
            });
        }
        names
    }

    /// Runs the rule once.
    pub fn run(&self, env: &Env<'_>, limits: Limits) -> RunResult {
        match &self.kind {
            RuleKind::Const(b) => RunResult::Done(*b),
            RuleKind::Expr { expr, .. } => eval::run(expr, env, limits),
        }
    }
}

/// Longest rule text accepted.
pub const MAX_RULE_BYTES: usize = 64 * 1024;

/// A name pattern with its rules.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub pattern: NamePattern,
    pub rules: Vec<(RuleType, Rule)>,
    pub line: u64,
}

impl RuleSet {
    pub fn rule(&self, rule_type: RuleType) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|(t, _)| *t == rule_type)
            .map(|(_, r)| r)
    }
}

/// The rule chosen for a request, with the values of its pattern's `$variables`.
#[derive(Debug)]
pub struct Matched<'p> {
    pub ruleset: &'p RuleSet,
    pub rule: &'p Rule,
    pub vars: Vec<String>,
}

/// A loaded permissions file.
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    sections: Vec<(Section, Vec<RuleSet>)>,
}

/// Why a permissions file was refused: names the file, the line, the section, pattern and
/// rule type where it can, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionsError {
    pub file: String,
    pub line: Option<u64>,
    /// `record."settings/$username".write`, or the section alone.
    pub place: Option<String>,
    pub rule: Option<String>,
    pub message: String,
}

impl fmt::Display for PermissionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": ")?;
        if let Some(place) = &self.place {
            write!(f, "{place}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(rule) = &self.rule {
            write!(f, " (rule: {rule})")?;
        }
        Ok(())
    }
}

impl std::error::Error for PermissionsError {}

/// A map that keeps its keys in file order (rule choice depends on it).
struct Ordered<K, V>(Vec<(K, V)>);

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for Ordered<K, V> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<K, V>(std::marker::PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for V2<K, V> {
            type Value = Ordered<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Ordered(Vec::new()))
            }
        }
        d.deserialize_map(V2(std::marker::PhantomData))
    }
}

type RulesDoc = Ordered<Spanned<String>, Spanned<Json>>;
type SectionDoc = Ordered<Spanned<String>, Spanned<Option<RulesDoc>>>;
type FileDoc = Ordered<Spanned<String>, Spanned<Option<SectionDoc>>>;

impl Permissions {
    /// Everything allowed: deepstream's `permission: {type: none}`.
    pub fn allow_all() -> Permissions {
        let rules = Section::Record
            .rule_types()
            .iter()
            .map(|t| (*t, Rule::constant(true)))
            .collect();
        let (pattern, _) = NamePattern::compile("*").expect("`*` is a valid pattern");
        Permissions {
            sections: vec![(
                Section::Record,
                vec![RuleSet {
                    pattern,
                    rules,
                    line: 0,
                }],
            )],
        }
    }

    /// Reads and validates a permissions file (YAML or JSON). `file` names it in errors.
    /// Returns the permissions and warnings (things that work but are probably mistakes).
    pub fn from_yaml(
        text: &str,
        file: &str,
    ) -> Result<(Permissions, Vec<String>), PermissionsError> {
        let error =
            |line: Option<u64>, place: Option<String>, rule: Option<String>, message: String| {
                PermissionsError {
                    file: file.to_owned(),
                    line,
                    place,
                    rule,
                    message,
                }
            };
        let doc: Option<FileDoc> = serde_saphyr::from_str(text).map_err(|e| {
            let text = e.to_string();
            error(
                None,
                None,
                None,
                format!("not a valid permissions file: {text}"),
            )
        })?;
        let Some(doc) = doc else {
            return Err(error(
                None,
                None,
                None,
                "the file is empty: it needs a `record` section".into(),
            ));
        };
        let mut warnings = Vec::new();
        let mut sections: Vec<(Section, Vec<RuleSet>)> = Vec::new();
        for (key, value) in doc.0 {
            let line = Some(key.referenced.line());
            let Some(section) = Section::from_name(&key.value) else {
                return Err(error(
                    line,
                    None,
                    None,
                    format!(
                        "unexpected configuration section \"{}\" (sections are record, event, rpc, presence)",
                        key.value
                    ),
                ));
            };
            if sections.iter().any(|(s, _)| *s == section) {
                return Err(error(
                    line,
                    None,
                    None,
                    format!("section \"{}\" appears twice", key.value),
                ));
            }
            let Some(rulesets_doc) = value.value else {
                return Err(error(
                    line,
                    Some(section.name().into()),
                    None,
                    format!("empty section \"{}\"", section.name()),
                ));
            };
            if rulesets_doc.0.is_empty() {
                return Err(error(
                    line,
                    Some(section.name().into()),
                    None,
                    format!("empty section \"{}\"", section.name()),
                ));
            }
            let mut rulesets = Vec::new();
            for (path, rules_doc) in rulesets_doc.0 {
                let line = path.referenced.line();
                let place = format!("{}.{:?}", section.name(), path.value);
                let (pattern, warning) = NamePattern::compile(&path.value).map_err(|m| {
                    error(
                        Some(line),
                        Some(place.clone()),
                        None,
                        format!("{m} for path {} in section {}", path.value, section.name()),
                    )
                })?;
                if let Some(w) = warning {
                    warnings.push(format!("{file}:{line}: {w}"));
                }
                if rulesets
                    .iter()
                    .any(|r: &RuleSet| r.pattern.path == path.value)
                {
                    return Err(error(
                        Some(line),
                        Some(place),
                        None,
                        "this path appears twice in the section".into(),
                    ));
                }
                let mut rules = Vec::new();
                for (rule_key, rule_value) in rules_doc.value.map(|r| r.0).unwrap_or_default() {
                    let line = rule_key.referenced.line();
                    let place = format!("{place}.{}", rule_key.value);
                    let Some(rule_type) = section
                        .rule_types()
                        .iter()
                        .copied()
                        .find(|t| t.name() == rule_key.value)
                    else {
                        let known: Vec<&str> =
                            section.rule_types().iter().map(|t| t.name()).collect();
                        return Err(error(
                            Some(line),
                            Some(place),
                            None,
                            format!(
                                "unknown rule type {} in section {} (known: {})",
                                rule_key.value,
                                section.name(),
                                known.join(", ")
                            ),
                        ));
                    };
                    let rule_line = rule_value.referenced.line();
                    let mut rule = match &rule_value.value {
                        Json::Bool(b) => Rule::constant(*b),
                        Json::String(s) if s.trim().is_empty() => {
                            return Err(error(
                                Some(rule_line),
                                Some(place),
                                None,
                                "rule can't be empty".into(),
                            ));
                        }
                        Json::String(s) => Rule::parse(s, &pattern.vars).map_err(|m| {
                            error(Some(rule_line), Some(place.clone()), Some(s.clone()), m)
                        })?,
                        other => {
                            return Err(error(
                                Some(rule_line),
                                Some(place),
                                None,
                                format!("rule must be a string or a boolean, not {other}"),
                            ));
                        }
                    };
                    rule.line = rule_line;
                    if rule.uses_old_data && !rule_type.supports_old_data() {
                        return Err(error(
                            Some(rule_line),
                            Some(place),
                            Some(rule.text()),
                            format!(
                                "rule {} for {} does not support oldData",
                                rule_type.name(),
                                section.name()
                            ),
                        ));
                    }
                    if rule.uses_data && !rule_type.supports_data() {
                        return Err(error(
                            Some(rule_line),
                            Some(place),
                            Some(rule.text()),
                            format!(
                                "rule {} for {} does not support data",
                                rule_type.name(),
                                section.name()
                            ),
                        ));
                    }
                    for unknown in rule.unknown_names() {
                        let hint = if unknown.starts_with('$') {
                            format!(" (the path {:?} has no such variable)", pattern.path)
                        } else {
                            String::new()
                        };
                        warnings.push(format!(
                            "{file}:{rule_line}: {place}: `{unknown}` is not defined{hint}: the rule fails with a permission error whenever it reaches it"
                        ));
                    }
                    rules.push((rule_type, rule));
                }
                rulesets.push(RuleSet {
                    pattern,
                    rules,
                    line,
                });
            }
            if !rulesets.iter().any(|r| r.pattern.path == "*") {
                return Err(error(
                    line,
                    Some(section.name().into()),
                    None,
                    format!("missing root entry \"*\" for section {}", section.name()),
                ));
            }
            sections.push((section, rulesets));
        }
        if !sections.iter().any(|(s, _)| *s == Section::Record) {
            return Err(error(
                None,
                None,
                None,
                "missing configuration section \"record\"".into(),
            ));
        }
        if sections
            .iter()
            .any(|(s, _)| matches!(s, Section::Rpc | Section::Presence))
        {
            warnings.push(format!(
                "{file}: the rpc and presence sections were checked but are not used: recordsync serves records and events"
            ));
        }
        Ok((Permissions { sections }, warnings))
    }

    pub fn rulesets(&self, section: Section) -> &[RuleSet] {
        self.sections
            .iter()
            .find(|(s, _)| *s == section)
            .map_or(&[], |(_, r)| r.as_slice())
    }

    /// The rule for `rule_type` on `name`: the matching pattern with such a rule and the
    /// longest key (the later one on a tie). `None`: no rule applies, which denies.
    pub fn find(&self, section: Section, rule_type: RuleType, name: &str) -> Option<Matched<'_>> {
        let mut best: Option<(&RuleSet, &Rule)> = None;
        for ruleset in self.rulesets(section) {
            let Some(rule) = ruleset.rule(rule_type) else {
                continue;
            };
            if best.is_some_and(|(b, _)| ruleset.pattern.specificity < b.pattern.specificity) {
                continue;
            }
            if ruleset.pattern.is_match(name) {
                best = Some((ruleset, rule));
            }
        }
        let (ruleset, rule) = best?;
        Some(Matched {
            ruleset,
            rule,
            vars: ruleset.pattern.captures(name).unwrap_or_default(),
        })
    }
}

/// The outcome of a permission check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// deepstream's MESSAGE_DENIED.
    Deny,
    /// The rule failed (deepstream's MESSAGE_PERMISSION_ERROR); the action is refused.
    Error(String),
}

/// Counts a rule's runs against `maxRuleIterations`, as deepstream does: each run that
/// ends waiting for records counts, and so does the first run when the request's own
/// record had to be loaded first (for `oldData`, or to merge a patch into `data`).
#[derive(Debug, Clone)]
pub struct Iterations {
    used: u32,
    max: u32,
}

impl Iterations {
    pub fn new(max: u32, loaded_own_record: bool) -> Iterations {
        Iterations {
            used: u32::from(loaded_own_record),
            max,
        }
    }

    /// Counts the load of the request's own record, once.
    pub fn count_own_record_load(&mut self) {
        self.used = self.used.max(1);
    }

    /// Call before each run: `Err` once the budget is spent.
    pub fn begin_run(&mut self) -> Result<(), Decision> {
        self.used += 1;
        if self.used > self.max {
            return Err(Decision::Error("Exceeded max iteration count".into()));
        }
        Ok(())
    }
}

impl RunResult {
    /// The decision, or the records to load before the next run.
    pub fn decision(self) -> Result<Decision, Vec<String>> {
        match self {
            RunResult::Done(true) => Ok(Decision::Allow),
            RunResult::Done(false) => Ok(Decision::Deny),
            RunResult::Error(e) => Ok(Decision::Error(e.to_string())),
            RunResult::Needs(names) => Err(names),
        }
    }
}
