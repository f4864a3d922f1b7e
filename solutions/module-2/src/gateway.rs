//! Step 2.4: what API Gateway adds to a request, and what the function
//! owes back.
//!
//! - Two request ids: API Gateway's (what the client and the access log
//!   see) and Lambda's (what the REPORT line and X-Ray see). Every log line
//!   carries both, and the response returns the gateway's as `x-request-id`,
//!   so a fan's complaint leads straight to the function's logs.
//! - A REST API's stage (`/prod`) arrives in front of the path; routing must
//!   not see it.
//! - Browsers call the API from the ticket shop's pages: CORS.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderValue, Method, Uri, header};
use axum::middleware::Next;
use axum::response::Response;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::{Instrument, info, info_span};

// ANCHOR: request_ids_type
/// The request ids of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestIds {
    /// Lambda's request id (`Context::request_id`).
    pub lambda: String,
    /// API Gateway's request id (`requestContext.requestId`).
    pub gateway: String,
}
// ANCHOR_END: request_ids_type

impl RequestIds {
    // ANCHOR: request_ids
    pub fn of(request: &Request) -> RequestIds {
        //- exercise 2.4
        let gateway = match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV1(ctx)) => ctx.request_id.clone(),
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
            _ => None,
        };
        let lambda = request.lambda_context_ref().map(|c| c.request_id.clone());
        RequestIds {
            lambda: lambda.unwrap_or_else(|| "-".into()),
            gateway: gateway.unwrap_or_else(|| "-".into()),
        }
        //- starter
        //> // TODO (step 2.4): the gateway's id is requestContext.requestId: match
        //> // request.request_context_ref() on RequestContext::ApiGatewayV1 and
        //> // ApiGatewayV2. Lambda's is request.lambda_context_ref()'s request_id.
        //> // Use "-" for an id that is absent.
        //> todo!("step 2.4: find the request ids")
        //- end
    }
    // ANCHOR_END: request_ids
}

/// True until this execution environment's first request (module 1's
/// cold start line, carried over).
static COLD: AtomicBool = AtomicBool::new(true);

/// Every request runs in a span holding both ids (and the X-Ray trace id
/// Lambda passes), ends with one log line, and answers with the gateway's
/// id in `x-request-id`. The first request of an environment also logs a
/// "cold start" line, as in module 1.
// ANCHOR: context
pub async fn context(request: Request, next: Next) -> Response {
    let ids = RequestIds::of(&request);
    let trace = request
        .lambda_context_ref()
        .and_then(|c| c.xray_trace_id.clone())
        .unwrap_or_else(|| "-".into());
    let span = info_span!(
        "request",
        requestId = %ids.lambda,
        gatewayRequestId = %ids.gateway,
        xrayTraceId = %trace,
    );
    if COLD.swap(false, Ordering::SeqCst) {
        span.in_scope(|| {
            info!(
                init_type = std::env::var("AWS_LAMBDA_INITIALIZATION_TYPE")
                    .as_deref()
                    .unwrap_or("on-demand"),
                "cold start"
            )
        });
    }
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string());
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        info!(
            method = %method,
            route = route.as_deref().unwrap_or("-"),
            status = response.status().as_u16(),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&ids.gateway) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
// ANCHOR_END: context

/// Takes a REST API's stage off the front of the path. `lambda_http` puts
/// it there (`/prod/events/...`) and keeps the path API Gateway matched as
/// the raw HTTP path.
// ANCHOR: strip_stage
pub async fn strip_stage(mut request: Request, next: Next) -> Response {
    //- exercise 2.4
    let raw = request.raw_http_path().to_string();
    if !raw.is_empty() && raw != request.uri().path() {
        let path_and_query = match request.uri().query() {
            Some(query) => format!("{raw}?{query}"),
            None => raw,
        };
        if let Ok(uri) = path_and_query.parse::<Uri>() {
            *request.uri_mut() = uri;
        }
    }
    //- starter
    //> // TODO (step 2.4): when request.raw_http_path() (the path without the
    //> // stage) differs from the URI's path, rebuild the URI from it, keeping
    //> // the query string.
    //- end
    next.run(request).await
}
// ANCHOR_END: strip_stage

/// CORS for the shop's web pages: the origins in `CORS_ALLOW_ORIGINS`
/// (comma-separated), any origin when it is unset.
pub fn cors() -> CorsLayer {
    let origins = std::env::var("CORS_ALLOW_ORIGINS").unwrap_or_default();
    let allow = if origins.trim().is_empty() || origins.trim() == "*" {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .split(',')
                .filter_map(|o| HeaderValue::from_str(o.trim()).ok()),
        )
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            "idempotency-key".parse().expect("valid header name"),
        ])
        .expose_headers([
            header::LOCATION,
            "x-request-id".parse().expect("valid header name"),
            "idempotency-key".parse().expect("valid header name"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}
