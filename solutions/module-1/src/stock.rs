//! Step 1.3: the seats on sale, kept in this execution environment's memory.
//!
//! Each environment builds its own `Stock` at init. That is fast, and it is
//! also the flaw this module ends on: two environments each hold a full
//! stock, so together they sell more seats than exist (step 1.8). Module 3
//! moves the stock into a database that every environment shares.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{Config, TicketError};

/// The seats one reservation took, and what is left for everybody else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seats {
    /// Seat numbers, counting from 1 for the first seat sold.
    pub numbers: Vec<u32>,
    pub seats_left: u32,
}

struct EventStock {
    capacity: u32,
    left: AtomicU32,
}

/// Seats left per event.
pub struct Stock {
    events: BTreeMap<String, EventStock>,
}

impl Stock {
    /// A full stock for every event in the configuration.
    pub fn new(config: &Config) -> Self {
        let events = config
            .events
            .iter()
            .map(|(id, &seats)| {
                let stock = EventStock {
                    capacity: seats,
                    left: AtomicU32::new(seats),
                };
                (id.clone(), stock)
            })
            .collect();
        Stock { events }
    }

    /// Seats left for an event, or `None` for an unknown event.
    pub fn seats_left(&self, event_id: &str) -> Option<u32> {
        self.events
            .get(event_id)
            .map(|e| e.left.load(Ordering::SeqCst))
    }

    /// Takes `quantity` seats, all or none.
    ///
    /// The check and the decrement are one atomic step, so two reservations
    /// racing in this environment can never take the same seat. A request
    /// for more seats than are left takes nothing and says how many are left.
    // ANCHOR: reserve
    pub fn reserve(&self, event_id: &str, quantity: u32) -> Result<Seats, TicketError> {
        //- exercise 1.3
        let event = self
            .events
            .get(event_id)
            .ok_or_else(|| TicketError::UnknownEvent(event_id.to_string()))?;
        let before = event
            .left
            .try_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(quantity)
            })
            .map_err(|left| TicketError::SoldOut {
                event_id: event_id.to_string(),
                requested: quantity,
                left,
            })?;
        let first = event.capacity - before + 1;
        Ok(Seats {
            numbers: (first..first + quantity).collect(),
            seats_left: before - quantity,
        })
        //- starter
        //> // TODO (step 1.3): find the event (UnknownEvent if absent), then take
        //> // `quantity` seats from `left` in ONE atomic step (AtomicU32::try_update
        //> // with checked_sub), or fail with SoldOut carrying the seats left.
        //> // Seat numbers count from 1: the first seat sold is seat 1.
        //> todo!("step 1.3: reserve seats from the in-memory stock")
        //- end
    }
    // ANCHOR_END: reserve
}
