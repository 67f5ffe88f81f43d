//! `tag`: tags the instance, and optionally its EBS volumes and network interfaces.
//!
//! Resources that already carry every requested tag with the requested value are not
//! written, so a retry of the same finding reports `already_done`.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, Tag as Ec2Tag};
use cordon_engine::registry::{ActionSpec, ParamIssue, ParamStage, PolicyStatement, is_template};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::context::{ActionError, Containment, Context};
use crate::instance::{self, Lookup};
use crate::outcome::{ApiCall, Outcome, Resource, ResourceKind, Status};
use crate::params::{Flag, Params, Text, parse, validate};
use crate::policy;
use crate::record::{MAX_TAG_VALUE_CHARS, RECORD_KEY};
use crate::registry::{Action, Phase};

/// The maximum number of user tags on one EC2 resource.
pub(crate) const MAX_TAGS: usize = 50;

/// The maximum length of an EC2 tag key, in characters.
pub(crate) const MAX_TAG_KEY_CHARS: usize = 128;

/// The prefix AWS reserves for its own tag keys and values, in any case.
const RESERVED_PREFIX: &str = "aws:";

/// The maximum number of DescribeTags pages read, at up to 1000 tags a page.
const MAX_DESCRIBE_TAG_PAGES: usize = 20;

/// The `tag` action.
pub(crate) struct Tag;

const PERMISSIONS: &[&str] = &[
    "ec2:DescribeInstances",
    "ec2:DescribeTags",
    "ec2:CreateTags",
];

/// `tag` parameters as written in a rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TagParams {
    /// Tag keys and values; values may be templates.
    tags: BTreeMap<String, Text>,
    /// Also tag the attached EBS volumes.
    #[serde(default)]
    volumes: Flag,
    /// Also tag the attached network interfaces.
    #[serde(default)]
    network_interfaces: Flag,
    /// A tag key whose value records how the plan's containment actions ended, across all
    /// matched rules: `quarantined` when one contained the instance, `containment-failed`
    /// otherwise. Not written when the plan has no containment action, so the tag never
    /// claims a containment that did not happen.
    #[serde(default)]
    containment_status: Option<String>,
}

/// The `containment_status` tag value when a containment action of the plan succeeded.
pub(crate) const CONTAINED: &str = "quarantined";

/// The `containment_status` tag value when no containment action of the plan succeeded.
pub(crate) const NOT_CONTAINED: &str = "containment-failed";

impl Params for TagParams {
    const FIELDS: &'static [&'static str] = &[
        "tags",
        "volumes",
        "network_interfaces",
        "containment_status",
    ];

    fn check(&self, stage: ParamStage) -> Vec<ParamIssue> {
        let mut issues = Vec::new();
        issues.extend(self.volumes.check("volumes", stage));
        issues.extend(self.network_interfaces.check("network_interfaces", stage));
        if self.tags.is_empty() {
            issues.push(
                ParamIssue::at(["tags"], "no tags given")
                    .with_help("write `tags: { incident: \"${finding.id}\" }`"),
            );
        }
        if self.tags.len() > MAX_TAGS {
            issues.push(ParamIssue::at(
                ["tags"],
                format!(
                    "{} tags given, over the EC2 maximum of {MAX_TAGS} per resource",
                    self.tags.len()
                ),
            ));
        }
        for (key, value) in &self.tags {
            issues.extend(check_key(key));
            issues.extend(check_value(key, &value.0, stage));
        }
        if let Some(key) = &self.containment_status {
            let literal = !(stage == ParamStage::Load && is_template(key));
            let issue = check_key(key).map(|mut issue| {
                issue.path = vec!["containment_status".to_owned()];
                issue
            });
            issues.extend(issue.filter(|_| literal));
            if self.tags.contains_key(key) {
                issues.push(
                    ParamIssue::at(
                        ["containment_status"],
                        format!("`{key}` is also set in `tags`"),
                    )
                    .with_help("keep the key in one place: `containment_status` writes its value"),
                );
            }
        }
        issues
    }
}

/// Checks a tag key against the EC2 limits.
pub(crate) fn check_key(key: &str) -> Option<ParamIssue> {
    let path = ["tags", key];
    if key.is_empty() {
        return Some(ParamIssue::at(path, "tag key is empty"));
    }
    let length = key.chars().count();
    if length > MAX_TAG_KEY_CHARS {
        return Some(ParamIssue::at(
            path,
            format!(
                "tag key is {length} characters long, over the EC2 maximum of {MAX_TAG_KEY_CHARS}"
            ),
        ));
    }
    if has_reserved_prefix(key) {
        return Some(
            ParamIssue::at(
                path,
                format!("tag key `{key}` starts with `aws:`, which AWS reserves"),
            )
            .with_help("choose a key without the `aws:` prefix"),
        );
    }
    if key.starts_with(RECORD_KEY) {
        return Some(
            ParamIssue::at(
                path,
                format!("tag key `{key}` is reserved for the groups that `isolate` records"),
            )
            .with_help("choose another key"),
        );
    }
    None
}

/// Checks a tag value against the EC2 limits, unless it is an unrendered template.
pub(crate) fn check_value(key: &str, value: &str, stage: ParamStage) -> Option<ParamIssue> {
    if stage == ParamStage::Load && is_template(value) {
        return None;
    }
    let path = ["tags", key];
    let length = value.chars().count();
    if length > MAX_TAG_VALUE_CHARS {
        return Some(
            ParamIssue::at(
                path,
                format!("tag value is {length} characters long, over the EC2 maximum of {MAX_TAG_VALUE_CHARS}"),
            )
            .with_help("shorten the value, e.g. with a template that selects fewer fields"),
        );
    }
    if has_reserved_prefix(value) {
        return Some(ParamIssue::at(
            path,
            format!("tag value `{value}` starts with `aws:`, which AWS reserves"),
        ));
    }
    None
}

fn has_reserved_prefix(text: &str) -> bool {
    text.get(..RESERVED_PREFIX.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(RESERVED_PREFIX))
}

impl ActionSpec for Tag {
    fn name(&self) -> &'static str {
        "tag"
    }

    fn validate(&self, params: &Value, stage: ParamStage) -> Vec<ParamIssue> {
        validate::<TagParams>(params, stage)
    }

    fn permissions(&self) -> &'static [&'static str] {
        PERMISSIONS
    }

    fn policy(&self, params: &[&Value]) -> Vec<PolicyStatement> {
        let mut keys: Vec<String> = Vec::new();
        let mut resources = vec!["instance"];
        for rule_params in params {
            if let Some(Value::Object(tags)) = rule_params.get("tags") {
                keys.extend(tags.keys().cloned());
            }
            if let Some(Value::String(key)) = rule_params.get("containment_status") {
                keys.push(key.clone());
            }
            // A flag written as a template may render true, so it counts as set.
            let flag_set = |name: &str| matches!(rule_params.get(name), Some(flag) if flag != &Value::Bool(false));
            if flag_set("volumes") {
                resources.push("volume");
            }
            if flag_set("network_interfaces") {
                resources.push("network-interface");
            }
        }
        resources.sort_unstable();
        resources.dedup();
        let mut statements = vec![policy::describe(
            &["ec2:DescribeInstances"],
            "tag reads the instance and its attached resources",
        )];
        if resources.len() > 1 {
            statements.push(policy::describe(
                &["ec2:DescribeTags"],
                "tag reads existing tags of volumes and interfaces",
            ));
        }
        statements.push(policy::tags(
            "TagResources",
            "ec2:CreateTags",
            &resources,
            &keys,
            None,
            "tag writes the tag keys the rules name",
        ));
        statements
    }
}

#[async_trait]
impl Action for Tag {
    fn phase(&self) -> Phase {
        Phase::Evidence
    }

    async fn execute(
        &self,
        context: &Context<'_>,
        params: &Value,
        outcome: &mut Outcome,
    ) -> Result<Status, ActionError> {
        let params = parse::<TagParams>(params)?;
        let Some(instance_id) = context.finding.instance_id.as_deref() else {
            return Ok(Status::skipped("the finding names no EC2 instance"));
        };
        let ec2 = context.ec2;
        let instance = match instance::find(ec2, instance_id).await? {
            Lookup::Found(instance) => instance,
            Lookup::Skip(reason) => return Ok(Status::skipped(reason)),
        };
        let mut requested: Vec<(String, String)> = params
            .tags
            .iter()
            .map(|(key, value)| (key.clone(), value.0.clone()))
            .collect();
        if let Some(key) = &params.containment_status {
            match context.containment {
                Containment::Succeeded => requested.push((key.clone(), CONTAINED.to_owned())),
                Containment::Failed => requested.push((key.clone(), NOT_CONTAINED.to_owned())),
                Containment::NotPlanned => {}
            }
        }

        let mut targets = vec![(instance_id.to_owned(), ResourceKind::Instance)];
        if params.volumes.is_true() {
            let volumes = instance::volumes(&instance).into_iter();
            targets.extend(volumes.map(|volume| (volume.id, ResourceKind::Volume)));
        }
        if params.network_interfaces.is_true() {
            let interfaces = instance::interface_ids(&instance).into_iter();
            targets.extend(interfaces.map(|id| (id, ResourceKind::NetworkInterface)));
        }

        let mut current: HashMap<String, HashMap<String, String>> = HashMap::new();
        let instance_tags = instance.tags().iter().filter_map(|tag| {
            Some((
                tag.key()?.to_owned(),
                tag.value().unwrap_or_default().to_owned(),
            ))
        });
        current.insert(instance_id.to_owned(), instance_tags.collect());
        let others: Vec<String> = targets.iter().skip(1).map(|(id, _)| id.clone()).collect();
        let keys: Vec<String> = requested.iter().map(|(key, _)| key.clone()).collect();
        for (id, key, value) in describe_tags(ec2, &others, &keys).await? {
            current.entry(id).or_default().insert(key, value);
        }

        let missing = |id: &str| {
            let tags = current.get(id);
            requested
                .iter()
                .any(|(key, value)| tags.and_then(|tags| tags.get(key)) != Some(value))
        };
        let to_write: Vec<String> = targets
            .iter()
            .filter(|(id, _)| missing(id))
            .map(|(id, _)| id.clone())
            .collect();
        if to_write.is_empty() {
            for (id, kind) in targets {
                outcome
                    .resources
                    .push(Resource::new(id, kind, Status::AlreadyDone));
            }
            return Ok(Status::AlreadyDone);
        }

        let tags_json: Vec<Value> = requested
            .iter()
            .map(|(key, value)| json!({"Key": key, "Value": value}))
            .collect();
        let call = ApiCall::new(
            "CreateTags",
            json!({"Resources": to_write, "Tags": tags_json}),
        );
        if !context.dry_run {
            let tags = requested
                .iter()
                .map(|(key, value)| Ec2Tag::builder().key(key).value(value).build())
                .collect();
            ec2.create_tags()
                .set_resources(Some(to_write.clone()))
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(|error| ActionError::from_sdk("CreateTags", &error))?;
        }
        outcome.calls.push(call);
        for (id, kind) in targets {
            let status = if to_write.contains(&id) {
                Status::change(context.dry_run)
            } else {
                Status::AlreadyDone
            };
            outcome.resources.push(Resource::new(id, kind, status));
        }
        Ok(Status::change(context.dry_run))
    }
}

/// Reads the tags with the given keys on the given resources, as (resource, key, value).
async fn describe_tags(
    ec2: &aws_sdk_ec2::Client,
    resource_ids: &[String],
    keys: &[String],
) -> Result<Vec<(String, String, String)>, ActionError> {
    let mut found = Vec::new();
    if resource_ids.is_empty() {
        return Ok(found);
    }
    let mut token: Option<String> = None;
    for _ in 0..MAX_DESCRIBE_TAG_PAGES {
        let response = ec2
            .describe_tags()
            .filters(
                Filter::builder()
                    .name("resource-id")
                    .set_values(Some(resource_ids.to_vec()))
                    .build(),
            )
            .filters(
                Filter::builder()
                    .name("key")
                    .set_values(Some(keys.to_vec()))
                    .build(),
            )
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|error| ActionError::from_sdk("DescribeTags", &error))?;
        for tag in response.tags() {
            if let (Some(id), Some(key)) = (tag.resource_id(), tag.key()) {
                found.push((
                    id.to_owned(),
                    key.to_owned(),
                    tag.value().unwrap_or_default().to_owned(),
                ));
            }
        }
        token = response
            .next_token()
            .filter(|next| !next.is_empty())
            .map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn issues(params: Value, stage: ParamStage) -> Vec<ParamIssue> {
        Tag.validate(&params, stage)
    }

    #[test]
    fn limits_are_checked() {
        let long_key = "k".repeat(129);
        let long_value = "v".repeat(257);
        let found = issues(
            json!({"tags": {long_key.clone(): "x", "ok": long_value, "AWS:owner": "x", "n": "aws:x"}}),
            ParamStage::Load,
        );
        let paths: Vec<String> = found.iter().map(|issue| issue.path.join(".")).collect();
        assert!(paths.contains(&format!("tags.{long_key}")), "{paths:?}");
        assert!(paths.contains(&"tags.ok".to_owned()), "{paths:?}");
        assert!(paths.contains(&"tags.AWS:owner".to_owned()), "{paths:?}");
        assert!(paths.contains(&"tags.n".to_owned()), "{paths:?}");
    }

    #[test]
    fn boundary_lengths_pass() {
        let params = json!({"tags": {"k".repeat(128): "v".repeat(256)}});
        assert!(issues(params, ParamStage::Rendered).is_empty());
    }

    #[test]
    fn template_value_checked_after_render() {
        let params = json!({"tags": {"finding": "${finding.id}"}});
        assert!(issues(params, ParamStage::Load).is_empty());
        let rendered = json!({"tags": {"finding": "x".repeat(300)}});
        assert_eq!(
            issues(rendered, ParamStage::Rendered)[0].path,
            vec!["tags", "finding"]
        );
    }

    #[test]
    fn too_many_tags() {
        let tags: serde_json::Map<String, Value> = (0..51)
            .map(|index| (format!("k{index}"), json!("v")))
            .collect();
        let found = issues(json!({ "tags": tags }), ParamStage::Load);
        assert_eq!(found[0].path, vec!["tags"]);
        assert!(found[0].message.contains("51 tags"));
    }

    #[test]
    fn empty_tags_and_record_key() {
        assert_eq!(
            issues(json!({"tags": {}}), ParamStage::Load)[0].path,
            vec!["tags"]
        );
        let found = issues(
            json!({"tags": {"cordon:original-groups": "x"}}),
            ParamStage::Load,
        );
        assert!(found[0].message.contains("reserved"));
    }

    #[test]
    fn scalar_values_are_text() {
        assert!(
            issues(
                json!({"tags": {"count": 3, "flag": true}}),
                ParamStage::Load
            )
            .is_empty()
        );
    }

    #[test]
    fn missing_tags_is_reported() {
        let found = issues(json!({"volumes": true}), ParamStage::Load);
        assert!(
            found[0].message.contains("missing field `tags`"),
            "{}",
            found[0].message
        );
    }
}
