//! The lab's fleet and gateway against the fixture function: scaling,
//! throttling, provisioned environments, and what a client sees of each
//! failure, as API Gateway and Lambda document it.

use std::sync::Arc;
use std::time::Duration;

use lab::apigw::{Api, HttpRequest, HttpResponse};
use lab::fleet::{Fleet, FleetError, FleetOptions, ProvisionedScaling, TargetTracking};
use lab::gateway::{Gateway, GatewayOptions};
use lab::lambda::{FunctionConfig, Outcome};
use lab::metrics::Recorder;
use serde_json::{Value, json};
use tokio::sync::mpsc;

fn function(mode: &str) -> FunctionConfig {
    let mut config = FunctionConfig::new("fixture", env!("CARGO_BIN_EXE_fixture-function"));
    config.environment.insert("FIXTURE".into(), mode.into());
    config.environment.insert("FIXTURE_MS".into(), "300".into());
    config
}

async fn fleet(mode: &str, options: FleetOptions) -> (Fleet, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::new());
    let (tx, _rx) = mpsc::unbounded_channel();
    let fleet = Fleet::start(function(mode), options, tx, recorder.clone())
        .await
        .unwrap();
    (fleet, recorder)
}

fn unlimited() -> FleetOptions {
    FleetOptions::default()
}

#[tokio::test]
async fn warm_environments_are_reused_and_new_ones_start_on_demand() {
    let (fleet, recorder) = fleet("slow", unlimited()).await;
    for _ in 0..3 {
        fleet.invoke(r#"{"path":"/"}"#.into()).await.unwrap();
    }
    assert_eq!(
        recorder.snapshot().cold_starts(),
        1,
        "one after the other: one environment"
    );

    let calls: Vec<_> = (0..3)
        .map(|_| {
            let fleet = fleet.clone();
            tokio::spawn(async move { fleet.invoke(r#"{"path":"/"}"#.into()).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let snapshot = recorder.snapshot();
    assert_eq!(
        snapshot.cold_starts(),
        3,
        "three at once: two more environments"
    );
    assert_eq!(snapshot.peak_concurrency(), 3);
    assert_eq!(fleet.idle(), 3, "all three stay warm");
    fleet.shutdown().await;
}

#[tokio::test]
async fn past_the_concurrency_limit_invocations_are_throttled() {
    let options = FleetOptions {
        max_concurrency: Some(2),
        ..unlimited()
    };
    let (fleet, recorder) = fleet("slow", options).await;
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let fleet = fleet.clone();
            tokio::spawn(async move { fleet.invoke("{}".into()).await })
        })
        .collect();
    let mut throttled = 0;
    for call in calls {
        if matches!(call.await.unwrap(), Err(FleetError::Throttled)) {
            throttled += 1;
        }
    }
    assert_eq!(throttled, 2, "4 at once with a limit of 2");
    assert_eq!(recorder.snapshot().throttles.len(), 2);
    assert_eq!(recorder.snapshot().peak_concurrency(), 2);
    fleet.shutdown().await;
}

#[tokio::test]
async fn the_scaling_rate_limits_new_environments() {
    let options = FleetOptions {
        scale_per_second: Some(1.0),
        ..unlimited()
    };
    let (fleet, _) = fleet("slow", options).await;
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let fleet = fleet.clone();
            tokio::spawn(async move { fleet.invoke("{}".into()).await })
        })
        .collect();
    let mut results = Vec::new();
    for call in calls {
        results.push(call.await.unwrap().map(|_| ()));
    }
    assert_eq!(
        results
            .iter()
            .filter(|r| **r == Err(FleetError::Throttled))
            .count(),
        2,
        "one new environment a second: the other two are throttled"
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn provisioned_environments_are_initialised_before_traffic() {
    let options = FleetOptions {
        provisioned: 2,
        ..unlimited()
    };
    let (fleet, recorder) = fleet("env", options).await;
    assert_eq!(fleet.idle(), 2, "ready before the first request");
    assert_eq!(recorder.snapshot().provisioned_inits.len(), 2);
    let invocation = fleet.invoke("{}".into()).await.unwrap();
    assert!(
        invocation.init_duration.is_none(),
        "no cold start on a provisioned environment"
    );
    let Outcome::Response(body) = &invocation.outcome else {
        panic!("expected a response");
    };
    let vars: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(
        vars["AWS_LAMBDA_INITIALIZATION_TYPE"],
        "provisioned-concurrency"
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn past_the_provisioned_environments_invocations_spill_over_to_on_demand() {
    let options = FleetOptions {
        provisioned: 1,
        ..unlimited()
    };
    let (fleet, recorder) = fleet("slow", options).await;
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let fleet = fleet.clone();
            tokio::spawn(async move { fleet.invoke(r#"{"path":"/"}"#.into()).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let snapshot = recorder.snapshot();
    let on_provisioned = snapshot
        .invocations
        .iter()
        .filter(|i| i.provisioned)
        .count();
    assert_eq!(
        on_provisioned, 1,
        "one provisioned environment, one at a time"
    );
    assert_eq!(snapshot.spillovers(), 2, "the other two spilled over");
    assert_eq!(snapshot.cold_starts(), 2, "and paid INIT on demand");
    // One after the other, the provisioned environment is served first.
    fleet.invoke(r#"{"path":"/"}"#.into()).await.unwrap();
    let last = recorder.snapshot().invocations.pop().unwrap();
    assert!(last.provisioned && !last.spillover, "{last:?}");
    assert!(recorder.snapshot().provisioned_env_seconds() > 0.0);
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_scheduled_action_raises_provisioned_concurrency_at_its_time() {
    let options = FleetOptions {
        provisioned: 1,
        provisioned_scaling: Some(ProvisionedScaling::Scheduled {
            at: Duration::from_millis(300),
            to: 3,
        }),
        ..unlimited()
    };
    let (fleet, recorder) = fleet("env", options).await;
    assert_eq!(fleet.provisioned(), 1, "before the action");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fleet.provisioned(), 3, "after it");
    assert_eq!(recorder.snapshot().peak_provisioned(), 3);
    fleet.shutdown().await;
}

#[tokio::test]
async fn target_tracking_scales_out_after_three_datapoints_above_the_target() {
    // Every provisioned environment kept busy: utilisation 100 % against a
    // target of 50 %; a 200 ms minute.
    let policy = TargetTracking::aws(0.5, Duration::from_millis(200), 4);
    let options = FleetOptions {
        provisioned: 1,
        provisioned_scaling: Some(ProvisionedScaling::TargetTracking(policy)),
        ..unlimited()
    };
    let (fleet, recorder) = fleet("slow", options).await;
    let busy = {
        let fleet = fleet.clone();
        tokio::spawn(async move {
            for _ in 0..6 {
                fleet.invoke(r#"{"path":"/"}"#.into()).await.unwrap();
            }
        })
    };
    busy.await.unwrap();
    let snapshot = recorder.snapshot();
    let (at, from, to) = *snapshot
        .scale_outs
        .first()
        .expect("a scale-out after three datapoints above the target");
    assert_eq!(
        (from, to),
        (1, 2),
        "to the capacity at the target: 1 x 100 % / 50 %"
    );
    let before: Vec<&(f64, f64)> = snapshot.datapoints.iter().filter(|d| d.0 <= at).collect();
    assert!(
        before.len() >= 3,
        "not before three datapoints: {:?}",
        snapshot.datapoints
    );
    assert!(
        before.iter().rev().take(3).all(|d| d.1 > 0.5),
        "three in a row above the target: {before:?}"
    );
    fleet.shutdown().await;
}

#[test]
fn target_tracking_asks_for_the_capacity_that_meets_the_target() {
    let policy = TargetTracking::aws(0.7, Duration::from_secs(2), 50);
    assert_eq!(policy.desired(10, 1.0), 15, "ceil(10 x 1.0 / 0.7)");
    assert_eq!(policy.desired(10, 0.7), 10);
    assert_eq!(policy.desired(40, 1.0), 50, "never past MaxCapacity");
    assert_eq!(policy.compression(), 30.0, "a 2-s minute");
}

/* ------------------------------- gateway ------------------------------- */

struct Front {
    gateway: Arc<Gateway>,
    access: mpsc::UnboundedReceiver<String>,
}

async fn front(mode: &str, fleet_options: FleetOptions, options: GatewayOptions) -> Front {
    let (fleet, recorder) = fleet(mode, fleet_options).await;
    let (tx, access) = mpsc::unbounded_channel();
    Front {
        gateway: Gateway::new(fleet, options, recorder, tx),
        access,
    }
}

fn rest() -> Api {
    Api::Rest {
        stage: "prod".into(),
    }
}

fn body(response: &HttpResponse) -> Value {
    serde_json::from_slice(&response.body).unwrap()
}

#[tokio::test]
async fn requests_become_events_of_the_api_s_payload_version() {
    let http = front("proxy", unlimited(), GatewayOptions::new(Api::Http)).await;
    let response = http
        .gateway
        .handle(HttpRequest::new("GET", "/events/x?a=1"))
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        body(&response),
        json!({"path": "/events/x", "stage": "$default", "version": "2.0"})
    );
    assert!(
        response.header("apigw-requestid").is_some(),
        "HTTP APIs name the request"
    );

    let mut rest_front = front("proxy", unlimited(), GatewayOptions::new(rest())).await;
    let response = rest_front
        .gateway
        .handle(HttpRequest::new("GET", "/prod/events/x"))
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        body(&response),
        json!({"path": "/events/x", "stage": "prod", "version": "1.0"}),
        "a REST URL names the stage; the event's path does not"
    );
    let id = response
        .header("x-amzn-RequestId")
        .expect("REST APIs name the request")
        .to_string();
    let line: Value = serde_json::from_str(&rest_front.access.recv().await.unwrap()).unwrap();
    assert_eq!(line["requestId"], id.as_str());
    assert_eq!(line["status"], "200");
    assert_eq!(line["httpMethod"], "GET");
    assert_eq!(line["resourcePath"], "/{proxy+}");
    assert_eq!(line["integrationStatus"], "200");
    assert_ne!(line["integrationLatency"], "-");
}

#[tokio::test]
async fn over_the_rate_the_gateway_answers_429() {
    let mut options = GatewayOptions::new(Api::Http);
    // One token a minute: however slow the machine (a cold start, a busy
    // CI), no token comes back while the five requests run.
    options.throttle = Some((1.0 / 60.0, 2));
    let mut f = front("proxy", unlimited(), options).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(f.gateway.handle(HttpRequest::new("GET", "/")).await);
    }
    let codes: Vec<u16> = statuses.iter().map(|r| r.status).collect();
    assert_eq!(
        codes,
        vec![200, 200, 429, 429, 429],
        "a burst of 2, then nothing until a token comes back"
    );
    assert_eq!(body(&statuses[2]), json!({"message": "Too Many Requests"}));
    let mut lines = Vec::new();
    while let Ok(line) = f.access.try_recv() {
        lines.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    assert_eq!(lines[2]["errorMessage"], "Too Many Requests");
    assert_eq!(
        lines[2]["integrationLatency"], "-",
        "a throttled request never reaches the function"
    );
}

#[tokio::test]
async fn rest_apis_check_the_stage_and_the_api_key() {
    let mut options = GatewayOptions::new(rest());
    options.api_key = Some("key-1".into());
    let f = front("proxy", unlimited(), options).await;
    let no_key = f
        .gateway
        .handle(HttpRequest::new("GET", "/prod/events/x"))
        .await;
    assert_eq!(no_key.status, 403);
    assert_eq!(body(&no_key), json!({"message": "Forbidden"}));
    let wrong = f
        .gateway
        .handle(HttpRequest::new("GET", "/prod/events/x").header("x-api-key", "nope"))
        .await;
    assert_eq!(wrong.status, 403);
    let good = f
        .gateway
        .handle(HttpRequest::new("GET", "/prod/events/x").header("X-API-Key", "key-1"))
        .await;
    assert_eq!(good.status, 200);
    let no_stage = f
        .gateway
        .handle(HttpRequest::new("GET", "/events/x").header("x-api-key", "key-1"))
        .await;
    assert_eq!(no_stage.status, 403);
    assert_eq!(
        body(&no_stage),
        json!({"message": "Missing Authentication Token"})
    );
}

#[tokio::test]
async fn a_throttled_function_is_a_500_behind_a_proxy_integration() {
    let options = FleetOptions {
        max_concurrency: Some(1),
        ..unlimited()
    };
    let f = front("slow", options, GatewayOptions::new(Api::Http)).await;
    let (a, b) = tokio::join!(
        f.gateway.handle(HttpRequest::new("GET", "/")),
        f.gateway.handle(HttpRequest::new("GET", "/"))
    );
    let mut codes = vec![a.status, b.status];
    codes.sort();
    assert_eq!(codes, vec![200, 500]);
    let throttled = if a.status == 500 { a } else { b };
    assert_eq!(
        body(&throttled),
        json!({"message": "Internal Server Error"})
    );
}

#[tokio::test]
async fn a_function_error_or_a_bad_answer_is_a_502() {
    let f = front("error", unlimited(), GatewayOptions::new(rest())).await;
    let response = f.gateway.handle(HttpRequest::new("GET", "/prod/")).await;
    assert_eq!(response.status, 502);
    assert_eq!(body(&response), json!({"message": "Internal server error"}));
    assert_eq!(
        response.header("x-amzn-ErrorType"),
        Some("InternalServerErrorException")
    );

    // A REST API needs a statusCode; the echo fixture answers without one.
    let f = front("echo", unlimited(), GatewayOptions::new(rest())).await;
    let response = f.gateway.handle(HttpRequest::new("GET", "/prod/")).await;
    assert_eq!(response.status, 502, "an invalid proxy response");

    let f = front("crash", unlimited(), GatewayOptions::new(Api::Http)).await;
    let response = f.gateway.handle(HttpRequest::new("GET", "/")).await;
    assert_eq!(response.status, 502, "a runtime that exits");
}

#[tokio::test]
async fn no_answer_within_the_integration_timeout_is_a_504() {
    let mut options = GatewayOptions::new(Api::Http);
    options.integration_timeout = Duration::from_millis(100);
    let mut f = front("slow", unlimited(), options).await;
    let response = f.gateway.handle(HttpRequest::new("GET", "/")).await;
    assert_eq!(response.status, 504);
    assert_eq!(
        body(&response),
        json!({"message": "Endpoint request timed out"})
    );
    let line: Value = serde_json::from_str(&f.access.recv().await.unwrap()).unwrap();
    assert_eq!(line["integrationErrorMessage"], "Integration timeout");
    // The function still runs to its end, and its environment is reused.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(f.gateway.fleet().idle(), 1);
}

#[test]
fn the_integration_timeouts_are_api_gateways() {
    assert_eq!(
        GatewayOptions::new(rest()).integration_timeout,
        Duration::from_secs(29)
    );
    assert_eq!(
        GatewayOptions::new(Api::Http).integration_timeout,
        Duration::from_secs(30)
    );
}
