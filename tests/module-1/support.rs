//! Helpers for the module 1 suite: hand-made contexts for the handler, and
//! real execution environments that run the crate's bootstrap binary.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lab::lambda::{ExecutionEnvironment, FunctionConfig, InitType, LogLine};
use lambda_runtime::{Context, LambdaEvent};
use module_1::{Config, State};
use serde_json::Value;
use tokio::sync::mpsc;

/// A configuration without touching the process environment.
pub fn config(vars: &[(&str, &str)]) -> Config {
    Config::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
    .expect("test configuration is valid")
}

pub fn state(vars: &[(&str, &str)]) -> State {
    State::new(config(vars))
}

/// The `Context` Lambda would pass, with `budget` left before the deadline.
pub fn context(request_id: &str, budget: Duration) -> Context {
    let deadline = SystemTime::now() + budget;
    let mut context = Context::default();
    context.request_id = request_id.to_string();
    context.deadline = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    context
}

pub fn event(request_id: &str, payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, context(request_id, Duration::from_secs(3)))
}

/// The bootstrap binary of the crate under test. Cargo builds a package's
/// binaries before its integration tests and names them in
/// `CARGO_BIN_EXE_<name>`; the learner's and the reference's have different
/// names, and exactly one of them is set.
pub fn bootstrap() -> PathBuf {
    let path = option_env!("CARGO_BIN_EXE_module-1")
        .or(option_env!("CARGO_BIN_EXE_module-1-solution"))
        .expect("the crate under test has a module-1 bootstrap binary");
    PathBuf::from(path)
}

/// A function configuration as the SAM template sets it, plus `vars`.
pub fn function(vars: &[(&str, &str)]) -> FunctionConfig {
    let mut function = FunctionConfig::new("ticket-drop", bootstrap());
    for (k, v) in vars {
        function.environment.insert(k.to_string(), v.to_string());
    }
    function
}

/// A real execution environment (the bootstrap process under a local
/// Runtime API) and the lines it logs.
pub struct Lab {
    pub env: ExecutionEnvironment,
    logs: mpsc::UnboundedReceiver<LogLine>,
}

impl Lab {
    pub async fn start(vars: &[(&str, &str)]) -> Lab {
        Self::start_numbered(0, vars).await
    }

    pub async fn start_numbered(id: usize, vars: &[(&str, &str)]) -> Lab {
        let (tx, logs) = mpsc::unbounded_channel();
        let env = ExecutionEnvironment::start(id, &function(vars), InitType::OnDemand, tx)
            .await
            .expect("the bootstrap binary starts");
        Lab { env, logs }
    }

    /// Stops the process and returns every line it wrote.
    pub async fn stop(mut self) -> Vec<String> {
        self.env.shutdown().await;
        let mut lines = Vec::new();
        while let Ok(line) = self.logs.try_recv() {
            lines.push(line.line);
        }
        lines
    }
}

/// The logs, for a failure message.
pub fn show(logs: &[String]) -> String {
    if logs.is_empty() {
        "(the bootstrap wrote nothing)".into()
    } else {
        logs.join("\n")
    }
}
