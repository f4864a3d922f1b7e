//! `cargo workshop`: the learner's runner and the local Lambda lab.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use workshop::apigw::Api;
use workshop::fleet::{self, FleetOptions};
use workshop::generate::{self, Variant};
use workshop::invoke::{self, Flavour, InvokeOptions};
use workshop::lab::{Lab, LabConfig, Output};
use workshop::steps::Workshop;
use workshop::{book, doctor, load, runner, workspace};

/// `serve`'s port: not mdbook's 3000, so the book and the lab run side by side.
const SERVE_PORT: u16 = 4000;
#[derive(Parser)]
#[command(
    name = "cargo workshop",
    bin_name = "cargo workshop",
    about = "High-Traffic Serverless with Rust: the runner and the local lab",
    after_help = "Learners: `cargo workshop verify` after each step. The book: book/src (or `mdbook serve book`)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show your progress, module by module, and what to do next.
    Verify {
        /// Check only this module (a late start: modules open on their own).
        module: Option<u32>,
    },
    /// Build a module's bootstrap and run events through it as Lambda does.
    Invoke {
        /// The module number.
        module: u32,
        /// Run the reference solution instead of your crate.
        #[arg(long)]
        solution: bool,
        /// The event: a JSON file, or - for standard input. Default: the module's sample event.
        #[arg(long, value_name = "FILE|-")]
        event: Option<String>,
        /// Invoke this many times; the environment stays warm between them.
        #[arg(long, default_value_t = 1, value_name = "K")]
        repeat: u32,
        /// Memory size in MB (128 to 10240).
        #[arg(long, default_value_t = 128, value_name = "MB")]
        memory: u32,
        /// Function timeout in seconds.
        #[arg(long, default_value_t = 3.0, value_name = "S")]
        timeout: f64,
        /// A function environment variable, as KEY=VALUE (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        environment: Vec<(String, String)>,
    },
    /// Serve a module's function over HTTP, behind a local API Gateway and a fleet.
    Serve(ServeArgs),
    /// The lab: a scenario of traffic against a module's reference, with a report and charts.
    Lab {
        /// The module (default: the scenario's own, or the newest HTTP module).
        #[arg(long)]
        module: Option<u32>,
        #[arg(long, default_value = "flash-sale", help = workshop::lab::scenario_help())]
        scenario: String,
        /// Where to write the chart page (default: target/workshop/lab/SCENARIO.html).
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
    /// Send open-loop traffic to a URL (the lab's or a real API Gateway's) and report.
    Load(LoadArgs),
    /// Replace a module's crate with the reference solution (your code is backed up).
    Solve {
        /// The module number.
        module: u32,
    },
    /// Restore a module's crate to the starter (your code is backed up).
    Reset {
        /// The module number.
        module: u32,
    },
    /// Check this machine for what each module needs.
    Doctor,
    /// A throwaway PostgreSQL and a PgBouncer for module 3 (the RDS Proxy stand-in).
    Db {
        #[command(subcommand)]
        action: DbAction,
    },
    /// Derive the learner crates from the solutions.
    Generate {
        /// Fail if a learner crate differs from what the solution generates.
        #[arg(long)]
        check: bool,
    },
    /// For CI: every learner crate compiles and every step fails on the starter.
    CheckStarters,
    /// For CI: filling the gaps step by step turns each step green in turn.
    CheckProgression,
    /// The book's preprocessor (run by mdbook).
    #[command(hide = true)]
    Mdbook {
        #[arg(num_args = 0..)]
        args: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum DbAction {
    /// Start them (creating the cluster the first time) and print their URLs.
    Up {
        /// PostgreSQL's max_connections (the storm scenario limits its own
        /// database further, like a small RDS instance).
        #[arg(long, default_value_t = 100)]
        max_connections: u32,
        /// Server connections PgBouncer keeps per database and user.
        #[arg(long, default_value_t = 5)]
        pool_size: u32,
    },
    /// Stop them (the cluster's files stay for next time).
    Down,
    /// Say whether they run, and where.
    Status,
    /// Apply module 3's schema and put the events on sale (EVENTS, default
    /// midnight-tour:100), with the reference's `migrate` command.
    Migrate {
        /// The database, directly: migrations take session locks that a
        /// proxy in transaction mode cannot keep. Such as
        /// postgres://user:password@host:5432/db or sqlite:tickets.db?mode=rwc.
        #[arg(long)]
        url: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum DatabaseKind {
    /// A SQLite file under target/workshop/lab.
    Sqlite,
    /// The PostgreSQL of `cargo workshop db up`, directly.
    Postgres,
    /// The same PostgreSQL through PgBouncer, the local RDS Proxy.
    Pgbouncer,
}

impl DatabaseKind {
    fn spec(self) -> workshop::lab::DatabaseSpec {
        use workshop::lab::DatabaseSpec;
        match self {
            DatabaseKind::Sqlite => DatabaseSpec::Default,
            DatabaseKind::Postgres => DatabaseSpec::Postgres {
                through_pgbouncer: false,
                limit: None,
            },
            DatabaseKind::Pgbouncer => DatabaseSpec::Postgres {
                through_pgbouncer: true,
                limit: None,
            },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ApiKind {
    /// HTTP API, payload format 2.0.
    Http,
    /// REST API, payload format 1.0, on a stage.
    Rest,
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// The module number (2 or later: module 1 is not an HTTP function).
    module: u32,
    /// Serve the reference solution instead of your crate.
    #[arg(long)]
    solution: bool,
    /// Which API Gateway to stand in for.
    #[arg(long, value_enum, default_value_t = ApiKind::Http)]
    api: ApiKind,
    /// The REST API's stage: its URLs start with /STAGE.
    #[arg(long, default_value = "prod")]
    stage: String,
    /// The port to listen on (127.0.0.1).
    #[arg(long, default_value_t = SERVE_PORT, value_name = "P")]
    port: u16,
    /// The function's concurrency limit (default: the account's 1,000): more invocations at once are throttled.
    #[arg(long, value_name = "C")]
    max_concurrency: Option<usize>,
    /// Environments initialised before traffic (provisioned concurrency).
    #[arg(long, default_value_t = 0, value_name = "K")]
    provisioned: usize,
    /// The gateway's steady rate, in requests a second (with --burst).
    #[arg(long, value_name = "R")]
    rate: Option<f64>,
    /// The gateway's burst (with --rate).
    #[arg(long, value_name = "B")]
    burst: Option<u32>,
    /// REST only: the API key clients must send in x-api-key.
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,
    /// Memory size in MB (128 to 10240).
    #[arg(long, default_value_t = 128, value_name = "MB")]
    memory: u32,
    /// Function timeout in seconds.
    #[arg(long, default_value_t = 3.0, value_name = "S")]
    timeout: f64,
    /// Module 3 on: where the tickets are, created afresh and migrated
    /// before the first request. postgres and pgbouncer need `cargo workshop db up`.
    #[arg(long, value_enum, default_value_t = DatabaseKind::Sqlite)]
    database: DatabaseKind,
    /// A function environment variable, as KEY=VALUE (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    environment: Vec<(String, String)>,
    /// Serve this prebuilt bootstrap instead of building the module's.
    #[arg(long, hide = true)]
    bootstrap: Option<std::path::PathBuf>,
}

#[derive(clap::Args, Debug)]
struct LoadArgs {
    /// The full URL, such as http://127.0.0.1:4000/health.
    #[arg(long)]
    url: String,
    /// A constant rate, in requests a second.
    #[arg(long, value_name = "R", conflicts_with = "ramp")]
    rate: Option<f64>,
    /// A linear ramp of requests a second, such as 10..200.
    #[arg(long, value_name = "A..B")]
    ramp: Option<String>,
    /// How long to send, such as 30s or 2m.
    #[arg(long, default_value = "10s", value_name = "D")]
    duration: String,
    /// A spike AT:RATE:LENGTH on top, such as 5s:500:3s (repeatable).
    #[arg(long, value_name = "AT:RATE:LENGTH")]
    spike: Vec<String>,
    /// At most this many requests in flight; requests due beyond it are dropped and counted.
    #[arg(long, value_name = "N")]
    concurrency_cap: Option<usize>,
    /// The HTTP method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// A header, as 'Name: value' (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// The body; {seq} becomes the request's sequence number.
    #[arg(long)]
    body: Option<String>,
    /// Print the summary as one JSON object (for scripts).
    #[arg(long)]
    json: bool,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let workshop = Workshop::load();
    match run(cli.command, &workshop) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, workshop: &Workshop) -> Result<ExitCode, String> {
    match command {
        Command::Verify { module } => {
            if let Some(n) = module {
                workshop.module(n)?;
            }
            Ok(exit(runner::verify(workshop, module)?))
        }
        Command::Invoke {
            module,
            solution,
            event,
            repeat,
            memory,
            timeout,
            environment,
        } => {
            if !(timeout.is_finite() && timeout > 0.0) {
                return Err("--timeout must be a positive number of seconds".into());
            }
            let options = InvokeOptions {
                module,
                flavour: if solution {
                    Flavour::Solution
                } else {
                    Flavour::Learner
                },
                event,
                repeat,
                memory_mb: memory,
                timeout: Duration::from_secs_f64(timeout.min(invoke::MAX_TIMEOUT_SECS + 1.0)),
                environment: environment.into_iter().collect::<BTreeMap<_, _>>(),
            };
            let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            let failed = runtime.block_on(invoke::run(workshop, &options))?;
            Ok(exit(failed == 0))
        }
        Command::Serve(args) => {
            let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            runtime.block_on(serve(workshop, args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Lab {
            module,
            scenario,
            out,
        } => {
            let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            runtime.block_on(lab(workshop, module, &scenario, out))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Load(args) => {
            let options = load_options(&args)?;
            let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            eprintln!(
                "Sending {} requests to {} over {:.0} s (open loop: on schedule, whatever the answers)…",
                options.plan.expected(),
                options.target.url,
                options.plan.duration.as_secs_f64()
            );
            let report = runtime.block_on(load::run(options))?;
            if args.json {
                println!("{}", report.json());
            } else {
                println!("{}", report.summary());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Solve { module } => {
            let module = workshop.module(module)?;
            let saved = generate::replace_learner(&workspace::root(), module, Variant::Solved)?;
            let n = module.number;
            println!("modules/module-{n} now holds the reference solution.");
            match saved {
                Some(path) => println!(
                    "Your code is kept in {}: copy back what you want from there.",
                    relative(&path)
                ),
                None => {
                    println!("(It held untouched generated code, so there was nothing to keep.)")
                }
            }
            println!(
                "`cargo workshop reset {n}` brings the starter back; `cargo workshop verify` shows where you are."
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Reset { module } => {
            let module = workshop.module(module)?;
            let saved = generate::replace_learner(&workspace::root(), module, Variant::Starter)?;
            let n = module.number;
            println!("modules/module-{n} is back to the starter.");
            if let Some(path) = saved {
                println!("What it held is kept in {}.", relative(&path));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor => Ok(exit(doctor::run())),
        Command::Db { action } => {
            match action {
                DbAction::Up {
                    max_connections,
                    pool_size,
                } => {
                    let urls = workshop::db::up(max_connections, pool_size)?;
                    println!(
                        "PostgreSQL: {} (max_connections {max_connections})",
                        urls.postgres
                    );
                    println!(
                        "PgBouncer:  {} (transaction mode, {pool_size} server connections)",
                        urls.pgbouncer
                    );
                    println!(
                        "The lab's module 3 scenarios use them; to run module 3's suite on them:"
                    );
                    println!(
                        "  export TEST_POSTGRES={} TEST_PGBOUNCER={}",
                        urls.postgres, urls.pgbouncer
                    );
                    println!("`cargo workshop db down` stops them.");
                }
                DbAction::Migrate { url } => {
                    if !(url.starts_with("sqlite:")
                        || url.starts_with("postgres://")
                        || url.starts_with("postgresql://"))
                    {
                        return Err("--url must start with sqlite: or postgres://".into());
                    }
                    let (_, reference) = workspace::packages(3);
                    let migrator = invoke::build_bootstrap(&reference)?;
                    let environment: BTreeMap<String, String> = std::env::var("EVENTS")
                        .ok()
                        .map(|events| ("EVENTS".to_string(), events))
                        .into_iter()
                        .collect();
                    workshop::lab::migrate(&migrator, &environment, &url)?;
                    println!("Schema applied, events on sale.");
                }
                DbAction::Down => {
                    workshop::db::down()?;
                    println!("PostgreSQL and PgBouncer are stopped.");
                }
                DbAction::Status => {
                    if workshop::db::is_up() {
                        println!(
                            "running: PostgreSQL {} and PgBouncer on port {}",
                            workshop::db::admin_url(),
                            workshop::db::PGBOUNCER_PORT
                        );
                    } else {
                        println!("not running (`cargo workshop db up` starts them)");
                        match workshop::db::tools() {
                            Ok(_) => println!("PostgreSQL and PgBouncer are installed."),
                            Err(why) => println!("{why}"),
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Generate { check } => {
            let mut drifted = Vec::new();
            for module in &workshop.modules {
                let n = module.number;
                let root = workspace::root();
                let files = generate::learner_files(&root, module)?;
                let dir = workspace::learner_dir(&root, n);
                if check {
                    let problems = generate::drift(&dir, &files)?;
                    if !problems.is_empty() {
                        drifted.push(format!("modules/module-{n}: {}", problems.join(", ")));
                    }
                } else {
                    generate::write(&dir, &files)?;
                    println!(
                        "modules/module-{n}: {} files generated from solutions/module-{n}",
                        files.len()
                    );
                }
            }
            if drifted.is_empty() {
                if check {
                    println!("Every learner crate matches what its solution generates.");
                }
                Ok(ExitCode::SUCCESS)
            } else {
                Err(format!(
                    "learner crates drifted from their solutions:\n  {}\nEdit the solution, then run `cargo workshop generate`.",
                    drifted.join("\n  ")
                ))
            }
        }
        Command::CheckStarters => {
            runner::check_starters(workshop)?;
            println!("Every learner crate compiles, and every step is red on the starter.");
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckProgression => {
            runner::check_progression(workshop)?;
            println!(
                "Step by step, each filled gap turns its step green, and no later gap holds it back."
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Mdbook { args } => {
            if args.first().map(String::as_str) == Some("supports") {
                return Ok(ExitCode::SUCCESS);
            }
            let mut input = String::new();
            std::io::stdin()
                .read_to_string(&mut input)
                .map_err(|e| e.to_string())?;
            print!("{}", book::preprocess(&input, workshop)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn lab(
    workshop: &Workshop,
    module: Option<u32>,
    name: &str,
    out: Option<std::path::PathBuf>,
) -> Result<(), String> {
    let scenarios = workshop::lab::scenarios();
    let scenario = scenarios.iter().find(|s| s.name == name).ok_or_else(|| {
        let names: Vec<&str> = scenarios.iter().map(|s| s.name).collect();
        format!(
            "there is no scenario {name:?}: the scenarios are {}",
            names.join(", ")
        )
    })?;
    let module = match module.or(scenario.module) {
        Some(n) => {
            let m = workshop.module(n)?;
            if !m.http {
                return Err(format!(
                    "module {n} is invoked directly, not over HTTP: the lab starts at module 2 (`cargo workshop invoke {n}` runs module {n})"
                ));
            }
            m
        }
        None => workshop
            .modules
            .iter()
            .rev()
            .find(|m| m.http)
            .ok_or("no module answers over HTTP yet")?,
    };
    let functions = if scenario
        .runs
        .iter()
        .any(|r| matches!(r.function, workshop::lab::Function::Variant(_)))
    {
        "the reference solution beside a variant from workshop/lab-functions"
    } else {
        "the reference solution"
    };
    eprintln!("{} (module {}, {functions})", scenario.title, module.number);
    let runs = workshop::lab::run_scenario(module.number, scenario).await?;
    println!("\n{}\n", scenario.title);
    for run in &runs {
        println!("{}", run.text());
    }
    let path = out.unwrap_or_else(|| {
        invoke::target_dir()
            .join("workshop")
            .join("lab")
            .join(format!("{}.html", scenario.name))
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let page = workshop::report::html(scenario.title, scenario.intro, &runs);
    std::fs::write(&path, page).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("Charts: {}", path.display());
    Ok(())
}

fn load_options(args: &LoadArgs) -> Result<load::LoadOptions, String> {
    let shape = match (&args.rate, &args.ramp) {
        (Some(r), None) if r.is_finite() && *r > 0.0 => load::Shape::Constant(*r),
        (Some(_), None) => {
            return Err("--rate must be a positive number of requests a second".into());
        }
        (None, Some(ramp)) => load::parse_ramp(ramp)?,
        (None, None) => return Err("say how fast: --rate R or --ramp A..B".into()),
        (Some(_), Some(_)) => unreachable!("clap refuses both"),
    };
    let duration = load::parse_duration(&args.duration)?;
    if duration.is_zero() {
        return Err("--duration must be more than 0".into());
    }
    let spikes = args
        .spike
        .iter()
        .map(|s| load::parse_spike(s))
        .collect::<Result<Vec<_>, _>>()?;
    let headers = args
        .headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| format!("--header {h:?}: expected 'Name: value'"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if args.concurrency_cap == Some(0) {
        return Err("--concurrency-cap must be at least 1".into());
    }
    Ok(load::LoadOptions {
        target: load::Target {
            url: args.url.clone(),
            method: args.method.clone(),
            headers,
            body: args.body.clone(),
        },
        plan: load::Plan {
            shape,
            spikes,
            duration,
        },
        concurrency_cap: args.concurrency_cap,
        request_timeout: Duration::from_secs(35),
        progress: !args.json,
    })
}

/// Checks the arguments of `serve` and builds the lab they describe.
fn serve_config(workshop: &Workshop, args: &ServeArgs) -> Result<(LabConfig, Flavour), String> {
    let module = workshop.module(args.module)?;
    if !module.http {
        return Err(format!(
            "module {} is invoked directly, not over HTTP: use `cargo workshop invoke {}`",
            args.module, args.module
        ));
    }
    if !invoke::MEMORY_RANGE.contains(&args.memory) {
        return Err(format!(
            "--memory {} is outside Lambda's range of 128 to 10240 MB",
            args.memory
        ));
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= invoke::MAX_TIMEOUT_SECS)
    {
        return Err("--timeout must be more than 0 and at most 900 seconds".into());
    }
    let api = match args.api {
        ApiKind::Http => Api::Http,
        ApiKind::Rest => {
            if args.stage.is_empty()
                || !args
                    .stage
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(format!(
                    "--stage {:?}: letters, digits, - and _ only",
                    args.stage
                ));
            }
            Api::Rest {
                stage: args.stage.clone(),
            }
        }
    };
    if args.database != DatabaseKind::Sqlite {
        if args.module < 3 {
            return Err(format!(
                "module {} keeps its tickets in memory: --database is for module 3 on",
                args.module
            ));
        }
        if args.environment.iter().any(|(k, _)| k == "DATABASE_URL") {
            return Err(
                "--database and --env DATABASE_URL=... say the same thing: give one".into(),
            );
        }
    }
    if args.api_key.is_some() && args.api != ApiKind::Rest {
        return Err("API keys and usage plans are a REST API feature: add --api rest".into());
    }
    let throttle = match (args.rate, args.burst) {
        (None, None) => None,
        (Some(rate), Some(burst)) if rate > 0.0 && rate.is_finite() && burst >= 1 => {
            Some((rate, burst))
        }
        (Some(_), Some(_)) => return Err("--rate must be above 0 and --burst at least 1".into()),
        _ => {
            return Err(
                "give --rate and --burst together, as API Gateway's throttling does".into(),
            );
        }
    };
    if args.max_concurrency == Some(0) {
        return Err(
            "--max-concurrency 0 would throttle every request; leave it out for no limit".into(),
        );
    }
    if let Some(max) = args.max_concurrency
        && args.provisioned > max
    {
        return Err(format!(
            "--provisioned {} is above --max-concurrency {max}",
            args.provisioned
        ));
    }
    let flavour = if args.solution {
        Flavour::Solution
    } else {
        Flavour::Learner
    };
    let mut config = LabConfig::new(
        format!("ticket-drop-{}", args.module),
        std::path::PathBuf::new(),
    );
    config.memory_mb = args.memory;
    config.timeout = Duration::from_secs_f64(args.timeout);
    config.environment = args.environment.iter().cloned().collect();
    config.fleet = FleetOptions {
        max_concurrency: args.max_concurrency.or(Some(fleet::ACCOUNT_CONCURRENCY)),
        provisioned: args.provisioned,
        ..FleetOptions::aws_defaults()
    };
    config.api = api;
    config.throttle = throttle;
    config.api_key = args.api_key.clone();
    config.port = args.port;
    Ok((config, flavour))
}

async fn serve(workshop: &Workshop, args: ServeArgs) -> Result<(), String> {
    use workshop::report::count;
    let (mut config, flavour) = serve_config(workshop, &args)?;
    let (learner, reference) = workspace::packages(args.module);
    let package = if flavour == Flavour::Solution {
        reference.clone()
    } else {
        learner
    };
    config.bootstrap = match &args.bootstrap {
        Some(path) => path.clone(),
        None => invoke::build_bootstrap(&package)?,
    };
    if args.module >= 3 && !config.environment.contains_key("DATABASE_URL") {
        // The schema and the events on sale come from the reference's
        // `migrate` command: the same whatever state the learner's crate is in.
        let migrator = invoke::build_bootstrap(&reference)?;
        config.database = workshop::lab::prepare_database(
            args.module,
            "serve",
            0,
            args.database.spec(),
            &migrator,
        )?
        .map(|mut database| {
            database.watch = None;
            database
        });
    }
    let lab = Lab::start(config, Output::Print).await?;
    let url = lab.url();
    let which = if flavour == Flavour::Solution {
        "the reference solution"
    } else {
        "your crate"
    };
    let api = match &lab.config.api {
        Api::Http => "an HTTP API (payload 2.0)".to_string(),
        Api::Rest { stage } => format!("a REST API (payload 1.0), stage {stage}"),
    };
    eprintln!("\nModule {} ({which}) behind {api}: {url}", args.module);
    if lab.config.database.is_some() {
        let tickets = match args.database {
            DatabaseKind::Sqlite => "a fresh SQLite file, target/workshop/lab/serve-0.db",
            DatabaseKind::Postgres => "a fresh PostgreSQL database, lab_serve_0, directly",
            DatabaseKind::Pgbouncer => {
                "a fresh PostgreSQL database, lab_serve_0, through PgBouncer"
            }
        };
        eprintln!("  tickets in {tickets}");
    }
    let key = lab
        .config
        .api_key
        .as_ref()
        .map(|k| format!(" -H 'x-api-key: {k}'"))
        .unwrap_or_default();
    eprintln!("  curl -i{key} {url}/events/midnight-tour");
    eprintln!(
        "  curl -i{key} -X POST {url}/events/midnight-tour/reservations -H 'content-type: application/json' -d '{{\"customer_id\":\"c-1\",\"quantity\":2}}'"
    );
    let limit = lab
        .config
        .fleet
        .max_concurrency
        .map_or("no concurrency limit".to_string(), |c| {
            format!("concurrency limit {c}")
        });
    let throttle = lab
        .config
        .throttle
        .map_or("no gateway throttling".to_string(), |(r, b)| {
            format!("gateway {r} req/s, burst {b}")
        });
    eprintln!(
        "  {limit}, {} provisioned, {throttle}; access log on stdout, function logs on stderr",
        lab.config.fleet.provisioned
    );
    eprintln!("Ctrl-C stops the gateway and every environment.\n");
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("cannot wait for Ctrl-C: {e}"))?;
    let snapshot = lab.recorder.snapshot();
    lab.stop().await;
    eprintln!(
        "\nStopped. {} ({} throttled by the gateway), {}, {}, {} throttled by Lambda, peak concurrency {}.",
        count(snapshot.requests.len(), "request", "requests"),
        snapshot
            .requests
            .iter()
            .filter(|r| r.gateway_throttled)
            .count(),
        count(snapshot.invocations.len(), "invocation", "invocations"),
        count(snapshot.cold_starts(), "cold start", "cold starts"),
        snapshot.all_throttles(),
        snapshot.peak_concurrency()
    );
    Ok(())
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn relative(path: &std::path::Path) -> String {
    path.strip_prefix(workspace::root())
        .unwrap_or(path)
        .display()
        .to_string()
}
