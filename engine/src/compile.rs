//! Compiles one rule file's YAML tree into rules, collecting every problem with its location.

use std::collections::HashSet;
use std::sync::Arc;

use ipnet::IpNet;
use regex::RegexBuilder;
use serde_json::Value as Json;

use crate::condition::{Condition, OPERATOR_NAMES, Operator, Quantifier};
use crate::diag::Diagnostic;
use crate::glob::{self, Glob};
use crate::limits;
use crate::registry::{ActionCatalog, ParamStage};
use crate::rule::{ActionTemplate, ParamTemplate, Rule, TypePattern};
use crate::script::{self, Bindings, Script};
use crate::source::{SourceFile, Span, offset_in_text};
use crate::template::Template;
use crate::yaml::{Node, Value};

/// Environment variables that rules may never read, because they hold AWS credentials.
pub const FORBIDDEN_ENV: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

/// Most errors collected in one load; past this a hostile file only costs time.
pub const MAX_DIAGNOSTICS: usize = 1_000;

/// Most warnings collected in one load. Warnings have their own bound, so that they never
/// crowd out an error.
pub const MAX_WARNINGS: usize = 100;

const FILE_KEYS: &[&str] = &["env", "rules"];
const RULE_KEYS: &[&str] = &[
    "id",
    "description",
    "enabled",
    "include_samples",
    "match",
    "when",
    "actions",
];
const MATCH_KEYS: &[&str] = &["type", "resource", "all", "any", "none"];

/// A compiled rule file.
#[derive(Debug, Default)]
pub struct CompiledFile {
    /// The environment variables the file declares, with where each is declared.
    pub env: Vec<(String, Span)>,
    /// The rules that compiled without error.
    pub rules: Vec<Rule>,
}

/// Compiles a parsed rule file, appending every problem to `diagnostics`.
pub fn compile_file(
    file: &Arc<SourceFile>,
    file_index: usize,
    root: &Node,
    catalog: &dyn ActionCatalog,
    diagnostics: &mut Vec<Diagnostic>,
) -> CompiledFile {
    let mut context = Context {
        file,
        catalog,
        diagnostics,
        rule_id: None,
        env: Vec::new(),
    };
    let mut compiled = CompiledFile::default();

    let entries = match &root.value {
        Value::Map(entries) => entries,
        Value::Null => {
            context.error(root.span, "rule file is empty", Some("add a `rules:` list"));
            return compiled;
        }
        other => {
            let message = format!(
                "expected a mapping with `env` and `rules`, found {}",
                other.kind()
            );
            context.error(root.span, message, None);
            return compiled;
        }
    };
    context.check_keys(entries, FILE_KEYS, "rule file");

    if let Some(env) = find(entries, "env") {
        compiled.env = context.env_list(env);
        context.env = compiled.env.iter().map(|(name, _)| name.clone()).collect();
    }

    match find(entries, "rules") {
        Some(Node {
            value: Value::Seq(items),
            ..
        }) => {
            for item in items {
                if let Some(rule) = context.rule(item, file_index) {
                    compiled.rules.push(rule);
                }
            }
        }
        Some(other) => {
            let message = format!("`rules` must be a list, found {}", other.value.kind());
            context.error(other.span, message, None);
        }
        None => context.error(
            root.span,
            "missing `rules` list",
            Some("add `rules:` with at least one rule"),
        ),
    }
    compiled
}

struct Context<'a> {
    file: &'a Arc<SourceFile>,
    catalog: &'a dyn ActionCatalog,
    diagnostics: &'a mut Vec<Diagnostic>,
    rule_id: Option<String>,
    env: Vec<String>,
}

fn find<'n>(entries: &'n [(Node, Node)], key: &str) -> Option<&'n Node> {
    entries
        .iter()
        .find(|(name, _)| name.as_str() == Some(key))
        .map(|(_, value)| value)
}

/// Suggests the closest of `candidates` to `input`, if one is close.
pub fn suggest<'c>(input: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|candidate| (strsim::jaro_winkler(input, candidate), *candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|left, right| left.0.total_cmp(&right.0))
        .map(|(_, candidate)| candidate)
}

fn expected_keys_help(input: &str, allowed: &[&str]) -> String {
    match suggest(input, allowed) {
        Some(close) => format!("did you mean `{close}`?"),
        None => format!("expected one of: {}", allowed.join(", ")),
    }
}

/// Returns true when a type or glob names the EC2 resource type (`Recon:EC2/Portscan`), whose
/// finding types are all in the fixture catalog.
fn names_ec2(text: &str) -> bool {
    text.to_ascii_lowercase().contains(":ec2/")
}

/// Lists the GuardDuty finding types for EC2 instances, from the fixture catalog.
fn known_ec2_types() -> impl Iterator<Item = &'static str> {
    crate::fixture::supported_types().map(|info| info.finding_type)
}

impl Context<'_> {
    fn glob_too_long(&mut self, span: Span, text: &str) {
        let message = format!(
            "glob is {} bytes long, over the limit of {} bytes",
            text.len(),
            limits::MAX_GLOB_BYTES
        );
        self.error(span, message, None);
    }

    /// Counts the errors so far; warnings do not stop a rule from compiling.
    fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| !d.is_warning()).count()
    }

    /// Warns about an EC2 type, or a glob over EC2 types, that matches no known type.
    fn unknown_type(&mut self, span: Span, text: &str) {
        let warnings = self.diagnostics.len() - self.error_count();
        if warnings >= MAX_WARNINGS {
            return;
        }
        let close = if glob::is_glob(text) {
            None
        } else {
            let known: Vec<&str> = known_ec2_types().collect();
            suggest(text, &known)
        };
        let problem = if glob::is_glob(text) {
            format!("glob `{text}` matches no current GuardDuty EC2 finding type")
        } else {
            format!("`{text}` is not a current GuardDuty EC2 finding type")
        };
        let hint = "`cordon fixture --list` prints the known types; ignore this warning for a \
                    type GuardDuty added recently";
        let help = match close {
            Some(close) => format!("did you mean `{close}`? {hint}"),
            None => hint.to_owned(),
        };
        let diagnostic = Diagnostic::new(
            self.file,
            span,
            format!("{problem}, so the rule never matches it"),
        )
        .in_rule(self.rule_id.as_deref())
        .with_help(help)
        .into_warning();
        self.diagnostics.push(diagnostic);
    }

    fn error(&mut self, span: Span, message: impl Into<String>, help: Option<&str>) {
        if self.error_count() >= MAX_DIAGNOSTICS {
            return;
        }
        let mut diagnostic =
            Diagnostic::new(self.file, span, message).in_rule(self.rule_id.as_deref());
        if let Some(help) = help {
            diagnostic = diagnostic.with_help(help);
        }
        self.diagnostics.push(diagnostic);
    }

    fn check_keys(&mut self, entries: &[(Node, Node)], allowed: &[&str], what: &str) {
        for (key, _) in entries {
            let name = key.as_str().unwrap_or_default();
            if !allowed.contains(&name) {
                let help = expected_keys_help(name, allowed);
                self.error(
                    key.span,
                    format!("unknown key `{name}` in {what}"),
                    Some(&help),
                );
            }
        }
    }

    fn string<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n str> {
        match node.as_str() {
            Some(text) => Some(text),
            None => {
                let kind = node.value.kind();
                let written = self
                    .file
                    .text
                    .get(node.span.offset..node.span.offset + node.span.len)
                    .unwrap_or_default();
                let scalar = matches!(
                    node.value,
                    Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Null
                );
                let help = (scalar && !written.is_empty() && !written.contains(['"', '\''])).then(|| {
                    format!("YAML reads `{written}` as {kind}; quote it to make it a string: `\"{written}\"`")
                });
                self.error(
                    node.span,
                    format!("`{what}` must be a string, found {kind}"),
                    help.as_deref(),
                );
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match node.value {
            Value::Bool(flag) => Some(flag),
            _ => {
                let message = format!(
                    "`{what}` must be true or false, found {}",
                    node.value.kind()
                );
                // YAML 1.1 reads these as booleans, and rule files are read as YAML 1.2.
                let help = match &node.value {
                    Value::Str(text)
                        if ["yes", "no", "on", "off", "y", "n"]
                            .contains(&text.to_ascii_lowercase().as_str()) =>
                    {
                        Some(
                            "write `true` or `false`: rule files follow YAML 1.2, where `yes`, `no`, `on` and `off` are strings",
                        )
                    }
                    _ => None,
                };
                self.error(node.span, message, help);
                None
            }
        }
    }

    /// Reads a string or a list of strings.
    fn string_list<'n>(&mut self, node: &'n Node, what: &str) -> Vec<(&'n str, Span)> {
        match &node.value {
            Value::Str(text) => vec![(text.as_str(), node.span)],
            Value::Seq(items) if !items.is_empty() => items
                .iter()
                .filter_map(|item| self.string(item, what).map(|text| (text, item.span)))
                .collect(),
            _ => {
                let message = format!("`{what}` must be a string or a non-empty list of strings");
                self.error(node.span, message, None);
                Vec::new()
            }
        }
    }

    fn env_list(&mut self, node: &Node) -> Vec<(String, Span)> {
        let mut names = Vec::new();
        let Value::Seq(items) = &node.value else {
            self.error(
                node.span,
                "`env` must be a list of variable names",
                Some("write `env: [QUARANTINE_SG]`"),
            );
            return names;
        };
        let mut seen = HashSet::new();
        for item in items {
            let Some(name) = self.string(item, "env") else {
                continue;
            };
            let valid = name
                .chars()
                .next()
                .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                self.error(
                    item.span,
                    format!("invalid environment variable name `{name}`"),
                    None,
                );
            } else if FORBIDDEN_ENV.contains(&name) {
                self.error(
                    item.span,
                    format!("rules may not read `{name}`: it holds AWS credentials"),
                    Some(
                        "remove it from `env`; actions get credentials from the AWS configuration",
                    ),
                );
            } else if !seen.insert(name) {
                self.error(item.span, format!("`{name}` is declared twice"), None);
            } else {
                names.push((name.to_owned(), item.span));
            }
        }
        names
    }

    fn rule(&mut self, node: &Node, file_index: usize) -> Option<Rule> {
        self.rule_id = None;
        let Value::Map(entries) = &node.value else {
            self.error(
                node.span,
                format!("a rule must be a mapping, found {}", node.value.kind()),
                None,
            );
            return None;
        };
        let errors_before = self.error_count();

        let id = match find(entries, "id") {
            Some(id_node) => self.rule_identifier(id_node),
            None => {
                self.error(
                    node.span,
                    "rule has no `id`",
                    Some("add `id: a-unique-name`"),
                );
                None
            }
        };
        self.rule_id = id.clone();
        self.check_keys(entries, RULE_KEYS, "rule");

        let description = find(entries, "description")
            .and_then(|n| self.string(n, "description"))
            .map(str::to_owned);
        let enabled = find(entries, "enabled").map_or(Some(true), |n| self.boolean(n, "enabled"));
        let include_samples = find(entries, "include_samples")
            .map_or(Some(false), |n| self.boolean(n, "include_samples"));

        let mut rule = Rule {
            id: id.clone().unwrap_or_default(),
            description,
            enabled: enabled.unwrap_or(true),
            include_samples: include_samples.unwrap_or(false),
            file: Arc::clone(self.file),
            file_index,
            span: node.span,
            types: Vec::new(),
            resources: Vec::new(),
            all: Vec::new(),
            any: Vec::new(),
            none: Vec::new(),
            when: None,
            actions: Vec::new(),
        };

        match find(entries, "match") {
            Some(match_node) => self.match_block(match_node, &mut rule),
            None => self.error(
                node.span,
                "rule has no `match`",
                Some("add `match:` with at least `type:`"),
            ),
        }
        if let Some(when) = find(entries, "when") {
            rule.when = self.when(when);
        }
        match find(entries, "actions") {
            Some(actions) => rule.actions = self.actions(actions),
            None => self.error(
                node.span,
                "rule has no `actions`",
                Some("add `actions:` with at least one action"),
            ),
        }

        let clean = self.error_count() == errors_before && id.is_some();
        clean.then_some(rule)
    }

    fn rule_identifier(&mut self, node: &Node) -> Option<String> {
        let text = self.string(node, "id")?;
        let valid = !text.is_empty()
            && text.len() <= 128
            && text
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        if valid {
            Some(text.to_owned())
        } else {
            self.error(
                node.span,
                format!("invalid rule id `{text}`"),
                Some("use up to 128 ASCII letters, digits, `-`, `_`, `.` or `:`, starting with a letter or digit"),
            );
            None
        }
    }

    fn match_block(&mut self, node: &Node, rule: &mut Rule) {
        let Value::Map(entries) = &node.value else {
            self.error(
                node.span,
                format!("`match` must be a mapping, found {}", node.value.kind()),
                None,
            );
            return;
        };
        self.check_keys(entries, MATCH_KEYS, "`match`");
        match find(entries, "type") {
            Some(types) => {
                for (text, span) in self.string_list(types, "type") {
                    if let Some(pattern) = self.type_pattern(text, span) {
                        rule.types.push(pattern);
                    }
                }
            }
            None => self.error(
                node.span,
                "`match` has no `type`",
                Some("name the finding types, e.g. `type: \"UnauthorizedAccess:EC2/TorClient\"` or a glob"),
            ),
        }
        if let Some(resources) = find(entries, "resource") {
            rule.resources = self
                .string_list(resources, "resource")
                .into_iter()
                .map(|(text, _)| text.to_owned())
                .collect();
        }
        for (key, target) in [
            ("all", &mut rule.all),
            ("any", &mut rule.any),
            ("none", &mut rule.none),
        ] {
            if let Some(list) = find(entries, key) {
                *target = self.conditions(list, key);
            }
        }
    }

    fn type_pattern(&mut self, text: &str, span: Span) -> Option<TypePattern> {
        if text.is_empty() {
            self.error(span, "finding type must not be empty", None);
            return None;
        }
        if !glob::is_glob(text) {
            if names_ec2(text) && !known_ec2_types().any(|known| known == text) {
                self.unknown_type(span, text);
            }
            return Some(TypePattern::Exact(text.to_owned()));
        }
        if text.len() > limits::MAX_GLOB_BYTES {
            self.glob_too_long(span, text);
            return None;
        }
        let compiled = Glob::new(text);
        if names_ec2(text) && !known_ec2_types().any(|known| compiled.is_match(known)) {
            self.unknown_type(span, text);
        }
        Some(TypePattern::Glob(compiled))
    }

    fn conditions(&mut self, node: &Node, block: &str) -> Vec<Condition> {
        let Value::Seq(items) = &node.value else {
            self.error(
                node.span,
                format!("`{block}` must be a list of conditions"),
                None,
            );
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| self.condition(item))
            .collect()
    }

    fn condition(&mut self, node: &Node) -> Option<Condition> {
        let Value::Map(entries) = &node.value else {
            self.error(
                node.span,
                "a condition must be a mapping like `{ path: \"$.severity\", gte: 7 }`",
                None,
            );
            return None;
        };
        let mut path_node = None;
        let mut quantifier = Quantifier::Any;
        let mut operators: Vec<(&str, &Node, Span)> = Vec::new();
        let mut valid = true;
        for (key, value) in entries {
            let name = key.as_str().unwrap_or_default();
            match name {
                "path" => path_node = Some(value),
                "values" => match value.as_str() {
                    Some("any") => quantifier = Quantifier::Any,
                    Some("all") => quantifier = Quantifier::All,
                    _ => {
                        self.error(value.span, "`values` must be `any` or `all`", None);
                        valid = false;
                    }
                },
                _ if OPERATOR_NAMES.contains(&name) => operators.push((name, value, key.span)),
                _ => {
                    let mut allowed = vec!["path", "values"];
                    allowed.extend_from_slice(OPERATOR_NAMES);
                    let help = expected_keys_help(name, &allowed);
                    self.error(key.span, format!("unknown operator `{name}`"), Some(&help));
                    valid = false;
                }
            }
        }
        let Some(path_node) = path_node else {
            self.error(
                node.span,
                "condition has no `path`",
                Some("add `path: \"$.field\"`"),
            );
            return None;
        };
        let path = self.json_path(path_node);
        let operator = match operators.as_slice() {
            [(name, operand, _)] => self.operator(name, operand),
            [] => {
                if valid {
                    let help = format!("add one of: {}", OPERATOR_NAMES.join(", "));
                    self.error(node.span, "condition has no operator", Some(&help));
                }
                None
            }
            [_, (second, _, span), ..] => {
                self.error(
                    *span,
                    format!("condition has more than one operator (`{second}` is extra)"),
                    Some("write one condition per operator"),
                );
                None
            }
        };
        let operand_text = operators
            .first()
            .map(|(_, operand, _)| operand.to_json().to_string())
            .unwrap_or_default();
        match (path, operator, valid) {
            (Some((path_text, path)), Some(operator), true) => Some(Condition {
                path_text,
                path,
                operator,
                quantifier,
                span: node.span,
                operand_text,
            }),
            _ => None,
        }
    }

    fn json_path(
        &mut self,
        node: &Node,
    ) -> Option<(String, jsonpath_rust::parser::model::JpQuery)> {
        let text = self.string(node, "path")?;
        if text.len() > limits::MAX_JSONPATH_BYTES {
            let message = format!(
                "JSONPath is {} bytes, over the limit of {}",
                text.len(),
                limits::MAX_JSONPATH_BYTES
            );
            self.error(node.span, message, None);
            return None;
        }
        if !text.starts_with('$') {
            self.error(
                node.span,
                format!("invalid JSONPath `{text}`: it must start with `$`"),
                Some("paths are evaluated on the finding, e.g. `$.service.resourceRole`"),
            );
            return None;
        }
        if text.contains("match(") || text.contains("search(") {
            self.error(
                node.span,
                format!("JSONPath `{text}` uses `match()` or `search()`, which cordon does not allow"),
                Some("select the value with a plain path and test it with the `matches` operator, whose regular expression is compiled once at load"),
            );
            return None;
        }
        let depth = nesting_depth(text);
        if depth > limits::MAX_JSONPATH_DEPTH {
            let message = format!(
                "JSONPath nests {depth} levels of brackets, over the limit of {}",
                limits::MAX_JSONPATH_DEPTH
            );
            self.error(node.span, message, None);
            return None;
        }
        match jsonpath_rust::parser::parse_json_path(text) {
            Ok(query) => Some((text.to_owned(), query)),
            Err(error) => {
                let reason = error.to_string();
                let reason = reason.lines().last().unwrap_or(&reason).trim().to_owned();
                self.error(
                    node.span,
                    format!("invalid JSONPath `{text}`: {reason}"),
                    Some("use RFC 9535 syntax, e.g. `$.resource.instanceDetails.tags[?@.key=='Name'].value`"),
                );
                None
            }
        }
    }

    fn operator(&mut self, name: &str, operand: &Node) -> Option<Operator> {
        match name {
            "equals" => self.scalar(operand, name).map(Operator::Equals),
            "not_equals" => self.scalar(operand, name).map(Operator::NotEquals),
            "in" => self.scalar_list(operand, name).map(Operator::In),
            "not_in" => self.scalar_list(operand, name).map(Operator::NotIn),
            "gt" => self.number(operand, name).map(Operator::Gt),
            "gte" => self.number(operand, name).map(Operator::Gte),
            "lt" => self.number(operand, name).map(Operator::Lt),
            "lte" => self.number(operand, name).map(Operator::Lte),
            "matches" => self.regex(operand).map(Operator::Matches),
            "glob" => {
                let text = self.string(operand, name)?;
                if text.len() > limits::MAX_GLOB_BYTES {
                    self.glob_too_long(operand.span, text);
                    return None;
                }
                Some(Operator::Glob(Glob::new(text)))
            }
            "contains" => self.scalar(operand, name).map(Operator::Contains),
            "exists" => self.boolean(operand, name).map(Operator::Exists),
            "cidr" => self.networks(operand),
            _ => None,
        }
    }

    fn scalar(&mut self, node: &Node, operator: &str) -> Option<Json> {
        match &node.value {
            Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
                Some(node.to_json())
            }
            Value::Null => {
                self.error(
                    node.span,
                    format!(
                        "`{operator}` cannot compare with null: a null value counts as no value"
                    ),
                    Some("use `exists: false` to require that a field is absent or null"),
                );
                None
            }
            other => {
                let message = format!(
                    "`{operator}` takes a string, number or boolean, found {}",
                    other.kind()
                );
                let help = if matches!(other, Value::Seq(_)) {
                    Some("use `in` for a list of values")
                } else {
                    None
                };
                self.error(node.span, message, help);
                None
            }
        }
    }

    fn scalar_list(&mut self, node: &Node, operator: &str) -> Option<Vec<Json>> {
        let Value::Seq(items) = &node.value else {
            self.error(
                node.span,
                format!(
                    "`{operator}` takes a list of values, found {}",
                    node.value.kind()
                ),
                None,
            );
            return None;
        };
        if items.is_empty() {
            self.error(
                node.span,
                format!("`{operator}` needs at least one value"),
                None,
            );
            return None;
        }
        let values: Vec<Option<Json>> = items
            .iter()
            .map(|item| self.scalar(item, operator))
            .collect();
        values.into_iter().collect()
    }

    fn number(&mut self, node: &Node, operator: &str) -> Option<f64> {
        match node.value {
            Value::Int(number) => Some(number as f64),
            Value::Float(number) if number.is_finite() => Some(number),
            _ => {
                let message = format!("`{operator}` takes a number, found {}", node.value.kind());
                self.error(node.span, message, None);
                None
            }
        }
    }

    fn regex(&mut self, node: &Node) -> Option<regex::Regex> {
        let text = self.string(node, "matches")?;
        if text.len() > limits::MAX_REGEX_BYTES {
            let message = format!(
                "regular expression is {} bytes, over the limit of {}",
                text.len(),
                limits::MAX_REGEX_BYTES
            );
            self.error(node.span, message, None);
            return None;
        }
        match RegexBuilder::new(text)
            .size_limit(limits::MAX_REGEX_COMPILED_BYTES)
            .build()
        {
            Ok(regex) => Some(regex),
            Err(error) => {
                let reason = error.to_string();
                let reason = reason.lines().last().unwrap_or(&reason).trim().to_owned();
                self.error(
                    node.span,
                    format!("invalid regular expression `{text}`: {reason}"),
                    None,
                );
                None
            }
        }
    }

    fn networks(&mut self, node: &Node) -> Option<Operator> {
        let mut networks = Vec::new();
        let mut valid = true;
        for (text, span) in self.string_list(node, "cidr") {
            let parsed = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from));
            match parsed {
                Ok(network) => networks.push(network),
                Err(_) => {
                    self.error(
                        span,
                        format!("invalid CIDR `{text}`"),
                        Some("write a network like `198.51.100.0/24` or `2001:db8::/32`"),
                    );
                    valid = false;
                }
            }
        }
        (valid && !networks.is_empty()).then_some(Operator::Cidr(networks))
    }

    fn when(&mut self, node: &Node) -> Option<Script> {
        let source = self.string(node, "when")?;
        let compiled = match script::compile(source, false) {
            Ok(compiled) => compiled,
            Err(error) => {
                let span = error.position.map_or(node.span, |(line, column)| {
                    offset_in_text(source, line, column)
                        .and_then(|offset| self.find_in_source(node, source, offset))
                        .unwrap_or_else(|| self.span_in_scalar(node, line, column))
                });
                self.error(
                    span,
                    format!("invalid `when` expression: {}", error.message),
                    None,
                );
                return None;
            }
        };
        if !self.check_env_references(node, source) {
            return None;
        }
        if let Some(kind) = self.non_boolean_result(&compiled) {
            self.error(
                node.span,
                format!("`when` must return a boolean, but it returns {kind}"),
                Some("write a comparison, e.g. `finding.service.count >= 1`"),
            );
            return None;
        }
        Some(compiled)
    }

    /// Runs the script on an empty finding and returns the type of a non-boolean result.
    /// Scripts that fail on the empty finding are not judged here; they are checked again
    /// on every real finding.
    fn non_boolean_result(&self, compiled: &Script) -> Option<String> {
        let finding = rhai::Dynamic::from_map(rhai::Map::new());
        let event = rhai::Dynamic::UNIT;
        let env: rhai::Map = self
            .env
            .iter()
            .map(|name| (name.as_str().into(), rhai::Dynamic::from(String::new())))
            .collect();
        let env = rhai::Dynamic::from_map(env);
        let bindings = Bindings {
            finding: &finding,
            event: &event,
            env: &env,
        };
        match script::run(compiled, &bindings) {
            Ok(value) if !value.is_bool() && !value.is_unit() => {
                Some(format!("`{}`", value.type_name()))
            }
            _ => None,
        }
    }

    fn check_env_references(&mut self, node: &Node, source: &str) -> bool {
        let mut valid = true;
        for name in script::env_references(source) {
            if self.env.contains(&name) {
                continue;
            }
            valid = false;
            if FORBIDDEN_ENV.contains(&name.as_str()) {
                self.error(
                    node.span,
                    format!("rules may not read `{name}`: it holds AWS credentials"),
                    None,
                );
            } else {
                let help = format!("declare it at the top of the file: `env: [{name}]`");
                self.error(
                    node.span,
                    format!("environment variable `{name}` is not declared in `env`"),
                    Some(&help),
                );
            }
        }
        valid
    }

    /// Finds the file position of a byte offset in a scalar's text by searching the scalar's
    /// source for the text's line, then for the rest of that line from the offset. Escapes and
    /// folded lines make the text differ from the source, but expressions rarely contain them.
    /// NOTE: when that text appears twice in the scalar, the first place is returned.
    fn find_in_source(&self, node: &Node, text: &str, offset: usize) -> Option<Span> {
        let line_start = text.get(..offset)?.rfind('\n').map_or(0, |index| index + 1);
        let line_end = text
            .get(offset..)?
            .find('\n')
            .map_or(text.len(), |index| offset + index);
        let source = self
            .file
            .text
            .get(node.span.offset..node.span.offset + node.span.len)?;
        let whole_line = text.get(line_start..line_end)?;
        let rest = text.get(offset..line_end)?;
        let within = [(whole_line, offset - line_start), (rest, 0)]
            .into_iter()
            .filter(|(needle, _)| !needle.trim().is_empty())
            .find_map(|(needle, skip)| source.find(needle).map(|found| found + skip))?;
        let offset = node.span.offset + within;
        let (line, column) = self.file.line_column(offset);
        Some(Span {
            line,
            column,
            offset,
            len: 1,
        })
    }

    /// Points into a scalar at a 1-based line and column of its text.
    fn span_in_scalar(&self, node: &Node, line: usize, column: usize) -> Span {
        let first = self
            .file
            .text
            .get(node.span.offset..)
            .and_then(|rest| rest.chars().next());
        let (line, column) = match first {
            Some('|' | '>') => {
                let target = node.span.line + line;
                let indent = self
                    .file
                    .text
                    .lines()
                    .nth(target.saturating_sub(1))
                    .map_or(0, |text| text.len() - text.trim_start().len());
                (target, indent + column)
            }
            Some('"' | '\'') if line == 1 => (node.span.line, node.span.column + column),
            _ if line == 1 => (node.span.line, node.span.column + column - 1),
            _ => (node.span.line, node.span.column),
        };
        let offset = self.file.offset_of(line, column);
        Span {
            line,
            column,
            offset,
            len: 1,
        }
    }

    fn actions(&mut self, node: &Node) -> Vec<ActionTemplate> {
        let Value::Seq(items) = &node.value else {
            self.error(
                node.span,
                "`actions` must be a list like `- isolate: { ... }`",
                None,
            );
            return Vec::new();
        };
        if items.is_empty() {
            self.error(
                node.span,
                "`actions` is empty",
                Some("a rule needs at least one action"),
            );
        }
        items.iter().filter_map(|item| self.action(item)).collect()
    }

    fn action(&mut self, node: &Node) -> Option<ActionTemplate> {
        let entries = match &node.value {
            Value::Map(entries) if entries.len() == 1 => entries,
            Value::Str(name) => {
                let help = format!("write `- {name}: {{}}`");
                self.error(
                    node.span,
                    format!("action `{name}` needs a mapping of parameters"),
                    Some(&help),
                );
                return None;
            }
            _ => {
                self.error(
                    node.span,
                    "an action must be a mapping with one key, the action name",
                    Some("write `- isolate: { security_group: sg-... }`"),
                );
                return None;
            }
        };
        let (key, params) = entries.first()?;
        let name = key.as_str().unwrap_or_default();
        let Some(spec) = self.catalog.get(name) else {
            let names = self.catalog.names();
            let help = expected_keys_help(name, &names);
            self.error(key.span, format!("unknown action `{name}`"), Some(&help));
            return None;
        };
        let errors_before = self.error_count();
        let empty = Node {
            value: Value::Map(Vec::new()),
            span: params.span,
        };
        let params = if matches!(params.value, Value::Null) {
            &empty
        } else {
            params
        };
        if !matches!(params.value, Value::Map(_)) {
            let message = format!(
                "parameters of `{name}` must be a mapping, found {}",
                params.value.kind()
            );
            self.error(params.span, message, None);
            return None;
        }
        let compiled = self.param_template(params);
        for issue in spec.validate(&params.to_json(), ParamStage::Load) {
            let span = if issue.path.is_empty() {
                key.span
            } else {
                params.key_span(&issue.path)
            };
            let mut message = format!("invalid parameters for `{name}`: {}", issue.message);
            if let Some(last) = issue.path.last() {
                message = format!("invalid parameter `{last}` for `{name}`: {}", issue.message);
            }
            self.error(span, message, issue.help.as_deref());
        }
        (self.error_count() == errors_before).then(|| ActionTemplate {
            name: name.to_owned(),
            params: compiled,
            raw_params: params.to_json(),
            span: key.span,
        })
    }

    fn param_template(&mut self, node: &Node) -> ParamTemplate {
        if let Value::Map(entries) = &node.value {
            for (key, _) in entries {
                if key.as_str().is_some_and(crate::registry::is_template) {
                    self.error(
                        key.span,
                        "templates are not rendered in mapping keys",
                        Some("write the key literally; only values may hold `${...}`"),
                    );
                }
            }
        }
        match &node.value {
            Value::Null => ParamTemplate::Null,
            Value::Bool(flag) => ParamTemplate::Bool(*flag),
            Value::Int(number) => ParamTemplate::Number((*number).into()),
            Value::Float(number) => serde_json::Number::from_f64(*number)
                .map_or(ParamTemplate::Null, ParamTemplate::Number),
            Value::Str(text) => match Template::compile(text) {
                Ok(template) => {
                    let sources: Vec<String> = template.expressions().map(str::to_owned).collect();
                    for source in sources {
                        self.check_env_references(node, &source);
                    }
                    ParamTemplate::Text(template)
                }
                Err(error) => {
                    let column = text
                        .get(..error.offset)
                        .map_or(0, |before| before.chars().count())
                        + 1;
                    let span = match self.find_in_source(node, text, error.offset) {
                        Some(span) => span,
                        None if text.contains('\n') => node.span,
                        None => self.span_in_scalar(node, 1, column),
                    };
                    self.error(span, format!("invalid template: {}", error.message), None);
                    ParamTemplate::Null
                }
            },
            Value::Seq(items) => {
                ParamTemplate::List(items.iter().map(|item| self.param_template(item)).collect())
            }
            Value::Map(entries) => ParamTemplate::Map(
                entries
                    .iter()
                    .map(|(key, value)| {
                        (
                            key.as_str().unwrap_or_default().to_owned(),
                            self.param_template(value),
                        )
                    })
                    .collect(),
            ),
        }
    }
}

/// Returns the deepest nesting of brackets and parentheses outside string literals.
fn nesting_depth(text: &str) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for character in text.chars() {
        if let Some(open) = quote {
            if escaped {
                escaped = false;
            } else if character == '\\' {
                escaped = true;
            } else if character == open {
                quote = None;
            }
            continue;
        }
        match character {
            '\'' | '"' => quote = Some(character),
            '[' | '(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ']' | ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}
