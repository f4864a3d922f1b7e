//! Step 2.3: the handlers.
//!
//! Each handler borrows the shared `App` (built once, in init) and answers
//! JSON or a problem. None of them can panic on any input: the path and the
//! body reach them only through `body.rs` and the router.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::body::{idempotency_key, parse_reservation};
use crate::problem::ApiError;
use crate::{App, Tickets};

/// `GET /health`: the function is up (no store call: cheap enough to poll).
pub async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

// ANCHOR: get_event
/// `GET /events/{event_id}`: the event and the seats left.
pub async fn get_event<T: Tickets>(
    State(app): State<Arc<App<T>>>,
    Path(event_id): Path<String>,
) -> Result<Response, ApiError> {
    //- exercise 2.3
    match app.tickets.event(&event_id).await? {
        Some(event) => Ok(Json(event).into_response()),
        None => Err(module_1::TicketError::UnknownEvent(event_id).into()),
    }
    //- starter
    //> // TODO (step 2.3): ask app.tickets for the event; 200 with it as JSON,
    //> // or UnknownEvent (which step 2.1 turns into a 404).
    //> todo!("step 2.3: GET /events/{{event_id}}")
    //- end
}
// ANCHOR_END: get_event

// ANCHOR: post_reservation
/// `POST /events/{event_id}/reservations`: 201 with the reservation, its
/// `Location`, and the `Idempotency-Key` echoed when one was sent.
pub async fn post_reservation<T: Tickets>(
    State(app): State<Arc<App<T>>>,
    Path(event_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    //- exercise 2.3
    let key = idempotency_key(&headers)?;
    let request = parse_reservation(&event_id, &headers, &body, &app.config)?;
    let booking = app.tickets.reserve(&request, key.as_deref()).await?;
    let location = format!("/reservations/{}", booking.reservation_id);
    let mut response = (StatusCode::CREATED, Json(booking)).into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if let Some(key) = key.and_then(|k| HeaderValue::from_str(&k).ok()) {
        response.headers_mut().insert("idempotency-key", key);
    }
    Ok(response)
    //- starter
    //> // TODO (step 2.3): check the Idempotency-Key (idempotency_key), read the
    //> // reservation (parse_reservation), reserve it with app.tickets, and answer
    //> // 201 Created with the booking as JSON, a Location header
    //> // (/reservations/<id>) and the Idempotency-Key echoed if one was sent.
    //> todo!("step 2.3: POST /events/{{event_id}}/reservations")
    //- end
}
// ANCHOR_END: post_reservation

/// `GET /reservations/{reservation_id}`.
pub async fn get_reservation<T: Tickets>(
    State(app): State<Arc<App<T>>>,
    Path(reservation_id): Path<String>,
) -> Result<Response, ApiError> {
    //- exercise 2.3
    match app.tickets.reservation(&reservation_id).await? {
        Some(booking) => Ok(Json(booking).into_response()),
        None => Err(ApiError::NotFound(format!(
            "no reservation {reservation_id}"
        ))),
    }
    //- starter
    //> // TODO (step 2.3): the reservation as JSON, or ApiError::NotFound.
    //> todo!("step 2.3: GET /reservations/{{reservation_id}}")
    //- end
}
