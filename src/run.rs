//! `cordon run`: evaluate a finding and execute the planned actions against EC2.

use std::path::PathBuf;

use clap::Args;
use cordon_actions::ExecOptions;
use cordon_engine::{EvalOptions, Input};

use crate::aws::{AwsArgs, runtime};
use crate::input::{bind_env, load_rules, read_finding};
use crate::plan::Format;
use crate::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE};

#[derive(Args)]
pub struct RunArgs {
    /// Rule file or folder; repeat for several.
    #[arg(long = "rules", required = true)]
    rules: Vec<PathBuf>,
    /// The finding: an EventBridge event or a bare finding, as a file or `-` for stdin.
    finding: PathBuf,
    /// Make only read calls and print the write calls that would be made.
    #[arg(long)]
    dry_run: bool,
    /// The region for findings that name none; by default the configured AWS region.
    #[arg(long)]
    region: Option<String>,
    #[command(flatten)]
    aws: AwsArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Set a declared environment variable, overriding the process environment.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
}

/// Plans and executes. Exit 0 when every action succeeded, was already done or was skipped,
/// 1 when an action or a rule failed, 2 for unusable rules, findings or environment.
pub fn run(args: &RunArgs) -> u8 {
    if let Err(code) = args.aws.check() {
        return code;
    }
    let Ok(mut rules) = load_rules(&args.rules) else {
        return EXIT_USAGE;
    };
    if let Err(code) = bind_env(&mut rules, &args.env) {
        return code;
    }
    let finding = match read_finding(&args.finding) {
        Ok(Input::Finding(finding)) => finding,
        Ok(Input::Skipped { reason }) => {
            match args.format {
                Format::Text => println!("skipped: {reason}"),
                Format::Json => println!("{}", serde_json::json!({ "skipped": reason })),
            }
            return EXIT_OK;
        }
        Err(code) => return code,
    };
    let plan = rules.evaluate(&finding, EvalOptions::default());
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let options = ExecOptions {
        dry_run: args.dry_run,
        ..ExecOptions::default()
    };
    let execution = runtime.block_on(async {
        let clients = args.aws.clients(args.region.clone()).await;
        cordon_actions::execute(&plan, &clients, &options).await
    });

    match args.format {
        Format::Text => {
            print!("{}", plan.to_text());
            print!("{}", execution.to_text());
        }
        Format::Json => {
            let output = serde_json::json!({ "plan": plan, "execution": execution });
            match serde_json::to_string_pretty(&output) {
                Ok(text) => println!("{text}"),
                Err(error) => {
                    eprintln!("error: cannot encode the result: {error}");
                    return EXIT_FAILURE;
                }
            }
        }
    }
    if execution.failed() || !plan.errors.is_empty() {
        EXIT_FAILURE
    } else {
        EXIT_OK
    }
}
