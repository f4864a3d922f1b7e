//! Step 5.5: the memory size to run at.
//!
//! Memory buys CPU: 1,769 MB is one vCPU, 128 MB a fourteenth of one. A
//! function short of CPU runs faster with more memory, and a faster run is
//! billed for fewer milliseconds, so up to a point more memory costs the
//! same or less. Past the point where CPU stops being the limit (one vCPU,
//! for a function on one thread), more memory is only more GB-seconds.
//! AWS Lambda Power Tuning measures every size and picks by a strategy:
//! the cheapest, the fastest, or a weighted balance of the two.

/// One memory size, measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub memory_mb: u32,
    /// The mean duration with the outliers discarded ([`trimmed_mean`]).
    pub duration_ms: f64,
    /// The cost of one invocation at that duration.
    pub cost: f64,
}

/// What the tuning optimises.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Strategy {
    /// The cheapest size.
    Cost,
    /// The fastest size.
    Speed,
    /// The lowest `weight x cost / max cost + (1 - weight) x duration / max
    /// duration` (Power Tuning's `balancedWeight`; 0.5 by default).
    Balanced(f64),
}

/// The mean of `samples` without the fastest and slowest `discard` of
/// them (Power Tuning's `discardTopBottom`, 0.2): a cold start or a
/// stray pause does not move it.
pub fn trimmed_mean(samples: &[f64], discard: f64) -> Option<f64> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let cut = (sorted.len() as f64 * discard) as usize;
    let kept = sorted.get(cut..sorted.len().saturating_sub(cut))?;
    if kept.is_empty() {
        return None;
    }
    Some(kept.iter().sum::<f64>() / kept.len() as f64)
}

/// The size `strategy` picks among `results`; of sizes that score the
/// same, the smallest.
pub fn recommend(results: &[Measured], strategy: Strategy) -> Option<&Measured> {
    // TODO (step 5.5): score each size (Cost: its cost; Speed: its
    // duration; Balanced(w): w x cost / max cost + (1 - w) x duration /
    // max duration) and return the lowest; on a tie, the smallest size.
    todo!("step 5.5: the tuning's pick")
}
