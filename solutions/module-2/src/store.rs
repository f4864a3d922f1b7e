//! Where the tickets are kept, behind a trait.
//!
//! The HTTP layer only needs three questions answered: how is this event
//! doing, reserve these seats, and what is this reservation. Module 2
//! answers them from memory, with module 1's stock; module 3 answers them
//! from a database, behind the same trait, and reuses this module's router.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use module_1::{Config, ReserveRequest, Stock, TicketError};
use serde::Serialize;

/// An event on sale and what is left of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventStatus {
    pub event_id: String,
    pub seats_total: u32,
    pub seats_left: u32,
}

/// A reservation, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Booking {
    pub reservation_id: String,
    pub event_id: String,
    pub customer_id: String,
    pub quantity: u32,
    pub seats: Vec<u32>,
    /// Seats left for the event right after this reservation.
    pub seats_left: u32,
}

/// Why a store could not answer. Module 2's store always can; a database
/// sometimes cannot (module 3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Ticket(#[from] TicketError),
    /// The store is down or overloaded: try again shortly.
    #[error("the ticket store is unavailable: {0}")]
    Unavailable(String),
}

/// The questions the API asks of its store.
pub trait Tickets: Send + Sync + 'static {
    fn event(
        &self,
        event_id: &str,
    ) -> impl Future<Output = Result<Option<EventStatus>, StoreError>> + Send;

    /// Reserves seats. `idempotency_key` is accepted here and becomes
    /// binding in module 3.
    fn reserve(
        &self,
        request: &ReserveRequest,
        idempotency_key: Option<&str>,
    ) -> impl Future<Output = Result<Booking, StoreError>> + Send;

    fn reservation(
        &self,
        reservation_id: &str,
    ) -> impl Future<Output = Result<Option<Booking>, StoreError>> + Send;
}

/// Tickets in this execution environment's memory: module 1's stock, plus
/// the reservations made here. Another environment knows none of them.
pub struct MemoryTickets {
    config: Config,
    stock: Stock,
    bookings: Mutex<HashMap<String, Booking>>,
}

impl MemoryTickets {
    pub fn new(config: Config) -> Self {
        let stock = Stock::new(&config);
        MemoryTickets {
            config,
            stock,
            bookings: Mutex::new(HashMap::new()),
        }
    }
}

impl Tickets for MemoryTickets {
    async fn event(&self, event_id: &str) -> Result<Option<EventStatus>, StoreError> {
        Ok(self.config.events.get(event_id).map(|&total| EventStatus {
            event_id: event_id.to_string(),
            seats_total: total,
            seats_left: self.stock.seats_left(event_id).unwrap_or(0),
        }))
    }

    async fn reserve(
        &self,
        request: &ReserveRequest,
        _key: Option<&str>,
    ) -> Result<Booking, StoreError> {
        let seats = self.stock.reserve(&request.event_id, request.quantity)?;
        let booking = Booking {
            reservation_id: uuid::Uuid::new_v4().to_string(),
            event_id: request.event_id.clone(),
            customer_id: request.customer_id.clone(),
            quantity: request.quantity,
            seats: seats.numbers,
            seats_left: seats.seats_left,
        };
        self.bookings
            .lock()
            .expect("bookings lock")
            .insert(booking.reservation_id.clone(), booking.clone());
        Ok(booking)
    }

    async fn reservation(&self, reservation_id: &str) -> Result<Option<Booking>, StoreError> {
        Ok(self
            .bookings
            .lock()
            .expect("bookings lock")
            .get(reservation_id)
            .cloned())
    }
}
