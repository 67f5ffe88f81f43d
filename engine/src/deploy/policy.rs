//! The least-privilege IAM policy for a rule set.
//!
//! Each action used by an enabled rule contributes its own statements (see
//! [`ActionSpec::policy`](crate::registry::ActionSpec::policy)), computed from the parameters
//! of every rule that uses it; identical statements are merged. The function's own log
//! group gets `logs:CreateLogStream` and `logs:PutLogEvents`. `logs:CreateLogGroup` is left
//! out because the deployment template creates the log group, with its retention.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::registry::PolicyStatement;
use crate::ruleset::RuleSet;

/// What the policy is for.
#[derive(Clone, Debug)]
pub struct PolicyOptions {
    /// The Lambda function name, which names its log group `/aws/lambda/NAME`.
    pub function_name: String,
}

impl Default for PolicyOptions {
    fn default() -> Self {
        Self {
            function_name: "cordon".to_owned(),
        }
    }
}

/// Returns every statement of the policy, with reasons, in output order.
pub fn statements(rules: &RuleSet, options: &PolicyOptions) -> Vec<PolicyStatement> {
    let catalog = rules.catalog();
    let mut params_by_action: BTreeMap<usize, (String, Vec<&Value>)> = BTreeMap::new();
    let order = catalog.names();
    for rule in rules.rules().iter().filter(|rule| rule.enabled) {
        for action in &rule.actions {
            let position = order
                .iter()
                .position(|name| *name == action.name)
                .unwrap_or(usize::MAX);
            params_by_action
                .entry(position)
                .or_insert_with(|| (action.name.clone(), Vec::new()))
                .1
                .push(&action.raw_params);
        }
    }
    let mut merged: Vec<PolicyStatement> = Vec::new();
    for (name, params) in params_by_action.values() {
        let Some(spec) = catalog.get(name) else {
            continue;
        };
        for statement in spec.policy(params) {
            add_statement(&mut merged, statement);
        }
    }
    merged.push(PolicyStatement {
        sid: "WriteOwnLogs".to_owned(),
        actions: vec![
            "logs:CreateLogStream".to_owned(),
            "logs:PutLogEvents".to_owned(),
        ],
        resources: vec![format!(
            "arn:aws:logs:*:*:log-group:/aws/lambda/{}:*",
            options.function_name
        )],
        condition: None,
        reason: "the function writes its audit trail to its own CloudWatch Logs group".to_owned(),
    });
    name_statements(&mut merged);
    merged
}

/// Builds the IAM policy document.
pub fn iam_policy(rules: &RuleSet, options: &PolicyOptions) -> Value {
    let statements: Vec<Value> = statements(rules, options)
        .iter()
        .map(document_statement)
        .collect();
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// Adds a statement, merging it into one with the same resources and condition.
fn add_statement(merged: &mut Vec<PolicyStatement>, mut statement: PolicyStatement) {
    statement.actions.sort();
    statement.actions.dedup();
    if let Some(existing) = merged.iter_mut().find(|other| {
        other.resources == statement.resources && other.condition == statement.condition
    }) {
        for action in statement.actions {
            if !existing.actions.contains(&action) {
                existing.actions.push(action);
            }
        }
        existing.actions.sort();
        if !existing.reason.contains(&statement.reason) {
            existing.reason = format!("{}; {}", existing.reason, statement.reason);
        }
        if existing.sid.is_empty() {
            existing.sid = statement.sid;
        }
        return;
    }
    merged.push(statement);
}

/// Gives every statement a unique alphanumeric Sid.
fn name_statements(statements: &mut [PolicyStatement]) {
    let mut used: Vec<String> = Vec::new();
    for (index, statement) in statements.iter_mut().enumerate() {
        let mut sid: String = statement
            .sid
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        if sid.is_empty() {
            sid = format!("Statement{}", index + 1);
        }
        let base = sid.clone();
        let mut suffix = 2;
        while used.contains(&sid) {
            sid = format!("{base}{suffix}");
            suffix += 1;
        }
        used.push(sid.clone());
        statement.sid = sid;
    }
}

fn document_statement(statement: &PolicyStatement) -> Value {
    let mut object = serde_json::Map::new();
    object.insert("Sid".to_owned(), Value::String(statement.sid.clone()));
    object.insert("Effect".to_owned(), Value::String("Allow".to_owned()));
    object.insert("Action".to_owned(), json!(statement.actions));
    let resource = match statement.resources.as_slice() {
        [single] => Value::String(single.clone()),
        many => json!(many),
    };
    object.insert("Resource".to_owned(), resource);
    if let Some(condition) = &statement.condition {
        object.insert("Condition".to_owned(), condition.clone());
    }
    Value::Object(object)
}
