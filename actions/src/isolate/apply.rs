//! Changing one network interface: record its groups, then move it into quarantine.

use aws_sdk_ec2::types::{NetworkInterface, Tag};
use serde_json::json;

use crate::context::ActionError;
use crate::instance::{group_ids, tag_pairs};
use crate::isolate::groups::VpcGroups;
use crate::outcome::{ApiCall, Resource, ResourceKind, Status};
use crate::record;

/// The state of a network interface that matters for isolation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Interface {
    pub(crate) id: String,
    pub(crate) vpc_id: Option<String>,
    pub(crate) groups: Vec<String>,
    /// True when another AWS service manages the interface, so its groups cannot change.
    pub(crate) requester_managed: bool,
    /// True when the interface already carries a record of its original groups.
    pub(crate) has_record: bool,
    /// The keys of the record chunks the interface carries, valid or not.
    pub(crate) record_keys: Vec<String>,
}

impl Interface {
    /// Reads the fields from a DescribeNetworkInterfaces result.
    pub(crate) fn from_sdk(interface: &NetworkInterface) -> Option<Self> {
        Some(Self {
            id: interface.network_interface_id()?.to_owned(),
            vpc_id: interface.vpc_id().map(str::to_owned),
            groups: group_ids(interface),
            requester_managed: interface.requester_managed().unwrap_or(false),
            has_record: record::decode(tag_pairs(interface)).is_some(),
            record_keys: record::chunk_keys(tag_pairs(interface)),
        })
    }
}

/// One write to a network interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// DeleteTags for record chunks that the new record does not overwrite.
    DeleteStale(Vec<String>),
    /// CreateTags with the record of the original groups.
    Record(Vec<(String, String)>),
    /// ModifyNetworkInterfaceAttribute with these groups.
    SetGroups(Vec<String>),
}

/// What to do with one network interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// The interface is already in exactly the quarantine groups.
    Done,
    /// The interface cannot be changed.
    Blocked(ActionError),
    /// These writes, in order.
    Apply(Vec<Step>),
}

/// Decides the writes for one interface. `groups` are the checked groups of its VPC.
pub(crate) fn plan(interface: &Interface, groups: Option<&VpcGroups>) -> Plan {
    let Some(groups) = groups else {
        let vpc = interface.vpc_id.as_deref().unwrap_or("none");
        return Plan::Blocked(ActionError::new(
            "no_group_for_vpc",
            format!("no quarantine group for VPC `{vpc}`"),
        ));
    };
    if same_set(&interface.groups, &groups.quarantine) {
        return Plan::Done;
    }
    if interface.requester_managed {
        return Plan::Blocked(ActionError::new(
            "requester_managed",
            "the network interface is managed by another AWS service, so its security groups cannot be changed",
        ));
    }
    let mut steps = Vec::new();
    // The current groups are the original ones unless an earlier, interrupted run already
    // moved the interface into the allow-all group; only then is an existing record kept.
    // A record found anywhere else is rewritten, so a tag planted by someone who can tag
    // the interface never decides what `release` restores.
    let in_allow_all = groups
        .allow_all
        .as_ref()
        .is_some_and(|allow_all| interface.groups == [allow_all.clone()]);
    if !(in_allow_all && interface.has_record) {
        let fresh = record::encode(&interface.groups);
        let stale: Vec<String> = interface
            .record_keys
            .iter()
            .filter(|key| !fresh.iter().any(|(fresh_key, _)| fresh_key == *key))
            .cloned()
            .collect();
        if !stale.is_empty() {
            steps.push(Step::DeleteStale(stale));
        }
        steps.push(Step::Record(fresh));
    }
    if let Some(allow_all) = &groups.allow_all
        && interface.groups != [allow_all.clone()]
    {
        steps.push(Step::SetGroups(vec![allow_all.clone()]));
    }
    steps.push(Step::SetGroups(groups.quarantine.clone()));
    Plan::Apply(steps)
}

/// Runs the plan for one interface and returns its resource entry and the write calls.
pub(crate) async fn apply(
    ec2: &aws_sdk_ec2::Client,
    interface: &Interface,
    plan: Plan,
    target: &[String],
    dry_run: bool,
) -> (Resource, Vec<ApiCall>) {
    let resource =
        |status| Resource::new(interface.id.clone(), ResourceKind::NetworkInterface, status);
    let change = format!("groups {} to {}", quoted(&interface.groups), quoted(target));
    let steps = match plan {
        Plan::Done => {
            let detail = format!("already in {}", quoted(target));
            return (
                resource(Status::AlreadyDone).with_detail(detail),
                Vec::new(),
            );
        }
        Plan::Blocked(error) => return (resource(error.to_status()), Vec::new()),
        Plan::Apply(steps) => steps,
    };
    let mut calls = Vec::new();
    for step in steps {
        let call = describe_step(&interface.id, &step);
        if !dry_run && let Err(error) = send(ec2, &interface.id, step).await {
            let detail = format!("{change} not made");
            return (resource(error.to_status()).with_detail(detail), calls);
        }
        calls.push(call);
    }
    (resource(Status::change(dry_run)).with_detail(change), calls)
}

fn describe_step(interface_id: &str, step: &Step) -> ApiCall {
    match step {
        Step::DeleteStale(keys) => {
            let tags: Vec<_> = keys.iter().map(|key| json!({"Key": key})).collect();
            ApiCall::new(
                "DeleteTags",
                json!({"Resources": [interface_id], "Tags": tags}),
            )
        }
        Step::Record(tags) => {
            let tags: Vec<_> = tags
                .iter()
                .map(|(key, value)| json!({"Key": key, "Value": value}))
                .collect();
            ApiCall::new(
                "CreateTags",
                json!({"Resources": [interface_id], "Tags": tags}),
            )
        }
        Step::SetGroups(groups) => ApiCall::new(
            "ModifyNetworkInterfaceAttribute",
            json!({"NetworkInterfaceId": interface_id, "Groups": groups}),
        ),
    }
}

async fn send(
    ec2: &aws_sdk_ec2::Client,
    interface_id: &str,
    step: Step,
) -> Result<(), ActionError> {
    match step {
        Step::DeleteStale(keys) => {
            let tags = keys
                .into_iter()
                .map(|key| Tag::builder().key(key).build())
                .collect();
            ec2.delete_tags()
                .resources(interface_id)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(|error| ActionError::from_sdk("DeleteTags", &error))?;
        }
        Step::Record(tags) => {
            let tags = tags
                .into_iter()
                .map(|(key, value)| Tag::builder().key(key).value(value).build())
                .collect();
            ec2.create_tags()
                .resources(interface_id)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(|error| ActionError::from_sdk("CreateTags", &error))?;
        }
        Step::SetGroups(groups) => {
            ec2.modify_network_interface_attribute()
                .network_interface_id(interface_id)
                .set_groups(Some(groups))
                .send()
                .await
                .map_err(|error| {
                    ActionError::from_sdk("ModifyNetworkInterfaceAttribute", &error)
                })?;
        }
    }
    Ok(())
}

/// Returns true when both lists hold the same ids, in any order.
pub(crate) fn same_set(left: &[String], right: &[String]) -> bool {
    let mut left: Vec<&String> = left.iter().collect();
    let mut right: Vec<&String> = right.iter().collect();
    left.sort();
    left.dedup();
    right.sort();
    right.dedup();
    left == right
}

pub(crate) fn quoted(ids: &[String]) -> String {
    if ids.is_empty() {
        return "none".to_owned();
    }
    ids.iter()
        .map(|id| format!("`{id}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interface(groups: &[&str], has_record: bool) -> Interface {
        Interface {
            id: "eni-1".into(),
            vpc_id: Some("vpc-1".into()),
            groups: groups.iter().map(|group| (*group).to_owned()).collect(),
            requester_managed: false,
            has_record,
            record_keys: if has_record {
                vec![record::RECORD_KEY.to_owned()]
            } else {
                Vec::new()
            },
        }
    }

    fn vpc_groups(quarantine: &[&str], allow_all: Option<&str>) -> VpcGroups {
        VpcGroups {
            quarantine: quarantine.iter().map(|group| (*group).to_owned()).collect(),
            allow_all: allow_all.map(str::to_owned),
        }
    }

    #[test]
    fn already_quarantined_is_done() {
        let found = plan(
            &interface(&["sg-q2", "sg-q1"], false),
            Some(&vpc_groups(&["sg-q1", "sg-q2"], None)),
        );
        assert_eq!(found, Plan::Done);
    }

    #[test]
    fn record_then_move() {
        let found = plan(
            &interface(&["sg-a"], false),
            Some(&vpc_groups(&["sg-q"], None)),
        );
        assert_eq!(
            found,
            Plan::Apply(vec![
                Step::Record(vec![(record::RECORD_KEY.into(), "sg-a".into())]),
                Step::SetGroups(vec!["sg-q".into()]),
            ])
        );
    }

    #[test]
    fn existing_record_is_rewritten_from_current_groups() {
        let found = plan(
            &interface(&["sg-a"], true),
            Some(&vpc_groups(&["sg-q"], None)),
        );
        assert_eq!(
            found,
            Plan::Apply(vec![
                Step::Record(vec![(record::RECORD_KEY.into(), "sg-a".into())]),
                Step::SetGroups(vec!["sg-q".into()])
            ])
        );
    }

    #[test]
    fn planted_extra_chunk_is_deleted() {
        let mut planted = interface(&["sg-a"], true);
        planted
            .record_keys
            .push(format!("{}-3", record::RECORD_KEY));
        let found = plan(&planted, Some(&vpc_groups(&["sg-q"], None)));
        let Plan::Apply(steps) = found else {
            panic!("expected writes")
        };
        assert_eq!(
            steps[0],
            Step::DeleteStale(vec![format!("{}-3", record::RECORD_KEY)])
        );
        assert_eq!(
            steps[1],
            Step::Record(vec![(record::RECORD_KEY.into(), "sg-a".into())])
        );
    }

    #[test]
    fn record_is_kept_while_in_allow_all_group() {
        let found = plan(
            &interface(&["sg-open"], true),
            Some(&vpc_groups(&["sg-q"], Some("sg-open"))),
        );
        assert_eq!(
            found,
            Plan::Apply(vec![Step::SetGroups(vec!["sg-q".into()])])
        );
    }

    #[test]
    fn allow_all_comes_first() {
        let found = plan(
            &interface(&["sg-a"], false),
            Some(&vpc_groups(&["sg-q"], Some("sg-open"))),
        );
        let Plan::Apply(steps) = found else {
            panic!("expected writes")
        };
        assert_eq!(steps[1], Step::SetGroups(vec!["sg-open".into()]));
        assert_eq!(steps[2], Step::SetGroups(vec!["sg-q".into()]));
    }

    #[test]
    fn retry_inside_allow_all_skips_it() {
        let found = plan(
            &interface(&["sg-open"], true),
            Some(&vpc_groups(&["sg-q"], Some("sg-open"))),
        );
        assert_eq!(
            found,
            Plan::Apply(vec![Step::SetGroups(vec!["sg-q".into()])])
        );
    }

    #[test]
    fn requester_managed_is_blocked() {
        let mut managed = interface(&["sg-a"], false);
        managed.requester_managed = true;
        let Plan::Blocked(error) = plan(&managed, Some(&vpc_groups(&["sg-q"], None))) else {
            panic!("expected a blocked plan");
        };
        assert_eq!(error.code, "requester_managed");
    }
}
