//! Runs a plan: containment actions first, one after another, then evidence actions
//! concurrently. A failed action never stops the others.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use cordon_engine::{Plan, Summary};
use futures::future::join_all;
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

use crate::clients::Ec2Clients;
use crate::context::{Containment, Context};
use crate::outcome::{Outcome, Status};
use crate::registry::{self, Action, Phase};

/// How to execute a plan.
#[derive(Clone, Copy, Debug)]
pub struct ExecOptions {
    /// Make only read calls and list the write calls that would be made.
    pub dry_run: bool,
    /// The time by which every action must be done, e.g. the Lambda deadline minus a margin.
    /// An action still running then is abandoned and reported as failed.
    pub deadline: Option<Instant>,
    /// An action is not started when less than this is left before the deadline.
    pub min_time_per_action: Duration,
}

impl Default for ExecOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            deadline: None,
            min_time_per_action: Duration::from_secs(5),
        }
    }
}

/// What executing a plan did.
#[derive(Clone, Debug, Serialize)]
pub struct Execution {
    /// The finding id.
    pub finding_id: String,
    /// The instance the actions were for, when the finding names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// True when no write call was made.
    pub dry_run: bool,
    /// One outcome per planned action, in plan order.
    pub outcomes: Vec<Outcome>,
}

impl Execution {
    /// Returns true when at least one action failed.
    pub fn failed(&self) -> bool {
        self.outcomes.iter().any(Outcome::failed)
    }

    /// Renders the outcomes as text, one block per action.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mode = if self.dry_run {
            " (dry run: no changes made)"
        } else {
            ""
        };
        let finding_id = cordon_engine::plan::printable(&self.finding_id);
        let _ = writeln!(out, "execution for finding {finding_id}{mode}");
        if self.outcomes.is_empty() {
            out.push_str("no actions\n");
        }
        for outcome in &self.outcomes {
            out.push_str(&outcome.to_text());
        }
        out
    }
}

/// One planned action waiting to run.
struct Job<'p> {
    index: usize,
    rule_id: &'p str,
    name: &'p str,
    params: &'p Value,
    action: Option<&'static dyn Action>,
}

/// Executes every action of `plan` against EC2 in the finding's region.
pub async fn execute(plan: &Plan, clients: &Ec2Clients, options: &ExecOptions) -> Execution {
    let finding = &plan.finding;
    let span = tracing::info_span!(
        "execute",
        finding_id = %finding.id,
        finding_type = %finding.finding_type,
        account_id = finding.account_id.as_deref().unwrap_or("-"),
        instance_id = finding.instance_id.as_deref().unwrap_or("-"),
        dry_run = options.dry_run,
    );
    async move {
        let jobs: Vec<Job<'_>> = plan
            .matched
            .iter()
            .flat_map(|rule| {
                rule.actions
                    .iter()
                    .map(move |action| (rule.rule_id.as_str(), action))
            })
            .enumerate()
            .map(|(index, (rule_id, planned))| Job {
                index,
                rule_id,
                name: planned.action.as_str(),
                params: &planned.params,
                action: registry::find(&planned.action),
            })
            .collect();
        let outcomes = run_jobs(plan, clients, options, jobs).await;
        Execution {
            finding_id: finding.id.clone(),
            instance_id: finding.instance_id.clone(),
            dry_run: options.dry_run,
            outcomes,
        }
    }
    .instrument(span)
    .await
}

async fn run_jobs(
    plan: &Plan,
    clients: &Ec2Clients,
    options: &ExecOptions,
    jobs: Vec<Job<'_>>,
) -> Vec<Outcome> {
    let finding = &plan.finding;
    let refuse = |reason: Status| -> Vec<Outcome> {
        jobs.iter()
            .map(|job| Outcome::new(job.name, Some(job.rule_id), reason.clone()))
            .collect()
    };
    if finding.sample {
        return refuse(Status::skipped(
            "the finding is a sample, and sample findings never trigger actions",
        ));
    }
    let Some(instance_id) = finding.instance_id.as_deref() else {
        return refuse(Status::skipped("the finding names no EC2 instance"));
    };
    if !crate::is_instance_id(instance_id) {
        tracing::error!(instance_id = %for_message(instance_id), "invalid instance id in the finding");
        return refuse(Status::failed(
            "invalid_instance_id",
            format!(
                "the finding's instance id `{}` is not an EC2 instance id (`i-` and 8 or 17 \
                 hexadecimal digits)",
                for_message(instance_id)
            ),
        ));
    }
    let ec2 = match clients.client(finding.region.as_deref()) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(error = %error, "no EC2 client for the finding");
            return refuse(Status::failed(error.code(), error.to_string()));
        }
    };
    // Boxed: the STS call's future is deep enough to exceed the compiler's layout depth
    // limit in the binaries that await `execute`.
    if let Some(status) = Box::pin(check_account(finding, clients)).await {
        return refuse(status);
    }

    let mut outcomes: Vec<(usize, Outcome)> = Vec::new();
    let mut evidence = Vec::new();
    let containing_rule = jobs
        .iter()
        .find(|job| job.action.is_some_and(contains) && job.name != RELEASE)
        .map(|job| job.rule_id);
    // Containment actions that succeeded, by name, rule and parameters. Once one has contained
    // the instance, a later one of the same name with other parameters is skipped: a second
    // `isolate` would move the instance between quarantine groups and record the first one as
    // its original groups. A later one still runs when the earlier ones failed.
    let mut succeeded: Vec<(&str, &str, &Value)> = Vec::new();
    let mut containment_planned = false;
    let mut contained = false;
    for job in jobs {
        let Some(action) = job.action else {
            let status = Status::failed(
                "unknown_action",
                format!("no action is called `{}`", job.name),
            );
            outcomes.push((job.index, Outcome::new(job.name, Some(job.rule_id), status)));
            continue;
        };
        if action.phase() == Phase::Evidence {
            evidence.push((job, action));
            continue;
        }
        if let Some(status) = conflict(&job, containing_rule, &succeeded) {
            let outcome = Outcome::new(job.name, Some(job.rule_id), status);
            log(&outcome);
            outcomes.push((job.index, outcome));
            continue;
        }
        let context = Context {
            ec2: &ec2,
            finding,
            rule_id: job.rule_id,
            dry_run: options.dry_run,
            containment: Containment::NotPlanned,
        };
        let outcome = run_one(action, &context, job.params, options).await;
        let is_release = job.name == RELEASE;
        if is_contained(&outcome.status) {
            succeeded.push((job.name, job.rule_id, job.params));
            contained |= !is_release;
        }
        containment_planned |= !is_release;
        outcomes.push((job.index, outcome));
    }

    let containment = match (containment_planned, contained) {
        (false, _) => Containment::NotPlanned,
        (true, true) => Containment::Succeeded,
        (true, false) => Containment::Failed,
    };
    let evidence_runs = evidence.iter().map(|(job, action)| {
        let context = Context {
            ec2: &ec2,
            finding,
            rule_id: job.rule_id,
            dry_run: options.dry_run,
            containment,
        };
        async move {
            (
                job.index,
                run_one(*action, &context, job.params, options).await,
            )
        }
    });
    outcomes.extend(join_all(evidence_runs).await);
    outcomes.sort_by_key(|(index, _)| *index);
    outcomes.into_iter().map(|(_, outcome)| outcome).collect()
}

/// Returns a value from the finding for a message: control characters escaped, and cut
/// after 64 characters.
fn for_message(value: &str) -> String {
    let mut text: String = value
        .chars()
        .take(64)
        .collect::<String>()
        .escape_debug()
        .to_string();
    if value.chars().nth(64).is_some() {
        text.push_str("...");
    }
    text
}

/// The action that undoes containment.
const RELEASE: &str = "release";

fn contains(action: &dyn Action) -> bool {
    action.phase() == Phase::Containment
}

fn is_contained(status: &Status) -> bool {
    matches!(
        status,
        Status::Changed | Status::AlreadyDone | Status::WouldChange
    )
}

/// Returns why a containment job must not run, if it must not: a `release` in a plan that
/// also contains the instance, or a second action of a name that already succeeded with other
/// parameters. Logs a warning naming both rules.
fn conflict(
    job: &Job<'_>,
    containing_rule: Option<&str>,
    succeeded: &[(&str, &str, &Value)],
) -> Option<Status> {
    if job.name == RELEASE {
        let rule_id = containing_rule?;
        tracing::warn!(
            rule_id = job.rule_id,
            containing_rule_id = rule_id,
            "release in a plan that contains the instance"
        );
        return Some(Status::skipped(format!(
            "rule `{rule_id}` contains this instance for the same finding, and `release` never \
             undoes that"
        )));
    }
    let action = job.action?;
    let (_, rule_id, _) = succeeded
        .iter()
        .find(|(name, _, params)| *name == job.name && !action.same_effect(params, job.params))?;
    tracing::warn!(
        action = job.name,
        rule_id = job.rule_id,
        first_rule_id = rule_id,
        "conflicting containment actions"
    );
    Some(Status::skipped(format!(
        "rule `{rule_id}` already contained the instance with `{}` and other parameters, and \
         that containment stands",
        job.name
    )))
}

/// Refuses a finding from another account than the credentials'. Its instance cannot be
/// seen with these credentials, so every action would be skipped as if the instance did not
/// exist, and the instance would stay uncontained without an error to alert on.
///
/// When the account cannot be read, the check is left out with a warning: containment
/// matters more than the check, which only turns a silent skip into a failure.
async fn check_account(finding: &Summary, clients: &Ec2Clients) -> Option<Status> {
    let expected = finding
        .account_id
        .as_deref()
        .filter(|account| !account.is_empty())?;
    match clients.caller_account(finding.region.as_deref()).await {
        Ok(caller) if caller == expected => None,
        Ok(caller) => {
            let status = Status::failed(
                "other_account",
                format!(
                    "the finding is for account {} and the credentials are for account \
                     {caller}; run cordon with credentials in the finding's account",
                    for_message(expected)
                ),
            );
            tracing::error!(finding_account = %for_message(expected), caller_account = %caller, "finding from another account");
            Some(status)
        }
        Err(error) => {
            tracing::warn!(error = %error, "cannot read the caller's account; the finding's account is not checked");
            None
        }
    }
}

/// Runs one action within the time left, and logs its outcome.
async fn run_one(
    action: &dyn Action,
    context: &Context<'_>,
    params: &Value,
    options: &ExecOptions,
) -> Outcome {
    let name = action.name();
    let mut outcome = Outcome::new(name, Some(context.rule_id), Status::AlreadyDone);
    if let Some(deadline) = options.deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        if left < options.min_time_per_action {
            outcome.status = Status::not_started(format!(
                "{} ms left before the deadline, under the minimum of {} ms per action",
                left.as_millis(),
                options.min_time_per_action.as_millis()
            ));
            log(&outcome);
            return outcome;
        }
    }

    let started = Instant::now();
    let run = action.execute(context, params, &mut outcome);
    let result = match options.deadline {
        Some(deadline) => tokio::time::timeout_at(deadline.into(), run).await.ok(),
        None => Some(run.await),
    };
    outcome.status = match result {
        Some(Ok(status)) => status,
        Some(Err(error)) => error.to_status(),
        None => Status::failed(
            "deadline_exceeded",
            format!(
                "`{name}` did not finish before the deadline ({} ms after it started); some of its changes may have been made",
                started.elapsed().as_millis()
            ),
        ),
    };
    log(&outcome);
    outcome
}

fn log(outcome: &Outcome) {
    let rule_id = outcome.rule_id.as_deref().unwrap_or("-");
    let detail = outcome.status.detail().unwrap_or_default();
    if outcome.failed() {
        tracing::error!(action = %outcome.action, rule_id, status = outcome.status.name(), detail, "action failed");
    } else {
        tracing::info!(
            action = %outcome.action,
            rule_id,
            status = outcome.status.name(),
            detail,
            resources = outcome.resources.len(),
            "action done"
        );
    }
}
