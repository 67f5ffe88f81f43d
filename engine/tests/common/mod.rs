//! A stand-in action catalog for engine tests, shaped like the EC2 actions.

#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use cordon_engine::registry::{ActionCatalog, ActionSpec, ParamIssue, ParamStage, is_template};
use cordon_engine::source::SourceFile;
use cordon_engine::{Diagnostics, RuleSet};
use serde_json::Value;

struct Spec {
    name: &'static str,
    keys: &'static [&'static str],
}

impl ActionSpec for Spec {
    fn name(&self) -> &'static str {
        self.name
    }

    fn validate(&self, params: &Value, stage: ParamStage) -> Vec<ParamIssue> {
        let mut issues = Vec::new();
        let Some(map) = params.as_object() else {
            return vec![ParamIssue::at(Vec::<String>::new(), "expected a mapping")];
        };
        for key in map.keys() {
            if !self.keys.contains(&key.as_str()) {
                issues.push(
                    ParamIssue::at([key.as_str()], format!("unknown parameter `{key}`"))
                        .with_help(format!("expected one of: {}", self.keys.join(", "))),
                );
            }
        }
        if let Some(Value::Object(tags)) = map.get("tags") {
            for (key, value) in tags {
                let text = value.as_str().unwrap_or_default();
                let final_value = stage == ParamStage::Rendered || !is_template(text);
                if final_value && text.chars().count() > 256 {
                    issues.push(ParamIssue::at(
                        ["tags", key.as_str()],
                        "tag value is longer than 256 characters",
                    ));
                }
            }
        }
        issues
    }

    fn permissions(&self) -> &'static [&'static str] {
        &[]
    }
}

pub struct TestCatalog(Vec<Spec>);

impl ActionCatalog for TestCatalog {
    fn get(&self, name: &str) -> Option<&dyn ActionSpec> {
        self.0
            .iter()
            .find(|spec| spec.name == name)
            .map(|spec| spec as &dyn ActionSpec)
    }

    fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|spec| spec.name).collect()
    }
}

pub fn catalog() -> Arc<dyn ActionCatalog> {
    Arc::new(TestCatalog(vec![
        Spec {
            name: "isolate",
            keys: &["security_group", "allow_egress"],
        },
        Spec {
            name: "tag",
            keys: &["tags"],
        },
        Spec {
            name: "snapshot",
            keys: &["description", "volumes"],
        },
    ]))
}

pub fn load(text: &str) -> Result<RuleSet, Diagnostics> {
    RuleSet::from_sources(vec![SourceFile::new("rules.yaml", text)], catalog())
}

pub fn fixture(name: &str) -> String {
    let path = format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {path}: {error}"))
}

pub fn finding(name: &str) -> cordon_engine::Finding {
    match cordon_engine::finding::parse(fixture(name).as_bytes()).unwrap() {
        cordon_engine::Input::Finding(finding) => *finding,
        other => panic!("fixture {name} is not a finding: {other:?}"),
    }
}
