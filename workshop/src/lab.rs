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
        let fleet = Fleet::start(function, config.fleet.clone(), log_tx, recorder.clone()).await?;

        let mut options = GatewayOptions::new(config.api.clone());
        options.throttle = config.throttle;
        options.api_key = config.api_key.clone();
        if let Some(t) = config.integration_timeout {
            options.integration_timeout = t;
        }
        let gateway = Gateway::new(fleet.clone(), options, recorder.clone(), access_tx);
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
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub title: &'static str,
    pub intro: &'static str,
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

/// The scenarios the lab knows, by name.
pub fn scenarios() -> Vec<Scenario> {
    let aws = FleetOptions::aws_defaults;
    vec![
        Scenario {
            name: "flash-sale",
            title: "Flash sale: a spike of fans on the ticket drop",
            intro: "Fans arrive at 50 a second, then 800 a second for 10 seconds when the sale opens, then 50 again. \
                    Each one asks for one seat of the 100 on sale. The fleet starts environments as the spike needs them \
                    (cold starts) and reuses them after; watch how many environments a fast function needs, \
                    and how many seats an in-memory stock sells.",
            runs: vec![RunSpec {
                label: "the reference function",
                description: "HTTP API; the account's concurrency limit of 1,000; the lab scales by 20 environments a second",
                function: Function::Reference,
                request: RESERVE,
                plan: spike_plan(50.0, 800.0, 5, 10, 20),
                fleet: aws(),
                seats: 100,
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
                    a database connection, doing it per request costs time as well (module 3).",
            runs: vec![
                RunSpec {
                    label: "init once",
                    description: "the reference: built in main, borrowed by every request",
                    function: Function::Reference,
                    request: RESERVE,
                    plan: spike_plan(200.0, 200.0, 0, 0, 10),
                    fleet: aws(),
                    seats: 100,
                },
                RunSpec {
                    label: "init per request",
                    description: "lab-functions/module-2-init-per-request: built in the handler",
                    function: Function::Variant("module-2-init-per-request"),
                    request: RESERVE,
                    plan: spike_plan(200.0, 200.0, 0, 0, 10),
                    fleet: aws(),
                    seats: 100,
                },
            ],
        },
    ]
}

/// Runs one scenario against module `module`'s reference; returns a report
/// per run.
pub async fn run_scenario(
    module: u32,
    scenario: &Scenario,
) -> Result<Vec<crate::report::RunReport>, String> {
    let (_, reference) = crate::workspace::packages(module);
    let mut reports = Vec::new();
    for (k, run) in scenario.runs.iter().enumerate() {
        let bootstrap = match run.function {
            Function::Reference => crate::invoke::build_bootstrap(&reference)?,
            Function::Variant(bin) => crate::invoke::build_binary("lab-functions", bin)?,
        };
        let mut config = LabConfig::new(format!("ticket-drop-{module}"), bootstrap);
        config.fleet = run.fleet.clone();
        config
            .environment
            .insert("EVENTS".into(), format!("midnight-tour:{}", run.seats));
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
        });
    }
    Ok(reports)
}
