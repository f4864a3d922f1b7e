//! # Module 5: Provisioned Concurrency and memory tuning — the spike and the bill
//!
//! Module 4's function sells correctly, keeps its secrets and shows where
//! its time goes. What is left is the first second of the drop, when the
//! spike arrives faster than Lambda adds environments and every new one
//! pays INIT, and the bill: which memory size is cheapest, and what
//! provisioned concurrency costs against what it saves.
//!
//! | file         | step | what it teaches                                          |
//! |--------------|------|----------------------------------------------------------|
//! | `tls.rs`     | 5.1  | a cold start cut: the SDK trusts AWS's roots, not the system's 290 |
//! | `warm.rs`    | 5.2  | INIT by how the environment started: eager when provisioned |
//! | `pricing.rs` | 5.3  | what one invocation costs, the request price included    |
//! | `sizing.rs`  | 5.4  | provisioned concurrency from the traffic, and its break-even |
//! | `tuning.rs`  | 5.5  | the memory size each strategy picks                      |
//! | `main.rs`    | 5.2  | the bootstrap: module 4's INIT, with the cheaper client, warmed |
//!
//! Steps 5.6 to 5.8 are the lab's: `cargo workshop tune 5`, and the
//! scenarios `spike` and `before-after`. The suite is `tests/module-5/`.

pub mod pricing;
pub mod sizing;
pub mod tls;
pub mod tuning;
pub mod warm;

pub use pricing::{Arch, Prices};
pub use tuning::{Measured, Strategy};
pub use warm::{InitMode, Warmed};
