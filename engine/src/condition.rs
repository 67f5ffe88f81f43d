//! Conditions: a JSONPath into the finding, an operator and the operand it compares with.
//!
//! A path may select no value, one, or several. JSON `null` counts as no value. With the
//! default `values: any`, a condition holds when at least one selected value satisfies the
//! operator; with `values: all`, when at least one value is selected and every one does.
//! `not_equals` and `not_in` are the negations of `equals` and `in` under the same
//! quantifier, so they hold when the path selects nothing. `exists` ignores the quantifier.

use std::net::IpAddr;

use ipnet::IpNet;
use jsonpath_rust::parser::model::JpQuery;
use regex::Regex;
use serde_json::Value;

use crate::glob::Glob;
use crate::source::Span;

/// How a condition treats a path that selects several values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Quantifier {
    /// At least one value satisfies the operator.
    #[default]
    Any,
    /// At least one value is selected and every value satisfies the operator.
    All,
}

/// The comparison a condition makes.
#[derive(Clone, Debug)]
pub enum Operator {
    /// Equal to a scalar; numbers compare as numbers.
    Equals(Value),
    /// Negation of [`Operator::Equals`].
    NotEquals(Value),
    /// Equal to one of the scalars.
    In(Vec<Value>),
    /// Negation of [`Operator::In`].
    NotIn(Vec<Value>),
    /// Greater than; numeric strings count as numbers.
    Gt(f64),
    /// Greater than or equal.
    Gte(f64),
    /// Less than.
    Lt(f64),
    /// Less than or equal.
    Lte(f64),
    /// A string (or the decimal text of a number) matches the regular expression anywhere.
    Matches(Regex),
    /// A string matches the whole glob.
    Glob(Glob),
    /// A string contains the substring, or a list contains an equal element.
    Contains(Value),
    /// The path selects (true) or does not select (false) a non-null value.
    Exists(bool),
    /// An IP address lies in one of the networks.
    Cidr(Vec<IpNet>),
}

impl Operator {
    /// The operator's key in a rule file.
    pub fn name(&self) -> &'static str {
        match self {
            Operator::Equals(_) => "equals",
            Operator::NotEquals(_) => "not_equals",
            Operator::In(_) => "in",
            Operator::NotIn(_) => "not_in",
            Operator::Gt(_) => "gt",
            Operator::Gte(_) => "gte",
            Operator::Lt(_) => "lt",
            Operator::Lte(_) => "lte",
            Operator::Matches(_) => "matches",
            Operator::Glob(_) => "glob",
            Operator::Contains(_) => "contains",
            Operator::Exists(_) => "exists",
            Operator::Cidr(_) => "cidr",
        }
    }
}

/// Every operator key, for validation and suggestions.
pub const OPERATOR_NAMES: &[&str] = &[
    "equals",
    "not_equals",
    "in",
    "not_in",
    "gt",
    "gte",
    "lt",
    "lte",
    "matches",
    "glob",
    "contains",
    "exists",
    "cidr",
];

/// A compiled condition.
#[derive(Clone, Debug)]
pub struct Condition {
    /// The JSONPath as written.
    pub path_text: String,
    /// The JSONPath, parsed once at load.
    pub path: JpQuery,
    /// The comparison.
    pub operator: Operator,
    /// How several values are combined.
    pub quantifier: Quantifier,
    /// Where the condition is written.
    pub span: Span,
    /// The operand as written, for explanations.
    pub operand_text: String,
}

/// The result of checking one condition against a finding.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// Whether the condition holds.
    pub holds: bool,
    /// The non-null values the path selected, at most [`MAX_SEEN`] of them.
    pub seen: Vec<Value>,
    /// How many non-null values the path selected in all.
    pub count: usize,
}

/// How many selected values a [`Check`] keeps for explanations.
pub const MAX_SEEN: usize = 5;

impl Condition {
    /// Checks the condition against a finding.
    pub fn check(&self, finding: &Value) -> Check {
        let selected =
            jsonpath_rust::query::js_path_process(&self.path, finding).unwrap_or_default();
        let values: Vec<&Value> = selected
            .iter()
            .map(|found| found.val)
            .filter(|value| !value.is_null())
            .collect();
        let holds = evaluate(&self.operator, self.quantifier, &values);
        Check {
            holds,
            seen: values
                .iter()
                .take(MAX_SEEN)
                .map(|value| truncate(value))
                .collect(),
            count: values.len(),
        }
    }
}

/// Applies an operator to the selected values under a quantifier.
pub fn evaluate(operator: &Operator, quantifier: Quantifier, values: &[&Value]) -> bool {
    let positive = |test: &dyn Fn(&Value) -> bool| match quantifier {
        Quantifier::Any => values.iter().any(|value| test(value)),
        Quantifier::All => !values.is_empty() && values.iter().all(|value| test(value)),
    };
    match operator {
        Operator::Equals(expected) => positive(&|value| scalar_eq(value, expected)),
        Operator::NotEquals(expected) => !positive(&|value| scalar_eq(value, expected)),
        Operator::In(options) => positive(&|value| options.iter().any(|o| scalar_eq(value, o))),
        Operator::NotIn(options) => !positive(&|value| options.iter().any(|o| scalar_eq(value, o))),
        Operator::Gt(bound) => positive(&|value| number_of(value).is_some_and(|n| n > *bound)),
        Operator::Gte(bound) => positive(&|value| number_of(value).is_some_and(|n| n >= *bound)),
        Operator::Lt(bound) => positive(&|value| number_of(value).is_some_and(|n| n < *bound)),
        Operator::Lte(bound) => positive(&|value| number_of(value).is_some_and(|n| n <= *bound)),
        Operator::Matches(regex) => {
            positive(&|value| text_of(value).is_some_and(|text| regex.is_match(&text)))
        }
        Operator::Glob(glob) => {
            positive(&|value| text_of(value).is_some_and(|text| glob.is_match(&text)))
        }
        Operator::Contains(needle) => positive(&|value| contains(value, needle)),
        Operator::Exists(expected) => values.is_empty() != *expected,
        Operator::Cidr(networks) => positive(&|value| in_networks(value, networks)),
    }
}

/// Compares two JSON values; numbers compare by value, so `8` equals `8.0`.
pub fn scalar_eq(value: &Value, expected: &Value) -> bool {
    match (value, expected) {
        (Value::Number(left), Value::Number(right)) => match (left.as_f64(), right.as_f64()) {
            (Some(left), Some(right)) => left == right,
            _ => left == right,
        },
        _ => value == expected,
    }
}

fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    }
}

fn text_of(value: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match value {
        Value::String(text) => Some(std::borrow::Cow::Borrowed(text)),
        Value::Number(number) => Some(std::borrow::Cow::Owned(number.to_string())),
        _ => None,
    }
}

fn contains(value: &Value, needle: &Value) -> bool {
    match (value, needle) {
        (Value::String(text), Value::String(part)) => text.contains(part.as_str()),
        (Value::Array(items), _) => items.iter().any(|item| scalar_eq(item, needle)),
        _ => false,
    }
}

fn in_networks(value: &Value, networks: &[IpNet]) -> bool {
    let Some(text) = value.as_str() else {
        return false;
    };
    match text.trim().parse::<IpAddr>() {
        Ok(address) => networks.iter().any(|network| network.contains(&address)),
        Err(_) => false,
    }
}

/// Shortens long strings and large containers so that explanations stay readable.
fn truncate(value: &Value) -> Value {
    const MAX_CHARS: usize = 120;
    match value {
        Value::String(text) if text.chars().count() > MAX_CHARS => {
            let short: String = text.chars().take(MAX_CHARS).collect();
            Value::String(format!("{short}..."))
        }
        Value::Array(items) if items.len() > MAX_SEEN => {
            Value::String(format!("[{} items]", items.len()))
        }
        Value::Object(entries) if entries.len() > MAX_SEEN => {
            Value::String(format!("{{{} keys}}", entries.len()))
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(operator: Operator, quantifier: Quantifier, values: &[Value]) -> bool {
        let refs: Vec<&Value> = values.iter().collect();
        evaluate(&operator, quantifier, &refs)
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|text| text.parse().unwrap()).collect()
    }

    #[test]
    fn operator_table() {
        use Operator::*;
        use Quantifier::{All, Any};
        let cases: Vec<(&str, Operator, Quantifier, Vec<Value>, bool)> = vec![
            (
                "equals string",
                Equals(json!("TARGET")),
                Any,
                vec![json!("TARGET")],
                true,
            ),
            (
                "equals other string",
                Equals(json!("TARGET")),
                Any,
                vec![json!("ACTOR")],
                false,
            ),
            (
                "equals int as float",
                Equals(json!(8.0)),
                Any,
                vec![json!(8)],
                true,
            ),
            (
                "equals float as int",
                Equals(json!(8)),
                Any,
                vec![json!(8.0)],
                true,
            ),
            (
                "equals string is not number",
                Equals(json!(8)),
                Any,
                vec![json!("8")],
                false,
            ),
            ("equals nothing", Equals(json!("x")), Any, vec![], false),
            (
                "equals any of several",
                Equals(json!("b")),
                Any,
                vec![json!("a"), json!("b")],
                true,
            ),
            (
                "equals all of several",
                Equals(json!("b")),
                All,
                vec![json!("a"), json!("b")],
                false,
            ),
            (
                "equals all same",
                Equals(json!("b")),
                All,
                vec![json!("b"), json!("b")],
                true,
            ),
            (
                "equals all of nothing",
                Equals(json!("b")),
                All,
                vec![],
                false,
            ),
            (
                "not_equals other",
                NotEquals(json!("TARGET")),
                Any,
                vec![json!("ACTOR")],
                true,
            ),
            (
                "not_equals same",
                NotEquals(json!("TARGET")),
                Any,
                vec![json!("TARGET")],
                false,
            ),
            (
                "not_equals nothing",
                NotEquals(json!("TARGET")),
                Any,
                vec![],
                true,
            ),
            (
                "not_equals one of two",
                NotEquals(json!("a")),
                Any,
                vec![json!("a"), json!("b")],
                false,
            ),
            (
                "in list",
                In(vec![json!("production"), json!("staging")]),
                Any,
                vec![json!("staging")],
                true,
            ),
            (
                "in list miss",
                In(vec![json!("production")]),
                Any,
                vec![json!("dev")],
                false,
            ),
            (
                "in numbers",
                In(vec![json!(22), json!(3389)]),
                Any,
                vec![json!(22.0)],
                true,
            ),
            (
                "not_in miss",
                NotIn(vec![json!("production")]),
                Any,
                vec![json!("dev")],
                true,
            ),
            (
                "not_in hit",
                NotIn(vec![json!("production")]),
                Any,
                vec![json!("production")],
                false,
            ),
            (
                "not_in nothing",
                NotIn(vec![json!("production")]),
                Any,
                vec![],
                true,
            ),
            ("gt", Gt(7.0), Any, vec![json!(8)], true),
            ("gt equal", Gt(8.0), Any, vec![json!(8)], false),
            ("gte equal", Gte(8.0), Any, vec![json!(8.0)], true),
            ("gte below", Gte(7.0), Any, vec![json!(6.9)], false),
            ("lt", Lt(4.0), Any, vec![json!(2)], true),
            ("lt equal", Lt(4.0), Any, vec![json!(4)], false),
            ("lte equal", Lte(4.0), Any, vec![json!(4)], true),
            (
                "gt numeric string",
                Gt(1000.0),
                Any,
                vec![json!("64511")],
                true,
            ),
            ("gt text string", Gt(1.0), Any, vec![json!("abc")], false),
            ("gt bool", Gt(0.0), Any, vec![json!(true)], false),
            ("gt all", Gt(1.0), All, vec![json!(2), json!(0)], false),
            (
                "matches",
                Matches(Regex::new("^i-[0-9a-f]+$").unwrap()),
                Any,
                vec![json!("i-0abc")],
                true,
            ),
            (
                "matches miss",
                Matches(Regex::new("^i-[0-9a-f]+$").unwrap()),
                Any,
                vec![json!("x")],
                false,
            ),
            (
                "matches number text",
                Matches(Regex::new("^90").unwrap()),
                Any,
                vec![json!(9001)],
                true,
            ),
            (
                "matches bool",
                Matches(Regex::new("true").unwrap()),
                Any,
                vec![json!(true)],
                false,
            ),
            (
                "glob",
                Glob(crate::glob::Glob::new("*.onion")),
                Any,
                vec![json!("x.onion")],
                true,
            ),
            (
                "glob miss",
                Glob(crate::glob::Glob::new("*.onion")),
                Any,
                vec![json!("x.com")],
                false,
            ),
            (
                "contains substring",
                Contains(json!("Tor")),
                Any,
                vec![json!("ExampleTorList")],
                true,
            ),
            (
                "contains substring miss",
                Contains(json!("tor")),
                Any,
                vec![json!("ExampleTorList")],
                false,
            ),
            (
                "contains element",
                Contains(json!("TorEntryNode")),
                Any,
                vec![json!(["a", "TorEntryNode"])],
                true,
            ),
            (
                "contains element miss",
                Contains(json!("x")),
                Any,
                vec![json!(["a"])],
                false,
            ),
            (
                "contains number element",
                Contains(json!(22)),
                Any,
                vec![json!([22.0])],
                true,
            ),
            ("exists", Exists(true), Any, vec![json!("x")], true),
            ("exists nothing", Exists(true), Any, vec![], false),
            ("not exists nothing", Exists(false), Any, vec![], true),
            (
                "not exists something",
                Exists(false),
                Any,
                vec![json!(0)],
                false,
            ),
            (
                "cidr v4",
                Cidr(nets(&["198.51.100.0/24"])),
                Any,
                vec![json!("198.51.100.44")],
                true,
            ),
            (
                "cidr v4 miss",
                Cidr(nets(&["10.0.0.0/8"])),
                Any,
                vec![json!("198.51.100.44")],
                false,
            ),
            (
                "cidr v6",
                Cidr(nets(&["2001:db8::/32"])),
                Any,
                vec![json!("2001:db8::1")],
                true,
            ),
            (
                "cidr v4 in v6 list",
                Cidr(nets(&["2001:db8::/32"])),
                Any,
                vec![json!("10.0.0.1")],
                false,
            ),
            (
                "cidr several nets",
                Cidr(nets(&["10.0.0.0/8", "192.0.2.0/24"])),
                Any,
                vec![json!("192.0.2.9")],
                true,
            ),
            (
                "cidr not an address",
                Cidr(nets(&["10.0.0.0/8"])),
                Any,
                vec![json!("10.0.0.999")],
                false,
            ),
            (
                "cidr number",
                Cidr(nets(&["10.0.0.0/8"])),
                Any,
                vec![json!(10)],
                false,
            ),
        ];
        for (name, operator, quantifier, values, expected) in cases {
            assert_eq!(
                run(operator, quantifier, &values),
                expected,
                "case `{name}`"
            );
        }
    }

    #[test]
    fn check_skips_null_and_keeps_seen() {
        let path = jsonpath_rust::parser::parse_json_path("$.a[*]").unwrap();
        let condition = Condition {
            path_text: "$.a[*]".into(),
            path,
            operator: Operator::Equals(json!(2)),
            quantifier: Quantifier::All,
            span: Span::default(),
            operand_text: "2".into(),
        };
        let check = condition.check(&json!({"a": [2, null, 2]}));
        assert!(check.holds);
        assert_eq!(check.count, 2);
        assert_eq!(check.seen, vec![json!(2), json!(2)]);
    }

    #[test]
    fn long_seen_values_are_shortened() {
        let long = "x".repeat(500);
        let short = truncate(&json!(long));
        assert!(short.as_str().unwrap().len() < 200);
    }
}
