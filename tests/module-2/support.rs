//! Helpers for the module 2 suite: API Gateway events in both payload
//! versions, run through the router exactly as `lambda_http` runs them in
//! Lambda, and the HTTP response API Gateway would send back.

use std::path::{Path, PathBuf};

use axum::Router;
use lab::apigw::{self, Api, HttpRequest, HttpResponse, RequestMeta};
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent};
use module_1::Config;
use module_2::{App, MemoryTickets, router};
use serde_json::{Value, json};
use tower::ServiceExt;

pub const EVENTS: &str = "midnight-tour:100,last-row:1";

pub fn config(events: &str) -> Config {
    Config::from_lookup(|name| (name == "EVENTS").then(|| events.to_string()))
        .expect("test configuration is valid")
}

/// The router over a fresh in-memory store.
pub fn api(events: &str) -> Router {
    let config = config(events);
    router(App::new(config.clone(), MemoryTickets::new(config)))
}

pub fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/module-2/events")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixtures are JSON")
}

/// Runs one API Gateway event through the router, as the Lambda runtime
/// would, and returns what the function answers (the proxy response).
pub async fn invoke(api: &Router, event: Value) -> Value {
    let request: LambdaRequest = serde_json::from_value(event).expect("an API Gateway event");
    let mut context = Context::default();
    context.request_id = "lambda-request-id".into();
    let adapter = Adapter::from(api.clone());
    let response = adapter
        .oneshot(LambdaEvent::new(request, context))
        .await
        .expect("the router never fails");
    serde_json::to_value(response).expect("serialisable")
}

/// What the client sees: the function's answer, read by API Gateway.
pub async fn call(api: &Router, which: &Api, event: Value) -> HttpResponse {
    let answer = invoke(api, event).await;
    apigw::response(which, answer.to_string().as_bytes()).unwrap_or_else(|e| {
        panic!("API Gateway would reject the function's answer ({e:?}): {answer}")
    })
}

pub fn rest() -> Api {
    Api::Rest {
        stage: "prod".into(),
    }
}

pub const BOTH: [&str; 2] = ["2.0", "1.0"];

pub fn api_for(version: &str) -> Api {
    if version == "1.0" { rest() } else { Api::Http }
}

/// The event API Gateway sends for `request`, in `version`'s format.
pub fn event_for(version: &str, request: &HttpRequest) -> Value {
    let meta = RequestMeta {
        request_id: format!("gw-{version}"),
        time_epoch_ms: 1_795_633_200_000,
        api_id: "a1b2c3d4e5".into(),
    };
    apigw::event(&api_for(version), request, &meta, "/{proxy+}")
}

/// Sends `request` through API Gateway `version` to the router.
pub async fn send(api: &Router, version: &str, request: &HttpRequest) -> HttpResponse {
    call(api, &api_for(version), event_for(version, request)).await
}

pub fn body_json(response: &HttpResponse) -> Value {
    serde_json::from_slice(&response.body).unwrap_or_else(|_| {
        panic!(
            "expected a JSON body, got {}",
            String::from_utf8_lossy(&response.body)
        )
    })
}

/// A response as a snapshot shows it: status, the headers that matter,
/// and the body.
pub fn summary(response: &HttpResponse) -> Value {
    let mut headers = serde_json::Map::new();
    for name in [
        "content-type",
        "location",
        "allow",
        "retry-after",
        "idempotency-key",
        "x-request-id",
        "access-control-allow-origin",
    ] {
        if let Some(v) = response.header(name) {
            headers.insert(name.into(), json!(v));
        }
    }
    json!({
        "status": response.status,
        "headers": headers,
        "body": serde_json::from_slice::<Value>(&response.body)
            .unwrap_or_else(|_| json!(String::from_utf8_lossy(&response.body))),
    })
}

/// Panics unless `response` is a problem document with `status`.
pub fn assert_problem(response: &HttpResponse, status: u16, step: &str, what: &str) {
    assert_eq!(
        response.status,
        status,
        "{step}: {what}: expected {status}, got {}: {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json"),
        "{step}: {what}: errors are application/problem+json"
    );
    let body = body_json(response);
    assert_eq!(
        body["status"],
        json!(status),
        "{step}: {what}: the document repeats the status"
    );
    assert!(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string());
}

/// The bootstrap binary of the crate under test (see module 1's suite).
pub fn bootstrap() -> PathBuf {
    let path = option_env!("CARGO_BIN_EXE_module-2")
        .or(option_env!("CARGO_BIN_EXE_module-2-solution"))
        .expect("the crate under test has a module-2 bootstrap binary");
    PathBuf::from(path)
}
