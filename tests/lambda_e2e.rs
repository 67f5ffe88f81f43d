//! End-to-end tests of the Lambda function: the real `bootstrap` under the local Runtime API
//! (`tests/support/runtime_api.py`), against the EC2 emulator. Each test creates its own VPC
//! and instance, so the tests can run in parallel on one emulator.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/lambda_harness.rs"]
mod harness;

use harness::{Instance, action_statuses, emulator, run_function, scratch_dir};
use serde_json::Value;

fn quarantine_env(instance: &Instance) -> Vec<(&'static str, String)> {
    vec![("QUARANTINE_SG", instance.quarantine_group().to_owned())]
}

fn with_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect()
}

fn resource_ids(outcome: &Value) -> Vec<String> {
    let mut ids: Vec<String> = outcome["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|resource| resource["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn outcome<'a>(report: &'a Value, action: &str) -> &'a Value {
    report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|outcome| outcome["action"] == action)
        .unwrap_or_else(|| panic!("no `{action}` outcome in {report:#}"))
}

#[test]
fn tor_client_contains_every_interface() {
    let Some(_) = emulator() else { return };
    let dir = scratch_dir("tor-client");
    let instance = Instance::create(&dir, &["--enis", "3", "--volumes", "2"]);
    let event = instance.event("tor-client.json", None);
    let env = quarantine_env(&instance);
    let mut env = with_refs(&env);
    env.push(("AWS_LAMBDA_LOG_FORMAT", "JSON"));

    let run = run_function(&dir, &[event], &env, &[]);

    let report = run.response(0);
    assert_eq!(report["status"], "executed");
    assert_eq!(report["finding"]["instance_id"], instance.id());
    assert_eq!(
        report["matched_rules"][0]["rule_id"],
        "ec2-tor-client-quarantine"
    );
    let statuses = action_statuses(report);
    let expected = [
        ("isolate", "changed"),
        ("snapshot", "changed"),
        ("tag", "changed"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(action, status)| ((*action).to_owned(), (*status).to_owned()))
        .collect();
    assert_eq!(statuses, expected);

    let mut interfaces: Vec<String> = instance.ids["network_interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    interfaces.sort();
    assert_eq!(resource_ids(outcome(report, "isolate")), interfaces);
    assert_eq!(
        resource_ids(outcome(report, "snapshot")).len(),
        3,
        "root volume and two more"
    );

    let state = instance.describe();
    let quarantine = vec![instance.quarantine_group().to_owned()];
    assert_eq!(
        state.groups(),
        vec![quarantine.clone(), quarantine.clone(), quarantine]
    );
    let finding_id = report["finding"]["id"].as_str().unwrap();
    assert_eq!(state.tag("cordon:finding-id"), Some(finding_id));
    assert_eq!(state.tag("cordon:status"), Some("quarantined"));
    assert_eq!(state.snapshots().len(), state.volume_count());
    for snapshot in state.snapshots() {
        assert_eq!(
            snapshot["tags"]["cordon:finding-id"], finding_id,
            "{snapshot}"
        );
    }

    let log_lines: Vec<&str> = run.log.lines().filter(|line| !line.is_empty()).collect();
    assert!(!log_lines.is_empty());
    for line in &log_lines {
        let entry: Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(entry["level"].is_string(), "{line}");
    }
    assert!(
        log_lines
            .iter()
            .any(|line| line.contains(finding_id) && line.contains(instance.id())),
        "no log line names the finding and the instance:\n{}",
        run.log
    );
    assert!(
        !run.log.contains("\"testing\""),
        "a credential value appears in the log"
    );
}

#[test]
fn same_event_twice_is_already_done() {
    let Some(_) = emulator() else { return };
    let dir = scratch_dir("twice");
    let instance = Instance::create(&dir, &["--enis", "2", "--volumes", "1"]);
    let event = instance.event("tor-client.json", None);
    let env = quarantine_env(&instance);

    let run = run_function(&dir, &[event.clone(), event], &with_refs(&env), &[]);

    assert_eq!(run.response(0)["status"], "executed");
    let second = run.response(1);
    assert_eq!(second["status"], "executed");
    for (action, status) in action_statuses(second) {
        assert_eq!(status, "already_done", "second `{action}` outcome");
    }
    let state = instance.describe();
    assert_eq!(
        state.snapshots().len(),
        state.volume_count(),
        "one snapshot per volume"
    );
}

#[test]
fn sqs_batch_fails_only_malformed_record() {
    let Some(_) = emulator() else { return };
    let dir = scratch_dir("sqs");
    let target = Instance::create(&dir, &["--enis", "2", "--volumes", "0"]);
    let bystander = Instance::create(&dir, &["--enis", "1", "--volumes", "0"]);
    let before = bystander.describe();
    let good = target.event("tor-client.json", None);
    let sample = bystander.event("sample-tor-client.json", None);
    let malformed = dir.join("malformed.json");
    std::fs::write(
        &malformed,
        r#"{"detail-type": "GuardDuty Finding", "source": "aws.guardduty", "detail": {"id": 7"#,
    )
    .unwrap();
    let batch = target.sqs_event(&[good, malformed, sample]);
    let records: Value = serde_json::from_str(&std::fs::read_to_string(&batch).unwrap()).unwrap();
    let malformed_id = records["Records"][1]["messageId"].as_str().unwrap();

    let env = quarantine_env(&target);
    let run = run_function(&dir, &[batch], &with_refs(&env), &[]);

    let response = run.response(0);
    let failures: Vec<&str> = response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|failure| failure["itemIdentifier"].as_str().unwrap())
        .collect();
    assert_eq!(failures, [malformed_id]);
    assert_eq!(
        response.as_object().unwrap().len(),
        1,
        "only batchItemFailures: {response}"
    );
    let quarantine = vec![target.quarantine_group().to_owned()];
    assert_eq!(
        target.describe().groups(),
        vec![quarantine.clone(), quarantine]
    );
    assert_eq!(
        bystander.describe(),
        before,
        "the sample finding changed its instance"
    );
    assert!(
        run.log.contains("$.Records[1].body"),
        "log does not name the record:\n{}",
        run.log
    );
}

#[test]
fn access_key_and_status_events_change_nothing() {
    let Some(_) = emulator() else { return };
    let dir = scratch_dir("ignored");
    let instance = Instance::create(&dir, &["--enis", "1", "--volumes", "0"]);
    let before = instance.describe();
    let access_key = instance.event("access-key.json", None);
    let status = instance.event("runtime-unhealthy.json", None);
    let env = quarantine_env(&instance);

    let run = run_function(&dir, &[access_key, status], &with_refs(&env), &[]);

    let first = run.response(0);
    assert_eq!(first["status"], "no_rule_matched");
    assert_eq!(first["finding"]["resource_type"], "AccessKey");
    assert_eq!(first["actions"].as_array().unwrap().len(), 0);
    let second = run.response(1);
    assert_eq!(second["status"], "skipped");
    assert!(
        second["reason"]
            .as_str()
            .unwrap()
            .contains("Runtime Protection Unhealthy")
    );
    assert_eq!(instance.describe(), before);
    assert!(run.log.contains("no rule matched"), "{}", run.log);
    assert!(run.log.contains("skipped"), "{}", run.log);
}

#[test]
fn quarantine_group_with_egress_fails() {
    let Some(_) = emulator() else { return };
    let dir = scratch_dir("egress");
    let instance = Instance::create(
        &dir,
        &["--enis", "2", "--volumes", "0", "--quarantine-egress"],
    );
    let before = instance.describe();
    let event = instance.event("tor-client.json", None);
    let env = quarantine_env(&instance);

    let run = run_function(&dir, &[event], &with_refs(&env), &[]);

    let error = run.error(0);
    assert_eq!(error["errorType"], "cordon.ActionFailed");
    let message = error["errorMessage"].as_str().unwrap();
    assert!(message.contains("action `isolate`"), "{message}");
    assert!(message.contains("egress_not_empty"), "{message}");
    assert!(message.contains(instance.quarantine_group()), "{message}");
    let after = instance.describe();
    assert_eq!(after.groups(), before.groups(), "network access changed");
    assert_eq!(after.tag("cordon:status"), Some("containment-failed"));
}

#[test]
fn finding_from_another_account_fails() {
    let Some(_) = emulator() else { return };
    let dir = scratch_dir("other-account");
    let instance = Instance::create(&dir, &["--enis", "1", "--volumes", "0"]);
    let before = instance.describe();
    let path = instance.event("tor-client.json", None);
    let mut event: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    event["account"] = "444455556666".into();
    event["detail"]["accountId"] = "444455556666".into();
    std::fs::write(&path, serde_json::to_vec(&event).unwrap()).unwrap();
    let env = quarantine_env(&instance);

    let run = run_function(&dir, &[path], &with_refs(&env), &[]);

    let error = run.error(0);
    assert_eq!(error["errorType"], "cordon.ActionFailed");
    let message = error["errorMessage"].as_str().unwrap();
    assert!(message.contains("other_account"), "{message}");
    assert!(message.contains("444455556666"), "{message}");
    assert_eq!(instance.describe(), before, "the instance changed");
}

#[test]
fn short_deadline_leaves_actions_not_started() {
    let Some(_) = emulator() else { return };
    let dir = scratch_dir("deadline");
    let instance = Instance::create(&dir, &["--enis", "1", "--volumes", "0"]);
    let before = instance.describe();
    let event = instance.event("tor-client.json", None);
    let env = quarantine_env(&instance);

    let run = run_function(&dir, &[event], &with_refs(&env), &["--timeout-ms", "2000"]);

    let error = run.error(0);
    assert_eq!(error["errorType"], "cordon.ActionFailed");
    let message = error["errorMessage"].as_str().unwrap();
    for action in ["isolate", "snapshot", "tag"] {
        assert!(message.contains(&format!("action `{action}`")), "{message}");
    }
    assert!(message.contains("was not started"), "{message}");
    assert_eq!(instance.describe(), before);
}

#[test]
fn invalid_rule_fails_initialisation() {
    let dir = scratch_dir("invalid-rules");
    let rules = dir.join("broken.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - id: broken\n    match:\n      typo: \"UnauthorizedAccess:EC2/TorClient\"\n    actions: []\n",
    )
    .unwrap();
    let event = harness::repo_root().join("tests/fixtures/tor-client.json");
    let rules_value = rules.display().to_string();
    let env = [
        ("CORDON_RULES", rules_value.as_str()),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
    ];

    let run = run_function(&dir, &[event], &env, &["--wait", "30"]);

    let init_error = &run.record["init_error"];
    assert_eq!(
        init_error["body"]["errorType"], "cordon.InvalidRules",
        "{:#}",
        run.record
    );
    let location = format!("{}:4:7", rules.display());
    let message = init_error["body"]["errorMessage"].as_str().unwrap();
    assert!(message.contains(&location), "{message}");
    assert!(
        run.log.contains(&location),
        "stderr lacks {location}:\n{}",
        run.log
    );
    assert_eq!(run.invocations()[0]["result"], "none");
    assert_ne!(run.record["exit_code"], 0);
}

#[test]
fn missing_variable_fails_initialisation() {
    let dir = scratch_dir("missing-variable");
    let event = harness::repo_root().join("tests/fixtures/tor-client.json");
    let env = [("AWS_ENDPOINT_URL", "http://127.0.0.1:9")];

    let run = run_function(&dir, &[event], &env, &["--wait", "30"]);

    let init_error = &run.record["init_error"];
    assert_eq!(
        init_error["body"]["errorType"], "cordon.MissingEnvironment",
        "{:#}",
        run.record
    );
    let message = init_error["body"]["errorMessage"].as_str().unwrap();
    let rules =
        std::fs::read_to_string(harness::repo_root().join("rules/quarantine.yaml")).unwrap();
    let env_line = rules
        .lines()
        .position(|line| line.starts_with("env: [QUARANTINE_SG]"))
        .unwrap()
        + 1;
    let location = format!("quarantine.yaml:{env_line}:7");
    assert!(message.contains(&location), "{message}");
    assert!(message.contains("`QUARANTINE_SG`"), "{message}");
}
