//! The generated event pattern and IAM policy.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cordon_engine::deploy::{PolicyOptions, event_pattern, iam_policy};
use serde_json::json;

fn pattern_of(text: &str) -> serde_json::Value {
    event_pattern(&common::load(text).unwrap_or_else(|d| panic!("{}", d.render())))
}

#[test]
fn exact_types_and_resources() {
    let pattern = pattern_of(
        r#"
rules:
  - id: a
    match: { type: ["B:EC2/Two", "A:EC2/One"], resource: Instance }
    actions: [ { tag: { tags: { a: b } } } ]
  - id: b
    match: { type: "A:EC2/One", resource: Instance }
    actions: [ { tag: { tags: { a: b } } } ]
"#,
    );
    assert_eq!(
        pattern,
        json!({
            "source": ["aws.guardduty"],
            "detail-type": ["GuardDuty Finding"],
            "detail": {"type": ["A:EC2/One", "B:EC2/Two"], "resource": {"resourceType": ["Instance"]}}
        })
    );
}

#[test]
fn globs_become_prefix_and_wildcard() {
    let pattern = pattern_of(
        r#"
rules:
  - id: a
    match: { type: ["Backdoor:EC2/*", "Trojan:EC2/DropPoint?DNS", "*:EC2/Spambot"] }
    actions: [ { tag: { tags: { a: b } } } ]
"#,
    );
    assert_eq!(
        pattern["detail"],
        json!({"type": [
            {"prefix": "Backdoor:EC2/"},
            {"wildcard": "*:EC2/Spambot"},
            {"wildcard": "Trojan:EC2/DropPoint*DNS"}
        ]})
    );
}

#[test]
fn disabled_rule_drops_its_type() {
    let text = r#"
rules:
  - id: a
    match: { type: "A:EC2/One" }
    actions: [ { tag: { tags: { a: b } } } ]
  - id: b
    enabled: ENABLED
    match: { type: "B:EC2/Two" }
    actions: [ { tag: { tags: { a: b } } } ]
"#;
    let enabled = pattern_of(&text.replace("ENABLED", "true"));
    let disabled = pattern_of(&text.replace("ENABLED", "false"));
    assert_eq!(enabled["detail"]["type"], json!(["A:EC2/One", "B:EC2/Two"]));
    assert_eq!(disabled["detail"]["type"], json!(["A:EC2/One"]));
}

#[test]
fn different_resources_use_or() {
    let pattern = pattern_of(
        r#"
rules:
  - id: instance
    match: { type: ["A:EC2/One", "C:IAMUser/Three"], resource: Instance }
    actions: [ { tag: { tags: { a: b } } } ]
  - id: keys
    match: { type: "B:IAMUser/Two", resource: AccessKey }
    actions: [ { tag: { tags: { a: b } } } ]
  - id: any-resource
    match: { type: "C:IAMUser/Three" }
    actions: [ { tag: { tags: { a: b } } } ]
"#,
    );
    assert_eq!(
        pattern["detail"],
        json!({"$or": [
            {"type": ["C:IAMUser/Three"]},
            {"type": ["B:IAMUser/Two"], "resource": {"resourceType": ["AccessKey"]}},
            {"type": ["A:EC2/One"], "resource": {"resourceType": ["Instance"]}}
        ]})
    );
}

#[test]
fn match_all_types_has_no_detail_filter() {
    let pattern = pattern_of(
        r#"
rules:
  - id: everything
    match: { type: "*" }
    actions: [ { tag: { tags: { a: b } } } ]
"#,
    );
    assert_eq!(
        pattern,
        json!({"source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"]})
    );
}

#[test]
fn policy_merges_actions_and_adds_logs() {
    let rules = common::load(
        r#"
rules:
  - id: a
    match: { type: "A:EC2/One" }
    actions: [ { tag: { tags: { a: b } } } ]
"#,
    )
    .unwrap();
    let policy = iam_policy(
        &rules,
        &PolicyOptions {
            function_name: "contain".into(),
        },
    );
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(policy["Version"], "2012-10-17");
    let logs = statements
        .iter()
        .find(|s| s["Sid"] == "WriteOwnLogs")
        .unwrap();
    assert_eq!(
        logs["Resource"],
        "arn:aws:logs:*:*:log-group:/aws/lambda/contain:*"
    );
    assert_eq!(
        logs["Action"],
        json!(["logs:CreateLogStream", "logs:PutLogEvents"])
    );
    for statement in statements {
        for action in statement["Action"].as_array().unwrap() {
            assert!(
                !action.as_str().unwrap().contains('*'),
                "wildcard action {action}"
            );
        }
    }
}
