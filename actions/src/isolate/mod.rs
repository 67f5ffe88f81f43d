//! `isolate`: moves every network interface of the instance into quarantine security groups.
//!
//! The steps:
//!
//! 1. DescribeInstances reads the attached network interfaces now, because the finding's list
//!    may be stale. A missing or terminated instance skips the action.
//! 2. DescribeNetworkInterfaces reads each interface's groups, tags and whether another
//!    service manages it.
//! 3. DescribeSecurityGroups finds and checks the groups for every VPC involved. Any problem
//!    (a group missing, in another VPC, with egress rules) fails the action before anything
//!    changes.
//! 4. For each interface, concurrently: CreateTags records the current groups on the
//!    interface unless a record exists (a retry keeps the first record, which holds the
//!    groups from before quarantine), then ModifyNetworkInterfaceAttribute sets the groups.
//!    With `close_tracked_connections`, a first ModifyNetworkInterfaceAttribute moves the
//!    interface into the allow-all group. For as long as the two calls take, the instance can
//!    then send and receive any traffic that its subnet allows.
//!
//! ModifyInstanceAttribute is never used: it changes only the primary interface.

mod apply;
mod groups;
mod params;

use std::collections::BTreeMap;

use async_trait::async_trait;
use cordon_engine::registry::{ActionSpec, ParamIssue, ParamStage, PolicyStatement};
use futures::future::join_all;
use serde_json::Value;

use crate::context::{ActionError, Context};
use crate::instance::{self, Lookup};
use crate::outcome::{Outcome, Resource, ResourceKind, Status, changed_or_done};
use crate::params::{parse, validate};
use crate::policy;
use crate::registry::{Action, Phase};

use apply::Interface;
pub(crate) use apply::{quoted, same_set};
use params::{GroupSource, IsolateParams};

/// The `isolate` action.
pub(crate) struct Isolate;

const PERMISSIONS: &[&str] = &[
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:CreateTags",
    "ec2:ModifyNetworkInterfaceAttribute",
    "ec2:DeleteTags",
];

impl ActionSpec for Isolate {
    fn name(&self) -> &'static str {
        "isolate"
    }

    fn validate(&self, params: &Value, stage: ParamStage) -> Vec<ParamIssue> {
        validate::<IsolateParams>(params, stage)
    }

    fn permissions(&self) -> &'static [&'static str] {
        PERMISSIONS
    }

    fn policy(&self, _params: &[&Value]) -> Vec<PolicyStatement> {
        vec![
            policy::describe(
                &[
                    "ec2:DescribeInstances",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSecurityGroups",
                ],
                "isolate reads the instance's current interfaces and checks each quarantine group",
            ),
            policy::write(
                "IsolateInterfaces",
                &["ec2:ModifyNetworkInterfaceAttribute"],
                &["network-interface", "security-group"],
                "isolate replaces the security groups of each network interface",
            ),
            policy::tags(
                "RecordOriginalGroups",
                "ec2:CreateTags",
                &["network-interface"],
                &[format!("{}*", crate::record::RECORD_KEY)],
                None,
                "isolate records each interface's original groups in tags on the interface",
            ),
            policy::tags(
                "DeleteGroupRecords",
                "ec2:DeleteTags",
                &["network-interface"],
                &[format!("{}*", crate::record::RECORD_KEY)],
                None,
                "isolate deletes record chunks left over from an older record before writing a new one",
            ),
        ]
    }
}

#[async_trait]
impl Action for Isolate {
    fn phase(&self) -> Phase {
        Phase::Containment
    }

    async fn execute(
        &self,
        context: &Context<'_>,
        params: &Value,
        outcome: &mut Outcome,
    ) -> Result<Status, ActionError> {
        let settings = parse::<IsolateParams>(params)?.settings()?;
        let Some(instance_id) = context.finding.instance_id.as_deref() else {
            return Ok(Status::skipped("the finding names no EC2 instance"));
        };
        let ec2 = context.ec2;
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
        let interfaces: Vec<Interface> = instance::describe_interfaces(ec2, &ids)
            .await?
            .iter()
            .filter_map(Interface::from_sdk)
            .collect();

        let mut by_vpc: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for interface in &interfaces {
            if let Some(vpc) = &interface.vpc_id {
                by_vpc
                    .entry(vpc.clone())
                    .or_default()
                    .push(interface.id.clone());
            }
        }
        let vpc_groups = match groups::resolve(ec2, &settings, &by_vpc).await {
            Ok(found) => found,
            Err(error) => {
                for interface in &interfaces {
                    outcome.resources.push(Resource::new(
                        interface.id.clone(),
                        ResourceKind::NetworkInterface,
                        Status::not_started(
                            "a security group check failed, so no network interface was changed",
                        ),
                    ));
                }
                return Err(error);
            }
        };

        let runs = interfaces.iter().map(|interface| {
            let groups = interface
                .vpc_id
                .as_ref()
                .and_then(|vpc| vpc_groups.get(vpc));
            let plan = apply::plan(interface, groups);
            let target = groups
                .map(|found| found.quarantine.clone())
                .unwrap_or_default();
            async move { apply::apply(ec2, interface, plan, &target, context.dry_run).await }
        });
        for (resource, calls) in join_all(runs).await {
            outcome.resources.push(resource);
            outcome.calls.extend(calls);
        }
        Ok(summarize(&outcome.resources, context.dry_run))
    }

    /// Two parameter sets have the same effect when they name the same quarantine groups,
    /// however they are written: `security_group: sg-1` and `security_groups: [sg-1]` both
    /// leave the interfaces in `sg-1`, and the order of a list does not matter.
    fn same_effect(&self, first: &Value, second: &Value) -> bool {
        first == second
            || matches!(
                (quarantine_groups(first), quarantine_groups(second)),
                (Some(a), Some(b)) if a == b
            )
    }
}

/// Returns the quarantine groups that `params` name, each list sorted, or `None` when the
/// parameters are not valid.
fn quarantine_groups(params: &Value) -> Option<GroupSource> {
    let settings = parse::<IsolateParams>(params).ok()?.settings().ok()?;
    Some(match settings.quarantine {
        GroupSource::Ids(mut ids) => {
            ids.sort_unstable();
            GroupSource::Ids(ids)
        }
        GroupSource::ByVpc(mut map) => {
            map.values_mut().for_each(|ids| ids.sort_unstable());
            GroupSource::ByVpc(map)
        }
        name @ GroupSource::Name(_) => name,
    })
}

/// Sums up the interfaces: failed when any interface could not be isolated, naming which
/// were and which were not.
fn summarize(resources: &[Resource], dry_run: bool) -> Status {
    let failed: Vec<&Resource> = resources
        .iter()
        .filter(|resource| resource.status.is_failed())
        .collect();
    let isolated: Vec<&str> = resources
        .iter()
        .filter(|resource| !resource.status.is_failed())
        .map(|resource| resource.id.as_str())
        .collect();
    if let Some(first) = failed.first() {
        let code = match &first.status {
            Status::Failed { code, .. } => code.clone(),
            _ => "failed".to_owned(),
        };
        let not_isolated: Vec<String> = failed
            .iter()
            .map(|resource| match &resource.status {
                Status::Failed { code, .. } => format!("`{}` ({code})", resource.id),
                _ => format!("`{}`", resource.id),
            })
            .collect();
        let isolated_text = if isolated.is_empty() {
            "none".to_owned()
        } else {
            isolated
                .iter()
                .map(|id| format!("`{id}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let verb = if dry_run { "would isolate" } else { "isolated" };
        return Status::failed(
            code,
            format!(
                "{verb} {} of {} network interfaces: {isolated_text}; not isolated: {}",
                isolated.len(),
                resources.len(),
                not_isolated.join(", ")
            ),
        );
    }
    changed_or_done(resources, dry_run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(id: &str, status: Status) -> Resource {
        Resource::new(id, ResourceKind::NetworkInterface, status)
    }

    #[test]
    fn partial_failure_names_both_sides() {
        let resources = vec![
            resource("eni-1", Status::Changed),
            resource("eni-2", Status::failed("requester_managed", "x")),
            resource("eni-3", Status::AlreadyDone),
        ];
        let Status::Failed { code, message } = summarize(&resources, false) else {
            panic!("expected a failure");
        };
        assert_eq!(code, "requester_managed");
        assert_eq!(
            message,
            "isolated 2 of 3 network interfaces: `eni-1`, `eni-3`; not isolated: `eni-2` (requester_managed)"
        );
    }

    #[test]
    fn same_groups_any_form_same_effect() {
        let single = serde_json::json!({"security_group": "sg-11111111"});
        let list = serde_json::json!({"security_groups": ["sg-11111111"]});
        let pair = serde_json::json!({"security_groups": ["sg-11111111", "sg-22222222"]});
        let swapped = serde_json::json!({"security_groups": ["sg-22222222", "sg-11111111"]});
        let by_name = serde_json::json!({"group_name": "quarantine"});
        assert!(Isolate.same_effect(&single, &list));
        assert!(Isolate.same_effect(&pair, &swapped));
        assert!(!Isolate.same_effect(&single, &pair));
        assert!(!Isolate.same_effect(&single, &by_name));
        let egress = serde_json::json!({"security_group": "sg-11111111", "allow_egress": true});
        assert!(Isolate.same_effect(&single, &egress));
    }

    #[test]
    fn all_done_is_already_done() {
        let resources = vec![resource("eni-1", Status::AlreadyDone)];
        assert_eq!(summarize(&resources, false), Status::AlreadyDone);
    }

    #[test]
    fn dry_run_reports_would_change() {
        let resources = vec![resource("eni-1", Status::WouldChange)];
        assert_eq!(summarize(&resources, true), Status::WouldChange);
    }
}
