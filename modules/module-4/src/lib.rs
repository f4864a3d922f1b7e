//! # Module 4: Secrets Manager with X-Ray — credentials out of code
//!
//! Module 3's function found its database through `DATABASE_URL`, password
//! included, in its configuration: anyone who can read the function can
//! read the password. Here every credential moves to Secrets Manager,
//! fetched once per environment at init and cached, and never printed.
//!
//! | file          | step | what it teaches                                         |
//! |---------------|------|---------------------------------------------------------|
//! | `secrets.rs`  | 4.1  | a secret fetched with the SDK, errors that name it      |
//! | `secrets.rs`  | 4.2  | a cache with a TTL: one call per environment, not per request |
//! | `tickets.rs`  | 4.3  | tickets signed with a key from Secrets Manager, and its rollover |
//! | `routes.rs`   | 4.4  | the reservation's ticket, and the door that checks it   |
//! | `database.rs` | 4.5  | the database's credentials from their secret, never quoted |
//! | `database.rs` | 4.6  | a password rotation that loses no request               |
//! | `init.rs`     | 4.7  | INIT: keys fetched once, INIT errors that name the secret |
//! | `traces.rs`   | 4.8  | where the time goes: spans to X-Ray, flushed before the freeze |
//!
//! The suite is `tests/module-4/`.

pub mod database;
pub mod init;
pub mod routes;
pub mod secrets;
pub mod tickets;
pub mod traces;

pub use database::{DbCredentials, DbSecret, RotatingTickets};
pub use routes::{Keyring, router};
pub use secrets::{SecretCache, SecretError, SecretValue};
pub use tickets::TicketKeys;
