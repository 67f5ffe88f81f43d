#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use cordon_engine::EvalOptions;
use serde_json::json;

use common::{finding, load};

const TOR_RULE: &str = r#"
env: [QUARANTINE_SG]
rules:
  - id: ec2-tor-client-quarantine
    match:
      type: "UnauthorizedAccess:EC2/TorClient"
      resource: Instance
      all:
        - { path: "$.severity", gte: 7 }
      any:
        - { path: "$.resource.instanceDetails.tags[?(@.key=='Environment')].value", in: [production, staging] }
      none:
        - { path: "$.service.resourceRole", equals: TARGET }
    when: 'finding.service.count >= 1'
    actions:
      - isolate: { security_group: "${env.QUARANTINE_SG}" }
      - tag: { tags: { "cordon:finding-id": "${finding.id}", "cordon:finding-type": "${finding.type}" } }
      - snapshot: { description: "cordon ${finding.type} ${finding.id}" }
"#;

fn bound(text: &str, env: &[(&str, &str)]) -> cordon_engine::RuleSet {
    let mut rules = load(text).unwrap_or_else(|diagnostics| panic!("{}", diagnostics.render()));
    let pairs: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    rules
        .bind_env(|name| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        })
        .unwrap();
    rules
}

#[test]
fn tor_client_plan_isolates_tags_and_snapshots() {
    let rules = bound(TOR_RULE, &[("QUARANTINE_SG", "sg-0quarantine")]);
    let plan = rules.evaluate(&finding("tor-client.json"), EvalOptions::default());
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    assert_eq!(plan.matched.len(), 1);
    let actions = &plan.matched[0].actions;
    assert_eq!(actions[0].action, "isolate");
    assert_eq!(
        actions[0].params,
        json!({"security_group": "sg-0quarantine"})
    );
    assert_eq!(actions[1].action, "tag");
    assert_eq!(
        actions[1].params["tags"]["cordon:finding-id"],
        json!("a4c2e9f07b1d4e8c9f3a6b5d2e1c0f98")
    );
    assert_eq!(
        actions[1].params["tags"]["cordon:finding-type"],
        json!("UnauthorizedAccess:EC2/TorClient")
    );
    assert_eq!(actions[2].action, "snapshot");
    assert_eq!(
        actions[2].params["description"],
        json!("cordon UnauthorizedAccess:EC2/TorClient a4c2e9f07b1d4e8c9f3a6b5d2e1c0f98")
    );
}

#[test]
fn bare_finding_plans_the_same() {
    let rules = bound(TOR_RULE, &[("QUARANTINE_SG", "sg-1")]);
    let with_envelope = rules.evaluate(&finding("tor-client.json"), EvalOptions::default());
    let bare = rules.evaluate(&finding("tor-client-bare.json"), EvalOptions::default());
    assert_eq!(with_envelope.matched[0].actions, bare.matched[0].actions);
}

#[test]
fn sample_findings_never_match_by_default() {
    let rules = bound(TOR_RULE, &[("QUARANTINE_SG", "sg-1")]);
    for name in [
        "sample-tor-client.json",
        "sample-tor-client-string-shape.json",
    ] {
        let sample = finding(name);
        assert!(
            sample.summary.sample,
            "{name} is not recognised as a sample"
        );
        let plan = rules.evaluate(&sample, EvalOptions { explain: true });
        assert!(plan.matched.is_empty(), "{name} matched");
        assert_eq!(plan.explanations[0].step, "include_samples");
    }
}

#[test]
fn include_samples_lets_samples_match() {
    let text = r#"
rules:
  - id: samples-too
    include_samples: true
    match: { type: "UnauthorizedAccess:EC2/TorClient" }
    actions: [ { tag: { tags: { a: b } } } ]
"#;
    let rules = bound(text, &[]);
    let plan = rules.evaluate(&finding("sample-tor-client.json"), EvalOptions::default());
    assert_eq!(plan.matched.len(), 1);
}

#[test]
fn explanation_names_failed_condition_and_value() {
    let rules = bound(TOR_RULE, &[("QUARANTINE_SG", "sg-1")]);
    let mut target = finding("tor-client.json");
    target.detail["service"]["resourceRole"] = json!("TARGET");
    let plan = rules.evaluate(&target, EvalOptions { explain: true });
    assert!(plan.matched.is_empty());
    let explanation = &plan.explanations[0];
    assert_eq!(explanation.step, "match.none[0]");
    assert!(
        explanation.reason.contains("\"TARGET\""),
        "{}",
        explanation.reason
    );
    assert!(
        explanation.location.starts_with("rules.yaml:13:"),
        "{}",
        explanation.location
    );
}

#[test]
fn explanation_for_low_severity() {
    let rules = bound(TOR_RULE, &[("QUARANTINE_SG", "sg-1")]);
    let mut low = finding("tor-client.json");
    low.detail["severity"] = json!(2.5);
    let plan = rules.evaluate(&low, EvalOptions { explain: true });
    assert_eq!(plan.explanations[0].step, "match.all[0]");
    assert!(
        plan.explanations[0].reason.contains("saw 2.5"),
        "{}",
        plan.explanations[0].reason
    );
}

#[test]
fn endless_loop_is_a_rule_error_and_next_rule_matches() {
    let text = r#"
rules:
  - id: spins
    match: { type: "UnauthorizedAccess:EC2/TorClient" }
    when: 'loop { } true'
    actions: [ { tag: { tags: { a: b } } } ]
  - id: next
    match: { type: "UnauthorizedAccess:EC2/TorClient" }
    actions: [ { tag: { tags: { a: c } } } ]
"#;
    let rules = bound(text, &[]);
    let plan = rules.evaluate(&finding("tor-client.json"), EvalOptions { explain: true });
    assert_eq!(plan.errors.len(), 1);
    assert_eq!(plan.errors[0].rule_id, "spins");
    assert!(
        plan.errors[0].message.contains("operations"),
        "{}",
        plan.errors[0].message
    );
    assert_eq!(plan.matched.len(), 1);
    assert_eq!(plan.matched[0].rule_id, "next");
    let spins = &plan.explanations[0];
    assert_eq!(spins.step, "when");
    assert!(spins.reason.contains("operations"), "{}", spins.reason);
}

#[test]
fn finding_text_with_template_syntax_stays_verbatim() {
    let text = r#"
env: [QUARANTINE_SG]
rules:
  - id: copy-name
    match: { type: "UnauthorizedAccess:EC2/TorClient" }
    actions:
      - tag: { tags: { name: "${finding.resource.instanceDetails.tags[0].value}" } }
"#;
    let rules = bound(text, &[("QUARANTINE_SG", "sg-secret")]);
    let mut hostile = finding("tor-client.json");
    hostile.detail["resource"]["instanceDetails"]["tags"][0]["value"] =
        json!("${env.QUARANTINE_SG}");
    let plan = rules.evaluate(&hostile, EvalOptions::default());
    assert_eq!(
        plan.matched[0].actions[0].params["tags"]["name"],
        json!("${env.QUARANTINE_SG}")
    );
}

#[test]
fn glob_types_and_exact_types_both_index() {
    let text = r#"
rules:
  - id: all-backdoors
    match: { type: "Backdoor:EC2/*" }
    actions: [ { tag: { tags: { a: b } } } ]
  - id: exact
    match: { type: ["Backdoor:EC2/C&CActivity.B!DNS", "Other"] }
    actions: [ { tag: { tags: { a: b } } } ]
  - id: disabled
    enabled: false
    match: { type: "Backdoor:EC2/*" }
    actions: [ { tag: { tags: { a: b } } } ]
"#;
    let rules = bound(text, &[]);
    let plan = rules.evaluate(&finding("cc-activity-dns.json"), EvalOptions::default());
    let ids: Vec<&str> = plan
        .matched
        .iter()
        .map(|rule| rule.rule_id.as_str())
        .collect();
    assert_eq!(ids, vec!["all-backdoors", "exact"]);
    assert!(rules.candidates("Trojan:EC2/DropPoint").is_empty());
}

#[test]
fn resource_type_filters_other_resources() {
    let text = r#"
rules:
  - id: instances-only
    match: { type: "*", resource: Instance }
    actions: [ { tag: { tags: { a: b } } } ]
"#;
    let rules = bound(text, &[]);
    let plan = rules.evaluate(&finding("access-key.json"), EvalOptions { explain: true });
    assert!(plan.matched.is_empty());
    assert_eq!(plan.explanations[0].step, "match.resource");
}

#[test]
fn missing_template_value_fails_only_that_action() {
    let text = r#"
rules:
  - id: partial
    match: { type: "*" }
    actions:
      - tag: { tags: { instance: "${finding.resource.instanceDetails.instanceId}" } }
      - snapshot: { description: "x" }
"#;
    let rules = bound(text, &[]);
    let plan = rules.evaluate(&finding("access-key.json"), EvalOptions::default());
    assert_eq!(plan.matched[0].actions.len(), 1);
    assert_eq!(plan.matched[0].actions[0].action, "snapshot");
    assert_eq!(plan.errors[0].action.as_deref(), Some("tag"));
}

#[test]
fn rendered_values_are_checked_by_the_action() {
    let text = r#"
rules:
  - id: long-tag
    match: { type: "*" }
    actions:
      - tag: { tags: { description: "${finding.description}${finding.description}${finding.description}" } }
"#;
    let rules = bound(text, &[]);
    let plan = rules.evaluate(&finding("tor-client.json"), EvalOptions::default());
    assert!(plan.matched[0].actions.is_empty());
    assert!(
        plan.errors[0].message.contains("256"),
        "{}",
        plan.errors[0].message
    );
}

#[test]
fn env_values_are_bound_per_file_and_required() {
    let mut rules = load(TOR_RULE).unwrap();
    let error = rules.bind_env(|_| None).unwrap_err();
    assert_eq!(error.0.len(), 1);
    assert!(error.0[0].message.contains("`QUARANTINE_SG` is not set"));
    assert_eq!(error.0[0].span.line, 2);
}

#[test]
fn when_sees_event_envelope() {
    let text = r#"
rules:
  - id: envelope-account
    match: { type: "*" }
    when: 'type_of(event) == "map" && event.account == "111122223333"'
    actions: [ { tag: { tags: { a: b } } } ]
"#;
    let rules = bound(text, &[]);
    let plan = rules.evaluate(&finding("tor-client.json"), EvalOptions::default());
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    assert_eq!(plan.matched.len(), 1);
    assert!(
        rules
            .evaluate(&finding("tor-client-bare.json"), EvalOptions::default())
            .matched
            .is_empty()
    );
}

#[test]
fn when_with_non_boolean_at_runtime_is_an_error() {
    let text = r#"
rules:
  - id: returns-count
    match: { type: "*" }
    when: 'if finding.service.count > 0 { finding.service.count } else { false }'
    actions: [ { tag: { tags: { a: b } } } ]
"#;
    let rules = bound(text, &[]);
    let plan = rules.evaluate(&finding("tor-client.json"), EvalOptions::default());
    assert!(plan.matched.is_empty());
    assert!(
        plan.errors[0].message.contains("not a boolean"),
        "{}",
        plan.errors[0].message
    );
}
