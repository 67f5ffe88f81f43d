//! `cordon iam-policy` and `cordon event-pattern` on the shipped rules and on small rule sets.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

fn cordon(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn shipped() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("rules")
        .display()
        .to_string()
}

fn with_rules(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), text).unwrap();
    let path = dir.path().display().to_string();
    (dir, path)
}

fn statement<'a>(policy: &'a Value, sid: &str) -> &'a Value {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|statement| statement["Sid"] == sid)
        .unwrap_or_else(|| panic!("no statement `{sid}` in {policy:#}"))
}

/// Every IAM action the policy allows.
fn actions(policy: &Value) -> BTreeSet<String> {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|statement| statement["Action"].as_array().unwrap().iter())
        .map(|action| action.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn shipped_policy_field_by_field() {
    let policy = cordon(&["iam-policy", &shipped()]);
    assert_eq!(policy["Version"], "2012-10-17");
    assert_eq!(policy["Statement"].as_array().unwrap().len(), 8);

    let read = statement(&policy, "ReadEc2State");
    assert_eq!(read["Effect"], "Allow");
    assert_eq!(read["Resource"], "*");
    assert_eq!(
        read["Action"],
        json!([
            "ec2:DescribeInstances",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSnapshots"
        ])
    );

    let isolate = statement(&policy, "IsolateInterfaces");
    assert_eq!(
        isolate["Action"],
        json!(["ec2:ModifyNetworkInterfaceAttribute"])
    );
    assert_eq!(
        isolate["Resource"],
        json!([
            "arn:aws:ec2:*:*:network-interface/*",
            "arn:aws:ec2:*:*:security-group/*"
        ])
    );
    assert!(isolate.get("Condition").is_none());

    let record = statement(&policy, "RecordOriginalGroups");
    assert_eq!(
        record["Action"],
        json!(["ec2:CreateTags", "ec2:DeleteTags"])
    );
    assert_eq!(record["Resource"], "arn:aws:ec2:*:*:network-interface/*");
    assert_eq!(
        record["Condition"],
        json!({"ForAllValues:StringLike": {"aws:TagKeys": ["cordon:original-groups*"]}})
    );

    let tags = statement(&policy, "TagResources");
    assert_eq!(tags["Resource"], "arn:aws:ec2:*:*:instance/*");
    assert_eq!(
        tags["Condition"],
        json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["cordon:finding-id", "cordon:finding-type", "cordon:status"]}})
    );

    let volumes = statement(&policy, "SnapshotVolumes");
    assert_eq!(volumes["Action"], json!(["ec2:CreateSnapshot"]));
    assert_eq!(volumes["Resource"], "arn:aws:ec2:*:*:volume/*");

    let snapshots = statement(&policy, "SnapshotWithFindingTag");
    assert_eq!(snapshots["Resource"], "arn:aws:ec2:*:*:snapshot/*");
    assert_eq!(
        snapshots["Condition"],
        json!({"Null": {"aws:RequestTag/cordon:finding-id": "false"}})
    );

    let tag_on_create = statement(&policy, "TagSnapshotsAtCreation");
    assert_eq!(
        tag_on_create["Condition"]["StringEquals"],
        json!({"ec2:CreateAction": "CreateSnapshot"})
    );
    assert_eq!(
        tag_on_create["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"],
        json!([
            "cordon:finding-id",
            "cordon:finding-type",
            "cordon:instance-id",
            "cordon:volume-id"
        ])
    );

    let logs = statement(&policy, "WriteOwnLogs");
    assert_eq!(
        logs["Action"],
        json!(["logs:CreateLogStream", "logs:PutLogEvents"])
    );
    assert_eq!(
        logs["Resource"],
        "arn:aws:logs:*:*:log-group:/aws/lambda/cordon:*"
    );
}

#[test]
fn shipped_policy_has_no_wildcard_or_unused_action() {
    let policy = cordon(&["iam-policy", &shipped()]);
    let allowed = actions(&policy);
    for action in &allowed {
        assert!(!action.contains('*'), "wildcard action `{action}`");
    }
    let used: BTreeSet<String> = [
        "ec2:DescribeInstances",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSnapshots",
        "ec2:ModifyNetworkInterfaceAttribute",
        "ec2:CreateTags",
        "ec2:DeleteTags",
        "ec2:CreateSnapshot",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(allowed, used);
    assert!(!allowed.contains("ec2:ModifyInstanceAttribute"));
}

#[test]
fn new_action_adds_exactly_its_permissions() {
    let tag_only = "rules:\n  - id: t\n    match: { type: \"A:EC2/One\" }\n    actions: [ { tag: { tags: { k: v } } } ]\n";
    let with_release = format!(
        "{tag_only}  - id: r\n    match: {{ type: \"B:EC2/Two\" }}\n    actions: [ {{ release: {{}} }} ]\n"
    );
    let (_a, before_path) = with_rules(tag_only);
    let (_b, after_path) = with_rules(&with_release);
    let before = actions(&cordon(&["iam-policy", &before_path]));
    let after = actions(&cordon(&["iam-policy", &after_path]));
    let added: BTreeSet<&String> = after.difference(&before).collect();
    let expected: BTreeSet<String> = [
        "ec2:DeleteTags",
        "ec2:DescribeNetworkInterfaces",
        "ec2:ModifyNetworkInterfaceAttribute",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(added, expected.iter().collect());
    assert!(before.is_subset(&after));
}

#[test]
fn shipped_pattern_field_by_field() {
    let pattern = cordon(&["event-pattern", &shipped()]);
    assert_eq!(pattern["source"], json!(["aws.guardduty"]));
    assert_eq!(pattern["detail-type"], json!(["GuardDuty Finding"]));
    assert_eq!(
        pattern["detail"]["resource"],
        json!({"resourceType": ["Instance"]})
    );
    let types: Vec<&str> = pattern["detail"]["type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec![
            "Backdoor:EC2/C&CActivity.B",
            "Backdoor:EC2/C&CActivity.B!DNS",
            "CryptoCurrency:EC2/BitcoinTool.B",
            "CryptoCurrency:EC2/BitcoinTool.B!DNS",
            "Impact:EC2/BitcoinDomainRequest.Reputation",
            "Recon:EC2/PortProbeEMRUnprotectedPort",
            "Recon:EC2/PortProbeUnprotectedPort",
            "Trojan:EC2/DNSDataExfiltration",
            "Trojan:EC2/DropPoint",
            "Trojan:EC2/DropPoint!DNS",
            "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom",
            "UnauthorizedAccess:EC2/MetadataDNSRebind",
            "UnauthorizedAccess:EC2/RDPBruteForce",
            "UnauthorizedAccess:EC2/SSHBruteForce",
            "UnauthorizedAccess:EC2/TorClient",
            "UnauthorizedAccess:EC2/TorRelay",
        ]
    );
}

#[test]
fn disabling_a_rule_removes_its_type() {
    let text = "rules:\n  - id: a\n    match: { type: \"A:EC2/One\" }\n    actions: [ { tag: { tags: { k: v } } } ]\n  - id: b\n    enabled: ENABLED\n    match: { type: \"B:EC2/Two\" }\n    actions: [ { snapshot: {} } ]\n";
    let (_a, enabled) = with_rules(&text.replace("ENABLED", "true"));
    let (_b, disabled) = with_rules(&text.replace("ENABLED", "false"));
    assert_eq!(
        cordon(&["event-pattern", &enabled])["detail"]["type"],
        json!(["A:EC2/One", "B:EC2/Two"])
    );
    assert_eq!(
        cordon(&["event-pattern", &disabled])["detail"]["type"],
        json!(["A:EC2/One"])
    );
    assert!(actions(&cordon(&["iam-policy", &enabled])).contains("ec2:CreateSnapshot"));
    assert!(!actions(&cordon(&["iam-policy", &disabled])).contains("ec2:CreateSnapshot"));
}
