//! `cordon`: validate rules, plan and run the response to a GuardDuty finding.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod aws;
mod deploy;
mod fixture;
mod input;
mod plan;
mod release;
mod run;
mod test;
mod validate;

/// Counts each thread's memory so that a rule's script can be stopped when it uses too much.
#[global_allocator]
static ALLOCATOR: cordon_engine::memory::CountingAllocator =
    cordon_engine::memory::CountingAllocator;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code when rules are invalid, a check failed, or an action failed.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for unusable input: a finding that cannot be parsed, a path that cannot be read,
/// an unset environment variable.
pub const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "cordon",
    version,
    about = "Contain EC2 instances named in GuardDuty findings, by rules"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check rule files and folders; print every error with its location.
    Validate(validate::ValidateArgs),
    /// Show what the rules would do for a finding, without calling AWS.
    Plan(plan::PlanArgs),
    /// Run rule tests: replay fixture findings and compare the plans with the expected ones.
    Test(test::TestArgs),
    /// Plan and execute the actions for a finding against EC2.
    Run(run::RunArgs),
    /// Restore the security groups that `isolate` recorded on an instance's network interfaces.
    Release(release::ReleaseArgs),
    /// Print a synthetic GuardDuty finding for an EC2 instance, for tests and demos.
    Fixture(fixture::FixtureArgs),
    /// Print the least-privilege IAM policy for the actions the rules use.
    IamPolicy(deploy::PolicyArgs),
    /// Print the EventBridge event pattern for the findings the rules can match.
    EventPattern(deploy::PatternArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let code = match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Test(args) => test::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Release(args) => release::run(&args),
        Command::Fixture(args) => fixture::run(&args),
        Command::IamPolicy(args) => deploy::iam_policy(&args),
        Command::EventPattern(args) => deploy::event_pattern(&args),
    };
    ExitCode::from(code)
}

/// Sends logs to standard error; `RUST_LOG` sets the level (default `warn`). Colours are
/// used only on a terminal, and never when `NO_COLOR` is set, so that piped logs stay plain.
fn init_logging() {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .fmt_fields(cordon_actions::text_fields())
        .try_init();
}
