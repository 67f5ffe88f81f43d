//! What an action runs against, and how its failures are described.

use std::error::Error as StdError;
use std::fmt::Debug;

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use cordon_engine::Summary;

use crate::outcome::Status;

/// Everything an action needs to run for one finding.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The EC2 client for the finding's region.
    pub ec2: &'a aws_sdk_ec2::Client,
    /// The finding the plan is for.
    pub finding: &'a Summary,
    /// The rule that planned the action.
    pub rule_id: &'a str,
    /// When true, the action makes only read calls and lists the write calls it would make.
    pub dry_run: bool,
    /// The result of the plan's containment actions, which run before evidence actions.
    pub containment: Containment,
}

/// The result of a plan's containment actions, as its evidence actions see it. `release`
/// does not count, because it undoes containment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Containment {
    /// The plan has no containment action, or they have not run yet.
    NotPlanned,
    /// A containment action of the plan contained the instance: it changed what it had to,
    /// found it already done, or (in a dry run) would change it.
    Succeeded,
    /// No containment action of the plan contained the instance: each failed, was skipped
    /// or was not started.
    Failed,
}

/// Joins the messages of an error and its sources with `: `, leaving out a message that the
/// one before it already ends with. `DisplayErrorContext` would add the debug form of the
/// whole chain, which names internal types.
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(current) = next {
        let text = current.to_string();
        if !parts.last().is_some_and(|last| last.ends_with(&text)) && !text.is_empty() {
            parts.push(text);
        }
        next = current.source();
    }
    parts.join(": ")
}

/// A failed EC2 call or check; it becomes [`Status::Failed`] in the outcome.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ActionError {
    /// The EC2 error code, or one of cordon's codes in snake case.
    pub code: String,
    /// What failed.
    pub message: String,
}

impl ActionError {
    /// Creates an error with one of cordon's own codes.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }

    /// Describes a failed SDK call. Service errors keep the EC2 error code and message; a
    /// timeout, a connection failure or an unreadable response get a code in snake case.
    pub fn from_sdk<E, R>(operation: &str, error: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + StdError + 'static,
        R: Debug + 'static,
    {
        let code = match error {
            SdkError::ServiceError(_) => error.code().unwrap_or("unknown_service_error"),
            SdkError::TimeoutError(_) => "timed_out",
            SdkError::DispatchFailure(_) => "dispatch_failure",
            SdkError::ResponseError(_) => "invalid_response",
            SdkError::ConstructionFailure(_) => "invalid_request",
            _ => "sdk_error",
        };
        let detail = match error.message() {
            Some(message) => message.to_owned(),
            None => error_chain(error),
        };
        Self::new(code, format!("{operation} failed: {detail}"))
    }

    /// Returns the error as a failed status.
    pub fn to_status(&self) -> Status {
        Status::failed(self.code.clone(), self.message.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        #[source]
        inner: Option<Box<Layer>>,
    }

    #[test]
    fn chain_joins_messages_without_repeats() {
        let error = Layer {
            text: "dispatch failure",
            inner: Some(Box::new(Layer {
                text: "connection refused",
                inner: Some(Box::new(Layer {
                    text: "refused",
                    inner: None,
                })),
            })),
        };
        assert_eq!(error_chain(&error), "dispatch failure: connection refused");
    }
}
