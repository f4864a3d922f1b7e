//! The traces of the last run that recorded any (`invoke`, `serve` or a
//! lab scenario of a module with tracing), kept in
//! `target/workshop/lab/traces.json` for `cargo workshop traces`.

use std::path::PathBuf;

use lab::secrets::{SecretsManager, random_secret_string};
use lab::xray::{Collector, Trace, assemble};
use serde_json::Value;

use crate::steps::{Module, Need};
use crate::workspace;

/// Where the last run's segments are kept.
pub fn path() -> PathBuf {
    workspace::target_dir()
        .join("workshop")
        .join("lab")
        .join("traces.json")
}

/// Keeps `collector`'s segments for `cargo workshop traces`; says where.
pub fn save(collector: &Collector) -> Result<PathBuf, String> {
    save_documents(&collector.documents())
}

/// Keeps segment documents for `cargo workshop traces`; says where.
pub fn save_documents(documents: &[Value]) -> Result<PathBuf, String> {
    let path = path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let text = serde_json::to_string(documents).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// The traces kept by the last run, oldest first.
pub fn load() -> Result<Vec<Trace>, String> {
    let path = path();
    let text = std::fs::read_to_string(&path).map_err(|_| {
        format!(
            "no traces yet ({} does not exist): run a module with tracing first, for example `cargo workshop invoke 4 --solution --repeat 3`",
            path.display()
        )
    })?;
    let documents: Vec<Value> = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a list of segments: {e}", path.display()))?;
    Ok(assemble(&documents))
}

/// The last `n` traces as trees, for the terminal.
pub fn render_last(traces: &[Trace], n: usize) -> String {
    let skip = traces.len().saturating_sub(n);
    let mut out = String::new();
    for trace in &traces[skip..] {
        let kind = if trace.is_cold() { "cold" } else { "warm" };
        out.push_str(&format!("{kind} · "));
        out.push_str(&trace.render());
        out.push('\n');
    }
    out
}

/// What a module's function needs from the lab around it: the lab's
/// Secrets Manager with the ticket signing key in it, and a collector for
/// its traces, as `steps.toml` says. The environment variables to reach
/// them are added to `environment`.
pub struct Around {
    pub secrets: Option<SecretsManager>,
    pub collector: Option<std::sync::Arc<Collector>>,
}

impl Around {
    pub async fn start(
        module: &Module,
        environment: &mut std::collections::BTreeMap<String, String>,
    ) -> Result<Around, String> {
        let mut secrets = None;
        if module.needs(Need::Secrets) {
            let name = lab::scenario::TICKET_KEY_SECRET;
            let manager =
                SecretsManager::for_run(None, &[(name.into(), random_secret_string(64))]).await?;
            // What the learner set with --env wins: a wrong endpoint on
            // purpose, say.
            for (key, value) in manager.env() {
                environment.entry(key).or_insert(value);
            }
            environment
                .entry("TICKET_KEY_SECRET_ID".into())
                .or_insert_with(|| name.into());
            secrets = Some(manager);
        }
        let mut collector = None;
        if module.needs(Need::Traces) {
            let started = Collector::start()
                .await
                .map_err(|e| format!("cannot start the trace collector: {e}"))?;
            collector = Some(std::sync::Arc::new(started));
        }
        Ok(Around { secrets, collector })
    }

    /// What the run used, for the end of its output: GetSecretValue calls
    /// and where the traces were kept.
    pub fn finish(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(secrets) = &self.secrets {
            let calls = secrets.calls("GetSecretValue");
            lines.push(format!(
                "Secrets Manager: {} (${:.6} at $0.05 per 10,000)",
                lab::report::count(
                    calls as usize,
                    "GetSecretValue call",
                    "GetSecretValue calls"
                ),
                calls as f64 * lab::report::prices::SECRETS_MANAGER_CALL
            ));
        }
        if let Some(collector) = &self.collector {
            let traces = collector.traces().len();
            match save(collector) {
                Ok(path) => lines.push(format!(
                    "X-Ray: {traces} trace{} kept in {} (`cargo workshop traces` shows them)",
                    if traces == 1 { "" } else { "s" },
                    workspace::relative(&path)
                )),
                Err(e) => lines.push(format!("X-Ray: {e}")),
            }
        }
        lines
    }
}
