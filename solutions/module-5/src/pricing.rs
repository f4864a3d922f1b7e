//! Step 5.3: what one invocation costs.
//!
//! Lambda bills each invocation twice: a request, $0.20 per million, and
//! its duration, rounded up to the millisecond, times its memory, per
//! GB-second. For a function that runs for 2 ms at 128 MB, the duration is
//! $0.0000000042 and the request $0.0000002: the request is most of the
//! bill, and a bigger memory size costs next to nothing until duration
//! catches up. A tuning that leaves the request out (Lambda Power Tuning
//! does) gets the shape right and the total wrong.

use std::time::Duration;

/// The instruction set the function is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Arm64,
}

/// Lambda's prices in us-east-1, in dollars.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    /// Per request.
    pub request: f64,
    /// Per GB-second of duration, on demand.
    pub gb_second: f64,
    /// Per GB-second of provisioned concurrency allocated, used or not.
    pub provisioned_gb_second: f64,
    /// Per GB-second of duration on a provisioned environment.
    pub provisioned_duration_gb_second: f64,
}

impl Arch {
    pub const fn prices(self) -> Prices {
        match self {
            Arch::X86_64 => Prices {
                request: 0.20 / 1_000_000.0,
                gb_second: 0.000_016_666_7,
                provisioned_gb_second: 0.000_004_166_7,
                provisioned_duration_gb_second: 0.000_009_722_2,
            },
            Arch::Arm64 => Prices {
                request: 0.20 / 1_000_000.0,
                gb_second: 0.000_013_333_4,
                provisioned_gb_second: 0.000_003_333_4,
                provisioned_duration_gb_second: 0.000_007_777_8,
            },
        }
    }
}

/// Lambda's billed duration: the duration rounded up to the millisecond.
pub fn billed_ms(duration: Duration) -> u64 {
    duration.as_nanos().div_ceil(1_000_000) as u64
}

/// GB-seconds of `billed_ms` at `memory_mb` (1 GB is 1,024 MB).
pub fn gb_seconds(memory_mb: u32, billed_ms: u64) -> f64 {
    billed_ms as f64 / 1000.0 * f64::from(memory_mb) / 1024.0
}

// ANCHOR: cost
/// The cost of one on-demand invocation of `billed_ms` at `memory_mb`: its
/// request and its GB-seconds.
pub fn invocation_cost(memory_mb: u32, billed_ms: u64, arch: Arch) -> f64 {
    //- exercise 5.3
    let prices = arch.prices();
    prices.request + gb_seconds(memory_mb, billed_ms) * prices.gb_second
    //- starter
    //> // TODO (step 5.3): the request price plus the GB-seconds
    //> // (gb_seconds(memory_mb, billed_ms)) at the price per GB-second.
    //> todo!("step 5.3: the cost of one invocation")
    //- end
}
// ANCHOR_END: cost

/// How much of [`invocation_cost`] is the request price (0 to 1).
pub fn request_share(memory_mb: u32, billed_ms: u64, arch: Arch) -> f64 {
    arch.prices().request / invocation_cost(memory_mb, billed_ms, arch)
}
