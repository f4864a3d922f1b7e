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

// ANCHOR: problem
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
// ANCHOR_END: problem

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

// ANCHOR: into_response
impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        //- exercise 2.1
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
        //- starter
        //> // TODO (step 2.1): answer with self.status, the document as JSON, the
        //> // content type application/problem+json, and self.headers.
        //> todo!("step 2.1: turn a Problem into an HTTP response")
        //- end
    }
}
// ANCHOR_END: into_response

// ANCHOR: api_error
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
// ANCHOR_END: api_error

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Ticket(e) => ApiError::Ticket(e),
            StoreError::Unavailable(reason) => ApiError::Unavailable(reason),
        }
    }
}

// ANCHOR: problem_of
impl From<ApiError> for Problem {
    fn from(error: ApiError) -> Problem {
        let detail = error.to_string();
        //- exercise 2.1
        match error {
            ApiError::MalformedJson(_) => Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed-json",
                "Malformed JSON",
                detail,
            ),
            ApiError::UnsupportedMediaType(_) => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                detail,
            ),
            ApiError::NotFound(_) => {
                Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
            }
            ApiError::MethodNotAllowed { allow, .. } => Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                detail,
            )
            .with_header(header::ALLOW, allow),
            ApiError::PayloadTooLarge { limit } => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                detail,
            )
            .with("limit", limit),
            ApiError::InvalidIdempotencyKey(_) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-idempotency-key",
                "Invalid Idempotency-Key",
                detail,
            ),
            ApiError::Ticket(TicketError::InvalidRequest(_)) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-request",
                "Invalid request",
                detail,
            ),
            ApiError::Ticket(TicketError::UnknownEvent(_)) => Problem::new(
                StatusCode::NOT_FOUND,
                "unknown-event",
                "Unknown event",
                detail,
            ),
            ApiError::Ticket(TicketError::SoldOut { left, .. }) => {
                Problem::new(StatusCode::CONFLICT, "sold-out", "Sold out", detail)
                    .with("seats_left", left)
            }
            ApiError::Ticket(TicketError::DeadlineTooClose { .. }) | ApiError::Unavailable(_) => {
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Try again shortly",
                    detail,
                )
                .with_header(header::RETRY_AFTER, "1")
            }
        }
        //- starter
        //> // TODO (step 2.1): one status per kind of error: 400 malformed JSON,
        //> // 415 wrong media type, 404 not found or unknown event, 405 with an Allow
        //> // header, 413 too large, 422 invalid request or Idempotency-Key, 409 sold
        //> // out (with "seats_left"), 503 with Retry-After: 1 for the rest.
        //> todo!("step 2.1: map each ApiError to a Problem")
        //- end
    }
}
// ANCHOR_END: problem_of

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}
