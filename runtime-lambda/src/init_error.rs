//! Reports a failed initialisation to the Lambda Runtime API.
//!
//! lambda_runtime 1.x posts `/runtime/init/error` only for SnapStart hooks, so the function
//! posts it itself when its rules cannot be loaded, then exits. Lambda then fails the pending
//! invocation with the reported `errorType` and `errorMessage`, and logs the init failure.

use http::{Method, StatusCode};
use lambda_runtime_api_client::body::Body;
use lambda_runtime_api_client::{Client, build_request};
use serde_json::json;

use crate::init::InitError;

/// The Runtime API path for initialisation errors.
pub const INIT_ERROR_PATH: &str = "/2018-06-01/runtime/init/error";

/// Builds the JSON body Lambda expects for an error.
pub fn body(error: &InitError) -> String {
    json!({
        "errorType": error.error_type,
        "errorMessage": error.message,
        "stackTrace": [],
    })
    .to_string()
}

/// Posts the error to the Runtime API at `endpoint` (`host:port`, the value of
/// `AWS_LAMBDA_RUNTIME_API`).
///
/// # Errors
///
/// Returns a message when the request cannot be built or sent, or the Runtime API responds
/// with a status other than 202.
pub async fn report(endpoint: &str, error: &InitError) -> Result<(), String> {
    let base: http::Uri = format!("http://{endpoint}")
        .parse()
        .map_err(|parse_error| {
            format!("invalid `AWS_LAMBDA_RUNTIME_API` `{endpoint}`: {parse_error}")
        })?;
    let client = Client::builder()
        .with_endpoint(base)
        .build()
        .map_err(|build_error| format!("cannot create the Runtime API client: {build_error}"))?;
    let request = build_request()
        .method(Method::POST)
        .uri(INIT_ERROR_PATH)
        .header("Lambda-Runtime-Function-Error-Type", error.error_type)
        .header("Content-Type", "application/json")
        .body(Body::from(body(error)))
        .map_err(|build_error| format!("cannot build the init error request: {build_error}"))?;
    let response = client
        .call(request)
        .await
        .map_err(|send_error| format!("cannot post {INIT_ERROR_PATH}: {send_error}"))?;
    if response.status() == StatusCode::ACCEPTED {
        Ok(())
    } else {
        Err(format!(
            "the Runtime API answered {INIT_ERROR_PATH} with {}",
            response.status()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_lambda_fields() {
        let error = InitError {
            error_type: "cordon.InvalidRules",
            message: "rules/a.yaml:3:5: unknown key `mach`".to_owned(),
            details: String::new(),
        };
        let value: serde_json::Value = serde_json::from_str(&body(&error)).unwrap();
        assert_eq!(value["errorType"], "cordon.InvalidRules");
        assert_eq!(
            value["errorMessage"],
            "rules/a.yaml:3:5: unknown key `mach`"
        );
        assert_eq!(value["stackTrace"], json!([]));
    }
}
