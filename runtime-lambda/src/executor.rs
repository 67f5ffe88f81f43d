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
        let dry_run = lookup(DRY_RUN_VARIABLE)
            .is_some_and(|value| value.eq_ignore_ascii_case("true") || value == "1");
        Self {
            clients: Ec2Clients::load(ClientSettings::default()).await,
            dry_run,
        }
    }

    /// Returns true when the executor makes no write calls.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }
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
