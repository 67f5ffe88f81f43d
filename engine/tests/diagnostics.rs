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
