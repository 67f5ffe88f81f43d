//! Evaluates a finding against a rule set and builds the plan.

use std::cell::OnceCell;

use rhai::Dynamic;
use serde_json::Value;

use crate::condition::{Check, Condition};
use crate::finding::Finding;
use crate::plan::{Explanation, MatchedRule, Plan, PlannedAction, RuleFailure};
use crate::registry::ParamStage;
use crate::rule::{ParamTemplate, Rule};
use crate::ruleset::RuleSet;
use crate::script::{self, Bindings};
use crate::template::{Part, RenderContext};

/// Options for [`RuleSet::evaluate`].
#[derive(Clone, Copy, Debug, Default)]
pub struct EvalOptions {
    /// Record why each candidate rule matched or not.
    pub explain: bool,
}

/// The Rhai values of one finding, converted at most once and only when a script needs them.
struct LazyBindings<'a> {
    finding: &'a Finding,
    finding_value: OnceCell<Dynamic>,
    event_value: OnceCell<Dynamic>,
}

impl LazyBindings<'_> {
    fn finding(&self) -> &Dynamic {
        self.finding_value
            .get_or_init(|| rhai::serde::to_dynamic(&self.finding.detail).unwrap_or(Dynamic::UNIT))
    }

    fn event(&self) -> &Dynamic {
        self.event_value
            .get_or_init(|| match &self.finding.envelope {
                Some(envelope) => rhai::serde::to_dynamic(envelope).unwrap_or(Dynamic::UNIT),
                None => Dynamic::UNIT,
            })
    }
}

/// What evaluating one rule produced.
enum Verdict {
    Matched(MatchedRule, Vec<RuleFailure>),
    NotMatched,
    Failed(RuleFailure),
}

impl RuleSet {
    /// Evaluates a finding and returns the plan. A rule whose script fails is reported in
    /// [`Plan::errors`] and the other rules are still evaluated.
    pub fn evaluate(&self, finding: &Finding, options: EvalOptions) -> Plan {
        let mut plan = Plan {
            finding: finding.summary.clone(),
            matched: Vec::new(),
            errors: Vec::new(),
            explanations: Vec::new(),
        };
        let lazy = LazyBindings {
            finding,
            finding_value: OnceCell::new(),
            event_value: OnceCell::new(),
        };
        for index in self.candidates(&finding.summary.finding_type) {
            let Some(rule) = self.rules.get(index) else {
                continue;
            };
            let mut explanation = options.explain.then(|| Explanation {
                rule_id: rule.id.clone(),
                matched: false,
                step: String::new(),
                reason: String::new(),
                location: rule.location(),
            });
            match self.evaluate_rule(rule, finding, &lazy, explanation.as_mut()) {
                Verdict::Matched(matched, failures) => {
                    plan.matched.push(matched);
                    plan.errors.extend(failures);
                }
                Verdict::NotMatched => {}
                Verdict::Failed(failure) => plan.errors.push(failure),
            }
            plan.explanations.extend(explanation);
        }
        plan
    }

    fn evaluate_rule(
        &self,
        rule: &Rule,
        finding: &Finding,
        lazy: &LazyBindings<'_>,
        mut explain: Option<&mut Explanation>,
    ) -> Verdict {
        let mut record = |step: String, reason: String, location: Option<String>, matched: bool| {
            if let Some(explanation) = explain.as_deref_mut() {
                explanation.step = step;
                explanation.reason = reason;
                explanation.matched = matched;
                if let Some(location) = location {
                    explanation.location = location;
                }
            }
        };
        let summary = &finding.summary;

        if summary.sample && !rule.include_samples {
            let reason =
                "the finding is a sample and the rule does not set `include_samples: true`";
            record("include_samples".into(), reason.into(), None, false);
            return Verdict::NotMatched;
        }
        if !rule.resources.is_empty() && !rule.resources.contains(&summary.resource_type) {
            let reason = format!(
                "resource type `{}` is not one of {}",
                summary.resource_type,
                quoted_list(&rule.resources)
            );
            record("match.resource".into(), reason, None, false);
            return Verdict::NotMatched;
        }
        for (index, condition) in rule.all.iter().enumerate() {
            let check = condition.check(&finding.detail);
            if !check.holds {
                let step = format!("match.all[{index}]");
                record(
                    step,
                    describe(condition, &check, "does not hold"),
                    Some(locate(rule, condition)),
                    false,
                );
                return Verdict::NotMatched;
            }
        }
        if !rule.any.is_empty() {
            let checks: Vec<Check> = rule.any.iter().map(|c| c.check(&finding.detail)).collect();
            if !checks.iter().any(|check| check.holds) {
                let reasons: Vec<String> = rule
                    .any
                    .iter()
                    .zip(&checks)
                    .map(|(condition, check)| describe(condition, check, "does not hold"))
                    .collect();
                let reason = format!("no `any` condition holds: {}", reasons.join("; "));
                record("match.any".into(), reason, None, false);
                return Verdict::NotMatched;
            }
        }
        for (index, condition) in rule.none.iter().enumerate() {
            let check = condition.check(&finding.detail);
            if check.holds {
                let step = format!("match.none[{index}]");
                record(
                    step,
                    describe(condition, &check, "holds"),
                    Some(locate(rule, condition)),
                    false,
                );
                return Verdict::NotMatched;
            }
        }
        if let Some(when) = &rule.when {
            let unit = Dynamic::UNIT;
            let bindings = Bindings {
                finding: if when.reads_finding {
                    lazy.finding()
                } else {
                    &unit
                },
                event: if when.reads_event {
                    lazy.event()
                } else {
                    &unit
                },
                env: self.env_of(rule),
            };
            match script::run(when, &bindings) {
                Ok(value) => match value.as_bool() {
                    Ok(true) => {}
                    Ok(false) => {
                        record(
                            "when".into(),
                            format!("`{}` is false", when.source.trim()),
                            None,
                            false,
                        );
                        return Verdict::NotMatched;
                    }
                    Err(type_name) => {
                        let message = format!("`when` returned {type_name}, not a boolean");
                        record("when".into(), message.clone(), None, false);
                        return Verdict::Failed(failure(rule, None, message));
                    }
                },
                Err(error) => {
                    let message = format!("`when` failed: {error}");
                    record("when".into(), message.clone(), None, false);
                    return Verdict::Failed(failure(rule, None, message));
                }
            }
        }

        record("actions".into(), "every condition holds".into(), None, true);
        let (actions, failures) = self.render_actions(rule, lazy);
        let matched = MatchedRule {
            rule_id: rule.id.clone(),
            location: rule.location(),
            actions,
        };
        Verdict::Matched(matched, failures)
    }

    fn env_of(&self, rule: &Rule) -> &Dynamic {
        static EMPTY: std::sync::OnceLock<Dynamic> = std::sync::OnceLock::new();
        self.files
            .get(rule.file_index)
            .map(|file| &file.values)
            .unwrap_or_else(|| EMPTY.get_or_init(|| Dynamic::from_map(rhai::Map::new())))
    }

    fn render_actions(
        &self,
        rule: &Rule,
        lazy: &LazyBindings<'_>,
    ) -> (Vec<PlannedAction>, Vec<RuleFailure>) {
        let mut actions = Vec::new();
        let mut failures = Vec::new();
        let env = self.env_of(rule);
        let bindings = || Bindings {
            finding: lazy.finding(),
            event: lazy.event(),
            env,
        };
        let context = RenderContext {
            finding: &lazy.finding.detail,
            event: lazy.finding.envelope.as_ref(),
            env,
            bindings: &bindings,
        };
        for template in &rule.actions {
            let rendered = render(&template.params, &context);
            let params = match rendered {
                Ok(params) => params,
                Err(message) => {
                    failures.push(failure(rule, Some(&template.name), message));
                    continue;
                }
            };
            let issues = self
                .catalog
                .get(&template.name)
                .map(|spec| spec.validate(&params, ParamStage::Rendered))
                .unwrap_or_default();
            if let Some(issue) = issues.first() {
                let at = if issue.path.is_empty() {
                    String::new()
                } else {
                    format!("`{}`: ", issue.path.join("."))
                };
                failures.push(failure(
                    rule,
                    Some(&template.name),
                    format!("{at}{}", issue.message),
                ));
                continue;
            }
            actions.push(PlannedAction {
                action: template.name.clone(),
                params,
            });
        }
        (actions, failures)
    }
}

/// Renders parameters. Literal strings skip Rhai entirely, so a rule without templates never
/// converts the finding.
fn render(params: &ParamTemplate, context: &RenderContext<'_>) -> Result<Value, String> {
    Ok(match params {
        ParamTemplate::Null => Value::Null,
        ParamTemplate::Bool(flag) => Value::Bool(*flag),
        ParamTemplate::Number(number) => Value::Number(number.clone()),
        ParamTemplate::Text(template) if template.is_literal() => {
            let text = template
                .parts
                .iter()
                .map(|part| match part {
                    Part::Literal(text) => text.as_str(),
                    Part::Expression(_) | Part::Field(_) => "",
                })
                .collect::<String>();
            Value::String(text)
        }
        ParamTemplate::Text(template) => Value::String(template.render(context)?),
        ParamTemplate::List(items) => items
            .iter()
            .map(|item| render(item, context))
            .collect::<Result<Vec<_>, _>>()?
            .into(),
        ParamTemplate::Map(entries) => {
            let mut map = serde_json::Map::new();
            for (key, value) in entries {
                map.insert(key.clone(), render(value, context)?);
            }
            Value::Object(map)
        }
    })
}

fn failure(rule: &Rule, action: Option<&str>, message: String) -> RuleFailure {
    RuleFailure {
        rule_id: rule.id.clone(),
        action: action.map(str::to_owned),
        message,
    }
}

fn locate(rule: &Rule, condition: &Condition) -> String {
    format!(
        "{}:{}:{}",
        rule.file.name, condition.span.line, condition.span.column
    )
}

fn describe(condition: &Condition, check: &Check, verdict: &str) -> String {
    let seen = match check.count {
        0 => "the path selects no value".to_owned(),
        _ => {
            let values: Vec<String> = check.seen.iter().map(Value::to_string).collect();
            let more = if check.count > check.seen.len() {
                format!(" and {} more", check.count - check.seen.len())
            } else {
                String::new()
            };
            format!("saw {}{more}", values.join(", "))
        }
    };
    format!(
        "`{}` {} {} {verdict}: {seen}",
        condition.path_text,
        condition.operator.name(),
        condition.operand_text
    )
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
