//! Whole plans against the EC2 emulator: snapshots, tags, retries of the same finding, dry
//! runs, and the number of EC2 calls a plan makes.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod common;

use std::collections::BTreeMap;

use cordon_actions::{ExecOptions, ResourceKind, execute};
use serde_json::{Value, json};

use common::{Emulator, emulator, finding_id, plan, statuses, summary};

/// Returns the actions of the shipped quarantine rules: isolate, snapshot every volume, tag.
fn quarantine_actions(quarantine: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("isolate", json!({"security_group": quarantine})),
        ("snapshot", json!({"description": "cordon evidence"})),
        (
            "tag",
            json!({"tags": {"cordon:status": "quarantined", "cordon:rule": "test-rule"}}),
        ),
    ]
}

#[tokio::test]
async fn same_finding_twice_changes_once() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let quarantine = emu.group(&net, "quarantine", false).await;
    let (instance, eni) = emu.instance(&net, &[&app]).await;
    let data = emu.attach_volume(&instance, "/dev/sdf").await;
    let finding = finding_id();
    let plan = plan(
        summary(&instance, &finding),
        &quarantine_actions(&quarantine),
    );

    let first = execute(&plan, &emu.clients, &ExecOptions::default()).await;
    assert_eq!(
        statuses(&first),
        vec!["changed", "changed", "changed"],
        "{}",
        first.to_text()
    );
    let second = execute(&plan, &emu.clients, &ExecOptions::default()).await;
    assert_eq!(
        statuses(&second),
        vec!["already_done", "already_done", "already_done"],
        "{}",
        second.to_text()
    );
    assert!(
        second
            .outcomes
            .iter()
            .all(|outcome| outcome.calls.is_empty())
    );

    let volumes: Vec<String> = first.outcomes[1]
        .resources
        .iter()
        .filter_map(|resource| resource.detail.as_deref())
        .map(|detail| {
            detail
                .trim_start_matches("of volume `")
                .trim_end_matches('`')
                .to_owned()
        })
        .collect();
    assert_eq!(volumes.len(), 2, "root and data volume: {volumes:?}");
    assert!(volumes.contains(&data));
    for volume in &volumes {
        assert_eq!(
            emu.snapshots_of(volume, &finding).await.len(),
            1,
            "snapshots of {volume}"
        );
    }
    assert_eq!(
        emu.tags_of(&eni).await.get("cordon:original-groups"),
        Some(&app)
    );
    assert_eq!(emu.groups_of(&eni).await, vec![quarantine]);
}

#[tokio::test]
async fn snapshots_are_tagged_at_creation() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let (instance, _) = emu.instance(&net, &[&app]).await;
    let data = emu.attach_volume(&instance, "/dev/sdf").await;
    let finding = finding_id();

    let plan = plan(
        summary(&instance, &finding),
        &[("snapshot", json!({"volumes": "root"}))],
    );
    let execution = execute(&plan, &emu.clients, &ExecOptions::default()).await;
    assert_eq!(
        statuses(&execution),
        vec!["changed"],
        "{}",
        execution.to_text()
    );
    let outcome = &execution.outcomes[0];
    assert_eq!(outcome.resources.len(), 1, "only the root volume");
    assert_eq!(outcome.resources[0].kind, ResourceKind::Snapshot);
    assert!(emu.snapshots_of(&data, &finding).await.is_empty());

    let root = outcome.calls[0].params["VolumeId"]
        .as_str()
        .unwrap()
        .to_owned();
    let snapshots = emu.snapshots_of(&root, &finding).await;
    assert_eq!(snapshots.len(), 1);
    let tags: BTreeMap<&str, &str> = snapshots[0]
        .1
        .iter()
        .map(|tag| (tag.key().unwrap(), tag.value().unwrap()))
        .collect();
    assert_eq!(tags.get("cordon:finding-id"), Some(&finding.as_str()));
    assert_eq!(
        tags.get("cordon:finding-type"),
        Some(&"UnauthorizedAccess:EC2/TorClient")
    );
    assert_eq!(tags.get("cordon:instance-id"), Some(&instance.as_str()));
    assert_eq!(tags.get("cordon:volume-id"), Some(&root.as_str()));
}

#[tokio::test]
async fn hostile_finding_id_keeps_the_snapshot() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let (instance, _) = emu.instance(&net, &[&app]).await;
    // Control characters and more than the 256 characters a tag value holds.
    let hostile = format!("{}\u{1b}[2J\r\n{}", finding_id(), "x".repeat(300));
    let plan = plan(summary(&instance, &hostile), &[("snapshot", json!({}))]);

    let first = execute(&plan, &emu.clients, &ExecOptions::default()).await;
    assert_eq!(statuses(&first), vec!["changed"], "{}", first.to_text());
    let second = execute(&plan, &emu.clients, &ExecOptions::default()).await;
    assert_eq!(
        statuses(&second),
        vec!["already_done"],
        "{}",
        second.to_text()
    );

    let root = first.outcomes[0].calls[0].params["VolumeId"]
        .as_str()
        .unwrap()
        .to_owned();
    let stored: String = hostile
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .take(256)
        .collect();
    let snapshots = emu.snapshots_of(&root, &stored).await;
    assert_eq!(snapshots.len(), 1);
    let description = &first.outcomes[0].calls[0].params["Description"];
    assert!(
        !description.as_str().unwrap().chars().any(char::is_control),
        "{description}"
    );
}

#[tokio::test]
async fn tags_reach_volumes_and_interfaces() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let (instance, eni) = emu.instance(&net, &[&app]).await;
    let data = emu.attach_volume(&instance, "/dev/sdf").await;

    let params = json!({"tags": {"incident": "ir-42", "count": 3}, "volumes": true, "network_interfaces": "true"});
    let plan = plan(summary(&instance, &finding_id()), &[("tag", params)]);
    let execution = execute(&plan, &emu.clients, &ExecOptions::default()).await;
    assert_eq!(
        statuses(&execution),
        vec!["changed"],
        "{}",
        execution.to_text()
    );
    for resource in [&instance, &eni, &data] {
        let tags = emu.tags_of(resource).await;
        assert_eq!(
            tags.get("incident").map(String::as_str),
            Some("ir-42"),
            "tags of {resource}"
        );
        assert_eq!(
            tags.get("count").map(String::as_str),
            Some("3"),
            "tags of {resource}"
        );
    }
    assert_eq!(execution.outcomes[0].calls.len(), 1, "one CreateTags call");
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let quarantine = emu.group(&net, "quarantine", false).await;
    let open = emu.allow_all_group(&net, "allow-all").await;
    let (instance, eni) = emu.instance(&net, &[&app]).await;
    let finding = finding_id();
    let actions = vec![
        (
            "isolate",
            json!({"security_group": quarantine, "close_tracked_connections": true, "allow_all_group": open}),
        ),
        ("snapshot", json!({})),
        ("tag", json!({"tags": {"cordon:status": "quarantined"}})),
    ];
    let plan = plan(summary(&instance, &finding), &actions);
    let options = ExecOptions {
        dry_run: true,
        ..ExecOptions::default()
    };

    let execution = execute(&plan, &emu.clients, &options).await;
    assert!(execution.dry_run);
    assert_eq!(
        statuses(&execution),
        vec!["would_change", "would_change", "would_change"],
        "{}",
        execution.to_text()
    );
    assert!(
        emu.counter.writes().is_empty(),
        "{:?}",
        emu.counter.counts()
    );
    assert_eq!(emu.groups_of(&eni).await, vec![app.clone()]);
    assert!(emu.tags_of(&eni).await.is_empty());
    assert!(emu.tags_of(&instance).await.is_empty());

    let isolate_calls = &execution.outcomes[0].calls;
    let operations: Vec<&str> = isolate_calls
        .iter()
        .map(|call| call.operation.as_str())
        .collect();
    assert_eq!(
        operations,
        vec![
            "CreateTags",
            "ModifyNetworkInterfaceAttribute",
            "ModifyNetworkInterfaceAttribute"
        ]
    );
    assert_eq!(
        isolate_calls[0].params,
        json!({"Resources": [eni], "Tags": [{"Key": "cordon:original-groups", "Value": app}]})
    );
    assert_eq!(isolate_calls[1].params["Groups"], json!([open]));
    assert_eq!(isolate_calls[2].params["Groups"], json!([quarantine]));
    let snapshot_call = &execution.outcomes[1].calls[0];
    assert_eq!(snapshot_call.operation, "CreateSnapshot");
    let root = snapshot_call.params["VolumeId"].as_str().unwrap();
    assert!(emu.snapshots_of(root, &finding).await.is_empty());
    assert_eq!(execution.outcomes[2].calls[0].operation, "CreateTags");
}

/// Runs the quarantine plan on an instance with `extra_interfaces` more network interfaces
/// and returns the EC2 requests by operation.
async fn count_calls(emu: &Emulator, extra_interfaces: i32) -> BTreeMap<String, usize> {
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let quarantine = emu.group(&net, "quarantine", false).await;
    let (instance, _) = emu.instance(&net, &[&app]).await;
    for index in 1..=extra_interfaces {
        emu.attach_interface(&instance, &net, &[&app], index).await;
    }
    emu.counter.reset();
    let plan = plan(
        summary(&instance, &finding_id()),
        &quarantine_actions(&quarantine),
    );
    let execution = execute(&plan, &emu.clients, &ExecOptions::default()).await;
    assert!(!execution.failed(), "{}", execution.to_text());
    emu.counter.counts()
}

/// Prints the EC2 requests of isolate + snapshot + tag for one and three network interfaces
/// (one root volume each, as moto starts instances). Run with `--nocapture` to see them.
#[tokio::test]
async fn calls_per_finding() {
    let Some(emu) = emulator() else { return };
    let one_interface = count_calls(&emu, 0).await;
    let three_interfaces = count_calls(&emu, 2).await;
    println!("EC2 requests for isolate + snapshot + tag, one root volume:");
    println!("{:<36} {:>6} {:>6}", "operation", "1 ENI", "3 ENIs");
    let operations: std::collections::BTreeSet<&String> = one_interface
        .keys()
        .chain(three_interfaces.keys())
        .collect();
    for operation in operations {
        let first = one_interface.get(operation).copied().unwrap_or(0);
        let second = three_interfaces.get(operation).copied().unwrap_or(0);
        println!("{operation:<36} {first:>6} {second:>6}");
    }
    let total_one: usize = one_interface.values().sum();
    let total_three: usize = three_interfaces.values().sum();
    println!("{:<36} {total_one:>6} {total_three:>6}", "total");

    assert_eq!(
        one_interface.get("DescribeInstances"),
        Some(&3),
        "one read per action: {one_interface:?}"
    );
    assert_eq!(
        one_interface.get("ModifyNetworkInterfaceAttribute"),
        Some(&1)
    );
    assert_eq!(
        three_interfaces.get("ModifyNetworkInterfaceAttribute"),
        Some(&3)
    );
    assert_eq!(total_one, 10, "{one_interface:?}");
    assert_eq!(total_three, 14, "{three_interfaces:?}");
}
