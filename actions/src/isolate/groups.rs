//! Finding the quarantine and allow-all groups for each VPC and checking them before any
//! network interface changes.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_ec2::types::{Filter, IpPermission, SecurityGroup};

use crate::context::ActionError;
use crate::isolate::params::{AllowAllSource, GroupSource, Settings};

/// The groups to use in one VPC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VpcGroups {
    /// The quarantine group ids, in the order the rule lists them.
    pub(crate) quarantine: Vec<String>,
    /// The allow-all group id, when tracked connections are to be closed.
    pub(crate) allow_all: Option<String>,
}

/// Finds the groups for every VPC in `interfaces_by_vpc` (VPC id to network interface ids)
/// and checks them. Each group must exist and be in that VPC. Quarantine groups must have no
/// egress rules unless `allow_egress` is set, and allow-all groups must allow all traffic.
///
/// # Errors
///
/// Returns the first problem found, naming the group and the rule or VPC at fault.
pub(crate) async fn resolve(
    ec2: &aws_sdk_ec2::Client,
    settings: &Settings,
    interfaces_by_vpc: &BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, VpcGroups>, ActionError> {
    let mut known: HashMap<String, SecurityGroup> = HashMap::new();
    let quarantine = quarantine_ids(ec2, settings, interfaces_by_vpc, &mut known).await?;
    let allow_all = allow_all_ids(settings, interfaces_by_vpc)?;

    let mut to_describe: Vec<String> = quarantine.values().flatten().cloned().collect();
    to_describe.extend(allow_all.values().cloned());
    to_describe.retain(|id| !known.contains_key(id));
    to_describe.sort();
    to_describe.dedup();
    for group in describe_by_id(ec2, &to_describe).await? {
        if let Some(id) = group.group_id() {
            known.insert(id.to_owned(), group.clone());
        }
    }

    let mut resolved = BTreeMap::new();
    for (vpc, interfaces) in interfaces_by_vpc {
        let ids = quarantine.get(vpc).cloned().unwrap_or_default();
        for id in &ids {
            let group = lookup(&known, id)?;
            check_vpc(group, "quarantine", vpc, interfaces)?;
            if !settings.allow_egress {
                check_no_egress(group)?;
            }
        }
        let allow_all_id = allow_all.get(vpc).cloned();
        if let Some(id) = &allow_all_id {
            if ids.contains(id) {
                return Err(ActionError::new(
                    "allow_all_group_is_quarantine",
                    format!(
                        "security group `{id}` is both the allow-all group and a quarantine group in VPC `{vpc}`"
                    ),
                ));
            }
            let group = lookup(&known, id)?;
            check_vpc(group, "allow-all", vpc, interfaces)?;
            check_allows_all(group)?;
        }
        resolved.insert(
            vpc.clone(),
            VpcGroups {
                quarantine: ids,
                allow_all: allow_all_id,
            },
        );
    }
    Ok(resolved)
}

async fn quarantine_ids(
    ec2: &aws_sdk_ec2::Client,
    settings: &Settings,
    interfaces_by_vpc: &BTreeMap<String, Vec<String>>,
    known: &mut HashMap<String, SecurityGroup>,
) -> Result<BTreeMap<String, Vec<String>>, ActionError> {
    let mut ids = BTreeMap::new();
    match &settings.quarantine {
        GroupSource::Ids(list) => {
            for vpc in interfaces_by_vpc.keys() {
                ids.insert(vpc.clone(), list.clone());
            }
        }
        GroupSource::ByVpc(map) => {
            for (vpc, interfaces) in interfaces_by_vpc {
                let Some(list) = map.get(vpc) else {
                    return Err(ActionError::new(
                        "no_group_for_vpc",
                        format!(
                            "`by_vpc` names no quarantine group for VPC `{vpc}` of network interface {}",
                            quoted(interfaces)
                        ),
                    ));
                };
                ids.insert(vpc.clone(), list.clone());
            }
        }
        GroupSource::Name(name) => {
            let vpcs: Vec<String> = interfaces_by_vpc.keys().cloned().collect();
            for group in describe_by_name(ec2, name, &vpcs).await? {
                if let (Some(id), Some(vpc)) = (group.group_id(), group.vpc_id()) {
                    ids.insert(vpc.to_owned(), vec![id.to_owned()]);
                    known.insert(id.to_owned(), group.clone());
                }
            }
            if let Some(vpc) = vpcs.iter().find(|vpc| !ids.contains_key(*vpc)) {
                return Err(ActionError::new(
                    "group_not_found",
                    format!("no security group named `{name}` in VPC `{vpc}`"),
                ));
            }
        }
    }
    Ok(ids)
}

fn allow_all_ids(
    settings: &Settings,
    interfaces_by_vpc: &BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, String>, ActionError> {
    let mut ids = BTreeMap::new();
    match &settings.allow_all {
        None => {}
        Some(AllowAllSource::Id(id)) => {
            for vpc in interfaces_by_vpc.keys() {
                ids.insert(vpc.clone(), id.clone());
            }
        }
        Some(AllowAllSource::ByVpc(map)) => {
            for (vpc, interfaces) in interfaces_by_vpc {
                let Some(id) = map.get(vpc) else {
                    return Err(ActionError::new(
                        "no_group_for_vpc",
                        format!(
                            "`allow_all_by_vpc` names no allow-all group for VPC `{vpc}` of network interface {}",
                            quoted(interfaces)
                        ),
                    ));
                };
                ids.insert(vpc.clone(), id.clone());
            }
        }
    }
    Ok(ids)
}

async fn describe_by_id(
    ec2: &aws_sdk_ec2::Client,
    ids: &[String],
) -> Result<Vec<SecurityGroup>, ActionError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let response = ec2
        .describe_security_groups()
        .set_group_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(|error| ActionError::from_sdk("DescribeSecurityGroups", &error))?;
    Ok(response.security_groups().to_vec())
}

async fn describe_by_name(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
    vpcs: &[String],
) -> Result<Vec<SecurityGroup>, ActionError> {
    let response = ec2
        .describe_security_groups()
        .filters(Filter::builder().name("group-name").values(name).build())
        .filters(
            Filter::builder()
                .name("vpc-id")
                .set_values(Some(vpcs.to_vec()))
                .build(),
        )
        .send()
        .await
        .map_err(|error| ActionError::from_sdk("DescribeSecurityGroups", &error))?;
    Ok(response.security_groups().to_vec())
}

fn lookup<'a>(
    known: &'a HashMap<String, SecurityGroup>,
    id: &str,
) -> Result<&'a SecurityGroup, ActionError> {
    known.get(id).ok_or_else(|| {
        ActionError::new(
            "InvalidGroup.NotFound",
            format!("security group `{id}` does not exist"),
        )
    })
}

fn check_vpc(
    group: &SecurityGroup,
    role: &str,
    vpc: &str,
    interfaces: &[String],
) -> Result<(), ActionError> {
    let group_vpc = group.vpc_id().unwrap_or("no VPC");
    if group_vpc == vpc {
        return Ok(());
    }
    Err(ActionError::new(
        "group_in_other_vpc",
        format!(
            "{role} security group `{}` is in VPC `{group_vpc}`, but network interface {} is in VPC `{vpc}`",
            group.group_id().unwrap_or_default(),
            quoted(interfaces)
        ),
    ))
}

fn check_no_egress(group: &SecurityGroup) -> Result<(), ActionError> {
    let rules = group.ip_permissions_egress();
    let Some(first) = rules.first() else {
        return Ok(());
    };
    let more = match rules.len() {
        1 => String::new(),
        count => format!(" (and {} more)", count - 1),
    };
    Err(ActionError::new(
        "egress_not_empty",
        format!(
            "quarantine security group `{}` has an egress rule allowing {}{more}; remove its egress rules or set `allow_egress: true`",
            group.group_id().unwrap_or_default(),
            describe_rule(first)
        ),
    ))
}

/// Checks that an allow-all group allows all traffic from and to 0.0.0.0/0. Only then are
/// the instance's flows untracked while it is in the group.
fn check_allows_all(group: &SecurityGroup) -> Result<(), ActionError> {
    let id = group.group_id().unwrap_or_default();
    if !group.ip_permissions().iter().any(is_all_traffic_anywhere) {
        return Err(ActionError::new(
            "allow_all_group_not_open",
            format!(
                "allow-all security group `{id}` has no ingress rule allowing all traffic from 0.0.0.0/0"
            ),
        ));
    }
    if !group
        .ip_permissions_egress()
        .iter()
        .any(is_all_traffic_anywhere)
    {
        return Err(ActionError::new(
            "allow_all_group_not_open",
            format!(
                "allow-all security group `{id}` has no egress rule allowing all traffic to 0.0.0.0/0"
            ),
        ));
    }
    Ok(())
}

fn is_all_traffic_anywhere(rule: &IpPermission) -> bool {
    rule.ip_protocol() == Some("-1")
        && rule
            .ip_ranges()
            .iter()
            .any(|range| range.cidr_ip() == Some("0.0.0.0/0"))
}

/// Describes a rule as protocol, ports and peers, e.g. `tcp port 443 to 0.0.0.0/0`.
pub(crate) fn describe_rule(rule: &IpPermission) -> String {
    let protocol = match rule.ip_protocol() {
        Some("-1") | None => "all traffic".to_owned(),
        Some(protocol) => match (rule.from_port(), rule.to_port()) {
            (Some(from), Some(to)) if from == to => format!("{protocol} port {from}"),
            (Some(from), Some(to)) if from >= 0 => format!("{protocol} ports {from}-{to}"),
            _ => protocol.to_owned(),
        },
    };
    let mut peers: Vec<&str> = Vec::new();
    peers.extend(rule.ip_ranges().iter().filter_map(|range| range.cidr_ip()));
    peers.extend(
        rule.ipv6_ranges()
            .iter()
            .filter_map(|range| range.cidr_ipv6()),
    );
    peers.extend(
        rule.prefix_list_ids()
            .iter()
            .filter_map(|list| list.prefix_list_id()),
    );
    peers.extend(
        rule.user_id_group_pairs()
            .iter()
            .filter_map(|pair| pair.group_id()),
    );
    if peers.is_empty() {
        protocol
    } else {
        format!("{protocol} to {}", peers.join(", "))
    }
}

fn quoted(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("`{id}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::{IpRange, UserIdGroupPair};

    use super::*;

    #[test]
    fn rule_descriptions() {
        let all = IpPermission::builder()
            .ip_protocol("-1")
            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
            .build();
        assert_eq!(describe_rule(&all), "all traffic to 0.0.0.0/0");
        let https = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(443)
            .to_port(443)
            .user_id_group_pairs(UserIdGroupPair::builder().group_id("sg-1").build())
            .build();
        assert_eq!(describe_rule(&https), "tcp port 443 to sg-1");
        let range = IpPermission::builder()
            .ip_protocol("udp")
            .from_port(1)
            .to_port(9)
            .build();
        assert_eq!(describe_rule(&range), "udp ports 1-9");
    }

    #[test]
    fn egress_rule_is_named() {
        let group = SecurityGroup::builder()
            .group_id("sg-q")
            .ip_permissions_egress(
                IpPermission::builder()
                    .ip_protocol("-1")
                    .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                    .build(),
            )
            .build();
        let error = check_no_egress(&group).unwrap_err();
        assert_eq!(error.code, "egress_not_empty");
        assert!(error.message.contains("`sg-q`"), "{}", error.message);
        assert!(
            error.message.contains("all traffic to 0.0.0.0/0"),
            "{}",
            error.message
        );
    }

    #[test]
    fn allow_all_needs_both_directions() {
        let open = IpPermission::builder()
            .ip_protocol("-1")
            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
            .build();
        let egress_only = SecurityGroup::builder()
            .group_id("sg-a")
            .ip_permissions_egress(open.clone())
            .build();
        assert!(check_allows_all(&egress_only).is_err());
        let both = SecurityGroup::builder()
            .group_id("sg-a")
            .ip_permissions(open.clone())
            .ip_permissions_egress(open)
            .build();
        assert!(check_allows_all(&both).is_ok());
    }
}
