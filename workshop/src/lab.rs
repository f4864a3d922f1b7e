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
    pub database: Option<LabDatabase>,
}

/// A database behind the lab's function.
#[derive(Debug, Clone)]
pub struct LabDatabase {
    /// Where the function connects (its `DATABASE_URL`).
    pub url: String,
    /// Where the schema is applied: the database itself, never a proxy.
    pub direct_url: String,
    /// A PostgreSQL database whose connections to sample, four times a
    /// second, from `pg_stat_activity`.
    pub watch: Option<String>,
    /// The binary whose `migrate` command applies the schema: the module's
    /// reference, whichever binary the run serves.
    pub migrator: std::path::PathBuf,
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
}

/// A running lab.
pub struct Lab {
    pub addr: SocketAddr,
    pub recorder: Arc<Recorder>,
    pub fleet: Fleet,
    pub config: LabConfig,
    gateway: Arc<Gateway>,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
    printer: JoinHandle<()>,
    sampler: Option<JoinHandle<()>>,
    machine: Option<JoinHandle<()>>,
}

impl Lab {
    /// Starts the fleet (and its provisioned environments) and the gateway.
    pub async fn start(config: LabConfig, output: Output) -> Result<Lab, String> {
        let recorder = Arc::new(Recorder::new());
        let (log_tx, log_rx) = mpsc::unbounded_channel::<LogLine>();
        let (access_tx, access_rx) = mpsc::unbounded_channel::<String>();
        let printer = tokio::spawn(print_lines(log_rx, access_rx, output));

        let mut function =
            FunctionConfig::new(config.function_name.clone(), config.bootstrap.clone());
        function.memory_mb = config.memory_mb;
        function.timeout = config.timeout;
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
        let fleet = Fleet::start(function, config.fleet.clone(), log_tx, recorder.clone()).await?;

        let mut options = GatewayOptions::new(config.api.clone());
        options.throttle = config.throttle;
        options.api_key = config.api_key.clone();
        if let Some(t) = config.integration_timeout {
            options.integration_timeout = t;
        }
        let gateway = Gateway::new(fleet.clone(), options, recorder.clone(), access_tx);
        let machine = crate::machine::sample(recorder.clone(), Duration::from_millis(500));
        // A deep accept queue: an open-loop spike opens hundreds of
        // connections at once.
        let listener = tokio::net::TcpSocket::new_v4()
            .and_then(|socket| {
                socket.set_reuseaddr(true)?;
                socket.bind(([127, 0, 0, 1], config.port).into())?;
                socket.listen(4096)
            })
            .map_err(|e| format!("cannot listen on port {}: {e}", config.port))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(gateway::serve(listener, gateway.clone(), async {
            let _ = stopped.await;
        }));
        Ok(Lab {
            addr,
            recorder,
            fleet,
            config,
            gateway,
            stop,
            server,
            printer,
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

    /// Stops the gateway, then every environment.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
        self.fleet.shutdown().await;
        self.printer.abort();
        for sampler in [self.sampler, self.machine].into_iter().flatten() {
            sampler.abort();
        }
    }
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

async fn print_lines(
    mut logs: mpsc::UnboundedReceiver<LogLine>,
    mut access: mpsc::UnboundedReceiver<String>,
    output: Output,
) {
    loop {
        tokio::select! {
            Some(line) = logs.recv() => {
                if output == Output::Print {
                    eprintln!("env-{:<3}| {}", line.environment, line.line);
                }
            }
            Some(line) = access.recv() => {
                if output == Output::Print {
                    println!("access | {line}");
                }
            }
            else => break,
        }
    }
}

/* ------------------------------ scenarios ------------------------------ */

/// Which binary a run serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// The module's reference solution.
    Reference,
    /// A binary of the `lab-functions` crate.
    Variant(&'static str),
}

/// What every request of a run looks like.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub method: &'static str,
    pub path: &'static str,
    /// `{seq}` becomes the request's sequence number.
    pub body: Option<&'static str>,
}

/// The flash sale's request: one seat for a new fan each time.
pub const RESERVE: RequestSpec = RequestSpec {
    method: "POST",
    path: "/events/midnight-tour/reservations",
    body: Some(r#"{"customer_id": "fan-{seq}", "quantity": 1}"#),
};

/// Where a run keeps its tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseSpec {
    /// Whatever the module uses by default: memory in module 2, a fresh
    /// SQLite file from module 3 on.
    Default,
    /// The throwaway PostgreSQL of `cargo workshop db up`, a fresh database
    /// that takes at most `limit` connections; directly or through PgBouncer.
    Postgres {
        through_pgbouncer: bool,
        limit: Option<u32>,
    },
}

/// One run of a scenario.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub label: &'static str,
    pub description: &'static str,
    pub function: Function,
    pub request: RequestSpec,
    pub plan: crate::load::Plan,
    pub fleet: FleetOptions,
    /// Seats on sale (the function's EVENTS): midnight-tour:SEATS.
    pub seats: u64,
    pub database: DatabaseSpec,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub title: &'static str,
    pub intro: &'static str,
    /// The module whose functions it runs; `None` for the chosen module's
    /// reference.
    pub module: Option<u32>,
    pub runs: Vec<RunSpec>,
}

fn spike_plan(base: f64, peak: f64, at: u64, length: u64, total: u64) -> crate::load::Plan {
    crate::load::Plan {
        shape: crate::load::Shape::Constant(base),
        spikes: vec![crate::load::Spike {
            at: Duration::from_secs(at),
            rate: peak,
            length: Duration::from_secs(length),
        }],
        duration: Duration::from_secs(total),
    }
}

fn ramp_plan(from: f64, to: f64, total: u64) -> crate::load::Plan {
    crate::load::Plan {
        shape: crate::load::Shape::Ramp(from, to),
        spikes: vec![],
        duration: Duration::from_secs(total),
    }
}

/// `--scenario`'s help: every scenario with the module it runs, and what
/// it needs beyond the defaults.
pub fn scenario_help() -> String {
    let mut groups: Vec<(Option<u32>, Vec<&str>, bool)> = Vec::new();
    for scenario in scenarios() {
        let needs_postgres = scenario
            .runs
            .iter()
            .any(|run| matches!(run.database, DatabaseSpec::Postgres { .. }));
        match groups.iter_mut().find(|g| g.0 == scenario.module) {
            Some(group) => {
                group.1.push(scenario.name);
                group.2 |= needs_postgres;
            }
            None => groups.push((scenario.module, vec![scenario.name], needs_postgres)),
        }
    }
    let described: Vec<String> = groups
        .into_iter()
        .map(|(module, names, needs_postgres)| {
            let names = match names.as_slice() {
                [one] => one.to_string(),
                [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
                [] => unreachable!("a group has a scenario"),
            };
            let module = match module {
                None => "any module".to_string(),
                Some(m) => format!("module {m}"),
            };
            let after = if needs_postgres {
                ", after `cargo workshop db up`"
            } else {
                ""
            };
            format!("{names} ({module}{after})")
        })
        .collect();
    format!("The scenario: {}", described.join("; "))
}

/// The scenarios the lab knows, by name.
pub fn scenarios() -> Vec<Scenario> {
    let aws = FleetOptions::aws_defaults;
    let postgres = |through_pgbouncer, limit| DatabaseSpec::Postgres {
        through_pgbouncer,
        limit,
    };
    vec![
        Scenario {
            name: "flash-sale",
            title: "Flash sale: a spike of fans on the ticket drop",
            intro: "Fans arrive at 50 a second, then 800 a second for 10 seconds when the sale opens, then 50 again. \
                    Each one asks for one seat of the 2,000 on sale: the first seconds sell a few hundred, the spike \
                    sells the rest in about two seconds, and everyone after it is told the drop is sold out. The fleet \
                    starts environments as the spike needs them (cold starts) and reuses them after; watch how many \
                    environments a fast function needs, and how many seats the stock sells: in memory (module 2) every \
                    environment sells its own copy; in a shared database (module 3 on) each seat is sold once.",
            module: None,
            runs: vec![RunSpec {
                label: "the reference function",
                description: "HTTP API; the account's concurrency limit of 1,000; the lab scales by 20 environments a second",
                function: Function::Reference,
                request: RESERVE,
                plan: spike_plan(50.0, 800.0, 5, 10, 20),
                fleet: aws(),
                seats: 2_000,
                database: DatabaseSpec::Default,
            }],
        },
        Scenario {
            name: "throttle",
            title: "A concurrency limit under a rising tide",
            intro: "Concurrency is requests a second times the seconds each one lasts. Here each request waits 20 ms \
                    on a dependency (lab-functions/module-2-with-dependency stands in for a database or another \
                    service), and fans rise from 50 to 600 a second over 12 seconds: up to about 12 environments busy \
                    at once. The same traffic runs twice: with the function's concurrency limited to 5, and with room \
                    for 100. Past the limit Lambda throttles the invocation, and API Gateway's proxy integration turns \
                    that into a 500 for the fan. With room to grow, the fleet scales with the tide.",
            module: Some(2),
            runs: vec![
                RunSpec {
                    label: "limit 5",
                    description: "reserved concurrency 5: the tide rises over it",
                    function: Function::Variant("module-2-with-dependency"),
                    request: RESERVE,
                    plan: ramp_plan(50.0, 600.0, 12),
                    fleet: FleetOptions {
                        max_concurrency: Some(5),
                        ..aws()
                    },
                    seats: 100_000,
                    database: DatabaseSpec::Default,
                },
                RunSpec {
                    label: "limit 100",
                    description: "reserved concurrency 100: room to scale",
                    function: Function::Variant("module-2-with-dependency"),
                    request: RESERVE,
                    plan: ramp_plan(50.0, 600.0, 12),
                    fleet: FleetOptions {
                        max_concurrency: Some(100),
                        ..aws()
                    },
                    seats: 100_000,
                    database: DatabaseSpec::Default,
                },
            ],
        },
        Scenario {
            name: "init",
            title: "Init once, or work on every request",
            intro: "The same traffic, 200 fans a second for 10 seconds, against the reference (configuration, stock and \
                    router built once, in INIT) and against a build that does that work inside the handler for every \
                    request. In Rust that work is cheap, so the durations stay close; what the second build loses is \
                    its state: the stock starts full on every request, and every fan is sold seat 1. Where INIT holds \
                    a database connection, doing it per request costs time as well (module 3's per-request-connect).",
            module: Some(2),
            runs: vec![
                RunSpec {
                    label: "init once",
                    description: "the reference: built in main, borrowed by every request",
                    function: Function::Reference,
                    request: RESERVE,
                    plan: spike_plan(200.0, 200.0, 0, 0, 10),
                    fleet: aws(),
                    seats: 100,
                    database: DatabaseSpec::Default,
                },
                RunSpec {
                    label: "init per request",
                    description: "lab-functions/module-2-init-per-request: built in the handler",
                    function: Function::Variant("module-2-init-per-request"),
                    request: RESERVE,
                    plan: spike_plan(200.0, 200.0, 0, 0, 10),
                    fleet: aws(),
                    seats: 100,
                    database: DatabaseSpec::Default,
                },
            ],
        },
        Scenario {
            name: "storm",
            title: "A connection storm, and the proxy that tames it",
            intro: "A spike from 50 to 400 fans a second, twice, against PostgreSQL whose database takes at most 16 \
                    connections, like a small RDS instance, with the function's concurrency limited to 60. Each \
                    request also waits 50 ms on another service, outside its transaction \
                    (lab-functions/module-3-with-dependency), so the spike needs about 20 environments at once; every \
                    execution environment keeps its own connection. Directly, the spike's environments ask for more \
                    connections than the database has: the ones turned away wait, then answer 503, and keep trying. \
                    Through PgBouncer in transaction mode (the local stand-in for RDS Proxy), the same environments \
                    share 5 server connections. Needs `cargo workshop db up`.",
            module: Some(3),
            runs: vec![
                RunSpec {
                    label: "direct",
                    description: "each environment connects to PostgreSQL itself",
                    function: Function::Variant("module-3-with-dependency"),
                    request: RESERVE,
                    plan: spike_plan(50.0, 400.0, 3, 8, 14),
                    fleet: FleetOptions {
                        max_concurrency: Some(60),
                        scale_per_second: Some(50.0),
                        ..aws()
                    },
                    seats: 100_000,
                    database: postgres(false, Some(16)),
                },
                RunSpec {
                    label: "through PgBouncer",
                    description: "each environment connects to PgBouncer, which multiplexes them on 5 server connections",
                    function: Function::Variant("module-3-with-dependency"),
                    request: RESERVE,
                    plan: spike_plan(50.0, 400.0, 3, 8, 14),
                    fleet: FleetOptions {
                        max_concurrency: Some(60),
                        scale_per_second: Some(50.0),
                        ..aws()
                    },
                    seats: 100_000,
                    database: postgres(true, Some(16)),
                },
            ],
        },
        Scenario {
            name: "per-request-connect",
            title: "The pool at init, or a connection per request",
            intro: "The same traffic, 300 fans a second for 10 seconds with the function's concurrency limited to 10, \
                    against the reference (one pool per environment, created at init, its connection kept) and against \
                    a build that connects inside the handler for every request \
                    (lab-functions/module-3-connect-per-request). Each request of the second pays a connection: a TCP \
                    handshake and PostgreSQL's SCRAM login (on AWS a TLS handshake too). Longer requests need more \
                    concurrent environments, and past the limit they are throttled. Needs `cargo workshop db up`.",
            module: Some(3),
            runs: vec![
                RunSpec {
                    label: "pool at init",
                    description: "the reference: the connection is opened once per environment",
                    function: Function::Reference,
                    request: RESERVE,
                    plan: spike_plan(300.0, 300.0, 0, 0, 10),
                    fleet: FleetOptions {
                        max_concurrency: Some(10),
                        ..aws()
                    },
                    seats: 100_000,
                    database: postgres(false, None),
                },
                RunSpec {
                    label: "connect per request",
                    description: "lab-functions/module-3-connect-per-request: a new connection for every request",
                    function: Function::Variant("module-3-connect-per-request"),
                    request: RESERVE,
                    plan: spike_plan(300.0, 300.0, 0, 0, 10),
                    fleet: FleetOptions {
                        max_concurrency: Some(10),
                        ..aws()
                    },
                    seats: 100_000,
                    database: postgres(false, None),
                },
            ],
        },
    ]
}

/// The database of one run: `scenario` and `k` name its SQLite file or its
/// PostgreSQL database, created afresh. `None` for modules 1 and 2, which
/// keep their tickets in memory.
pub fn prepare_database(
    module: u32,
    scenario: &str,
    k: usize,
    spec: DatabaseSpec,
    migrator: &std::path::Path,
) -> Result<Option<LabDatabase>, String> {
    match spec {
        DatabaseSpec::Default if module < 3 => Ok(None),
        DatabaseSpec::Default => {
            let dir = crate::invoke::target_dir().join("workshop").join("lab");
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let file = dir.join(format!("{scenario}-{k}.db"));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
            }
            let url = format!("sqlite:{}?mode=rwc", file.display());
            Ok(Some(LabDatabase {
                url: url.clone(),
                direct_url: url,
                watch: None,
                migrator: migrator.to_path_buf(),
            }))
        }
        DatabaseSpec::Postgres {
            through_pgbouncer,
            limit,
        } => {
            if !crate::db::is_up() {
                return Err(
                    "this scenario needs PostgreSQL and PgBouncer: start them with `cargo workshop db up`".into(),
                );
            }
            let tools = crate::db::tools()?;
            let name = format!("lab_{}_{k}", scenario.replace('-', "_"));
            crate::db::create_database(&tools, &name, limit)?;
            Ok(Some(LabDatabase {
                url: crate::db::app_url(&name, through_pgbouncer),
                direct_url: crate::db::app_url(&name, false),
                watch: Some(name),
                migrator: migrator.to_path_buf(),
            }))
        }
    }
}

/// Runs one scenario against module `module`; returns a report per run.
pub async fn run_scenario(
    module: u32,
    scenario: &Scenario,
) -> Result<Vec<crate::report::RunReport>, String> {
    if let Some(only) = scenario.module
        && only != module
    {
        return Err(format!(
            "the {} scenario runs module {only}'s functions: add --module {only}",
            scenario.name
        ));
    }
    let (_, reference) = crate::workspace::packages(module);
    let mut reports = Vec::new();
    let reference_bootstrap = crate::invoke::build_bootstrap(&reference)?;
    for (k, run) in scenario.runs.iter().enumerate() {
        let bootstrap = match run.function {
            Function::Reference => reference_bootstrap.clone(),
            Function::Variant(bin) => crate::invoke::build_binary("lab-functions", bin)?,
        };
        let mut config = LabConfig::new(format!("ticket-drop-{module}"), bootstrap);
        config.fleet = run.fleet.clone();
        config
            .environment
            .insert("EVENTS".into(), format!("midnight-tour:{}", run.seats));
        config.database =
            prepare_database(module, scenario.name, k, run.database, &reference_bootstrap)?;
        let database_limit = match run.database {
            DatabaseSpec::Postgres { limit, .. } => limit,
            DatabaseSpec::Default => None,
        };
        let lab = Lab::start(config, Output::Quiet).await?;
        eprintln!(
            "\nRun {}/{}: {} — {} ({} requests)",
            k + 1,
            scenario.runs.len(),
            run.label,
            run.description,
            run.plan.expected()
        );
        let options = crate::load::LoadOptions {
            target: crate::load::Target {
                url: format!("{}{}", lab.url(), run.request.path),
                method: run.request.method.into(),
                headers: vec![("content-type".into(), "application/json".into())],
                body: run.request.body.map(String::from),
            },
            plan: run.plan.clone(),
            concurrency_cap: None,
            request_timeout: Duration::from_secs(35),
            progress: true,
        };
        let load = crate::load::run(options).await;
        let metrics = lab.recorder.snapshot();
        let memory_mb = lab.config.memory_mb;
        let rest_api = matches!(lab.config.api, Api::Rest { .. });
        lab.stop().await;
        reports.push(crate::report::RunReport {
            label: run.label.into(),
            description: run.description.into(),
            load: load?,
            metrics,
            rest_api,
            memory_mb,
            max_concurrency: run
                .fleet
                .max_concurrency
                .filter(|&c| c < crate::fleet::ACCOUNT_CONCURRENCY),
            seats_on_sale: Some(run.seats),
            database_limit,
            scale_per_second: run.fleet.scale_per_second,
        });
    }
    Ok(reports)
}
