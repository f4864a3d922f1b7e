//! Step 2.2: reading a reservation from a request, trusting nothing.
//!
//! During a flash sale the API meets every client ever written, and some
//! that are attacking it. Each way a body can be wrong gets its own answer:
//! the wrong media type (415), broken JSON (400), JSON that is not a
//! reservation (422), and the event id comes from the path, not the body.

use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use module_1::{Config, ReserveRequest, TicketError};
use serde_json::Value;

use crate::problem::ApiError;

/// The largest body accepted; a reservation is a few dozen bytes.
pub const MAX_BODY_BYTES: usize = 8 * 1024;
/// The longest Idempotency-Key accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;

/// True for `application/json` and `application/<something>+json`, with or
/// without parameters such as `charset=utf-8`.
pub fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The reservation in a `POST /events/{event_id}/reservations` request.
pub fn parse_reservation(
    event_id: &str,
    headers: &HeaderMap,
    body: &Bytes,
    config: &Config,
) -> Result<ReserveRequest, ApiError> {
    // TODO (step 2.2): in this order: 415 unless the Content-Type is JSON
    // (is_json), 413 over MAX_BODY_BYTES, 400 for broken JSON, 422 unless
    // it is an object whose event_id (if any) matches the path; then put
    // the path's event_id in, and let module 1's ReserveRequest::parse and
    // validate do the rest.
    todo!("step 2.2: read the reservation from the request")
}

/// The optional `Idempotency-Key` header: printable ASCII, 1 to 128 bytes.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::InvalidIdempotencyKey("it must be printable ASCII".into()))?;
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::InvalidIdempotencyKey(format!(
            "it must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters without spaces"
        )));
    }
    Ok(Some(key.to_string()))
}
