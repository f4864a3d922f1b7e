//! # Module 1: Lambda basics — the ticket drop as a plain Lambda function
//!
//! Fans send `{"event_id": "...", "customer_id": "...", "quantity": 2}`
//! straight to the function (the Invoke API; API Gateway comes in module 2)
//! and get back a reservation or a typed error.
//!
//! | file          | step | what it teaches                                       |
//! |---------------|------|-------------------------------------------------------|
//! | `request.rs`  | 1.1, 1.2 | typed events: parse, then validate               |
//! | `stock.rs`    | 1.3  | the seats on sale, kept in this environment's memory  |
//! | `error.rs`    | 1.4  | typed errors that Lambda reports as `errorType`       |
//! | `handler.rs`  | 1.5, 1.7 | the handler, its `Context`, structured logs      |
//! | `main.rs`     | 1.6  | init once per environment, then handle many events    |
//! | `logging.rs`  | 1.7  | JSON logs that carry the request id                   |
//!
//! The tests that say when you are done are in `tests/module-1/`; run them with
//! `cargo test -p module-1` (or `cargo workshop verify`).

pub mod config;
pub mod error;
pub mod handler;
pub mod logging;
pub mod request;
pub mod stock;

pub use config::{Config, ConfigError};
pub use error::TicketError;
pub use handler::{Reservation, State, handle};
pub use request::ReserveRequest;
pub use stock::{Seats, Stock};
