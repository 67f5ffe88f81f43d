//! `cordon plan`: show what the rules would do for a finding.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use cordon_engine::{EvalOptions, Input};

use crate::input::{bind_env, load_rules, read_finding};
use crate::{EXIT_FAILURE, EXIT_OK};

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Args)]
pub struct PlanArgs {
    /// Rule file or folder; repeat for several.
    #[arg(long = "rules", required = true)]
    rules: Vec<PathBuf>,
    /// The finding: an EventBridge event or a bare finding, as a file or `-` for stdin.
    finding: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Show why each candidate rule matched or not.
    #[arg(long)]
    explain: bool,
    /// Set a declared environment variable, overriding the process environment.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
}

/// Prints the plan. Exit 0 when it was computed (matched or not), 1 when a rule failed while
/// being evaluated, 2 for unusable rules paths, findings or environment.
pub fn run(args: &PlanArgs) -> u8 {
    let mut rules = match load_rules(&args.rules) {
        Ok(rules) => rules,
        Err(code) => return code,
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
    let plan = rules.evaluate(
        &finding,
        EvalOptions {
            explain: args.explain,
        },
    );
    match args.format {
        Format::Text => print!("{}", plan.to_text()),
        Format::Json => match serde_json::to_string_pretty(&plan) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("error: cannot encode the plan: {error}");
                return EXIT_FAILURE;
            }
        },
    }
    if plan.errors.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILURE
    }
}
