//! Parameters of `isolate`.

use std::collections::BTreeMap;

use cordon_engine::registry::{ParamIssue, ParamStage, is_template};
use serde::Deserialize;

use crate::context::ActionError;
use crate::params::{Flag, IdKind, OneOrMany, Params, check_id};

/// The maximum number of security groups on one network interface (the EC2 quota can be
/// raised to 16; the default is 5).
pub(crate) const MAX_GROUPS_PER_INTERFACE: usize = 16;

/// The maximum length of a security group name in a VPC.
const MAX_GROUP_NAME_CHARS: usize = 255;

const SOURCES: [&str; 4] = ["security_group", "security_groups", "by_vpc", "group_name"];

/// `isolate` parameters as written in a rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IsolateParams {
    /// One quarantine group id for every VPC.
    security_group: Option<String>,
    /// Several quarantine group ids for every VPC.
    security_groups: Option<Vec<String>>,
    /// Quarantine group ids per VPC id.
    by_vpc: Option<BTreeMap<String, OneOrMany>>,
    /// The name of the quarantine group, looked up in each network interface's VPC.
    group_name: Option<String>,
    /// Accept quarantine groups that have egress rules.
    #[serde(default)]
    allow_egress: Flag,
    /// Move network interfaces through an allow-all group first, so that tracked
    /// connections become untracked and end when the quarantine group replaces it.
    #[serde(default)]
    close_tracked_connections: Flag,
    /// The allow-all group id for every VPC.
    allow_all_group: Option<String>,
    /// Allow-all group ids per VPC id.
    allow_all_by_vpc: Option<BTreeMap<String, String>>,
}

/// The source of the quarantine groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum GroupSource {
    /// The same group ids in every VPC.
    Ids(Vec<String>),
    /// Group ids per VPC id.
    ByVpc(BTreeMap<String, Vec<String>>),
    /// A group name, looked up in each VPC.
    Name(String),
}

/// The source of the allow-all group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AllowAllSource {
    /// The same group id in every VPC.
    Id(String),
    /// A group id per VPC id.
    ByVpc(BTreeMap<String, String>),
}

/// `isolate` parameters ready to execute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) quarantine: GroupSource,
    pub(crate) allow_egress: bool,
    pub(crate) allow_all: Option<AllowAllSource>,
}

impl IsolateParams {
    fn sources_set(&self) -> Vec<&'static str> {
        let set = [
            self.security_group.is_some(),
            self.security_groups.is_some(),
            self.by_vpc.is_some(),
            self.group_name.is_some(),
        ];
        SOURCES
            .iter()
            .zip(set)
            .filter(|(_, is_set)| *is_set)
            .map(|(name, _)| *name)
            .collect()
    }

    /// Converts checked parameters into settings.
    ///
    /// # Errors
    ///
    /// Returns `invalid_parameters` when no quarantine group source is set, which
    /// [`Params::check`] reports first.
    pub(crate) fn settings(&self) -> Result<Settings, ActionError> {
        let quarantine = if let Some(id) = &self.security_group {
            GroupSource::Ids(vec![id.clone()])
        } else if let Some(ids) = &self.security_groups {
            GroupSource::Ids(dedup(ids.iter().map(String::as_str)))
        } else if let Some(map) = &self.by_vpc {
            let map = map
                .iter()
                .map(|(vpc, ids)| (vpc.clone(), dedup(ids.items())))
                .collect();
            GroupSource::ByVpc(map)
        } else if let Some(name) = &self.group_name {
            GroupSource::Name(name.clone())
        } else {
            return Err(ActionError::new(
                "invalid_parameters",
                "no quarantine security group is set",
            ));
        };
        let allow_all = if self.close_tracked_connections.is_true() {
            match (&self.allow_all_group, &self.allow_all_by_vpc) {
                (Some(id), _) => Some(AllowAllSource::Id(id.clone())),
                (None, Some(map)) => Some(AllowAllSource::ByVpc(map.clone())),
                (None, None) => None,
            }
        } else {
            None
        };
        Ok(Settings {
            quarantine,
            allow_egress: self.allow_egress.is_true(),
            allow_all,
        })
    }

    fn check_sources(&self, stage: ParamStage, issues: &mut Vec<ParamIssue>) {
        let set = self.sources_set();
        match set.as_slice() {
            [] => issues.push(
                ParamIssue::at(Vec::<String>::new(), "no quarantine security group is set")
                    .with_help("set one of `security_group`, `security_groups`, `by_vpc` or `group_name`"),
            ),
            [_] => {}
            [first, second, ..] => issues.push(
                ParamIssue::at([*second], format!("`{first}` and `{second}` are both set"))
                    .with_help("set only one of `security_group`, `security_groups`, `by_vpc` or `group_name`"),
            ),
        }
        if let Some(id) = &self.security_group {
            issues.extend(check_id(
                &["security_group"],
                id,
                IdKind::SecurityGroup,
                stage,
            ));
        }
        if let Some(ids) = &self.security_groups {
            check_group_list(&["security_groups"], ids, stage, issues);
        }
        if let Some(map) = &self.by_vpc {
            if map.is_empty() {
                issues.push(ParamIssue::at(["by_vpc"], "`by_vpc` is empty").with_help(
                    "map each VPC id to its quarantine group id, e.g. `vpc-0123456789abcdef0: sg-0123456789abcdef0`",
                ));
            }
            for (vpc, ids) in map {
                issues.extend(check_id(&["by_vpc", vpc], vpc, IdKind::Vpc, stage));
                match ids {
                    OneOrMany::One(id) => {
                        issues.extend(check_id(&["by_vpc", vpc], id, IdKind::SecurityGroup, stage));
                    }
                    OneOrMany::Many(list) => {
                        check_group_list(&["by_vpc", vpc], list, stage, issues);
                    }
                }
            }
        }
        if let Some(name) = &self.group_name {
            check_group_name(name, stage, issues);
        }
    }

    fn check_allow_all(&self, stage: ParamStage, issues: &mut Vec<ParamIssue>) {
        let allow_all_set = self.allow_all_group.is_some() || self.allow_all_by_vpc.is_some();
        if self.allow_all_group.is_some() && self.allow_all_by_vpc.is_some() {
            issues.push(
                ParamIssue::at(
                    ["allow_all_by_vpc"],
                    "`allow_all_group` and `allow_all_by_vpc` are both set",
                )
                .with_help("set only one of them"),
            );
        }
        if self.close_tracked_connections.is_known(stage) {
            let close = self.close_tracked_connections.is_true();
            if close && !allow_all_set {
                issues.push(
                    ParamIssue::at(["close_tracked_connections"], "no allow-all security group is set")
                        .with_help("set `allow_all_group` (a group id) or `allow_all_by_vpc` (VPC id to group id)"),
                );
            }
            if !close && allow_all_set {
                let key = if self.allow_all_group.is_some() {
                    "allow_all_group"
                } else {
                    "allow_all_by_vpc"
                };
                issues.push(
                    ParamIssue::at(
                        [key],
                        "the allow-all group is used only with `close_tracked_connections: true`",
                    )
                    .with_help("set `close_tracked_connections: true` or remove this parameter"),
                );
            }
        }
        if let Some(id) = &self.allow_all_group {
            issues.extend(check_id(
                &["allow_all_group"],
                id,
                IdKind::SecurityGroup,
                stage,
            ));
            if self.quarantine_ids().contains(&id.as_str()) {
                issues.push(
                    ParamIssue::at(
                        ["allow_all_group"],
                        format!("`{id}` is also a quarantine group"),
                    )
                    .with_help(
                        "the allow-all group must be a different group that allows all traffic",
                    ),
                );
            }
        }
        if let Some(map) = &self.allow_all_by_vpc {
            for (vpc, id) in map {
                issues.extend(check_id(
                    &["allow_all_by_vpc", vpc],
                    vpc,
                    IdKind::Vpc,
                    stage,
                ));
                issues.extend(check_id(
                    &["allow_all_by_vpc", vpc],
                    id,
                    IdKind::SecurityGroup,
                    stage,
                ));
            }
        }
    }

    fn quarantine_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.security_group.iter().map(String::as_str).collect();
        ids.extend(self.security_groups.iter().flatten().map(String::as_str));
        ids.extend(
            self.by_vpc
                .iter()
                .flat_map(|map| map.values())
                .flat_map(OneOrMany::items),
        );
        ids
    }
}

impl Params for IsolateParams {
    const FIELDS: &'static [&'static str] = &[
        "security_group",
        "security_groups",
        "by_vpc",
        "group_name",
        "allow_egress",
        "close_tracked_connections",
        "allow_all_group",
        "allow_all_by_vpc",
    ];

    fn check(&self, stage: ParamStage) -> Vec<ParamIssue> {
        let mut issues = Vec::new();
        self.check_sources(stage, &mut issues);
        issues.extend(self.allow_egress.check("allow_egress", stage));
        issues.extend(
            self.close_tracked_connections
                .check("close_tracked_connections", stage),
        );
        self.check_allow_all(stage, &mut issues);
        issues
    }
}

fn check_group_list(
    path: &[&str],
    ids: &[String],
    stage: ParamStage,
    issues: &mut Vec<ParamIssue>,
) {
    let key = path.join(".");
    if ids.is_empty() {
        issues.push(
            ParamIssue::at(path.iter().copied(), format!("`{key}` is empty"))
                .with_help("list at least one security group id"),
        );
    }
    if ids.len() > MAX_GROUPS_PER_INTERFACE {
        issues.push(
            ParamIssue::at(
                path.iter().copied(),
                format!("{} groups listed, over the EC2 maximum of {MAX_GROUPS_PER_INTERFACE} per network interface", ids.len()),
            ),
        );
    }
    for (index, id) in ids.iter().enumerate() {
        let index = index.to_string();
        let mut item_path: Vec<&str> = path.to_vec();
        item_path.push(&index);
        issues.extend(check_id(&item_path, id, IdKind::SecurityGroup, stage));
    }
}

fn check_group_name(name: &str, stage: ParamStage, issues: &mut Vec<ParamIssue>) {
    if stage == ParamStage::Load && is_template(name) {
        return;
    }
    if name.trim().is_empty() {
        issues.push(ParamIssue::at(["group_name"], "the group name is empty"));
    } else if name.chars().count() > MAX_GROUP_NAME_CHARS {
        issues.push(ParamIssue::at(
            ["group_name"],
            format!("the group name is longer than {MAX_GROUP_NAME_CHARS} characters"),
        ));
    } else if name.starts_with("sg-") {
        issues.push(
            ParamIssue::at(
                ["group_name"],
                format!("`{name}` is a group id, not a group name"),
            )
            .with_help(
                "write group ids under `security_group`; EC2 group names cannot start with `sg-`",
            ),
        );
    }
}

fn dedup<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut unique: Vec<String> = Vec::new();
    for id in ids {
        if !unique.iter().any(|seen| seen == id) {
            unique.push(id.to_owned());
        }
    }
    unique
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::params::{parse, validate};

    const SG: &str = "sg-0123456789abcdef0";
    const SG2: &str = "sg-0123456789abcdef1";
    const VPC: &str = "vpc-0123456789abcdef0";

    fn issues(params: Value, stage: ParamStage) -> Vec<ParamIssue> {
        validate::<IsolateParams>(&params, stage)
    }

    #[test]
    fn misspelled_key_has_path_and_help() {
        let found = issues(json!({"security_groupp": SG}), ParamStage::Load);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, vec!["security_groupp"]);
        assert_eq!(
            found[0].help.as_deref(),
            Some("did you mean `security_group`?")
        );
    }

    #[test]
    fn one_source_required() {
        let none = issues(json!({}), ParamStage::Load);
        assert_eq!(none[0].path, Vec::<String>::new());
        let two = issues(
            json!({"security_group": SG, "group_name": "q"}),
            ParamStage::Load,
        );
        assert_eq!(two[0].path, vec!["group_name"]);
    }

    #[test]
    fn template_id_is_checked_after_render() {
        let params = json!({"security_group": "${env.QUARANTINE_SG}"});
        assert!(issues(params, ParamStage::Load).is_empty());
        let rendered = issues(
            json!({"security_group": "quarantine"}),
            ParamStage::Rendered,
        );
        assert_eq!(rendered[0].path, vec!["security_group"]);
        assert!(rendered[0].message.contains("not a security group id"));
    }

    #[test]
    fn list_items_have_index_paths() {
        let found = issues(json!({"security_groups": [SG, "sg-x"]}), ParamStage::Load);
        assert_eq!(found[0].path, vec!["security_groups", "1"]);
    }

    #[test]
    fn by_vpc_checks_keys_and_values() {
        let found = issues(
            json!({"by_vpc": {"vpc-1": SG, VPC: ["bad"]}}),
            ParamStage::Load,
        );
        let paths: Vec<Vec<String>> = found.into_iter().map(|issue| issue.path).collect();
        assert!(paths.contains(&vec!["by_vpc".to_owned(), "vpc-1".to_owned()]));
        assert!(paths.contains(&vec!["by_vpc".to_owned(), VPC.to_owned(), "0".to_owned()]));
    }

    #[test]
    fn close_tracked_needs_allow_all_group() {
        let found = issues(
            json!({"security_group": SG, "close_tracked_connections": true}),
            ParamStage::Load,
        );
        assert_eq!(found[0].path, vec!["close_tracked_connections"]);
        let templated = json!({"security_group": SG, "close_tracked_connections": "${env.CLOSE}"});
        assert!(issues(templated, ParamStage::Load).is_empty());
        let unused = issues(
            json!({"security_group": SG, "allow_all_group": SG2}),
            ParamStage::Load,
        );
        assert_eq!(unused[0].path, vec!["allow_all_group"]);
    }

    #[test]
    fn allow_all_must_differ_from_quarantine() {
        let params =
            json!({"security_group": SG, "close_tracked_connections": true, "allow_all_group": SG});
        let found = issues(params, ParamStage::Load);
        assert_eq!(found[0].path, vec!["allow_all_group"]);
    }

    #[test]
    fn group_name_is_not_an_id() {
        let found = issues(json!({"group_name": SG}), ParamStage::Load);
        assert_eq!(found[0].path, vec!["group_name"]);
    }

    #[test]
    fn settings_from_rendered_strings() {
        let params = json!({
            "security_groups": [SG, SG2, SG],
            "allow_egress": "true",
            "close_tracked_connections": "TRUE",
            "allow_all_by_vpc": {VPC: "sg-0123456789abcdef2"}
        });
        let parsed: IsolateParams = parse(&params).unwrap();
        let settings = parsed.settings().unwrap();
        assert_eq!(
            settings.quarantine,
            GroupSource::Ids(vec![SG.into(), SG2.into()])
        );
        assert!(settings.allow_egress);
        assert!(matches!(settings.allow_all, Some(AllowAllSource::ByVpc(_))));
    }
}
