//! `cargo workshop`: the learner's runner and the tooling around the
//! modules, on top of the [`lab`] crate.
//!
//! - [`steps`]: the ordered list of modules and steps (`steps.toml`) that the
//!   runner, the generator and the book share, with what each module needs.
//! - [`workspace`]: where each module's crates are.
//! - [`build`]: cargo builds with progress a person can see.
//! - [`invoke`]: `cargo workshop invoke`, events through one environment.
//! - [`generate`]: learner crates derived from the reference solutions.
//! - [`runner`]: a module's suite, read step by step (`verify`).
//! - [`doctor`]: what this machine has.
//! - [`book`]: the book's mdbook preprocessor.

pub mod book;
pub mod build;
pub mod doctor;
pub mod generate;
pub mod invoke;
pub mod runner;
pub mod steps;
pub mod traces;
pub mod workspace;
