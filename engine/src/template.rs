//! Templates: strings with `${ <Rhai expression> }` parts, compiled at load.
//!
//! A template renders to a string. Each expression's value is inserted as text: strings as
//! they are, numbers and booleans in their usual form, arrays and maps as JSON. An expression
//! that yields `()` (a missing finding field, say) is an error, so a parameter never silently
//! becomes empty. `$${` writes a literal `${`. Rendered text is never parsed again, so a finding
//! field that itself contains `${...}` comes out verbatim.

use serde_json::Value;

use crate::limits;
use crate::script::{self, Bindings, CompileError, Script};

/// One piece of a template.
#[derive(Clone, Debug)]
pub enum Part {
    /// Text copied as it is.
    Literal(String),
    /// An expression whose value is inserted.
    Expression(Script),
    /// An expression that only reads a field, such as `finding.resource.instanceDetails.instanceId`
    /// or `env.QUARANTINE_SG`. It is read straight from the JSON, without converting the
    /// finding to a Rhai value, and gives the same text as the Rhai expression would.
    Field(FieldRef),
}

/// The variable a field reference starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Root {
    /// `finding`.
    Finding,
    /// `event`.
    Event,
    /// `env`.
    Env,
}

/// A chain of property reads from one of the script variables.
#[derive(Clone, Debug)]
pub struct FieldRef {
    /// The expression as written.
    pub source: String,
    /// The same expression compiled, run when the JSON has no such field: Rhai also reads
    /// properties that are not JSON keys, such as `len` of an array.
    pub script: Script,
    /// The variable it starts from.
    pub root: Root,
    /// The property names, in order.
    pub keys: Vec<String>,
}

impl FieldRef {
    /// Recognises `root.key.key...` with identifier keys.
    fn parse(source: &str, script: &Script) -> Option<Self> {
        let mut pieces = source.trim().split('.');
        let root = match pieces.next()?.trim() {
            "finding" => Root::Finding,
            "event" => Root::Event,
            "env" => Root::Env,
            _ => return None,
        };
        let keys: Vec<String> = pieces.map(|piece| piece.trim().to_owned()).collect();
        let identifier = |key: &String| {
            key.chars()
                .next()
                .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        (!keys.is_empty() && keys.iter().all(identifier)).then(|| Self {
            source: source.to_owned(),
            script: script.clone(),
            root,
            keys,
        })
    }

    fn read(&self, context: &RenderContext<'_>) -> Option<String> {
        let start = match self.root {
            Root::Finding => context.finding,
            Root::Event => context.event?,
            Root::Env => {
                let env = context.env.read_lock::<rhai::Map>()?;
                let first = self.keys.first()?;
                let value = env.get(first.as_str())?;
                return (self.keys.len() == 1 && value.is_string()).then(|| value.to_string());
            }
        };
        let mut value = start;
        for key in &self.keys {
            value = value.get(key)?;
        }
        json_text(value)
    }
}

/// Formats a JSON value as the Rhai expression reading it would: floats in Rhai's form,
/// `null` as no value.
fn json_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Number(number) => Some(match number.as_i64() {
            Some(integer) => integer.to_string(),
            None => rhai::Dynamic::from(number.as_f64().unwrap_or(f64::NAN)).to_string(),
        }),
        Value::Array(_) | Value::Object(_) => Some(value.to_string()),
    }
}

/// What a template reads: the JSON for field references, and Rhai values on demand.
pub struct RenderContext<'a> {
    /// The finding.
    pub finding: &'a Value,
    /// The envelope without `detail`, when there is one.
    pub event: Option<&'a Value>,
    /// The declared environment variables, a Rhai map of strings.
    pub env: &'a rhai::Dynamic,
    /// Builds the Rhai values for expressions that need them.
    pub bindings: &'a dyn Fn() -> Bindings<'a>,
}

/// A compiled template.
#[derive(Clone, Debug)]
pub struct Template {
    /// The source as written.
    pub source: String,
    /// Its pieces in order.
    pub parts: Vec<Part>,
}

/// Why a template could not be compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    /// What is wrong.
    pub message: String,
    /// Byte offset in the template source where the problem is.
    pub offset: usize,
}

impl Template {
    /// Compiles a template.
    ///
    /// # Errors
    ///
    /// Returns an unterminated `${`, an empty expression, or the expression's compile error.
    pub fn compile(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = source;
        let mut consumed = 0;
        while let Some(start) = rest.find('$') {
            let (before, from_dollar) = rest.split_at(start);
            literal.push_str(before);
            if let Some(after) = from_dollar.strip_prefix("$${") {
                literal.push_str("${");
                consumed += start + 3;
                rest = after;
                continue;
            }
            let Some(body_and_rest) = from_dollar.strip_prefix("${") else {
                literal.push('$');
                consumed += start + 1;
                rest = from_dollar.get(1..).unwrap_or_default();
                continue;
            };
            let opened_at = consumed + start;
            let Some(end) = closing_brace(body_and_rest) else {
                return Err(TemplateError {
                    message: "unterminated `${`: no matching `}`".to_owned(),
                    offset: opened_at,
                });
            };
            let body = body_and_rest.get(..end).unwrap_or_default();
            if body.trim().is_empty() {
                return Err(TemplateError {
                    message: "empty `${}` expression".to_owned(),
                    offset: opened_at,
                });
            }
            let compiled = script::compile(body, true).map_err(|error: CompileError| {
                let offset = opened_at + 2;
                TemplateError {
                    message: format!("invalid expression `{}`: {}", body.trim(), error.message),
                    offset,
                }
            })?;
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            match FieldRef::parse(body, &compiled) {
                Some(field) => parts.push(Part::Field(field)),
                None => parts.push(Part::Expression(compiled)),
            }
            consumed = opened_at + 2 + end + 1;
            rest = body_and_rest.get(end + 1..).unwrap_or_default();
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Self {
            source: source.to_owned(),
            parts,
        })
    }

    /// Returns the source of each expression in the template.
    pub fn expressions(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Expression(script) => Some(script.source.as_str()),
            Part::Field(field) => Some(field.source.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Returns true when the template has no expression.
    pub fn is_literal(&self) -> bool {
        self.expressions().next().is_none()
    }

    /// Renders the template. Control characters in the values of expressions become U+FFFD,
    /// because the values come from the finding and end up in EC2 tags and descriptions,
    /// where a newline or an escape sequence would mislead a responder reading them.
    ///
    /// # Errors
    ///
    /// Returns the first expression that fails, yields `()`, or makes the result too long.
    pub fn render(&self, context: &RenderContext<'_>) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field(field) => match field.read(context) {
                    Some(text) => push_value(&mut out, &text),
                    None => push_value(&mut out, &run_expression(&field.script, context)?),
                },
                Part::Expression(expression) => {
                    push_value(&mut out, &run_expression(expression, context)?);
                }
            }
            if out.len() > limits::MAX_RENDERED_BYTES {
                return Err(format!(
                    "template `{}` renders to more than {} bytes",
                    self.source,
                    limits::MAX_RENDERED_BYTES
                ));
            }
        }
        Ok(out)
    }
}

/// Returns `value` with each control character replaced by U+FFFD, as rendered templates
/// write the values of their expressions. Actions use it for finding fields that they send to
/// AWS without a template.
pub fn replace_controls(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    push_value(&mut out, value);
    out
}

/// Appends an expression's value with each control character replaced by U+FFFD.
fn push_value(out: &mut String, value: &str) {
    out.extend(value.chars().map(|c| {
        if c.is_control() {
            char::REPLACEMENT_CHARACTER
        } else {
            c
        }
    }));
}

fn run_expression(expression: &Script, context: &RenderContext<'_>) -> Result<String, String> {
    let value = script::run(expression, &(context.bindings)()).map_err(|error| {
        format!(
            "template `${{{}}}` failed: {error}",
            expression.source.trim()
        )
    })?;
    if value.is_unit() {
        return Err(no_value(&expression.source));
    }
    Ok(text_of(&value))
}

fn no_value(source: &str) -> String {
    format!(
        "template `${{{}}}` has no value for this finding",
        source.trim()
    )
}

fn text_of(value: &rhai::Dynamic) -> String {
    if value.is_string() || value.is_int() || value.is_float() || value.is_bool() || value.is_char()
    {
        return value.to_string();
    }
    match rhai::serde::from_dynamic::<serde_json::Value>(value) {
        Ok(json) => json.to_string(),
        Err(_) => value.to_string(),
    }
}

/// Finds the `}` that closes an expression, skipping nested braces and string literals.
fn closing_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (index, character) in text.char_indices() {
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
            '"' | '\'' | '`' => quote = Some(character),
            '{' => depth += 1,
            '}' if depth == 0 => return Some(index),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use rhai::Dynamic;
    use serde_json::json;

    use super::*;

    fn render(
        source: &str,
        finding: serde_json::Value,
        env: &[(&str, &str)],
    ) -> Result<String, String> {
        let template = Template::compile(source).map_err(|error| error.message)?;
        let finding_value = rhai::serde::to_dynamic(&finding).unwrap();
        let mut map = rhai::Map::new();
        for (name, value) in env {
            map.insert((*name).into(), Dynamic::from(value.to_string()));
        }
        let env = Dynamic::from_map(map);
        let unit = Dynamic::UNIT;
        let bindings = || Bindings {
            finding: &finding_value,
            event: &unit,
            env: &env,
        };
        template.render(&RenderContext {
            finding: &finding,
            event: None,
            env: &env,
            bindings: &bindings,
        })
    }

    /// Renders with the field fast path disabled, by wrapping each expression in brackets.
    fn render_slow(source: &str, finding: serde_json::Value) -> Result<String, String> {
        let slow = source.replace("${", "${(").replace('}', ")}");
        render(&slow, finding, &[])
    }

    #[test]
    fn field_fast_path_gives_the_rhai_text() {
        let finding =
            json!({"a": "x", "i": 8, "f": 8.0, "g": 2.5, "b": true, "l": [1, "y"], "m": {"k": 1}});
        for field in ["a", "i", "f", "g", "b", "l", "m"] {
            let source = format!("${{finding.{field}}}");
            assert!(matches!(
                Template::compile(&source).unwrap().parts[0],
                Part::Field(_)
            ));
            let fast = render(&source, finding.clone(), &[]).unwrap();
            let slow = render_slow(&source, finding.clone()).unwrap();
            assert_eq!(fast, slow, "field `{field}`");
        }
    }

    #[test]
    fn field_fast_path_falls_back_to_rhai_properties() {
        let out = render("${finding.tags.len}", json!({"tags": [1, 2]}), &[]);
        assert_eq!(out.unwrap(), "2");
    }

    #[test]
    fn field_fast_path_null_is_no_value() {
        let error = render("${finding.platform}", json!({"platform": null}), &[]).unwrap_err();
        assert!(error.contains("no value"), "{error}");
        assert!(render_slow("${finding.platform}", json!({"platform": null})).is_err());
    }

    #[test]
    fn control_characters_in_values_are_replaced() {
        let finding = json!({"id": "abc\u{1b}[2J\nx"});
        let fast = render("id ${finding.id}", finding.clone(), &[]).unwrap();
        assert_eq!(fast, "id abc\u{fffd}[2J\u{fffd}x");
        let slow = render_slow("id ${finding.id}", finding).unwrap();
        assert_eq!(slow, fast);
    }

    #[test]
    fn literal_and_expressions() {
        let out = render(
            "cordon ${finding.type} ${finding.id}",
            json!({"type": "T", "id": "abc"}),
            &[],
        );
        assert_eq!(out.unwrap(), "cordon T abc");
    }

    #[test]
    fn env_value() {
        let out = render(
            "${env.QUARANTINE_SG}",
            json!({}),
            &[("QUARANTINE_SG", "sg-1")],
        );
        assert_eq!(out.unwrap(), "sg-1");
    }

    #[test]
    fn numbers_and_nested_braces() {
        let out = render(
            "${finding.severity} ${ #{a: 1}.a }",
            json!({"severity": 8}),
            &[],
        );
        assert_eq!(out.unwrap(), "8 1");
    }

    #[test]
    fn finding_text_is_not_rendered_again() {
        let out = render(
            "${finding.value}",
            json!({"value": "${env.SECRET}"}),
            &[("SECRET", "s")],
        );
        assert_eq!(out.unwrap(), "${env.SECRET}");
    }

    #[test]
    fn escaped_dollar_brace() {
        assert_eq!(render("a $${b} $c", json!({}), &[]).unwrap(), "a ${b} $c");
    }

    #[test]
    fn missing_field_is_an_error() {
        let error = render("${finding.nope}", json!({}), &[]).unwrap_err();
        assert!(error.contains("no value"), "{error}");
    }

    #[test]
    fn unterminated_is_an_error() {
        let error = Template::compile("x ${finding.type").unwrap_err();
        assert!(error.message.contains("unterminated"));
        assert_eq!(error.offset, 2);
    }

    #[test]
    fn brace_inside_string_literal() {
        let out = render("${ \"}\" + finding.a }", json!({"a": "x"}), &[]);
        assert_eq!(out.unwrap(), "}x");
    }

    #[test]
    fn syntax_error_is_reported() {
        let error = Template::compile("${finding.}").unwrap_err();
        assert!(
            error.message.starts_with("invalid expression"),
            "{}",
            error.message
        );
    }
}
