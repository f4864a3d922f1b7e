//! The command line: every command, its arguments and their help.

use clap::{Parser, Subcommand};
use lab::db::DatabaseSpec;
use workshop::steps::Workshop;

/// `serve`'s port: not mdbook's 3000, so the book and the lab run side by side.
pub const SERVE_PORT: u16 = 4000;
#[derive(Parser)]
#[command(
    name = "cargo workshop",
    bin_name = "cargo workshop",
    about = "High-Traffic Serverless with Rust: the runner and the local lab",
    after_help = "Learners: `cargo workshop verify` after each step. The book: book/src (or `mdbook serve book`)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Show your progress, module by module, and what to do next.
    Verify {
        /// Check only this module (a late start: modules open on their own).
        module: Option<u32>,
    },
    /// Build a module's bootstrap and run events through it as Lambda does.
    Invoke(InvokeArgs),
    /// Serve a module's function over HTTP, behind a local API Gateway and a fleet.
    Serve(ServeArgs),
    /// The lab: a scenario of traffic against a module's reference, with a report and charts.
    Lab {
        /// The module (default: the newest that runs the scenario).
        #[arg(long)]
        module: Option<u32>,
        #[arg(long, default_value = "flash-sale", help = crate::commands::lab::scenario_help(&Workshop::load()))]
        scenario: String,
        /// Where to write the chart page (default: target/workshop/lab/SCENARIO.html).
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
        /// Where module 4 on keeps its secrets: the lab's Secrets Manager, or a moto server (TEST_SECRETS_URL's, or one it starts).
        #[arg(long, value_enum, default_value_t = crate::commands::lab::SecretsAt::Lab)]
        secrets: crate::commands::lab::SecretsAt,
    },
    /// Send open-loop traffic to a URL (the lab's or a real API Gateway's) and report.
    Load(LoadArgs),
    /// Run a module's bootstrap at each memory size, with its CPU share, and pick a size (module 5).
    Tune(TuneArgs),
    /// The last traces a traced run recorded (module 4 on), as trees.
    Traces {
        /// How many, newest last.
        #[arg(long, default_value_t = 3)]
        last: usize,
    },
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
    /// A throwaway PostgreSQL and a PgBouncer (the RDS Proxy stand-in), for the modules with a database.
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
    CheckProgression {
        /// Check only this module (the others take minutes each).
        module: Option<u32>,
    },
    /// The book's preprocessor (run by mdbook).
    #[command(hide = true)]
    Mdbook {
        #[arg(num_args = 0..)]
        args: Vec<String>,
    },
}

#[derive(clap::Args, Debug)]
pub struct TuneArgs {
    /// The module (2 on: its function answers through API Gateway; 1 is invoked directly).
    pub module: u32,
    /// Tune the reference solution instead of your crate.
    #[arg(long)]
    pub solution: bool,
    /// The memory sizes, in MB (Lambda: 128 to 10240).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "128,256,512,1024,1769,3008"
    )]
    pub memory: Vec<u32>,
    /// Invocations per size (Power Tuning's num).
    #[arg(long, default_value_t = 50)]
    pub invocations: usize,
    /// The strategy whose pick to name: cost, speed, or balanced (cost and speed weighed equally).
    #[arg(long, value_enum, default_value_t = TuneStrategy::Balanced)]
    pub strategy: TuneStrategy,
    /// Every invocation on a new environment, INIT included (Power Tuning's onlyColdStarts).
    #[arg(long)]
    pub cold_starts: bool,
    /// Where to write the chart (default: target/workshop/lab/tune.html).
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TuneStrategy {
    Cost,
    Speed,
    Balanced,
}

#[derive(Subcommand, Debug)]
pub enum DbAction {
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
    /// Apply the schema of the newest module with a database and put the
    /// events on sale (EVENTS, default midnight-tour:100), with its
    /// reference's `migrate` command.
    Migrate {
        /// The database, directly: migrations take session locks that a
        /// proxy in transaction mode cannot keep. Such as
        /// postgres://user:password@host:5432/db or sqlite:tickets.db?mode=rwc.
        #[arg(long)]
        url: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DatabaseKind {
    /// A SQLite file under target/workshop/lab.
    Sqlite,
    /// The PostgreSQL of `cargo workshop db up`, directly.
    Postgres,
    /// The same PostgreSQL through PgBouncer, the local RDS Proxy.
    Pgbouncer,
}

impl DatabaseKind {
    pub fn spec(self) -> DatabaseSpec {
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
pub enum ApiKind {
    /// HTTP API, payload format 2.0.
    Http,
    /// REST API, payload format 1.0, on a stage.
    Rest,
}

#[derive(clap::Args, Debug)]
pub struct InvokeArgs {
    /// The module number.
    pub module: u32,
    /// Run the reference solution instead of your crate.
    #[arg(long)]
    pub solution: bool,
    /// The event: a JSON file, or - for standard input. Default: the module's sample event.
    #[arg(long, value_name = "FILE|-")]
    pub event: Option<String>,
    /// Invoke this many times; the environment stays warm between them.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub repeat: u32,
    /// Memory size in MB (128 to 10240).
    #[arg(long, default_value_t = 128, value_name = "MB")]
    pub memory: u32,
    /// Function timeout in seconds.
    #[arg(long, default_value_t = 3.0, value_name = "S")]
    pub timeout: f64,
    /// A function environment variable, as KEY=VALUE (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub environment: Vec<(String, String)>,
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The module number (2 or later: module 1 is not an HTTP function).
    pub module: u32,
    /// Serve the reference solution instead of your crate.
    #[arg(long)]
    pub solution: bool,
    /// Which API Gateway to stand in for.
    #[arg(long, value_enum, default_value_t = ApiKind::Http)]
    pub api: ApiKind,
    /// The REST API's stage: its URLs start with /STAGE.
    #[arg(long, default_value = "prod")]
    pub stage: String,
    /// The port to listen on (127.0.0.1).
    #[arg(long, default_value_t = SERVE_PORT, value_name = "P")]
    pub port: u16,
    /// The function's concurrency limit (default: the account's 1,000): more invocations at once are throttled.
    #[arg(long, value_name = "C")]
    pub max_concurrency: Option<usize>,
    /// Environments initialised before traffic (provisioned concurrency).
    #[arg(long, default_value_t = 0, value_name = "K")]
    pub provisioned: usize,
    /// The gateway's steady rate, in requests a second (with --burst).
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// The gateway's burst (with --rate).
    #[arg(long, value_name = "B")]
    pub burst: Option<u32>,
    /// REST only: the API key clients must send in x-api-key.
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Memory size in MB (128 to 10240).
    #[arg(long, default_value_t = 128, value_name = "MB")]
    pub memory: u32,
    /// Function timeout in seconds.
    #[arg(long, default_value_t = 3.0, value_name = "S")]
    pub timeout: f64,
    /// For a module that needs a database: where the tickets are, created afresh and migrated
    /// before the first request. postgres and pgbouncer need `cargo workshop db up`.
    #[arg(long, value_enum, default_value_t = DatabaseKind::Sqlite)]
    pub database: DatabaseKind,
    /// A function environment variable, as KEY=VALUE (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub environment: Vec<(String, String)>,
    /// Serve this prebuilt bootstrap instead of building the module's.
    #[arg(long, hide = true)]
    pub bootstrap: Option<std::path::PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// The full URL, such as http://127.0.0.1:4000/health.
    #[arg(long)]
    pub url: String,
    /// A constant rate, in requests a second.
    #[arg(long, value_name = "R", conflicts_with = "ramp")]
    pub rate: Option<f64>,
    /// A linear ramp of requests a second, such as 10..200.
    #[arg(long, value_name = "A..B")]
    pub ramp: Option<String>,
    /// How long to send, such as 30s or 2m.
    #[arg(long, default_value = "10s", value_name = "D")]
    pub duration: String,
    /// A spike AT:RATE:LENGTH on top, such as 5s:500:3s (repeatable).
    #[arg(long, value_name = "AT:RATE:LENGTH")]
    pub spike: Vec<String>,
    /// At most this many requests in flight; requests due beyond it are dropped and counted.
    #[arg(long, value_name = "N")]
    pub concurrency_cap: Option<usize>,
    /// The HTTP method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// A header, as 'Name: value' (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// The body; {seq} becomes the request's sequence number.
    #[arg(long)]
    pub body: Option<String>,
    /// Print the summary as one JSON object (for scripts).
    #[arg(long)]
    pub json: bool,
}

pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}
