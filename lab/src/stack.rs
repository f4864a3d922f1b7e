//! The local lab: a module's real bootstrap behind the local API Gateway,
//! as a fleet of execution environments, and the scenarios that drive
//! traffic at it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::apigw::Api;
use crate::fleet::{Fleet, FleetOptions};
use crate::gateway::{self, Gateway, GatewayOptions};
use crate::lambda::{FunctionConfig, LogLine};
use crate::metrics::Recorder;
use crate::secrets::SecretsManager;
use crate::xray::Collector;

/// Everything that configures one lab: the function, its fleet, its API.
#[derive(Debug, Clone)]
pub struct LabConfig {
    pub function_name: String,
    pub bootstrap: PathBuf,
    pub memory_mb: u32,
    pub timeout: Duration,
    pub environment: BTreeMap<String, String>,
    pub fleet: FleetOptions,
    pub api: Api,
    pub throttle: Option<(f64, u32)>,
    pub api_key: Option<String>,
    /// `None` for API Gateway's default (29 s REST, 30 s HTTP API).
    pub integration_timeout: Option<Duration>,
    /// 0 for any free port.
    pub port: u16,
    /// The database the function uses (module 3 on).
    pub database: Option<crate::db::LabDatabase>,
    /// Another Secrets Manager endpoint (a moto server's URL) to keep the
    /// secrets on, in place of the lab's own.
    pub secrets_endpoint: Option<String>,
    /// Secrets the function reads (module 4 on): the lab's Secrets Manager
    /// starts with these (name, value), and the function is given its
    /// endpoint and credentials.
    pub secrets: Vec<(String, String)>,
    /// Active tracing (module 4 on): a collector receives the segments.
    pub tracing: bool,
    /// Each environment held to the CPU share of `memory_mb`, where the OS
    /// can enforce it (module 5's tuning and scenarios).
    pub cpu: Option<Arc<crate::cpu::CpuLimits>>,
}

impl LabConfig {
    pub fn new(function_name: impl Into<String>, bootstrap: PathBuf) -> Self {
        LabConfig {
            function_name: function_name.into(),
            bootstrap,
            memory_mb: 128,
            timeout: Duration::from_secs(3),
            environment: BTreeMap::new(),
            fleet: FleetOptions::default(),
            api: Api::Http,
            throttle: None,
            api_key: None,
            integration_timeout: None,
            port: 0,
            database: None,
            secrets: Vec::new(),
            secrets_endpoint: None,
            tracing: false,
            cpu: None,
        }
    }
}

/// Where the lab's lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Print function logs, REPORT lines and access log lines as they come.
    Print,
    /// Keep quiet (the lab's report says what happened).
    Quiet,
    /// Keep every line, for [`Lab::lines`]: a test that reads all a run
    /// wrote.
    Collect,
}

/// A running lab.
pub struct Lab {
    pub addr: SocketAddr,
    pub recorder: Arc<Recorder>,
    pub fleet: Fleet,
    pub config: LabConfig,
    /// The lab's Secrets Manager, when the function reads secrets.
    pub secrets: Option<SecretsManager>,
    /// The trace collector, with tracing on.
    pub collector: Option<Arc<Collector>>,
    gateway: Arc<Gateway>,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
    printer: Option<JoinHandle<()>>,
    lines: Arc<std::sync::Mutex<Vec<String>>>,
    sampler: Option<JoinHandle<()>>,
    machine: Option<JoinHandle<()>>,
}

impl Lab {
    /// Starts the fleet (and its provisioned environments) and the gateway.
    pub async fn start(config: LabConfig, output: Output) -> Result<Lab, String> {
        let recorder = Arc::new(Recorder::new());
        let (log_tx, log_rx) = mpsc::unbounded_channel::<LogLine>();
        let (access_tx, access_rx) = mpsc::unbounded_channel::<String>();
        // Quiet, nothing reads the lines: their receivers are dropped, and
        // the fleet and the gateway, seeing nobody listen, do not write them.
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let printer = match output {
            Output::Print => Some(tokio::spawn(print_lines(log_rx, access_rx))),
            Output::Collect => Some(tokio::spawn(collect_lines(
                log_rx,
                access_rx,
                lines.clone(),
            ))),
            Output::Quiet => None,
        };

        let mut function =
            FunctionConfig::new(config.function_name.clone(), config.bootstrap.clone());
        function.memory_mb = config.memory_mb;
        function.timeout = config.timeout;
        function.cpu = config.cpu.clone();
        function.environment = config.environment.clone();
        let mut sampler = None;
        if let Some(database) = &config.database {
            function
                .environment
                .insert("DATABASE_URL".into(), database.url.clone());
            migrate(
                &database.migrator,
                &function.environment,
                &database.direct_url,
            )?;
            if let Some(name) = database.watch.clone() {
                let tools = crate::db::tools()?;
                let recorder = recorder.clone();
                sampler = Some(tokio::spawn(async move {
                    loop {
                        let (tools_, name_) = (tools.clone(), name.clone());
                        let count = tokio::task::spawn_blocking(move || {
                            crate::db::connections(&tools_, &name_)
                        })
                        .await;
                        if let Ok(Ok(n)) = count {
                            recorder.db_connections(n);
                        }
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }));
            }
        }
        let secrets = if config.secrets.is_empty() {
            None
        } else {
            let manager =
                SecretsManager::for_run(config.secrets_endpoint.as_deref(), &config.secrets)
                    .await?;
            // The run's own variables win (a wrong endpoint, on purpose).
            for (key, value) in manager.env() {
                function.environment.entry(key).or_insert(value);
            }
            Some(manager)
        };
        let collector = if config.tracing {
            let collector = Collector::start()
                .await
                .map_err(|e| format!("cannot start the trace collector: {e}"))?;
            Some(Arc::new(collector))
        } else {
            None
        };
        function.tracing = collector.clone();
        let fleet = Fleet::start(function, config.fleet.clone(), log_tx, recorder.clone()).await?;

        let mut options = GatewayOptions::new(config.api.clone());
        options.throttle = config.throttle;
        options.api_key = config.api_key.clone();
        if let Some(t) = config.integration_timeout {
            options.integration_timeout = t;
        }
        options.tracing = collector.clone();
        let gateway = Gateway::new(fleet.clone(), options, recorder.clone(), access_tx);
        let machine = sample_machine(recorder.clone(), Duration::from_millis(500));
        // A deep accept queue: an open-loop spike opens hundreds of
        // connections at once.
        let listener = tokio::net::TcpSocket::new_v4()
            .and_then(|socket| {
                socket.set_reuseaddr(true)?;
                socket.bind(([127, 0, 0, 1], config.port).into())?;
                socket.listen(4096)
            })
            .map_err(|e| format!("cannot listen on port {}: {e}", config.port))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the address of port {}: {e}", config.port))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(gateway::serve(listener, gateway.clone(), async {
            let _ = stopped.await;
        }));
        Ok(Lab {
            addr,
            recorder,
            fleet,
            config,
            secrets,
            collector,
            gateway,
            stop,
            server,
            printer,
            lines,
            sampler,
            machine,
        })
    }

    /// The base URL clients use: a REST API's URL names its stage.
    pub fn url(&self) -> String {
        match &self.config.api {
            Api::Http => format!("http://{}", self.addr),
            Api::Rest { stage } => format!("http://{}/{stage}", self.addr),
        }
    }

    /// Sends one request through the gateway, as a client on the socket
    /// would (without the socket).
    pub async fn send(&self, request: crate::apigw::HttpRequest) -> crate::apigw::HttpResponse {
        self.gateway.handle(request).await
    }

    /// Every line so far, with [`Output::Collect`]: the functions' logs
    /// (`env-N | ...`), the platform's START/END/REPORT lines and the
    /// access log (`access | ...`).
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Stops the gateway, then every environment.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
        self.fleet.shutdown().await;
        for task in [self.printer, self.sampler, self.machine]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

/// Samples the machine every `every` into the recorder until aborted.
fn sample_machine(recorder: Arc<Recorder>, every: Duration) -> Option<JoinHandle<()>> {
    let mut last = crate::machine::CpuTimes::now()?;
    Some(tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(now) = crate::machine::CpuTimes::now() else {
                return;
            };
            if let Some(busy) = now.busy_since(&last) {
                recorder.machine_busy(busy);
            }
            last = now;
        }
    }))
}

/// Runs `bootstrap migrate` against the database itself: the schema and
/// the events on sale, before any traffic.
pub fn migrate(
    bootstrap: &std::path::Path,
    environment: &BTreeMap<String, String>,
    direct_url: &str,
) -> Result<(), String> {
    let output = std::process::Command::new(bootstrap)
        .arg("migrate")
        .env_clear()
        .envs(environment)
        // The schema goes in with the direct URL's own credentials, as an
        // operator applies it, not with the function's secret.
        .env_remove("DB_SECRET_ID")
        .env("DATABASE_URL", direct_url)
        .env("AWS_LAMBDA_LOG_LEVEL", "ERROR")
        .output()
        .map_err(|e| format!("cannot run {} migrate: {e}", bootstrap.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{} migrate` failed:\n{}{}",
            bootstrap.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Keeps every line in `store`.
async fn collect_lines(
    mut logs: mpsc::UnboundedReceiver<LogLine>,
    mut access: mpsc::UnboundedReceiver<String>,
    store: Arc<std::sync::Mutex<Vec<String>>>,
) {
    loop {
        let line = tokio::select! {
            Some(line) = logs.recv() => format!("env-{:<3}| {}", line.environment, line.line),
            Some(line) = access.recv() => format!("access | {line}"),
            else => break,
        };
        store.lock().unwrap().push(line);
    }
}

/// Prints function logs on stderr and access log lines on stdout, each
/// batch of waiting lines in one write.
async fn print_lines(
    mut logs: mpsc::UnboundedReceiver<LogLine>,
    mut access: mpsc::UnboundedReceiver<String>,
) {
    use std::io::Write as _;
    let (mut err, mut out) = (Vec::new(), Vec::new());
    loop {
        tokio::select! {
            Some(line) = logs.recv() => {
                let _ = writeln!(err, "env-{:<3}| {}", line.environment, line.line);
            }
            Some(line) = access.recv() => {
                let _ = writeln!(out, "access | {line}");
            }
            else => break,
        }
        while let Ok(line) = logs.try_recv() {
            let _ = writeln!(err, "env-{:<3}| {}", line.environment, line.line);
        }
        while let Ok(line) = access.try_recv() {
            let _ = writeln!(out, "access | {line}");
        }
        if !err.is_empty() {
            let _ = std::io::stderr().lock().write_all(&err);
            err.clear();
        }
        if !out.is_empty() {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(&out).and_then(|()| stdout.flush());
            out.clear();
        }
    }
}
