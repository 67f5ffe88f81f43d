//! `cordon test`: replay fixture findings through rules and check the plans.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use cordon_engine::testing::{self, report};

use crate::{EXIT_FAILURE, EXIT_OK};

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Junit,
}

#[derive(Args)]
pub struct TestArgs {
    /// Rule folders (their cases are in `tests/`) or test files.
    #[arg(default_value = "rules")]
    paths: Vec<PathBuf>,
    /// Run only the cases whose name contains this text.
    #[arg(long)]
    filter: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// List the rules, and the `any` conditions, that no case exercised.
    #[arg(long)]
    coverage: bool,
}

/// Exit 0 when every case passed, 1 when a case failed or a file could not run.
pub fn run(args: &TestArgs) -> u8 {
    let report = testing::run(
        &args.paths,
        args.filter.as_deref(),
        &cordon_actions::catalog(),
    );
    match args.format {
        Format::Text => print!("{}", report::text(&report, args.coverage)),
        Format::Json => println!("{}", report::json(&report)),
        Format::Junit => print!("{}", report::junit(&report)),
    }
    if report.success() {
        EXIT_OK
    } else {
        EXIT_FAILURE
    }
}
