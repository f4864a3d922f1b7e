//! `cargo workshop invoke N`: build module N's bootstrap and run events
//! through it as Lambda does, printing what CloudWatch Logs would show.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::build;
use crate::steps::{Need, Workshop};
use crate::workspace;
use lab::lambda::{ExecutionEnvironment, FunctionConfig, InitType, Invocation, Outcome, ms};

/// Which crate of a module to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Learner,
    Solution,
}

#[derive(Debug, Clone)]
pub struct InvokeOptions {
    pub module: u32,
    pub flavour: Flavour,
    /// A file, `-` for standard input, or `None` for the module's sample event.
    pub event: Option<String>,
    pub repeat: u32,
    pub memory_mb: u32,
    pub timeout: Duration,
    pub environment: BTreeMap<String, String>,
}

/// Lambda's memory range.
pub const MEMORY_RANGE: std::ops::RangeInclusive<u32> = 128..=10_240;
/// Lambda's timeout range, in seconds.
pub const MAX_TIMEOUT_SECS: f64 = 900.0;

/// Reads and checks the event: the Invoke API refuses a payload that is not
/// JSON before any function sees it, and so does this.
pub fn read_event(workshop: &Workshop, module: u32, event: Option<&str>) -> Result<Bytes, String> {
    let (label, text) = match event {
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read the event from standard input: {e}"))?;
            ("standard input".to_string(), text)
        }
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the event file {path}: {e}"))?;
            (path.to_string(), text)
        }
        None => {
            let rel = &workshop.module(module)?.default_event;
            let path = workspace::root().join(rel);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read the sample event {rel}: {e}"))?;
            (rel.clone(), text)
        }
    };
    serde_json::from_str::<serde_json::Value>(&text)
        .map_err(|e| format!("the event in {label} is not valid JSON: {e}"))?;
    Ok(Bytes::from(text.trim().to_string()))
}

/// Runs the invocations; returns how many failed.
pub async fn run(workshop: &Workshop, options: &InvokeOptions) -> Result<usize, String> {
    let module = workshop.module(options.module)?;
    if !MEMORY_RANGE.contains(&options.memory_mb) {
        return Err(format!(
            "--memory {} is outside Lambda's range of 128 to 10240 MB",
            options.memory_mb
        ));
    }
    if options.timeout.is_zero() || options.timeout.as_secs_f64() > MAX_TIMEOUT_SECS {
        return Err("--timeout must be more than 0 and at most 900 seconds".into());
    }
    if options.repeat == 0 {
        return Err("--repeat must be at least 1".into());
    }
    let payload = read_event(workshop, options.module, options.event.as_deref())?;
    let (learner, reference) = workspace::packages(options.module);
    let package = match options.flavour {
        Flavour::Learner => learner,
        Flavour::Solution => reference.clone(),
    };
    let bootstrap = build::bootstrap(&package)?;

    let mut config = FunctionConfig::new(format!("ticket-drop-{}", options.module), bootstrap);
    config.memory_mb = options.memory_mb;
    config.timeout = options.timeout;
    config.environment = options.environment.clone();
    if module.needs(Need::Database) && !config.environment.contains_key("DATABASE_URL") {
        // The tickets are in a database: a fresh SQLite file, with the
        // schema and the events on sale from the reference's `migrate`
        // command.
        let migrator = build::bootstrap(&reference)?;
        if let Some(database) =
            lab::db::prepare(true, "invoke", 0, lab::db::DatabaseSpec::Default, &migrator)?
        {
            lab::stack::migrate(&migrator, &config.environment, &database.direct_url)?;
            config
                .environment
                .insert("DATABASE_URL".into(), database.url);
        }
    }

    let around = crate::traces::Around::start(module, &mut config.environment).await?;
    config.tracing = around.collector.clone();

    let (log_tx, mut logs) = mpsc::unbounded_channel();
    let mut env: Option<ExecutionEnvironment> = None;
    let mut environments = 0;
    let mut results: Vec<Invocation> = Vec::new();
    for _ in 0..options.repeat {
        if env.as_mut().is_some_and(|e| !e.is_alive()) {
            env = None;
        }
        let current = match &mut env {
            Some(e) => e,
            None => {
                // A fresh environment: the first one, or after a crash or a
                // timeout, as Lambda does.
                environments += 1;
                let e = ExecutionEnvironment::start(
                    environments,
                    &config,
                    InitType::OnDemand,
                    log_tx.clone(),
                )
                .await
                .map_err(|e| e.to_string())?;
                env.insert(e)
            }
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        eprintln!("START RequestId: {request_id} Version: $LATEST");
        let invocation = {
            let invoke = current.invoke_as(request_id, payload.clone());
            tokio::pin!(invoke);
            loop {
                tokio::select! {
                    done = &mut invoke => break done,
                    Some(line) = logs.recv() => eprintln!("{}", line.line),
                }
            }
        };
        // Lines written just before the answer may still be in the pipe.
        while let Ok(Some(line)) =
            tokio::time::timeout(Duration::from_millis(25), logs.recv()).await
        {
            eprintln!("{}", line.line);
        }
        if let (Outcome::InitError { error_type, .. }, Some(init)) =
            (&invocation.outcome, invocation.init_duration)
        {
            eprintln!(
                "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: error\tError Type: {error_type}",
                ms(init)
            );
        }
        print_payload(&invocation);
        eprintln!("END RequestId: {}", invocation.request_id);
        eprintln!("{}", invocation.report_line());
        results.push(invocation);
    }
    if let Some(env) = env {
        env.shutdown().await;
    }
    while let Ok(line) = logs.try_recv() {
        eprintln!("{}", line.line);
    }
    if results.len() > 1 {
        eprintln!("{}", summary(&results, environments));
    }
    for line in around.finish() {
        eprintln!("{line}");
    }
    Ok(results.iter().filter(|i| i.is_error()).count())
}

fn print_payload(invocation: &Invocation) {
    let payload = invocation.payload();
    let pretty = serde_json::from_slice::<serde_json::Value>(&payload)
        .ok()
        .and_then(|v| serde_json::to_string(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(&payload).into_owned());
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = writeln!(out, "{pretty}");
    let _ = out.flush();
}

/// Cold against warm, in numbers.
pub fn summary(results: &[Invocation], environments: usize) -> String {
    let mut out = format!(
        "\n{} invocation{} in {} execution environment{}",
        results.len(),
        if results.len() == 1 { "" } else { "s" },
        environments,
        if environments == 1 { "" } else { "s" }
    );
    let errors = results.iter().filter(|i| i.is_error()).count();
    if errors > 0 {
        out.push_str(&format!(", {errors} failed"));
    }
    out.push('\n');
    for cold in results.iter().filter(|i| i.init_duration.is_some()) {
        out.push_str(&format!(
            "  cold: Init Duration {:.2} ms + Duration {:.2} ms = billed {} ms\n",
            ms(cold.init_duration.unwrap_or_default()),
            ms(cold.duration),
            cold.billed_duration_ms()
        ));
    }
    let mut warm: Vec<f64> = results
        .iter()
        .filter(|i| i.init_duration.is_none())
        .map(|i| ms(i.duration))
        .collect();
    if !warm.is_empty() {
        warm.sort_by(f64::total_cmp);
        out.push_str(&format!(
            "  warm: Duration min {:.2} ms, median {:.2} ms, max {:.2} ms ({} invocation{})\n",
            warm[0],
            warm[warm.len() / 2],
            warm[warm.len() - 1],
            warm.len(),
            if warm.len() == 1 { "" } else { "s" }
        ));
    }
    out
}
