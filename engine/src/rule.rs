//! Compiled rules: what a rule file becomes after loading.

use std::sync::Arc;

use crate::condition::Condition;
use crate::glob::Glob;
use crate::script::Script;
use crate::source::{SourceFile, Span};
use crate::template::Template;

/// A finding type pattern from `match.type`.
#[derive(Clone, Debug)]
pub enum TypePattern {
    /// The exact finding type.
    Exact(String),
    /// A glob over finding types.
    Glob(Glob),
}

impl TypePattern {
    /// Returns the pattern as written.
    pub fn as_str(&self) -> &str {
        match self {
            TypePattern::Exact(text) => text,
            TypePattern::Glob(glob) => glob.as_str(),
        }
    }

    /// Returns true when the pattern matches the finding type.
    pub fn is_match(&self, finding_type: &str) -> bool {
        match self {
            TypePattern::Exact(text) => text == finding_type,
            TypePattern::Glob(glob) => glob.is_match(finding_type),
        }
    }
}

/// A compiled rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The unique id.
    pub id: String,
    /// What the rule is for.
    pub description: Option<String>,
    /// Disabled rules are loaded and checked but never evaluated.
    pub enabled: bool,
    /// Whether sample findings may match.
    pub include_samples: bool,
    /// The file the rule is written in.
    pub file: Arc<SourceFile>,
    /// Index of the file in the rule set, for its environment.
    pub file_index: usize,
    /// Where the rule starts.
    pub span: Span,
    /// Finding types the rule applies to.
    pub types: Vec<TypePattern>,
    /// Resource types the rule applies to; empty means any.
    pub resources: Vec<String>,
    /// Conditions that must all hold.
    pub all: Vec<Condition>,
    /// Conditions of which at least one must hold, when there are any.
    pub any: Vec<Condition>,
    /// Conditions none of which may hold.
    pub none: Vec<Condition>,
    /// A Rhai expression that must return true.
    pub when: Option<Script>,
    /// The actions to plan when the rule matches, in order.
    pub actions: Vec<ActionTemplate>,
}

/// An action as written in a rule, with its parameters compiled.
#[derive(Clone, Debug)]
pub struct ActionTemplate {
    /// The action name.
    pub name: String,
    /// The parameters.
    pub params: ParamTemplate,
    /// The parameters as written, templates unrendered, for generating the IAM policy.
    pub raw_params: serde_json::Value,
    /// Where the action is written.
    pub span: Span,
}

/// Action parameters with every string compiled as a template.
#[derive(Clone, Debug)]
pub enum ParamTemplate {
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number.
    Number(serde_json::Number),
    /// A string, possibly with `${ ... }` parts.
    Text(Template),
    /// A list.
    List(Vec<ParamTemplate>),
    /// A map with literal keys, in file order.
    Map(Vec<(String, ParamTemplate)>),
}

impl Rule {
    /// Returns `file:line:column` of the rule.
    pub fn location(&self) -> String {
        format!("{}:{}:{}", self.file.name, self.span.line, self.span.column)
    }
}
