//! One Lambda execution environment on a laptop.
//!
//! An [`ExecutionEnvironment`] is what Lambda runs a function in: one
//! bootstrap process, started with the environment variables Lambda sets,
//! polling its own Runtime API endpoint
//! (`/2018-06-01/runtime/invocation/next`, `.../response`, `.../error`,
//! `/2018-06-01/runtime/init/error`). The process is the real binary the
//! module builds, so what is measured here is the learner's code:
//!
//! - Init Duration runs from spawning the process to its first `next`;
//! - Duration runs from handing over the event to the response;
//! - Max Memory Used is the process's peak resident set (Linux `VmHWM`);
//! - CPU is the memory size's share where the function opts in and the OS
//!   can enforce it ([`crate::cpu`]), and its use is read from the process.
//!
//! Each invocation yields an [`Invocation`] whose [`Invocation::report_line`]
//! is the REPORT line Lambda writes to CloudWatch Logs.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use serde_json::json;

use crate::cpu::{CpuLimits, EnvCgroup};
pub use crate::ids::random_uuid;
use crate::xray::{Collector, TraceHeader, epoch_seconds, new_id};

/// Lambda's limit on a synchronous response payload (6 MB).
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;
/// How long Lambda lets an on-demand environment initialise.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// The account id the lab puts in ARNs (the one AWS's own examples use).
pub const LOCAL_ACCOUNT_ID: &str = "123456789012";
/// The Region the lab pretends to be in.
pub const LOCAL_REGION: &str = "us-east-1";

/// How an environment was started: on demand by a request, or ahead of
/// traffic for provisioned concurrency. Lambda tells the function through
/// `AWS_LAMBDA_INITIALIZATION_TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitType {
    OnDemand,
    ProvisionedConcurrency,
}

impl InitType {
    pub fn as_env_value(self) -> &'static str {
        match self {
            InitType::OnDemand => "on-demand",
            InitType::ProvisionedConcurrency => "provisioned-concurrency",
        }
    }
}

/// The function configuration that every environment of a function shares.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// The function name (`AWS_LAMBDA_FUNCTION_NAME`).
    pub name: String,
    /// The bootstrap executable.
    pub bootstrap: PathBuf,
    /// Memory size in MB, 128 to 10,240 (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
    pub memory_mb: u32,
    /// The function timeout.
    pub timeout: Duration,
    /// The function's own environment variables, as set in its configuration.
    pub environment: BTreeMap<String, String>,
    /// Active tracing: where the environments' segments go. Lambda then
    /// samples each invocation, records its own segments for it and gives
    /// the function `AWS_XRAY_DAEMON_ADDRESS`.
    pub tracing: Option<Arc<Collector>>,
    /// Lambda's CPU share for `memory_mb`, in a cgroup per environment
    /// where the OS allows ([`CpuLimits::detect`]). `None`: every
    /// environment may use the whole machine, as before.
    pub cpu: Option<Arc<CpuLimits>>,
}

impl FunctionConfig {
    pub fn new(name: impl Into<String>, bootstrap: impl Into<PathBuf>) -> Self {
        FunctionConfig {
            name: name.into(),
            bootstrap: bootstrap.into(),
            memory_mb: 128,
            timeout: Duration::from_secs(3),
            environment: BTreeMap::new(),
            tracing: None,
            cpu: None,
        }
    }

    /// The variables the bootstrap process starts with. Like Lambda, the lab
    /// starts from an empty environment: nothing leaks in from the shell.
    pub fn process_environment(
        &self,
        runtime_api: SocketAddr,
        init_type: InitType,
    ) -> BTreeMap<String, String> {
        let mut vars = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            vars.insert(k.to_string(), v);
        };
        let task_root = self
            .bootstrap
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| ".".into());
        set("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string());
        set("AWS_LAMBDA_FUNCTION_NAME", self.name.clone());
        set(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            self.memory_mb.to_string(),
        );
        set("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into());
        set(
            "AWS_LAMBDA_INITIALIZATION_TYPE",
            init_type.as_env_value().into(),
        );
        set(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", self.name),
        );
        set("AWS_LAMBDA_LOG_STREAM_NAME", log_stream_name());
        set("AWS_LAMBDA_LOG_FORMAT", "JSON".into());
        set("AWS_LAMBDA_LOG_LEVEL", "INFO".into());
        set("AWS_REGION", LOCAL_REGION.into());
        set("AWS_DEFAULT_REGION", LOCAL_REGION.into());
        set("LAMBDA_TASK_ROOT", task_root);
        set("TZ", ":UTC".into());
        set("LANG", "en_US.UTF-8".into());
        if let Ok(path) = std::env::var("PATH") {
            set("PATH", path);
        }
        if let Some(collector) = &self.tracing {
            set("AWS_XRAY_DAEMON_ADDRESS", collector.daemon_address());
            set("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR".into());
        }
        for (k, v) in &self.environment {
            vars.insert(k.clone(), v.clone());
        }
        vars
    }
}

/// Where a bootstrap's output lines go: each line of stdout and stderr, tagged
/// with the environment that wrote it.
pub type LogSink = mpsc::UnboundedSender<LogLine>;

#[derive(Debug, Clone)]
pub struct LogLine {
    pub environment: usize,
    pub line: String,
}

/// What one invocation came to.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub outcome: Outcome,
    /// From handing over the event to the function's answer (or its end).
    pub duration: Duration,
    /// Present on the first invocation of an environment: its cold start.
    pub init_duration: Option<Duration>,
    pub memory_size_mb: u32,
    /// The process's peak resident set, where the platform tells it.
    pub max_memory_used_mb: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The function answered.
    Response(Bytes),
    /// The function reported an error for this event (`.../error`).
    FunctionError { error_type: String, payload: Bytes },
    /// The environment never became ready: `/init/error`, an exit during
    /// init, or no `next` within [`INIT_TIMEOUT`].
    InitError { error_type: String, message: String },
    /// The process exited while handling the event.
    Crash { status: String },
    /// The function ran past its timeout and the environment was stopped.
    Timeout { after: Duration },
    /// The answer exceeded Lambda's 6 MB response limit.
    ResponseTooLarge { size: usize },
}

impl Invocation {
    /// Whether the Invoke API would mark this result as a function error
    /// (`X-Amz-Function-Error: Unhandled`).
    pub fn is_error(&self) -> bool {
        !matches!(self.outcome, Outcome::Response(_))
    }

    /// The error type Lambda records for a failed invocation.
    pub fn error_type(&self) -> Option<String> {
        match &self.outcome {
            Outcome::Response(_) => None,
            Outcome::FunctionError { error_type, .. } => Some(error_type.clone()),
            Outcome::InitError { error_type, .. } => Some(error_type.clone()),
            Outcome::Crash { .. } => Some("Runtime.ExitError".into()),
            Outcome::Timeout { .. } => Some("Sandbox.Timedout".into()),
            Outcome::ResponseTooLarge { .. } => Some("Function.ResponseSizeTooLarge".into()),
        }
    }

    /// The payload the Invoke API returns: the function's response, or an
    /// error document `{"errorType": ..., "errorMessage": ...}`.
    pub fn payload(&self) -> Bytes {
        let error = |error_type: &str, message: String| {
            let doc = serde_json::json!({ "errorType": error_type, "errorMessage": message });
            Bytes::from(doc.to_string())
        };
        let id = &self.request_id;
        match &self.outcome {
            Outcome::Response(body) => body.clone(),
            Outcome::FunctionError { payload, .. } => payload.clone(),
            // Errors the platform reports name the request; the function's
            // own init error document is passed on as it wrote it.
            Outcome::InitError {
                error_type,
                message,
            } if error_type.starts_with("Runtime.") => {
                error(error_type, format!("RequestId: {id} Error: {message}"))
            }
            Outcome::InitError {
                error_type,
                message,
            } => error(error_type, message.clone()),
            Outcome::Crash { status } => error(
                "Runtime.ExitError",
                format!("RequestId: {id} Error: Runtime exited with error: {status}"),
            ),
            Outcome::Timeout { after } => error(
                "Sandbox.Timedout",
                format!(
                    "RequestId: {id} Error: Task timed out after {:.2} seconds",
                    after.as_secs_f64()
                ),
            ),
            Outcome::ResponseTooLarge { size } => error(
                "Function.ResponseSizeTooLarge",
                format!(
                    "Response payload size ({size} bytes) exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
                ),
            ),
        }
    }

    /// Billed Duration: a custom runtime is billed for its INIT too, rounded
    /// up to the next millisecond.
    pub fn billed_duration_ms(&self) -> u64 {
        let total = self.duration + self.init_duration.unwrap_or_default();
        (total.as_secs_f64() * 1000.0).ceil() as u64
    }

    /// The REPORT line, in the format Lambda writes to CloudWatch Logs.
    pub fn report_line(&self) -> String {
        let mut line = format!(
            "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
            self.request_id,
            ms(self.duration),
            self.billed_duration_ms(),
            self.memory_size_mb,
            self.max_memory_used_mb
                .map_or_else(|| "?".to_string(), |m| m.to_string()),
        );
        if let Some(init) = self.init_duration {
            let _ = write!(line, "\tInit Duration: {:.2} ms", ms(init));
        }
        match &self.outcome {
            Outcome::Timeout { .. } => line.push_str("\tStatus: timeout"),
            Outcome::InitError { .. }
            | Outcome::Crash { .. }
            | Outcome::ResponseTooLarge { .. } => {
                let _ = write!(
                    line,
                    "\tStatus: error\tError Type: {}",
                    self.error_type().unwrap_or_default()
                );
            }
            Outcome::Response(_) | Outcome::FunctionError { .. } => {}
        }
        line
    }
}

/// Milliseconds as a float, for reports.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One execution environment: a bootstrap process and its Runtime API.
pub struct ExecutionEnvironment {
    id: usize,
    config: FunctionConfig,
    child: Child,
    pid: Option<u32>,
    api: Arc<ApiState>,
    server: JoinHandle<()>,
    log_readers: Vec<JoinHandle<()>>,
    spawned_at: Instant,
    /// The same moment on the wall clock, for the Initialization segment.
    spawned_wall: SystemTime,
    init: InitPhase,
    /// Stopped between invocations (see [`ExecutionEnvironment::freeze`]).
    frozen: bool,
    /// The cgroup holding the process to its CPU share; declared after
    /// `child`, so it is removed only once the process is stopped.
    cgroup: Option<EnvCgroup>,
}

/// Whether this platform lets the lab stop and resume a process, as
/// Lambda freezes an idle environment. Where it does not, the lab only
/// models the freeze: work left running after a response goes on.
pub const FREEZES: bool = cfg!(unix);

enum InitPhase {
    Pending(oneshot::Receiver<InitSignal>),
    /// Ready; the duration is reported on the first invocation, then taken.
    Ready(Option<Duration>),
    Dead,
}

enum InitSignal {
    Ready(Instant),
    Failed { error_type: String, payload: Bytes },
}

impl ExecutionEnvironment {
    /// Spawns the bootstrap under a fresh Runtime API. Returns at once: the
    /// process initialises in the background, and the first invocation (or
    /// [`ExecutionEnvironment::wait_ready`]) waits for it.
    pub async fn start(
        id: usize,
        config: &FunctionConfig,
        init_type: InitType,
        logs: LogSink,
    ) -> std::io::Result<Self> {
        // The cgroup is ready, its quota written, before the process exists.
        let cgroup = match &config.cpu {
            Some(limits) => limits.environment(id, config.memory_mb).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot limit the CPU of environment {id}: {e}"),
                )
            })?,
            None => None,
        };
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (init_tx, init_rx) = oneshot::channel();
        let (jobs_tx, jobs_rx) = mpsc::channel(1);
        let api = Arc::new(ApiState {
            init: Mutex::new(Some(init_tx)),
            jobs: tokio::sync::Mutex::new(jobs_rx),
            jobs_tx,
            current: Mutex::new(None),
        });
        let server = tokio::spawn(serve_runtime_api(listener, api.clone()));

        let mut command = Command::new(&config.bootstrap);
        command
            .env_clear()
            .envs(config.process_environment(addr, init_type))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = config.bootstrap.parent().filter(|d| d.is_dir()) {
            command.current_dir(dir);
        }
        // Its own process group, so a Ctrl-C in the terminal reaches the lab,
        // which then stops every environment itself.
        #[cfg(unix)]
        command.process_group(0);
        // And if the lab dies without stopping them, Linux stops them too.
        // The process joins its cgroup before exec, so INIT gets no more
        // CPU than the invocations.
        #[cfg(target_os = "linux")]
        {
            let procs = cgroup.as_ref().map(|c| c.procs().to_owned());
            // SAFETY: prctl and `cpu::join` are async-signal-safe, and the
            // path they use was allocated before the fork.
            unsafe {
                command.pre_exec(move || {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    if let Some(procs) = &procs {
                        crate::cpu::join(procs)?;
                    }
                    Ok(())
                });
            }
        }
        let spawned_at = Instant::now();
        let spawned_wall = SystemTime::now();
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                server.abort();
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("cannot start {}: {e}", config.bootstrap.display()),
                ));
            }
        };
        let mut log_readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            log_readers.push(tokio::spawn(forward_lines(out, id, logs.clone())));
        }
        if let Some(err) = child.stderr.take() {
            log_readers.push(tokio::spawn(forward_lines(err, id, logs)));
        }
        Ok(ExecutionEnvironment {
            id,
            config: config.clone(),
            pid: child.id(),
            child,
            api,
            server,
            log_readers,
            spawned_at,
            spawned_wall,
            init: InitPhase::Pending(init_rx),
            frozen: false,
            cgroup,
        })
    }

    pub fn id(&self) -> usize {
        self.id
    }

    /// The bootstrap's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// False once the process has gone: after a crash, a timeout or a failed
    /// init. A dead environment is never invoked again.
    pub fn is_alive(&mut self) -> bool {
        !matches!(self.init, InitPhase::Dead) && matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the end of INIT. `Ok` holds the Init Duration; `Err` is the
    /// outcome every invocation of this environment would get.
    pub async fn wait_ready(&mut self) -> Result<Duration, Outcome> {
        match &mut self.init {
            InitPhase::Ready(Some(d)) => return Ok(*d),
            InitPhase::Ready(None) => return Ok(Duration::ZERO),
            InitPhase::Dead => {
                return Err(Outcome::InitError {
                    error_type: "Runtime.Unknown".into(),
                    message: "the execution environment has stopped".into(),
                });
            }
            InitPhase::Pending(_) => {}
        }
        let InitPhase::Pending(mut rx) = std::mem::replace(&mut self.init, InitPhase::Dead) else {
            unreachable!("checked above");
        };
        let init_timeout = INIT_TIMEOUT.max(self.config.timeout);
        let failed = |error_type: String, payload: Bytes| {
            let message = serde_json::from_slice::<serde_json::Value>(&payload)
                .ok()
                .and_then(|v| {
                    v.get("errorMessage")
                        .and_then(|m| m.as_str())
                        .map(String::from)
                })
                .unwrap_or_else(|| String::from_utf8_lossy(&payload).into_owned());
            Outcome::InitError {
                error_type,
                message,
            }
        };
        let result = tokio::select! {
            signal = &mut rx => match signal {
                Ok(InitSignal::Ready(at)) => Ok(at - self.spawned_at),
                Ok(InitSignal::Failed { error_type, payload }) => Err(failed(error_type, payload)),
                Err(_) => Err(Outcome::InitError {
                    error_type: "Runtime.Unknown".into(),
                    message: "the Runtime API stopped during init".into(),
                }),
            },
            // A runtime that reported its INIT error and then exited: the
            // report is what Lambda shows, not the exit.
            status = self.child.wait() => match rx.try_recv() {
                Ok(InitSignal::Failed { error_type, payload }) => Err(failed(error_type, payload)),
                _ => Err(Outcome::InitError {
                    error_type: "Runtime.ExitError".into(),
                    message: format!("Runtime exited with error: {}", describe_exit(status)),
                }),
            },
            _ = tokio::time::sleep(init_timeout) => Err(Outcome::InitError {
                error_type: "Runtime.InitTimeout".into(),
                message: format!(
                    "Init did not finish within {:.2} seconds (no call to /runtime/invocation/next)",
                    init_timeout.as_secs_f64()
                ),
            }),
        };
        match result {
            Ok(d) => {
                self.init = InitPhase::Ready(Some(d));
                Ok(d)
            }
            Err(outcome) => {
                let _ = self.child.start_kill();
                Err(outcome)
            }
        }
    }

    /// Finishes INIT ahead of traffic, as provisioned concurrency does: the
    /// first invocation then reports no Init Duration.
    pub async fn initialise(&mut self) -> Result<Duration, Outcome> {
        let d = self.wait_ready().await?;
        if let InitPhase::Ready(first) = &mut self.init {
            first.take();
        }
        Ok(d)
    }

    /// Runs one event through the function, as the Invoke API does.
    pub async fn invoke(&mut self, payload: impl Into<Bytes>) -> Invocation {
        self.invoke_as(random_uuid().to_string(), payload).await
    }

    /// [`ExecutionEnvironment::invoke`] with a request id chosen by the caller.
    pub async fn invoke_as(&mut self, request_id: String, payload: impl Into<Bytes>) -> Invocation {
        self.invoke_traced(request_id, payload, None).await
    }

    /// [`ExecutionEnvironment::invoke_as`] as part of the caller's trace
    /// (`upstream`, the gateway's header), or of a new one. With active
    /// tracing, a sampled invocation's segments are recorded as Lambda
    /// records them: the service's, then the function's, with its
    /// Initialization on a cold start and its Invocation; the header the
    /// function gets names the function's segment as its parent.
    pub async fn invoke_traced(
        &mut self,
        request_id: String,
        payload: impl Into<Bytes>,
        upstream: Option<TraceHeader>,
    ) -> Invocation {
        let Some(collector) = self.config.tracing.clone() else {
            let header = upstream.map(|h| h.to_string()).unwrap_or_else(new_trace_id);
            return self.run(request_id, payload.into(), header).await.0;
        };
        let upstream = upstream.unwrap_or_else(|| TraceHeader::new_root(true));
        if !upstream.sampled {
            let header = upstream.to_string();
            return self.run(request_id, payload.into(), header).await.0;
        }
        let (service_id, function_id) = (new_id(), new_id());
        let header = upstream.child_of(&function_id).to_string();
        let spawned = self.spawned_wall;
        let started = SystemTime::now();
        let (invocation, handed_over) = self.run(request_id, payload.into(), header).await;
        let ended = SystemTime::now();
        let name = self.config.name.clone();
        let fault = !matches!(invocation.outcome, Outcome::Response(_));
        let mut subsegments = Vec::new();
        let mut begun = started;
        if let Some(init) = invocation.init_duration {
            begun = spawned.min(started);
            subsegments.push(json!({
                "id": new_id(), "name": "Initialization",
                "start_time": epoch_seconds(spawned),
                "end_time": epoch_seconds(spawned + init),
            }));
        }
        if let Some(handed_over) = handed_over {
            subsegments.push(json!({
                "id": new_id(), "name": "Invocation",
                "start_time": epoch_seconds(handed_over),
                "end_time": epoch_seconds(handed_over + invocation.duration),
                "fault": fault,
            }));
        }
        let aws = json!({ "request_id": invocation.request_id });
        collector.record(json!({
            "id": service_id, "trace_id": upstream.root, "parent_id": upstream.parent,
            "name": name, "origin": "AWS::Lambda",
            "start_time": epoch_seconds(begun), "end_time": epoch_seconds(ended),
            "aws": aws, "fault": fault,
        }));
        collector.record(json!({
            "id": function_id, "trace_id": upstream.root, "parent_id": service_id,
            "name": name, "origin": "AWS::Lambda::Function",
            "start_time": epoch_seconds(begun), "end_time": epoch_seconds(ended),
            "aws": aws, "fault": fault, "subsegments": subsegments,
        }));
        invocation
    }

    /// One invocation with `trace_header`; when the event was handed over.
    async fn run(
        &mut self,
        request_id: String,
        payload: Bytes,
        trace_header: String,
    ) -> (Invocation, Option<SystemTime>) {
        self.thaw();
        let started = Instant::now();
        let init_duration = match self.wait_ready().await {
            Ok(d) => match &mut self.init {
                // Reported once: the first invocation after INIT is the cold one.
                InitPhase::Ready(first) => first.take().map(|_| d),
                _ => None,
            },
            Err(outcome) => {
                let init = Some(started.elapsed().max(Duration::from_micros(1)));
                return (self.finish(request_id, outcome, Duration::ZERO, init), None);
            }
        };

        let (reply_tx, reply_rx) = oneshot::channel();
        let timeout = self.config.timeout;
        let job = Job {
            request_id: request_id.clone(),
            deadline_ms: epoch_ms(SystemTime::now() + timeout),
            function_arn: format!(
                "arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:function:{}",
                self.config.name
            ),
            trace_id: trace_header,
            payload,
            reply: reply_tx,
        };
        let handed_over = Instant::now();
        let handed_over_wall = SystemTime::now();
        if self.api.jobs_tx.send(job).await.is_err() {
            let outcome = Outcome::Crash {
                status: "the Runtime API stopped".into(),
            };
            let invocation = self.finish(request_id, outcome, Duration::ZERO, init_duration);
            return (invocation, None);
        }
        let outcome = tokio::select! {
            reply = reply_rx => match reply {
                Ok(Reply::Response(body)) if body.len() > MAX_RESPONSE_BYTES => {
                    Outcome::ResponseTooLarge { size: body.len() }
                }
                Ok(Reply::Response(body)) => Outcome::Response(body),
                Ok(Reply::Error { error_type, payload }) => Outcome::FunctionError { error_type, payload },
                Err(_) => Outcome::Crash { status: "the Runtime API stopped".into() },
            },
            status = self.child.wait() => Outcome::Crash { status: describe_exit(status) },
            _ = tokio::time::sleep(timeout) => Outcome::Timeout { after: timeout },
        };
        let duration = handed_over.elapsed();
        let invocation = self.finish(request_id, outcome, duration, init_duration);
        (invocation, Some(handed_over_wall))
    }

    fn finish(
        &mut self,
        request_id: String,
        outcome: Outcome,
        duration: Duration,
        init_duration: Option<Duration>,
    ) -> Invocation {
        let max_memory_used_mb = self.pid.and_then(peak_rss_mb);
        if matches!(
            outcome,
            Outcome::Timeout { .. } | Outcome::Crash { .. } | Outcome::InitError { .. }
        ) {
            // Lambda stops an environment after a timeout or a runtime exit;
            // the next request gets a fresh one.
            let _ = self.child.start_kill();
            self.init = InitPhase::Dead;
        }
        Invocation {
            request_id,
            outcome,
            duration,
            init_duration,
            memory_size_mb: self.config.memory_mb,
            max_memory_used_mb,
        }
    }

    /// Stops the process, as Lambda freezes an environment between
    /// invocations: its threads, timers and background tasks stand still
    /// until the next invocation thaws it. Whatever a function left in a
    /// buffer after its response stays there. Only an initialised
    /// environment is frozen.
    pub fn freeze(&mut self) {
        if self.frozen || !matches!(self.init, InitPhase::Ready(_)) {
            return;
        }
        #[cfg(unix)]
        if let Some(pid) = self.pid {
            // SAFETY: kill(2) with a pid this environment spawned.
            self.frozen = unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) } == 0;
        }
    }

    /// Resumes a frozen process.
    pub fn thaw(&mut self) {
        if !self.frozen {
            return;
        }
        #[cfg(unix)]
        if let Some(pid) = self.pid {
            // SAFETY: as in freeze.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGCONT) };
        }
        self.frozen = false;
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// The process's current peak resident set, in MB.
    pub fn max_memory_used_mb(&self) -> Option<u64> {
        self.pid.and_then(peak_rss_mb)
    }

    /// The CPU time the process has used so far, INIT included (Lambda
    /// Insights' `cpu_total_time`): beside Max Memory Used, it shows
    /// whether a function was short of CPU or of memory. `None` once the
    /// process is gone, and where there is no `/proc`.
    pub fn cpu_time(&self) -> Option<Duration> {
        self.pid.and_then(crate::cpu::process_cpu_time)
    }

    #[cfg(test)]
    pub(crate) fn cgroup(&self) -> Option<&EnvCgroup> {
        self.cgroup.as_ref()
    }

    /// Stops the process and waits until every line it wrote has reached the
    /// log sink.
    pub async fn shutdown(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        // The process has exited; the cgroup goes with anything it started.
        if let Some(cgroup) = self.cgroup.take() {
            cgroup.remove(Duration::from_secs(1)).await;
        }
        for reader in self.log_readers.drain(..) {
            let _ = reader.await;
        }
        self.server.abort();
    }
}

impl Drop for ExecutionEnvironment {
    fn drop(&mut self) {
        // `kill_on_drop` stops the process; the API server goes with it.
        // With a cgroup, the kill comes first, so the cgroup (dropped after
        // this) finds it empty or emptying.
        if self.cgroup.is_some() {
            let _ = self.child.start_kill();
        }
        self.server.abort();
    }
}

fn describe_exit(status: std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => match status.code() {
            Some(code) => format!("exit status {code}"),
            None => {
                #[cfg(unix)]
                {
                    use std::os::unix::process::ExitStatusExt;
                    if let Some(signal) = status.signal() {
                        return format!("signal {signal}");
                    }
                }
                status.to_string()
            }
        },
        Err(e) => format!("unknown ({e})"),
    }
}

async fn forward_lines(stream: impl AsyncRead + Unpin, environment: usize, sink: LogSink) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let _ = sink.send(LogLine { environment, line });
    }
}

/// Peak resident set size of a process in MB (rounded up), from Linux's
/// `/proc/<pid>/status`. Other systems do not expose it this way.
pub fn peak_rss_mb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb.div_ceil(1024))
}

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// A trace header in X-Ray's format: `Root=1-<epoch hex>-<96-bit id>`.
pub fn new_trace_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let root = random_uuid().simple().to_string();
    let parent = random_uuid().simple().to_string();
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0",
        &root[..24],
        &parent[..16]
    )
}

fn log_stream_name() -> String {
    let id = random_uuid().simple().to_string();
    format!("local/[$LATEST]{id}")
}

/* ----------------------------- the Runtime API ----------------------------- */

struct Job {
    request_id: String,
    deadline_ms: u64,
    function_arn: String,
    trace_id: String,
    payload: Bytes,
    reply: oneshot::Sender<Reply>,
}

enum Reply {
    Response(Bytes),
    Error { error_type: String, payload: Bytes },
}

struct ApiState {
    init: Mutex<Option<oneshot::Sender<InitSignal>>>,
    jobs: tokio::sync::Mutex<mpsc::Receiver<Job>>,
    jobs_tx: mpsc::Sender<Job>,
    /// The invocation the function is working on.
    current: Mutex<Option<(String, oneshot::Sender<Reply>)>>,
}

impl ApiState {
    fn signal_init(&self, signal: InitSignal) {
        if let Some(tx) = self.init.lock().expect("init lock").take() {
            let _ = tx.send(signal);
        }
    }

    fn reply(&self, request_id: &str, reply: Reply) -> bool {
        let mut current = self.current.lock().expect("current lock");
        match current.take() {
            Some((id, tx)) if id == request_id => {
                let _ = tx.send(reply);
                true
            }
            other => {
                *current = other;
                false
            }
        }
    }
}

async fn serve_runtime_api(listener: TcpListener, api: Arc<ApiState>) {
    // Connections live in a JoinSet, so stopping the server (aborting this
    // task) also ends a `next` call that is still waiting for an event.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            Some(_) = connections.join_next() => continue,
        };
        let api = api.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let api = api.clone();
                async move { Ok::<_, Infallible>(route(&api, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type ApiResponse = Response<Full<Bytes>>;

const PREFIX: &str = "/2018-06-01/runtime";

async fn route(api: &ApiState, req: Request<Incoming>) -> ApiResponse {
    let path = req.uri().path().to_string();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return api_error(StatusCode::NOT_FOUND, "NotFound", "unknown path");
    };
    match (req.method().clone(), rest) {
        (Method::GET, "/invocation/next") => next(api).await,
        (Method::POST, "/init/error") => {
            let error_type = header(&req, "lambda-runtime-function-error-type")
                .unwrap_or_else(|| "Runtime.InitError".into());
            let payload = read_body(req).await;
            let error_type = error_type_of(&payload).unwrap_or(error_type);
            api.signal_init(InitSignal::Failed {
                error_type,
                payload,
            });
            accepted()
        }
        (Method::POST, rest) => {
            let Some(rest) = rest.strip_prefix("/invocation/") else {
                return api_error(StatusCode::NOT_FOUND, "NotFound", "unknown path");
            };
            if let Some(id) = rest.strip_suffix("/response") {
                let id = id.to_string();
                let body = read_body(req).await;
                reply_or_reject(api, &id, Reply::Response(body))
            } else if let Some(id) = rest.strip_suffix("/error") {
                let id = id.to_string();
                let error_type = header(&req, "lambda-runtime-function-error-type")
                    .unwrap_or_else(|| "Unhandled".into());
                let payload = read_body(req).await;
                let error_type = error_type_of(&payload).unwrap_or(error_type);
                reply_or_reject(
                    api,
                    &id,
                    Reply::Error {
                        error_type,
                        payload,
                    },
                )
            } else {
                api_error(StatusCode::NOT_FOUND, "NotFound", "unknown path")
            }
        }
        _ => api_error(StatusCode::NOT_FOUND, "NotFound", "unknown path"),
    }
}

async fn next(api: &ApiState) -> ApiResponse {
    // The first call to `next` is the end of INIT.
    api.signal_init(InitSignal::Ready(Instant::now()));
    let job = {
        let mut jobs = api.jobs.lock().await;
        jobs.recv().await
    };
    let Some(job) = job else {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            "environment shutting down",
        );
    };
    *api.current.lock().expect("current lock") = Some((job.request_id.clone(), job.reply));
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", &job.request_id)
        .header("lambda-runtime-deadline-ms", job.deadline_ms.to_string())
        .header("lambda-runtime-invoked-function-arn", &job.function_arn)
        .header("lambda-runtime-trace-id", &job.trace_id)
        .body(Full::new(job.payload))
        .expect("valid response")
}

/// The `errorType` of an error document, which names the error better than
/// the header (lambda_runtime sends `unhandled` there for every error).
fn error_type_of(payload: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()?
        .get("errorType")?
        .as_str()
        .map(String::from)
}

fn reply_or_reject(api: &ApiState, id: &str, reply: Reply) -> ApiResponse {
    if api.reply(id, reply) {
        accepted()
    } else {
        api_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            "no invocation with this request id is in progress",
        )
    }
}

fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

async fn read_body(req: Request<Incoming>) -> Bytes {
    // A little over the response limit, so an oversized answer is seen as such.
    Limited::new(req.into_body(), MAX_RESPONSE_BYTES + 1024 * 1024)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_else(|_| Bytes::from(vec![0; MAX_RESPONSE_BYTES + 1]))
}

fn accepted() -> ApiResponse {
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"status":"OK"}"#)))
        .expect("valid response")
}

fn api_error(status: StatusCode, error_type: &str, message: &str) -> ApiResponse {
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message });
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_version_4_and_do_not_repeat() {
        let ids: std::collections::BTreeSet<uuid::Uuid> =
            (0..10_000).map(|_| random_uuid()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| id.get_version_num() == 4));
    }

    fn invocation(outcome: Outcome, duration_us: u64, init_us: Option<u64>) -> Invocation {
        Invocation {
            request_id: "id-1".into(),
            outcome,
            duration: Duration::from_micros(duration_us),
            init_duration: init_us.map(Duration::from_micros),
            memory_size_mb: 128,
            max_memory_used_mb: Some(6),
        }
    }

    #[test]
    fn billed_duration_includes_init_and_rounds_up() {
        let cold = invocation(Outcome::Response(Bytes::new()), 1_200, Some(10_500));
        assert_eq!(cold.billed_duration_ms(), 12);
        let warm = invocation(Outcome::Response(Bytes::new()), 1_001, None);
        assert_eq!(warm.billed_duration_ms(), 2);
    }

    #[test]
    fn report_lines_follow_lambda() {
        let cold = invocation(Outcome::Response(Bytes::new()), 1_200, Some(10_500));
        assert_eq!(
            cold.report_line(),
            "REPORT RequestId: id-1\tDuration: 1.20 ms\tBilled Duration: 12 ms\tMemory Size: 128 MB\tMax Memory Used: 6 MB\tInit Duration: 10.50 ms"
        );
        let timeout = invocation(
            Outcome::Timeout {
                after: Duration::from_secs(3),
            },
            3_000_000,
            None,
        );
        assert!(timeout.report_line().ends_with("\tStatus: timeout"));
        let crash = invocation(
            Outcome::Crash {
                status: "exit status 3".into(),
            },
            10,
            None,
        );
        assert!(
            crash
                .report_line()
                .ends_with("\tStatus: error\tError Type: Runtime.ExitError")
        );
    }

    #[test]
    fn trace_ids_have_xray_shape() {
        let id = new_trace_id();
        let root = id.strip_prefix("Root=1-").unwrap();
        let (time, rest) = root.split_once('-').unwrap();
        assert_eq!(time.len(), 8);
        let (unique, rest) = rest.split_once(';').unwrap();
        assert_eq!(unique.len(), 24);
        assert!(rest.starts_with("Parent=") && rest.ends_with(";Sampled=0"));
    }
}

/// Environments held to their CPU share ([`crate::cpu`]), busy on purpose.
#[cfg(test)]
mod cpu_share_tests {
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::cpu::*;
    use crate::ids::random_uuid;
    use std::io;

    /* -------------------- real environments, busy on purpose -------------------- */

    use super::{ExecutionEnvironment, FunctionConfig, InitType};

    /// A bootstrap that never finishes INIT: `loops` busy loops in `sh`.
    /// `sh` reads it by name after exec, so it stays until the test ends.
    struct Script(PathBuf);

    impl Script {
        fn busy(loops: usize) -> Script {
            use std::os::unix::fs::PermissionsExt;
            let path = std::env::temp_dir().join(format!(
                "lab-cpu-busy-{}-{}",
                std::process::id(),
                random_uuid().simple()
            ));
            let body = "while :; do :; done & ".repeat(loops - 1) + "while :; do :; done\n";
            std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            Script(path)
        }
    }

    impl Drop for Script {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    async fn start_busy(
        limits: &Arc<CpuLimits>,
        memory_mb: u32,
        loops: usize,
    ) -> (ExecutionEnvironment, Script) {
        let script = Script::busy(loops);
        let mut config = FunctionConfig::new("busy", &script.0);
        config.memory_mb = memory_mb;
        config.cpu = Some(limits.clone());
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        // Another test's fork may hold the fresh script open for a moment
        // (ETXTBSY): try again.
        let mut tries = 0;
        let env = loop {
            match ExecutionEnvironment::start(1, &config, InitType::OnDemand, tx.clone()).await {
                Ok(env) => break env,
                Err(e) if e.kind() == io::ErrorKind::ExecutableFileBusy && tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot start the busy function: {e}"),
            }
        };
        (env, script)
    }

    fn is_running(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.starts_with(" Z"))
        })
    }

    /// CPU time of every process in the process group `pgid` (the
    /// environment's, as it has no cgroup).
    fn process_group_cpu_time(pgid: u32) -> Duration {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                    s.rsplit_once(')')
                        .and_then(|(_, rest)| rest.split_whitespace().nth(2)?.parse::<u32>().ok())
                        == Some(pgid)
                })
            })
            .filter_map(process_cpu_time)
            .sum()
    }

    fn kill_process_group(pgid: u32) {
        assert!(pgid > 1);
        // SAFETY: kill(2) on the group of a process this test started.
        unsafe { libc::kill(-(pgid as libc::pid_t), libc::SIGKILL) };
    }

    /// CPU time of every process in the environment's cgroup (`loops`
    /// shells), `None` without one.
    fn cgroup_cpu_time(env: &ExecutionEnvironment) -> Option<Duration> {
        let procs = std::fs::read_to_string(env.cgroup()?.dir().join("cgroup.procs")).ok()?;
        Some(
            procs
                .lines()
                .filter_map(|p| p.trim().parse().ok())
                .filter_map(process_cpu_time)
                .sum(),
        )
    }

    /// CPU the busy bootstrap got in `wall`, at `memory_mb`.
    async fn busy_cpu(limits: &Arc<CpuLimits>, memory_mb: u32, wall: Duration) -> Duration {
        let (env, _script) = start_busy(limits, memory_mb, 1).await;
        let pid = env.pid().expect("running");
        let dir = env.cgroup().expect("enforced").dir().to_path_buf();
        // The process joined its cgroup before exec: all of INIT is limited.
        let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let name = dir.file_name().unwrap().to_str().unwrap();
        assert!(membership.contains(name), "{membership}");
        tokio::time::sleep(wall).await;
        assert!(is_running(pid), "the busy loop is still going");
        let used = env.cpu_time().expect("the process is running");
        env.shutdown().await;
        assert!(!dir.exists(), "the environment's cgroup goes with it");
        used
    }

    fn enforced_or_explained() -> Option<Arc<CpuLimits>> {
        let limits = CpuLimits::detect();
        if limits.is_enforced() {
            return Some(Arc::new(limits));
        }
        eprintln!(
            "not enforced here, checking the description only: {}",
            limits.reason().unwrap_or_default()
        );
        assert!(
            limits
                .describe(128)
                .starts_with("CPU share modelled, not enforced: ")
        );
        None
    }

    #[tokio::test]
    async fn a_busy_128_mb_environment_gets_well_under_a_core() {
        let Some(limits) = enforced_or_explained() else {
            return;
        };
        let used = busy_cpu(&limits, 128, Duration::from_secs(1)).await;
        eprintln!("128 MB: {used:?} of CPU in 1 s ({})", limits.describe(128));
        // 0.072 s is the share; a whole core would be about 1 s.
        assert!(used < Duration::from_millis(200), "{used:?}");
        assert!(used >= Duration::from_millis(20), "it ran at all: {used:?}");
        let run = limits.run_dir().unwrap().to_path_buf();
        drop(limits);
        assert!(!run.exists(), "the run's cgroup goes at the end");
    }

    #[tokio::test]
    async fn a_busy_1769_mb_environment_gets_about_a_core() {
        let Some(limits) = enforced_or_explained() else {
            return;
        };
        let used = busy_cpu(&limits, 1769, Duration::from_secs(1)).await;
        eprintln!("1769 MB: {used:?} of CPU in 1 s");
        assert!(used > Duration::from_millis(600), "{used:?}");
        assert!(used < Duration::from_millis(1_150), "{used:?}");
    }

    #[tokio::test]
    async fn a_dropped_environment_leaves_no_cgroup() {
        let Some(limits) = enforced_or_explained() else {
            return;
        };
        let (env, _script) = start_busy(&limits, 128, 2).await;
        let dir = env.cgroup().unwrap().dir().to_path_buf();
        assert!(dir.is_dir());
        drop(env);
        let removed = async {
            while dir.exists() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(3), removed)
            .await
            .unwrap_or_else(|_| panic!("{} is still there", dir.display()));
    }

    /// The figures for the book: `cargo test -p lab cpu::tests::measure --
    /// --ignored --nocapture`.
    #[tokio::test]
    #[ignore = "takes 20 s; prints the CPU a busy loop gets per memory size"]
    async fn measure_busy_loops_by_memory_size() {
        let Some(limits) = enforced_or_explained() else {
            return;
        };
        let wall = Duration::from_secs(2);
        let unlimited = Arc::new(CpuLimits::modelled("the baseline"));
        let mut got = Vec::new();
        for loops in [1, 2] {
            let (env, _script) = start_busy(&unlimited, 128, loops).await;
            tokio::time::sleep(wall).await;
            got.push(process_group_cpu_time(env.pid().unwrap()));
            kill_process_group(env.pid().unwrap());
            env.shutdown().await;
        }
        eprintln!(
            "no limit: one loop {:.2} s, two loops {:.2} s of CPU in {:.0} s",
            got[0].as_secs_f64(),
            got[1].as_secs_f64(),
            wall.as_secs_f64()
        );
        for memory_mb in [128, 512, 1024, 1769, 3008] {
            let mut got = Vec::new();
            for loops in [1, 2] {
                let (env, _script) = start_busy(&limits, memory_mb, loops).await;
                tokio::time::sleep(wall).await;
                assert!(is_running(env.pid().unwrap()));
                got.push(cgroup_cpu_time(&env).unwrap_or_default());
                env.shutdown().await;
            }
            eprintln!(
                "{memory_mb:>5} MB: one loop {:.2} s, two loops {:.2} s of CPU in {:.0} s ({})",
                got[0].as_secs_f64(),
                got[1].as_secs_f64(),
                wall.as_secs_f64(),
                limits.describe(memory_mb)
            );
        }
    }
}
