//! Runs test cases against their rules and compares the plans.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value as Json;

use crate::EvalOptions;
use crate::diag::Diagnostic;
use crate::finding::{self, Input};
use crate::plan::Plan;
use crate::registry::ActionCatalog;
use crate::ruleset::{LoadError, RuleSet};
use crate::testing::case::{self, Case, CaseFile};

/// The result of one case.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    /// The case name.
    pub name: String,
    /// `file:line:column` of the case.
    pub location: String,
    /// The test file.
    pub file: String,
    /// Empty when the case passed.
    pub failures: Vec<String>,
    /// The expected and actual plans as text, when they differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<Diff>,
}

/// Expected and actual plans rendered as text lines.
#[derive(Clone, Debug, Serialize)]
pub struct Diff {
    /// The plan the case expects.
    pub expected: String,
    /// The plan the rules produced.
    pub actual: String,
}

impl CaseResult {
    /// Returns true when the case passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Which rules and `any` branches the cases exercised.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Coverage {
    /// Enabled rules that matched in no case, as `id (file:line:column)`.
    pub rules_not_matched: Vec<String>,
    /// `any` conditions that held in no case where their rule matched, as
    /// `id match.any[N] (file:line:column)`.
    pub branches_not_taken: Vec<String>,
    /// How many enabled rules there are.
    pub rules: usize,
    /// How many `any` conditions the enabled rules have.
    pub branches: usize,
}

/// The result of a whole run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Every case that ran, in file order.
    pub cases: Vec<CaseResult>,
    /// Problems that stopped files from running: broken test files, broken rules.
    #[serde(skip)]
    pub errors: Vec<Diagnostic>,
    /// Warnings about the rules under test: they load, but probably not as meant.
    #[serde(skip)]
    pub warnings: Vec<Diagnostic>,
    /// Plain errors without a location, such as an unreadable folder.
    pub load_errors: Vec<String>,
    /// Coverage of the rules under test.
    pub coverage: Coverage,
}

impl Report {
    /// Returns how many cases passed.
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|case| case.passed()).count()
    }

    /// Returns how many cases failed.
    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }

    /// Returns true when every case passed and nothing failed to load.
    pub fn success(&self) -> bool {
        self.failed() == 0 && self.errors.is_empty() && self.load_errors.is_empty()
    }
}

/// Lists the test files for `paths`: a folder contributes the `*.yaml` and `*.yml` files of
/// its `tests/` subfolder (or its own, when it has no `tests/`), a file is taken as it is.
pub fn test_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_file() {
            files.push(path.clone());
            continue;
        }
        let folder = if path.join("tests").is_dir() {
            path.join("tests")
        } else {
            path.clone()
        };
        let mut found: Vec<PathBuf> = std::fs::read_dir(&folder)
            .map_err(|error| format!("cannot read `{}`: {error}", folder.display()))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|entry| {
                entry.is_file()
                    && matches!(
                        entry.extension().and_then(|e| e.to_str()),
                        Some("yaml" | "yml")
                    )
            })
            .collect();
        if found.is_empty() {
            return Err(format!(
                "no test files (`*.yaml`) in `{}`",
                folder.display()
            ));
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// Runs every case of the test files under `paths` whose name contains `filter`.
pub fn run(paths: &[PathBuf], filter: Option<&str>, catalog: &Arc<dyn ActionCatalog>) -> Report {
    let mut report = Report::default();
    let files = match test_files(paths) {
        Ok(files) => files,
        Err(message) => {
            report.load_errors.push(message);
            return report;
        }
    };
    let mut rule_sets: BTreeMap<PathBuf, Option<RuleSet>> = BTreeMap::new();
    let mut exercised = Exercised::default();
    for path in files {
        let file = match case::parse(&path) {
            Ok(file) => file,
            Err(diagnostics) => {
                report.errors.extend(diagnostics);
                continue;
            }
        };
        let key = normalize(&file.rules);
        if !rule_sets.contains_key(&key) {
            let loaded = load_rules(&file.rules, catalog, &mut report);
            rule_sets.insert(key.clone(), loaded);
        }
        let Some(Some(rules)) = rule_sets.get_mut(&key) else {
            continue;
        };
        run_file(&file, rules, filter, &mut report, &mut exercised);
    }
    report.coverage = coverage(rule_sets.values().flatten(), &exercised);
    report
}

fn normalize(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

fn load_rules(
    path: &Path,
    catalog: &Arc<dyn ActionCatalog>,
    report: &mut Report,
) -> Option<RuleSet> {
    match RuleSet::load(&[path.to_owned()], Arc::clone(catalog)) {
        Ok(rules) => {
            report.warnings.extend_from_slice(rules.warnings());
            Some(rules)
        }
        Err(LoadError::Rules(diagnostics)) => {
            let (warnings, errors) = diagnostics.0.into_iter().partition(Diagnostic::is_warning);
            report.warnings.extend::<Vec<_>>(warnings);
            report.errors.extend::<Vec<_>>(errors);
            None
        }
        Err(other) => {
            report.load_errors.push(other.to_string());
            None
        }
    }
}

/// Rules that matched, and `any` branches that held in a matching case, by rule id.
#[derive(Default)]
struct Exercised {
    rules: BTreeSet<String>,
    branches: BTreeSet<(String, usize)>,
}

fn run_file(
    file: &CaseFile,
    rules: &mut RuleSet,
    filter: Option<&str>,
    report: &mut Report,
    exercised: &mut Exercised,
) {
    for case in &file.cases {
        if filter.is_some_and(|text| !case.name.contains(text)) {
            continue;
        }
        let result = run_case(file, case, rules, exercised);
        report.cases.push(result);
    }
}

fn run_case(
    file: &CaseFile,
    case: &Case,
    rules: &mut RuleSet,
    exercised: &mut Exercised,
) -> CaseResult {
    let mut result = CaseResult {
        name: case.name.clone(),
        location: format!(
            "{}:{}:{}",
            file.source.name, case.span.line, case.span.column
        ),
        file: file.source.name.clone(),
        failures: Vec::new(),
        diff: None,
    };
    if let Err(diagnostics) = rules.bind_env(|name| case.env.get(name).cloned()) {
        for diagnostic in diagnostics.0 {
            result.failures.push(format!(
                "{}; give it a value in the test file's `env`",
                diagnostic.message
            ));
        }
        return result;
    }
    let finding = match finding::from_value(case.input.clone()) {
        Ok(Input::Finding(finding)) => finding,
        Ok(Input::Skipped { reason }) => {
            if !case.expect.matched.is_empty() {
                result.failures.push(format!(
                    "the input is skipped, so no rule can match: {reason}"
                ));
            }
            return result;
        }
        Err(error) => {
            result
                .failures
                .push(format!("the finding is invalid: {error}"));
            return result;
        }
    };
    let plan = rules.evaluate(&finding, EvalOptions { explain: true });
    record_exercised(rules, &finding.detail, &plan, exercised);
    compare(case, rules, &plan, &mut result);
    result
}

fn record_exercised(rules: &RuleSet, detail: &Json, plan: &Plan, exercised: &mut Exercised) {
    for matched in &plan.matched {
        exercised.rules.insert(matched.rule_id.clone());
        let Some(rule) = rules.rules().iter().find(|rule| rule.id == matched.rule_id) else {
            continue;
        };
        for (index, condition) in rule.any.iter().enumerate() {
            if condition.check(detail).holds {
                exercised.branches.insert((rule.id.clone(), index));
            }
        }
    }
}

fn compare(case: &Case, rules: &RuleSet, plan: &Plan, result: &mut CaseResult) {
    let mut actual_matched: Vec<String> = plan
        .matched
        .iter()
        .map(|rule| rule.rule_id.clone())
        .collect();
    actual_matched.sort();
    let mut actual_errors: Vec<String> = plan
        .errors
        .iter()
        .map(|failure| failure.rule_id.clone())
        .collect();
    actual_errors.sort();
    actual_errors.dedup();

    if actual_matched != case.expect.matched {
        let missing: Vec<&String> = case
            .expect
            .matched
            .iter()
            .filter(|id| !actual_matched.contains(id))
            .collect();
        let extra: Vec<&String> = actual_matched
            .iter()
            .filter(|id| !case.expect.matched.contains(id))
            .collect();
        for id in missing {
            result.failures.push(format!(
                "rule `{id}` did not match: {}",
                why_not(id, rules, plan)
            ));
        }
        for id in extra {
            result.failures.push(format!(
                "rule `{id}` matched but the case does not expect it"
            ));
        }
    }
    if actual_errors != case.expect.errors {
        for failure in plan
            .errors
            .iter()
            .filter(|failure| !case.expect.errors.contains(&failure.rule_id))
        {
            let action = failure
                .action
                .as_deref()
                .map(|name| format!(" (action `{name}`)"))
                .unwrap_or_default();
            result.failures.push(format!(
                "rule `{}` failed{action}: {}",
                failure.rule_id, failure.message
            ));
        }
        for id in case
            .expect
            .errors
            .iter()
            .filter(|id| !actual_errors.contains(id))
        {
            result
                .failures
                .push(format!("rule `{id}` was expected to fail but did not"));
        }
    }
    for (rule_id, expected) in &case.expect.actions {
        let actual = actions_of(plan, rule_id);
        if actual.as_ref() != Some(expected) && actual_matched.contains(rule_id) {
            result.failures.push(format!(
                "the actions of rule `{rule_id}` differ from the expected ones"
            ));
        }
    }
    if !result.failures.is_empty() {
        result.diff = Some(Diff {
            expected: render_expected(case),
            actual: render_actual(case, plan),
        });
    }
}

fn actions_of(plan: &Plan, rule_id: &str) -> Option<Vec<Json>> {
    plan.matched
        .iter()
        .find(|rule| rule.rule_id == rule_id)
        .map(|rule| {
            rule.actions
                .iter()
                .map(|action| {
                    let mut object = serde_json::Map::new();
                    object.insert(action.action.clone(), action.params.clone());
                    Json::Object(object)
                })
                .collect()
        })
}

fn why_not(rule_id: &str, rules: &RuleSet, plan: &Plan) -> String {
    if let Some(explanation) = plan.explanations.iter().find(|e| e.rule_id == rule_id) {
        return format!(
            "{} at {}: {}",
            explanation.step, explanation.location, explanation.reason
        );
    }
    match rules.rules().iter().find(|rule| rule.id == rule_id) {
        None => "no rule with this id is loaded".to_owned(),
        Some(rule) if !rule.enabled => format!("the rule is disabled ({})", rule.location()),
        Some(rule) => {
            let patterns: Vec<String> = rule
                .types
                .iter()
                .map(|p| format!("`{}`", p.as_str()))
                .collect();
            format!(
                "finding type `{}` is not one of {} ({})",
                plan.finding.finding_type,
                patterns.join(", "),
                rule.location()
            )
        }
    }
}

/// Renders the expected plan; rules without expected actions show the actual ones so that
/// the diff shows only real differences.
fn render_expected(case: &Case) -> String {
    let mut out = String::from("matched:\n");
    for rule_id in &case.expect.matched {
        out.push_str(&format!("  {rule_id}\n"));
        if let Some(actions) = case.expect.actions.get(rule_id) {
            for action in actions {
                write_yaml(&mut out, action, 4, true);
            }
        }
    }
    if !case.expect.errors.is_empty() {
        out.push_str(&format!("errors: {}\n", case.expect.errors.join(", ")));
    }
    out
}

fn render_actual(case: &Case, plan: &Plan) -> String {
    let mut matched: Vec<&crate::plan::MatchedRule> = plan.matched.iter().collect();
    matched.sort_by(|a, b| a.rule_id.cmp(&b.rule_id));
    let mut out = String::from("matched:\n");
    for rule in matched {
        out.push_str(&format!("  {}\n", rule.rule_id));
        if case.expect.actions.contains_key(&rule.rule_id) {
            for action in actions_of(plan, &rule.rule_id).unwrap_or_default() {
                write_yaml(&mut out, &action, 4, true);
            }
        }
    }
    let mut errors: Vec<&str> = plan
        .errors
        .iter()
        .map(|failure| failure.rule_id.as_str())
        .collect();
    errors.sort_unstable();
    errors.dedup();
    if !errors.is_empty() {
        out.push_str(&format!("errors: {}\n", errors.join(", ")));
    }
    out
}

/// Writes a value as block YAML, one scalar per line so that a diff points at the field that
/// differs. Scalars are written as JSON, which YAML reads back the same.
fn write_yaml(out: &mut String, value: &Json, indent: usize, list_item: bool) {
    let pad = " ".repeat(indent);
    let lead = if list_item {
        format!("{pad}- ")
    } else {
        pad.clone()
    };
    match value {
        Json::Object(map) if !map.is_empty() => {
            for (index, (key, item)) in map.iter().enumerate() {
                let prefix = if index == 0 {
                    lead.clone()
                } else {
                    format!("{pad}{}", if list_item { "  " } else { "" })
                };
                let inner = indent + if list_item { 4 } else { 2 };
                match item {
                    Json::Object(m) if !m.is_empty() => {
                        out.push_str(&format!("{prefix}{key}:\n"));
                        write_yaml(out, item, inner, false);
                    }
                    Json::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{prefix}{key}:\n"));
                        for element in a {
                            write_yaml(out, element, inner, true);
                        }
                    }
                    scalar => out.push_str(&format!("{prefix}{key}: {scalar}\n")),
                }
            }
        }
        Json::Array(items) if !items.is_empty() => {
            for item in items {
                write_yaml(out, item, indent, true);
            }
        }
        scalar => out.push_str(&format!("{lead}{scalar}\n")),
    }
}

fn coverage<'r>(rule_sets: impl Iterator<Item = &'r RuleSet>, exercised: &Exercised) -> Coverage {
    let mut coverage = Coverage::default();
    for rules in rule_sets {
        for rule in rules.rules().iter().filter(|rule| rule.enabled) {
            coverage.rules += 1;
            coverage.branches += rule.any.len();
            if !exercised.rules.contains(&rule.id) {
                coverage
                    .rules_not_matched
                    .push(format!("{} ({})", rule.id, rule.location()));
            }
            for (index, condition) in rule.any.iter().enumerate() {
                if !exercised.branches.contains(&(rule.id.clone(), index)) {
                    coverage.branches_not_taken.push(format!(
                        "{} match.any[{index}] ({}:{}:{})",
                        rule.id, rule.file.name, condition.span.line, condition.span.column
                    ));
                }
            }
        }
    }
    coverage
}
