//! Step 4.4: the routes that carry tickets, beside module 2's.
//!
//! `POST /events/{event_id}/reservations` answers as in module 2, with a
//! `ticket` added; `GET /tickets/{token}` is the door. Every other route is
//! module 2's own, and all of them go through module 2's layers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use lambda_http::tracing;
use module_2::body::{idempotency_key, parse_reservation};
use module_2::routes::{get_event, get_reservation, health};
use module_2::{ApiError, App, Booking, Problem, Tickets, with_layers};
use serde::Serialize;
use serde_json::json;

use crate::secrets::{CURRENT, PREVIOUS, SecretCache, SecretError};
use crate::tickets::{TicketError, TicketKeys};

/// How often a ticket naming an unknown key may make an environment fetch
/// the key again. Anyone can send a ticket naming a key that does not
/// exist; without a bound, each one would cost two `GetSecretValue` calls,
/// and a flood of them could spend the account's quota for the service.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// The signing key's secret and the cache it is read through.
pub struct Keyring {
    cache: Arc<SecretCache>,
    secret_id: String,
    /// When a ticket last made this environment fetch the keys.
    last_refresh: Mutex<Option<Instant>>,
}

impl Keyring {
    pub fn new(cache: Arc<SecretCache>, secret_id: impl Into<String>) -> Self {
        Keyring {
            cache,
            secret_id: secret_id.into(),
            last_refresh: Mutex::new(None),
        }
    }

    /// The keys, from the cache: no call within the TTL.
    pub async fn keys(&self) -> Result<TicketKeys, SecretError> {
        TicketKeys::load(&self.cache, &self.secret_id).await
    }

    /// The keys, fetched now: a ticket named a key this environment has
    /// not seen, signed by an environment that fetched after a rotation.
    /// At most once per [`MIN_REFRESH_INTERVAL`]; in between, the keys
    /// already fetched.
    pub async fn refreshed(&self) -> Result<TicketKeys, SecretError> {
        let recent = {
            let mut last = self.last_refresh.lock().unwrap();
            let recent = last.is_some_and(|at| at.elapsed() < MIN_REFRESH_INTERVAL);
            if !recent {
                *last = Some(Instant::now());
            }
            recent
        };
        if recent {
            return self.keys().await;
        }
        self.cache.refresh(&self.secret_id, CURRENT).await?;
        self.cache.refresh(&self.secret_id, PREVIOUS).await?;
        self.keys().await
    }
}

/// Module 2's state, and the keyring.
pub struct Door<T> {
    pub app: Arc<App<T>>,
    pub keyring: Keyring,
}

/// Module 2's API with tickets.
pub fn router<T: Tickets>(app: Arc<App<T>>, keyring: Keyring) -> Router {
    let door = Arc::new(Door {
        app: app.clone(),
        keyring,
    });
    let module_2 = Router::new()
        .route("/health", get(health))
        .route("/events/{event_id}", get(get_event::<T>))
        .route("/reservations/{reservation_id}", get(get_reservation::<T>))
        .with_state(app);
    let tickets = Router::new()
        .route(
            "/events/{event_id}/reservations",
            post(post_reservation::<T>),
        )
        .route("/tickets/{token}", get(get_ticket::<T>))
        .with_state(door);
    with_layers(module_2.merge(tickets))
}

#[derive(Serialize)]
struct Ticketed<'a> {
    #[serde(flatten)]
    booking: &'a Booking,
    ticket: String,
}

/// A secret the request needed could not be had: 503, come back, and the
/// secret's id in the log, never its value.
fn unavailable(error: SecretError) -> Response {
    tracing::error!(error = %error, secret_id = error.id(), "secret unavailable");
    ApiError::Unavailable("the ticket signing key is unavailable".into()).into_response()
}

/// Module 2's reservation, with its ticket.
pub async fn post_reservation<T: Tickets>(
    State(door): State<Arc<Door<T>>>,
    Path(event_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let app = &door.app;
    let key = idempotency_key(&headers)?;
    let request = parse_reservation(&event_id, &headers, &body, &app.config)?;
    let keys = match door.keyring.keys().await {
        Ok(keys) => keys,
        Err(e) => return Ok(unavailable(e)),
    };
    let booking = app.tickets.reserve(&request, key.as_deref()).await?;
    let ticket = keys.sign(&booking);
    let location = format!("/reservations/{}", booking.reservation_id);
    let body = Ticketed {
        booking: &booking,
        ticket,
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if let Some(key) = key.and_then(|k| HeaderValue::from_str(&k).ok()) {
        response.headers_mut().insert("idempotency-key", key);
    }
    Ok(response)
}

/// The door: 200 with what the ticket says, 403 when no accepted key
/// signed it, 400 when it is not a ticket at all.
pub async fn get_ticket<T: Tickets>(
    State(door): State<Arc<Door<T>>>,
    Path(token): Path<String>,
) -> Response {
    let keys = match door.keyring.keys().await {
        Ok(keys) => keys,
        Err(e) => return unavailable(e),
    };
    let mut verified = keys.verify(&token).map(|(c, k)| (c, k.stage));
    // TODO (step 4.4): a ticket signed with a key this environment has not
    // fetched yet (TicketError::UnknownKey) comes from an environment that
    // saw a rotation first: door.keyring.refreshed() once (unavailable(e)
    // if that fails), and verify the token again with the fresh keys.
    match verified {
        Ok((claims, stage)) => Json(json!({
            "valid": true,
            "reservation_id": claims.r,
            "event_id": claims.e,
            "seats": claims.s,
            "signed_with": stage,
        }))
        .into_response(),
        Err(e @ TicketError::Malformed(_)) => Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-ticket",
            "Not a ticket",
            e.to_string(),
        )
        .into_response(),
        Err(e) => Problem::new(
            StatusCode::FORBIDDEN,
            "ticket-rejected",
            "Ticket rejected",
            e.to_string(),
        )
        .into_response(),
    }
}
