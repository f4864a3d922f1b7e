//! A function's fleet of execution environments, scaled as Lambda scales
//! them: one request per environment at a time, a new environment (a cold
//! start) when none is idle, idle ones reused, a concurrency limit past
//! which invocations are throttled, and provisioned environments
//! initialised before any traffic arrives, served first, and scaled by a
//! schedule or by target tracking as Application Auto Scaling scales them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use crate::lambda::{ExecutionEnvironment, FunctionConfig, InitType, Invocation, LogLine, LogSink};
use crate::metrics::Recorder;
use crate::throttle::TokenBucket;
use crate::xray::TraceHeader;

#[derive(Debug, Clone, Default)]
pub struct FleetOptions {
    /// The function's concurrency limit (reserved concurrency); `None` is
    /// the account's limit, which a laptop never reaches.
    pub max_concurrency: Option<usize>,
    /// Environments started and initialised before traffic
    /// (provisioned concurrency on the alias).
    pub provisioned: usize,
    /// How the provisioned environments change during the run.
    pub provisioned_scaling: Option<ProvisionedScaling>,
    /// Use each environment once (every request pays INIT).
    pub single_use: bool,
    /// How many new environments may start per second: Lambda scales a
    /// function by 1,000 environments per 10 s. `None` for no limit.
    pub scale_per_second: Option<f64>,
}

/// Lambda's default concurrency limit per account and Region.
pub const ACCOUNT_CONCURRENCY: usize = 1000;
/// Lambda's scaling rate: 1,000 new environments per 10 seconds.
pub const SCALE_PER_SECOND: f64 = 100.0;
/// The lab's scaling rate. A laptop cannot start a hundred processes at
/// once the way Lambda starts a hundred environments on a hundred hosts:
/// each start takes CPU from everything else. The lab scales more slowly,
/// and the shape stays: a spike that outruns scaling is throttled.
pub const LAB_SCALE_PER_SECOND: f64 = 20.0;

impl FleetOptions {
    /// What an unconfigured function gets, on a laptop: the account's
    /// concurrency limit, and scaling at [`LAB_SCALE_PER_SECOND`].
    pub fn aws_defaults() -> Self {
        FleetOptions {
            max_concurrency: Some(ACCOUNT_CONCURRENCY),
            provisioned: 0,
            provisioned_scaling: None,
            single_use: false,
            scale_per_second: Some(LAB_SCALE_PER_SECOND),
        }
    }
}

/// Application Auto Scaling on the provisioned environments.
#[derive(Debug, Clone, PartialEq)]
pub enum ProvisionedScaling {
    /// A scheduled action: `at` after the fleet starts, raise the
    /// provisioned environments to `to`.
    Scheduled { at: Duration, to: usize },
    /// A target-tracking policy on `ProvisionedConcurrencyUtilization`.
    TargetTracking(TargetTracking),
}

/// Target tracking as Application Auto Scaling does it for provisioned
/// concurrency: one datapoint a minute (the minute's average utilisation),
/// and a scale-out once `datapoints` datapoints in a row are above the
/// target, to the capacity that would have been at the target.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetTracking {
    /// The utilisation to hold (0.7 is the usual choice).
    pub target: f64,
    /// How long a datapoint's minute lasts on the lab's clock: a laptop run
    /// cannot last the minutes AWS's does, so the clock is compressed.
    pub minute: Duration,
    /// Datapoints above the target before a scale-out (AWS: 3).
    pub datapoints: usize,
    /// The scalable target's MaxCapacity.
    pub max: usize,
}

impl TargetTracking {
    /// AWS's policy at `target`, on a clock where a minute lasts `minute`.
    pub fn aws(target: f64, minute: Duration, max: usize) -> Self {
        TargetTracking {
            target,
            minute,
            datapoints: 3,
            max,
        }
    }

    /// How many times faster than AWS's clock the lab's runs.
    pub fn compression(&self) -> f64 {
        60.0 / self.minute.as_secs_f64()
    }

    /// The capacity that puts `utilisation` of `allocated` at the target.
    pub fn desired(&self, allocated: usize, utilisation: f64) -> usize {
        let desired = (allocated as f64 * utilisation / self.target).ceil() as usize;
        desired.clamp(allocated, self.max.max(allocated))
    }
}

/// Why the fleet did not run an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetError {
    /// The concurrency limit is reached: Lambda's `TooManyRequestsException`
    /// ("Rate Exceeded.").
    Throttled,
    /// A new environment could not be started.
    Start(String),
}

struct Pool {
    /// Idle on-demand environments.
    idle: Vec<ExecutionEnvironment>,
    /// Idle provisioned environments: served before any on-demand one.
    idle_provisioned: Vec<ExecutionEnvironment>,
    in_flight: usize,
    /// Provisioned environments ready (INIT done), and how many are busy.
    provisioned: usize,
    provisioned_busy: usize,
    /// Provisioned environments asked for, ready or still in INIT.
    provisioned_wanted: usize,
    closed: bool,
}

impl Pool {
    /// The share of the provisioned environments busy now (0 with none).
    fn utilisation(&self) -> f64 {
        if self.provisioned == 0 {
            0.0
        } else {
            self.provisioned_busy as f64 / self.provisioned as f64
        }
    }
}

struct Inner {
    function: FunctionConfig,
    options: FleetOptions,
    logs: LogSink,
    recorder: Arc<Recorder>,
    pool: Mutex<Pool>,
    next_id: AtomicUsize,
    scaling: Option<Mutex<TokenBucket>>,
}

/// A fleet; clones share it.
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
}

impl Fleet {
    /// Starts the fleet; returns once every provisioned environment has
    /// finished INIT.
    pub async fn start(
        function: FunctionConfig,
        options: FleetOptions,
        logs: LogSink,
        recorder: Arc<Recorder>,
    ) -> Result<Fleet, String> {
        let scaling = options_scaling(&options);
        let fleet = Fleet {
            inner: Arc::new(Inner {
                function,
                options,
                logs,
                recorder,
                pool: Mutex::new(Pool {
                    idle: Vec::new(),
                    idle_provisioned: Vec::new(),
                    in_flight: 0,
                    provisioned: 0,
                    provisioned_busy: 0,
                    provisioned_wanted: 0,
                    closed: false,
                }),
                next_id: AtomicUsize::new(1),
                scaling,
            }),
        };
        fleet.provision(fleet.inner.options.provisioned).await?;
        match fleet.inner.options.provisioned_scaling.clone() {
            Some(ProvisionedScaling::Scheduled { at, to }) => {
                let fleet = fleet.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(at).await;
                    if let Err(e) = fleet.provision(to).await {
                        eprintln!("the scheduled action could not provision: {e}");
                    }
                });
            }
            Some(ProvisionedScaling::TargetTracking(policy)) => {
                tokio::spawn(fleet.clone().track(policy));
            }
            None => {}
        }
        Ok(fleet)
    }

    /// Raises the provisioned environments to `to` (never lowers them);
    /// returns once the new ones have finished INIT. Each joins the
    /// provisioned pool, and is billed as allocated, from then on.
    pub async fn provision(&self, to: usize) -> Result<(), String> {
        let more = {
            let mut pool = self.lock();
            let more = to.saturating_sub(pool.provisioned_wanted);
            pool.provisioned_wanted += more;
            more
        };
        let mut starting = Vec::new();
        for _ in 0..more {
            let fleet = self.clone();
            starting.push(tokio::spawn(async move {
                let mut env = fleet
                    .new_environment(InitType::ProvisionedConcurrency)
                    .await?;
                let init = env.initialise().await.map_err(|outcome| {
                    format!("a provisioned environment failed INIT: {outcome:?}")
                })?;
                fleet.inner.recorder.provisioned_init(init);
                env.freeze();
                let mut pool = fleet.lock();
                if pool.closed {
                    return Ok(());
                }
                pool.provisioned += 1;
                pool.idle_provisioned.push(env);
                fleet
                    .inner
                    .recorder
                    .provisioned(pool.provisioned, pool.provisioned_busy);
                Ok::<_, String>(())
            }));
        }
        for task in starting {
            task.await
                .map_err(|e| format!("a provisioned environment's start failed: {e}"))??;
        }
        Ok(())
    }

    /// Target tracking: samples the utilisation ten times a datapoint,
    /// averages each minute into a datapoint, and scales out after enough
    /// datapoints above the target in a row. Scale-in (15 datapoints below)
    /// is left out: no lab run lasts that long.
    async fn track(self, policy: TargetTracking) {
        let samples_per_datapoint = 10;
        let mut above = 0;
        let mut tick = tokio::time::interval(policy.minute / samples_per_datapoint);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut sum = 0.0;
            for _ in 0..samples_per_datapoint {
                tick.tick().await;
                let pool = self.lock();
                if pool.closed {
                    return;
                }
                sum += pool.utilisation();
            }
            let utilisation = sum / f64::from(samples_per_datapoint);
            let allocated = self.lock().provisioned_wanted;
            self.inner.recorder.datapoint(utilisation);
            above = if utilisation > policy.target {
                above + 1
            } else {
                0
            };
            if above >= policy.datapoints {
                above = 0;
                let to = policy.desired(allocated, utilisation);
                if to > allocated {
                    self.inner.recorder.scale_out(allocated, to);
                    let fleet = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = fleet.provision(to).await {
                            eprintln!("target tracking could not provision: {e}");
                        }
                    });
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.inner.pool.lock().expect("fleet lock")
    }

    async fn new_environment(&self, init_type: InitType) -> Result<ExecutionEnvironment, String> {
        let id = self.inner.next_id.fetch_add(1, Ordering::SeqCst);
        ExecutionEnvironment::start(id, &self.inner.function, init_type, self.inner.logs.clone())
            .await
            .map_err(|e| e.to_string())
    }

    /// Idle environments, provisioned and on-demand.
    pub fn idle(&self) -> usize {
        let pool = self.lock();
        pool.idle.len() + pool.idle_provisioned.len()
    }

    /// Provisioned environments ready to serve (INIT done).
    pub fn provisioned(&self) -> usize {
        self.lock().provisioned
    }

    pub fn function(&self) -> &FunctionConfig {
        &self.inner.function
    }

    /// Runs one invocation on an idle environment, or on a new one.
    pub async fn invoke(&self, payload: Bytes) -> Result<Invocation, FleetError> {
        self.invoke_traced(payload, None).await
    }

    /// [`Fleet::invoke`] as part of the caller's trace (see
    /// [`ExecutionEnvironment::invoke_traced`]).
    pub async fn invoke_traced(
        &self,
        payload: Bytes,
        upstream: Option<TraceHeader>,
    ) -> Result<Invocation, FleetError> {
        let recorder = &self.inner.recorder;
        let (reused, spillover) = {
            let mut pool = self.lock();
            if pool.closed {
                return Err(FleetError::Start("the fleet is shutting down".into()));
            }
            if let Some(max) = self.inner.options.max_concurrency
                && pool.in_flight >= max
            {
                recorder.throttle();
                return Err(FleetError::Throttled);
            }
            let reused = match pool.idle_provisioned.pop() {
                Some(env) => {
                    pool.provisioned_busy += 1;
                    recorder.provisioned(pool.provisioned, pool.provisioned_busy);
                    Some((env, true))
                }
                None => pool.idle.pop().map(|env| (env, false)),
            };
            // Past the provisioned environments, onto on-demand ones:
            // Lambda's ProvisionedConcurrencySpilloverInvocations.
            let spillover = !matches!(reused, Some((_, true))) && pool.provisioned > 0;
            if reused.is_none()
                && let Some(scaling) = &self.inner.scaling
                && !scaling
                    .lock()
                    .expect("scaling lock")
                    .take(std::time::Instant::now())
            {
                // No idle environment, and no new one allowed this instant.
                recorder.scaling_throttle();
                return Err(FleetError::Throttled);
            }
            pool.in_flight += 1;
            recorder.concurrency(pool.in_flight);
            (reused, spillover)
        };
        let (env, provisioned) = match reused {
            Some((env, provisioned)) => (Ok(env), provisioned),
            None => (self.new_environment(InitType::OnDemand).await, false),
        };
        let mut env = match env {
            Ok(env) => env,
            Err(e) => {
                self.release(None, false);
                return Err(FleetError::Start(e));
            }
        };
        let request_id = crate::lambda::random_uuid().to_string();
        let environment = env.id();
        // The platform's lines, when anyone reads the logs.
        let logs = (!self.inner.logs.is_closed()).then_some(&self.inner.logs);
        let log = |line: String| {
            if let Some(logs) = logs {
                let _ = logs.send(LogLine { environment, line });
            }
        };
        if logs.is_some() {
            log(format!("START RequestId: {request_id} Version: $LATEST"));
        }
        let invocation = env.invoke_traced(request_id, payload, upstream).await;
        // The environment's CPU so far, where its share is enforced (a
        // read of /proc the other runs need not pay for).
        let cpu = self
            .inner
            .function
            .cpu
            .as_ref()
            .and_then(|_| env.cpu_time());
        recorder.invocation(&invocation, environment, provisioned, spillover, cpu);
        if logs.is_some() {
            log(format!("END RequestId: {}", invocation.request_id));
            log(invocation.report_line());
        }
        let keep = env.is_alive() && !self.inner.options.single_use;
        self.release(keep.then_some(env), provisioned);
        Ok(invocation)
    }

    /// Hands an environment back after an invocation; `None` when it is
    /// gone (it crashed, or is used once).
    fn release(&self, env: Option<ExecutionEnvironment>, provisioned: bool) {
        let mut pool = self.lock();
        pool.in_flight -= 1;
        self.inner.recorder.concurrency(pool.in_flight);
        if provisioned {
            pool.provisioned_busy -= 1;
            if env.is_none() {
                pool.provisioned -= 1;
                pool.provisioned_wanted -= 1;
            }
            self.inner
                .recorder
                .provisioned(pool.provisioned, pool.provisioned_busy);
        }
        let Some(mut env) = env else { return };
        if !pool.closed {
            // Idle, as on Lambda, is frozen.
            env.freeze();
            if provisioned {
                pool.idle_provisioned.push(env);
            } else {
                pool.idle.push(env);
            }
        }
    }

    /// Stops every idle environment and refuses new invocations; busy ones
    /// stop when their invocation ends (their process is killed when the
    /// environment is dropped).
    pub async fn shutdown(&self) {
        let idle = {
            let mut pool = self.lock();
            pool.closed = true;
            let mut idle = std::mem::take(&mut pool.idle);
            idle.append(&mut pool.idle_provisioned);
            idle
        };
        for env in idle {
            env.shutdown().await;
        }
    }
}

fn options_scaling(options: &FleetOptions) -> Option<Mutex<TokenBucket>> {
    options.scale_per_second.map(|rate| {
        let burst = rate.ceil().max(1.0) as u32;
        Mutex::new(TokenBucket::new(rate, burst))
    })
}
