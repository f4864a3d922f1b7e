//! The local Runtime API against a function that misbehaves on purpose
//! (src/bin/fixture-function.rs): every outcome Lambda reports, reported
//! as Lambda reports it.

use std::time::Duration;

use lab::lambda::{ExecutionEnvironment, FunctionConfig, InitType, Outcome};
use serde_json::Value;
use tokio::sync::mpsc;

fn function(mode: &str) -> FunctionConfig {
    let mut config = FunctionConfig::new("fixture", env!("CARGO_BIN_EXE_fixture-function"));
    config.environment.insert("FIXTURE".into(), mode.into());
    config.timeout = Duration::from_secs(3);
    config
}

async fn start(config: &FunctionConfig, init_type: InitType) -> ExecutionEnvironment {
    let (tx, _rx) = mpsc::unbounded_channel();
    ExecutionEnvironment::start(1, config, init_type, tx)
        .await
        .unwrap()
}

fn json(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Response(body) => serde_json::from_slice(body).unwrap(),
        other => panic!("expected a response, got {other:?}"),
    }
}

fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| !s.contains("State:\tZ"))
        .unwrap_or(false)
}

#[tokio::test]
async fn events_reach_the_function_with_lambdas_headers() {
    let mut env = start(&function("echo"), InitType::OnDemand).await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let cold = env.invoke(r#"{"n":1}"#).await;
    let warm = env.invoke(r#"{"n":2}"#).await;
    env.shutdown().await;

    let answer = json(&cold.outcome);
    assert_eq!(answer["event"], serde_json::json!({"n": 1}));
    let deadline: u64 = answer["deadline_ms"].as_str().unwrap().parse().unwrap();
    assert!(
        deadline >= before + 2_900 && deadline <= before + 4_000,
        "the deadline is now plus the 3 s timeout"
    );
    assert!(answer["trace_id"].as_str().unwrap().starts_with("Root=1-"));
    assert_eq!(
        answer["function_arn"],
        "arn:aws:lambda:us-east-1:123456789012:function:fixture"
    );
    assert_eq!(json(&warm.outcome)["event"], serde_json::json!({"n": 2}));

    assert!(cold.init_duration.is_some(), "the first invocation is cold");
    assert!(warm.init_duration.is_none(), "the second is warm");
    assert_ne!(cold.request_id, warm.request_id);
    let report = cold.report_line();
    assert!(report.starts_with(&format!(
        "REPORT RequestId: {}\tDuration: ",
        cold.request_id
    )));
    assert!(report.contains("\tMemory Size: 128 MB\tMax Memory Used: "));
    assert!(report.contains("\tInit Duration: "));
    assert!(!warm.report_line().contains("Init Duration"));
    if cfg!(target_os = "linux") {
        assert!(cold.max_memory_used_mb.is_some_and(|m| m >= 1));
    }
}

#[tokio::test]
async fn the_process_starts_with_lambdas_variables_and_nothing_else() {
    let mut config = function("env");
    config.memory_mb = 512;
    config.environment.insert("EVENTS".into(), "x:1".into());
    let mut env = start(&config, InitType::ProvisionedConcurrency).await;
    let vars = json(&env.invoke("{}").await.outcome);
    env.shutdown().await;
    assert_eq!(vars["AWS_LAMBDA_FUNCTION_NAME"], "fixture");
    assert_eq!(vars["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "512");
    assert_eq!(vars["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(
        vars["AWS_LAMBDA_INITIALIZATION_TYPE"],
        "provisioned-concurrency"
    );
    assert_eq!(vars["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/fixture");
    assert_eq!(vars["AWS_LAMBDA_LOG_FORMAT"], "JSON");
    assert!(
        vars["AWS_LAMBDA_RUNTIME_API"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(
        vars["EVENTS"], "x:1",
        "the function's own variables are set"
    );
    assert!(
        vars.get("HOME").is_none(),
        "nothing leaks in from the shell"
    );
    assert!(vars.get("CARGO").is_none(), "nothing leaks in from cargo");
}

#[tokio::test]
async fn a_function_error_keeps_the_environment() {
    let mut env = start(&function("error"), InitType::OnDemand).await;
    let first = env.invoke("{}").await;
    assert!(env.is_alive());
    let second = env.invoke("{}").await;
    env.shutdown().await;
    match &first.outcome {
        Outcome::FunctionError {
            error_type,
            payload,
        } => {
            assert_eq!(error_type, "FixtureError");
            assert_eq!(
                &payload[..],
                br#"{"errorType":"FixtureError","errorMessage":"no"}"#
            );
        }
        other => panic!("expected a function error, got {other:?}"),
    }
    assert!(first.is_error());
    assert!(
        second.init_duration.is_none(),
        "same environment, still warm"
    );
    assert!(
        !first.report_line().contains("Status:"),
        "a handled error has no Status"
    );
}

#[tokio::test]
async fn a_crash_is_a_runtime_exit_error_and_ends_the_environment() {
    let mut env = start(&function("crash"), InitType::OnDemand).await;
    let pid = env.pid().unwrap();
    let invocation = env.invoke("{}").await;
    assert_eq!(
        invocation.outcome,
        Outcome::Crash {
            status: "exit status 3".into()
        }
    );
    assert!(!env.is_alive());
    let payload: Value = serde_json::from_slice(&invocation.payload()).unwrap();
    assert_eq!(payload["errorType"], "Runtime.ExitError");
    assert_eq!(
        payload["errorMessage"],
        format!(
            "RequestId: {} Error: Runtime exited with error: exit status 3",
            invocation.request_id
        )
    );
    assert!(
        invocation
            .report_line()
            .ends_with("\tStatus: error\tError Type: Runtime.ExitError")
    );
    env.shutdown().await;
    assert!(!is_running(pid));
}

#[tokio::test]
async fn a_timeout_stops_the_environment() {
    let mut config = function("sleep");
    config.timeout = Duration::from_millis(300);
    let mut env = start(&config, InitType::OnDemand).await;
    let pid = env.pid().unwrap();
    let invocation = env.invoke("{}").await;
    assert_eq!(
        invocation.outcome,
        Outcome::Timeout {
            after: Duration::from_millis(300)
        }
    );
    assert!(invocation.duration >= Duration::from_millis(300));
    let payload: Value = serde_json::from_slice(&invocation.payload()).unwrap();
    assert_eq!(payload["errorType"], "Sandbox.Timedout");
    assert!(
        payload["errorMessage"]
            .as_str()
            .unwrap()
            .ends_with("Task timed out after 0.30 seconds")
    );
    assert!(invocation.report_line().ends_with("\tStatus: timeout"));
    assert!(
        !env.is_alive(),
        "Lambda does not reuse a timed-out environment"
    );
    env.shutdown().await;
    assert!(!is_running(pid), "the process was stopped");
}

#[tokio::test]
async fn an_oversized_response_is_refused() {
    let mut env = start(&function("big"), InitType::OnDemand).await;
    let invocation = env.invoke("{}").await;
    env.shutdown().await;
    assert_eq!(
        invocation.outcome,
        Outcome::ResponseTooLarge {
            size: 7 * 1024 * 1024
        }
    );
    assert_eq!(
        invocation.error_type().as_deref(),
        Some("Function.ResponseSizeTooLarge")
    );
}

#[tokio::test]
async fn an_init_error_is_reported_with_its_type() {
    let mut env = start(&function("init-error"), InitType::OnDemand).await;
    let invocation = env.invoke("{}").await;
    env.shutdown().await;
    assert_eq!(
        invocation.outcome,
        Outcome::InitError {
            error_type: "FixtureInitError".into(),
            message: "cannot start".into()
        }
    );
    let report = invocation.report_line();
    assert!(report.contains("\tInit Duration: "), "{report}");
    assert!(
        report.ends_with("\tStatus: error\tError Type: FixtureInitError"),
        "{report}"
    );
}

#[tokio::test]
async fn an_exit_during_init_is_a_runtime_exit_error() {
    let mut env = start(&function("init-crash"), InitType::OnDemand).await;
    let invocation = env.invoke("{}").await;
    env.shutdown().await;
    match &invocation.outcome {
        Outcome::InitError {
            error_type,
            message,
        } => {
            assert_eq!(error_type, "Runtime.ExitError");
            assert_eq!(message, "Runtime exited with error: exit status 2");
        }
        other => panic!("expected an init error, got {other:?}"),
    }
    let payload: Value = serde_json::from_slice(&invocation.payload()).unwrap();
    assert_eq!(
        payload["errorMessage"],
        format!(
            "RequestId: {} Error: Runtime exited with error: exit status 2",
            invocation.request_id
        )
    );
}

#[tokio::test]
async fn logs_reach_the_sink_tagged_with_the_environment() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut env = ExecutionEnvironment::start(7, &function("echo"), InitType::OnDemand, tx)
        .await
        .unwrap();
    env.invoke("{}").await;
    env.shutdown().await;
    let line = rx.recv().await.unwrap();
    assert_eq!(line.environment, 7);
    assert!(line.line.contains("fixture init"));
}

#[tokio::test]
async fn a_missing_bootstrap_is_named() {
    let config = FunctionConfig::new("nothing", "/nonexistent/bootstrap");
    let (tx, _rx) = mpsc::unbounded_channel();
    let error = ExecutionEnvironment::start(1, &config, InitType::OnDemand, tx)
        .await
        .err()
        .expect("no such file");
    assert!(
        error.to_string().contains("/nonexistent/bootstrap"),
        "{error}"
    );
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn an_idle_environment_is_frozen_and_thawed_for_the_next_invocation() {
    let state = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find(|l| l.starts_with("State:"))
            .unwrap()
            .to_string()
    };
    let mut env = start(&function("echo"), InitType::OnDemand).await;
    let pid = env.pid().unwrap();
    assert_eq!(json(&env.invoke("1").await.outcome)["event"], 1);
    env.freeze();
    assert!(env.is_frozen());
    // Stopped: between invocations nothing in the process runs. The
    // signal takes a moment to land.
    for _ in 0..100 {
        if state(pid).contains("T (stopped)") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(state(pid).contains("T (stopped)"), "{}", state(pid));
    assert_eq!(
        json(&env.invoke("2").await.outcome)["event"],
        2,
        "thawed to answer"
    );
    assert!(!env.is_frozen());
    assert!(!state(pid).contains("T (stopped)"), "{}", state(pid));
    env.freeze();
    env.shutdown().await;
    assert!(!is_running(pid), "a frozen environment still stops");
}
