//! Steps 3.2, 3.3 and 3.4: the tickets in a database that every execution
//! environment shares, behind module 2's `Tickets` trait, so module 2's
//! router serves them unchanged.

use std::future::Future;
use std::time::Duration;

use module_1::{ReserveRequest, TicketError};
use module_2::store::StoreError;
use module_2::{Booking, EventStatus, Tickets};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use tracing::warn;

use crate::db::statement;

/// How long one store operation may take, connection included, before the
/// request is answered with a 503: well inside the function's 3 s timeout,
/// and after the database's own lock and statement timeouts (1 s and 2 s,
/// set by `db::prepare`), which end a stuck transaction cleanly. Dropping
/// a transaction halfway only queues its rollback behind what it waits for.
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(2500);

/// Tickets in the shared database.
pub struct SqlTickets {
    pool: AnyPool,
    /// With IAM authentication: keeps the pool's token fresh.
    tokens: Option<crate::iam::TokenRefresh>,
}

impl SqlTickets {
    pub fn new(pool: AnyPool) -> Self {
        SqlTickets { pool, tokens: None }
    }

    /// With IAM authentication, the pool's password is a token that expires.
    pub fn with_token_refresh(mut self, tokens: crate::iam::TokenRefresh) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Before a request: a new connection must not meet an expired token.
    fn fresh(&self) -> Result<(), StoreError> {
        match &self.tokens {
            Some(tokens) => tokens.refresh(&self.pool).map_err(|error| {
                warn!(%error, "cannot refresh the database token");
                StoreError::Unavailable("the database credentials cannot be renewed".into())
            }),
            None => Ok(()),
        }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// What a request asked for, to recognise its retries.
fn fingerprint(request: &ReserveRequest) -> String {
    format!(
        "{}|{}|{}",
        request.event_id, request.customer_id, request.quantity
    )
}

fn booking_from(row: &AnyRow) -> Result<Booking, sqlx::Error> {
    let quantity: i64 = row.try_get("quantity")?;
    let first_seat: i64 = row.try_get("first_seat")?;
    Ok(Booking {
        reservation_id: row.try_get("reservation_id")?,
        event_id: row.try_get("event_id")?,
        customer_id: row.try_get("customer_id")?,
        quantity: quantity as u32,
        seats: (first_seat..first_seat + quantity)
            .map(|s| s as u32)
            .collect(),
        seats_left: row.try_get::<i64, _>("seats_left")? as u32,
    })
}

/// Step 3.4: a database error, as the API reports it.
///
/// The client learns that the store is unavailable and when to retry (a
/// 503 with Retry-After, from module 2); the driver's own text, which can
/// name hosts and users, stays in the function's log.
pub fn unavailable(error: sqlx::Error) -> StoreError {
    // TODO (step 3.4): log the error (warn!), then answer StoreError::Unavailable
    // with a reason of your own: never the driver's text. Tell apart a pool
    // timeout, a database that cannot be reached (Io, Tls, PoolClosed) and
    // PostgreSQL's "too many clients" (SQLSTATE 53300).
    todo!("step 3.4: turn a database error into a 503")
}

/// Step 3.4: a store operation that gives up in time.
pub async fn bounded<T>(
    operation: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    // TODO (step 3.4): give up after OPERATION_TIMEOUT (tokio::time::timeout)
    // with StoreError::Unavailable: never hang past the deadline.
    operation.await
}

impl SqlTickets {
    /// Step 3.2: one reservation, in one transaction. The conditional
    /// update takes the seats only if they are there: two environments
    /// racing for the last seat cannot both get it.
    /// The outer `Result` is the database's; the inner one is the answer:
    /// a booking, or the reason there is none.
    async fn reserve_once(
        &self,
        request: &ReserveRequest,
        key: Option<&str>,
    ) -> Result<Result<Booking, TicketError>, sqlx::Error> {
        // TODO (step 3.2): in ONE transaction (self.pool.begin()):
        // 1. UPDATE events SET seats_left = seats_left - $2
        //    WHERE event_id = $1 AND seats_left >= $2 RETURNING seats_total, seats_left
        // 2. no row? read the event's seats_left, roll back, and answer
        //    Ok(Err(UnknownEvent)) or Ok(Err(SoldOut { .., left })): nothing taken;
        // 3. INSERT the reservation (a new uuid; first_seat = total - left - quantity + 1),
        //    and the idempotency key if there is one (step 3.3 relies on it);
        // 4. commit, and answer Ok(Ok(booking)). Use `statement(...)` for every query.
        todo!("step 3.2: reserve in one transaction")
    }

    /// Step 3.3: the reservation a key already made, if any. The same key
    /// with a different request is a client error, not a retry.
    async fn replay(
        &self,
        key: &str,
        request: &ReserveRequest,
    ) -> Result<Option<Booking>, StoreError> {
        // TODO (step 3.3): in a transaction, look the key up (joined with its
        // reservation), as `reservation` below reads. None: Ok(None).
        // Found with the same fingerprint(request): the first booking, again.
        // Found with another request: TicketError::InvalidRequest (a 422).
        todo!("step 3.3: replay the first result of an Idempotency-Key")
    }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

impl Tickets for SqlTickets {
    async fn event(&self, event_id: &str) -> Result<Option<EventStatus>, StoreError> {
        self.fresh()?;
        bounded(async {
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            let row = statement("SELECT seats_total, seats_left FROM events WHERE event_id = $1")
                .bind(event_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?;
            tx.commit().await.map_err(unavailable)?;
            row.map(|row| {
                Ok(EventStatus {
                    event_id: event_id.to_string(),
                    seats_total: row.try_get::<i64, _>("seats_total").map_err(unavailable)? as u32,
                    seats_left: row.try_get::<i64, _>("seats_left").map_err(unavailable)? as u32,
                })
            })
            .transpose()
        })
        .await
    }

    async fn reserve(
        &self,
        request: &ReserveRequest,
        key: Option<&str>,
    ) -> Result<Booking, StoreError> {
        self.fresh()?;
        bounded(async {
            // TODO (step 3.3): a key seen before gets its first result (self.replay).
            match self.reserve_once(request, key).await {
                Ok(answer) => answer.map_err(StoreError::Ticket),
                // TODO (step 3.3): a unique violation on the key means another request
                // with the same key won the race: answer with its result (self.replay).
                Err(e) => Err(unavailable(e)),
            }
        })
        .await
    }

    async fn reservation(&self, reservation_id: &str) -> Result<Option<Booking>, StoreError> {
        self.fresh()?;
        bounded(async {
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            let row = statement(
                "SELECT reservation_id, event_id, customer_id, quantity, first_seat, seats_left \
                 FROM reservations WHERE reservation_id = $1",
            )
            .bind(reservation_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
            tx.commit().await.map_err(unavailable)?;
            row.as_ref()
                .map(booking_from)
                .transpose()
                .map_err(unavailable)
        })
        .await
    }
}
