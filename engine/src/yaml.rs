//! A YAML document as a tree of located nodes.
//!
//! Rule files are read into this tree first and compiled from it, so that every problem,
//! however deep, can be reported at its own line and column, and all problems of a file are
//! reported together instead of stopping at the first one as a derived deserializer would.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::diag::Diagnostic;
use crate::limits;
use crate::source::{SourceFile, Span};

/// A YAML node and its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where the node starts.
    pub span: Span,
}

/// The value of a YAML node.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`, `~` or an empty value.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number (also integers beyond `i64`).
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order; keys are strings.
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// Describes the kind of value for messages, e.g. "a sequence".
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// Returns the string value, if the node is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(text) => Some(text),
            _ => None,
        }
    }

    /// Converts the node to JSON; mapping keys become strings.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(flag) => serde_json::Value::Bool(*flag),
            Value::Int(number) => serde_json::Value::from(*number),
            Value::Float(number) => serde_json::Number::from_f64(*number)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Value::Str(text) => serde_json::Value::String(text.clone()),
            Value::Seq(items) => items.iter().map(Node::to_json).collect(),
            Value::Map(entries) => entries
                .iter()
                .map(|(key, value)| (key.as_str().unwrap_or_default().to_owned(), value.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }

    /// Returns the node reached by following `path` (mapping keys, or decimal sequence
    /// indexes) from this node, or the deepest node on the way.
    pub fn descend<S: AsRef<str>>(&self, path: &[S]) -> &Node {
        let mut node = self;
        for step in path {
            let step = step.as_ref();
            let next = match &node.value {
                Value::Map(entries) => entries
                    .iter()
                    .find(|(key, _)| key.as_str() == Some(step))
                    .map(|(_, value)| value),
                Value::Seq(items) => step
                    .parse::<usize>()
                    .ok()
                    .and_then(|index| items.get(index)),
                _ => None,
            };
            match next {
                Some(next) => node = next,
                None => break,
            }
        }
        node
    }
}

impl Node {
    /// Returns the span of the mapping key at the end of `path`, or of the deepest node
    /// reached when the path does not end at a key.
    pub fn key_span<S: AsRef<str>>(&self, path: &[S]) -> Span {
        let Some((last, parent_path)) = path.split_last() else {
            return self.span;
        };
        let parent = self.descend(parent_path);
        match &parent.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(key, _)| key.as_str() == Some(last.as_ref()))
                .map_or(parent.span, |(key, _)| key.span),
            _ => self.descend(path).span,
        }
    }
}

/// Parses a rule file into a tree, enforcing the size, node, depth and alias limits.
///
/// # Errors
///
/// Returns a located diagnostic for a YAML syntax error, a non-string mapping key, or a
/// file past one of the limits.
pub fn parse(file: &Arc<SourceFile>) -> Result<Node, Box<Diagnostic>> {
    if file.text.len() > limits::MAX_RULE_FILE_BYTES {
        return Err(Box::new(
            Diagnostic::new(
                file,
                Span::default_at_start(),
                format!(
                    "rule file is {} bytes, over the limit of {} bytes",
                    file.text.len(),
                    limits::MAX_RULE_FILE_BYTES
                ),
            )
            .with_help("split the rules into several files"),
        ));
    }

    // YAML 1.2 scalars only. Without these options `NO` (a country code) or `y` becomes a
    // boolean and `0755` or `1_000` a number, so a tag would get another value than the
    // rule shows.
    let options = serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        budget: serde_saphyr::budget! {
            max_nodes: limits::MAX_RULE_FILE_NODES,
            max_depth: limits::MAX_RULE_FILE_DEPTH,
            max_aliases: limits::MAX_RULE_FILE_ALIASES,
            max_documents: 1,
        },
    };
    let raw: Spanned<Raw> = serde_saphyr::from_str_with_options(&file.text, options)
        .map_err(|error| Box::new(yaml_error(file, &error)))?;
    Ok(convert(file, raw))
}

impl Span {
    /// The start of a file.
    pub fn default_at_start() -> Span {
        Span {
            line: 1,
            column: 1,
            offset: 0,
            len: 0,
        }
    }
}

fn yaml_error(file: &Arc<SourceFile>, error: &serde_saphyr::Error) -> Diagnostic {
    let span = error
        .location()
        .map(|location| span_of(file, &location))
        .unwrap_or_else(Span::default_at_start);
    let message = error.without_snippet().to_string();
    let message = message
        .lines()
        .next()
        .unwrap_or("invalid YAML")
        .trim()
        .to_owned();
    let message = plain_message(&message);
    let mut diagnostic = Diagnostic::new(file, span, format!("invalid YAML: {message}"));
    if message.contains("budget") || message.contains("limit") {
        diagnostic = diagnostic.with_help(format!(
            "rule files may hold at most {} nodes, {} aliases and {} levels of nesting",
            limits::MAX_RULE_FILE_NODES,
            limits::MAX_RULE_FILE_ALIASES,
            limits::MAX_RULE_FILE_DEPTH
        ));
    }
    diagnostic
}

/// Rewords the parser's messages that name its own options, and drops the position it repeats,
/// which the diagnostic already shows.
fn plain_message(message: &str) -> String {
    let message = message
        .rfind(" at line ")
        .and_then(|at| message.get(..at))
        .unwrap_or(message);
    if let Some(key) = message
        .strip_prefix("duplicate mapping key: ")
        .and_then(|rest| rest.split(", set DuplicateKeyPolicy").next())
    {
        return format!("duplicate key `{key}`");
    }
    message.to_owned()
}

fn span_of(file: &SourceFile, location: &serde_saphyr::Location) -> Span {
    let line = usize::try_from(location.line()).unwrap_or(usize::MAX);
    let column = usize::try_from(location.column()).unwrap_or(usize::MAX);
    let offset = location
        .span()
        .byte_offset()
        .and_then(|offset| usize::try_from(offset).ok())
        .unwrap_or_else(|| file.offset_of(line, column));
    let len = location
        .span()
        .byte_len()
        .and_then(|len| usize::try_from(len).ok())
        .unwrap_or(0);
    let len = len.min(file.text.len().saturating_sub(offset));
    Span {
        line,
        column,
        offset,
        len,
    }
}

fn convert(file: &SourceFile, raw: Spanned<Raw>) -> Node {
    let span = span_of(file, &raw.referenced);
    let value = match raw.value {
        Raw::Null => Value::Null,
        Raw::Bool(flag) => Value::Bool(flag),
        Raw::Int(number) => Value::Int(number),
        Raw::Float(number) => Value::Float(number),
        Raw::Str(text) => Value::Str(text),
        Raw::Seq(items) => Value::Seq(items.into_iter().map(|item| convert(file, item)).collect()),
        Raw::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(key, value)| (convert(file, key), convert(file, value)))
                .collect(),
        ),
    };
    Node { value, span }
}

/// The tree as the deserializer builds it, before spans are turned into byte ranges.
enum Raw {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<Raw>, Spanned<Raw>)>),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }

    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Raw, D::Error> {
        Raw::deserialize(deserializer)
    }

    fn visit_bool<E>(self, flag: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(flag))
    }

    fn visit_i64<E>(self, number: i64) -> Result<Raw, E> {
        Ok(Raw::Int(number))
    }

    fn visit_u64<E>(self, number: u64) -> Result<Raw, E> {
        Ok(i64::try_from(number).map_or(Raw::Float(number as f64), Raw::Int))
    }

    fn visit_i128<E>(self, number: i128) -> Result<Raw, E> {
        Ok(i64::try_from(number).map_or(Raw::Float(number as f64), Raw::Int))
    }

    fn visit_u128<E>(self, number: u128) -> Result<Raw, E> {
        Ok(i64::try_from(number).map_or(Raw::Float(number as f64), Raw::Int))
    }

    fn visit_f64<E>(self, number: f64) -> Result<Raw, E> {
        Ok(Raw::Float(number))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Raw, E> {
        Ok(Raw::Str(text.to_owned()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Raw, E> {
        Ok(Raw::Str(text))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = access.next_element::<Spanned<Raw>>()? {
            items.push(item);
        }
        Ok(Raw::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = access.next_key::<Spanned<Raw>>()? {
            if !matches!(key.value, Raw::Str(_)) {
                return Err(de::Error::custom("mapping keys must be strings"));
            }
            let value = access.next_value::<Spanned<Raw>>()?;
            entries.push((key, value));
        }
        Ok(Raw::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Node, Box<Diagnostic>> {
        parse(&SourceFile::new("test.yaml", text))
    }

    #[test]
    fn nested_nodes_carry_lines() {
        let node = parse_text("rules:\n  - id: a\n    match:\n      type: x\n").unwrap();
        let id = node.descend(&["rules", "0", "id"]);
        assert_eq!(id.as_str(), Some("a"));
        assert_eq!(id.span.line, 2);
        assert_eq!(id.span.column, 9);
        let kind = node.descend(&["rules", "0", "match", "type"]);
        assert_eq!(kind.span.line, 4);
    }

    #[test]
    fn numbers_keep_their_kind() {
        let node = parse_text("a: 8\nb: 8.0\nc: '8'\n").unwrap();
        assert_eq!(node.descend(&["a"]).value, Value::Int(8));
        assert_eq!(node.descend(&["b"]).value, Value::Float(8.0));
        assert_eq!(node.descend(&["c"]).value, Value::Str("8".into()));
    }

    #[test]
    fn yaml_1_1_scalars_stay_strings() {
        let node = parse_text("a: NO\nb: y\nc: on\nd: 0755\ne: 1_000\nf: true\ny: 1\n").unwrap();
        for (key, text) in [
            ("a", "NO"),
            ("b", "y"),
            ("c", "on"),
            ("d", "0755"),
            ("e", "1_000"),
        ] {
            assert_eq!(node.descend(&[key]).value, Value::Str(text.into()), "{key}");
        }
        assert_eq!(node.descend(&["f"]).value, Value::Bool(true));
        assert_eq!(node.descend(&["y"]).value, Value::Int(1));
    }

    #[test]
    fn duplicate_key_names_the_key_only() {
        let error = parse_text("rules:\n  - id: a\n    id: b\n").unwrap_err();
        assert_eq!(error.message, "invalid YAML: duplicate key `id`");
        assert_eq!((error.span.line, error.span.column), (3, 5));
    }

    #[test]
    fn syntax_error_is_located() {
        let error = parse_text("rules:\n  - id: a\n   bad: [\n").unwrap_err();
        assert!(error.span.line >= 2, "line was {}", error.span.line);
        assert!(error.message.starts_with("invalid YAML"));
    }

    #[test]
    fn alias_bomb_is_rejected() {
        let mut text = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..10 {
            let refs = vec![format!("*l{}", level - 1); 10].join(", ");
            text.push_str(&format!("l{level}: &l{level} [{refs}]\n"));
        }
        let error = parse_text(&text).unwrap_err();
        assert!(
            error.message.starts_with("invalid YAML"),
            "{}",
            error.message
        );
    }

    #[test]
    fn oversized_file_is_rejected() {
        let text = "#".repeat(limits::MAX_RULE_FILE_BYTES + 1);
        let error = parse_text(&text).unwrap_err();
        assert!(error.message.contains("over the limit"));
    }
}
