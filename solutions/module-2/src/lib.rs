//! # Module 2: API Gateway — the ticket drop as an HTTP API
//!
//! The same function now answers HTTP requests that API Gateway turns into
//! Lambda events: payload 2.0 from an HTTP API, payload 1.0 from a REST API.
//! `lambda_http` turns either into an `http::Request`, so one axum `Router`
//! serves both.
//!
//! | file          | step | what it teaches                                        |
//! |---------------|------|--------------------------------------------------------|
//! | `problem.rs`  | 2.1  | every error as `application/problem+json`             |
//! | `body.rs`     | 2.2  | reading a request body without trusting it            |
//! | `routes.rs`   | 2.3  | the handlers                                           |
//! | `gateway.rs`  | 2.4  | request ids, the REST stage in the path, CORS          |
//! | `app.rs`      | 2.5  | routes in axum 0.8 syntax, and what answers the rest  |
//! | `main.rs`     | 2.6  | one bootstrap behind both payload versions             |
//!
//! What module 1 built (configuration, stock, validation, typed errors,
//! JSON logs) comes from its reference solution, the `module_1` crate.
//! The suite is `tests/module-2/`: `cargo test -p module-2`.

pub mod app;
pub mod body;
pub mod gateway;
pub mod problem;
pub mod routes;
pub mod store;

pub use app::{App, router, with_layers};
pub use problem::{ApiError, Problem};
pub use store::{Booking, EventStatus, MemoryTickets, Tickets};
