//! `cordon iam-policy` and `cordon event-pattern`: deployment documents from the rules.

use std::path::PathBuf;

use clap::Args;
use cordon_engine::deploy::{self, PolicyOptions};

use crate::input::load_rules;
use crate::{EXIT_FAILURE, EXIT_OK};

#[derive(Args)]
pub struct PolicyArgs {
    /// Rule files or folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The Lambda function name; its log group is `/aws/lambda/NAME`.
    #[arg(long, default_value = "cordon")]
    function_name: String,
    /// Print why each statement is needed, to standard error.
    #[arg(long)]
    explain: bool,
}

#[derive(Args)]
pub struct PatternArgs {
    /// Rule files or folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// Prints the IAM policy document for the actions the enabled rules use.
pub fn iam_policy(args: &PolicyArgs) -> u8 {
    let rules = match load_rules(&args.paths) {
        Ok(rules) => rules,
        Err(code) => return code,
    };
    let options = PolicyOptions {
        function_name: args.function_name.clone(),
    };
    if args.explain {
        for statement in deploy::policy::statements(&rules, &options) {
            eprintln!("{}: {}", statement.sid, statement.reason);
        }
    }
    print_json(&deploy::iam_policy(&rules, &options))
}

/// Prints the EventBridge event pattern for the finding types the enabled rules match.
pub fn event_pattern(args: &PatternArgs) -> u8 {
    match load_rules(&args.paths) {
        Ok(rules) => print_json(&deploy::event_pattern(&rules)),
        Err(code) => code,
    }
}

fn print_json(value: &serde_json::Value) -> u8 {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            println!("{text}");
            EXIT_OK
        }
        Err(error) => {
            eprintln!("error: cannot encode the document: {error}");
            EXIT_FAILURE
        }
    }
}
