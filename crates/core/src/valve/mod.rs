//! Valve: deepstream's permission rules, as a sans-IO library.
//!
//! A permissions file ([`Permissions`]) maps name patterns ([`NamePattern`]) to rules per
//! action type. A rule is a JavaScript-like expression over `user`, `data`, `oldData`,
//! `now`, `action`, `name`, the pattern's `$variables` and cross-references
//! `_('other/record')`. recordsync does not run JavaScript: rules are parsed into a small
//! expression tree (`parser`) and evaluated by our own interpreter (`eval`), which
//! knows no functions but the few deepstream allows and stops any rule that runs past
//! its step or memory budget.
//!
//! A rule never does I/O. When it reads a record that is not loaded, the run ends with
//! "needs these records" and the caller loads them and runs it again ([`Check`]), at most
//! `maxRuleIterations` times, as deepstream does.
//!
//! Module map (the public surface is the `pub use` block below, plus `ast` and `value`):
//! - `lexer`, `parser`, [`ast`] — rule text to expression tree ([`SyntaxError`]);
//! - [`value`], `eval` — JavaScript values and the bounded evaluator ([`EvalError`]);
//! - `pattern` — name patterns with `$variables` ([`NamePattern`]);
//! - `permissions` — the permissions file: loading, validation, choosing a rule.

// `ast` and `value` stay public: they are the rule language's vocabulary (`ast::Expr`,
// `value::Value`) and JavaScript's conversions (`value::to_string`), whose names read
// best qualified and would be ambiguous here (`Value` next to serde_json's).
pub mod ast;
pub mod value;

mod error;
mod eval;
mod lexer;
mod parser;
mod pattern;
mod permissions;

use std::collections::HashMap;

use serde_json::Value as Json;

pub use error::{EvalError, SyntaxError};
pub use eval::{Env, Limits, Records, RunResult, UserInfo};
pub use pattern::NamePattern;
pub use permissions::{
    Decision, Iterations, MAX_RULE_BYTES, Matched, Permissions, PermissionsError, Rule, RuleKind,
    RuleSet, RuleType, Section,
};

/// deepstream's default `maxRuleIterations`.
pub const DEFAULT_MAX_RULE_ITERATIONS: u32 = 3;

/// The facts of one request, as a rule sees them.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// [`UserInfo::to_json`].
    pub user: &'a Json,
    pub data: Option<&'a Json>,
    pub old_data: Option<&'a Json>,
    pub now: f64,
    pub action: f64,
    pub name: &'a str,
}

/// One permission check in progress: the chosen rule, the records loaded for its
/// cross-references, and its iteration count.
///
/// ```text
/// let mut check = Check::new(&permissions, Section::Record, RuleType::Write, name, 3)?;
/// // (load the record first if check.rule().uses_old_data, and call loaded_own_record())
/// loop {
///     match check.run(&facts) {
///         Ok(decision) => break decision,
///         Err(names) => for n in names { check.provide(n, load(n)) },
///     }
/// }
/// ```
pub struct Check<'p> {
    rule: &'p Rule,
    vars: Vec<String>,
    iterations: Iterations,
    records: HashMap<String, Option<Json>>,
    limits: Limits,
}

impl<'p> Check<'p> {
    /// The check for `rule_type` on `name`, or `Err(Deny)` when no rule applies.
    pub fn new(
        permissions: &'p Permissions,
        section: Section,
        rule_type: RuleType,
        name: &str,
        max_iterations: u32,
    ) -> Result<Check<'p>, Decision> {
        let matched = permissions
            .find(section, rule_type, name)
            .ok_or(Decision::Deny)?;
        Ok(Check {
            rule: matched.rule,
            vars: matched.vars,
            iterations: Iterations::new(max_iterations, false),
            records: HashMap::new(),
            limits: Limits::default(),
        })
    }

    pub fn rule(&self) -> &'p Rule {
        self.rule
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Counts the load of the request's own record (for `oldData` or a patch's merged
    /// `data`) as a run, as deepstream does.
    pub fn loaded_own_record(&mut self) {
        self.iterations.count_own_record_load();
    }

    /// Runs the rule. `Err(names)`: load these records ([`Check::provide`]) and run again.
    pub fn run(&mut self, facts: &Facts<'_>) -> Result<Decision, Vec<String>> {
        if let Err(decision) = self.iterations.begin_run() {
            return Ok(decision);
        }
        let env = Env {
            user: facts.user,
            data: facts.data,
            old_data: facts.old_data,
            now: facts.now,
            action: facts.action,
            name: facts.name,
            vars: &self.vars,
            records: &self.records,
        };
        self.rule.run(&env, self.limits).decision()
    }

    /// A record the rule asked for: `None` when it does not exist.
    pub fn provide(&mut self, name: String, value: Option<Json>) {
        self.records.insert(name, value);
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
