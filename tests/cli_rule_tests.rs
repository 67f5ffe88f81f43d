//! The `cordon test` runner, run as a process on small rule and test files.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const RULES: &str = r#"env: [QUARANTINE_SG]
rules:
  - id: tor-quarantine
    match:
      type: "UnauthorizedAccess:EC2/TorClient"
      all:
        - { path: "$.severity", gte: 7 }
    actions:
      - isolate: { security_group: "${env.QUARANTINE_SG}" }
      - tag: { tags: { "cordon:finding-id": "${finding.id}" } }
"#;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tor-client.json")
}

/// Writes `rules.yaml` and `tests/cases.yaml` into a new folder.
fn project(cases: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), RULES).unwrap();
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    let cases = cases.replace("FIXTURE", &fixture().display().to_string());
    std::fs::write(dir.path().join("tests/cases.yaml"), cases).unwrap();
    dir
}

fn cordon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(args)
        .env_remove("QUARANTINE_SG")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const PASSING: &str = r#"env: { QUARANTINE_SG: sg-0123456789abcdef0 }
cases:
  - name: tor client matches
    finding: FIXTURE
    expect:
      matched: [tor-quarantine]
      actions:
        tor-quarantine:
          - isolate: { security_group: sg-0123456789abcdef0 }
          - tag: { tags: { "cordon:finding-id": a4c2e9f07b1d4e8c9f3a6b5d2e1c0f98 } }
  - name: low severity does not match
    finding: FIXTURE
    set: { "$.severity": 3 }
    expect:
      matched: []
"#;

#[test]
fn passing_suite_exits_zero() {
    let dir = project(PASSING);
    let output = cordon(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(
        stdout(&output).ends_with("2 passed, 0 failed\n"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn failing_case_shows_line_reason_and_diff() {
    let cases = PASSING
        .replace(
            "sg-0123456789abcdef0 }\n          - tag",
            "sg-0fedcba9876543210 }\n          - tag",
        )
        .replace("severity\": 3", "severity\": 9");
    let dir = project(&cases);
    let output = cordon(&["test", dir.path().to_str().unwrap()]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("tests/cases.yaml:3:5 tor client matches"),
        "{text}"
    );
    assert!(
        text.contains("the actions of rule `tor-quarantine` differ"),
        "{text}"
    );
    assert!(
        text.contains("-         security_group: \"sg-0fedcba9876543210\""),
        "{text}"
    );
    assert!(
        text.contains("+         security_group: \"sg-0123456789abcdef0\""),
        "{text}"
    );
    assert!(
        text.contains("tests/cases.yaml:11:5 low severity does not match"),
        "{text}"
    );
    assert!(
        text.contains("rule `tor-quarantine` matched but the case does not expect it"),
        "{text}"
    );
    assert!(text.ends_with("0 passed, 2 failed\n"), "{text}");
}

#[test]
fn unmatched_rule_is_explained() {
    let cases = PASSING.replace(
        "severity\": 3 }\n    expect:\n      matched: []",
        "severity\": 3 }\n    expect:\n      matched: [tor-quarantine]",
    );
    let dir = project(&cases);
    let text = stdout(&cordon(&["test", dir.path().to_str().unwrap()]));
    assert!(
        text.contains("rule `tor-quarantine` did not match: match.all[0]"),
        "{text}"
    );
    assert!(text.contains("rules.yaml:7:11"), "{text}");
    assert!(text.contains("saw 3"), "{text}");
}

#[test]
fn syntax_error_in_case_file_is_located() {
    let dir = project("cases:\n  - name: broken\n    finding: [unclosed\n");
    let output = cordon(&["test", dir.path().to_str().unwrap()]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(text.contains("tests/cases.yaml:"), "{text}");
    assert!(text.contains("invalid YAML"), "{text}");
    assert!(
        text.contains("1 error stopped test files from running"),
        "{text}"
    );
}

#[test]
fn missing_fixture_is_located() {
    let cases = "env: { QUARANTINE_SG: sg-0123456789abcdef0 }\ncases:\n  - name: gone\n    finding: missing.json\n    expect: { matched: [] }\n";
    let dir = project(cases);
    let output = cordon(&["test", dir.path().to_str().unwrap()]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(text.contains("tests/cases.yaml:4:14"), "{text}");
    assert!(text.contains("cannot read fixture"), "{text}");
}

#[test]
fn filter_selects_cases() {
    let dir = project(PASSING);
    let output = cordon(&[
        "test",
        dir.path().to_str().unwrap(),
        "--filter",
        "low severity",
    ]);
    assert!(
        stdout(&output).ends_with("1 passed, 0 failed\n"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn json_output_parses_back() {
    let cases = PASSING.replace("severity\": 3", "severity\": 9");
    let dir = project(&cases);
    let output = cordon(&["test", dir.path().to_str().unwrap(), "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["passed"], 1);
    assert_eq!(report["failed"], 1);
    assert_eq!(report["cases"][0]["status"], "passed");
    assert_eq!(report["cases"][1]["status"], "failed");
    assert!(
        report["cases"][1]["location"]
            .as_str()
            .unwrap()
            .ends_with("tests/cases.yaml:11:5")
    );
    assert!(
        report["cases"][1]["diff"]["actual"]
            .as_str()
            .unwrap()
            .contains("tor-quarantine")
    );
}

#[test]
fn junit_output_parses_back() {
    let cases = PASSING.replace("severity\": 3", "severity\": 9");
    let dir = project(&cases);
    let output = cordon(&["test", dir.path().to_str().unwrap(), "--format", "junit"]);
    let text = stdout(&output);
    let document = roxmltree::Document::parse(&text).unwrap();
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("2"));
    assert_eq!(root.attribute("failures"), Some("1"));
    let cases: Vec<_> = document
        .descendants()
        .filter(|node| node.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 2);
    assert_eq!(cases[0].attribute("name"), Some("tor client matches"));
    assert!(
        cases[0]
            .children()
            .all(|child| !child.has_tag_name("failure"))
    );
    let failure = cases[1]
        .children()
        .find(|child| child.has_tag_name("failure"))
        .unwrap();
    assert!(
        failure
            .attribute("message")
            .unwrap()
            .contains("matched but the case does not expect it")
    );
}

#[test]
fn coverage_lists_unexercised_rules_and_branches() {
    let rules = RULES.replace(
        "        - { path: \"$.severity\", gte: 7 }\n",
        "        - { path: \"$.severity\", gte: 7 }\n      any:\n        - { path: \"$.service.resourceRole\", equals: ACTOR }\n        - { path: \"$.service.resourceRole\", equals: NOBODY }\n",
    ) + "  - id: never\n    match: { type: \"Other:EC2/Type\" }\n    actions: [ { tag: { tags: { a: b } } } ]\n";
    let dir = project(&PASSING.replace("      actions:\n        tor-quarantine:\n          - isolate: { security_group: sg-0123456789abcdef0 }\n          - tag: { tags: { \"cordon:finding-id\": a4c2e9f07b1d4e8c9f3a6b5d2e1c0f98 } }\n", ""));
    std::fs::write(dir.path().join("rules.yaml"), rules).unwrap();
    let output = cordon(&["test", dir.path().to_str().unwrap(), "--coverage"]);
    let text = stdout(&output);
    assert!(
        text.contains("coverage: 1 of 2 rules matched in a case, 1 of 2 `any` conditions held"),
        "{text}"
    );
    assert!(text.contains("rule never matched: never ("), "{text}");
    assert!(
        text.contains("`any` condition never held: tor-quarantine match.any[1]"),
        "{text}"
    );
}

#[test]
fn shipped_rules_pass_and_are_all_covered() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let output = cordon(&["test", rules.to_str().unwrap(), "--coverage"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(!text.contains("never matched"), "{text}");
    assert!(!text.contains("never held"), "{text}");
}
