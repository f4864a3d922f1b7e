//! The lab's scenarios: traffic of a known shape against a module's
//! reference and the variants beside it, one run after another, each with
//! a fresh fleet, a fresh stock and a report.
//!
//! Which modules run which scenario is written in `steps.toml`; a scenario
//! itself knows nothing of module numbers: it is handed the binaries to run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::apigw::Api;
use crate::db::DatabaseSpec;
use crate::fleet::{FleetOptions, ProvisionedScaling, TargetTracking};
use crate::load;
use crate::report::RunReport;
use crate::stack::{Lab, LabConfig, Output};

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
    pub plan: load::Plan,
    pub fleet: FleetOptions,
    /// Seats on sale (the function's EVENTS): midnight-tour:SEATS.
    pub seats: u64,
    pub database: DatabaseSpec,
    /// Behind a REST API (which X-Ray traces) rather than an HTTP API.
    pub rest_api: bool,
    /// `SECRETS_TTL_SECONDS` for a function that reads secrets.
    pub secrets_ttl: Option<u64>,
    /// Rotate the ticket signing key this far into the run.
    pub rotate_key_at: Option<Duration>,
    /// The function's memory size; `None` for the lab's default (128 MB).
    pub memory_mb: Option<u32>,
    /// Each environment held to its memory size's CPU share, where the OS
    /// can enforce it.
    pub cpu_share: bool,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub title: &'static str,
    pub intro: &'static str,
    pub runs: Vec<RunSpec>,
}

fn spike_plan(base: f64, peak: f64, at: u64, length: u64, total: u64) -> load::Plan {
    load::Plan {
        shape: load::Shape::Constant(base),
        spikes: vec![load::Spike {
            at: Duration::from_secs(at),
            rate: peak,
            length: Duration::from_secs(length),
        }],
        duration: Duration::from_secs(total),
    }
}

fn ramp_plan(from: f64, to: f64, total: u64) -> load::Plan {
    load::Plan {
        shape: load::Shape::Ramp(from, to),
        spikes: vec![],
        duration: Duration::from_secs(total),
    }
}

/// The memory size module 5's scenarios run at: the cheapest size its
/// tuning found (`cargo workshop tune 5`, step 5.6).
pub const SPIKE_MEMORY_MB: u32 = 512;

/// A run of module 5's drop: 20 fans a second, 400 a second for 4 s from
/// 5 s, 20 again until 14 s, each environment held to its CPU share.
fn drop_run(
    label: &'static str,
    description: &'static str,
    function: Function,
    fleet: FleetOptions,
    memory_mb: u32,
) -> RunSpec {
    RunSpec {
        label,
        description,
        function,
        request: RESERVE,
        plan: spike_plan(20.0, 400.0, 5, 4, 14),
        fleet,
        seats: 100_000,
        database: DatabaseSpec::Default,
        rest_api: false,
        secrets_ttl: None,
        rotate_key_at: None,
        memory_mb: Some(memory_mb),
        cpu_share: true,
    }
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
            runs: vec![RunSpec {
                label: "the reference function",
                description: "HTTP API; the account's concurrency limit of 1,000; the lab scales by 20 environments a second",
                function: Function::Reference,
                request: RESERVE,
                plan: spike_plan(50.0, 800.0, 5, 10, 20),
                fleet: aws(),
                seats: 2_000,
                database: DatabaseSpec::Default,
                rest_api: false,
                secrets_ttl: None,
                rotate_key_at: None,
                memory_mb: None,
                cpu_share: false,
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
                    database: DatabaseSpec::Default,
                    rest_api: false,
                    secrets_ttl: None,
                    rotate_key_at: None,
                    memory_mb: None,
                    cpu_share: false,
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
                    rest_api: false,
                    secrets_ttl: None,
                    rotate_key_at: None,
                    memory_mb: None,
                    cpu_share: false,
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
                    rest_api: false,
                    secrets_ttl: None,
                    rotate_key_at: None,
                    memory_mb: None,
                    cpu_share: false,
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
                    rest_api: false,
                    secrets_ttl: None,
                    rotate_key_at: None,
                    memory_mb: None,
                    cpu_share: false,
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
                    rest_api: false,
                    secrets_ttl: None,
                    rotate_key_at: None,
                    memory_mb: None,
                    cpu_share: false,
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
                    rest_api: false,
                    secrets_ttl: None,
                    rotate_key_at: None,
                    memory_mb: None,
                    cpu_share: false,
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
                    rest_api: false,
                    secrets_ttl: None,
                    rotate_key_at: None,
                    memory_mb: None,
                    cpu_share: false,
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
                    rest_api: false,
                    secrets_ttl: None,
                    rotate_key_at: None,
                    memory_mb: None,
                    cpu_share: false,
                },
            ],
        },
        Scenario {
            name: "rotation",
            title: "Rotating the ticket key under load",
            intro: "Fans reserve at 100 a second for 12 seconds behind a REST API, with tracing on. Each environment \
                    fetches the signing key at INIT and keeps it for 2 seconds (SECRETS_TTL_SECONDS=2; the \
                    reference's default is 300). Four seconds in, the key rotates as a rotation function rotates it: \
                    a new version under AWSPENDING, then AWSCURRENT moved onto it, the old one left as AWSPREVIOUS. \
                    Environments pick the new key up as their copy expires: no request fails, new tickets are signed \
                    with the new key, and a ticket issued before the rotation still opens the door. The report counts \
                    the GetSecretValue calls the run made (a call per request would cost a call per request) and \
                    draws a cold and a warm request's trace. With PostgreSQL up (`cargo workshop db up`), the \
                    tickets are in PostgreSQL, read with credentials from a second secret, and three seconds after \
                    the key the database password rotates as Secrets Manager's single-user rotation does it: the new \
                    password under AWSPENDING, then into the database (ALTER ROLE), a login with it (testSecret), \
                    and a second later AWSCURRENT moved onto it. In between, a new connection with AWSCURRENT's \
                    password is refused, and the function takes AWSPENDING's.",
            runs: vec![RunSpec {
                label: "rotation at 4 s",
                description: "REST API, tracing on, the key kept 2 s per environment; the account's concurrency limit",
                function: Function::Reference,
                request: RESERVE,
                plan: spike_plan(100.0, 100.0, 0, 0, 12),
                fleet: aws(),
                seats: 100_000,
                database: DatabaseSpec::Default,
                rest_api: true,
                secrets_ttl: Some(2),
                rotate_key_at: Some(Duration::from_secs(4)),
                memory_mb: None,
                cpu_share: false,
            }],
        },
        Scenario {
            name: "spike",
            title: "The drop's first seconds: on demand, provisioned, scheduled, target tracking",
            intro: "Fans arrive at 20 a second, then 400 a second for 4 seconds when the drop opens at 5 s, then 20 \
                    again until 14 s, each environment held to 512 MB's CPU share. The same traffic runs four times. \
                    On demand, every environment the spike needs is a cold start, at the lab's scaling rate. With 2 \
                    provisioned environments, initialised before any traffic, the first requests find them warm and \
                    the spike spills over onto on-demand ones. With a scheduled action (the drop's time is known), \
                    the 2 rise to 12 at 3 s, before the spike. \
                    With target tracking at 70 % utilisation, a datapoint is a minute's average, and it scales out \
                    after three in a row above the target: on this run's clock a minute lasts 2 s (compressed 30 \
                    times), so the spike is over before the third datapoint. The report bills provisioned \
                    concurrency per GB-s while allocated, as AWS does, and says what AWS's 5-minute increments \
                    would come to.",
            runs: vec![
                drop_run(
                    "on demand",
                    "no provisioned concurrency; the lab scales by 20 environments a second",
                    Function::Reference,
                    aws(),
                    SPIKE_MEMORY_MB,
                ),
                drop_run(
                    "provisioned 2",
                    "2 provisioned environments, initialised before traffic; spillover to on-demand",
                    Function::Reference,
                    FleetOptions {
                        provisioned: 2,
                        ..aws()
                    },
                    SPIKE_MEMORY_MB,
                ),
                drop_run(
                    "scheduled 2 to 12",
                    "2 provisioned, a scheduled action raises them to 12 at 3 s, before the drop",
                    Function::Reference,
                    FleetOptions {
                        provisioned: 2,
                        provisioned_scaling: Some(ProvisionedScaling::Scheduled {
                            at: Duration::from_secs(3),
                            to: 12,
                        }),
                        ..aws()
                    },
                    SPIKE_MEMORY_MB,
                ),
                drop_run(
                    "target tracking 0.7",
                    "2 provisioned, target tracking at 70 %: a datapoint a 2-s minute, three to scale out",
                    Function::Reference,
                    FleetOptions {
                        provisioned: 2,
                        provisioned_scaling: Some(ProvisionedScaling::TargetTracking(
                            TargetTracking::aws(0.7, Duration::from_secs(2), 12),
                        )),
                        ..aws()
                    },
                    SPIKE_MEMORY_MB,
                ),
            ],
        },
        Scenario {
            name: "before-after",
            title: "Before and after: the workshop's first shape against its last",
            intro: "The drop of the spike scenario (20 fans a second, 400 a second for 4 seconds at 5 s, 20 again \
                    until 14 s), twice, each environment held to its memory size's CPU share. Before: the shape \
                    the workshop started from, a new database connection for every request and no pool \
                    (lab-functions/module-3-connect-per-request), on demand, at Lambda's default 128 MB. After: \
                    module 5's function, at 512 MB, the cheapest size its tuning found, with 2 provisioned environments raised \
                    to 12 by a scheduled action at 3 s, before the drop. The table at the end sets them side by \
                    side as the seed workshop did: duration per call, throttles per minute, peak concurrent \
                    executions, and the bill.",
            runs: vec![
                drop_run(
                    "before",
                    "a connection per request, no pool, on demand, 128 MB",
                    Function::Variant("module-3-connect-per-request"),
                    aws(),
                    128,
                ),
                drop_run(
                    "after",
                    "module 5: a pool warmed at INIT, 512 MB, 2 provisioned raised to 12 at 3 s",
                    Function::Reference,
                    FleetOptions {
                        provisioned: 2,
                        provisioned_scaling: Some(ProvisionedScaling::Scheduled {
                            at: Duration::from_secs(3),
                            to: 12,
                        }),
                        ..aws()
                    },
                    SPIKE_MEMORY_MB,
                ),
            ],
        },
    ]
}

impl Scenario {
    /// The `lab-functions` binaries its runs serve, each named once.
    pub fn variants(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        for run in &self.runs {
            if let Function::Variant(name) = run.function
                && !names.contains(&name)
            {
                names.push(name);
            }
        }
        names
    }

    /// Whether a run needs the PostgreSQL of `cargo workshop db up`.
    pub fn needs_postgres(&self) -> bool {
        self.runs
            .iter()
            .any(|run| matches!(run.database, DatabaseSpec::Postgres { .. }))
    }
}

/// The scenario named `name`.
pub fn find(name: &str) -> Result<Scenario, String> {
    let all = scenarios();
    let names: Vec<&str> = all.iter().map(|s| s.name).collect();
    let known = names.join(", ");
    all.into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("there is no scenario {name:?}: the scenarios are {known}"))
}

/// What a scenario runs: the binaries, already built.
#[derive(Debug, Clone)]
pub struct Target {
    /// The function's name, as the reports give it.
    pub function_name: String,
    /// The module's reference bootstrap; its `migrate` command also applies
    /// the schema where the module keeps its tickets in a database.
    pub reference: PathBuf,
    /// The `lab-functions` binaries the runs serve, by name.
    pub variants: BTreeMap<String, PathBuf>,
    /// Whether the module keeps its tickets in a database (SQLite by
    /// default); otherwise they are in each environment's memory.
    pub database: bool,
    /// Whether the function reads its signing key from Secrets Manager.
    pub secrets: bool,
    /// Whether the function is traced (its segments to the collector).
    pub tracing: bool,
    /// Another Secrets Manager (a moto server's URL) in place of the lab's.
    pub secrets_endpoint: Option<String>,
}

/// The secret that holds the ticket signing key (module 4 on).
pub const TICKET_KEY_SECRET: &str = "workshop/ticket-signing-key";

/// The secret that holds the database's credentials when the rotation
/// scenario runs on PostgreSQL.
pub const DB_SECRET: &str = "workshop/database";

/// The role whose password the rotation scenario rotates: its own, so
/// that the other scenarios' role keeps its password.
const ROTATING_ROLE: &str = "lab_rotation";

/// How long after the key the database password rotates, and how long
/// its single-user window (setSecret to finishSecret) lasts.
const PASSWORD_AFTER_KEY: Duration = Duration::from_secs(3);
const PASSWORD_WINDOW: Duration = Duration::from_secs(1);

/// The database password of a run, before and after its rotation.
struct PasswordRotation {
    tools: crate::db::Tools,
    database: String,
    old: String,
    new: String,
}

/// A database user's credentials in the JSON shape RDS writes.
fn db_secret(database: &str, password: &str) -> String {
    serde_json::json!({
        "engine": "postgres",
        "host": "127.0.0.1",
        "port": crate::db::PG_PORT,
        "username": ROTATING_ROLE,
        "password": password,
        "dbname": database,
    })
    .to_string()
}

impl PasswordRotation {
    /// A fresh database and a role of its own with a random password, for
    /// a run whose tickets are in PostgreSQL.
    fn prepare(name: String) -> Result<PasswordRotation, String> {
        let tools = crate::db::tools()?;
        crate::db::create_database(&tools, &name, None)?;
        let old = crate::secrets::random_secret_string(32);
        let new = crate::secrets::random_secret_string(32);
        tools.psql("postgres", &format!("DROP ROLE IF EXISTS {ROTATING_ROLE}"))?;
        tools.psql(
            "postgres",
            &format!("CREATE ROLE {ROTATING_ROLE} LOGIN PASSWORD '{old}'"),
        )?;
        Ok(PasswordRotation {
            tools,
            database: name,
            old,
            new,
        })
    }

    /// What the role may do once the schema is in: module 3's grants.
    fn grant(&self) -> Result<(), String> {
        let r = ROTATING_ROLE;
        self.tools.psql(
            &self.database,
            &format!(
                "GRANT CONNECT ON DATABASE {db} TO {r}; GRANT USAGE ON SCHEMA public TO {r}; \
                 GRANT SELECT, UPDATE ON events TO {r}; \
                 GRANT SELECT, INSERT ON reservations, idempotency_keys TO {r}",
                db = self.database
            ),
        )?;
        Ok(())
    }

    /// Secrets Manager's single-user rotation, step by step, under the
    /// load: what happened, as the report's line.
    async fn rotate(
        &self,
        secrets: &crate::secrets::SecretsManager,
        started: std::time::Instant,
    ) -> String {
        let at = started.elapsed().as_secs_f64();
        // createSecret.
        let pending = match secrets.put(
            DB_SECRET,
            &db_secret(&self.database, &self.new),
            &["AWSPENDING"],
        ) {
            Ok(version) => version,
            Err(e) => return format!("password   rotation failed at createSecret: {}", e.message),
        };
        // setSecret; the oldest session ended, as its environment's pool
        // would close it after an idle minute, so that one environment
        // opens a new connection inside the window (open connections keep
        // working through ALTER ROLE); and testSecret. psql blocks, so off
        // the lab's thread.
        let (tools, database, old, new) = (
            self.tools.clone(),
            self.database.clone(),
            self.old.clone(),
            self.new.clone(),
        );
        let set = tokio::task::spawn_blocking(move || -> Result<(String, bool), String> {
            tools.psql("postgres", &format!("ALTER ROLE {ROTATING_ROLE} PASSWORD '{new}'"))?;
            let ended = tools.psql(
                "postgres",
                &format!(
                    "SELECT count(pg_terminate_backend(pid)) FROM (SELECT pid FROM pg_stat_activity \
                     WHERE usename = '{ROTATING_ROLE}' ORDER BY backend_start LIMIT 1) AS oldest"
                ),
            )?;
            tools.login(&database, ROTATING_ROLE, &new)?;
            let old_refused = tools.login(&database, ROTATING_ROLE, &old).is_err();
            Ok((ended, old_refused))
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        let (ended, old_refused) = match set {
            Ok(done) => done,
            Err(e) => return format!("password   rotation failed at setSecret or testSecret: {e}"),
        };
        tokio::time::sleep(PASSWORD_WINDOW).await;
        // finishSecret.
        let finished = started.elapsed().as_secs_f64();
        if let Err(e) = secrets.finish(DB_SECRET, &pending) {
            return format!("password   rotation failed at finishSecret: {}", e.message);
        }
        format!(
            "password   at {at:.1} s the new password went under AWSPENDING and into the database (ALTER ROLE); {ended} \
             of the role's sessions ended, as after an idle minute, so that its environment connects again inside the \
             window; a login with the new password worked (testSecret), the old one was {}; at {finished:.1} s \
             AWSCURRENT moved onto it",
            if old_refused {
                "refused"
            } else {
                "still accepted"
            }
        )
    }
}

/// A lab for `bootstrap` as `target`'s module needs it: `seats` on sale, a
/// fresh database where the module keeps its tickets (run `k` of
/// `scenario`), the ticket signing key in its Secrets Manager, tracing.
pub fn base_config(
    target: &Target,
    bootstrap: PathBuf,
    scenario: &str,
    k: usize,
    seats: u64,
    database: DatabaseSpec,
) -> Result<LabConfig, String> {
    let mut config = LabConfig::new(target.function_name.clone(), bootstrap);
    config
        .environment
        .insert("EVENTS".into(), format!("midnight-tour:{seats}"));
    config.database =
        crate::db::prepare(target.database, scenario, k, database, &target.reference)?;
    if target.secrets {
        config.secrets_endpoint = target.secrets_endpoint.clone();
        let key = crate::secrets::random_secret_string(64);
        config.secrets = vec![(TICKET_KEY_SECRET.to_string(), key)];
        config
            .environment
            .insert("TICKET_KEY_SECRET_ID".into(), TICKET_KEY_SECRET.into());
    }
    config.tracing = target.tracing;
    Ok(config)
}

/// Runs every run of `scenario` against `target`; returns a report per run.
pub async fn run(target: &Target, scenario: &Scenario) -> Result<Vec<RunReport>, String> {
    let mut reports = Vec::new();
    for (k, run) in scenario.runs.iter().enumerate() {
        let bootstrap = match run.function {
            Function::Reference => target.reference.clone(),
            Function::Variant(name) => target.variants.get(name).cloned().ok_or_else(|| {
                format!(
                    "the {} scenario serves lab-functions' {name}, which was not built",
                    scenario.name
                )
            })?,
        };
        let mut config = base_config(target, bootstrap, scenario.name, k, run.seats, run.database)?;
        config.fleet = run.fleet.clone();
        if let Some(memory_mb) = run.memory_mb {
            config.memory_mb = memory_mb;
        }
        if run.cpu_share {
            config.cpu = Some(std::sync::Arc::new(crate::cpu::CpuLimits::detect()));
        }
        if run.rest_api {
            config.api = Api::Rest {
                stage: "prod".into(),
            };
        }
        // On PostgreSQL, the rotation scenario reads the database's
        // credentials from a secret and rotates them too.
        let rotates_password = run.rotate_key_at.is_some()
            && target.database
            && target.secrets
            && run.database == DatabaseSpec::Default
            && crate::db::is_up();
        let password = if rotates_password {
            let name = format!("lab_{}_{k}", scenario.name.replace('-', "_"));
            let rotation = PasswordRotation::prepare(name.clone())?;
            config.database = Some(crate::db::LabDatabase {
                // The function's credentials come from DB_SECRET; this URL,
                // with none, only says which database it is.
                url: format!(
                    "postgres://{ROTATING_ROLE}@127.0.0.1:{}/{name}",
                    crate::db::PG_PORT
                ),
                direct_url: crate::db::app_url(&name, false),
                watch: Some(name),
                migrator: target.reference.clone(),
            });
            config.secrets.push((
                DB_SECRET.to_string(),
                db_secret(&rotation.database, &rotation.old),
            ));
            config
                .environment
                .insert("DB_SECRET_ID".into(), DB_SECRET.into());
            Some(rotation)
        } else {
            None
        };
        if target.secrets
            && let Some(ttl) = run.secrets_ttl
        {
            config
                .environment
                .insert("SECRETS_TTL_SECONDS".into(), ttl.to_string());
        }
        let database_limit = match run.database {
            DatabaseSpec::Postgres { limit, .. } => limit,
            DatabaseSpec::Default => None,
        };
        let meter = crate::machine::CpuMeter::start();
        let lab = Lab::start(config, Output::Quiet).await?;
        if let Some(rotation) = &password {
            rotation.grant()?;
        }
        eprintln!(
            "\nRun {}/{}: {} — {} ({} requests)",
            k + 1,
            scenario.runs.len(),
            run.label,
            run.description,
            run.plan.expected()
        );
        let options = load::LoadOptions {
            target: load::Target {
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
        let mut notes = Vec::new();
        if let Some(cpu) = &lab.config.cpu {
            notes.push(format!("cpu        {}", cpu.describe(lab.config.memory_mb)));
        }
        if let Some(ProvisionedScaling::TargetTracking(policy)) = &run.fleet.provisioned_scaling {
            notes.push(format!(
                "clock      target tracking's minute lasts {:.1} s here: AWS's clock compressed {:.0} times",
                policy.minute.as_secs_f64(),
                policy.compression()
            ));
        }
        // A ticket issued before the rotation, to show at the door after it.
        let early_ticket = match run.rotate_key_at {
            Some(_) => reserve_ticket(&lab).await,
            None => None,
        };
        let started = std::time::Instant::now();
        let rotation = async {
            let (Some(at), Some(secrets)) = (run.rotate_key_at, &lab.secrets) else {
                return None;
            };
            tokio::time::sleep(at).await;
            let before = secrets.calls("GetSecretValue");
            let key = crate::secrets::random_secret_string(64);
            let rotated = secrets.rotate(TICKET_KEY_SECRET, &key);
            let password = match &password {
                Some(rotation) => {
                    tokio::time::sleep(PASSWORD_AFTER_KEY).await;
                    Some(rotation.rotate(secrets, started).await)
                }
                None => None,
            };
            Some((at, before, rotated, password))
        };
        let (loaded, rotated) = tokio::join!(load_on_its_own_thread(options), rotation);
        let (load, load_cpu) = loaded?;
        if let Some(secrets) = lab.secrets.as_ref().filter(|s| !s.counts_calls()) {
            notes.push(format!(
                "secrets    on the Secrets Manager at {}, which counts no calls: the traces below count the function's",
                secrets.url()
            ));
        }
        if let (Some((at, before, rotated, password_note)), Some(secrets)) = (rotated, &lab.secrets)
        {
            let after = secrets.calls("GetSecretValue") - before;
            notes.push(match rotated {
                Ok(version) if !secrets.counts_calls() => format!(
                    "rotation   at {:.1} s the key's new version {} became AWSCURRENT",
                    at.as_secs_f64(),
                    &version[..8.min(version.len())],
                ),
                Ok(version) => format!(
                    "rotation   at {:.1} s the key's new version {} became AWSCURRENT; {} before it, {} after",
                    at.as_secs_f64(),
                    &version[..8.min(version.len())],
                    crate::report::count(before as usize, "GetSecretValue call", "GetSecretValue calls"),
                    after
                ),
                Err(e) => format!("rotation   failed: {}", e.message),
            });
            notes.push(password_note.unwrap_or_else(|| {
                "password   not rotated: the tickets are in SQLite; after `cargo workshop db up`, this run keeps \
                 them in PostgreSQL and rotates the database password too"
                    .into()
            }));
            if let Some(ticket) = early_ticket {
                notes.push(format!(
                    "door       a ticket issued before the rotation: {}",
                    door(&lab, &ticket).await
                ));
            }
            if let Some(ticket) = reserve_ticket(&lab).await {
                notes.push(format!(
                    "door       a ticket issued after it: {}",
                    door(&lab, &ticket).await
                ));
            }
        }
        let secret_calls = lab
            .secrets
            .as_ref()
            .filter(|s| s.counts_calls())
            .map(|s| s.calls("GetSecretValue"));
        let traces = match &lab.collector {
            Some(collector) => {
                // The last datagrams are on their way: a moment for them.
                tokio::time::sleep(Duration::from_millis(100)).await;
                collector.traces()
            }
            None => Vec::new(),
        };
        let metrics = lab.recorder.snapshot();
        let memory_mb = lab.config.memory_mb;
        let rest_api = matches!(lab.config.api, Api::Rest { .. });
        lab.stop().await;
        let cpu = meter.zip(load_cpu).and_then(|(m, load)| m.finish(load));
        reports.push(RunReport {
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
            cpu,
            secret_calls,
            traces,
            notes,
        });
    }
    Ok(reports)
}

/// The path of `path` on the lab's API, with the stage a REST API's
/// paths start with.
fn on_stage(lab: &Lab, path: &str) -> String {
    match &lab.config.api {
        Api::Http => path.to_string(),
        Api::Rest { stage } => format!("/{stage}{path}"),
    }
}

/// One reservation through the gateway: its ticket, if it got one.
async fn reserve_ticket(lab: &Lab) -> Option<String> {
    let request = crate::apigw::HttpRequest::new("POST", &on_stage(lab, RESERVE.path))
        .header("content-type", "application/json")
        .body(r#"{"customer_id": "fan-at-the-door", "quantity": 1}"#);
    let response = lab.send(request).await;
    let body: serde_json::Value = serde_json::from_slice(&response.body).ok()?;
    body["ticket"].as_str().map(str::to_string)
}

/// What the door says of `ticket`: its status, and the key that signed it.
async fn door(lab: &Lab, ticket: &str) -> String {
    let path = on_stage(lab, &format!("/tickets/{ticket}"));
    let response = lab.send(crate::apigw::HttpRequest::new("GET", &path)).await;
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
    match body["signed_with"].as_str() {
        Some(stage) => format!("{}, signed with the {stage} key", response.status),
        None => format!(
            "{}, {}",
            response.status,
            body["detail"].as_str().unwrap_or("no detail")
        ),
    }
}

/// Runs the load generator on a thread and a runtime of its own, so the CPU
/// it uses can be told apart from the lab's; returns its report and that
/// thread's CPU time (`None` where the OS does not count it per thread).
async fn load_on_its_own_thread(
    options: load::LoadOptions,
) -> Result<(Result<load::LoadReport, String>, Option<Duration>), String> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("load".into())
        .spawn(move || {
            let report = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(load::run(options)),
                Err(e) => Err(format!("cannot start the load generator's runtime: {e}")),
            };
            let cpu = crate::machine::cpu_used(crate::machine::Who::Thread);
            let _ = done.send((report, cpu));
        })
        .map_err(|e| format!("cannot start the load generator's thread: {e}"))?;
    result
        .await
        .map_err(|_| "the load generator's thread ended without a report".to_string())
}
