//! Cold start: find the rule files, compile them once and bind their environment variables.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cordon_engine::registry::ActionCatalog;
use cordon_engine::{LoadError, RuleSet};

/// The variable that names the rule files or folders, separated by `:`.
pub const RULES_VARIABLE: &str = "CORDON_RULES";

/// The rule folder of a Lambda layer: layers are extracted under `/opt`.
pub const LAYER_RULES: &str = "/opt/rules";

/// An error that stops the function from starting. Lambda receives it through
/// `/runtime/init/error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitError {
    /// The `errorType` reported to Lambda, e.g. `cordon.InvalidRules`.
    pub error_type: &'static str,
    /// One line per problem, each starting with `file:line:column` when it has a location.
    pub message: String,
    /// The full report for the log: located diagnostics with source snippets.
    pub details: String,
}

impl InitError {
    fn new(error_type: &'static str, message: String) -> Self {
        Self {
            error_type,
            details: format!("error: {message}\n"),
            message,
        }
    }
}

/// Returns the rule paths to load: the `:`-separated entries of `CORDON_RULES` when it is set,
/// otherwise each of `rules/` in the task root and [`LAYER_RULES`] that exists.
///
/// The task root is `LAMBDA_TASK_ROOT` (`/var/task` in Lambda, where the function's zip is
/// extracted next to `bootstrap`), or the folder of the running executable when that variable
/// is unset.
///
/// # Errors
///
/// Returns an [`InitError`] when `CORDON_RULES` is set but empty, or when it is unset and no
/// default folder exists.
pub fn rule_paths(
    lookup: impl Fn(&str) -> Option<String>,
    exists: impl Fn(&Path) -> bool,
    executable_dir: Option<PathBuf>,
) -> Result<Vec<PathBuf>, InitError> {
    if let Some(value) = lookup(RULES_VARIABLE) {
        let paths: Vec<PathBuf> = value
            .split(':')
            .filter(|entry| !entry.is_empty())
            .map(PathBuf::from)
            .collect();
        if paths.is_empty() {
            return Err(InitError::new(
                "cordon.RulesNotFound",
                format!("`{RULES_VARIABLE}` is set but empty: set it to a rule file or folder"),
            ));
        }
        return Ok(paths);
    }

    let task_root = lookup("LAMBDA_TASK_ROOT")
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .or(executable_dir);
    let mut candidates: Vec<PathBuf> = task_root.iter().map(|root| root.join("rules")).collect();
    candidates.push(PathBuf::from(LAYER_RULES));

    let found: Vec<PathBuf> = candidates
        .iter()
        .filter(|path| exists(path))
        .cloned()
        .collect();
    if found.is_empty() {
        let tried: Vec<String> = candidates
            .iter()
            .map(|path| format!("`{}`", path.display()))
            .collect();
        return Err(InitError::new(
            "cordon.RulesNotFound",
            format!(
                "no rules found: `{RULES_VARIABLE}` is unset and none of {} exists; \
                 package the rules in `rules/` next to `bootstrap`, in a layer under \
                 `rules/`, or set `{RULES_VARIABLE}`",
                tried.join(", ")
            ),
        ));
    }
    Ok(found)
}

/// Loads and compiles the rules, then binds the environment variables they declare.
///
/// # Errors
///
/// Returns an [`InitError`] carrying every located diagnostic for invalid rules or unset
/// variables, or the path that could not be read.
pub fn load_rules(
    paths: &[PathBuf],
    catalog: Arc<dyn ActionCatalog>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<RuleSet, InitError> {
    let mut rules = match RuleSet::load(paths, catalog) {
        Ok(rules) => {
            for warning in rules.warnings() {
                tracing::warn!(location = %warning.location(), warning = %warning.message, "rule warning");
            }
            rules
        }
        Err(LoadError::Rules(diagnostics)) => {
            return Err(InitError {
                error_type: "cordon.InvalidRules",
                message: diagnostics.to_string(),
                details: diagnostics.render(),
            });
        }
        Err(other) => return Err(InitError::new("cordon.RulesNotFound", other.to_string())),
    };
    if let Err(diagnostics) = rules.bind_env(lookup) {
        return Err(InitError {
            error_type: "cordon.MissingEnvironment",
            message: diagnostics.to_string(),
            details: diagnostics.render(),
        });
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn cordon_rules_lists_paths() {
        let paths = rule_paths(
            lookup(&[("CORDON_RULES", "rules/a.yaml:/opt/more")]),
            |_| false,
            None,
        )
        .unwrap();
        assert_eq!(
            paths,
            vec![PathBuf::from("rules/a.yaml"), PathBuf::from("/opt/more")]
        );
    }

    #[test]
    fn empty_cordon_rules_is_an_error() {
        let error = rule_paths(lookup(&[("CORDON_RULES", ":")]), |_| true, None).unwrap_err();
        assert_eq!(error.error_type, "cordon.RulesNotFound");
        assert!(
            error.message.contains("`CORDON_RULES`"),
            "{}",
            error.message
        );
    }

    #[test]
    fn default_uses_task_root_and_layer() {
        let paths =
            rule_paths(lookup(&[("LAMBDA_TASK_ROOT", "/var/task")]), |_| true, None).unwrap();
        assert_eq!(
            paths,
            vec![
                PathBuf::from("/var/task/rules"),
                PathBuf::from("/opt/rules")
            ]
        );
    }

    #[test]
    fn default_skips_missing_folders() {
        let paths = rule_paths(
            lookup(&[]),
            |path| path == Path::new("/opt/rules"),
            Some(PathBuf::from("/build")),
        )
        .unwrap();
        assert_eq!(paths, vec![PathBuf::from("/opt/rules")]);
    }

    #[test]
    fn default_falls_back_to_executable_folder() {
        let paths = rule_paths(
            lookup(&[]),
            |path| path == Path::new("/build/rules"),
            Some(PathBuf::from("/build")),
        )
        .unwrap();
        assert_eq!(paths, vec![PathBuf::from("/build/rules")]);
    }

    #[test]
    fn no_default_folder_names_every_candidate() {
        let error = rule_paths(
            lookup(&[("LAMBDA_TASK_ROOT", "/var/task")]),
            |_| false,
            None,
        )
        .unwrap_err();
        assert!(
            error.message.contains("`/var/task/rules`"),
            "{}",
            error.message
        );
        assert!(error.message.contains("`/opt/rules`"), "{}", error.message);
    }
}
