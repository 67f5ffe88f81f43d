//! Snapshot tests of the rendered diagnostics for a folder of broken rule files.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;

use cordon_engine::source::SourceFile;
use cordon_engine::{LoadError, RuleSet};

fn broken_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/broken")
}

fn diagnostics_of(name: &str) -> cordon_engine::Diagnostics {
    let path = broken_dir().join(name);
    match RuleSet::load(&[path], common::catalog()) {
        Err(LoadError::Rules(diagnostics)) => diagnostics,
        Err(other) => panic!("{name}: expected rule errors, got {other}"),
        Ok(_) => panic!("{name}: loaded without errors"),
    }
}

/// Renders a broken file compiled under the name `broken/<name>`, so that neither the
/// text nor its line wrapping depends on where the repository is checked out.
fn render(name: &str) -> String {
    let text = std::fs::read_to_string(broken_dir().join(name)).unwrap();
    let source = SourceFile::new(format!("broken/{name}"), text);
    match RuleSet::from_sources(vec![source], common::catalog()) {
        Err(diagnostics) => diagnostics.render(),
        Ok(_) => panic!("{name}: compiled without errors"),
    }
}

#[test]
fn every_broken_file_renders() {
    let mut names: Vec<String> = std::fs::read_dir(broken_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        insta::assert_snapshot!(name.clone(), render(&name));
    }
}

#[test]
fn one_run_reports_every_file() {
    let Err(LoadError::Rules(all)) = RuleSet::load(&[broken_dir()], common::catalog()) else {
        panic!("the broken folder loaded");
    };
    let files: std::collections::BTreeSet<String> = all
        .0
        .iter()
        .map(|diagnostic| diagnostic.file.name.clone())
        .collect();
    assert_eq!(
        files.len(),
        std::fs::read_dir(broken_dir()).unwrap().count()
    );
}

#[test]
fn unknown_keys_suggest_the_right_name() {
    let diagnostics = diagnostics_of("unknown-keys.yaml");
    let messages: Vec<(String, Option<String>, usize, usize)> = diagnostics
        .0
        .iter()
        .map(|d| {
            (
                d.message.clone(),
                d.help.clone(),
                d.span.line,
                d.span.column,
            )
        })
        .collect();
    let expected = [
        (
            "unknown key `descripton` in rule",
            "did you mean `description`?",
            4,
            5,
        ),
        ("unknown key `typ` in `match`", "did you mean `type`?", 6, 7),
        ("`match` has no `type`", "", 6, 7),
        ("unknown operator `gtee`", "did you mean `gte`?", 8, 33),
        (
            "invalid parameter `security_groupp` for `isolate`",
            "",
            10,
            20,
        ),
        ("unknown action `quarantine`", "", 11, 9),
    ];
    for (message, help, line, column) in expected {
        let found = messages
            .iter()
            .find(|(text, ..)| text.starts_with(message))
            .unwrap_or_else(|| panic!("no diagnostic `{message}` in {messages:#?}"));
        assert!(
            found.1.clone().unwrap_or_default().contains(help),
            "help of `{message}`: {:?}",
            found.1
        );
        assert_eq!(
            (found.2, found.3),
            (line, column),
            "position of `{message}`"
        );
    }
    assert!(
        diagnostics
            .0
            .iter()
            .all(|d| d.rule_id.as_deref() == Some("typo-everywhere"))
    );
}

#[test]
fn credentials_cannot_be_declared() {
    let diagnostics = diagnostics_of("scripts.yaml");
    let forbidden = diagnostics
        .0
        .iter()
        .find(|d| d.message.contains("AWS_SECRET_ACCESS_KEY"))
        .expect("no diagnostic for the credential variable");
    assert_eq!((forbidden.span.line, forbidden.span.column), (1, 22));
}

#[test]
fn non_utf8_file_located_others_checked() {
    let dir = std::env::temp_dir().join(format!("cordon-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("latin1.yaml"),
        b"rules:\n  - id: caf\xe9\n    match: { type: x }\n",
    )
    .unwrap();
    std::fs::copy(
        broken_dir().join("bad-values.yaml"),
        dir.join("bad-values.yaml"),
    )
    .unwrap();
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain("rules: []\n".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    std::fs::write(dir.join("utf16.yaml"), utf16).unwrap();

    let result = RuleSet::load(std::slice::from_ref(&dir), common::catalog());
    std::fs::remove_dir_all(&dir).unwrap();

    let Err(LoadError::Rules(diagnostics)) = result else {
        panic!("expected rule errors");
    };
    let utf8: Vec<_> = diagnostics
        .0
        .iter()
        .filter(|d| d.message.contains("not valid UTF-8"))
        .collect();
    assert_eq!(utf8.len(), 2);
    assert!(utf8[0].file.name.ends_with("latin1.yaml"));
    assert_eq!((utf8[0].span.line, utf8[0].span.column), (2, 12));
    assert_eq!(utf8[0].help.as_deref(), Some("save rule files as UTF-8"));
    assert!(utf8[1].file.name.ends_with("utf16.yaml"));
    assert_eq!((utf8[1].span.line, utf8[1].span.column), (1, 1));
    assert!(
        utf8[1]
            .help
            .as_deref()
            .is_some_and(|help| help.contains("UTF-16")),
        "{:?}",
        utf8[1].help
    );
    assert!(
        diagnostics
            .0
            .iter()
            .any(|d| d.file.name.ends_with("bad-values.yaml")),
        "the other file was not checked"
    );
}

#[test]
fn unknown_ec2_types_warn_but_load() {
    let text = r#"rules:
  - id: typo
    match:
      type: ["UnauthorizedAccess:EC2/TorClinet", "Backdor:EC2/*", "Backdoor:EC2/*", "Recon:IAMUser/MaliciousIPCaller"]
    actions:
      - tag: { tags: { a: b } }
"#;
    let source = SourceFile::new("typo.yaml", text);
    let rules = RuleSet::from_sources(vec![source], common::catalog()).unwrap();
    assert_eq!(rules.rules().len(), 1, "a warning must not drop the rule");
    let warnings: Vec<(usize, usize, &str, Option<&str>)> = rules
        .warnings()
        .iter()
        .map(|w| {
            assert!(w.is_warning());
            (
                w.span.line,
                w.span.column,
                w.message.as_str(),
                w.help.as_deref(),
            )
        })
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert_eq!((warnings[0].0, warnings[0].1), (4, 14));
    assert!(
        warnings[0]
            .2
            .contains("`UnauthorizedAccess:EC2/TorClinet` is not a current GuardDuty EC2")
    );
    assert!(
        warnings[0]
            .3
            .unwrap()
            .starts_with("did you mean `UnauthorizedAccess:EC2/TorClient`?")
    );
    assert_eq!((warnings[1].0, warnings[1].1), (4, 50));
    assert!(warnings[1].2.contains("glob `Backdor:EC2/*` matches no"));
    assert!(
        rules.warnings()[0]
            .to_string()
            .contains("typo.yaml:4:14: warning: rule `typo`")
    );
}

#[test]
fn warnings_come_with_errors_and_are_counted_apart() {
    let text = r#"rules:
  - id: typo
    match: { type: "Recon:EC2/PortScan" }
    actions:
      - tag: { tags: { a: b } }
  - id: broken
    match: { type: "Recon:EC2/Portscan" }
    actions:
      - explode: {}
"#;
    let source = SourceFile::new("mixed.yaml", text);
    let Err(diagnostics) = RuleSet::from_sources(vec![source], common::catalog()) else {
        panic!("an unknown action must stop the load");
    };
    assert_eq!(diagnostics.0.len(), 2);
    assert_eq!(diagnostics.summary(), "1 error and 1 warning in rule files");
    assert!(diagnostics.render().contains("⚠ mixed.yaml:3:20: warning:"));
}

#[test]
fn unquoted_boolean_id_gets_a_quoting_hint() {
    let rule = |id: &str| {
        format!(
            "rules:\n  - id: {id}\n    match: {{ type: \"Recon:EC2/Portscan\" }}\n    actions:\n      - tag: {{ tags: {{ a: b }} }}\n"
        )
    };
    let source = SourceFile::new("true.yaml", rule("True"));
    let Err(diagnostics) = RuleSet::from_sources(vec![source], common::catalog()) else {
        panic!("a boolean id must not load");
    };
    let first = &diagnostics.0[0];
    assert_eq!(first.message, "`id` must be a string, found a boolean");
    assert_eq!(
        first.help.as_deref(),
        Some("YAML reads `True` as a boolean; quote it to make it a string: `\"True\"`")
    );

    // YAML 1.2 reads `off` as a string, so it is a valid id.
    let source = SourceFile::new("off.yaml", rule("off"));
    let rules = RuleSet::from_sources(vec![source], common::catalog()).unwrap();
    assert_eq!(rules.rules()[0].id, "off");
}

#[test]
fn yaml_1_1_boolean_gets_a_hint() {
    let text = "rules:\n  - id: a\n    enabled: yes\n    match: { type: \"Recon:EC2/Portscan\" }\n    actions:\n      - tag: { tags: { a: b } }\n";
    let source = SourceFile::new("yes.yaml", text);
    let Err(diagnostics) = RuleSet::from_sources(vec![source], common::catalog()) else {
        panic!("`enabled: yes` must not load");
    };
    let first = &diagnostics.0[0];
    assert_eq!(
        first.message,
        "`enabled` must be true or false, found a string"
    );
    assert!(
        first
            .help
            .as_deref()
            .is_some_and(|help| help.contains("YAML 1.2")),
        "{:?}",
        first.help
    );
}

#[test]
fn overlong_glob_is_an_error() {
    let long = format!("*{}*", "a".repeat(300));
    let text = format!(
        "rules:\n  - id: g\n    match:\n      type: \"Recon:EC2/Portscan\"\n      all:\n        - {{ path: \"$.title\", glob: \"{long}\" }}\n    actions:\n      - tag: {{ tags: {{ a: b }} }}\n"
    );
    let source = SourceFile::new("glob.yaml", text);
    let Err(diagnostics) = RuleSet::from_sources(vec![source], common::catalog()) else {
        panic!("an overlong glob must not load");
    };
    assert_eq!(
        diagnostics.0[0].message,
        "glob is 302 bytes long, over the limit of 256 bytes"
    );
    assert_eq!(diagnostics.0[0].span.line, 6);
}

#[test]
fn warnings_never_crowd_out_errors() {
    let types: Vec<String> = (0..150)
        .map(|index| format!("\"Nope{index}:EC2/X\""))
        .collect();
    let text = format!(
        "rules:\n  - id: many\n    match: {{ type: [{}] }}\n    actions:\n      - tag: {{ tags: {{ a: b }} }}\n  - id: broken\n    match: {{ type: \"Recon:EC2/Portscan\" }}\n    actions:\n      - explode: {{}}\n",
        types.join(", ")
    );
    let source = SourceFile::new("crowd.yaml", text);
    let Err(diagnostics) = RuleSet::from_sources(vec![source], common::catalog()) else {
        panic!("the unknown action must stop the load");
    };
    let warnings = diagnostics.0.iter().filter(|d| d.is_warning()).count();
    assert_eq!(warnings, cordon_engine::compile::MAX_WARNINGS);
    assert_eq!(diagnostics.0.len() - warnings, 1);
}

#[test]
fn multiline_scalar_errors_point_into_file() {
    let text = r#"rules:
  - id: a
    match: { type: "Recon:EC2/PortProbeUnprotectedPort" }
    when: |
      let a = 1;
      let b = a +* 2;
      b > 1
    actions:
      - tag:
          tags:
            folded: >-
              first line of text
              second ${finding.id +* 1}
            escaped: "\t\u00e9 ${finding.id +* 1}"
            doubled: 'it''s ${finding.id +* 1}'
"#;
    let source = SourceFile::new("scalars.yaml", text);
    let Err(diagnostics) = RuleSet::from_sources(vec![source], common::catalog()) else {
        panic!("the broken scalars loaded");
    };
    let places: Vec<(usize, usize)> = diagnostics
        .0
        .iter()
        .map(|diagnostic| (diagnostic.span.line, diagnostic.span.column))
        .collect();
    // The `*` of the script's second line, then the start of each template expression.
    assert_eq!(places, vec![(6, 18), (13, 24), (14, 34), (15, 31)]);
    for diagnostic in &diagnostics.0 {
        let line = text.lines().nth(diagnostic.span.line - 1).unwrap();
        let at: String = line.chars().skip(diagnostic.span.column - 1).collect();
        assert!(
            at.starts_with('*') || at.starts_with("finding.id"),
            "{}:{} points at `{at}`",
            diagnostic.span.line,
            diagnostic.span.column
        );
    }
}
