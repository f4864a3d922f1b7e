//! # Module 3: RDS with RDS Proxy — one stock, shared by every environment
//!
//! Module 1 ended on a flaw: each execution environment sold from its own
//! copy of the stock. Here the stock moves into a database that every
//! environment shares, behind module 2's API, and the lesson becomes what
//! a spike of environments does to that database's connections.
//!
//! | file         | step | what it teaches                                          |
//! |--------------|------|----------------------------------------------------------|
//! | `db.rs`      | 3.1  | one small pool per environment, created at init         |
//! | `store.rs`   | 3.2  | a reservation that cannot oversell                      |
//! | `store.rs`   | 3.3  | idempotency keys: a retry never books twice             |
//! | `store.rs`   | 3.4  | a database that fails: 503, never a hang or a 500       |
//! | `db.rs`      | 3.5  | statements that a proxy can multiplex                   |
//! | `iam.rs`     | 3.6  | IAM authentication tokens instead of passwords          |
//! | `main.rs`    | 3.7  | the bootstrap: module 2's router over the database      |
//!
//! SQLite in-process is the default (nothing to install); PostgreSQL is
//! used when `DATABASE_URL` says so, directly or through PgBouncer, the
//! local stand-in for RDS Proxy. The suite is `tests/module-3/`.

pub mod db;
pub mod iam;
pub mod store;

pub use db::DbConfig;
pub use store::SqlTickets;
