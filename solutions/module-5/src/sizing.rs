//! Step 5.4: how much provisioned concurrency, and when it pays.
//!
//! Concurrency is requests a second times the seconds each one lasts:
//! 2,000 requests a second of 25 ms keep 50 environments busy. Provisioned
//! concurrency is that many environments initialised ahead, billed for
//! every second they are allocated whether they serve or not, with a
//! cheaper duration price when they do. Past them, invocations spill over
//! to on-demand environments, which start cold.

use std::time::Duration;

use crate::pricing::{Arch, gb_seconds};

// ANCHOR: provisioned_for
/// The provisioned environments that serve `rps` requests a second lasting
/// `average` each, with `headroom` on top (0.2 for 20 %): rounded up, and
/// at least one.
pub fn provisioned_for(rps: f64, average: Duration, headroom: f64) -> u32 {
    //- exercise 5.4
    let busy = rps * average.as_secs_f64() * (1.0 + headroom);
    (busy.ceil() as u32).max(1)
    //- starter
    //> // TODO (step 5.4): rps x average in seconds x (1 + headroom),
    //> // rounded up, at least 1.
    //> todo!("step 5.4: concurrency from the traffic")
    //- end
}
// ANCHOR_END: provisioned_for

// ANCHOR: break_even
/// The utilisation above which provisioned concurrency costs less than the
/// same work on demand. A GB-second allocated costs the allocation price
/// whatever happens; each GB-second of it in use then costs the
/// provisioned duration price instead of the on-demand one. The request
/// price is the same on both, so it does not move the answer.
pub fn break_even(arch: Arch) -> f64 {
    //- exercise 5.4
    let p = arch.prices();
    p.provisioned_gb_second / (p.gb_second - p.provisioned_duration_gb_second)
    //- starter
    //> // TODO (step 5.4): solve u x on-demand = allocation + u x
    //> // provisioned duration for u, with arch.prices().
    //> todo!("step 5.4: the break-even utilisation")
    //- end
}
// ANCHOR_END: break_even

/// What `count` provisioned environments of `memory_mb` cost an hour,
/// allocated and idle.
pub fn provisioned_hour(count: u32, memory_mb: u32, arch: Arch) -> f64 {
    f64::from(count) * gb_seconds(memory_mb, 3_600_000) * arch.prices().provisioned_gb_second
}
