//! Input: an EventBridge envelope around a GuardDuty finding, or a bare finding.
//!
//! Every check happens before any rule sees the input: size and nesting limits first, then
//! JSON syntax, then the fields rules and actions rely on. Errors name the JSON path that
//! failed. GuardDuty events that are not findings are not errors: they come back as
//! [`Input::Skipped`] so that callers can acknowledge them.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::limits;

/// The detail-type of an EventBridge event that carries a GuardDuty finding.
pub const FINDING_DETAIL_TYPE: &str = "GuardDuty Finding";

/// The source of GuardDuty events.
pub const GUARDDUTY_SOURCE: &str = "aws.guardduty";

/// A parsed input.
#[derive(Clone, Debug)]
pub enum Input {
    /// A finding to evaluate.
    Finding(Box<Finding>),
    /// A GuardDuty event that is not a finding.
    Skipped {
        /// Why it was skipped.
        reason: String,
    },
}

/// A GuardDuty finding and the envelope it came in.
#[derive(Clone, Debug)]
pub struct Finding {
    /// The finding (`detail` of the envelope).
    pub detail: Value,
    /// The envelope without `detail`, when the finding came in one.
    pub envelope: Option<Value>,
    /// The fields callers need most, read once.
    pub summary: Summary,
}

/// The identifying fields of a finding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// The finding id, stable across re-publications of the same finding.
    pub id: String,
    /// The finding type, e.g. `UnauthorizedAccess:EC2/TorClient`.
    #[serde(rename = "type")]
    pub finding_type: String,
    /// `resource.resourceType`, e.g. `Instance`.
    pub resource_type: String,
    /// The account that owns the resource.
    pub account_id: Option<String>,
    /// The region of the resource.
    pub region: Option<String>,
    /// The EC2 instance id, for instance findings.
    pub instance_id: Option<String>,
    /// The severity.
    pub severity: Option<f64>,
    /// True for a sample finding generated on request.
    pub sample: bool,
}

/// Why an input was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    /// The JSON path of the value that failed, e.g. `$.detail.type`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "invalid input at `{}`: {}",
            self.path, self.message
        )
    }
}

impl std::error::Error for InputError {}

fn error(path: &str, message: impl Into<String>) -> InputError {
    InputError {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Parses an input from JSON text.
///
/// # Errors
///
/// Returns an [`InputError`] for input over the size or depth limit, malformed JSON, or a
/// value that is neither a GuardDuty event nor a finding.
pub fn parse(bytes: &[u8]) -> Result<Input, InputError> {
    if bytes.len() > limits::MAX_INPUT_BYTES {
        return Err(error(
            "$",
            format!(
                "input is {} bytes, over the limit of {} bytes",
                bytes.len(),
                limits::MAX_INPUT_BYTES
            ),
        ));
    }
    check_depth(bytes)?;
    let value: Value = serde_json::from_slice(bytes).map_err(|parse_error| {
        error(
            "$",
            format!(
                "malformed JSON at line {}, column {}: {}",
                parse_error.line(),
                parse_error.column(),
                strip_position(&parse_error.to_string())
            ),
        )
    })?;
    from_value(value)
}

fn strip_position(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

/// Rejects JSON nested deeper than the limit without parsing it.
fn check_depth(bytes: &[u8]) -> Result<(), InputError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limits::MAX_INPUT_DEPTH {
                    return Err(error(
                        "$",
                        format!("input nests deeper than {} levels", limits::MAX_INPUT_DEPTH),
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Classifies a parsed JSON value as an event, a bare finding, or an error.
///
/// # Errors
///
/// Returns an [`InputError`] naming the path of the first field that failed.
pub fn from_value(value: Value) -> Result<Input, InputError> {
    let Value::Object(mut object) = value else {
        return Err(error(
            "$",
            format!("expected a JSON object, found {}", kind(&value)),
        ));
    };
    if object.contains_key("Records") {
        return Err(error(
            "$.Records",
            "an SQS batch is not a finding: pass each record's `body` on its own",
        ));
    }
    if object.contains_key("detail-type") || object.contains_key("detail") {
        let detail_type = string_field(&object, "detail-type", "$")?.to_owned();
        let source = string_field(&object, "source", "$")?.to_owned();
        if source != GUARDDUTY_SOURCE {
            return Err(error(
                "$.source",
                format!("expected `{GUARDDUTY_SOURCE}`, found `{source}`"),
            ));
        }
        if detail_type != FINDING_DETAIL_TYPE {
            return Ok(Input::Skipped {
                reason: format!("GuardDuty event `{detail_type}` is not a finding"),
            });
        }
        let detail = object
            .remove("detail")
            .ok_or_else(|| error("$.detail", "missing field"))?;
        let summary = summarize(&detail, "$.detail")?;
        return Ok(Input::Finding(Box::new(Finding {
            detail,
            envelope: Some(Value::Object(object)),
            summary,
        })));
    }
    let detail = Value::Object(object);
    let summary = summarize(&detail, "$")?;
    Ok(Input::Finding(Box::new(Finding {
        detail,
        envelope: None,
        summary,
    })))
}

fn summarize(detail: &Value, base: &str) -> Result<Summary, InputError> {
    let Value::Object(object) = detail else {
        return Err(error(
            base,
            format!("expected a finding object, found {}", kind(detail)),
        ));
    };
    let finding_type = string_field(object, "type", base)?.to_owned();
    let id = string_field(object, "id", base)?.to_owned();
    let resource_path = format!("{base}.resource");
    let resource = match object.get("resource") {
        Some(Value::Object(resource)) => resource,
        Some(other) => {
            return Err(error(
                &resource_path,
                format!("expected an object, found {}", kind(other)),
            ));
        }
        None => return Err(error(&resource_path, "missing field")),
    };
    let resource_type = string_field(resource, "resourceType", &resource_path)?.to_owned();
    let instance_id = match resource.get("instanceDetails") {
        Some(Value::Object(details)) => optional_string(
            details,
            "instanceId",
            &format!("{resource_path}.instanceDetails"),
        )?,
        Some(Value::Null) | None => None,
        Some(other) => {
            return Err(error(
                &format!("{resource_path}.instanceDetails"),
                format!("expected an object, found {}", kind(other)),
            ));
        }
    };
    let severity = match object.get("severity") {
        Some(Value::Number(number)) => number.as_f64(),
        Some(Value::Null) | None => None,
        Some(other) => {
            return Err(error(
                &format!("{base}.severity"),
                format!("expected a number, found {}", kind(other)),
            ));
        }
    };
    Ok(Summary {
        id,
        finding_type,
        resource_type,
        account_id: optional_string(object, "accountId", base)?,
        region: optional_string(object, "region", base)?,
        instance_id,
        severity,
        sample: is_sample(detail),
    })
}

/// Returns true when the finding is a sample, in either shape of `service.additionalInfo`:
/// a free-form object with `sample: true`, or `{"value": "<JSON text>", "type": "default"}`
/// whose text contains `sample: true`.
pub fn is_sample(detail: &Value) -> bool {
    let Some(info) = detail.pointer("/service/additionalInfo") else {
        return false;
    };
    if flag_is_true(info.get("sample")) {
        return true;
    }
    match info.get("value") {
        Some(Value::String(text)) if text.len() <= limits::MAX_INPUT_BYTES => {
            serde_json::from_str::<Value>(text)
                .map(|inner| flag_is_true(inner.get("sample")))
                .unwrap_or(false)
        }
        _ => false,
    }
}

fn flag_is_true(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(flag)) => *flag,
        Some(Value::String(text)) => text.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn string_field<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    base: &str,
) -> Result<&'a str, InputError> {
    let path = format!("{base}.{key}");
    match object.get(key) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text),
        Some(Value::String(_)) => Err(error(&path, "must not be empty")),
        Some(other) => Err(error(
            &path,
            format!("expected a string, found {}", kind(other)),
        )),
        None => Err(error(&path, "missing field")),
    }
}

fn optional_string(
    object: &Map<String, Value>,
    key: &str,
    base: &str,
) -> Result<Option<String>, InputError> {
    match object.get(key) {
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(Value::Null) | None => Ok(None),
        Some(other) => Err(error(
            &format!("{base}.{key}"),
            format!("expected a string, found {}", kind(other)),
        )),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn finding() -> Value {
        json!({
            "id": "a4c2e9f07b1d4e8c9f3a6b5d2e1c0f98",
            "type": "UnauthorizedAccess:EC2/TorClient",
            "accountId": "111122223333",
            "region": "eu-west-1",
            "severity": 8,
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-1"}},
            "service": {"additionalInfo": {}}
        })
    }

    fn envelope(detail: Value) -> Value {
        json!({
            "version": "0", "id": "e", "detail-type": "GuardDuty Finding",
            "source": "aws.guardduty", "account": "1", "region": "eu-west-1",
            "resources": [], "detail": detail
        })
    }

    fn parse_value(value: Value) -> Result<Input, InputError> {
        parse(value.to_string().as_bytes())
    }

    #[test]
    fn envelope_is_unwrapped() {
        let Input::Finding(found) = parse_value(envelope(finding())).unwrap() else {
            panic!("expected a finding");
        };
        assert_eq!(found.summary.instance_id.as_deref(), Some("i-1"));
        assert_eq!(found.summary.severity, Some(8.0));
        assert!(found.envelope.unwrap().get("detail").is_none());
    }

    #[test]
    fn bare_finding_is_accepted() {
        let Input::Finding(found) = parse_value(finding()).unwrap() else {
            panic!("expected a finding");
        };
        assert!(found.envelope.is_none());
        assert_eq!(found.summary.resource_type, "Instance");
    }

    #[test]
    fn other_detail_type_is_skipped() {
        let mut event = envelope(json!({}));
        event["detail-type"] = json!("GuardDuty Runtime Protection Unhealthy");
        assert!(matches!(parse_value(event).unwrap(), Input::Skipped { .. }));
    }

    #[test]
    fn errors_name_the_path() {
        let cases = vec![
            (json!([1]), "$"),
            (envelope(json!({"id": "x"})), "$.detail.type"),
            (envelope(json!({"id": "x", "type": 3})), "$.detail.type"),
            (
                envelope(json!({"id": "x", "type": "t"})),
                "$.detail.resource",
            ),
            (
                envelope(json!({"id": "x", "type": "t", "resource": {}})),
                "$.detail.resource.resourceType",
            ),
            (envelope(json!("text")), "$.detail"),
            (
                json!({"detail-type": "GuardDuty Finding", "source": "aws.ec2", "detail": {}}),
                "$.source",
            ),
            (json!({"Records": []}), "$.Records"),
        ];
        for (input, path) in cases {
            let failure = parse_value(input.clone()).unwrap_err();
            assert_eq!(failure.path, path, "input {input}");
        }
    }

    #[test]
    fn malformed_json_has_position() {
        let failure = parse(b"{\n  \"a\": ,\n}").unwrap_err();
        assert!(failure.message.contains("line 2"), "{}", failure.message);
    }

    #[test]
    fn deep_input_is_rejected() {
        let deep = "[".repeat(limits::MAX_INPUT_DEPTH + 1);
        let failure = parse(deep.as_bytes()).unwrap_err();
        assert!(failure.message.contains("deeper"));
    }

    #[test]
    fn brackets_in_strings_do_not_count() {
        let text = format!("{{\"a\": \"{}\"}}", "[".repeat(200));
        let failure = parse(text.as_bytes()).unwrap_err();
        assert_eq!(failure.path, "$.type");
    }

    #[test]
    fn sample_in_both_shapes() {
        let mut object_shape = finding();
        object_shape["service"]["additionalInfo"] = json!({"sample": true});
        assert!(is_sample(&object_shape));
        let mut string_shape = finding();
        string_shape["service"]["additionalInfo"] =
            json!({"value": "{\"sample\":true}", "type": "default"});
        assert!(is_sample(&string_shape));
        assert!(!is_sample(&finding()));
    }
}
