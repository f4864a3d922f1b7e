//! A function's fleet of execution environments, scaled as Lambda scales
//! them: one request per environment at a time, a new environment (a cold
//! start) when none is idle, idle ones reused, a concurrency limit past
//! which invocations are throttled, and provisioned environments
//! initialised before any traffic arrives.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
    /// Environments started and initialised before traffic.
    pub provisioned: usize,
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
            single_use: false,
            scale_per_second: Some(LAB_SCALE_PER_SECOND),
        }
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
    idle: Vec<ExecutionEnvironment>,
    in_flight: usize,
    closed: bool,
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
        let options_copy = options.clone();
        let fleet = Fleet {
            inner: Arc::new(Inner {
                function,
                options,
                logs,
                recorder,
                pool: Mutex::new(Pool {
                    idle: Vec::new(),
                    in_flight: 0,
                    closed: false,
                }),
                next_id: AtomicUsize::new(1),
                scaling: options_scaling(&options_copy),
            }),
        };
        let provisioned = fleet.inner.options.provisioned;
        let mut starting = Vec::new();
        for _ in 0..provisioned {
            let fleet = fleet.clone();
            starting.push(tokio::spawn(async move {
                let mut env = fleet
                    .new_environment(InitType::ProvisionedConcurrency)
                    .await?;
                let init = env.initialise().await.map_err(|outcome| {
                    format!("a provisioned environment failed INIT: {outcome:?}")
                })?;
                fleet.inner.recorder.provisioned_init(init);
                Ok::<_, String>(env)
            }));
        }
        let mut ready = Vec::new();
        for task in starting {
            ready.push(
                task.await
                    .map_err(|e| format!("a provisioned environment's start failed: {e}"))??,
            );
        }
        for env in &mut ready {
            env.freeze();
        }
        fleet.lock().idle.extend(ready);
        Ok(fleet)
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

    /// Environments alive now (idle or busy).
    pub fn idle(&self) -> usize {
        self.lock().idle.len()
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
        let reused = {
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
            let reused = pool.idle.pop();
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
            reused
        };
        let env = match reused {
            Some(env) => Ok(env),
            None => self.new_environment(InitType::OnDemand).await,
        };
        let mut env = match env {
            Ok(env) => env,
            Err(e) => {
                self.release(None);
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
        recorder.invocation(&invocation, environment);
        if logs.is_some() {
            log(format!("END RequestId: {}", invocation.request_id));
            log(invocation.report_line());
        }
        let keep = env.is_alive() && !self.inner.options.single_use;
        self.release(keep.then_some(env));
        Ok(invocation)
    }

    fn release(&self, env: Option<ExecutionEnvironment>) {
        let mut pool = self.lock();
        pool.in_flight -= 1;
        self.inner.recorder.concurrency(pool.in_flight);
        if let Some(mut env) = env
            && !pool.closed
        {
            // Idle, as on Lambda, is frozen.
            env.freeze();
            pool.idle.push(env);
        }
    }

    /// Stops every idle environment and refuses new invocations; busy ones
    /// stop when their invocation ends (their process is killed when the
    /// environment is dropped).
    pub async fn shutdown(&self) {
        let idle = {
            let mut pool = self.lock();
            pool.closed = true;
            std::mem::take(&mut pool.idle)
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
