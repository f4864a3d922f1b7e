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

// ANCHOR: operation_timeout
/// How long one store operation may take, connection included, before the
/// request is answered with a 503: well inside the function's 3 s timeout,
/// and after the database's own lock and statement timeouts (1 s and 2 s,
/// set by `db::prepare`), which end a stuck transaction cleanly. Dropping
/// a transaction halfway only queues its rollback behind what it waits for.
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(2500);
// ANCHOR_END: operation_timeout

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

    // ANCHOR: fresh
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
    // ANCHOR_END: fresh

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

// ANCHOR: fingerprint
/// What a request asked for, to recognise its retries.
fn fingerprint(request: &ReserveRequest) -> String {
    format!(
        "{}|{}|{}",
        request.event_id, request.customer_id, request.quantity
    )
}
// ANCHOR_END: fingerprint

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
// ANCHOR: unavailable
pub fn unavailable(error: sqlx::Error) -> StoreError {
    //- exercise 3.4
    warn!(error = %error, "database error");
    let reason = match &error {
        sqlx::Error::PoolTimedOut => "no database connection within the time allowed",
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolClosed => {
            "the database cannot be reached"
        }
        sqlx::Error::Database(e) if e.code().as_deref() == Some("53300") => {
            "the database has no connection left (too many clients)"
        }
        _ => "the database failed to answer",
    };
    StoreError::Unavailable(reason.into())
    //- starter
    //> // TODO (step 3.4): log the error (warn!), then answer StoreError::Unavailable
    //> // with a reason of your own: never the driver's text. Tell apart a pool
    //> // timeout, a database that cannot be reached (Io, Tls, PoolClosed) and
    //> // PostgreSQL's "too many clients" (SQLSTATE 53300).
    //> todo!("step 3.4: turn a database error into a 503")
    //- end
}
// ANCHOR_END: unavailable

/// Step 3.4: a store operation that gives up in time.
// ANCHOR: bounded
pub async fn bounded<T>(
    operation: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    //- exercise 3.4
    tokio::time::timeout(OPERATION_TIMEOUT, operation)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the database did not answer in time".into(),
            ))
        })
    //- starter
    //> // TODO (step 3.4): give up after OPERATION_TIMEOUT (tokio::time::timeout)
    //> // with StoreError::Unavailable: never hang past the deadline.
    //> operation.await
    //- end
}
// ANCHOR_END: bounded

impl SqlTickets {
    /// Step 3.2: one reservation, in one transaction. The conditional
    /// update takes the seats only if they are there: two environments
    /// racing for the last seat cannot both get it.
    // ANCHOR: reserve_once
    /// The outer `Result` is the database's; the inner one is the answer:
    /// a booking, or the reason there is none.
    async fn reserve_once(
        &self,
        request: &ReserveRequest,
        key: Option<&str>,
    ) -> Result<Result<Booking, TicketError>, sqlx::Error> {
        //- exercise 3.2
        let quantity = i64::from(request.quantity);
        let mut tx = self.pool.begin().await?;
        // ANCHOR: conditional_update
        let taken = statement(
            "UPDATE events SET seats_left = seats_left - $2 \
             WHERE event_id = $1 AND seats_left >= $2 \
             RETURNING seats_total, seats_left",
        )
        .bind(request.event_id.as_str())
        .bind(quantity)
        .fetch_optional(&mut *tx)
        .await?;
        // ANCHOR_END: conditional_update
        let Some(taken) = taken else {
            // Nothing taken: the event is unknown, or too few seats are left.
            let left = statement("SELECT seats_left FROM events WHERE event_id = $1")
                .bind(request.event_id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            tx.rollback().await?;
            return Ok(Err(match left {
                None => TicketError::UnknownEvent(request.event_id.clone()),
                Some(row) => TicketError::SoldOut {
                    event_id: request.event_id.clone(),
                    requested: request.quantity,
                    left: row.try_get::<i64, _>(0)? as u32,
                },
            }));
        };
        let total: i64 = taken.try_get("seats_total")?;
        let left: i64 = taken.try_get("seats_left")?;
        let booking = Booking {
            reservation_id: uuid::Uuid::new_v4().to_string(),
            event_id: request.event_id.clone(),
            customer_id: request.customer_id.clone(),
            quantity: request.quantity,
            seats: ((total - left - quantity + 1)..=(total - left))
                .map(|s| s as u32)
                .collect(),
            seats_left: left as u32,
        };
        statement(
            "INSERT INTO reservations \
             (reservation_id, event_id, customer_id, quantity, first_seat, seats_left) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(booking.reservation_id.as_str())
        .bind(booking.event_id.as_str())
        .bind(booking.customer_id.as_str())
        .bind(quantity)
        .bind(i64::from(booking.seats[0]))
        .bind(left)
        .execute(&mut *tx)
        .await?;
        if let Some(key) = key {
            // A second request with this key fails here, and rolls back the
            // seats it took: see `reserve`.
            statement(
                "INSERT INTO idempotency_keys (idempotency_key, request, reservation_id) VALUES ($1, $2, $3)",
            )
            .bind(key)
            .bind(fingerprint(request))
            .bind(booking.reservation_id.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Ok(booking))
        //- starter
        //> // TODO (step 3.2): in ONE transaction (self.pool.begin()):
        //> // 1. UPDATE events SET seats_left = seats_left - $2
        //> //    WHERE event_id = $1 AND seats_left >= $2 RETURNING seats_total, seats_left
        //> // 2. no row? read the event's seats_left, roll back, and answer
        //> //    Ok(Err(UnknownEvent)) or Ok(Err(SoldOut { .., left })): nothing taken;
        //> // 3. INSERT the reservation (a new uuid; first_seat = total - left - quantity + 1),
        //> //    and the idempotency key if there is one (step 3.3 relies on it);
        //> // 4. commit, and answer Ok(Ok(booking)). Use `statement(...)` for every query.
        //> todo!("step 3.2: reserve in one transaction")
        //- end
    }
    // ANCHOR_END: reserve_once

    /// Step 3.3: the reservation a key already made, if any. The same key
    /// with a different request is a client error, not a retry.
    // ANCHOR: replay
    async fn replay(
        &self,
        key: &str,
        request: &ReserveRequest,
    ) -> Result<Option<Booking>, StoreError> {
        //- exercise 3.3
        // A read, but in a transaction all the same: a proxy in transaction
        // mode keeps a client on one server connection only within one.
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let row = statement(
            "SELECT k.request, r.reservation_id, r.event_id, r.customer_id, r.quantity, r.first_seat, r.seats_left \
             FROM idempotency_keys k JOIN reservations r ON r.reservation_id = k.reservation_id \
             WHERE k.idempotency_key = $1",
        )
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let asked: String = row.try_get("request").map_err(unavailable)?;
        if asked != fingerprint(request) {
            return Err(StoreError::Ticket(TicketError::InvalidRequest(
                "this Idempotency-Key was already used for a different reservation".into(),
            )));
        }
        booking_from(&row).map(Some).map_err(unavailable)
        //- starter
        //> // TODO (step 3.3): in a transaction, look the key up (joined with its
        //> // reservation), as `reservation` below reads. None: Ok(None).
        //> // Found with the same fingerprint(request): the first booking, again.
        //> // Found with another request: TicketError::InvalidRequest (a 422).
        //> todo!("step 3.3: replay the first result of an Idempotency-Key")
        //- end
    }
    // ANCHOR_END: replay
}

// ANCHOR: is_unique_violation
fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}
// ANCHOR_END: is_unique_violation

impl Tickets for SqlTickets {
    // ANCHOR: event
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
    // ANCHOR_END: event

    // ANCHOR: reserve
    async fn reserve(
        &self,
        request: &ReserveRequest,
        key: Option<&str>,
    ) -> Result<Booking, StoreError> {
        self.fresh()?;
        bounded(async {
            //- exercise 3.3
            if let Some(key) = key
                && let Some(first) = self.replay(key, request).await?
            {
                return Ok(first);
            }
            //- starter
            //> // TODO (step 3.3): a key seen before gets its first result (self.replay).
            //- end
            match self.reserve_once(request, key).await {
                Ok(answer) => answer.map_err(StoreError::Ticket),
                //- exercise 3.3
                // Two requests with one key at once: the second found no key,
                // then lost the race to insert it. Its transaction rolled back;
                // the first one's result is the answer.
                Err(e) if key.is_some() && is_unique_violation(&e) => {
                    let key = key.unwrap_or_default();
                    self.replay(key, request).await?.ok_or_else(|| {
                        StoreError::Unavailable("the first request with this key vanished".into())
                    })
                }
                //- starter
                //> // TODO (step 3.3): a unique violation on the key means another request
                //> // with the same key won the race: answer with its result (self.replay).
                //- end
                Err(e) => Err(unavailable(e)),
            }
        })
        .await
    }
    // ANCHOR_END: reserve

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
