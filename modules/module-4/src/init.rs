//! An INIT that fails says why, as Lambda reports it.
//!
//! A bootstrap that exits during INIT shows up in Lambda as
//! `Runtime.ExitError` and nothing more. One that posts to the Runtime
//! API's `/runtime/init/error` first shows its own error type and message
//! in the INIT's log and in the first invocation's error: "secret
//! workshop/ticket-signing-key: access denied ...", never the value.

use lambda_http::http::{Method, Request};
use lambda_http::tracing;
use lambda_runtime_api_client::PooledClient;
use lambda_runtime_api_client::body::Body;
use serde_json::json;

/// Reports `message` as an INIT error of type `error_type`, logs it, and
/// gives back the error the bootstrap exits with.
pub async fn fail(error_type: &str, message: String) -> lambda_http::Error {
    tracing::error!(error_type, error = %message, "init failed");
    let client = PooledClient::builder().build();
    let body = json!({ "errorType": error_type, "errorMessage": message }).to_string();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/2018-06-01/runtime/init/error")
        .header("lambda-runtime-function-error-type", error_type)
        .header("content-type", "application/json")
        .body(Body::from(body));
    if let Ok(request) = request
        && let Err(e) = client.call(request).await
    {
        tracing::error!(error = %e, "could not report the init error to the Runtime API");
    }
    message.into()
}
