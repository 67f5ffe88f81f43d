//! `snapshot`: snapshots the instance's EBS volumes as evidence, once per finding and volume.
//!
//! Each snapshot is tagged at creation with `cordon:finding-id`, `cordon:finding-type`,
//! `cordon:instance-id` and `cordon:volume-id`. Before creating, DescribeSnapshots looks for
//! snapshots of this account tagged with the finding id, so a retry or a re-publication of
//! the finding creates no second snapshot of a volume.
//!
//! The action calls CreateSnapshot once per volume rather than CreateSnapshots once per
//! instance. CreateSnapshots applies one tag set to all the snapshots it makes, so it cannot
//! tag each with its volume id, and moto 5.2.5 ignores its `ExcludeDataVolumeIds`, which a
//! retry needs in order to skip volumes already snapshotted. Both calls tag at creation in
//! moto 5.2.5. The price is that snapshots of several volumes are not taken at one instant.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, ResourceType, SnapshotState, Tag, TagSpecification};
use cordon_engine::registry::{ActionSpec, ParamIssue, ParamStage, PolicyStatement, is_template};
use cordon_engine::template::replace_controls;
use futures::future::join_all;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::context::{ActionError, Context};
use crate::instance::{self, AttachedVolume, Lookup};
use crate::outcome::{ApiCall, Outcome, Resource, ResourceKind, Status, summarize};
use crate::params::{Params, parse, validate};
use crate::policy;
use crate::record::MAX_TAG_VALUE_CHARS;
use crate::registry::{Action, Phase};

/// The tag that links a snapshot to its finding; also the idempotency key.
pub(crate) const FINDING_ID_TAG: &str = "cordon:finding-id";

/// The tags every snapshot gets at creation: finding id, finding type, instance id, volume id.
const SNAPSHOT_TAG_KEYS: [&str; 4] = [
    FINDING_ID_TAG,
    "cordon:finding-type",
    "cordon:instance-id",
    "cordon:volume-id",
];

/// The maximum length of a snapshot description, in characters.
const MAX_DESCRIPTION_CHARS: usize = 255;

/// The maximum number of DescribeSnapshots pages read.
const MAX_DESCRIBE_PAGES: usize = 20;

/// The `snapshot` action.
pub(crate) struct Snapshot;

const PERMISSIONS: &[&str] = &[
    "ec2:DescribeInstances",
    "ec2:DescribeSnapshots",
    "ec2:CreateSnapshot",
    "ec2:CreateTags",
];

/// `snapshot` parameters as written in a rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotParams {
    /// `all` (the default) or `root`.
    volumes: Option<String>,
    /// The snapshot description; may be a template.
    description: Option<String>,
}

/// The volumes to snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Selection {
    All,
    Root,
}

impl SnapshotParams {
    fn selection(&self) -> Option<Selection> {
        match self.volumes.as_deref() {
            None | Some("all") => Some(Selection::All),
            Some("root") => Some(Selection::Root),
            Some(_) => None,
        }
    }
}

impl Params for SnapshotParams {
    const FIELDS: &'static [&'static str] = &["volumes", "description"];

    fn check(&self, stage: ParamStage) -> Vec<ParamIssue> {
        let mut issues = Vec::new();
        if let Some(volumes) = &self.volumes {
            let deferred = stage == ParamStage::Load && is_template(volumes);
            if !deferred && self.selection().is_none() {
                issues.push(
                    ParamIssue::at(["volumes"], format!("expected `all` or `root`, found `{volumes}`"))
                        .with_help("write `volumes: all` for every attached EBS volume or `volumes: root` for the root volume"),
                );
            }
        }
        if let Some(description) = &self.description {
            let deferred = stage == ParamStage::Load && is_template(description);
            let length = description.chars().count();
            if !deferred && length > MAX_DESCRIPTION_CHARS {
                issues.push(ParamIssue::at(
                    ["description"],
                    format!("description is {length} characters long, over the EC2 maximum of {MAX_DESCRIPTION_CHARS}"),
                ));
            }
        }
        issues
    }
}

impl ActionSpec for Snapshot {
    fn name(&self) -> &'static str {
        "snapshot"
    }

    fn validate(&self, params: &Value, stage: ParamStage) -> Vec<ParamIssue> {
        validate::<SnapshotParams>(params, stage)
    }

    fn permissions(&self) -> &'static [&'static str] {
        PERMISSIONS
    }

    fn policy(&self, _params: &[&Value]) -> Vec<PolicyStatement> {
        let keys: Vec<String> = SNAPSHOT_TAG_KEYS
            .iter()
            .map(|key| (*key).to_owned())
            .collect();
        let mut snapshot_with_tags = policy::write(
            "SnapshotWithFindingTag",
            &["ec2:CreateSnapshot"],
            &["snapshot"],
            "snapshot creates snapshots, each tagged with the finding id at creation",
        );
        snapshot_with_tags.condition = Some(serde_json::json!({
            "Null": { format!("aws:RequestTag/{FINDING_ID_TAG}"): "false" }
        }));
        vec![
            policy::describe(
                &["ec2:DescribeInstances", "ec2:DescribeSnapshots"],
                "snapshot lists the attached volumes and finds snapshots already taken for the finding",
            ),
            policy::write(
                "SnapshotVolumes",
                &["ec2:CreateSnapshot"],
                &["volume"],
                "snapshot reads the attached EBS volumes",
            ),
            snapshot_with_tags,
            policy::tags(
                "TagSnapshotsAtCreation",
                "ec2:CreateTags",
                &["snapshot"],
                &keys,
                Some((
                    "StringEquals",
                    serde_json::json!({ "ec2:CreateAction": "CreateSnapshot" }),
                )),
                "snapshot tags each snapshot at creation, which EC2 authorizes as CreateTags",
            ),
        ]
    }
}

#[async_trait]
impl Action for Snapshot {
    fn phase(&self) -> Phase {
        Phase::Evidence
    }

    async fn execute(
        &self,
        context: &Context<'_>,
        params: &Value,
        outcome: &mut Outcome,
    ) -> Result<Status, ActionError> {
        let params = parse::<SnapshotParams>(params)?;
        let selection = params.selection().unwrap_or(Selection::All);
        let Some(instance_id) = context.finding.instance_id.as_deref() else {
            return Ok(Status::skipped("the finding names no EC2 instance"));
        };
        let ec2 = context.ec2;
        let instance = match instance::find(ec2, instance_id).await? {
            Lookup::Found(instance) => instance,
            Lookup::Skip(reason) => return Ok(Status::skipped(reason)),
        };
        let mut volumes = instance::volumes(&instance);
        if selection == Selection::Root {
            volumes.retain(|volume| volume.root);
        }
        if volumes.is_empty() {
            let missing = if selection == Selection::Root {
                "no EBS root volume"
            } else {
                "no EBS volumes"
            };
            return Ok(Status::skipped(format!(
                "instance `{instance_id}` has {missing}"
            )));
        }

        let finding_id = tag_value(&context.finding.id);
        let finding_type = tag_value(&context.finding.finding_type);
        let volume_ids: Vec<String> = volumes.iter().map(|volume| volume.id.clone()).collect();
        let existing = existing_snapshots(ec2, &finding_id, &volume_ids).await?;
        let description = params
            .description
            .unwrap_or_else(|| default_description(context, instance_id));
        let tags_for = |volume: &AttachedVolume| {
            let [id_key, type_key, instance_key, volume_key] = SNAPSHOT_TAG_KEYS;
            vec![
                (id_key.to_owned(), finding_id.clone()),
                (type_key.to_owned(), finding_type.clone()),
                (instance_key.to_owned(), instance_id.to_owned()),
                (volume_key.to_owned(), volume.id.clone()),
            ]
        };

        let mut to_create = Vec::new();
        for volume in &volumes {
            match existing.get(&volume.id) {
                Some(snapshot_id) => outcome.resources.push(
                    Resource::new(
                        snapshot_id.clone(),
                        ResourceKind::Snapshot,
                        Status::AlreadyDone,
                    )
                    .with_detail(format!("of volume `{}`", volume.id)),
                ),
                None => to_create.push(volume),
            }
        }
        let runs = to_create.iter().map(|volume| {
            let tags = tags_for(volume);
            create(ec2, volume, &description, tags, context.dry_run)
        });
        for (resource, call) in join_all(runs).await {
            outcome.resources.push(resource);
            outcome.calls.extend(call);
        }
        Ok(summarize(
            &outcome.resources,
            context.dry_run,
            "volumes not snapshotted",
        ))
    }
}

fn default_description(context: &Context<'_>, instance_id: &str) -> String {
    let text = format!(
        "cordon evidence for GuardDuty finding {} ({}) on {instance_id}",
        context.finding.id, context.finding.finding_type
    );
    replace_controls(&text)
        .chars()
        .take(MAX_DESCRIPTION_CHARS)
        .collect()
}

/// Returns a finding field as a snapshot tag value, with control characters replaced as in
/// rendered templates and cut to the EC2 maximum of 256 characters. A longer value makes EC2
/// reject CreateSnapshot, and moto rejects control characters (real EC2 was not tried), so a
/// shortened tag keeps the evidence. The idempotency lookup uses the same value.
fn tag_value(text: &str) -> String {
    replace_controls(text)
        .chars()
        .take(MAX_TAG_VALUE_CHARS)
        .collect()
}

/// Returns the snapshots tagged with this finding id, by volume id. Snapshots in the `error`
/// state are ignored, so that a failed snapshot is taken again.
async fn existing_snapshots(
    ec2: &aws_sdk_ec2::Client,
    finding_id: &str,
    volume_ids: &[String],
) -> Result<HashMap<String, String>, ActionError> {
    let mut found = HashMap::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_DESCRIBE_PAGES {
        let response = ec2
            .describe_snapshots()
            .owner_ids("self")
            .filters(
                Filter::builder()
                    .name(format!("tag:{FINDING_ID_TAG}"))
                    .values(finding_id)
                    .build(),
            )
            .filters(
                Filter::builder()
                    .name("volume-id")
                    .set_values(Some(volume_ids.to_vec()))
                    .build(),
            )
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|error| ActionError::from_sdk("DescribeSnapshots", &error))?;
        for snapshot in response.snapshots() {
            if snapshot.state() == Some(&SnapshotState::Error) {
                continue;
            }
            if let (Some(volume), Some(id)) = (snapshot.volume_id(), snapshot.snapshot_id()) {
                found
                    .entry(volume.to_owned())
                    .or_insert_with(|| id.to_owned());
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

async fn create(
    ec2: &aws_sdk_ec2::Client,
    volume: &AttachedVolume,
    description: &str,
    tags: Vec<(String, String)>,
    dry_run: bool,
) -> (Resource, Option<ApiCall>) {
    let tags_json: Vec<Value> = tags
        .iter()
        .map(|(key, value)| json!({"Key": key, "Value": value}))
        .collect();
    let call = ApiCall::new(
        "CreateSnapshot",
        json!({
            "VolumeId": volume.id,
            "Description": description,
            "TagSpecifications": [{"ResourceType": "snapshot", "Tags": tags_json}],
        }),
    );
    let volume_resource = |status| Resource::new(volume.id.clone(), ResourceKind::Volume, status);
    if dry_run {
        return (
            volume_resource(Status::WouldChange).with_detail(format!("device {}", volume.device)),
            Some(call),
        );
    }
    let specification = TagSpecification::builder()
        .resource_type(ResourceType::Snapshot)
        .set_tags(Some(
            tags.into_iter()
                .map(|(key, value)| Tag::builder().key(key).value(value).build())
                .collect(),
        ))
        .build();
    let sent = ec2
        .create_snapshot()
        .volume_id(&volume.id)
        .description(description)
        .tag_specifications(specification)
        .send()
        .await;
    match sent {
        Ok(response) => {
            let id = response.snapshot_id().unwrap_or_default().to_owned();
            let resource = Resource::new(id, ResourceKind::Snapshot, Status::Changed)
                .with_detail(format!("of volume `{}`", volume.id));
            (resource, Some(call))
        }
        Err(error) => {
            let error = ActionError::from_sdk("CreateSnapshot", &error);
            (volume_resource(error.to_status()), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn volumes_must_be_all_or_root() {
        let found = Snapshot.validate(&json!({"volumes": "data"}), ParamStage::Load);
        assert_eq!(found[0].path, vec!["volumes"]);
        assert!(
            Snapshot
                .validate(&json!({"volumes": "root"}), ParamStage::Load)
                .is_empty()
        );
        assert!(
            Snapshot
                .validate(&json!({"volumes": "${env.V}"}), ParamStage::Load)
                .is_empty()
        );
        assert!(
            !Snapshot
                .validate(&json!({"volumes": "ROOT"}), ParamStage::Rendered)
                .is_empty()
        );
    }

    #[test]
    fn long_description_is_rejected_after_render() {
        let long = "d".repeat(256);
        let found = Snapshot.validate(&json!({"description": long}), ParamStage::Rendered);
        assert_eq!(found[0].path, vec!["description"]);
        let template = json!({"description": "${finding.type}"});
        assert!(Snapshot.validate(&template, ParamStage::Load).is_empty());
    }
}
