//! The workshop's own tooling: the local Lambda lab and the learner's runner.
//!
//! - [`apigw`]: API Gateway's events and responses, payload 1.0 and 2.0.
//! - [`lambda`]: an execution environment on a laptop, running a module's
//!   real bootstrap under a local Runtime API.
//! - [`invoke`]: `cargo workshop invoke`, events through one environment.
//! - [`steps`]: the ordered list of modules and steps (`steps.toml`) that the
//!   runner, the generator and the book share.
//! - [`generate`]: learner crates derived from the reference solutions.
//! - [`runner`]: a module's suite, read step by step (`verify`).
//! - [`doctor`]: what this machine has.
//! - [`book`]: the book's mdbook preprocessor.
//! - [`build`]: cargo builds with progress a person can see.
//! - [`machine`]: how busy the laptop under the lab is.

pub mod apigw;
pub mod book;
pub mod build;
pub mod db;
pub mod doctor;
pub mod fleet;
pub mod gateway;
pub mod generate;
pub mod invoke;
pub mod lab;
pub mod lambda;
pub mod load;
pub mod machine;
pub mod metrics;
pub mod report;
pub mod runner;
pub mod steps;
pub mod workspace;
