//! `release`: gives each network interface back the security groups that `isolate` recorded
//! on it, then removes the record.
//!
//! An interface without a record is left alone. On a retry, an interface that already has
//! its recorded groups only loses the record tags, so running `release` twice is harmless.
//! When every interface has its groups back, the instance's status tag (the key `tag` writes
//! with `containment_status`), if it carries one, becomes `released`.

use async_trait::async_trait;
use aws_sdk_ec2::types::{NetworkInterface, Tag};
use cordon_engine::registry::{ActionSpec, ParamIssue, ParamStage, PolicyStatement, is_template};
use futures::future::join_all;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clients::Ec2Clients;
use crate::context::{ActionError, Context};
use crate::instance::{self, Lookup, group_ids, tag_pairs};
use crate::isolate::{quoted, same_set};
use crate::outcome::{ApiCall, Outcome, Resource, ResourceKind, Status, summarize};
use crate::params::{Params, parse, validate};
use crate::policy;
use crate::record;
use crate::registry::{Action, Phase};
use crate::tag::check_key;

/// The `release` action.
pub(crate) struct Release;

const PERMISSIONS: &[&str] = &[
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:ModifyNetworkInterfaceAttribute",
    "ec2:DeleteTags",
];

/// The status tag value once the instance's groups are back.
pub(crate) const RELEASED: &str = "released";

/// The parameters of `release`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseParams {
    /// The key of the instance tag that records containment, set to `released` when the
    /// instance carries it. Usually the key given to `tag` as `containment_status`.
    #[serde(default)]
    status_tag: Option<String>,
}

impl Params for ReleaseParams {
    const FIELDS: &'static [&'static str] = &["status_tag"];

    fn check(&self, stage: ParamStage) -> Vec<ParamIssue> {
        let Some(key) = &self.status_tag else {
            return Vec::new();
        };
        if stage == ParamStage::Load && is_template(key) {
            return Vec::new();
        }
        check_key(key)
            .map(|mut issue| {
                issue.path = vec!["status_tag".to_owned()];
                issue
            })
            .into_iter()
            .collect()
    }
}

impl ActionSpec for Release {
    fn name(&self) -> &'static str {
        "release"
    }

    fn validate(&self, params: &Value, stage: ParamStage) -> Vec<ParamIssue> {
        validate::<ReleaseParams>(params, stage)
    }

    fn permissions(&self) -> &'static [&'static str] {
        PERMISSIONS
    }

    fn policy(&self, params: &[&Value]) -> Vec<PolicyStatement> {
        let status_keys: Vec<String> = params
            .iter()
            .filter_map(|rule_params| rule_params.get("status_tag")?.as_str())
            .map(str::to_owned)
            .collect();
        let mut statements = vec![
            policy::describe(
                &["ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces"],
                "release reads the instance's interfaces and their recorded groups",
            ),
            policy::write(
                "IsolateInterfaces",
                &["ec2:ModifyNetworkInterfaceAttribute"],
                &["network-interface", "security-group"],
                "release puts the recorded security groups back on each interface",
            ),
            policy::tags(
                "DeleteGroupRecords",
                "ec2:DeleteTags",
                &["network-interface"],
                &[format!("{}*", crate::record::RECORD_KEY)],
                None,
                "release removes the record tags once the groups are restored",
            ),
        ];
        if !status_keys.is_empty() {
            statements.push(policy::tags(
                "MarkReleased",
                "ec2:CreateTags",
                &["instance"],
                &status_keys,
                None,
                "release sets the instance's status tag to `released`",
            ));
        }
        statements
    }
}

#[async_trait]
impl Action for Release {
    fn phase(&self) -> Phase {
        Phase::Containment
    }

    async fn execute(
        &self,
        context: &Context<'_>,
        params: &Value,
        outcome: &mut Outcome,
    ) -> Result<Status, ActionError> {
        let params = parse::<ReleaseParams>(params)?;
        let Some(instance_id) = context.finding.instance_id.as_deref() else {
            return Ok(Status::skipped("the finding names no EC2 instance"));
        };
        let request = Request {
            instance_id,
            status_tag: params.status_tag.as_deref(),
            dry_run: context.dry_run,
        };
        restore(context.ec2, &request, outcome).await
    }
}

/// The instance to release and how.
struct Request<'a> {
    instance_id: &'a str,
    status_tag: Option<&'a str>,
    dry_run: bool,
}

/// Checks a status tag key for `cordon release` as the `status_tag` parameter is checked.
///
/// # Errors
///
/// Returns what is wrong with the key: empty, too long, `aws:` or reserved by `isolate`.
pub fn check_status_tag(key: &str) -> Result<(), String> {
    match check_key(key) {
        None => Ok(()),
        Some(issue) => Err(match issue.help {
            Some(help) => format!("{}; {help}", issue.message),
            None => issue.message,
        }),
    }
}

/// Restores the recorded groups of every network interface of an instance, for
/// `cordon release`, then sets `status_tag` to `released` when the instance carries it. The
/// outcome has no rule id.
pub async fn release_instance(
    clients: &Ec2Clients,
    instance_id: &str,
    region: Option<&str>,
    status_tag: Option<&str>,
    dry_run: bool,
) -> Outcome {
    let mut outcome = Outcome::new("release", None, Status::AlreadyDone);
    let ec2 = match clients.client(region) {
        Ok(client) => client,
        Err(error) => {
            outcome.status = Status::failed(error.code(), error.to_string());
            return outcome;
        }
    };
    let request = Request {
        instance_id,
        status_tag: status_tag.filter(|key| !key.is_empty()),
        dry_run,
    };
    outcome.status = restore(&ec2, &request, &mut outcome)
        .await
        .unwrap_or_else(|error| error.to_status());
    outcome
}

async fn restore(
    ec2: &aws_sdk_ec2::Client,
    request: &Request<'_>,
    outcome: &mut Outcome,
) -> Result<Status, ActionError> {
    let Request {
        instance_id,
        dry_run,
        ..
    } = *request;
    let instance = match instance::find(ec2, instance_id).await? {
        Lookup::Found(instance) => instance,
        Lookup::Skip(reason) => return Ok(Status::skipped(reason)),
    };
    let ids = instance::interface_ids(&instance);
    if ids.is_empty() {
        return Ok(Status::skipped(format!(
            "instance `{instance_id}` has no network interfaces"
        )));
    }
    let interfaces = instance::describe_interfaces(ec2, &ids).await?;
    let runs = interfaces
        .iter()
        .map(|interface| restore_interface(ec2, interface, dry_run));
    for (resource, calls) in join_all(runs).await {
        outcome.resources.push(resource);
        outcome.calls.extend(calls);
    }
    let status = summarize(
        &outcome.resources,
        dry_run,
        "network interfaces not restored",
    );
    if status.is_failed() {
        return Ok(status);
    }
    let Some(key) = request.status_tag else {
        return Ok(status);
    };
    let current = instance
        .tags()
        .iter()
        .find(|tag| tag.key() == Some(key))
        .map(|tag| tag.value().unwrap_or_default());
    if current.is_none_or(|value| value == RELEASED) {
        return Ok(status);
    }
    let tag = Tag::builder().key(key).value(RELEASED).build();
    outcome.calls.push(ApiCall::new(
        "CreateTags",
        json!({"Resources": [instance_id], "Tags": [{"Key": key, "Value": RELEASED}]}),
    ));
    let change = format!("tag `{key}` set to `{RELEASED}`");
    if !dry_run {
        let sent = ec2
            .create_tags()
            .resources(instance_id)
            .tags(tag)
            .send()
            .await;
        if let Err(error) = sent {
            outcome.calls.pop();
            let error = ActionError::from_sdk("CreateTags", &error);
            let message = format!("groups restored, but {}", error.message);
            return Ok(Status::failed(error.code, message));
        }
    }
    outcome.resources.push(
        Resource::new(instance_id, ResourceKind::Instance, Status::change(dry_run))
            .with_detail(change),
    );
    Ok(Status::change(dry_run))
}

async fn restore_interface(
    ec2: &aws_sdk_ec2::Client,
    interface: &NetworkInterface,
    dry_run: bool,
) -> (Resource, Vec<ApiCall>) {
    let id = interface
        .network_interface_id()
        .unwrap_or_default()
        .to_owned();
    let resource = |status| Resource::new(id.clone(), ResourceKind::NetworkInterface, status);
    let tags = tag_pairs(interface);
    let recorded = match record::decode(tags.iter().copied()) {
        None => {
            let detail = "no recorded groups";
            return (
                resource(Status::AlreadyDone).with_detail(detail),
                Vec::new(),
            );
        }
        Some(Err(error)) => {
            return (
                resource(Status::failed("invalid_record", error.to_string())),
                Vec::new(),
            );
        }
        Some(Ok(groups)) => groups,
    };
    let current = group_ids(interface);
    let record_keys = record::keys(tags.iter().copied());
    let change = format!("groups {} to {}", quoted(&current), quoted(&recorded));
    let mut calls = Vec::new();

    if !same_set(&current, &recorded) {
        calls.push(ApiCall::new(
            "ModifyNetworkInterfaceAttribute",
            json!({"NetworkInterfaceId": id, "Groups": recorded}),
        ));
        if !dry_run {
            let sent = ec2
                .modify_network_interface_attribute()
                .network_interface_id(&id)
                .set_groups(Some(recorded.clone()))
                .send()
                .await;
            if let Err(error) = sent {
                calls.pop();
                let error = ActionError::from_sdk("ModifyNetworkInterfaceAttribute", &error);
                return (
                    resource(error.to_status()).with_detail(format!("{change} not made")),
                    calls,
                );
            }
        }
    }

    let keys_json: Vec<Value> = record_keys.iter().map(|key| json!({"Key": key})).collect();
    calls.push(ApiCall::new(
        "DeleteTags",
        json!({"Resources": [id], "Tags": keys_json}),
    ));
    if !dry_run {
        let tags: Vec<Tag> = record_keys
            .iter()
            .map(|key| Tag::builder().key(key).build())
            .collect();
        let sent = ec2
            .delete_tags()
            .resources(&id)
            .set_tags(Some(tags))
            .send()
            .await;
        if let Err(error) = sent {
            calls.pop();
            let error = ActionError::from_sdk("DeleteTags", &error);
            let detail = format!("{change} made, record tags not removed");
            return (resource(error.to_status()).with_detail(detail), calls);
        }
    }
    (resource(Status::change(dry_run)).with_detail(change), calls)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn takes_only_a_status_tag() {
        assert!(Release.validate(&json!({}), ParamStage::Load).is_empty());
        let params = json!({"status_tag": "cordon:status"});
        assert!(Release.validate(&params, ParamStage::Load).is_empty());
        let issues = Release.validate(&json!({"force": true}), ParamStage::Load);
        assert_eq!(issues[0].path, vec!["force"]);
        let issues = Release.validate(&json!({"status_tag": "aws:x"}), ParamStage::Load);
        assert_eq!(issues[0].path, vec!["status_tag"]);
    }

    #[test]
    fn status_tag_adds_a_narrow_statement() {
        assert_eq!(Release.policy(&[&json!({})]).len(), 3);
        let statements = Release.policy(&[&json!({"status_tag": "cordon:status"})]);
        let last = statements.last().unwrap();
        assert_eq!(last.actions, vec!["ec2:CreateTags"]);
        let condition = serde_json::to_string(&last.condition).unwrap();
        assert!(condition.contains("cordon:status"), "{condition}");
    }
}
