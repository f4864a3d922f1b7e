//! What the lab records while it runs, and the per-second timeline the
//! report and its charts are drawn from: the local counterpart of the
//! CloudWatch metrics of a function and its API (Invocations, Throttles,
//! ConcurrentExecutions, Duration, 4XXError and 5XXError, Latency).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::lambda::{Invocation, ms};

#[derive(Debug, Clone)]
pub struct InvocationRecord {
    /// Seconds since the recorder started, when the invocation ended.
    pub at: f64,
    pub duration_ms: f64,
    pub init_ms: Option<f64>,
    pub billed_ms: u64,
    pub memory_mb: u32,
    pub max_memory_mb: Option<u64>,
    pub error: bool,
    pub environment: usize,
    /// On a provisioned environment (billed at provisioned concurrency's
    /// duration price).
    pub provisioned: bool,
    /// On an on-demand environment while provisioned ones existed: they
    /// were all busy.
    pub spillover: bool,
    /// The environment's CPU time so far, INIT included, where the lab
    /// reads it (with the CPU share enforced).
    pub cpu_ms: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// Seconds since the recorder started, when the response was sent.
    pub at: f64,
    pub status: u16,
    pub latency_ms: f64,
    /// Throttled by the gateway (rate or burst), before any invocation.
    pub gateway_throttled: bool,
}

#[derive(Debug, Default)]
struct Records {
    invocations: Vec<InvocationRecord>,
    throttles: Vec<f64>,
    scaling_throttles: Vec<f64>,
    machine_busy: Vec<(f64, f64)>,
    concurrency: Vec<(f64, usize)>,
    requests: Vec<RequestRecord>,
    provisioned_inits: Vec<f64>,
    provisioned: Vec<ProvisionedSample>,
    datapoints: Vec<(f64, f64)>,
    scale_outs: Vec<(f64, usize, usize)>,
    db_connections: Vec<(f64, usize)>,
}

/// The provisioned environments at a change: how many are allocated
/// (INIT done) and how many of those are busy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProvisionedSample {
    pub at: f64,
    pub allocated: usize,
    pub busy: usize,
}

/// Thread-safe recorder shared by the fleet and the gateway.
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    records: Mutex<Records>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Recorder {
            start: Instant::now(),
            records: Mutex::new(Records::default()),
        }
    }

    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Records) -> R) -> R {
        f(&mut self.records.lock().expect("recorder lock"))
    }

    pub fn invocation(
        &self,
        invocation: &Invocation,
        environment: usize,
        provisioned: bool,
        spillover: bool,
        cpu: Option<Duration>,
    ) {
        let record = InvocationRecord {
            at: self.now(),
            duration_ms: ms(invocation.duration),
            init_ms: invocation.init_duration.map(ms),
            billed_ms: invocation.billed_duration_ms(),
            memory_mb: invocation.memory_size_mb,
            max_memory_mb: invocation.max_memory_used_mb,
            error: invocation.is_error(),
            environment,
            provisioned,
            spillover,
            cpu_ms: cpu.map(ms),
        };
        self.with(|r| r.invocations.push(record));
    }

    /// An invocation throttled by the function's concurrency limit.
    pub fn throttle(&self) {
        let at = self.now();
        self.with(|r| r.throttles.push(at));
    }

    /// An invocation throttled because the fleet could not start another
    /// environment this instant (its scaling rate).
    pub fn scaling_throttle(&self) {
        let at = self.now();
        self.with(|r| r.scaling_throttles.push(at));
    }

    /// A sample of the machine: the share of all its cores busy since the
    /// last one.
    pub fn machine_busy(&self, busy: f64) {
        let at = self.now();
        self.with(|r| r.machine_busy.push((at, busy)));
    }

    pub fn concurrency(&self, in_flight: usize) {
        let at = self.now();
        self.with(|r| r.concurrency.push((at, in_flight)));
    }

    pub fn request(&self, status: u16, latency: Duration, gateway_throttled: bool) {
        let record = RequestRecord {
            at: self.now(),
            status,
            latency_ms: ms(latency),
            gateway_throttled,
        };
        self.with(|r| r.requests.push(record));
    }

    pub fn provisioned_init(&self, init: Duration) {
        self.with(|r| r.provisioned_inits.push(ms(init)));
    }

    /// The provisioned environments changed: `allocated` ready, `busy` of
    /// them serving.
    pub fn provisioned(&self, allocated: usize, busy: usize) {
        let at = self.now();
        self.with(|r| {
            r.provisioned.push(ProvisionedSample {
                at,
                allocated,
                busy,
            })
        });
    }

    /// A target-tracking datapoint: a minute's average utilisation.
    pub fn datapoint(&self, utilisation: f64) {
        let at = self.now();
        self.with(|r| r.datapoints.push((at, utilisation)));
    }

    /// Target tracking raised the provisioned environments.
    pub fn scale_out(&self, from: usize, to: usize) {
        let at = self.now();
        self.with(|r| r.scale_outs.push((at, from, to)));
    }

    /// A sample of the database's connections (from `pg_stat_activity`).
    pub fn db_connections(&self, count: usize) {
        let at = self.now();
        self.with(|r| r.db_connections.push((at, count)));
    }

    /// Everything recorded so far, as a snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.with(|r| Snapshot {
            elapsed: self.now(),
            invocations: r.invocations.clone(),
            throttles: r.throttles.clone(),
            scaling_throttles: r.scaling_throttles.clone(),
            machine_busy: r.machine_busy.clone(),
            concurrency: r.concurrency.clone(),
            requests: r.requests.clone(),
            provisioned_inits: r.provisioned_inits.clone(),
            provisioned: r.provisioned.clone(),
            datapoints: r.datapoints.clone(),
            scale_outs: r.scale_outs.clone(),
            db_connections: r.db_connections.clone(),
        })
    }
}

/// A copy of the records, to compute reports from.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub elapsed: f64,
    pub invocations: Vec<InvocationRecord>,
    /// Throttles by the concurrency limit.
    pub throttles: Vec<f64>,
    /// Throttles by the fleet's scaling rate.
    pub scaling_throttles: Vec<f64>,
    /// Samples of the machine: when, and the share of its cores busy.
    pub machine_busy: Vec<(f64, f64)>,
    pub concurrency: Vec<(f64, usize)>,
    pub requests: Vec<RequestRecord>,
    pub provisioned_inits: Vec<f64>,
    /// The provisioned environments at each change.
    pub provisioned: Vec<ProvisionedSample>,
    /// Target tracking's datapoints: when, and the minute's utilisation.
    pub datapoints: Vec<(f64, f64)>,
    /// Target tracking's scale-outs: when, from, to.
    pub scale_outs: Vec<(f64, usize, usize)>,
    /// Samples of the database's connections, when the lab watches one.
    pub db_connections: Vec<(f64, usize)>,
}

/// One second of the timeline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Second {
    pub invocations: usize,
    pub cold_starts: usize,
    pub errors: usize,
    /// Function throttles (concurrency limit).
    pub throttles: usize,
    /// Function throttles (no new environment allowed yet: scaling rate).
    pub scaling_throttles: usize,
    /// The busiest sample of the machine in this second (0 to 1).
    pub machine_busy: Option<f64>,
    /// Requests the gateway refused with 429 (rate and burst).
    pub gateway_throttles: usize,
    pub max_concurrency: usize,
    pub duration_p50: Option<f64>,
    pub duration_p99: Option<f64>,
    pub requests: usize,
    pub status_2xx: usize,
    pub status_4xx: usize,
    pub status_5xx: usize,
    pub latency_p50: Option<f64>,
    pub latency_p99: Option<f64>,
    /// The most database connections sampled in this second.
    pub db_connections: Option<usize>,
    /// Provisioned environments allocated (the most this second), and the
    /// most of them busy at once.
    pub provisioned: usize,
    pub provisioned_busy: usize,
    /// Invocations that spilled over to on-demand environments.
    pub spillover: usize,
}

/// The `q` quantile (0 to 1) of `values`, nearest-rank.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

impl Snapshot {
    /// Seconds covered, counting a partial last second.
    pub fn seconds(&self) -> usize {
        self.elapsed.ceil().max(1.0) as usize
    }

    /// Per-second buckets from 0 to the end of the recording.
    pub fn timeline(&self) -> Vec<Second> {
        let n = self.seconds();
        let mut seconds = vec![Second::default(); n];
        let slot = |at: f64| (at.max(0.0) as usize).min(n - 1);
        let mut durations: Vec<Vec<f64>> = vec![Vec::new(); n];
        let mut latencies: Vec<Vec<f64>> = vec![Vec::new(); n];
        for i in &self.invocations {
            let s = &mut seconds[slot(i.at)];
            s.invocations += 1;
            s.cold_starts += usize::from(i.init_ms.is_some());
            s.errors += usize::from(i.error);
            s.spillover += usize::from(i.spillover);
            durations[slot(i.at)].push(i.duration_ms);
        }
        for &t in &self.throttles {
            seconds[slot(t)].throttles += 1;
        }
        for &t in &self.scaling_throttles {
            seconds[slot(t)].scaling_throttles += 1;
        }
        for &(at, busy) in &self.machine_busy {
            let s = &mut seconds[slot(at)];
            s.machine_busy = Some(s.machine_busy.unwrap_or(0.0).max(busy));
        }
        for r in &self.requests {
            let s = &mut seconds[slot(r.at)];
            s.requests += 1;
            s.gateway_throttles += usize::from(r.gateway_throttled);
            match r.status {
                200..=299 => s.status_2xx += 1,
                400..=499 => s.status_4xx += 1,
                500..=599 => s.status_5xx += 1,
                _ => {}
            }
            latencies[slot(r.at)].push(r.latency_ms);
        }
        // Concurrency holds between changes: carry the level into each second.
        let mut level = 0;
        let mut changes = self.concurrency.iter().peekable();
        for (k, second) in seconds.iter_mut().enumerate() {
            let mut max = level;
            while let Some(&&(at, n)) = changes.peek() {
                if at >= (k + 1) as f64 {
                    break;
                }
                level = n;
                max = max.max(n);
                changes.next();
            }
            second.max_concurrency = max;
        }
        let mut allocated = 0;
        let mut changes = self.provisioned.iter().peekable();
        for (k, second) in seconds.iter_mut().enumerate() {
            let (mut most, mut busy) = (allocated, 0);
            while let Some(sample) = changes.peek() {
                if sample.at >= (k + 1) as f64 {
                    break;
                }
                allocated = sample.allocated;
                most = most.max(sample.allocated);
                busy = busy.max(sample.busy);
                changes.next();
            }
            second.provisioned = most;
            second.provisioned_busy = busy;
        }
        for &(at, n) in &self.db_connections {
            let s = &mut seconds[slot(at)];
            s.db_connections = Some(s.db_connections.unwrap_or(0).max(n));
        }
        for (k, second) in seconds.iter_mut().enumerate() {
            second.duration_p50 = quantile(&mut durations[k], 0.50);
            second.duration_p99 = quantile(&mut durations[k], 0.99);
            second.latency_p50 = quantile(&mut latencies[k], 0.50);
            second.latency_p99 = quantile(&mut latencies[k], 0.99);
        }
        seconds
    }

    /// Every throttle, whatever its cause.
    pub fn all_throttles(&self) -> usize {
        self.throttles.len() + self.scaling_throttles.len()
    }

    /// The machine's busy share at the median and at its busiest sample,
    /// and in how many seconds it was saturated; `None` if never sampled.
    pub fn machine(&self) -> Option<(f64, f64, usize)> {
        let mut busy: Vec<f64> = self.machine_busy.iter().map(|&(_, b)| b).collect();
        let p50 = quantile(&mut busy, 0.5)?;
        let max = busy.last().copied()?;
        let saturated = self
            .timeline()
            .iter()
            .filter(|s| {
                s.machine_busy
                    .is_some_and(|b| b >= crate::machine::SATURATED)
            })
            .count();
        Some((p50, max, saturated))
    }

    pub fn peak_concurrency(&self) -> usize {
        self.concurrency.iter().map(|&(_, n)| n).max().unwrap_or(0)
    }

    pub fn peak_db_connections(&self) -> Option<usize> {
        self.db_connections.iter().map(|&(_, n)| n).max()
    }

    pub fn cold_starts(&self) -> usize {
        self.invocations
            .iter()
            .filter(|i| i.init_ms.is_some())
            .count()
    }

    /// Billed GB-seconds: billed duration (INIT included) times memory.
    pub fn gb_seconds(&self) -> f64 {
        self.invocations
            .iter()
            .map(|i| i.billed_ms as f64 / 1000.0 * f64::from(i.memory_mb) / 1024.0)
            .sum()
    }

    /// Billed GB-seconds of the invocations on provisioned environments
    /// (the rest are on-demand's).
    pub fn provisioned_gb_seconds(&self) -> f64 {
        self.invocations
            .iter()
            .filter(|i| i.provisioned)
            .map(|i| i.billed_ms as f64 / 1000.0 * f64::from(i.memory_mb) / 1024.0)
            .sum()
    }

    /// Environment-seconds of provisioned concurrency allocated, from the
    /// first allocation to the end of the recording: what AWS bills per
    /// GB-s while allocated, used or not.
    pub fn provisioned_env_seconds(&self) -> f64 {
        let mut total = 0.0;
        for pair in self.provisioned.windows(2) {
            total += pair[0].allocated as f64 * (pair[1].at - pair[0].at);
        }
        if let Some(last) = self.provisioned.last() {
            total += last.allocated as f64 * (self.elapsed - last.at).max(0.0);
        }
        total
    }

    /// The most provisioned environments allocated at once.
    pub fn peak_provisioned(&self) -> usize {
        self.provisioned
            .iter()
            .map(|s| s.allocated)
            .max()
            .unwrap_or(0)
    }

    pub fn spillovers(&self) -> usize {
        self.invocations.iter().filter(|i| i.spillover).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&mut v, 0.5), Some(50.0));
        assert_eq!(quantile(&mut v, 0.99), Some(99.0));
        assert_eq!(quantile(&mut v, 1.0), Some(100.0));
        assert_eq!(quantile(&mut [], 0.5), None);
        assert_eq!(quantile(&mut [7.0], 0.99), Some(7.0));
    }

    #[test]
    fn concurrency_carries_across_quiet_seconds() {
        let snapshot = Snapshot {
            elapsed: 3.5,
            concurrency: vec![(0.2, 1), (0.3, 2), (0.9, 1), (2.5, 0)],
            ..Snapshot::default()
        };
        let peaks: Vec<usize> = snapshot
            .timeline()
            .iter()
            .map(|s| s.max_concurrency)
            .collect();
        assert_eq!(peaks, vec![2, 1, 1, 0]);
        assert_eq!(snapshot.peak_concurrency(), 2);
    }

    #[test]
    fn gb_seconds_follow_the_price_list() {
        let record = |billed_ms, memory_mb| InvocationRecord {
            at: 0.0,
            duration_ms: 0.0,
            init_ms: None,
            billed_ms,
            memory_mb,
            max_memory_mb: None,
            error: false,
            environment: 1,
            provisioned: false,
            spillover: false,
            cpu_ms: None,
        };
        let snapshot = Snapshot {
            invocations: vec![record(1000, 1024), record(2, 128)],
            ..Snapshot::default()
        };
        assert!((snapshot.gb_seconds() - (1.0 + 0.002 * 0.125)).abs() < 1e-12);
    }
}
