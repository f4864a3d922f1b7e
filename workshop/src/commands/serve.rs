//! `cargo workshop serve N`: a module's function behind the local API
//! Gateway and a fleet, until Ctrl-C.

use std::time::Duration;

use lab::apigw::Api;
use lab::fleet::{self, FleetOptions};
use lab::report::count;
use lab::{Lab, LabConfig, Output};
use workshop::invoke::{self, Flavour};
use workshop::steps::{Need, Workshop};
use workshop::{build, workspace};

use crate::cli::{ApiKind, DatabaseKind, ServeArgs};

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
        if !module.needs(Need::Database) {
            return Err(format!(
                "module {} keeps its tickets in memory: --database is for the modules with a database",
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

pub async fn run(workshop: &Workshop, args: ServeArgs) -> Result<(), String> {
    let (mut config, flavour) = serve_config(workshop, &args)?;
    let module = workshop.module(args.module)?;
    let (learner, reference) = workspace::packages(args.module);
    let package = if flavour == Flavour::Solution {
        reference.clone()
    } else {
        learner
    };
    config.bootstrap = match &args.bootstrap {
        Some(path) => path.clone(),
        None => build::bootstrap(&package)?,
    };
    if module.needs(Need::Database) && !config.environment.contains_key("DATABASE_URL") {
        // The schema and the events on sale come from the reference's
        // `migrate` command: the same whatever state the learner's crate is in.
        let migrator = build::bootstrap(&reference)?;
        config.database = lab::db::prepare(true, "serve", 0, args.database.spec(), &migrator)?.map(
            |mut database| {
                database.watch = None;
                database
            },
        );
    }
    if module.needs(Need::Secrets) {
        let key = lab::secrets::random_secret_string(64);
        config
            .secrets
            .push((lab::scenario::TICKET_KEY_SECRET.into(), key));
        config
            .environment
            .entry("TICKET_KEY_SECRET_ID".into())
            .or_insert_with(|| lab::scenario::TICKET_KEY_SECRET.into());
    }
    config.tracing = module.needs(Need::Traces);
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
    if let Some(database) = &lab.config.database {
        eprintln!("  tickets in {}", database.describe(&workspace::root()));
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
    let calls = lab.secrets.as_ref().map(|s| s.calls("GetSecretValue"));
    let kept = lab.collector.as_deref().map(workshop::traces::save);
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
    if let Some(calls) = calls {
        eprintln!(
            "Secrets Manager: {}.",
            count(
                calls as usize,
                "GetSecretValue call",
                "GetSecretValue calls"
            )
        );
    }
    match kept {
        Some(Ok(path)) => eprintln!(
            "Traces kept in {} (`cargo workshop traces` shows them).",
            workspace::relative(&path)
        ),
        Some(Err(e)) => eprintln!("Traces: {e}"),
        None => {}
    }
    Ok(())
}
