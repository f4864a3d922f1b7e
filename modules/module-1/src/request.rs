//! Steps 1.1 and 1.2: the event a fan sends, parsed and then validated.
//!
//! The function is invoked with any JSON at all. Parsing it into a typed
//! request turns "whatever arrived" into "what we understand", with an
//! error that says what was wrong; validation then checks what types alone
//! cannot (a known event, a sensible quantity).

use serde::Deserialize;
use serde_json::Value;

use crate::{Config, TicketError};

/// The longest customer id accepted.
pub const MAX_ID_LEN: usize = 64;

/// `{"event_id": "midnight-tour", "customer_id": "c-42", "quantity": 2}`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReserveRequest {
    pub event_id: String,
    pub customer_id: String,
    pub quantity: u32,
}

impl ReserveRequest {
    /// Step 1.1: turns the raw event into a request, or an
    /// [`TicketError::InvalidRequest`] that says which field is wrong.
    pub fn parse(event: Value) -> Result<Self, TicketError> {
        // TODO (step 1.1): refuse anything but a JSON object; then deserialise `event` with
        // serde_path_to_error::deserialize(event) and turn an error into
        // TicketError::InvalidRequest("<field>: <serde's reason>"); when the
        // error's path is "." (the whole event), give the reason alone.
        todo!("step 1.1: parse the event into a ReserveRequest")
    }

    /// Step 1.2: checks what the types cannot: the event is on sale, the
    /// customer id is usable, and the quantity is between 1 and the
    /// per-customer limit.
    pub fn validate(&self, config: &Config) -> Result<(), TicketError> {
        // TODO (step 1.2): reject an event id that is not in `config.events`
        // (UnknownEvent); a customer id that is blank, over MAX_ID_LEN characters
        // or holds control characters; and a quantity outside
        // 1..=config.max_per_customer (InvalidRequest, saying what is allowed).
        todo!("step 1.2: validate the request against the configuration")
    }
}
