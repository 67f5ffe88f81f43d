//! `cordon run` and `cordon release` end to end: rules file, finding file, the binary, and the
//! EC2 emulator. The binary gets dummy credentials and the emulator's URL, never real AWS.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

#[path = "../actions/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use common::{Emulator, emulator, finding_id};

const RULES: &str = r#"
env: [QUARANTINE_SG]
rules:
  - id: tor-quarantine
    match:
      type: "UnauthorizedAccess:EC2/TorClient"
      resource: Instance
    actions:
      - isolate: { security_group: "${env.QUARANTINE_SG}" }
      - snapshot: { description: "cordon ${finding.type} ${finding.id}" }
      - tag:
          tags:
            "cordon:finding-id": "${finding.id}"
"#;

/// Creates a scratch folder for one test under Cargo's temporary directory.
fn scratch(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("ec2-cli-{name}-{}", finding_id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes the rules and a TorClient finding for `instance` into `dir`; returns their paths.
fn inputs(dir: &Path, rules: &str, instance: &str) -> (PathBuf, PathBuf) {
    let rules_path = dir.join("rules.yaml");
    std::fs::write(&rules_path, rules).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tor-client.json");
    let mut event: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    event["detail"]["id"] = json!(finding_id());
    event["detail"]["region"] = json!(common::REGION);
    event["detail"]["resource"]["instanceDetails"]["instanceId"] = json!(instance);
    let finding_path = dir.join("finding.json");
    std::fs::write(&finding_path, event.to_string()).unwrap();
    (rules_path, finding_path)
}

/// Runs the binary with dummy credentials and no access to instance metadata.
fn cordon(args: &[&str], quarantine: &str) -> Output {
    let endpoint = common::endpoint().unwrap();
    Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(args)
        .args(["--endpoint-url", &endpoint])
        .env("QUARANTINE_SG", quarantine)
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", common::REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap()
}

fn json_output(output: &Output) -> Value {
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&text).unwrap_or_else(|error| {
        panic!(
            "stdout is not JSON ({error}): {text}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn statuses(result: &Value) -> Vec<String> {
    result["execution"]["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|outcome| outcome["status"].as_str().unwrap().to_owned())
        .collect()
}

async fn instance(emu: &Emulator, quarantine_egress: bool) -> (String, String, String, String) {
    let net = emu.network().await;
    let app = emu.group(&net, "app", true).await;
    let quarantine = emu.group(&net, "quarantine", quarantine_egress).await;
    let (instance, eni) = emu.instance(&net, &[&app]).await;
    (instance, eni, app, quarantine)
}

#[tokio::test]
async fn run_then_release() {
    let Some(emu) = emulator() else { return };
    let (instance, eni, app, quarantine) = instance(&emu, false).await;
    let (rules, finding) = inputs(&scratch("run"), RULES, &instance);
    let rules = rules.to_str().unwrap();
    let finding = finding.to_str().unwrap();

    let dry = cordon(
        &[
            "run",
            "--rules",
            rules,
            "--dry-run",
            "--format",
            "json",
            finding,
        ],
        &quarantine,
    );
    assert_eq!(
        dry.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let dry = json_output(&dry);
    assert_eq!(statuses(&dry), vec!["would_change"; 3]);
    assert_eq!(dry["execution"]["dry_run"], json!(true));
    assert_eq!(emu.groups_of(&eni).await, vec![app.clone()]);

    let run = cordon(
        &["run", "--rules", rules, "--format", "json", finding],
        &quarantine,
    );
    assert_eq!(
        run.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(statuses(&json_output(&run)), vec!["changed"; 3]);
    assert_eq!(emu.groups_of(&eni).await, vec![quarantine.clone()]);

    let again = cordon(&["run", "--rules", rules, finding], &quarantine);
    assert_eq!(again.status.code(), Some(0));
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(
        text.contains("isolate (rule tor-quarantine): already_done"),
        "{text}"
    );

    let release = cordon(
        &["release", "--instance", &instance, "--format", "json"],
        &quarantine,
    );
    assert_eq!(
        release.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&release.stderr)
    );
    assert_eq!(json_output(&release)["status"], json!("changed"));
    assert_eq!(emu.groups_of(&eni).await, vec![app]);
}

#[tokio::test]
async fn failed_action_exits_one() {
    let Some(emu) = emulator() else { return };
    let (instance, eni, app, open_quarantine) = instance(&emu, true).await;
    let (rules, finding) = inputs(&scratch("fail"), RULES, &instance);

    let output = cordon(
        &[
            "run",
            "--rules",
            rules.to_str().unwrap(),
            "--format",
            "json",
            finding.to_str().unwrap(),
        ],
        &open_quarantine,
    );
    assert_eq!(output.status.code(), Some(1));
    let result = json_output(&output);
    assert_eq!(statuses(&result), vec!["failed", "changed", "changed"]);
    assert_eq!(
        result["execution"]["outcomes"][0]["code"],
        json!("egress_not_empty")
    );
    assert_eq!(emu.groups_of(&eni).await, vec![app]);
}

#[test]
fn misspelled_parameter_exits_two() {
    let dir = scratch("typo");
    let rules = RULES.replace("security_group:", "security_groupp:");
    let (rules, finding) = inputs(&dir, &rules, "i-0123456789abcdef0");
    let output = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args([
            "run",
            "--rules",
            rules.to_str().unwrap(),
            finding.to_str().unwrap(),
        ])
        .env("QUARANTINE_SG", "sg-0123456789abcdef0")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("security_groupp"), "{stderr}");
    assert!(
        stderr.contains("did you mean `security_group`?"),
        "{stderr}"
    );
}

#[test]
fn release_rejects_bad_instance_id() {
    let output = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(["release", "--instance", "web-1"])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid `--instance web-1`"), "{stderr}");
}

#[test]
fn release_rejects_reserved_status_tag() {
    for key in ["aws:cloudformation:stack-name", "cordon:original-groups"] {
        let output = Command::new(env!("CARGO_BIN_EXE_cordon"))
            .args([
                "release",
                "--instance",
                "i-0123456789abcdef0",
                "--status-tag",
                key,
            ])
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{key}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("invalid `--status-tag`"), "{stderr}");
    }
}
