//! The sandboxed Rhai engine that runs `when` expressions and templates.
//!
//! Scripts see three constants: `finding` (the GuardDuty finding), `event` (the EventBridge
//! envelope without its `detail`, or `()` for a bare finding) and `env` (the environment
//! variables the rule file declares). Strict variables mode rejects any other name at load.
//! The engine has no module resolver (the `no_module` feature removes `import`), no `eval`,
//! and sends `print` and `debug` to `tracing`.

use std::cell::Cell;
use std::sync::OnceLock;

use rhai::{AST, Dynamic, Engine, Scope};

use crate::limits;

/// The names scripts may read.
pub const SCRIPT_VARIABLES: [&str; 3] = ["finding", "event", "env"];

/// Builds the sandboxed engine with every limit set.
pub fn sandboxed_engine() -> Engine {
    let mut engine = Engine::new();
    engine.set_max_operations(limits::RHAI_MAX_OPERATIONS);
    engine.set_max_call_levels(limits::RHAI_MAX_CALL_LEVELS);
    engine.set_max_expr_depths(limits::RHAI_MAX_EXPR_DEPTH.0, limits::RHAI_MAX_EXPR_DEPTH.1);
    engine.set_max_string_size(limits::RHAI_MAX_STRING_BYTES);
    engine.set_max_array_size(limits::RHAI_MAX_ARRAY_LEN);
    engine.set_max_map_size(limits::RHAI_MAX_MAP_LEN);
    engine.set_max_functions(32);
    engine.set_max_variables(64);
    engine.set_strict_variables(true);
    engine.on_progress(|_| over_memory_limit().then(|| Dynamic::from(MEMORY_LIMIT_TOKEN)));
    engine.disable_symbol("eval");
    engine.on_print(|text| tracing::info!(target: "cordon::script", "{text}"));
    engine.on_debug(|text, source, position| {
        tracing::debug!(target: "cordon::script", source = source.unwrap_or(""), %position, "{text}");
    });
    engine
}

/// The value a script run is terminated with when it uses too much memory.
const MEMORY_LIMIT_TOKEN: &str = "memory limit";

thread_local! {
    /// The thread's allocation count when the current script run started, if one is running.
    static RUN_START_BYTES: Cell<Option<i64>> = const { Cell::new(None) };
}

/// Returns true when the script running on this thread has allocated more than allowed.
fn over_memory_limit() -> bool {
    let start = RUN_START_BYTES.try_with(Cell::get).ok().flatten();
    start.is_some_and(|start| {
        crate::memory::thread_net_bytes().saturating_sub(start) > limits::RHAI_MAX_MEMORY_BYTES
    })
}

/// Returns the process-wide sandboxed engine.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(sandboxed_engine)
}

/// A scope that declares the script variables, for compiling in strict variables mode.
///
/// The variables are declared as plain variables, not constants: the optimizer folds
/// constants of the compile scope into the script, which would bake `()` into it.
pub fn compile_scope() -> Scope<'static> {
    let mut scope = Scope::new();
    for name in SCRIPT_VARIABLES {
        scope.push_dynamic(name, Dynamic::UNIT);
    }
    scope
}

/// A compiled script: a `when` condition or one `${ ... }` template expression.
#[derive(Clone, Debug)]
pub struct Script {
    /// The source as written.
    pub source: String,
    /// The compiled form.
    pub ast: AST,
    /// Whether the source mentions `finding`; when it does not, the finding is not converted
    /// to a Rhai value for it. Strict variables mode guarantees a script reads no variable
    /// it does not name.
    pub reads_finding: bool,
    /// Whether the source mentions `event`.
    pub reads_event: bool,
}

fn mentions(source: &str, name: &str) -> bool {
    source.match_indices(name).any(|(start, _)| {
        let before = source
            .get(..start)
            .and_then(|text| text.chars().next_back());
        let after = source
            .get(start + name.len()..)
            .and_then(|text| text.chars().next());
        let boundary = |c: Option<char>| !c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        boundary(before) && boundary(after)
    })
}

/// Why a script could not be compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    /// What is wrong.
    pub message: String,
    /// 1-based line and column inside the script, when Rhai knows them.
    pub position: Option<(usize, usize)>,
}

/// Compiles a script, either a full statement block or a single expression.
///
/// # Errors
///
/// Returns the syntax error, an oversized source, or a reference to an unknown variable.
pub fn compile(source: &str, expression_only: bool) -> Result<Script, CompileError> {
    if source.len() > limits::MAX_SCRIPT_BYTES {
        return Err(CompileError {
            message: format!(
                "script is {} bytes, over the limit of {} bytes",
                source.len(),
                limits::MAX_SCRIPT_BYTES
            ),
            position: None,
        });
    }
    let scope = compile_scope();
    let result = if expression_only {
        engine().compile_expression_with_scope(&scope, source)
    } else {
        engine().compile_with_scope(&scope, source)
    };
    match result {
        Ok(ast) => Ok(Script {
            source: source.to_owned(),
            ast,
            reads_finding: mentions(source, "finding"),
            reads_event: mentions(source, "event"),
        }),
        Err(error) => {
            let position = error.position();
            let position = position
                .line()
                .map(|line| (line, position.position().unwrap_or(1)));
            Err(CompileError {
                message: lowercase_first(&error.err_type().to_string()),
                position,
            })
        }
    }
}

fn lowercase_first(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_lowercase().chain(characters).collect(),
        None => String::new(),
    }
}

/// The values a script run sees.
pub struct Bindings<'a> {
    /// The finding as a Rhai value.
    pub finding: &'a Dynamic,
    /// The envelope as a Rhai value, or unit.
    pub event: &'a Dynamic,
    /// The declared environment variables.
    pub env: &'a Dynamic,
}

/// Runs a compiled script.
///
/// # Errors
///
/// Returns Rhai's runtime error, including a limit that stopped it, as text.
pub fn run(script: &Script, bindings: &Bindings<'_>) -> Result<Dynamic, String> {
    let mut scope = Scope::new();
    scope.push_constant_dynamic("finding", bindings.finding.clone());
    scope.push_constant_dynamic("event", bindings.event.clone());
    scope.push_constant_dynamic("env", bindings.env.clone());
    let previous = RUN_START_BYTES
        .try_with(|start| start.replace(Some(crate::memory::thread_net_bytes())))
        .ok()
        .flatten();
    let result = engine().eval_ast_with_scope::<Dynamic>(&mut scope, &script.ast);
    let _ = RUN_START_BYTES.try_with(|start| start.set(previous));
    result.map_err(|error| describe_runtime_error(&error))
}

fn describe_runtime_error(error: &rhai::EvalAltResult) -> String {
    use rhai::EvalAltResult as E;
    match error {
        E::ErrorTooManyOperations(_) => format!(
            "script stopped after {} operations (the limit)",
            limits::RHAI_MAX_OPERATIONS
        ),
        E::ErrorStackOverflow(_) => "script stopped: call nesting over the limit".to_owned(),
        E::ErrorDataTooLarge(what, _) => format!("script stopped: {what} over the size limit"),
        E::ErrorTerminated(token, _)
            if token.clone().into_string().ok().as_deref() == Some(MEMORY_LIMIT_TOKEN) =>
        {
            format!(
                "script stopped: it held more than {} MiB (the limit)",
                limits::RHAI_MAX_MEMORY_BYTES / (1024 * 1024)
            )
        }
        other => other.to_string(),
    }
}

/// Returns the environment variable names a script reads as `env.NAME` or `env["NAME"]`.
/// Method calls such as `env.keys()` are not reads of a variable. The scan reads text, so a
/// string literal such as `"env.X"` also counts.
pub fn env_references(source: &str) -> Vec<String> {
    static PATTERN: OnceLock<Option<regex::Regex>> = OnceLock::new();
    let pattern = PATTERN.get_or_init(|| {
        regex::Regex::new(r#"\benv\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*"([^"]*)"\s*\])"#).ok()
    });
    let Some(pattern) = pattern else {
        return Vec::new();
    };
    pattern
        .captures_iter(source)
        .filter_map(|captures| {
            let whole = captures.get(0)?;
            let is_call = source
                .get(whole.end()..)
                .is_some_and(|rest| rest.trim_start().starts_with('('));
            let name = captures.get(1).or_else(|| captures.get(2))?;
            (!is_call).then(|| name.as_str().to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bindings_run(source: &str, finding: serde_json::Value) -> Result<Dynamic, String> {
        let script = compile(source, false).unwrap();
        let finding = rhai::serde::to_dynamic(&finding).unwrap();
        let unit = Dynamic::UNIT;
        let env = Dynamic::from_map(rhai::Map::new());
        run(
            &script,
            &Bindings {
                finding: &finding,
                event: &unit,
                env: &env,
            },
        )
    }

    #[test]
    fn reads_finding_fields() {
        let result = bindings_run(
            "finding.service.count >= 1",
            serde_json::json!({"service": {"count": 4}}),
        );
        assert!(result.unwrap().as_bool().unwrap());
    }

    #[test]
    fn endless_loop_hits_operation_limit() {
        let error = bindings_run("loop {}", serde_json::json!({})).unwrap_err();
        assert!(error.contains("operations"), "{error}");
    }

    #[test]
    fn unknown_variable_is_a_compile_error() {
        let error = compile("findng.type == \"x\"", true).unwrap_err();
        assert!(error.message.contains("findng"), "{}", error.message);
    }

    #[test]
    fn eval_is_disabled() {
        assert!(compile("eval(\"1\")", true).is_err());
    }

    #[test]
    fn import_is_unavailable() {
        assert!(compile("import \"x\" as y; true", false).is_err());
    }

    #[test]
    fn huge_string_stops() {
        let error =
            bindings_run("let s = \"x\"; loop { s += s; }", serde_json::json!({})).unwrap_err();
        assert!(
            error.contains("size limit") || error.contains("operations"),
            "{error}"
        );
    }

    #[test]
    fn variables_are_not_folded_at_compile_time() {
        let result = bindings_run("type_of(finding)", serde_json::json!({"a": 1}));
        assert_eq!(result.unwrap().into_string().unwrap(), "map");
    }

    #[test]
    fn mentions_respects_word_boundaries() {
        assert!(mentions("finding.type", "finding"));
        assert!(mentions("x && (finding)", "finding"));
        assert!(!mentions("findings + my_finding", "finding"));
        assert!(!mentions("prevent", "event"));
    }

    #[test]
    fn env_references_are_found() {
        let names = env_references(
            r#"env.QUARANTINE_SG + env["OTHER"] + environment.x + env.keys().len()"#,
        );
        assert_eq!(names, vec!["QUARANTINE_SG".to_owned(), "OTHER".to_owned()]);
    }
}
