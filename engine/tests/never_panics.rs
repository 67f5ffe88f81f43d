//! Property tests: no input makes parsing or evaluation panic.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cordon_engine::{EvalOptions, Input};
use proptest::prelude::*;
use serde_json::Value;

const RULES: &str = r#"
env: [QUARANTINE_SG]
rules:
  - id: everything
    match:
      type: "*"
      all:
        - { path: "$.severity", gte: 1 }
      any:
        - { path: "$..value", in: [production, 8] }
        - { path: "$.service.action.networkConnectionAction.remoteIpDetails.ipAddressV4", cidr: "0.0.0.0/0" }
        - { path: "$.title", matches: "^[a-z]" }
        - { path: "$.tags[*]", contains: x, values: all }
      none:
        - { path: "$.service.resourceRole", equals: TARGET }
    when: 'finding.severity > 0 || finding.type.len() > 3'
    actions:
      - isolate: { security_group: "${env.QUARANTINE_SG}" }
      - tag: { tags: { t: "${finding.type} ${finding.id} ${finding.severity}" } }
"#;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(
            |number| serde_json::Number::from_f64(number).map_or(Value::Null, Value::Number)
        ),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("TARGET"),
            Just("production"),
            Just("10.0.0.1"),
            Just("${env.X}")
        ]
        .prop_map(|text| Value::String(text.to_owned())),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("id".to_owned()),
                    Just("severity".to_owned()),
                    Just("resource".to_owned()),
                    Just("resourceType".to_owned()),
                    Just("service".to_owned()),
                    Just("value".to_owned()),
                    Just("detail".to_owned()),
                    Just("detail-type".to_owned()),
                    Just("additionalInfo".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn finding_like() -> impl Strategy<Value = Value> {
    (json_value(), json_value(), json_value(), ".{0,20}").prop_map(
        |(service, severity, extra, finding_type)| {
            serde_json::json!({
                "id": "a4c2e9f07b1d4e8c9f3a6b5d2e1c0f98",
                "type": finding_type,
                "resource": {"resourceType": "Instance", "instanceDetails": extra},
                "service": service,
                "severity": severity,
            })
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let rules = bound();
        if let Ok(Input::Finding(finding)) = cordon_engine::finding::from_value(value) {
            let _ = rules.evaluate(&finding, EvalOptions { explain: true });
        }
    }

    #[test]
    fn finding_shaped_json_never_panics(value in finding_like()) {
        let rules = bound();
        let text = value.to_string();
        if let Ok(Input::Finding(finding)) = cordon_engine::finding::parse(text.as_bytes()) {
            let plan = rules.evaluate(&finding, EvalOptions { explain: true });
            prop_assert!(plan.matched.len() <= 1);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = cordon_engine::finding::parse(&bytes);
    }

    #[test]
    fn arbitrary_rule_text_never_panics(text in "[ -~\n]{0,200}") {
        let _ = common::load(&text);
    }
}

fn bound() -> cordon_engine::RuleSet {
    let mut rules = common::load(RULES).unwrap();
    rules.bind_env(|_| Some("sg-1".to_owned())).unwrap();
    rules
}
