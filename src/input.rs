//! Loading rules and reading findings for the subcommands.

use std::io::Read;
use std::path::{Path, PathBuf};

use cordon_engine::finding::{self, Input};
use cordon_engine::{Diagnostics, LoadError, RuleSet};

use crate::{EXIT_FAILURE, EXIT_USAGE};

/// Loads rules, printing every diagnostic on failure and the warnings on success. The error
/// is the exit code.
pub fn load_rules(paths: &[PathBuf]) -> Result<RuleSet, u8> {
    match RuleSet::load(paths, cordon_actions::catalog()) {
        Ok(rules) => {
            if !rules.warnings().is_empty() {
                eprint!("{}", Diagnostics(rules.warnings().to_vec()).render());
            }
            Ok(rules)
        }
        Err(LoadError::Rules(diagnostics)) => {
            eprint!("{}", diagnostics.render());
            Err(EXIT_FAILURE)
        }
        Err(other) => {
            eprintln!("error: {other}");
            Err(EXIT_USAGE)
        }
    }
}

/// Binds the rules' declared environment variables from `overrides` (`NAME=VALUE`) and the
/// process environment, printing a diagnostic for each one that is unset.
pub fn bind_env(rules: &mut RuleSet, overrides: &[String]) -> Result<(), u8> {
    let mut pairs = Vec::new();
    for entry in overrides {
        let Some((name, value)) = entry.split_once('=') else {
            eprintln!("error: invalid `--env {entry}`: write `NAME=VALUE`");
            return Err(EXIT_USAGE);
        };
        pairs.push((name.to_owned(), value.to_owned()));
    }
    let lookup = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .or_else(|| std::env::var(name).ok())
    };
    rules.bind_env(lookup).map_err(|diagnostics| {
        eprint!("{}", diagnostics.render());
        EXIT_USAGE
    })
}

/// Reads and parses a finding from a file, or from standard input for `-`.
pub fn read_finding(path: &Path) -> Result<Input, u8> {
    let mut bytes = Vec::new();
    let limit = cordon_engine::limits::MAX_INPUT_BYTES as u64 + 1;
    let result = if path == Path::new("-") {
        std::io::stdin().take(limit).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|file| file.take(limit).read_to_end(&mut bytes))
    };
    if let Err(error) = result {
        eprintln!("error: cannot read `{}`: {error}", path.display());
        return Err(EXIT_USAGE);
    }
    finding::parse(&bytes).map_err(|error| {
        eprintln!("error: {}: {error}", path.display());
        EXIT_USAGE
    })
}
