//! Rule test files: cases that name a finding, optional changes to it, and the expected plan.
//!
//! ```yaml
//! rules: ..                      # the rules under test, relative to this file; default `..`
//! env: { QUARANTINE_SG: sg-0123456789abcdef0 }
//! cases:
//!   - name: tor client is quarantined
//!     finding: ../../tests/fixtures/tor-client.json
//!     set: { "$.severity": 8 }
//!     expect:
//!       matched: [ec2-tor-client-quarantine]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;

use crate::diag::Diagnostic;
use crate::source::{SourceFile, Span};
use crate::yaml::{self, Node, Value};

const FILE_KEYS: &[&str] = &["rules", "env", "cases"];
const CASE_KEYS: &[&str] = &["name", "finding", "set", "unset", "merge", "env", "expect"];
const EXPECT_KEYS: &[&str] = &["matched", "actions", "errors"];

/// A parsed test file.
#[derive(Debug)]
pub struct CaseFile {
    /// The file.
    pub source: Arc<SourceFile>,
    /// The rule file or folder under test.
    pub rules: PathBuf,
    /// The cases in file order.
    pub cases: Vec<Case>,
}

/// One test case.
#[derive(Clone, Debug)]
pub struct Case {
    /// The case name, unique within its file.
    pub name: String,
    /// Where the case starts.
    pub span: Span,
    /// The finding or event, with `set`, `unset` and `merge` already applied.
    pub input: Json,
    /// Environment values for the rules' declared variables.
    pub env: BTreeMap<String, String>,
    /// What the plan must be.
    pub expect: Expectation,
}

/// What a case expects.
#[derive(Clone, Debug, Default)]
pub struct Expectation {
    /// The exact set of matched rule ids, sorted.
    pub matched: Vec<String>,
    /// For some matched rules, the exact actions with rendered parameters, each as a
    /// one-key object `{action: params}`.
    pub actions: BTreeMap<String, Vec<Json>>,
    /// Rule ids expected to fail during evaluation, sorted.
    pub errors: Vec<String>,
}

/// Reads and parses a test file, resolving fixture paths against its folder.
///
/// # Errors
///
/// Returns every located problem in the file: YAML syntax, unknown keys, a missing fixture,
/// an invalid change path.
pub fn parse(path: &Path) -> Result<CaseFile, Vec<Diagnostic>> {
    let name = path.display().to_string();
    let text = match read_limited(path).and_then(|bytes| {
        String::from_utf8(bytes).map_err(|_| std::io::Error::other("the file is not valid UTF-8"))
    }) {
        Ok(text) => text,
        Err(error) => {
            let source = SourceFile::new(name, String::new());
            let message = format!("cannot read the test file: {error}");
            return Err(vec![Diagnostic::new(
                &source,
                Span::default_at_start(),
                message,
            )]);
        }
    };
    let source = SourceFile::new(name, text);
    let root = yaml::parse(&source).map_err(|diagnostic| vec![*diagnostic])?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut reader = Reader {
        source: &source,
        base,
        diagnostics: Vec::new(),
    };
    let file = reader.file(&root);
    if reader.diagnostics.is_empty() {
        Ok(file)
    } else {
        Err(reader.diagnostics)
    }
}

struct Reader<'a> {
    source: &'a Arc<SourceFile>,
    base: PathBuf,
    diagnostics: Vec<Diagnostic>,
}

fn entries(node: &Node) -> &[(Node, Node)] {
    match &node.value {
        Value::Map(entries) => entries,
        _ => &[],
    }
}

fn find<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    entries(node)
        .iter()
        .find(|(name, _)| name.as_str() == Some(key))
        .map(|(_, value)| value)
}

impl Reader<'_> {
    fn error(&mut self, span: Span, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::new(self.source, span, message));
    }

    fn check_keys(&mut self, node: &Node, allowed: &[&str], what: &str) {
        if !matches!(node.value, Value::Map(_)) {
            self.error(
                node.span,
                format!("{what} must be a mapping, found {}", node.value.kind()),
            );
            return;
        }
        for (key, _) in entries(node) {
            let name = key.as_str().unwrap_or_default();
            if !allowed.contains(&name) {
                let help = match crate::compile::suggest(name, allowed) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => format!("expected one of: {}", allowed.join(", ")),
                };
                self.diagnostics.push(
                    Diagnostic::new(
                        self.source,
                        key.span,
                        format!("unknown key `{name}` in {what}"),
                    )
                    .with_help(help),
                );
            }
        }
    }

    fn file(&mut self, root: &Node) -> CaseFile {
        self.check_keys(root, FILE_KEYS, "test file");
        let rules = match find(root, "rules").map(|node| (node, node.as_str())) {
            Some((_, Some(text))) => lexical_join(&self.base, text),
            Some((node, None)) => {
                self.error(node.span, "`rules` must be a path");
                lexical_join(&self.base, "..")
            }
            None => lexical_join(&self.base, ".."),
        };
        let env = find(root, "env")
            .map(|node| self.env(node))
            .unwrap_or_default();
        let mut cases = Vec::new();
        match find(root, "cases") {
            Some(Node {
                value: Value::Seq(items),
                ..
            }) => {
                for item in items {
                    if let Some(case) = self.case(item, &env) {
                        if cases.iter().any(|other: &Case| other.name == case.name) {
                            self.error(item.span, format!("duplicate case name `{}`", case.name));
                        }
                        cases.push(case);
                    }
                }
            }
            Some(other) => self.error(other.span, "`cases` must be a list"),
            None => self.error(root.span, "missing `cases` list"),
        }
        CaseFile {
            source: Arc::clone(self.source),
            rules,
            cases,
        }
    }

    fn env(&mut self, node: &Node) -> BTreeMap<String, String> {
        let mut values = BTreeMap::new();
        let Value::Map(pairs) = &node.value else {
            self.error(node.span, "`env` must map variable names to values");
            return values;
        };
        for (key, value) in pairs {
            let text = match &value.value {
                Value::Str(text) => text.clone(),
                Value::Int(number) => number.to_string(),
                Value::Float(number) => number.to_string(),
                Value::Bool(flag) => flag.to_string(),
                _ => {
                    self.error(value.span, "environment values must be strings");
                    continue;
                }
            };
            values.insert(key.as_str().unwrap_or_default().to_owned(), text);
        }
        values
    }

    fn case(&mut self, node: &Node, file_env: &BTreeMap<String, String>) -> Option<Case> {
        let errors_before = self.diagnostics.len();
        self.check_keys(node, CASE_KEYS, "case");
        let name = match find(node, "name").and_then(Node::as_str) {
            Some(name) => name.to_owned(),
            None => {
                self.error(node.span, "case has no `name`");
                String::new()
            }
        };
        let mut input = match find(node, "finding") {
            Some(finding) => self.finding(finding),
            None => {
                self.error(node.span, "case has no `finding`");
                None
            }
        };
        if let Some(input) = input.as_mut() {
            self.apply_changes(node, input);
        }
        let mut env = file_env.clone();
        if let Some(case_env) = find(node, "env") {
            env.extend(self.env(case_env));
        }
        let expect = match find(node, "expect") {
            Some(expect) => self.expectation(expect),
            None => {
                self.error(node.span, "case has no `expect`");
                Expectation::default()
            }
        };
        if self.diagnostics.len() > errors_before {
            return None;
        }
        Some(Case {
            name,
            span: node.span,
            input: input?,
            env,
            expect,
        })
    }

    fn finding(&mut self, node: &Node) -> Option<Json> {
        match &node.value {
            Value::Str(relative) => {
                let path = lexical_join(&self.base, relative);
                let text = match read_limited(&path) {
                    Ok(text) => text,
                    Err(error) => {
                        self.error(
                            node.span,
                            format!("cannot read fixture `{}`: {error}", path.display()),
                        );
                        return None;
                    }
                };
                match serde_json::from_slice(&text) {
                    Ok(value) => Some(value),
                    Err(error) => {
                        self.error(
                            node.span,
                            format!("fixture `{}` is not valid JSON: {error}", path.display()),
                        );
                        None
                    }
                }
            }
            Value::Map(_) => Some(node.to_json()),
            other => {
                self.error(
                    node.span,
                    format!(
                        "`finding` must be a fixture path or a mapping, found {}",
                        other.kind()
                    ),
                );
                None
            }
        }
    }

    /// Applies `unset`, then `set`, then `merge` to the finding (the `detail` of an event).
    fn apply_changes(&mut self, case: &Node, input: &mut Json) {
        let target = if input.get("detail").is_some_and(Json::is_object) {
            input.get_mut("detail")
        } else {
            Some(input)
        };
        let Some(target) = target else {
            return;
        };
        if let Some(unset) = find(case, "unset") {
            let paths: Vec<&Node> = match &unset.value {
                Value::Seq(items) => items.iter().collect(),
                _ => vec![unset],
            };
            for path_node in paths {
                match path_node.as_str().map(parse_simple_path) {
                    Some(Ok(steps)) => remove_path(target, &steps),
                    Some(Err(message)) => self.error(path_node.span, message),
                    None => self.error(path_node.span, "`unset` takes JSONPath strings"),
                }
            }
        }
        if let Some(set) = find(case, "set") {
            if !matches!(set.value, Value::Map(_)) {
                self.error(set.span, "`set` must map JSONPaths to values");
            }
            for (key, value) in entries(set) {
                match parse_simple_path(key.as_str().unwrap_or_default()) {
                    Ok(steps) => {
                        if let Err(message) = set_path(target, &steps, value.to_json()) {
                            self.error(key.span, message);
                        }
                    }
                    Err(message) => self.error(key.span, message),
                }
            }
        }
        if let Some(merge) = find(case, "merge") {
            if matches!(merge.value, Value::Map(_)) {
                merge_into(target, merge.to_json());
            } else {
                self.error(merge.span, "`merge` must be a mapping, a partial finding");
            }
        }
    }

    fn expectation(&mut self, node: &Node) -> Expectation {
        self.check_keys(node, EXPECT_KEYS, "`expect`");
        let mut expect = Expectation::default();
        match find(node, "matched") {
            Some(matched) => expect.matched = self.id_list(matched, "matched"),
            None => self.error(
                node.span,
                "`expect` has no `matched` list; write `matched: []` for no match",
            ),
        }
        if let Some(errors) = find(node, "errors") {
            expect.errors = self.id_list(errors, "errors");
        }
        if let Some(actions) = find(node, "actions") {
            let Value::Map(per_rule) = &actions.value else {
                self.error(
                    actions.span,
                    "`actions` must map rule ids to lists of actions",
                );
                return expect;
            };
            for (rule, list) in per_rule {
                let rule_id = rule.as_str().unwrap_or_default().to_owned();
                if !expect.matched.contains(&rule_id) {
                    self.error(
                        rule.span,
                        format!("`actions` names rule `{rule_id}`, which is not in `matched`"),
                    );
                }
                let Value::Seq(items) = &list.value else {
                    self.error(
                        list.span,
                        "expected a list of actions like `- isolate: {...}`",
                    );
                    continue;
                };
                let mut planned = Vec::new();
                for item in items {
                    match &item.value {
                        Value::Map(pairs) if pairs.len() == 1 => {
                            planned.push(normalize_action(item.to_json()))
                        }
                        _ => self.error(
                            item.span,
                            "each action must be a one-key mapping like `- isolate: {...}`",
                        ),
                    }
                }
                expect.actions.insert(rule_id, planned);
            }
        }
        expect
    }

    fn id_list(&mut self, node: &Node, what: &str) -> Vec<String> {
        let mut ids: Vec<String> = match &node.value {
            Value::Seq(items) => items
                .iter()
                .filter_map(|item| match item.as_str() {
                    Some(id) => Some(id.to_owned()),
                    None => {
                        self.error(item.span, format!("`{what}` lists rule ids as strings"));
                        None
                    }
                })
                .collect(),
            _ => {
                self.error(node.span, format!("`{what}` must be a list of rule ids"));
                Vec::new()
            }
        };
        ids.sort();
        ids
    }
}

/// Joins `relative` to `base` and folds `name/..` pairs, so that messages show
/// `rules/quarantine.yaml` rather than `rules/tests/../quarantine.yaml`.
pub fn lexical_join(base: &Path, relative: &str) -> PathBuf {
    let mut parts: Vec<std::path::Component<'_>> = Vec::new();
    let joined = base.join(relative);
    for component in joined.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir
                if matches!(parts.last(), Some(std::path::Component::Normal(_))) =>
            {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return PathBuf::from(".");
    }
    parts.iter().collect()
}

/// An action as a one-key object whose parameters are `{}` when written as `null`.
pub fn normalize_action(action: Json) -> Json {
    match action {
        Json::Object(map) => Json::Object(
            map.into_iter()
                .map(|(name, params)| {
                    (
                        name,
                        if params.is_null() {
                            Json::Object(Default::default())
                        } else {
                            params
                        },
                    )
                })
                .collect(),
        ),
        other => other,
    }
}

/// Reads at most [`crate::limits::MAX_INPUT_BYTES`] of a fixture; a longer file is an error.
fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let limit = crate::limits::MAX_INPUT_BYTES;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        return Err(std::io::Error::other(format!(
            "the file is over the limit of {limit} bytes"
        )));
    }
    Ok(bytes)
}

/// Maximum number of steps in a `set` or `unset` path.
const MAX_PATH_STEPS: usize = 32;

/// One step of a simple JSONPath.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// Parses `$.a.b[0]['c-d']` into steps. Only names, quoted names and indexes are allowed,
/// because a change must name exactly one place.
///
/// # Errors
///
/// Returns a message for anything else, such as wildcards or filters.
pub fn parse_simple_path(text: &str) -> Result<Vec<Step>, String> {
    let invalid =
        || format!("invalid path `{text}`: use `$.name`, `$.name[0]` or `$['name']` steps only");
    let mut rest = text.strip_prefix('$').ok_or_else(invalid)?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let name = after.get(..end).unwrap_or_default();
            if name.is_empty() || name.contains('*') {
                return Err(invalid());
            }
            steps.push(Step::Key(name.to_owned()));
            rest = after.get(end..).unwrap_or_default();
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']').ok_or_else(invalid)?;
            let inner = after.get(..end).unwrap_or_default().trim();
            let quoted = inner
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')));
            match (quoted, inner.parse::<usize>()) {
                (Some(name), _) => steps.push(Step::Key(name.to_owned())),
                (None, Ok(index)) => steps.push(Step::Index(index)),
                (None, Err(_)) => return Err(invalid()),
            }
            rest = after.get(end + 1..).unwrap_or_default();
        } else {
            return Err(invalid());
        }
    }
    if steps.is_empty() {
        return Err(invalid());
    }
    if steps.len() > MAX_PATH_STEPS {
        return Err(format!(
            "invalid path `{text}`: more than {MAX_PATH_STEPS} steps"
        ));
    }
    Ok(steps)
}

/// Sets the value at `steps`, creating missing objects on the way.
///
/// # Errors
///
/// Returns a message when a step crosses a value of the wrong kind or an index past the end.
pub fn set_path(target: &mut Json, steps: &[Step], value: Json) -> Result<(), String> {
    let Some((last, parents)) = steps.split_last() else {
        return Err("empty path".to_owned());
    };
    let mut node = target;
    for step in parents {
        node = match step {
            Step::Key(key) => {
                if node.is_null() {
                    *node = Json::Object(Default::default());
                }
                let Json::Object(map) = node else {
                    return Err(format!("cannot set `{key}`: the parent is not an object"));
                };
                map.entry(key.clone()).or_insert(Json::Null)
            }
            Step::Index(index) => node
                .as_array_mut()
                .and_then(|items| items.get_mut(*index))
                .ok_or_else(|| format!("index {index} is out of range"))?,
        };
    }
    match last {
        Step::Key(key) => {
            if node.is_null() {
                *node = Json::Object(Default::default());
            }
            let Json::Object(map) = node else {
                return Err(format!("cannot set `{key}`: the parent is not an object"));
            };
            map.insert(key.clone(), value);
        }
        Step::Index(index) => {
            let slot = node
                .as_array_mut()
                .and_then(|items| items.get_mut(*index))
                .ok_or_else(|| format!("index {index} is out of range"))?;
            *slot = value;
        }
    }
    Ok(())
}

fn remove_path(target: &mut Json, steps: &[Step]) {
    let Some((last, parents)) = steps.split_last() else {
        return;
    };
    let mut node = target;
    for step in parents {
        let next = match step {
            Step::Key(key) => node.get_mut(key.as_str()),
            Step::Index(index) => node.get_mut(*index),
        };
        match next {
            Some(next) => node = next,
            None => return,
        }
    }
    match (last, node) {
        (Step::Key(key), Json::Object(map)) => {
            map.remove(key);
        }
        (Step::Index(index), Json::Array(items)) if *index < items.len() => {
            items.remove(*index);
        }
        _ => {}
    }
}

/// Merges `patch` into `target`: objects merge key by key, anything else replaces.
pub fn merge_into(target: &mut Json, patch: Json) {
    match (target, patch) {
        (Json::Object(base), Json::Object(changes)) => {
            for (key, value) in changes {
                merge_into(base.entry(key).or_insert(Json::Null), value);
            }
        }
        (slot, value) => *slot = value,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lexical_join_folds_parent_steps() {
        assert_eq!(
            lexical_join(Path::new("rules/tests"), ".."),
            PathBuf::from("rules")
        );
        assert_eq!(
            lexical_join(Path::new("rules/tests"), "../../tests/fixtures/a.json"),
            PathBuf::from("tests/fixtures/a.json")
        );
        assert_eq!(
            lexical_join(Path::new("tests"), "../.."),
            PathBuf::from("..")
        );
        assert_eq!(lexical_join(Path::new(""), "a"), PathBuf::from("a"));
    }

    #[test]
    fn simple_paths_parse() {
        assert_eq!(
            parse_simple_path("$.a.b[2]['c-d']").unwrap(),
            vec![
                Step::Key("a".into()),
                Step::Key("b".into()),
                Step::Index(2),
                Step::Key("c-d".into())
            ]
        );
        assert!(parse_simple_path("$.a[*]").is_err());
        assert!(parse_simple_path("a.b").is_err());
        assert!(parse_simple_path("$").is_err());
    }

    #[test]
    fn set_creates_objects_and_replaces() {
        let mut value = json!({"a": {"b": 1}, "l": [1, 2]});
        set_path(&mut value, &parse_simple_path("$.a.b").unwrap(), json!(2)).unwrap();
        set_path(
            &mut value,
            &parse_simple_path("$.x.y").unwrap(),
            json!("new"),
        )
        .unwrap();
        set_path(&mut value, &parse_simple_path("$.l[1]").unwrap(), json!(9)).unwrap();
        assert_eq!(
            value,
            json!({"a": {"b": 2}, "x": {"y": "new"}, "l": [1, 9]})
        );
        assert!(set_path(&mut value, &parse_simple_path("$.l[5]").unwrap(), json!(0)).is_err());
    }

    #[test]
    fn merge_is_deep_for_objects() {
        let mut value = json!({"service": {"count": 1, "resourceRole": "ACTOR"}, "l": [1]});
        merge_into(
            &mut value,
            json!({"service": {"resourceRole": "TARGET"}, "l": [2, 3]}),
        );
        assert_eq!(
            value,
            json!({"service": {"count": 1, "resourceRole": "TARGET"}, "l": [2, 3]})
        );
    }

    #[test]
    fn remove_deletes_keys_and_items() {
        let mut value = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        remove_path(&mut value, &parse_simple_path("$.a.b").unwrap());
        remove_path(&mut value, &parse_simple_path("$.l[0]").unwrap());
        remove_path(&mut value, &parse_simple_path("$.missing.x").unwrap());
        assert_eq!(value, json!({"a": {"c": 2}, "l": [2]}));
    }
}
