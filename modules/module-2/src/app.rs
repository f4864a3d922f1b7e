//! Step 2.5: the router.
//!
//! One axum `Router` answers every route; `lambda_http` feeds it requests
//! from either payload version. axum 0.8 writes path parameters as
//! `/{event_id}`: the old `/:event_id` panics when the router is built,
//! which every test here would catch.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lambda_http::tower::Layer;
use module_1::Config;

use crate::body::MAX_BODY_BYTES;
use crate::problem::{ApiError, PROBLEM_JSON, Problem};
use crate::routes::{get_event, get_reservation, health, post_reservation};
use crate::{Tickets, gateway};

/// What every request shares: built once per execution environment.
pub struct App<T> {
    pub config: Config,
    pub tickets: T,
}

impl<T: Tickets> App<T> {
    pub fn new(config: Config, tickets: T) -> Arc<Self> {
        Arc::new(App { config, tickets })
    }
}

/// The API: routes, then what every response goes through.
pub fn router<T: Tickets>(app: Arc<App<T>>) -> Router {
    // TODO (step 2.5): the four routes, in axum 0.8 syntax (`/{event_id}`):
    // GET /health, GET /events/{event_id}, POST /events/{event_id}/reservations
    // and GET /reservations/{reservation_id}, with the handlers of routes.rs
    // (generic ones need their store type: get_event::<T>), then .with_state(app).
    // Until then this router has no routes: every request is a 404.
    let routes = Router::new();
    with_layers(routes)
}

/// What every request and response goes through, around any set of
/// routes: module 4 adds its own routes to module 2's and wraps them the
/// same way.
pub fn with_layers(routes: Router) -> Router {
    let api = routes
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(gateway::cors())
        .layer(middleware::from_fn(gateway::context));
    // Two layers wrap the whole router rather than run inside it: routing
    // must see the path without the REST API's stage, and error responses
    // are only complete (a 405's Allow header) once the router is done.
    let outer =
        middleware::from_fn(gateway::strip_stage).layer(middleware::from_fn(problems).layer(api));
    Router::new().fallback_service(outer)
}

/// Turns every error response that is not yet a problem document (axum's
/// own 404, 405 and 413, for instance) into one, keeping its headers.
async fn problems(request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = shorten(request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    if is_problem || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, _) = response.into_parts();
    let problem: Problem = match status {
        StatusCode::NOT_FOUND => ApiError::NotFound(format!("nothing at {method} {path}")).into(),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            ApiError::MethodNotAllowed { method, allow }.into()
        }
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        }
        .into(),
        other => Problem::new(
            other,
            "http-error",
            other.canonical_reason().unwrap_or("Error"),
            format!("{method} {path} failed"),
        ),
    };
    let mut fresh = problem.into_response();
    let own: Vec<header::HeaderName> = fresh.headers().keys().cloned().collect();
    for (name, value) in &parts.headers {
        if !own.contains(name) && name != header::CONTENT_LENGTH {
            fresh.headers_mut().append(name, value.clone());
        }
    }
    fresh
}

/// A path as it may appear in a message: at most 100 characters.
fn shorten(path: &str) -> String {
    match path.char_indices().nth(100) {
        Some((at, _)) => format!("{}…", &path[..at]),
        None => path.to_string(),
    }
}
