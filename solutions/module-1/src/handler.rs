//! Steps 1.5 and 1.7: the handler, what it borrows, and what it logs.
//!
//! `State` is built once per execution environment, in `main`, and every
//! invocation borrows it. The handler is a named `async fn` so that tests can
//! call it directly with a hand-made `Context`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use tracing::info;

use crate::{Config, ConfigError, ReserveRequest, Stock, TicketError};

// ANCHOR: state
/// Everything an execution environment sets up once and reuses.
pub struct State {
    pub config: Config,
    pub stock: Stock,
    /// True until the first invocation of this environment has started.
    cold: AtomicBool,
}
// ANCHOR_END: state

impl State {
    pub fn new(config: Config) -> Self {
        let stock = Stock::new(&config);
        State {
            config,
            stock,
            cold: AtomicBool::new(true),
        }
    }

    /// Reads the configuration from the environment and fills the stock.
    pub fn from_env() -> Result<Self, ConfigError> {
        Config::from_env().map(State::new)
    }

    /// True for the first invocation of this environment, false after.
    pub fn take_cold_start(&self) -> bool {
        self.cold.swap(false, Ordering::SeqCst)
    }
}

// ANCHOR: reservation
/// The answer to a successful reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reservation {
    /// Lambda's id for this invocation: the key to its log lines.
    pub request_id: String,
    pub event_id: String,
    pub customer_id: String,
    pub quantity: u32,
    pub seats: Vec<u32>,
    pub seats_left: u32,
}
// ANCHOR_END: reservation

/// Step 1.5: one reservation, start to finish.
// ANCHOR: handle
pub async fn handle(state: &State, event: LambdaEvent<Value>) -> Result<Reservation, TicketError> {
    let (payload, context) = event.into_parts();

    // ANCHOR: cold_start
    //- exercise 1.7
    if state.take_cold_start() {
        info!(
            init_type = std::env::var("AWS_LAMBDA_INITIALIZATION_TYPE")
                .as_deref()
                .unwrap_or("on-demand"),
            "cold start"
        );
    }
    //- starter
    //> // TODO (step 1.7): on the first invocation of this environment only
    //> // (state.take_cold_start()), log one line with the message "cold start".
    //- end
    // ANCHOR_END: cold_start

    //- exercise 1.5
    // Refuse work that cannot finish before Lambda stops the invocation: a
    // seat taken by an invocation that then times out is sold to nobody.
    let remaining = context
        .deadline()
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    if remaining < state.config.deadline_margin {
        return Err(TicketError::DeadlineTooClose {
            remaining_ms: remaining.as_millis() as u64,
        });
    }

    let request = ReserveRequest::parse(payload)?;
    request.validate(&state.config)?;
    let seats = state.stock.reserve(&request.event_id, request.quantity)?;

    info!(
        event_id = %request.event_id,
        quantity = request.quantity,
        seats_left = seats.seats_left,
        "seats reserved"
    );
    Ok(Reservation {
        request_id: context.request_id,
        event_id: request.event_id,
        customer_id: request.customer_id,
        quantity: request.quantity,
        seats: seats.numbers,
        seats_left: seats.seats_left,
    })
    //- starter
    //> // TODO (step 1.5): refuse to start when less than
    //> // state.config.deadline_margin is left before context.deadline()
    //> // (DeadlineTooClose); then parse, validate, reserve, log one
    //> // "seats reserved" line, and answer with a Reservation that carries
    //> // context.request_id.
    //> todo!("step 1.5: handle one reservation")
    //- end
}
// ANCHOR_END: handle
