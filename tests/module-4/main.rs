//! # Module 4 suite — do not edit
//!
//! These tests judge your crate (`cargo test -p module-4`) and the reference
//! (`cargo test -p module-4-solution`) alike, against the lab's own Secrets
//! Manager by default; with `TEST_SECRETS_URL` set (a moto server), against
//! that. Each test is named after the book step it checks.

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use lab::lambda::{ExecutionEnvironment, FunctionConfig, InitType, Outcome};
use module_1::Config;
use module_2::{App, MemoryTickets};
use module_4::secrets::{self, CURRENT, PREVIOUS, SecretCache, SecretError};
use module_4::tickets::TicketError;
use module_4::{Keyring, TicketKeys, router};
use serde_json::{Value, json};
use support::*;
use tower::ServiceExt;

fn cache(secrets: &Secrets, ttl: Duration) -> SecretCache {
    SecretCache::new(secrets.client(), ttl)
}

const LONG: Duration = Duration::from_secs(3600);

/* ------------------------------ step 4.1 ------------------------------ */

#[tokio::test]
async fn step_4_1_a_secret_is_fetched_with_its_version_and_stage() {
    let secrets = Secrets::start().await;
    let id = secrets.create("ticket-signing-key", KEY_ONE).await;
    let value = secrets::fetch(&secrets.client(), &id, CURRENT)
        .await
        .expect("step 4.1: the secret is fetched");
    use secrecy::ExposeSecret;
    assert_eq!(value.value.expose_secret(), KEY_ONE, "step 4.1: its value");
    assert_eq!(value.id, id);
    assert!(!value.version_id.is_empty(), "step 4.1: its version id");
    assert!(
        value.stages.iter().any(|s| s == CURRENT),
        "step 4.1: the version fetched is labelled AWSCURRENT: {:?}",
        value.stages
    );
}

#[tokio::test]
async fn step_4_1_a_missing_secret_is_named_not_shown() {
    let secrets = Secrets::start().await;
    let id = secrets.id("no-such-secret");
    let error = secrets::fetch(&secrets.client(), &id, CURRENT)
        .await
        .expect_err("step 4.1: a missing secret is an error");
    assert!(
        matches!(error, SecretError::NotFound { .. }),
        "step 4.1: ResourceNotFoundException is SecretError::NotFound, not {error:?}"
    );
    assert!(
        error.to_string().contains(&id),
        "step 4.1: the message names the secret: {error}"
    );
}

#[tokio::test]
async fn step_4_1_access_denied_is_named() {
    let secrets = Secrets::start().await;
    let Some(lab) = &secrets.lab else {
        eprintln!("moto does not check permissions: this test runs against the lab");
        return;
    };
    let id = secrets.create("denied", KEY_ONE).await;
    lab.deny(&id);
    let error = secrets::fetch(&secrets.client(), &id, CURRENT)
        .await
        .expect_err("step 4.1: access denied is an error");
    assert!(
        matches!(&error, SecretError::AccessDenied { id: named } if named == &id),
        "step 4.1: AccessDeniedException is SecretError::AccessDenied, not {error:?}"
    );
    assert!(!error.to_string().contains(KEY_ONE));
}

#[tokio::test]
async fn step_4_1_an_unreachable_secrets_manager_fails_fast() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let credentials = lab::secrets::Credentials::generate();
    let client = client_for(&format!("http://{closed}"), &credentials, "us-east-1");
    let started = std::time::Instant::now();
    let error = secrets::fetch(&client, "workshop/ticket-signing-key", CURRENT)
        .await
        .expect_err("step 4.1: nobody answers");
    assert!(
        matches!(error, SecretError::Unreachable { .. }),
        "step 4.1: a connection refused is SecretError::Unreachable, not {error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "step 4.1: an unreachable endpoint fails within seconds"
    );
}

#[tokio::test]
async fn step_4_1_a_secret_value_never_prints_itself() {
    let secrets = Secrets::start().await;
    let id = secrets.create("ticket-signing-key", KEY_ONE).await;
    let value = secrets::fetch(&secrets.client(), &id, CURRENT)
        .await
        .unwrap();
    let debug = format!("{value:?} {value:#?}");
    assert!(
        !debug.contains(KEY_ONE),
        "step 4.1: Debug shows the value: {debug}"
    );
    assert!(debug.contains(&id), "the id is not a secret: {debug}");
}

/* ------------------------------ step 4.2 ------------------------------ */

#[tokio::test]
async fn step_4_2_many_uses_make_one_call() {
    let secrets = Secrets::start().await;
    let id = secrets.create("ticket-signing-key", KEY_ONE).await;
    let cache = cache(&secrets, LONG);
    for _ in 0..50 {
        cache
            .get(&id, CURRENT)
            .await
            .expect("step 4.2: the secret is there");
    }
    if let Some(calls) = secrets.get_calls() {
        assert_eq!(
            calls, 1,
            "step 4.2: 50 uses within the TTL make one GetSecretValue call"
        );
    }
}

#[tokio::test]
async fn step_4_2_a_stage_on_no_version_is_remembered_too() {
    let secrets = Secrets::start().await;
    let id = secrets.create("never-rotated", KEY_ONE).await;
    let cache = cache(&secrets, LONG);
    for _ in 0..10 {
        let previous = cache.get_optional(&id, PREVIOUS).await.unwrap();
        assert!(
            previous.is_none(),
            "a secret never rotated has no AWSPREVIOUS"
        );
    }
    if let Some(calls) = secrets.get_calls() {
        assert_eq!(calls, 1, "step 4.2: asked once, not once per use");
    }
}

#[tokio::test]
async fn step_4_2_past_the_ttl_the_secret_is_fetched_again() {
    let secrets = Secrets::start().await;
    let id = secrets.create("short-lived", KEY_ONE).await;
    let cache = cache(&secrets, Duration::from_millis(200));
    cache.get(&id, CURRENT).await.unwrap();
    secrets.rotate(&id, KEY_TWO).await;
    use secrecy::ExposeSecret;
    let soon = cache.get(&id, CURRENT).await.unwrap();
    assert_eq!(
        soon.value.expose_secret(),
        KEY_ONE,
        "step 4.2: within the TTL the cached value is used"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    let later = cache.get(&id, CURRENT).await.unwrap();
    assert_eq!(
        later.value.expose_secret(),
        KEY_TWO,
        "step 4.2: past the TTL the secret is fetched again"
    );
}

/* ------------------------------ step 4.3 ------------------------------ */

fn booking(id: &str) -> module_2::Booking {
    module_2::Booking {
        reservation_id: id.into(),
        event_id: "midnight-tour".into(),
        customer_id: "fan-1".into(),
        quantity: 2,
        seats: vec![7, 8],
        seats_left: 90,
    }
}

#[tokio::test]
async fn step_4_3_a_signed_ticket_verifies_and_a_forged_one_does_not() {
    let secrets = Secrets::start().await;
    let id = secrets.create("ticket-signing-key", KEY_ONE).await;
    let keys = TicketKeys::load(&cache(&secrets, LONG), &id).await.unwrap();
    let ticket = keys.sign(&booking("r-1"));
    assert!(!ticket.contains(KEY_ONE), "a ticket never holds its key");
    let (claims, key) = keys
        .verify(&ticket)
        .expect("step 4.3: its own ticket verifies");
    assert_eq!((claims.r.as_str(), claims.s.clone()), ("r-1", vec![7, 8]));
    assert_eq!(key.stage, CURRENT);
    assert_eq!(
        keys.sign(&booking("r-1")),
        ticket,
        "the same reservation, the same key: the same ticket"
    );

    let (claims_part, signature) = ticket.split_once('.').unwrap();
    let other = keys.sign(&booking("r-2"));
    let (other_claims, _) = other.split_once('.').unwrap();
    assert_eq!(
        keys.verify(&format!("{other_claims}.{signature}"))
            .unwrap_err(),
        TicketError::BadSignature,
        "step 4.3: another reservation's claims under this signature"
    );
    let mut flipped = signature.to_string().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let flipped = format!("{claims_part}.{}", String::from_utf8(flipped).unwrap());
    assert_eq!(
        keys.verify(&flipped).unwrap_err(),
        TicketError::BadSignature
    );
    for garbage in ["", "no-dot", "!!.!!", "e30.AAAA"] {
        assert!(
            matches!(keys.verify(garbage), Err(TicketError::Malformed(_))),
            "step 4.3: {garbage:?} is not a ticket"
        );
    }
}

#[tokio::test]
async fn step_4_3_a_rotation_keeps_the_tickets_already_issued() {
    let secrets = Secrets::start().await;
    let id = secrets.create("ticket-signing-key", KEY_ONE).await;
    let before = TicketKeys::load(&cache(&secrets, LONG), &id).await.unwrap();
    let old_ticket = before.sign(&booking("r-old"));

    secrets.rotate(&id, KEY_TWO).await;
    let after = TicketKeys::load(&cache(&secrets, LONG), &id).await.unwrap();
    let (_, key) = after
        .verify(&old_ticket)
        .expect("step 4.3: a ticket from before the rotation still opens the door");
    assert_eq!(key.stage, PREVIOUS);
    let new_ticket = after.sign(&booking("r-new"));
    assert_eq!(after.verify(&new_ticket).unwrap().1.stage, CURRENT);
    assert_eq!(
        before.verify(&new_ticket).unwrap_err(),
        TicketError::UnknownKey,
        "keys from before the rotation do not know the new key"
    );

    secrets.rotate(&id, KEY_THREE).await;
    let twice = TicketKeys::load(&cache(&secrets, LONG), &id).await.unwrap();
    assert_eq!(
        twice.verify(&old_ticket).unwrap_err(),
        TicketError::UnknownKey,
        "step 4.3: two rotations later the first key is no longer accepted"
    );
    assert_eq!(twice.verify(&new_ticket).unwrap().1.stage, PREVIOUS);
}

/* ------------------------------ step 4.4 ------------------------------ */

fn config() -> Config {
    Config::from_lookup(|name| (name == "EVENTS").then(|| "midnight-tour:100".to_string()))
        .expect("test configuration is valid")
}

fn api(secrets: &Secrets, id: &str) -> axum::Router {
    let config = config();
    let app = App::new(config.clone(), MemoryTickets::new(config));
    router(
        app,
        Keyring {
            cache: cache(secrets, LONG),
            secret_id: id.into(),
        },
    )
}

async fn send(api: &axum::Router, request: Request<Body>) -> (StatusCode, String, Value) {
    let response = api.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        content_type,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn reserve(fan: &str) -> Request<Body> {
    Request::post("/events/midnight-tour/reservations")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({ "customer_id": fan, "quantity": 2 }).to_string(),
        ))
        .unwrap()
}

fn door(ticket: &str) -> Request<Body> {
    Request::get(format!("/tickets/{ticket}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn step_4_4_a_reservation_carries_a_ticket_the_door_accepts() {
    let secrets = Secrets::start().await;
    let id = secrets.create("ticket-signing-key", KEY_ONE).await;
    let api = api(&secrets, &id);
    let (status, _, booking) = send(&api, reserve("fan-1")).await;
    assert_eq!(status, StatusCode::CREATED, "{booking}");
    let ticket = booking["ticket"]
        .as_str()
        .expect("step 4.4: the reservation's answer has a ticket");
    assert_eq!(
        booking["seats"],
        json!([1, 2]),
        "module 2's fields are all there"
    );
    let (status, _, answer) = send(&api, door(ticket)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "step 4.4: the door accepts it: {answer}"
    );
    assert_eq!(
        answer,
        json!({
            "valid": true,
            "reservation_id": booking["reservation_id"],
            "event_id": "midnight-tour",
            "seats": [1, 2],
            "signed_with": "AWSCURRENT",
        })
    );
}

#[tokio::test]
async fn step_4_4_a_bad_ticket_is_a_problem() {
    let secrets = Secrets::start().await;
    let id = secrets.create("ticket-signing-key", KEY_ONE).await;
    let api = api(&secrets, &id);
    let (_, _, booking) = send(&api, reserve("fan-1")).await;
    let ticket = booking["ticket"].as_str().unwrap();
    let (claims, _) = ticket.split_once('.').unwrap();

    let (status, content_type, problem) = send(&api, door("not-a-ticket")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(
        problem["type"]
            .as_str()
            .map(|t| t.ends_with("malformed-ticket")),
        Some(true),
        "{problem}"
    );

    let forged = format!("{claims}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let (status, content_type, problem) = send(&api, door(&forged)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "step 4.4: a forged ticket: {problem}"
    );
    assert_eq!(content_type, "application/problem+json");
    assert!(!problem.to_string().contains(KEY_ONE));
}

#[tokio::test]
async fn step_4_4_an_environment_that_missed_the_rotation_still_opens_the_door() {
    let secrets = Secrets::start().await;
    let id = secrets.create("ticket-signing-key", KEY_ONE).await;
    let stale = api(&secrets, &id);
    let (status, _, _) = send(&stale, reserve("fan-1")).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the stale environment has its keys"
    );

    secrets.rotate(&id, KEY_TWO).await;
    let fresh = api(&secrets, &id);
    let (_, _, booking) = send(&fresh, reserve("fan-2")).await;
    let ticket = booking["ticket"].as_str().unwrap().to_string();

    let (status, _, answer) = send(&stale, door(&ticket)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "step 4.4: a ticket signed with a key this environment has not fetched yet: fetch, then check: {answer}"
    );
    assert_eq!(answer["signed_with"], "AWSCURRENT");
}

/* ------------------------------ the bootstrap ------------------------------ */

async fn environment(
    secrets: &Secrets,
    env: &[(&str, String)],
) -> (
    ExecutionEnvironment,
    tokio::sync::mpsc::UnboundedReceiver<lab::lambda::LogLine>,
) {
    let mut function = FunctionConfig::new("ticket-drop-4", bootstrap());
    for (key, value) in secrets.env() {
        function.environment.insert(key, value);
    }
    for (key, value) in env {
        function.environment.insert(key.to_string(), value.clone());
    }
    let (tx, logs) = tokio::sync::mpsc::unbounded_channel();
    let environment = ExecutionEnvironment::start(1, &function, InitType::OnDemand, tx)
        .await
        .expect("the bootstrap starts");
    (environment, logs)
}

#[tokio::test]
async fn step_4_5_a_key_that_cannot_be_had_fails_init_with_its_id() {
    let secrets = Secrets::start().await;
    let missing = secrets.id("no-such-key");
    let (mut env, _) = environment(&secrets, &[("TICKET_KEY_SECRET_ID", missing.clone())]).await;
    match env.wait_ready().await {
        Err(Outcome::InitError {
            error_type,
            message,
        }) => {
            assert_eq!(error_type, "SecretNotFound", "{message}");
            assert!(
                message.contains(&missing),
                "step 4.5: the INIT error names the secret: {message}"
            );
        }
        other => panic!("step 4.5: INIT must fail on a missing key, not {other:?}"),
    }

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (mut env, _) = environment(
        &secrets,
        &[(
            "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            format!("http://{closed}"),
        )],
    )
    .await;
    match env.wait_ready().await {
        Err(Outcome::InitError {
            error_type,
            message,
        }) => {
            assert_eq!(error_type, "SecretsManagerUnreachable", "{message}");
        }
        other => {
            panic!("step 4.5: INIT must fail when Secrets Manager is unreachable, not {other:?}")
        }
    }
}

#[tokio::test]
async fn step_4_5_the_bootstrap_fetches_at_init_and_never_prints_a_secret() {
    let secrets = Secrets::start().await;
    let id = secrets.create("ticket-signing-key", KEY_ONE).await;
    let dir = scratch_dir().join(secrets.id("bootstrap").replace('/', "-"));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite:{}?mode=rwc", dir.join("tickets.db").display());
    let status = std::process::Command::new(bootstrap())
        .arg("migrate")
        .env("DATABASE_URL", &db)
        .env("EVENTS", "midnight-tour:100")
        .status()
        .expect("the bootstrap runs");
    assert!(status.success(), "migrate");
    let (mut env, mut logs) = environment(
        &secrets,
        &[
            ("TICKET_KEY_SECRET_ID", id.clone()),
            ("DATABASE_URL", db),
            ("EVENTS", "midnight-tour:100".into()),
        ],
    )
    .await;
    env.wait_ready().await.expect("step 4.5: INIT succeeds");
    let after_init = secrets.get_calls();
    let mut answers = String::new();
    let mut ticket = String::new();
    for fan in ["ann", "bob", "cy"] {
        let request = lab::apigw::HttpRequest::new("POST", "/events/midnight-tour/reservations")
            .header("content-type", "application/json")
            .body(format!(r#"{{"customer_id": "{fan}", "quantity": 1}}"#));
        let meta = lab::apigw::RequestMeta::now(format!("gw-{fan}"));
        let event = lab::apigw::event(&lab::apigw::Api::Http, &request, &meta, "$default");
        let invocation = env.invoke(event.to_string()).await;
        let Outcome::Response(body) = &invocation.outcome else {
            panic!("step 4.5: a reservation: {:?}", invocation.outcome);
        };
        let body = String::from_utf8_lossy(body).to_string();
        let answer: Value = serde_json::from_str(&body).unwrap();
        let inner: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        ticket = inner["ticket"].as_str().expect("a ticket").to_string();
        answers.push_str(&body);
    }
    let request = lab::apigw::HttpRequest::new("GET", &format!("/tickets/{ticket}"));
    let meta = lab::apigw::RequestMeta::now("gw-door".to_string());
    let event = lab::apigw::event(&lab::apigw::Api::Http, &request, &meta, "$default");
    let invocation = env.invoke(event.to_string()).await;
    if let Outcome::Response(body) = &invocation.outcome {
        answers.push_str(&String::from_utf8_lossy(body));
        assert!(answers.contains(r#"\"valid\":true"#), "the door: {answers}");
    } else {
        panic!("the door: {:?}", invocation.outcome);
    }
    if let (Some(before), Some(after)) = (after_init, secrets.get_calls()) {
        assert_eq!(
            after, before,
            "step 4.5: invocations use the keys fetched at init: no GetSecretValue per request"
        );
    }
    env.shutdown().await;
    let mut printed = String::new();
    while let Ok(line) = logs.try_recv() {
        printed.push_str(&line.line);
        printed.push('\n');
    }
    assert!(printed.contains("init complete"), "{printed}");
    for secret in [KEY_ONE, &secrets.credentials.secret_access_key] {
        assert!(
            !printed.contains(secret),
            "step 4.5: a secret in the logs:\n{printed}"
        );
        assert!(
            !answers.contains(secret),
            "step 4.5: a secret in a response: {answers}"
        );
    }
}
