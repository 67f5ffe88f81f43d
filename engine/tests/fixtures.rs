//! Every JSON fixture under `tests/fixtures/` parses as what it claims to be, and the
//! generated EC2 fixtures match what the generator prints today.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cordon_engine::finding::{self, Input};
use cordon_engine::fixture::{self, FixtureOptions};
use serde_json::Value;

/// An SQS batch, not an EventBridge event: its records are parsed one by one elsewhere.
const SQS_BATCH: &str = "sqs-batch.json";
/// A GuardDuty event that is not a finding.
const NOT_A_FINDING: &str = "runtime-unhealthy.json";

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// Lists every `*.json` file below `dir`, sorted.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|name| name.to_str()).unwrap()
}

fn parse_file(path: &Path) -> Input {
    let bytes = std::fs::read(path).unwrap();
    finding::parse(&bytes).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn parse_finding(path: &Path) -> finding::Finding {
    match parse_file(path) {
        Input::Finding(found) => *found,
        Input::Skipped { reason } => panic!("{}: skipped: {reason}", path.display()),
    }
}

fn is_finding_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|byte| byte.is_ascii_hexdigit())
}

#[test]
fn every_fixture_parses() {
    let files = json_files(&fixtures_dir());
    assert!(files.len() > 40, "found only {} fixtures", files.len());
    for path in files {
        let name = file_name(&path);
        if name == SQS_BATCH {
            continue;
        }
        if name == NOT_A_FINDING {
            assert!(
                matches!(parse_file(&path), Input::Skipped { .. }),
                "{name} should be skipped"
            );
            continue;
        }
        let found = parse_finding(&path);
        assert!(
            is_finding_id(&found.summary.id),
            "{name}: id {}",
            found.summary.id
        );
        assert!(!found.summary.finding_type.is_empty(), "{name}: empty type");
        assert!(
            !found.summary.resource_type.is_empty(),
            "{name}: empty resource type"
        );
    }
}

#[test]
fn ec2_fixtures_are_instance_findings_named_by_type() {
    let files = json_files(&fixtures_dir().join("ec2"));
    assert!(!files.is_empty(), "no generated fixtures");
    for path in files {
        let name = file_name(&path);
        let found = parse_finding(&path);
        assert_eq!(found.summary.resource_type, "Instance", "{name}");
        assert!(
            found.summary.instance_id.is_some(),
            "{name}: no instance id"
        );
        let stem = path.file_stem().and_then(|stem| stem.to_str()).unwrap();
        assert_eq!(stem, fixture::slug(&found.summary.finding_type), "{name}");
    }
}

#[test]
fn ec2_fixtures_cover_every_supported_type() {
    let dir = fixtures_dir().join("ec2");
    for info in fixture::supported_types() {
        let path = dir.join(format!("{}.json", fixture::slug(info.finding_type)));
        assert!(
            path.is_file(),
            "missing {}: run tests/fixtures/ec2/regenerate.sh",
            path.display()
        );
    }
}

/// Fails when the generator changed but the files were not regenerated.
#[test]
fn ec2_fixtures_match_generator() {
    let dir = fixtures_dir().join("ec2");
    for info in fixture::supported_types() {
        let path = dir.join(format!("{}.json", fixture::slug(info.finding_type)));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let on_disk: Value = serde_json::from_str(&text).unwrap();
        let generated = fixture::generate(info.finding_type, &FixtureOptions::default()).unwrap();
        assert!(
            on_disk == generated,
            "{} differs from `cordon fixture '{}'`: run tests/fixtures/ec2/regenerate.sh",
            path.display(),
            info.finding_type
        );
    }
}

#[test]
fn other_fixtures_cover_other_resource_types() {
    let found: BTreeSet<String> = json_files(&fixtures_dir().join("other"))
        .iter()
        .map(|path| parse_finding(path).summary.resource_type)
        .collect();
    for resource_type in [
        "S3Bucket",
        "EKSCluster",
        "Lambda",
        "RDSDBInstance",
        "AttackSequence",
    ] {
        assert!(
            found.contains(resource_type),
            "no {resource_type} fixture in other/"
        );
    }
    for resource_type in &found {
        assert_ne!(
            resource_type, "Instance",
            "instance findings belong in ec2/"
        );
    }
}

#[test]
fn other_fixtures_have_no_instance_id() {
    for path in json_files(&fixtures_dir().join("other")) {
        let found = parse_finding(&path);
        assert_eq!(found.summary.instance_id, None, "{}", path.display());
    }
}
