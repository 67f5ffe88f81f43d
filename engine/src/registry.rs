//! The interface between rules and the actions they name.
//!
//! The engine knows actions only through [`ActionCatalog`]: it asks for an action by name,
//! lets the action check its parameters when rules load and again after templates render,
//! and reads the IAM permissions the action needs. `cordon-actions` implements the catalog
//! for the EC2 actions; tests may implement it with anything.

use serde::Serialize;
use serde_json::Value;

/// When an action's parameters are being checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamStage {
    /// Rule load: strings may still hold unrendered `${ ... }` templates, so checks of a
    /// string's content must skip strings for which [`is_template`] is true.
    Load,
    /// Plan time: every template is rendered and the values are final.
    Rendered,
}

/// One problem with an action's parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamIssue {
    /// Keys (or decimal indexes for lists) from the parameter root to the offending value;
    /// empty for the parameters as a whole.
    pub path: Vec<String>,
    /// What is wrong, lowercase, with user values in backticks.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub help: Option<String>,
}

impl ParamIssue {
    /// Creates an issue about the value at `path`.
    pub fn at<I, S>(path: I, message: impl Into<String>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            path: path.into_iter().map(Into::into).collect(),
            message: message.into(),
            help: None,
        }
    }

    /// Adds a help line.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// What the engine needs to know about one action.
pub trait ActionSpec: Send + Sync {
    /// The key that names the action in a rule file, e.g. `isolate`.
    fn name(&self) -> &'static str;

    /// Checks the parameters and returns every problem found (empty when they are valid).
    fn validate(&self, params: &Value, stage: ParamStage) -> Vec<ParamIssue>;

    /// The IAM actions (`ec2:DescribeInstances`, ...) that executing the action may call.
    fn permissions(&self) -> &'static [&'static str];

    /// Returns the IAM policy statements that executing the action needs, given the
    /// parameters of every enabled rule that uses it, as written (templates unrendered).
    /// The default grants [`ActionSpec::permissions`] on every resource; actions narrow it
    /// with resource types and conditions where EC2 supports them.
    fn policy(&self, params: &[&Value]) -> Vec<PolicyStatement> {
        let _ = params;
        vec![PolicyStatement {
            sid: String::new(),
            actions: self
                .permissions()
                .iter()
                .map(|action| (*action).to_owned())
                .collect(),
            resources: vec!["*".to_owned()],
            condition: None,
            reason: format!("calls made by the `{}` action", self.name()),
        }]
    }
}

/// One statement of an IAM policy that allows something.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyStatement {
    /// The statement id; letters and digits only. Empty means one is derived on output.
    pub sid: String,
    /// IAM actions such as `ec2:CreateTags`.
    pub actions: Vec<String>,
    /// Resource ARNs or patterns.
    pub resources: Vec<String>,
    /// The IAM `Condition` block, when there is one.
    pub condition: Option<Value>,
    /// Why the permission is needed, for documentation; not part of the policy document.
    pub reason: String,
}

/// A set of actions, looked up by name.
pub trait ActionCatalog: Send + Sync {
    /// Returns the action called `name`, if there is one.
    fn get(&self, name: &str) -> Option<&dyn ActionSpec>;

    /// Lists the names of all actions, for suggestions in error messages.
    fn names(&self) -> Vec<&'static str>;
}

/// Returns true when `text` contains a `${ ... }` template that is rendered at plan time.
pub fn is_template(text: &str) -> bool {
    text.contains("${")
}
