//! The executor that runs plans against EC2 through `cordon-actions`, the same path as
//! `cordon run`.

use std::time::Instant;

use cordon_actions::{ClientSettings, Ec2Clients, ExecOptions, Outcome};
use cordon_engine::Plan;

use crate::handler::Executor;

/// The variable that turns on dry runs: `true` or `1` makes only read calls and reports the
/// write calls that would be made as `would_change`.
pub const DRY_RUN_VARIABLE: &str = "CORDON_DRY_RUN";

/// Runs plans with EC2 clients built once at cold start.
pub struct Ec2Executor {
    clients: Ec2Clients,
    dry_run: bool,
}

impl Ec2Executor {
    /// Loads the AWS configuration (credentials and region from the Lambda environment,
    /// `AWS_ENDPOINT_URL` when set) and reads [`DRY_RUN_VARIABLE`].
    pub async fn load(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let dry_run = lookup(DRY_RUN_VARIABLE).is_some_and(|value| dry_run_requested(&value));
        Self {
            clients: Ec2Clients::load(ClientSettings::default()).await,
            dry_run,
        }
    }

    /// Records the function's account, the fifth field of its ARN
    /// (`arn:aws:lambda:eu-west-1:111122223333:function:cordon`). The execution role belongs
    /// to that account, so findings from other accounts are refused without an STS call.
    pub fn note_function_arn(&self, arn: &str) {
        if let Some(account) = account_of_arn(arn) {
            self.clients.set_caller_account(account);
        }
    }

    /// Returns true when the executor makes no write calls.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }
}

/// Reads the dry-run setting. `true`, `1`, `yes` and `on` ask for a dry run; `false`, `0`,
/// `no`, `off` and the empty string do not. Any other value is taken as a dry run, because
/// whoever set it meant something, and a dry run makes no change that cannot be made later.
fn dry_run_requested(value: &str) -> bool {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "0" | "no" | "off" => false,
        "true" | "1" | "yes" | "on" => true,
        other => {
            tracing::warn!(
                value = other,
                "unrecognised {DRY_RUN_VARIABLE} value, running as a dry run"
            );
            true
        }
    }
}

/// Returns the account field of an ARN when it is twelve digits.
fn account_of_arn(arn: &str) -> Option<&str> {
    let account = arn.split(':').nth(4)?;
    (account.len() == 12 && account.bytes().all(|byte| byte.is_ascii_digit())).then_some(account)
}

impl Executor for Ec2Executor {
    async fn execute(&self, plan: &Plan, deadline: Option<Instant>) -> Vec<Outcome> {
        let options = ExecOptions {
            dry_run: self.dry_run,
            deadline,
            ..ExecOptions::default()
        };
        cordon_actions::execute(plan, &self.clients, &options)
            .await
            .outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_comes_from_the_function_arn() {
        assert_eq!(
            account_of_arn("arn:aws:lambda:eu-west-1:111122223333:function:cordon"),
            Some("111122223333")
        );
        for arn in [
            "",
            "arn:aws:lambda:eu-west-1",
            "arn:aws:lambda:eu-west-1::function:cordon",
            "arn:aws:lambda:eu-west-1:1111222233334:function:cordon",
            "arn:aws:lambda:eu-west-1:11112222333x:function:cordon",
        ] {
            assert_eq!(account_of_arn(arn), None, "{arn}");
        }
    }

    #[test]
    fn dry_run_values() {
        for value in ["true", "TRUE", "1", "yes", "on", "enabled", "ture"] {
            assert!(
                dry_run_requested(value),
                "`{value}` should ask for a dry run"
            );
        }
        for value in ["", "false", "0", "no", "off", " False "] {
            assert!(
                !dry_run_requested(value),
                "`{value}` should not ask for a dry run"
            );
        }
    }
}
