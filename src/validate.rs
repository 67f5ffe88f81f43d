//! `cordon validate`: compile rule files and report every problem.

use std::path::PathBuf;

use clap::Args;

use crate::input::load_rules;
use crate::{EXIT_FAILURE, EXIT_OK};

#[derive(Args)]
pub struct ValidateArgs {
    /// Rule files, or folders whose `*.yaml` and `*.yml` files are rules.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

pub fn run(args: &ValidateArgs) -> u8 {
    match load_rules(&args.paths) {
        Ok(rules) => {
            let total = rules.rules().len();
            let enabled = rules.rules().iter().filter(|rule| rule.enabled).count();
            let noun = if total == 1 { "rule" } else { "rules" };
            println!("{total} {noun} valid ({enabled} enabled)");
            EXIT_OK
        }
        Err(code) => code.max(EXIT_FAILURE),
    }
}
