//! A script that uses too much memory is stopped when the binary counts allocations.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cordon_engine::source::SourceFile;
use cordon_engine::{EvalOptions, RuleSet};

#[global_allocator]
static ALLOCATOR: cordon_engine::memory::CountingAllocator =
    cordon_engine::memory::CountingAllocator;

fn rules(when: &str) -> RuleSet {
    let text = format!(
        "rules:\n  - id: hungry\n    match: {{ type: \"UnauthorizedAccess:EC2/TorClient\" }}\n    when: |\n{}\n    actions:\n      - tag: {{ tags: {{ a: b }} }}\n",
        when.lines()
            .map(|line| format!("      {line}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let source = SourceFile::new("hungry.yaml", text);
    RuleSet::from_sources(vec![source], common::catalog()).unwrap()
}

#[test]
fn map_of_copied_arrays_is_stopped() {
    let rules = rules(
        "let a = [];\na.pad(9999, 0);\nlet m = #{};\nfor i in 0..9000 { m[`k${i}`] = a; }\nm.len() > 0",
    );
    let before = cordon_engine::memory::thread_net_bytes();
    let plan = rules.evaluate(&common::finding("tor-client.json"), EvalOptions::default());
    assert!(plan.matched.is_empty());
    let error = plan
        .errors
        .first()
        .map(|failure| failure.message.clone())
        .unwrap_or_default();
    assert!(error.contains("held more than 32 MiB"), "{error}");
    let after = cordon_engine::memory::thread_net_bytes();
    assert!(
        after - before < 8 * 1024 * 1024,
        "the script's memory was not freed: {} bytes",
        after - before
    );
}

#[test]
fn modest_script_still_matches() {
    let rules = rules("let m = #{};\nfor i in 0..1000 { m[`k${i}`] = i; }\nm.len() == 1000");
    let plan = rules.evaluate(&common::finding("tor-client.json"), EvalOptions::default());
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    assert_eq!(plan.matched.len(), 1);
}
