//! IAM policy statements for the EC2 actions, as narrow as EC2's authorization allows.
//!
//! EC2 `Describe*` calls do not support resource-level permissions, so they are granted on
//! `*`. Writes are limited to the resource types they touch and, for tags, to the tag keys
//! the rules write. The resource types and condition keys follow the EC2 section of the AWS
//! Service Authorization Reference.
//!
//! NOTE: the emulator the tests run against does not enforce IAM, so these statements are
//! checked here only for their shape; a deployment check in a sandbox account is the test
//! that they are sufficient (see docs/deploy.md).

use cordon_engine::registry::{PolicyStatement, is_template};
use serde_json::{Value, json};

/// `arn:aws:ec2:*:*:TYPE/*` for each resource type.
pub(crate) fn arns(resource_types: &[&str]) -> Vec<String> {
    resource_types
        .iter()
        .map(|kind| format!("arn:aws:ec2:*:*:{kind}/*"))
        .collect()
}

/// The read-only calls, which EC2 authorizes only on `*`.
pub(crate) fn describe(actions: &[&str], reason: &str) -> PolicyStatement {
    PolicyStatement {
        sid: "ReadEc2State".to_owned(),
        actions: actions.iter().map(|action| (*action).to_owned()).collect(),
        resources: vec!["*".to_owned()],
        condition: None,
        reason: reason.to_owned(),
    }
}

/// A write statement without conditions.
pub(crate) fn write(
    sid: &str,
    actions: &[&str],
    resources: &[&str],
    reason: &str,
) -> PolicyStatement {
    PolicyStatement {
        sid: sid.to_owned(),
        actions: actions.iter().map(|action| (*action).to_owned()).collect(),
        resources: arns(resources),
        condition: None,
        reason: reason.to_owned(),
    }
}

/// `CreateTags` or `DeleteTags` limited to tag keys. Keys that contain `*` are matched as
/// patterns (`StringLike`), others exactly. When a key is a template, nothing limits the
/// keys, so the statement has no tag-key condition.
pub(crate) fn tags(
    sid: &str,
    action: &str,
    resources: &[&str],
    keys: &[String],
    extra: Option<(&str, Value)>,
    reason: &str,
) -> PolicyStatement {
    let mut condition = serde_json::Map::new();
    let keys_known = !keys.is_empty() && keys.iter().all(|key| !is_template(key));
    if keys_known {
        let mut sorted = keys.to_vec();
        sorted.sort();
        sorted.dedup();
        let operator = if sorted.iter().any(|key| key.contains('*')) {
            "ForAllValues:StringLike"
        } else {
            "ForAllValues:StringEquals"
        };
        condition.insert(operator.to_owned(), json!({ "aws:TagKeys": sorted }));
    }
    if let Some((operator, value)) = extra {
        condition.insert(operator.to_owned(), value);
    }
    PolicyStatement {
        sid: sid.to_owned(),
        actions: vec![action.to_owned()],
        resources: arns(resources),
        condition: (!condition.is_empty()).then_some(Value::Object(condition)),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_keys_become_a_condition() {
        let statement = tags(
            "T",
            "ec2:CreateTags",
            &["instance"],
            &["b".to_owned(), "a".to_owned(), "a".to_owned()],
            None,
            "r",
        );
        assert_eq!(
            statement.condition,
            Some(json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}))
        );
        assert_eq!(statement.resources, vec!["arn:aws:ec2:*:*:instance/*"]);
    }

    #[test]
    fn patterns_use_string_like() {
        let statement = tags(
            "T",
            "ec2:DeleteTags",
            &["network-interface"],
            &["x*".to_owned()],
            None,
            "r",
        );
        assert_eq!(
            statement.condition,
            Some(json!({"ForAllValues:StringLike": {"aws:TagKeys": ["x*"]}}))
        );
    }

    #[test]
    fn templated_keys_leave_keys_open() {
        let statement = tags(
            "T",
            "ec2:CreateTags",
            &["instance"],
            &["${finding.type}".to_owned()],
            None,
            "r",
        );
        assert_eq!(statement.condition, None);
    }
}
