//! The response for one finding, and the Lambda error raised when the invocation must be
//! retried.

use cordon_actions::Outcome;
use cordon_engine::Summary;
use cordon_engine::plan::RuleFailure;
use lambda_runtime::Diagnostic;
use serde::Serialize;

/// The `errorType` of an event that cannot be read. Retrying sends the same event, so a retry
/// fails the same way.
pub const INVALID_EVENT: &str = "cordon.InvalidEvent";

/// The `errorType` when an action failed or was not started. Actions are idempotent, so a
/// retry repeats the work that is still missing and reports the rest as already done.
pub const ACTION_FAILED: &str = "cordon.ActionFailed";

/// The `errorType` when a rule failed during evaluation (a `when` script or template error).
/// The other rules' actions have run. A retry evaluates the same finding the same way.
pub const RULE_FAILED: &str = "cordon.RuleFailed";

/// The result of handling one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Rules matched and every action completed (`changed`, `already_done` or `skipped`).
    Executed,
    /// The finding matched no rule.
    NoRuleMatched,
    /// The event is not a finding, e.g. a GuardDuty Runtime Protection status event.
    Skipped,
    /// An action failed or was not started, or a rule failed.
    Failed,
}

impl Status {
    /// The serialized name, e.g. `no_rule_matched`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Executed => "executed",
            Self::NoRuleMatched => "no_rule_matched",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }
}

/// A matched rule, as listed in a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MatchedRule {
    /// The rule id.
    pub rule_id: String,
    /// `file:line:column` of the rule.
    pub location: String,
}

/// The JSON summary of one event.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The overall result.
    pub status: Status,
    /// The reason the event was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The finding, absent for skipped events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<Summary>,
    /// The rules that matched, in load order.
    pub matched_rules: Vec<MatchedRule>,
    /// One outcome per planned action, in plan order.
    pub actions: Vec<Outcome>,
    /// Rules that failed during evaluation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rule_errors: Vec<RuleFailure>,
}

impl Report {
    /// Creates the report of an event that is not a finding.
    pub fn skipped(reason: impl Into<String>) -> Self {
        Self {
            status: Status::Skipped,
            reason: Some(reason.into()),
            finding: None,
            matched_rules: Vec::new(),
            actions: Vec::new(),
            rule_errors: Vec::new(),
        }
    }

    /// Creates the report of a finding from its plan's parts and the actions' outcomes, and
    /// sets the status from them.
    pub fn executed(
        finding: Summary,
        matched_rules: Vec<MatchedRule>,
        actions: Vec<Outcome>,
        rule_errors: Vec<RuleFailure>,
    ) -> Self {
        let incomplete = actions.iter().any(is_incomplete);
        let status = if incomplete || !rule_errors.is_empty() {
            Status::Failed
        } else if matched_rules.is_empty() {
            Status::NoRuleMatched
        } else {
            Status::Executed
        };
        Self {
            status,
            reason: None,
            finding: Some(finding),
            matched_rules,
            actions,
            rule_errors,
        }
    }

    /// Returns the Lambda error for a failed report, or `None` when the report is a success.
    ///
    /// The message names the finding and every failed, not started or failing rule, so that
    /// the error alone, as Lambda's on-failure destination stores it, is enough to act on.
    pub fn error(&self) -> Option<Diagnostic> {
        if self.status != Status::Failed {
            return None;
        }
        let mut problems: Vec<String> = self
            .actions
            .iter()
            .filter(|outcome| is_incomplete(outcome))
            .map(describe_outcome)
            .collect();
        problems.extend(self.rule_errors.iter().map(describe_rule_failure));
        let finding = self
            .finding
            .as_ref()
            .map(|finding| format!("finding `{}` (`{}`): ", finding.id, finding.finding_type))
            .unwrap_or_default();
        let error_type = if self.actions.iter().any(is_incomplete) {
            ACTION_FAILED
        } else {
            RULE_FAILED
        };
        Some(Diagnostic {
            error_type: error_type.to_owned(),
            error_message: shortened(format!("{finding}{}", problems.join("; "))),
        })
    }
}

/// The maximum length of an error message returned to Lambda, in bytes. Longer ones are cut, so that
/// hostile finding fields repeated in many outcomes cannot push the error past the Runtime
/// API's size limit, which would lose the error altogether. The log keeps every outcome.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 16 * 1024;

/// Cuts a message to [`MAX_ERROR_MESSAGE_BYTES`] at a character boundary and appends how
/// many bytes were left out.
fn shortened(mut message: String) -> String {
    if message.len() <= MAX_ERROR_MESSAGE_BYTES {
        return message;
    }
    let mut end = MAX_ERROR_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let left_out = message.len() - end;
    message.truncate(end);
    message.push_str(&format!(
        " ... ({left_out} more bytes; the log has every outcome)"
    ));
    message
}

/// Returns true for an outcome that leaves work to do: failed or not started.
pub fn is_incomplete(outcome: &Outcome) -> bool {
    matches!(
        outcome.status,
        cordon_actions::Status::Failed { .. } | cordon_actions::Status::NotStarted { .. }
    )
}

fn describe_outcome(outcome: &Outcome) -> String {
    let rule = outcome
        .rule_id
        .as_deref()
        .map(|rule| format!(" of rule `{rule}`"))
        .unwrap_or_default();
    let verb = match outcome.status {
        cordon_actions::Status::NotStarted { .. } => "was not started",
        _ => "failed",
    };
    match outcome.status.detail() {
        Some(detail) => format!("action `{}`{rule} {verb}: {detail}", outcome.action),
        None => format!("action `{}`{rule} {verb}", outcome.action),
    }
}

fn describe_rule_failure(failure: &RuleFailure) -> String {
    match &failure.action {
        Some(action) => format!(
            "rule `{}` failed to resolve action `{action}`: {}",
            failure.rule_id, failure.message
        ),
        None => format!("rule `{}` failed: {}", failure.rule_id, failure.message),
    }
}

/// Returns the Lambda error for an event that cannot be read.
pub fn invalid_event(message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        error_type: INVALID_EVENT.to_owned(),
        error_message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use cordon_actions::Status as ActionStatus;
    use serde_json::json;

    use super::*;

    #[test]
    fn long_messages_are_cut_at_a_character() {
        let message = "é".repeat(MAX_ERROR_MESSAGE_BYTES);
        let cut = shortened(message);
        assert!(cut.len() < MAX_ERROR_MESSAGE_BYTES + 100, "{}", cut.len());
        assert!(cut.ends_with(&format!(
            " ... ({} more bytes; the log has every outcome)",
            MAX_ERROR_MESSAGE_BYTES
        )));
        assert_eq!(shortened("short".to_owned()), "short");
    }

    fn summary() -> Summary {
        Summary {
            id: "f1".to_owned(),
            finding_type: "UnauthorizedAccess:EC2/TorClient".to_owned(),
            resource_type: "Instance".to_owned(),
            account_id: Some("111122223333".to_owned()),
            region: Some("eu-west-1".to_owned()),
            instance_id: Some("i-1".to_owned()),
            severity: Some(8.0),
            sample: false,
        }
    }

    fn rule() -> Vec<MatchedRule> {
        vec![MatchedRule {
            rule_id: "tor".to_owned(),
            location: "rules/q.yaml:9:5".to_owned(),
        }]
    }

    #[test]
    fn no_rule_matched_is_a_success() {
        let report = Report::executed(summary(), Vec::new(), Vec::new(), Vec::new());
        assert_eq!(report.status, Status::NoRuleMatched);
        assert!(report.error().is_none());
    }

    #[test]
    fn done_actions_are_a_success() {
        let actions = vec![
            Outcome::new("isolate", Some("tor"), ActionStatus::Changed),
            Outcome::new("tag", Some("tor"), ActionStatus::AlreadyDone),
            Outcome::new("snapshot", Some("tor"), ActionStatus::skipped("no volumes")),
        ];
        let report = Report::executed(summary(), rule(), actions, Vec::new());
        assert_eq!(report.status, Status::Executed);
        assert!(report.error().is_none());
    }

    #[test]
    fn failed_action_names_the_reason() {
        let actions = vec![
            Outcome::new(
                "isolate",
                Some("tor"),
                ActionStatus::failed("egress_not_empty", "group `sg-1` allows egress"),
            ),
            Outcome::new("tag", Some("tor"), ActionStatus::not_started("deadline")),
        ];
        let report = Report::executed(summary(), rule(), actions, Vec::new());
        assert_eq!(report.status, Status::Failed);
        let error = report.error().unwrap();
        assert_eq!(error.error_type, ACTION_FAILED);
        assert!(
            error.error_message.starts_with("finding `f1`"),
            "{}",
            error.error_message
        );
        assert!(
            error
                .error_message
                .contains("action `isolate` of rule `tor` failed: egress_not_empty"),
            "{}",
            error.error_message
        );
        assert!(
            error
                .error_message
                .contains("action `tag` of rule `tor` was not started: deadline"),
            "{}",
            error.error_message
        );
    }

    #[test]
    fn rule_failure_alone_is_rule_failed() {
        let failure = RuleFailure {
            rule_id: "tor".to_owned(),
            action: None,
            message: "script error".to_owned(),
        };
        let report = Report::executed(summary(), Vec::new(), Vec::new(), vec![failure]);
        let error = report.error().unwrap();
        assert_eq!(error.error_type, RULE_FAILED);
        assert!(
            error
                .error_message
                .contains("rule `tor` failed: script error")
        );
    }

    #[test]
    fn status_names_match_serde() {
        for status in [
            Status::Executed,
            Status::NoRuleMatched,
            Status::Skipped,
            Status::Failed,
        ] {
            assert_eq!(serde_json::to_value(status).unwrap(), json!(status.name()));
        }
    }

    #[test]
    fn skipped_report_serializes_reason_only() {
        let value = serde_json::to_value(Report::skipped("not a finding")).unwrap();
        assert_eq!(
            value,
            json!({"status": "skipped", "reason": "not a finding", "matched_rules": [], "actions": []})
        );
    }

    #[test]
    fn executed_report_serializes_outcomes() {
        let actions = vec![Outcome::new("isolate", Some("tor"), ActionStatus::Changed)];
        let value =
            serde_json::to_value(Report::executed(summary(), rule(), actions, Vec::new())).unwrap();
        assert_eq!(value["status"], "executed");
        assert_eq!(value["finding"]["id"], "f1");
        assert_eq!(value["finding"]["type"], "UnauthorizedAccess:EC2/TorClient");
        assert_eq!(value["matched_rules"][0]["rule_id"], "tor");
        assert_eq!(value["actions"][0]["action"], "isolate");
        assert_eq!(value["actions"][0]["status"], "changed");
        assert!(value.get("rule_errors").is_none());
    }
}
