//! `bootstrap`: the cordon function for the Lambda `provided.al2023` runtime.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use cordon_lambda::executor::Ec2Executor;
use cordon_lambda::handler::{Function, executor_deadline};
use cordon_lambda::init::{self, InitError};
use cordon_lambda::{init_error, logging};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

/// Counts each thread's memory so that a rule's script can be stopped when it uses too much.
#[global_allocator]
static ALLOCATOR: cordon_engine::memory::CountingAllocator =
    cordon_engine::memory::CountingAllocator;

/// Variables the Lambda runtime client reads at start; it panics when one is missing.
const LAMBDA_VARIABLES: &[&str] = &[
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    logging::init();
    let lookup = |name: &str| std::env::var(name).ok();

    let missing: Vec<&str> = LAMBDA_VARIABLES
        .iter()
        .copied()
        .filter(|name| lookup(name).is_none_or(|value| value.is_empty()))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "error: `{}` not set: bootstrap runs inside AWS Lambda or under a Runtime API such \
             as tests/support/runtime_api.py or `cargo lambda watch`",
            missing.join("`, `")
        );
        return ExitCode::from(2);
    }

    let function = match start(lookup).await {
        Ok(function) => Arc::new(function),
        Err(error) => {
            fail_init(&error).await;
            return ExitCode::FAILURE;
        }
    };

    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let function = Arc::clone(&function);
        async move {
            function
                .executor()
                .note_function_arn(&event.context.invoked_function_arn);
            let deadline =
                executor_deadline(event.context.deadline(), SystemTime::now(), Instant::now());
            function.invoke(event.payload, Some(deadline)).await
        }
    });
    match lambda_runtime::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "the Lambda runtime stopped");
            ExitCode::FAILURE
        }
    }
}

/// Loads the rules and the AWS configuration once, for every invocation of this process.
async fn start(
    lookup: impl Fn(&str) -> Option<String> + Copy,
) -> Result<Function<Ec2Executor>, InitError> {
    let executable_dir = std::env::current_exe()
        .ok()
        .and_then(|path| path.parent().map(std::path::Path::to_path_buf));
    let paths = init::rule_paths(lookup, std::path::Path::exists, executable_dir)?;
    let rules = init::load_rules(&paths, cordon_actions::catalog(), lookup)?;
    let executor = Ec2Executor::load(lookup).await;
    let path_list: Vec<String> = paths
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    tracing::info!(
        rules = rules.rules().len(),
        paths = %path_list.join(":"),
        dry_run = executor.dry_run(),
        "rules loaded"
    );
    Ok(Function::new(rules, executor))
}

/// Prints the located diagnostics to standard error, logs the failure and reports it to
/// the Runtime API.
async fn fail_init(error: &InitError) {
    eprint!("{}", error.details);
    tracing::error!(error_type = error.error_type, error = %error.message, "initialisation failed");
    let endpoint = std::env::var("AWS_LAMBDA_RUNTIME_API").unwrap_or_default();
    if let Err(message) = init_error::report(&endpoint, error).await {
        tracing::error!(error = %message, "cannot report the initialisation error");
    }
}
