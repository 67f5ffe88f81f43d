//! `isolate` and `release` against the EC2 emulator. Each test creates its own VPCs and
//! instances, so the tests can run in parallel on one emulator.

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

use cordon_actions::{ExecOptions, Status, execute, release_instance};
use serde_json::json;

use common::{emulator, finding_id, plan, statuses, summary};

const RECORD: &str = "cordon:original-groups";

fn options() -> ExecOptions {
    ExecOptions::default()
}

#[tokio::test]
async fn one_interface_is_isolated() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let quarantine = emu.group(&net, "quarantine", false).await;
    let (instance, eni) = emu.instance(&net, &[&app]).await;

    let plan = plan(
        summary(&instance, &finding_id()),
        &[("isolate", json!({"security_group": quarantine}))],
    );
    let execution = execute(&plan, &emu.clients, &options()).await;

    assert_eq!(
        statuses(&execution),
        vec!["changed"],
        "{}",
        execution.to_text()
    );
    assert_eq!(emu.groups_of(&eni).await, vec![quarantine.clone()]);
    assert_eq!(emu.tags_of(&eni).await.get(RECORD), Some(&app));
    let outcome = &execution.outcomes[0];
    assert_eq!(outcome.resources.len(), 1);
    assert_eq!(outcome.resources[0].id, eni);
    let operations: Vec<&str> = outcome
        .calls
        .iter()
        .map(|call| call.operation.as_str())
        .collect();
    assert_eq!(
        operations,
        vec!["CreateTags", "ModifyNetworkInterfaceAttribute"]
    );
    assert_eq!(outcome.calls[1].params["Groups"], json!([quarantine]));
    assert!(!emu.counter.counts().contains_key("ModifyInstanceAttribute"));
}

#[tokio::test]
async fn three_interfaces_isolated_then_released() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let web = emu.group(&net, "web", true).await;
    let admin = emu.group(&net, "admin", true).await;
    let db = emu.group(&net, "db", true).await;
    let quarantine = emu.group(&net, "quarantine", false).await;
    let (instance, primary) = emu.instance(&net, &[&web]).await;
    let second = emu
        .attach_interface(&instance, &net, &[&admin, &db], 1)
        .await;
    let third = emu.attach_interface(&instance, &net, &[&db], 2).await;
    let mut originals = vec![
        (primary.clone(), vec![web.clone()]),
        (second.clone(), vec![admin.clone(), db.clone()]),
        (third.clone(), vec![db.clone()]),
    ];
    for (_, groups) in &mut originals {
        groups.sort();
    }

    let plan = plan(
        summary(&instance, &finding_id()),
        &[
            ("isolate", json!({"security_group": quarantine})),
            (
                "tag",
                json!({"tags": {"cordon:finding-type": "test"}, "containment_status": "cordon:status"}),
            ),
        ],
    );
    let execution = execute(&plan, &emu.clients, &options()).await;
    assert_eq!(
        statuses(&execution),
        vec!["changed", "changed"],
        "{}",
        execution.to_text()
    );
    assert_eq!(execution.outcomes[0].resources.len(), 3);
    let status =
        |tags: std::collections::BTreeMap<String, String>| tags.get("cordon:status").cloned();
    assert_eq!(
        status(emu.tags_of(&instance).await).as_deref(),
        Some("quarantined")
    );
    for (eni, groups) in &originals {
        assert_eq!(
            emu.groups_of(eni).await,
            vec![quarantine.clone()],
            "groups of {eni}"
        );
        let record = emu
            .tags_of(eni)
            .await
            .get(RECORD)
            .cloned()
            .unwrap_or_default();
        let mut recorded: Vec<String> = record.split(' ').map(str::to_owned).collect();
        recorded.sort();
        assert_eq!(&recorded, groups, "record on {eni}");
    }

    let released =
        release_instance(&emu.clients, &instance, None, Some("cordon:status"), false).await;
    assert_eq!(released.status, Status::Changed, "{}", released.to_text());
    assert_eq!(
        status(emu.tags_of(&instance).await).as_deref(),
        Some("released")
    );
    for (eni, groups) in &originals {
        assert_eq!(
            &emu.groups_of(eni).await,
            groups,
            "restored groups of {eni}"
        );
        assert!(emu.tags_of(eni).await.is_empty(), "record left on {eni}");
    }

    let again = release_instance(&emu.clients, &instance, None, Some("cordon:status"), false).await;
    assert_eq!(again.status, Status::AlreadyDone, "{}", again.to_text());
    assert!(again.calls.is_empty());
}

#[tokio::test]
async fn group_with_egress_is_rejected() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let open_quarantine = emu.group(&net, "quarantine", true).await;
    let (instance, eni) = emu.instance(&net, &[&app]).await;

    let rejected = plan(
        summary(&instance, &finding_id()),
        &[("isolate", json!({"security_group": open_quarantine}))],
    );
    let execution = execute(&rejected, &emu.clients, &options()).await;
    let Status::Failed { code, message } = &execution.outcomes[0].status else {
        panic!("expected a failure: {}", execution.to_text());
    };
    assert_eq!(code, "egress_not_empty");
    assert!(
        message.contains(&format!("`{open_quarantine}`")),
        "{message}"
    );
    assert!(message.contains("all traffic to 0.0.0.0/0"), "{message}");
    assert_eq!(emu.groups_of(&eni).await, vec![app.clone()]);
    assert!(emu.tags_of(&eni).await.is_empty());
    assert!(
        emu.counter.writes().is_empty(),
        "{:?}",
        emu.counter.counts()
    );

    let allowed = plan(
        summary(&instance, &finding_id()),
        &[(
            "isolate",
            json!({"security_group": open_quarantine, "allow_egress": true}),
        )],
    );
    let execution = execute(&allowed, &emu.clients, &options()).await;
    assert_eq!(
        statuses(&execution),
        vec!["changed"],
        "{}",
        execution.to_text()
    );
    assert_eq!(emu.groups_of(&eni).await, vec![open_quarantine]);
}

#[tokio::test]
async fn group_from_other_vpc_is_rejected() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let other = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let foreign = emu.group(&other, "quarantine", false).await;
    let (instance, eni) = emu.instance(&net, &[&app]).await;

    let plan = plan(
        summary(&instance, &finding_id()),
        &[("isolate", json!({"security_group": foreign}))],
    );
    let execution = execute(&plan, &emu.clients, &options()).await;
    let Status::Failed { code, message } = &execution.outcomes[0].status else {
        panic!("expected a failure: {}", execution.to_text());
    };
    assert_eq!(code, "group_in_other_vpc");
    assert!(message.contains(&foreign), "{message}");
    assert!(message.contains(&other.vpc), "{message}");
    assert_eq!(emu.groups_of(&eni).await, vec![app]);
    assert!(emu.tags_of(&eni).await.is_empty());
    assert!(
        emu.counter.writes().is_empty(),
        "{:?}",
        emu.counter.counts()
    );
}

#[tokio::test]
async fn missing_group_is_rejected() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let (instance, eni) = emu.instance(&net, &[&app]).await;

    let plan = plan(
        summary(&instance, &finding_id()),
        &[("isolate", json!({"security_group": "sg-0123456789abcdef0"}))],
    );
    let execution = execute(&plan, &emu.clients, &options()).await;
    let Status::Failed { code, .. } = &execution.outcomes[0].status else {
        panic!("expected a failure: {}", execution.to_text());
    };
    assert_eq!(code, "InvalidGroup.NotFound");
    assert_eq!(emu.groups_of(&eni).await, vec![app]);
}

#[tokio::test]
async fn by_vpc_map_covers_two_vpcs() {
    let Some(emu) = emulator() else { return };
    let first = emu.network().await;
    let second = emu.network().await;
    let app_first = emu.group(&first, "app", true).await;
    let app_second = emu.group(&second, "app", true).await;
    let quarantine_first = emu.group(&first, "quarantine", false).await;
    let quarantine_second = emu.group(&second, "quarantine", false).await;
    let (instance, eni_first) = emu.instance(&first, &[&app_first]).await;
    let eni_second = emu
        .attach_interface(&instance, &second, &[&app_second], 1)
        .await;

    let by_vpc = json!({
        "by_vpc": {first.vpc.clone(): quarantine_first.clone(), second.vpc.clone(): [quarantine_second.clone()]}
    });
    let plan_by_vpc = plan(summary(&instance, &finding_id()), &[("isolate", by_vpc)]);
    let execution = execute(&plan_by_vpc, &emu.clients, &options()).await;
    assert_eq!(
        statuses(&execution),
        vec!["changed"],
        "{}",
        execution.to_text()
    );
    assert_eq!(
        emu.groups_of(&eni_first).await,
        vec![quarantine_first.clone()]
    );
    assert_eq!(
        emu.groups_of(&eni_second).await,
        vec![quarantine_second.clone()]
    );

    let by_name = plan(
        summary(&instance, &finding_id()),
        &[("isolate", json!({"group_name": "quarantine"}))],
    );
    let execution = execute(&by_name, &emu.clients, &options()).await;
    assert_eq!(
        statuses(&execution),
        vec!["already_done"],
        "{}",
        execution.to_text()
    );
}

#[tokio::test]
async fn by_vpc_map_missing_a_vpc_changes_nothing() {
    let Some(emu) = emulator() else { return };
    let first = emu.network().await;
    let second = emu.network().await;
    let app_first = emu.group(&first, "app", true).await;
    let app_second = emu.group(&second, "app", true).await;
    let quarantine_first = emu.group(&first, "quarantine", false).await;
    let (instance, eni_first) = emu.instance(&first, &[&app_first]).await;
    let eni_second = emu
        .attach_interface(&instance, &second, &[&app_second], 1)
        .await;

    let params = json!({"by_vpc": {first.vpc.clone(): quarantine_first}});
    let plan = plan(summary(&instance, &finding_id()), &[("isolate", params)]);
    let execution = execute(&plan, &emu.clients, &options()).await;
    let Status::Failed { code, message } = &execution.outcomes[0].status else {
        panic!("expected a failure: {}", execution.to_text());
    };
    assert_eq!(code, "no_group_for_vpc");
    assert!(message.contains(&second.vpc), "{message}");
    assert_eq!(emu.groups_of(&eni_first).await, vec![app_first]);
    assert_eq!(emu.groups_of(&eni_second).await, vec![app_second]);
}

#[tokio::test]
async fn group_name_resolves_in_each_vpc() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let quarantine = emu.group(&net, "cordon-quarantine", false).await;
    let (instance, eni) = emu.instance(&net, &[&app]).await;

    let plan = plan(
        summary(&instance, &finding_id()),
        &[("isolate", json!({"group_name": "cordon-quarantine"}))],
    );
    let execution = execute(&plan, &emu.clients, &options()).await;
    assert_eq!(
        statuses(&execution),
        vec!["changed"],
        "{}",
        execution.to_text()
    );
    assert_eq!(emu.groups_of(&eni).await, vec![quarantine]);
}

#[tokio::test]
async fn tracked_connections_go_through_allow_all() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let quarantine = emu.group(&net, "quarantine", false).await;
    let open = emu.allow_all_group(&net, "allow-all").await;
    let (instance, eni) = emu.instance(&net, &[&app]).await;

    let params = json!({"security_group": quarantine, "close_tracked_connections": true, "allow_all_group": open});
    let plan = plan(summary(&instance, &finding_id()), &[("isolate", params)]);
    let execution = execute(&plan, &emu.clients, &options()).await;
    assert_eq!(
        statuses(&execution),
        vec!["changed"],
        "{}",
        execution.to_text()
    );
    let calls = &execution.outcomes[0].calls;
    let groups: Vec<&serde_json::Value> = calls
        .iter()
        .skip(1)
        .map(|call| &call.params["Groups"])
        .collect();
    assert_eq!(groups, vec![&json!([open]), &json!([quarantine])]);
    assert_eq!(emu.groups_of(&eni).await, vec![quarantine]);
    assert_eq!(emu.tags_of(&eni).await.get(RECORD), Some(&app));
}

#[tokio::test]
async fn allow_all_group_must_be_open() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let quarantine = emu.group(&net, "quarantine", false).await;
    let egress_only = emu.group(&net, "egress-only", true).await;
    let (instance, eni) = emu.instance(&net, &[&app]).await;

    let params = json!({"security_group": quarantine, "close_tracked_connections": true, "allow_all_group": egress_only});
    let plan = plan(summary(&instance, &finding_id()), &[("isolate", params)]);
    let execution = execute(&plan, &emu.clients, &options()).await;
    let Status::Failed { code, .. } = &execution.outcomes[0].status else {
        panic!("expected a failure: {}", execution.to_text());
    };
    assert_eq!(code, "allow_all_group_not_open");
    assert_eq!(emu.groups_of(&eni).await, vec![app]);
}

#[tokio::test]
async fn missing_instance_is_skipped() {
    let Some(emu) = emulator() else { return };
    let plan = plan(
        summary("i-0123456789abcdef0", &finding_id()),
        &[
            ("isolate", json!({"security_group": "sg-0123456789abcdef0"})),
            ("snapshot", json!({})),
            ("tag", json!({"tags": {"cordon:status": "quarantined"}})),
        ],
    );
    let execution = execute(&plan, &emu.clients, &options()).await;
    assert_eq!(
        statuses(&execution),
        vec!["skipped", "skipped", "skipped"],
        "{}",
        execution.to_text()
    );
    assert!(!execution.failed());
    let Status::Skipped { reason } = &execution.outcomes[0].status else {
        unreachable!()
    };
    assert!(reason.contains("does not exist"), "{reason}");
    assert!(
        emu.counter.writes().is_empty(),
        "{:?}",
        emu.counter.counts()
    );
}

#[tokio::test]
async fn finding_from_another_account_fails_and_changes_nothing() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let quarantine = emu.group(&net, "quarantine", false).await;
    let (instance, eni) = emu.instance(&net, &[&app]).await;

    let mut finding = summary(&instance, &finding_id());
    finding.account_id = Some("444455556666".to_owned());
    let plan = plan(
        finding,
        &[
            ("isolate", json!({"security_group": quarantine})),
            ("snapshot", json!({})),
        ],
    );
    let execution = execute(&plan, &emu.clients, &options()).await;

    assert!(execution.failed(), "{}", execution.to_text());
    for outcome in &execution.outcomes {
        let Status::Failed { code, message } = &outcome.status else {
            panic!("expected a failure: {}", execution.to_text());
        };
        assert_eq!(code, "other_account");
        assert!(
            message.contains("444455556666") && message.contains(common::ACCOUNT),
            "{message}"
        );
    }
    assert_eq!(
        emu.counter.total(),
        0,
        "no EC2 call is made for another account's finding: {:?}",
        emu.counter.counts()
    );
    assert_eq!(emu.groups_of(&eni).await, vec![app]);
}

#[tokio::test]
async fn recorded_account_wins_over_sts() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let quarantine = emu.group(&net, "quarantine", false).await;
    let (instance, eni) = emu.instance(&net, &[&app]).await;

    // A recorded account is used as is; without one, STS names the emulator's account.
    emu.clients.set_caller_account("999999999999");
    let plan = plan(
        summary(&instance, &finding_id()),
        &[("isolate", json!({"security_group": quarantine}))],
    );
    let execution = execute(&plan, &emu.clients, &options()).await;
    assert_eq!(
        statuses(&execution),
        vec!["failed"],
        "{}",
        execution.to_text()
    );
    assert_eq!(emu.groups_of(&eni).await, vec![app]);

    let fresh = common::emulator().unwrap();
    let execution = execute(&plan, &fresh.clients, &options()).await;
    assert_eq!(
        statuses(&execution),
        vec!["changed"],
        "{}",
        execution.to_text()
    );
    assert_eq!(emu.groups_of(&eni).await, vec![quarantine]);
}

#[tokio::test]
async fn second_isolate_with_other_groups_is_skipped() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let first = emu.group(&net, "quarantine-a", false).await;
    let second = emu.group(&net, "quarantine-b", false).await;
    let (instance, eni) = emu.instance(&net, &[&app]).await;

    let mut plan = plan(
        summary(&instance, &finding_id()),
        &[("isolate", json!({"security_group": first}))],
    );
    let mut other_rule = plan.matched[0].clone();
    other_rule.rule_id = "other-rule".to_owned();
    other_rule.actions[0].params = json!({"security_group": second});
    // The same group written as a list has the same effect, so it runs and finds it done.
    let mut same_rule = plan.matched[0].clone();
    same_rule.rule_id = "same-groups-rule".to_owned();
    same_rule.actions[0].params = json!({"security_groups": [first]});
    plan.matched.push(other_rule);
    plan.matched.push(same_rule);
    let execution = execute(&plan, &emu.clients, &options()).await;

    assert_eq!(
        statuses(&execution),
        vec!["changed", "skipped", "already_done"],
        "{}",
        execution.to_text()
    );
    let Status::Skipped { reason } = &execution.outcomes[1].status else {
        unreachable!()
    };
    assert!(reason.contains("`test-rule`"), "{reason}");
    assert_eq!(emu.groups_of(&eni).await, vec![first]);
    assert_eq!(emu.tags_of(&eni).await.get(RECORD), Some(&app));
}

#[tokio::test]
async fn failed_isolate_falls_back_to_the_next() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let open = emu.group(&net, "open-quarantine", true).await;
    let closed = emu.group(&net, "quarantine", false).await;
    let (instance, eni) = emu.instance(&net, &[&app]).await;

    let mut plan = plan(
        summary(&instance, &finding_id()),
        &[
            ("isolate", json!({"security_group": open})),
            (
                "tag",
                json!({"tags": {"cordon:finding-type": "test"}, "containment_status": "cordon:status"}),
            ),
        ],
    );
    let mut fallback = plan.matched[0].clone();
    fallback.rule_id = "fallback-rule".to_owned();
    fallback.actions.truncate(1);
    fallback.actions[0].params = json!({"security_group": closed});
    plan.matched.push(fallback);
    let execution = execute(&plan, &emu.clients, &options()).await;

    assert_eq!(
        statuses(&execution),
        vec!["failed", "changed", "changed"],
        "{}",
        execution.to_text()
    );
    assert_eq!(emu.groups_of(&eni).await, vec![closed]);
    let tags = emu.tags_of(&instance).await;
    assert_eq!(
        tags.get("cordon:status").map(String::as_str),
        Some("quarantined")
    );
}

#[tokio::test]
async fn release_in_a_plan_that_isolates_is_skipped() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let quarantine = emu.group(&net, "quarantine", false).await;
    let (instance, eni) = emu.instance(&net, &[&app]).await;

    let mut plan = plan(summary(&instance, &finding_id()), &[("release", json!({}))]);
    let mut isolating = plan.matched[0].clone();
    isolating.rule_id = "isolating-rule".to_owned();
    isolating.actions[0].action = "isolate".to_owned();
    isolating.actions[0].params = json!({"security_group": quarantine});
    plan.matched.push(isolating);
    let execution = execute(&plan, &emu.clients, &options()).await;

    assert_eq!(
        statuses(&execution),
        vec!["skipped", "changed"],
        "{}",
        execution.to_text()
    );
    let Status::Skipped { reason } = &execution.outcomes[0].status else {
        unreachable!()
    };
    assert!(reason.contains("`isolating-rule`"), "{reason}");
    assert_eq!(emu.groups_of(&eni).await, vec![quarantine]);
}

#[tokio::test]
async fn malformed_instance_id_fails_without_calls() {
    let Some(emu) = emulator() else { return };
    let plan = plan(
        summary("i-../../x\n", &finding_id()),
        &[("isolate", json!({"security_group": "sg-0123456789abcdef0"}))],
    );
    let execution = execute(&plan, &emu.clients, &options()).await;
    let Status::Failed { code, message } = &execution.outcomes[0].status else {
        panic!("expected a failure: {}", execution.to_text());
    };
    assert_eq!(code, "invalid_instance_id");
    assert!(message.contains("`i-../../x\\n`"), "{message}");
    assert_eq!(emu.counter.total(), 0, "{:?}", emu.counter.counts());
}

#[tokio::test]
async fn terminated_instance_is_skipped() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let quarantine = emu.group(&net, "quarantine", false).await;
    let (instance, _) = emu.instance(&net, &[&app]).await;
    emu.terminate(&instance).await;

    let plan = plan(
        summary(&instance, &finding_id()),
        &[("isolate", json!({"security_group": quarantine}))],
    );
    let execution = execute(&plan, &emu.clients, &options()).await;
    let Status::Skipped { reason } = &execution.outcomes[0].status else {
        panic!("expected a skip: {}", execution.to_text());
    };
    assert!(reason.contains("terminated"), "{reason}");
}

#[tokio::test]
async fn release_without_record_changes_nothing() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let (instance, eni) = emu.instance(&net, &[&app]).await;

    let outcome = release_instance(&emu.clients, &instance, None, None, false).await;
    assert_eq!(outcome.status, Status::AlreadyDone, "{}", outcome.to_text());
    assert_eq!(emu.groups_of(&eni).await, vec![app]);
    assert!(
        emu.counter.writes().is_empty(),
        "{:?}",
        emu.counter.counts()
    );

    let missing = release_instance(&emu.clients, "i-0123456789abcdef0", None, None, false).await;
    assert!(
        matches!(missing.status, Status::Skipped { .. }),
        "{}",
        missing.to_text()
    );
}

#[tokio::test]
async fn release_dry_run_lists_calls() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let quarantine = emu.group(&net, "quarantine", false).await;
    let (instance, eni) = emu.instance(&net, &[&app]).await;
    let plan = plan(
        summary(&instance, &finding_id()),
        &[("isolate", json!({"security_group": quarantine}))],
    );
    execute(&plan, &emu.clients, &options()).await;
    emu.counter.reset();

    let outcome = release_instance(&emu.clients, &instance, None, None, true).await;
    assert_eq!(outcome.status, Status::WouldChange, "{}", outcome.to_text());
    let operations: Vec<&str> = outcome
        .calls
        .iter()
        .map(|call| call.operation.as_str())
        .collect();
    assert_eq!(
        operations,
        vec!["ModifyNetworkInterfaceAttribute", "DeleteTags"]
    );
    assert_eq!(emu.groups_of(&eni).await, vec![quarantine]);
    assert!(
        emu.counter.writes().is_empty(),
        "{:?}",
        emu.counter.counts()
    );
}

#[tokio::test]
async fn containment_status_tag_tells_the_truth() {
    let Some(emu) = emulator() else { return };
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let quarantine = emu.group(&net, "quarantine", false).await;
    let leaky = emu.group(&net, "leaky", true).await;
    let tag = json!({"tags": {"cordon:finding-id": "x"}, "containment_status": "cordon:status"});

    let (contained, _) = emu.instance(&net, &[&app]).await;
    let isolated = plan(
        summary(&contained, &finding_id()),
        &[
            ("isolate", json!({"security_group": quarantine})),
            ("tag", tag.clone()),
        ],
    );
    let execution = execute(&isolated, &emu.clients, &options()).await;
    assert_eq!(
        statuses(&execution),
        vec!["changed", "changed"],
        "{}",
        execution.to_text()
    );
    let tags = emu.tags_of(&contained).await;
    assert_eq!(
        tags.get("cordon:status").map(String::as_str),
        Some("quarantined")
    );

    let (exposed, eni) = emu.instance(&net, &[&app]).await;
    let refused = plan(
        summary(&exposed, &finding_id()),
        &[
            ("isolate", json!({"security_group": leaky})),
            ("tag", tag.clone()),
        ],
    );
    let execution = execute(&refused, &emu.clients, &options()).await;
    assert_eq!(
        statuses(&execution),
        vec!["failed", "changed"],
        "{}",
        execution.to_text()
    );
    let tags = emu.tags_of(&exposed).await;
    assert_eq!(
        tags.get("cordon:status").map(String::as_str),
        Some("containment-failed")
    );
    assert_eq!(tags.get("cordon:finding-id").map(String::as_str), Some("x"));
    assert_eq!(emu.groups_of(&eni).await, vec![app.clone()]);

    let (untouched, _) = emu.instance(&net, &[&app]).await;
    let tag_only = plan(summary(&untouched, &finding_id()), &[("tag", tag)]);
    let execution = execute(&tag_only, &emu.clients, &options()).await;
    assert_eq!(
        statuses(&execution),
        vec!["changed"],
        "{}",
        execution.to_text()
    );
    let tags = emu.tags_of(&untouched).await;
    assert_eq!(tags.get("cordon:status"), None);
}
