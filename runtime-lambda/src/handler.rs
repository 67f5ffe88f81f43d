//! The invocation handler: classify the payload, plan each finding with the engine, run the
//! plan with the executor, and translate the result into the Lambda response.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};
use cordon_actions::Outcome;
use cordon_engine::finding::{self, Input};
use cordon_engine::{EvalOptions, Finding, Plan, RuleSet};
use lambda_runtime::Diagnostic;
use serde_json::Value;
use tracing::{Instrument, error, info, info_span, warn};

use crate::event::{self, Batch, Delivery, Record};
use crate::report::{self, MatchedRule, Report, Status};

/// Time kept back from the invocation deadline for sending the response, so that the
/// executor stops starting actions before Lambda stops the function.
pub const RESPONSE_RESERVE: Duration = Duration::from_millis(500);

/// Runs the actions of a plan. The real implementation calls EC2 through `cordon-actions`.
pub trait Executor: Send + Sync {
    /// Executes every action of `plan`, in order, and returns one outcome per action.
    /// Actions that cannot finish before `deadline` are returned as not started.
    fn execute(
        &self,
        plan: &Plan,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Vec<Outcome>> + Send;
}

/// The function's state, built once at cold start and shared by every invocation.
pub struct Function<E> {
    rules: RuleSet,
    executor: E,
}

impl<E: Executor> Function<E> {
    /// Creates the function from compiled rules (environment already bound) and an executor.
    pub fn new(rules: RuleSet, executor: E) -> Self {
        Self { rules, executor }
    }

    /// Returns the executor the plans run on.
    pub fn executor(&self) -> &E {
        &self.executor
    }

    /// Handles one invocation.
    ///
    /// Returns the [`Report`] of a single event as JSON, or for an SQS batch the
    /// `SqsBatchResponse` that lists the records to retry.
    ///
    /// # Errors
    ///
    /// Returns a `cordon.InvalidEvent` error when the payload cannot be read, with the JSON
    /// path that failed, and for a single event the error of a failed report (see
    /// [`Report::error`]).
    pub async fn invoke(
        &self,
        payload: Value,
        deadline: Option<Instant>,
    ) -> Result<Value, Diagnostic> {
        let delivery = event::classify(payload).map_err(|message| {
            error!(error = %message, "invalid event");
            report::invalid_event(message)
        })?;
        match delivery {
            Delivery::Single(value) => {
                // Serialized again so that a direct event meets the same size and depth limits
                // as an SQS message body.
                let bytes = serde_json::to_vec(&value).unwrap_or_default();
                let input = finding::parse(&bytes).map_err(|input_error| {
                    error!(error = %input_error, "invalid event");
                    report::invalid_event(input_error.to_string())
                })?;
                let report = self.handle(input, deadline).await;
                if let Some(failure) = report.error() {
                    return Err(failure);
                }
                to_json(&report)
            }
            Delivery::Sqs(batch) => {
                let response = self.handle_batch(batch, deadline).await;
                to_json(&response)
            }
        }
    }

    /// Handles each record of a batch on its own and lists the records that failed. After a
    /// failure in a FIFO queue the remaining records are not processed but failed as well,
    /// so that a retry keeps their order.
    async fn handle_batch(&self, batch: Batch, deadline: Option<Instant>) -> SqsBatchResponse {
        let mut failed_ids = Vec::new();
        for record in batch.records {
            if batch.fifo && !failed_ids.is_empty() {
                info!(
                    message_id = %record.message_id,
                    "record not processed: an earlier record of this FIFO batch failed"
                );
                failed_ids.push(record.message_id);
                continue;
            }
            let span = info_span!("sqs_record", message_id = %record.message_id);
            let message_id = record.message_id.clone();
            if !self.handle_record(record, deadline).instrument(span).await {
                failed_ids.push(message_id);
            }
        }
        if !failed_ids.is_empty() {
            warn!(count = failed_ids.len(), "records left for retry");
        }

        let mut response = SqsBatchResponse::default();
        for message_id in failed_ids {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            response.batch_item_failures.push(failure);
        }
        response
    }

    /// Returns true when the record is done with: handled, skipped or matched by no rule.
    async fn handle_record(&self, record: Record, deadline: Option<Instant>) -> bool {
        let body_path = format!("$.Records[{}].body", record.index);
        let body = match record.body {
            Ok(body) => body,
            Err(reason) => {
                error!(error = %reason, "invalid record");
                return false;
            }
        };
        let input = match finding::parse(body.as_bytes()) {
            Ok(input) => input,
            Err(input_error) => {
                error!(
                    error = %format!("invalid record body at `{body_path}`: {input_error}"),
                    "invalid record"
                );
                return false;
            }
        };
        let report = self.handle(input, deadline).await;
        match report.error() {
            Some(failure) => {
                error!(
                    error_type = %failure.error_type,
                    error = %failure.error_message,
                    "record failed"
                );
                false
            }
            None => true,
        }
    }

    /// Plans and executes one event, inside a span that names the finding.
    async fn handle(&self, input: Input, deadline: Option<Instant>) -> Report {
        match input {
            Input::Skipped { reason } => {
                info!(reason = %reason, "event acknowledged and skipped");
                Report::skipped(reason)
            }
            Input::Finding(finding) => {
                let summary = &finding.summary;
                let span = info_span!(
                    "finding",
                    finding_id = %summary.id,
                    finding_type = %summary.finding_type,
                    account_id = summary.account_id.as_deref().unwrap_or("-"),
                    region = summary.region.as_deref().unwrap_or("-"),
                    instance_id = summary.instance_id.as_deref().unwrap_or("-"),
                );
                self.handle_finding(&finding, deadline)
                    .instrument(span)
                    .await
            }
        }
    }

    async fn handle_finding(&self, finding: &Finding, deadline: Option<Instant>) -> Report {
        let plan = self.rules.evaluate(finding, EvalOptions::default());
        for failure in &plan.errors {
            error!(rule_id = %failure.rule_id, error = %failure.message, "rule failed");
        }
        let matched_rules: Vec<MatchedRule> = plan
            .matched
            .iter()
            .map(|rule| MatchedRule {
                rule_id: rule.rule_id.clone(),
                location: rule.location.clone(),
            })
            .collect();

        let outcomes = if plan.matched.is_empty() {
            info!(
                resource_type = %plan.finding.resource_type,
                sample = plan.finding.sample,
                "no rule matched; finding acknowledged"
            );
            Vec::new()
        } else {
            let rule_ids: Vec<&str> = matched_rules
                .iter()
                .map(|rule| rule.rule_id.as_str())
                .collect();
            info!(rules = %rule_ids.join(", "), "rules matched");
            let outcomes = self.executor.execute(&plan, deadline).await;
            outcomes.iter().for_each(log_outcome);
            outcomes
        };

        let report = Report::executed(plan.finding, matched_rules, outcomes, plan.errors);
        if report.status != Status::Failed {
            info!(status = report.status.name(), "finding handled");
        }
        report
    }
}

/// Logs one line for an action: its outcome and the resources it touched.
fn log_outcome(outcome: &Outcome) {
    let resources: Vec<String> = outcome
        .resources
        .iter()
        .map(|resource| format!("{} {}", resource.id, resource.status.name()))
        .collect();
    let resources = resources.join(", ");
    let rule_id = outcome.rule_id.as_deref().unwrap_or("-");
    let status = outcome.status.name();
    let detail = outcome.status.detail().unwrap_or_default();
    if report::is_incomplete(outcome) {
        warn!(action = %outcome.action, rule_id, status, detail, resources, "action outcome");
    } else {
        info!(action = %outcome.action, rule_id, status, detail, resources, "action outcome");
    }
}

fn to_json(value: &impl serde::Serialize) -> Result<Value, Diagnostic> {
    serde_json::to_value(value).map_err(|encode_error| Diagnostic {
        error_type: "cordon.InternalError".to_owned(),
        error_message: format!("cannot encode the response: {encode_error}"),
    })
}

/// Converts Lambda's deadline (wall clock) into a monotonic instant, keeping
/// [`RESPONSE_RESERVE`] back. A deadline already past gives `now`.
pub fn executor_deadline(deadline: SystemTime, now: SystemTime, now_instant: Instant) -> Instant {
    let remaining = deadline
        .duration_since(now)
        .unwrap_or(Duration::ZERO)
        .saturating_sub(RESPONSE_RESERVE);
    now_instant.checked_add(remaining).unwrap_or(now_instant)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Mutex;

    use cordon_actions::Status as ActionStatus;
    use serde_json::json;

    use super::*;

    /// Records the findings it is asked to execute and returns `status` for every action.
    struct FakeExecutor {
        status: fn(&str) -> ActionStatus,
        executed: Mutex<Vec<String>>,
    }

    impl FakeExecutor {
        fn new(status: fn(&str) -> ActionStatus) -> Self {
            Self {
                status,
                executed: Mutex::new(Vec::new()),
            }
        }
    }

    impl Executor for FakeExecutor {
        async fn execute(&self, plan: &Plan, _deadline: Option<Instant>) -> Vec<Outcome> {
            self.executed.lock().unwrap().push(plan.finding.id.clone());
            plan.matched
                .iter()
                .flat_map(|rule| {
                    rule.actions.iter().map(|action| {
                        let status = (self.status)(&plan.finding.id);
                        Outcome::new(&action.action, Some(&rule.rule_id), status)
                    })
                })
                .collect()
        }
    }

    fn function(status: fn(&str) -> ActionStatus) -> Function<FakeExecutor> {
        let rules_dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../rules"));
        let mut rules = RuleSet::load(&[rules_dir], cordon_actions::catalog()).unwrap();
        rules
            .bind_env(|name| (name == "QUARANTINE_SG").then(|| "sg-0123456789abcdef0".to_owned()))
            .unwrap();
        Function::new(rules, FakeExecutor::new(status))
    }

    fn changed(_finding_id: &str) -> ActionStatus {
        ActionStatus::Changed
    }

    fn fixture(name: &str) -> Value {
        let path = format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn sqs_record(id: &str, body: &str) -> Value {
        json!({
            "messageId": id,
            "receiptHandle": "r",
            "body": body,
            "attributes": {},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:eu-west-1:111122223333:cordon-findings",
            "awsRegion": "eu-west-1"
        })
    }

    fn failed_ids(response: &Value) -> Vec<String> {
        response["batchItemFailures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|failure| failure["itemIdentifier"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn tor_client_event_runs_the_plan() {
        let function = function(changed);
        let response = function
            .invoke(fixture("tor-client.json"), None)
            .await
            .unwrap();
        assert_eq!(response["status"], "executed");
        assert_eq!(
            response["finding"]["id"],
            "a4c2e9f07b1d4e8c9f3a6b5d2e1c0f98"
        );
        assert_eq!(
            response["matched_rules"][0]["rule_id"],
            "ec2-tor-client-quarantine"
        );
        let actions: Vec<&str> = response["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|outcome| outcome["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["isolate", "snapshot", "tag"]);
        assert_eq!(function.executor.executed.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn bare_finding_runs_the_plan() {
        let function = function(changed);
        let response = function
            .invoke(fixture("tor-client-bare.json"), None)
            .await
            .unwrap();
        assert_eq!(response["status"], "executed");
    }

    #[tokio::test]
    async fn non_finding_event_is_skipped() {
        let function = function(changed);
        let response = function
            .invoke(fixture("runtime-unhealthy.json"), None)
            .await
            .unwrap();
        assert_eq!(response["status"], "skipped");
        assert!(
            response["reason"]
                .as_str()
                .unwrap()
                .contains("Runtime Protection")
        );
        assert!(function.executor.executed.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn access_key_finding_matches_nothing() {
        let function = function(changed);
        let response = function
            .invoke(fixture("access-key.json"), None)
            .await
            .unwrap();
        assert_eq!(response["status"], "no_rule_matched");
        assert_eq!(response["finding"]["resource_type"], "AccessKey");
        assert!(function.executor.executed.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn sample_finding_matches_nothing() {
        let function = function(changed);
        for name in [
            "sample-tor-client.json",
            "sample-tor-client-string-shape.json",
        ] {
            let response = function.invoke(fixture(name), None).await.unwrap();
            assert_eq!(response["status"], "no_rule_matched", "{name}");
            assert_eq!(response["finding"]["sample"], true, "{name}");
        }
        assert!(function.executor.executed.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn failed_action_fails_the_invocation() {
        let function = function(|_| ActionStatus::failed("egress_not_empty", "egress allowed"));
        let error = function
            .invoke(fixture("tor-client.json"), None)
            .await
            .unwrap_err();
        assert_eq!(error.error_type, report::ACTION_FAILED);
        assert!(
            error.error_message.contains("egress allowed"),
            "{}",
            error.error_message
        );
    }

    #[tokio::test]
    async fn invalid_events_name_the_path() {
        let function = function(changed);
        let mut no_type = fixture("tor-client.json");
        no_type["detail"].as_object_mut().unwrap().remove("type");
        let mut other_source = fixture("tor-client.json");
        other_source["source"] = json!("aws.ec2");
        let cases = [
            (json!({"hello": "world"}), "`$.type`"),
            (json!("text"), "`$`"),
            (no_type, "`$.detail.type`"),
            (other_source, "`$.source`"),
            (
                json!({"Records": [{"eventSource": "aws:s3"}]}),
                "`$.Records[0].eventSource`",
            ),
        ];
        for (payload, path) in cases {
            let error = function.invoke(payload, None).await.unwrap_err();
            assert_eq!(error.error_type, report::INVALID_EVENT);
            assert!(
                error.error_message.contains(path),
                "expected {path} in {}",
                error.error_message
            );
        }
        assert!(function.executor.executed.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn sqs_batch_fails_only_bad_records() {
        let function = function(changed);
        let good = fixture("tor-client.json").to_string();
        let sample = fixture("sample-tor-client.json").to_string();
        let skipped = fixture("runtime-unhealthy.json").to_string();
        let payload = json!({"Records": [
            sqs_record("good", &good),
            sqs_record("malformed", "{\"detail-type\": "),
            sqs_record("sample", &sample),
            sqs_record("skipped", &skipped),
        ]});
        let response = function.invoke(payload, None).await.unwrap();
        assert_eq!(failed_ids(&response), ["malformed"]);
        assert_eq!(response.as_object().unwrap().len(), 1, "{response}");
        assert_eq!(
            *function.executor.executed.lock().unwrap(),
            ["a4c2e9f07b1d4e8c9f3a6b5d2e1c0f98"]
        );
    }

    #[tokio::test]
    async fn sqs_fixture_is_handled() {
        let function = function(changed);
        let response = function
            .invoke(fixture("sqs-batch.json"), None)
            .await
            .unwrap();
        assert!(failed_ids(&response).is_empty());
        assert_eq!(function.executor.executed.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn sqs_action_failure_fails_that_record() {
        let function = function(|id| {
            if id == "bad00000000000000000000000000000" {
                ActionStatus::failed("UnauthorizedOperation", "denied")
            } else {
                ActionStatus::Changed
            }
        });
        let mut bad = fixture("tor-client.json");
        bad["detail"]["id"] = json!("bad00000000000000000000000000000");
        let payload = json!({"Records": [
            sqs_record("first", &bad.to_string()),
            sqs_record("second", &fixture("tor-client.json").to_string()),
        ]});
        let response = function.invoke(payload, None).await.unwrap();
        assert_eq!(failed_ids(&response), ["first"]);
        assert_eq!(function.executor.executed.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn fifo_failure_fails_the_rest() {
        let function = function(changed);
        let mut first = sqs_record("first", "not json");
        first["eventSourceARN"] = json!("arn:aws:sqs:eu-west-1:111122223333:findings.fifo");
        let mut second = sqs_record("second", &fixture("tor-client.json").to_string());
        second["eventSourceARN"] = first["eventSourceARN"].clone();
        let response = function
            .invoke(json!({"Records": [first, second]}), None)
            .await
            .unwrap();
        assert_eq!(failed_ids(&response), ["first", "second"]);
        assert!(function.executor.executed.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn empty_batch_succeeds() {
        let function = function(changed);
        let response = function.invoke(json!({"Records": []}), None).await.unwrap();
        assert_eq!(response, json!({"batchItemFailures": []}));
    }

    #[test]
    fn deadline_keeps_the_reserve() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let instant = Instant::now();
        let deadline = executor_deadline(now + Duration::from_secs(10), now, instant);
        assert_eq!(
            deadline.duration_since(instant),
            Duration::from_secs(10) - RESPONSE_RESERVE
        );
    }

    #[test]
    fn past_deadline_is_now() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let instant = Instant::now();
        assert_eq!(
            executor_deadline(now - Duration::from_secs(1), now, instant),
            instant
        );
        assert_eq!(
            executor_deadline(now + Duration::from_millis(100), now, instant),
            instant
        );
    }
}
