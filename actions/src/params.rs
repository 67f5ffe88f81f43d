//! Parsing and checking action parameters.
//!
//! Parameters arrive as JSON. At rule load, strings may still hold `${ ... }` templates, so
//! content checks skip them; after rendering, every template is a plain string. For that
//! reason flags and tag values accept strings as well as native YAML values: a template
//! renders `true` as the string `"true"`.

use cordon_engine::compile::suggest;
use cordon_engine::registry::{ParamIssue, ParamStage, is_template};
use std::fmt;

use serde::de::value::SeqAccessDeserializer;
use serde::de::{self, DeserializeOwned, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::context::ActionError;

/// Typed parameters of one action.
pub(crate) trait Params: DeserializeOwned {
    /// Every key the parameters accept, for unknown-key suggestions.
    const FIELDS: &'static [&'static str];

    /// Checks values that deserialization cannot check: ranges, id formats, combinations.
    fn check(&self, stage: ParamStage) -> Vec<ParamIssue>;
}

/// Checks `params` for unknown keys, wrong types and invalid values, and returns every
/// problem found in the first of those three passes that finds any.
pub(crate) fn validate<P: Params>(params: &Value, stage: ParamStage) -> Vec<ParamIssue> {
    let Value::Object(entries) = params else {
        return vec![ParamIssue::at(
            Vec::<String>::new(),
            format!("parameters must be a mapping, found {}", kind(params)),
        )];
    };
    let unknown: Vec<ParamIssue> = entries
        .keys()
        .filter(|key| !P::FIELDS.contains(&key.as_str()))
        .map(|key| unknown_key(key, P::FIELDS))
        .collect();
    if !unknown.is_empty() {
        return unknown;
    }
    match serde_path_to_error::deserialize::<_, P>(params) {
        Ok(parsed) => parsed.check(stage),
        Err(error) => vec![type_issue(&error)],
    }
}

/// Parses rendered parameters for execution.
///
/// # Errors
///
/// Returns an `invalid_parameters` error naming the path of the first invalid value.
pub(crate) fn parse<P: Params>(params: &Value) -> Result<P, ActionError> {
    let issues = validate::<P>(params, ParamStage::Rendered);
    if let Some(issue) = issues.first() {
        let at = if issue.path.is_empty() {
            String::new()
        } else {
            format!("`{}`: ", issue.path.join("."))
        };
        return Err(ActionError::new(
            "invalid_parameters",
            format!("{at}{}", issue.message),
        ));
    }
    serde_json::from_value(params.clone())
        .map_err(|error| ActionError::new("invalid_parameters", error.to_string()))
}

fn unknown_key(key: &str, fields: &[&str]) -> ParamIssue {
    let help = match suggest(key, fields) {
        Some(close) => format!("did you mean `{close}`?"),
        None if fields.is_empty() => "this action takes no parameters".to_owned(),
        None => format!("expected one of: {}", fields.join(", ")),
    };
    ParamIssue::at([key], "unknown parameter").with_help(help)
}

fn type_issue(error: &serde_path_to_error::Error<serde_json::Error>) -> ParamIssue {
    let path: Vec<String> = error
        .path()
        .iter()
        .filter_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
            serde_path_to_error::Segment::Enum { variant } => Some(variant.clone()),
            serde_path_to_error::Segment::Unknown => None,
        })
        .collect();
    let message = strip_position(&error.inner().to_string());
    ParamIssue::at(path, message)
}

fn strip_position(message: &str) -> String {
    message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned()
}

/// Returns the JSON kind of a value for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A boolean parameter, written as a YAML boolean or as a string such as a template.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Flag {
    /// Not set, which means false.
    #[default]
    Unset,
    /// A YAML boolean.
    Bool(bool),
    /// A string: `true` or `false` (any case) once rendered.
    Text(String),
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FlagVisitor;

        impl Visitor<'_> for FlagVisitor {
            type Value = Flag;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("`true`, `false` or a template")
            }

            fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Flag, E> {
                Ok(Flag::Bool(flag))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Flag, E> {
                Ok(Flag::Text(text.to_owned()))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Flag, E> {
                Ok(Flag::Unset)
            }
        }

        deserializer.deserialize_any(FlagVisitor)
    }
}

impl Flag {
    /// Returns the value, or `None` when the text is not `true` or `false`.
    pub(crate) fn value(&self) -> Option<bool> {
        match self {
            Self::Unset => Some(false),
            Self::Bool(flag) => Some(*flag),
            Self::Text(text) if text.eq_ignore_ascii_case("true") => Some(true),
            Self::Text(text) if text.eq_ignore_ascii_case("false") => Some(false),
            Self::Text(_) => None,
        }
    }

    /// Returns true only for a value that is true at this stage; a template is not.
    pub(crate) fn is_true(&self) -> bool {
        self.value() == Some(true)
    }

    /// Returns true when the value is known at this stage (not an unrendered template).
    pub(crate) fn is_known(&self, stage: ParamStage) -> bool {
        match self {
            Self::Text(text) => !(stage == ParamStage::Load && is_template(text)),
            Self::Unset | Self::Bool(_) => true,
        }
    }

    /// Checks that the flag is a boolean once rendered.
    pub(crate) fn check(&self, key: &str, stage: ParamStage) -> Option<ParamIssue> {
        if !self.is_known(stage) || self.value().is_some() {
            return None;
        }
        let Self::Text(text) = self else {
            return None;
        };
        Some(
            ParamIssue::at([key], format!("expected `true` or `false`, found `{text}`"))
                .with_help(format!("write `{key}: true` or `{key}: false`")),
        )
    }
}

/// A string that YAML may also give as a number or a boolean, e.g. a tag value `1` or `true`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Text(pub(crate) String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;

        impl Visitor<'_> for TextVisitor {
            type Value = Text;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a string, a number or a boolean")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Text, E> {
                Ok(Text(text.to_owned()))
            }

            fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Text, E> {
                Ok(Text(flag.to_string()))
            }

            fn visit_i64<E: de::Error>(self, number: i64) -> Result<Text, E> {
                Ok(Text(number.to_string()))
            }

            fn visit_u64<E: de::Error>(self, number: u64) -> Result<Text, E> {
                Ok(Text(number.to_string()))
            }

            fn visit_f64<E: de::Error>(self, number: f64) -> Result<Text, E> {
                Ok(Text(number.to_string()))
            }
        }

        deserializer.deserialize_any(TextVisitor)
    }
}

/// One string or a list of strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OneOrMany {
    /// A single string.
    One(String),
    /// A list of strings.
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor;

        impl<'de> Visitor<'de> for OneOrManyVisitor {
            type Value = OneOrMany;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a string or a list of strings")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(text.to_owned()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, sequence: A) -> Result<OneOrMany, A::Error> {
                let items = Vec::<String>::deserialize(SeqAccessDeserializer::new(sequence))?;
                Ok(OneOrMany::Many(items))
            }
        }

        deserializer.deserialize_any(OneOrManyVisitor)
    }
}

impl OneOrMany {
    /// Returns the strings in order.
    pub(crate) fn items(&self) -> Vec<&str> {
        match self {
            Self::One(item) => vec![item.as_str()],
            Self::Many(items) => items.iter().map(String::as_str).collect(),
        }
    }
}

/// The resource id prefixes that parameters may name.
#[derive(Clone, Copy, Debug)]
pub(crate) enum IdKind {
    SecurityGroup,
    Vpc,
}

impl IdKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::SecurityGroup => "sg-",
            Self::Vpc => "vpc-",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::SecurityGroup => "security group id",
            Self::Vpc => "VPC id",
        }
    }
}

/// Returns true for an EC2 id: the prefix, then 8 or 17 lowercase hexadecimal digits.
pub(crate) fn is_ec2_id(text: &str, prefix: &str) -> bool {
    let Some(digits) = text.strip_prefix(prefix) else {
        return false;
    };
    matches!(digits.len(), 8 | 17)
        && digits
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// Checks that `text` is an id of the given kind, unless it is an unrendered template.
pub(crate) fn check_id(
    path: &[&str],
    text: &str,
    id: IdKind,
    stage: ParamStage,
) -> Option<ParamIssue> {
    if stage == ParamStage::Load && is_template(text) {
        return None;
    }
    if is_ec2_id(text, id.prefix()) {
        return None;
    }
    Some(
        ParamIssue::at(
            path.iter().copied(),
            format!("`{text}` is not a {}", id.noun()),
        )
        .with_help(format!(
            "{} ids look like `{}0123456789abcdef0`",
            id.noun().trim_end_matches(" id"),
            id.prefix()
        )),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[serde(default)]
        flag: Flag,
        #[serde(default, rename = "list")]
        _list: Vec<String>,
    }

    impl Params for Sample {
        const FIELDS: &'static [&'static str] = &["flag", "list"];

        fn check(&self, stage: ParamStage) -> Vec<ParamIssue> {
            self.flag.check("flag", stage).into_iter().collect()
        }
    }

    #[test]
    fn unknown_key_suggests() {
        let issues = validate::<Sample>(&json!({"flagg": true}), ParamStage::Load);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].path, vec!["flagg"]);
        assert_eq!(issues[0].help.as_deref(), Some("did you mean `flag`?"));
    }

    #[test]
    fn type_error_has_path() {
        let issues = validate::<Sample>(&json!({"list": ["a", 3]}), ParamStage::Load);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].path, vec!["list", "1"]);
        assert!(
            issues[0].message.contains("expected a string"),
            "{}",
            issues[0].message
        );
    }

    #[test]
    fn flag_template_waits_for_render() {
        let params = json!({"flag": "${env.X}"});
        assert!(validate::<Sample>(&params, ParamStage::Load).is_empty());
        let rendered = validate::<Sample>(&json!({"flag": "yes"}), ParamStage::Rendered);
        assert_eq!(rendered[0].path, vec!["flag"]);
        let parsed: Sample = parse(&json!({"flag": "TRUE"})).unwrap();
        assert!(parsed.flag.is_true());
    }

    #[test]
    fn ec2_ids() {
        assert!(is_ec2_id("sg-0123456789abcdef0", "sg-"));
        assert!(is_ec2_id("sg-01234567", "sg-"));
        assert!(!is_ec2_id("sg-0123456789ABCDEF0", "sg-"));
        assert!(!is_ec2_id("sg-012345", "sg-"));
        assert!(!is_ec2_id("vpc-01234567", "sg-"));
    }

    #[test]
    fn messages_name_no_rust_types() {
        let flag = validate::<Sample>(&json!({"flag": 3}), ParamStage::Load);
        assert_eq!(
            flag[0].message,
            "invalid type: integer `3`, expected `true`, `false` or a template"
        );
        let text: Result<Text, _> = serde_json::from_value(json!([1]));
        assert!(
            text.unwrap_err()
                .to_string()
                .contains("expected a string, a number or a boolean")
        );
        let list: Result<OneOrMany, _> = serde_json::from_value(json!({"a": 1}));
        assert!(
            list.unwrap_err()
                .to_string()
                .contains("expected a string or a list of strings")
        );
    }

    #[test]
    fn one_or_many_keeps_item_paths() {
        let value = json!(["sg-1", 2]);
        let error = serde_path_to_error::deserialize::<_, OneOrMany>(&value).unwrap_err();
        assert_eq!(error.path().to_string(), "[1]");
    }

    #[test]
    fn scalar_text_accepts_numbers() {
        let value: Text = serde_json::from_value(json!(3)).unwrap();
        assert_eq!(value.0, "3");
    }
}
