//! Cases the emulator cannot produce, with canned EC2 responses from `aws-smithy-mocks`:
//! throttling, a requester-managed network interface, a denied call, a deadline, and sample
//! findings. No request leaves the process: the mock HTTP client returns a canned response to every call.

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

use std::time::{Duration, Instant};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::config::SharedInterceptor;
use aws_sdk_ec2::error::ErrorMetadata;
use aws_sdk_ec2::operation::create_snapshot::CreateSnapshotOutput;
use aws_sdk_ec2::operation::create_tags::CreateTagsOutput;
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::operation::describe_network_interfaces::DescribeNetworkInterfacesOutput;
use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput;
use aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput;
use aws_sdk_ec2::operation::modify_network_interface_attribute::{
    ModifyNetworkInterfaceAttributeError, ModifyNetworkInterfaceAttributeOutput,
};
use aws_sdk_ec2::types::{
    EbsInstanceBlockDevice, GroupIdentifier, Instance, InstanceBlockDeviceMapping,
    InstanceNetworkInterface, InstanceState, InstanceStateName, NetworkInterface, Reservation,
    SecurityGroup,
};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use cordon_actions::{Ec2Clients, ExecOptions, Status, execute};
use serde_json::json;

use common::{CallCounter, plan, sdk_config, settings, statuses, summary};

const INSTANCE: &str = "i-0123456789abcdef0";
const VPC: &str = "vpc-0123456789abcdef0";
const APP: &str = "sg-00000000000000001";
const QUARANTINE: &str = "sg-0000000000000000f";
const THROTTLED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>\
    <Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors>\
    <RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>";

/// Builds clients whose requests get the responses of `rules`. `counter` sees each attempt.
fn mocked(rules: &[&Rule], counter: &CallCounter) -> Ec2Clients {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    let shared = sdk_config(None)
        .into_builder()
        .http_client(create_mock_http_client())
        .build();
    let interceptors = vec![
        SharedInterceptor::new(interceptor),
        SharedInterceptor::new(counter.clone()),
    ];
    let settings = cordon_actions::ClientSettings {
        account_id: Some(common::ACCOUNT.to_owned()),
        ..settings(interceptors)
    };
    Ec2Clients::from_sdk_config(shared, settings)
}

fn interface(id: &str) -> InstanceNetworkInterface {
    InstanceNetworkInterface::builder()
        .network_interface_id(id)
        .vpc_id(VPC)
        .groups(GroupIdentifier::builder().group_id(APP).build())
        .build()
}

fn instance_output(interfaces: &[&str]) -> DescribeInstancesOutput {
    let mut instance = Instance::builder()
        .instance_id(INSTANCE)
        .state(
            InstanceState::builder()
                .name(InstanceStateName::Running)
                .build(),
        )
        .root_device_name("/dev/xvda")
        .block_device_mappings(
            InstanceBlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(
                    EbsInstanceBlockDevice::builder()
                        .volume_id("vol-00000000000000001")
                        .build(),
                )
                .build(),
        );
    for id in interfaces {
        instance = instance.network_interfaces(interface(id));
    }
    DescribeInstancesOutput::builder()
        .reservations(Reservation::builder().instances(instance.build()).build())
        .build()
}

fn network_interface(id: &str, requester_managed: bool) -> NetworkInterface {
    NetworkInterface::builder()
        .network_interface_id(id)
        .vpc_id(VPC)
        .requester_managed(requester_managed)
        .groups(GroupIdentifier::builder().group_id(APP).build())
        .build()
}

fn quarantine_group() -> DescribeSecurityGroupsOutput {
    DescribeSecurityGroupsOutput::builder()
        .security_groups(
            SecurityGroup::builder()
                .group_id(QUARANTINE)
                .vpc_id(VPC)
                .build(),
        )
        .build()
}

fn describe_instances_rule(interfaces: &'static [&'static str]) -> Rule {
    mock!(Client::describe_instances)
        .sequence()
        .output(move || instance_output(interfaces))
        .repeatedly()
        .build()
}

fn describe_interfaces_rule(interfaces: &'static [(&'static str, bool)]) -> Rule {
    mock!(Client::describe_network_interfaces)
        .sequence()
        .output(move || {
            let mut output = DescribeNetworkInterfacesOutput::builder();
            for (id, managed) in interfaces {
                output = output.network_interfaces(network_interface(id, *managed));
            }
            output.build()
        })
        .repeatedly()
        .build()
}

fn groups_rule() -> Rule {
    mock!(Client::describe_security_groups)
        .sequence()
        .output(quarantine_group)
        .repeatedly()
        .build()
}

fn create_tags_rule() -> Rule {
    mock!(Client::create_tags)
        .sequence()
        .output(|| CreateTagsOutput::builder().build())
        .repeatedly()
        .build()
}

fn modify_rule() -> Rule {
    mock!(Client::modify_network_interface_attribute)
        .sequence()
        .output(|| ModifyNetworkInterfaceAttributeOutput::builder().build())
        .repeatedly()
        .build()
}

fn isolate_plan() -> cordon_engine::Plan {
    plan(
        summary(INSTANCE, "f0"),
        &[("isolate", json!({"security_group": QUARANTINE}))],
    )
}

#[tokio::test]
async fn throttling_is_retried_then_succeeds() {
    let describe = mock!(Client::describe_instances)
        .sequence()
        .http_status(503, Some(THROTTLED.to_owned()))
        .times(2)
        .output(|| instance_output(&["eni-00000000000000001"]))
        .build();
    let interfaces = describe_interfaces_rule(&[("eni-00000000000000001", false)]);
    let (groups, tags, modify) = (groups_rule(), create_tags_rule(), modify_rule());
    let counter = CallCounter::default();
    let clients = mocked(&[&describe, &interfaces, &groups, &tags, &modify], &counter);

    let execution = execute(&isolate_plan(), &clients, &ExecOptions::default()).await;
    assert_eq!(
        statuses(&execution),
        vec!["changed"],
        "{}",
        execution.to_text()
    );
    assert_eq!(
        counter.counts().get("DescribeInstances"),
        Some(&3),
        "{:?}",
        counter.counts()
    );
    assert_eq!(modify.num_calls(), 1);
}

#[tokio::test]
async fn throttling_gives_up_after_max_attempts() {
    let describe = mock!(Client::describe_instances)
        .sequence()
        .http_status(503, Some(THROTTLED.to_owned()))
        .repeatedly()
        .build();
    let counter = CallCounter::default();
    let clients = mocked(&[&describe], &counter);

    let execution = execute(&isolate_plan(), &clients, &ExecOptions::default()).await;
    let Status::Failed { code, message } = &execution.outcomes[0].status else {
        panic!("expected a failure: {}", execution.to_text());
    };
    assert_eq!(code, "RequestLimitExceeded");
    assert!(message.starts_with("DescribeInstances failed"), "{message}");
    let attempts = cordon_actions::ClientSettings::default().max_attempts as usize;
    assert_eq!(counter.counts().get("DescribeInstances"), Some(&attempts));
}

#[tokio::test]
async fn requester_managed_interface_is_reported() {
    let describe = describe_instances_rule(&["eni-00000000000000001", "eni-00000000000000002"]);
    let interfaces = describe_interfaces_rule(&[
        ("eni-00000000000000001", false),
        ("eni-00000000000000002", true),
    ]);
    let modify = mock!(Client::modify_network_interface_attribute)
        .match_requests(|request| request.network_interface_id() == Some("eni-00000000000000001"))
        .sequence()
        .output(|| ModifyNetworkInterfaceAttributeOutput::builder().build())
        .repeatedly()
        .build();
    let (groups, tags) = (groups_rule(), create_tags_rule());
    let counter = CallCounter::default();
    let clients = mocked(&[&describe, &interfaces, &groups, &tags, &modify], &counter);

    let execution = execute(&isolate_plan(), &clients, &ExecOptions::default()).await;
    let outcome = &execution.outcomes[0];
    let Status::Failed { code, message } = &outcome.status else {
        panic!("expected a failure: {}", execution.to_text());
    };
    assert_eq!(code, "requester_managed");
    assert!(message.contains("isolated 1 of 2"), "{message}");
    assert!(
        message.contains("`eni-00000000000000002` (requester_managed)"),
        "{message}"
    );
    assert_eq!(outcome.resources[0].status, Status::Changed);
    assert!(outcome.resources[1].status.is_failed());
    assert_eq!(
        modify.num_calls(),
        1,
        "only the changeable interface is modified"
    );
    assert!(execution.failed());
}

#[tokio::test]
async fn denied_call_fails_only_its_action() {
    let describe = describe_instances_rule(&["eni-00000000000000001"]);
    let interfaces = describe_interfaces_rule(&[("eni-00000000000000001", false)]);
    let denied = mock!(Client::modify_network_interface_attribute).then_error(|| {
        ModifyNetworkInterfaceAttributeError::generic(
            ErrorMetadata::builder()
                .code("UnauthorizedOperation")
                .message("You are not authorized to perform this operation.")
                .build(),
        )
    });
    let snapshots = mock!(Client::describe_snapshots)
        .sequence()
        .output(|| DescribeSnapshotsOutput::builder().build())
        .repeatedly()
        .build();
    let create_snapshot = mock!(Client::create_snapshot)
        .sequence()
        .output(|| {
            CreateSnapshotOutput::builder()
                .snapshot_id("snap-00000000000000001")
                .build()
        })
        .repeatedly()
        .build();
    let (groups, tags) = (groups_rule(), create_tags_rule());
    let counter = CallCounter::default();
    let rules = [
        &describe,
        &interfaces,
        &groups,
        &tags,
        &denied,
        &snapshots,
        &create_snapshot,
    ];
    let clients = mocked(&rules, &counter);

    let plan = plan(
        summary(INSTANCE, "f0"),
        &[
            ("isolate", json!({"security_group": QUARANTINE})),
            ("snapshot", json!({})),
        ],
    );
    let execution = execute(&plan, &clients, &ExecOptions::default()).await;
    let Status::Failed { code, message } = &execution.outcomes[0].status else {
        panic!("expected a failure: {}", execution.to_text());
    };
    assert_eq!(code, "UnauthorizedOperation");
    assert!(
        message.contains("not isolated: `eni-00000000000000001`"),
        "{message}"
    );
    let resource = &execution.outcomes[0].resources[0];
    assert!(
        resource
            .status
            .detail()
            .unwrap()
            .contains("ModifyNetworkInterfaceAttribute failed")
    );
    assert_eq!(
        execution.outcomes[1].status,
        Status::Changed,
        "{}",
        execution.to_text()
    );
    assert_eq!(create_snapshot.num_calls(), 1);
}

#[tokio::test]
async fn short_deadline_starts_nothing() {
    let counter = CallCounter::default();
    let clients = mocked(&[], &counter);
    let options = ExecOptions {
        deadline: Some(Instant::now() + Duration::from_millis(100)),
        min_time_per_action: Duration::from_secs(1),
        ..ExecOptions::default()
    };
    let plan = plan(
        summary(INSTANCE, "f0"),
        &[
            ("isolate", json!({"security_group": QUARANTINE})),
            ("tag", json!({"tags": {"a": "b"}})),
        ],
    );
    let execution = execute(&plan, &clients, &options).await;
    assert_eq!(statuses(&execution), vec!["not_started", "not_started"]);
    let Status::NotStarted { reason } = &execution.outcomes[0].status else {
        unreachable!()
    };
    assert!(reason.contains("under the minimum of 1000 ms"), "{reason}");
    assert_eq!(counter.total(), 0);
}

#[tokio::test]
async fn sample_finding_is_rejected() {
    let counter = CallCounter::default();
    let clients = mocked(&[], &counter);
    let mut sample = summary("i-99999999", "f0");
    sample.sample = true;
    let plan = plan(
        sample,
        &[
            ("isolate", json!({"security_group": QUARANTINE})),
            ("snapshot", json!({})),
        ],
    );
    let execution = execute(&plan, &clients, &ExecOptions::default()).await;
    assert_eq!(statuses(&execution), vec!["skipped", "skipped"]);
    let Status::Skipped { reason } = &execution.outcomes[0].status else {
        unreachable!()
    };
    assert!(reason.contains("sample"), "{reason}");
    assert_eq!(counter.total(), 0);
}

#[tokio::test]
async fn invalid_params_fail_before_any_call() {
    let counter = CallCounter::default();
    let clients = mocked(&[], &counter);
    let plan = plan(
        summary(INSTANCE, "f0"),
        &[("isolate", json!({"security_group": "quarantine"}))],
    );
    let execution = execute(&plan, &clients, &ExecOptions::default()).await;
    let Status::Failed { code, message } = &execution.outcomes[0].status else {
        panic!("expected a failure: {}", execution.to_text());
    };
    assert_eq!(code, "invalid_parameters");
    assert!(message.starts_with("`security_group`:"), "{message}");
    assert_eq!(counter.total(), 0);
}

#[tokio::test]
async fn outcome_serializes_for_the_response() {
    let describe = describe_instances_rule(&["eni-00000000000000001"]);
    let interfaces = describe_interfaces_rule(&[("eni-00000000000000001", false)]);
    let (groups, tags, modify) = (groups_rule(), create_tags_rule(), modify_rule());
    let counter = CallCounter::default();
    let clients = mocked(&[&describe, &interfaces, &groups, &tags, &modify], &counter);

    let execution = execute(&isolate_plan(), &clients, &ExecOptions::default()).await;
    let value = serde_json::to_value(&execution).unwrap();
    assert_eq!(value["finding_id"], json!("f0"));
    assert_eq!(value["dry_run"], json!(false));
    let outcome = &value["outcomes"][0];
    assert_eq!(outcome["action"], json!("isolate"));
    assert_eq!(outcome["rule_id"], json!("test-rule"));
    assert_eq!(outcome["status"], json!("changed"));
    assert_eq!(
        outcome["resources"][0]["id"],
        json!("eni-00000000000000001")
    );
    assert_eq!(outcome["resources"][0]["kind"], json!("network_interface"));
    assert_eq!(
        outcome["calls"][1]["operation"],
        json!("ModifyNetworkInterfaceAttribute")
    );
    assert_eq!(outcome["calls"][1]["params"]["Groups"], json!([QUARANTINE]));
}
