//! Step 2.1: every error as `application/problem+json` (RFC 9457).
//!
//! A client in a flash sale retries, backs off, or gives up depending on
//! what went wrong. A status code says the class; a problem document says
//! the rest in a shape every client can parse:
//! `{"type": "...", "title": "...", "status": 409, "detail": "..."}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use module_1::TicketError;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::store::StoreError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// A short, stable identifier of the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Anything else worth saying (`seats_left`, `allow`, ...).
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
    /// Response headers that belong with the problem (`Allow`, `Retry-After`).
    #[serde(skip)]
    pub headers: Vec<(header::HeaderName, String)>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, title: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("/problems/{kind}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            extensions: Map::new(),
            headers: Vec::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extensions.insert(key.to_string(), value.into());
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        // TODO (step 2.1): answer with self.status, the document as JSON, the
        // content type application/problem+json, and self.headers.
        todo!("step 2.1: turn a Problem into an HTTP response")
    }
}

/// Everything that can go wrong in a request, before and after the store.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("expected a body of type application/json, got {0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{method} is not allowed here; allowed: {allow}")]
    MethodNotAllowed { method: String, allow: String },
    #[error("the body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("invalid Idempotency-Key: {0}")]
    InvalidIdempotencyKey(String),
    #[error(transparent)]
    Ticket(#[from] TicketError),
    #[error("{0}")]
    Unavailable(String),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Ticket(e) => ApiError::Ticket(e),
            StoreError::Unavailable(reason) => ApiError::Unavailable(reason),
        }
    }
}

impl From<ApiError> for Problem {
    fn from(error: ApiError) -> Problem {
        let detail = error.to_string();
        // TODO (step 2.1): one status per kind of error: 400 malformed JSON,
        // 415 wrong media type, 404 not found or unknown event, 405 with an Allow
        // header, 413 too large, 422 invalid request or Idempotency-Key, 409 sold
        // out (with "seats_left"), 503 with Retry-After: 1 for the rest.
        todo!("step 2.1: map each ApiError to a Problem")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}
