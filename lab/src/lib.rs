//! The local lab: Lambda's execution environment and Runtime API, a fleet
//! of environments, API Gateway in front of it, and the traffic, figures
//! and databases the workshop's scenarios need. The module suites build on
//! it; `cargo workshop` (the `workshop` crate) drives it.
//!
//! Each module below uses only the ones listed before it:
//!
//! - [`paths`]: the repository root and cargo's target directory.
//! - [`clock`]: UTC calendar dates.
//! - [`ids`]: request, trace and segment ids.
//! - [`cpu`]: Lambda's CPU share for a memory size, enforced through
//!   cgroups where Linux allows, modelled (and said to be) elsewhere.
//! - [`throttle`]: a token bucket, for API Gateway's throttling and the
//!   fleet's scaling rate.
//! - [`xray`]: trace headers, a collector of X-Ray segments, and the
//!   traces they make.
//! - [`lambda`]: one execution environment running a real bootstrap under
//!   a local Runtime API.
//! - [`apigw`]: API Gateway's events and responses, payload 1.0 and 2.0.
//! - [`machine`]: how busy the laptop under the lab is.
//! - [`metrics`]: what every request and invocation did.
//! - [`fleet`]: environments started, reused and throttled as Lambda does.
//! - [`gateway`]: the local API Gateway in front of a fleet.
//! - [`db`]: a throwaway PostgreSQL and PgBouncer, and each run's database.
//! - [`secrets`]: a local Secrets Manager, its calls signed with SigV4.
//! - [`stack`]: one running lab, the gateway in front of its fleet
//!   ([`Lab`]).
//! - [`load`], [`report`], [`scenario`], [`tune`] (feature `load`):
//!   open-loop traffic, its reports and charts, the scenarios that combine
//!   them, and memory tuning in the style of Lambda Power Tuning.
//! - [`fixture`]: a function that misbehaves on purpose, for tests.

pub mod apigw;
pub mod clock;
pub mod cpu;
pub mod db;
#[doc(hidden)]
pub mod fixture;
pub mod fleet;
pub mod gateway;
pub mod ids;
pub mod lambda;
#[cfg(feature = "load")]
pub mod load;
pub mod machine;
pub mod metrics;
pub mod paths;
#[cfg(feature = "load")]
pub mod report;
#[cfg(feature = "load")]
pub mod scenario;
pub mod secrets;
pub mod stack;
pub mod throttle;
#[cfg(feature = "load")]
pub mod tune;
pub mod xray;

pub use db::LabDatabase;
pub use stack::{Lab, LabConfig, Output};
