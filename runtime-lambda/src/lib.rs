//! The AWS Lambda adapter of cordon.
//!
//! The `bootstrap` binary loads the rules once at cold start ([`init`]). For each invocation
//! it classifies the payload ([`event`]), plans every finding with `cordon-engine` and runs
//! the plan with `cordon-actions` ([`handler`]). It returns a JSON [`report`], or for an SQS
//! batch the list of records to retry, and does no containment work of its own.

pub mod event;
pub mod executor;
pub mod handler;
pub mod init;
pub mod init_error;
pub mod logging;
pub mod report;
