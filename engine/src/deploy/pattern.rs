//! The EventBridge event pattern for a rule set.
//!
//! The pattern selects GuardDuty findings whose type one of the enabled rules names, and,
//! when every rule of a group names resource types, only those resource types. Conditions,
//! `when` and the sample filter are not part of it: the function checks them. An exact type
//! becomes a string, a glob ending in its only `*` becomes a `prefix` pattern, and any other
//! glob a `wildcard` pattern, with `?` widened to `*` because EventBridge wildcards know only
//! `*`. So the pattern never drops a finding a rule could match; it may deliver a few that
//! no rule matches, and those are skipped by the function.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::finding::{FINDING_DETAIL_TYPE, GUARDDUTY_SOURCE};
use crate::rule::TypePattern;
use crate::ruleset::RuleSet;

/// Builds the event pattern. With no enabled rule, the pattern matches no finding type.
pub fn event_pattern(rules: &RuleSet) -> Value {
    // Rules grouped by their resource types (sorted; empty means any resource).
    let mut groups: BTreeMap<Vec<String>, TypeSet> = BTreeMap::new();
    for rule in rules.rules().iter().filter(|rule| rule.enabled) {
        let mut resources = rule.resources.clone();
        resources.sort();
        resources.dedup();
        let set = groups.entry(resources).or_default();
        for pattern in &rule.types {
            set.add(pattern);
        }
    }
    let any_resource = groups.remove(&Vec::new());
    let mut branches: Vec<Value> = Vec::new();
    if let Some(set) = &any_resource {
        branches.push(branch(set, &[]));
    }
    for (resources, set) in &groups {
        let set = set.without(any_resource.as_ref());
        if !set.is_empty() {
            branches.push(branch(&set, resources));
        }
    }
    let detail = match branches.len() {
        0 => json!({ "type": [] }),
        1 => branches.into_iter().next().unwrap_or_default(),
        _ => json!({ "$or": branches }),
    };
    let mut pattern = json!({
        "source": [GUARDDUTY_SOURCE],
        "detail-type": [FINDING_DETAIL_TYPE],
    });
    let selects_everything = detail.as_object().is_some_and(serde_json::Map::is_empty);
    if let (false, Some(object)) = (selects_everything, pattern.as_object_mut()) {
        object.insert("detail".to_owned(), detail);
    }
    pattern
}

/// The finding types of a group of rules: exact names and EventBridge content filters.
#[derive(Clone, Debug, Default)]
struct TypeSet {
    every_type: bool,
    exact: Vec<String>,
    prefixes: Vec<String>,
    wildcards: Vec<String>,
}

impl TypeSet {
    fn add(&mut self, pattern: &TypePattern) {
        match pattern {
            TypePattern::Exact(text) => push_unique(&mut self.exact, text),
            TypePattern::Glob(glob) => {
                let text = glob.as_str();
                let prefix = glob.literal_prefix();
                if text.chars().all(|c| c == '*') {
                    self.every_type = true;
                } else if prefix.len() + 1 == text.len() && text.ends_with('*') {
                    push_unique(&mut self.prefixes, prefix);
                } else {
                    push_unique(&mut self.wildcards, &text.replace('?', "*"));
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        !self.every_type
            && self.exact.is_empty()
            && self.prefixes.is_empty()
            && self.wildcards.is_empty()
    }

    /// Drops what `covered` already selects for every resource type.
    fn without(&self, covered: Option<&TypeSet>) -> TypeSet {
        let Some(covered) = covered else {
            return self.clone();
        };
        if covered.every_type {
            return TypeSet::default();
        }
        let mut set = self.clone();
        set.exact.retain(|text| {
            !covered.exact.contains(text)
                && !covered
                    .prefixes
                    .iter()
                    .any(|prefix| text.starts_with(prefix.as_str()))
        });
        set.prefixes.retain(|prefix| {
            !covered
                .prefixes
                .iter()
                .any(|other| prefix.starts_with(other.as_str()))
        });
        set.wildcards
            .retain(|text| !covered.wildcards.contains(text));
        set
    }

    /// The `type` filter, or `None` when every type is selected.
    fn filter(&self) -> Option<Value> {
        if self.every_type {
            return None;
        }
        let mut values: Vec<Value> = Vec::new();
        let mut exact = self.exact.clone();
        exact.sort();
        values.extend(exact.into_iter().map(Value::String));
        let mut prefixes = self.prefixes.clone();
        prefixes.sort();
        values.extend(
            prefixes
                .into_iter()
                .map(|prefix| json!({ "prefix": prefix })),
        );
        let mut wildcards = self.wildcards.clone();
        wildcards.sort();
        values.extend(
            wildcards
                .into_iter()
                .map(|text| json!({ "wildcard": text })),
        );
        Some(Value::Array(values))
    }
}

fn push_unique(list: &mut Vec<String>, text: &str) {
    if !list.iter().any(|item| item == text) {
        list.push(text.to_owned());
    }
}

fn branch(set: &TypeSet, resources: &[String]) -> Value {
    let mut detail = serde_json::Map::new();
    if let Some(filter) = set.filter() {
        detail.insert("type".to_owned(), filter);
    }
    if !resources.is_empty() {
        detail.insert("resource".to_owned(), json!({ "resourceType": resources }));
    }
    Value::Object(detail)
}
