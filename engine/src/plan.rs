//! The result of evaluating a finding: which rules matched and what they would do.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::finding::Summary;

/// What the rules decided for one finding.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// The finding the plan is for.
    pub finding: Summary,
    /// The rules that matched, in load order, with their resolved actions.
    pub matched: Vec<MatchedRule>,
    /// Rules that failed while being evaluated, or actions that failed to resolve.
    pub errors: Vec<RuleFailure>,
    /// Why each candidate rule matched or not; filled only when requested.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub explanations: Vec<Explanation>,
}

/// A rule that matched.
#[derive(Clone, Debug, Serialize)]
pub struct MatchedRule {
    /// The rule id.
    pub rule_id: String,
    /// `file:line:column` of the rule.
    pub location: String,
    /// The actions with their parameters rendered.
    pub actions: Vec<PlannedAction>,
}

/// An action ready to run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedAction {
    /// The action name.
    pub action: String,
    /// The parameters, every template rendered.
    pub params: Value,
}

/// A rule or action that failed during evaluation. The other rules are still evaluated.
#[derive(Clone, Debug, Serialize)]
pub struct RuleFailure {
    /// The rule id.
    pub rule_id: String,
    /// The action that failed to resolve, when the failure is about one action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// What went wrong.
    pub message: String,
}

/// Why a candidate rule matched or not.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    /// The rule id.
    pub rule_id: String,
    /// Whether the rule matched.
    pub matched: bool,
    /// The part of the rule that decided, e.g. `match.all[0]` or `when`.
    pub step: String,
    /// A sentence saying what was checked and what was seen.
    pub reason: String,
    /// `file:line:column` of the deciding part.
    pub location: String,
}

impl Plan {
    /// Returns true when at least one rule matched.
    pub fn is_match(&self) -> bool {
        !self.matched.is_empty()
    }

    /// Renders the plan as readable text. Control characters from the finding are escaped,
    /// so that a hostile field cannot forge lines or terminal escapes.
    pub fn to_text(&self) -> String {
        escape_controls(&self.raw_text())
    }

    fn raw_text(&self) -> String {
        let mut out = String::new();
        let finding = &self.finding;
        let _ = writeln!(
            out,
            "finding {} ({})",
            printable(&finding.id),
            printable(&finding.finding_type)
        );
        let _ = writeln!(
            out,
            "  resource {}{}, account {}, region {}{}",
            printable(&finding.resource_type),
            finding
                .instance_id
                .as_deref()
                .map(|id| format!(" {}", printable(id)))
                .unwrap_or_default(),
            printable(finding.account_id.as_deref().unwrap_or("-")),
            printable(finding.region.as_deref().unwrap_or("-")),
            if finding.sample {
                ", sample finding"
            } else {
                ""
            },
        );
        if self.matched.is_empty() {
            out.push_str("no rule matched\n");
        }
        for rule in &self.matched {
            let _ = writeln!(out, "rule {} ({})", rule.rule_id, rule.location);
            for action in &rule.actions {
                let _ = writeln!(out, "  {} {}", action.action, action.params);
            }
        }
        for failure in &self.errors {
            let action = failure
                .action
                .as_deref()
                .map(|name| format!(" action `{name}`"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "error in rule {}{}: {}",
                failure.rule_id,
                action,
                printable(&failure.message)
            );
        }
        if !self.explanations.is_empty() {
            out.push_str("explanations:\n");
        }
        for explanation in &self.explanations {
            let verdict = if explanation.matched {
                "matched"
            } else {
                "did not match"
            };
            let _ = writeln!(
                out,
                "  {} {verdict} at {} ({}): {}",
                explanation.rule_id,
                explanation.step,
                explanation.location,
                printable(&explanation.reason)
            );
        }
        out
    }
}

/// Escapes every control character of a value taken from the finding, newlines included, so
/// that printing it cannot forge lines or send terminal escapes.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Replaces control characters other than newline with `\u{..}` escapes. The newlines left
/// are the renderer's own, because finding fields pass through [`printable`] first and JSON
/// encoding escapes newlines inside parameter values.
fn escape_controls(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
