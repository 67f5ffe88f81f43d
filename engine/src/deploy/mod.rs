//! Deployment documents generated from the rules: the EventBridge event pattern that selects
//! the findings the rules can match, and the IAM policy that allows what their actions call.

pub mod pattern;
pub mod policy;

pub use pattern::event_pattern;
pub use policy::{PolicyOptions, iam_policy};
