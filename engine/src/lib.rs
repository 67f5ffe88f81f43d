//! The cordon rule engine: loads YAML rules, evaluates GuardDuty findings against them and
//! returns a plan of actions. It contains no AWS code; actions are known only through the
//! [`registry::ActionCatalog`] interface.
//!
//! The pipeline is `load` (read files) → `compile` (YAML tree to rules, every error located)
//! → `evaluate` (finding to [`Plan`]).

pub mod compile;
pub mod condition;
pub mod deploy;
pub mod diag;
pub mod evaluate;
pub mod finding;
pub mod fixture;
pub mod glob;
pub mod limits;
pub mod memory;
pub mod plan;
pub mod registry;
pub mod rule;
pub mod ruleset;
pub mod script;
pub mod source;
pub mod template;
pub mod testing;
pub mod yaml;

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use evaluate::EvalOptions;
pub use finding::{Finding, Input, InputError, Summary};
pub use plan::{Plan, PlannedAction};
pub use registry::{ActionCatalog, ActionSpec, ParamIssue, ParamStage};
pub use ruleset::{LoadError, RuleSet};
