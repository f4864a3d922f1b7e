//! # Module 4 suite — do not edit
//!
//! These tests judge your crate (`cargo test -p module-4`) and the reference
//! (`cargo test -p module-4-solution`) alike, against the lab's own Secrets
//! Manager by default; with `TEST_SECRETS_URL` set (a moto server), against
//! that. Each test is named after the book step it checks.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use lab::lambda::{ExecutionEnvironment, FunctionConfig, InitType, Outcome};
use module_1::Config;
use module_2::Tickets;
use module_2::{App, MemoryTickets};
use module_3::db::DbConfig;
use module_4::secrets::{self, CURRENT, PREVIOUS, SecretCache, SecretError, SecretValue};
use module_4::tickets::TicketError;
use module_4::{DbCredentials, DbSecret, Keyring, RotatingTickets, TicketKeys, router};
use secrecy::{ExposeSecret, SecretString};
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
    router(app, Keyring::new(Arc::new(cache(secrets, LONG)), id))
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

#[tokio::test]
async fn step_4_4_tickets_naming_unknown_keys_cannot_flood_secrets_manager() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let secrets = Secrets::start().await;
    let id = secrets.create("ticket-signing-key", KEY_ONE).await;
    let api = api(&secrets, &id);
    let (status, _, _) = send(&api, reserve("fan-1")).await;
    assert_eq!(status, StatusCode::CREATED);
    let before = secrets.get_calls();
    for n in 0..20 {
        let claims =
            json!({ "r": "r-1", "e": "midnight-tour", "s": [1], "k": format!("nokey{n:03}") });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let (status, content_type, problem) = send(&api, door(&format!("{claims}.AAAA"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
        assert_eq!(content_type, "application/problem+json");
    }
    if let (Some(before), Some(after)) = (before, secrets.get_calls()) {
        assert!(
            after - before <= 2,
            "step 4.4: 20 tickets naming unknown keys, at once, made {} GetSecretValue calls: \
             one refresh (AWSCURRENT and AWSPREVIOUS) is enough",
            after - before
        );
    }
}

/* ------------------------------ step 4.5 ------------------------------ */

/// A version of `id` holding `json`, as a fetch would return it.
fn version_of(id: &str, json: &str) -> SecretValue {
    SecretValue {
        id: id.into(),
        version_id: "v1".into(),
        stages: vec![CURRENT.into()],
        value: SecretString::from(json.to_string()),
    }
}

const DB_PASSWORD: &str = "hunter2:/@?#%";

#[test]
fn step_4_5_the_database_secret_is_read_as_rds_writes_it() {
    let json = db_secret("db.internal", 6432, "ticket_app", DB_PASSWORD, "tickets");
    let secret = DbSecret::parse(&version_of("prod/db", &json)).expect("an RDS-shaped secret");
    assert_eq!(
        (secret.engine.as_str(), secret.host.as_str(), secret.port),
        ("postgres", "db.internal", 6432)
    );
    assert_eq!(secret.username, "ticket_app");
    assert_eq!(secret.password.expose_secret(), DB_PASSWORD);
    assert_eq!(secret.dbname.as_deref(), Some("tickets"));
    let printed = format!("{secret:?}");
    assert!(
        !printed.contains("hunter2"),
        "Debug prints the password: {printed}"
    );
    // Characters that mean something in a URL are encoded, not lost.
    assert!(secret.connect_options(None).is_ok());
    assert!(secret.connect_options(Some("proxy.internal")).is_ok());
    // RDS's own master-user secrets carry only what RDS needs.
    let master = r#"{"engine":"postgres","host":"db","username":"postgres","password":"pw"}"#;
    let secret = DbSecret::parse(&version_of("rds!cluster", master)).unwrap();
    assert_eq!((secret.port, secret.dbname), (5432, None));
}

#[test]
fn step_4_5_a_wrong_database_secret_names_the_field_never_the_value() {
    let cases = [
        ("a password, not JSON", "hunter2-plain".to_string()),
        (
            "the port as text",
            r#"{"engine":"postgres","host":"db","port":"hunter2-port","username":"u","password":"p"}"#.into(),
        ),
        (
            "the password as a number",
            r#"{"engine":"postgres","host":"db","username":"u","password":7321987}"#.into(),
        ),
        (
            "no password",
            r#"{"engine":"postgres","host":"db","username":"u"}"#.into(),
        ),
        ("a JSON string", r#""hunter2-string""#.into()),
        (
            "another engine",
            r#"{"engine":"mysql","host":"db","username":"u","password":"hunter2-mysql"}"#.into(),
        ),
    ];
    let mut report = String::new();
    for (what, json) in cases {
        let error = DbSecret::parse(&version_of("prod/db", &json))
            .expect_err(what)
            .to_string();
        for leak in ["hunter2", "7321987"] {
            assert!(
                !error.contains(leak),
                "{what}: the error quotes the value: {error}"
            );
        }
        assert!(matches!(
            DbSecret::parse(&version_of("prod/db", &json)),
            Err(SecretError::WrongShape { .. })
        ));
        report.push_str(&format!("{what}: {error}\n"));
    }
    insta::assert_snapshot!(report);
}

/* ------------------------------ step 4.6 ------------------------------ */

#[tokio::test]
async fn step_4_6_a_halfway_rotation_finds_the_pending_password() {
    let secrets = Secrets::start().await;
    let id = secrets
        .create("db", &db_secret("db", 5432, "app", "first", "tickets"))
        .await;
    let cache = Arc::new(cache(&secrets, LONG));
    let (credentials, _) = DbCredentials::load(cache, &id, None).await.unwrap();
    let first = credentials.version_in_use();
    assert_eq!(Some(first.clone()), secrets.version_at(&id, CURRENT).await);

    // Refused, yet nothing was rotated: nothing newer to try.
    assert!(credentials.renew().await.unwrap().is_none());
    assert_eq!(credentials.version_in_use(), first);

    // setSecret has changed the password; AWSCURRENT has not moved yet.
    let pending = secrets
        .put_pending(&id, &db_secret("db", 5432, "app", "second", "tickets"))
        .await;
    assert!(credentials.renew().await.unwrap().is_some());
    assert_eq!(credentials.version_in_use(), pending, "AWSPENDING, halfway");

    // finishSecret: AWSCURRENT is the version already in use.
    secrets.finish(&id, &pending).await;
    assert!(credentials.renew().await.unwrap().is_none());
    assert_eq!(credentials.version_in_use(), pending);

    // A whole rotation later: the new AWSCURRENT.
    secrets
        .rotate(&id, &db_secret("db", 5432, "app", "third", "tickets"))
        .await;
    assert!(credentials.renew().await.unwrap().is_some());
    assert_eq!(
        Some(credentials.version_in_use()),
        secrets.version_at(&id, CURRENT).await
    );
}

#[tokio::test]
async fn step_4_6_a_secret_of_the_wrong_shape_fails_the_load() {
    let secrets = Secrets::start().await;
    let id = secrets.create("db", "hunter2-plain").await;
    let cache = Arc::new(cache(&secrets, LONG));
    let error = DbCredentials::load(cache, &id, None).await.err().unwrap();
    assert_eq!(error.kind(), "SecretWrongShape");
    assert!(error.to_string().contains(&id));
    assert!(!error.to_string().contains("hunter2"));
}

#[tokio::test]
#[ignore = "needs TEST_POSTGRES (cargo workshop db up)"]
async fn step_4_6_a_password_rotation_under_traffic_loses_no_request() {
    let Some((admin_url, host, port)) = test_postgres() else {
        panic!("set TEST_POSTGRES=postgres://USER:PASS@HOST:PORT (cargo workshop db up)");
    };
    sqlx::any::install_default_drivers();
    let secrets = Secrets::start().await;
    let n = std::process::id();
    let (user, dbname) = (format!("rotating_{n}"), format!("rotation_{n}"));
    let admin = sqlx::AnyPool::connect(&format!("{admin_url}/postgres"))
        .await
        .expect("TEST_POSTGRES answers");
    for sql in [
        format!("DROP DATABASE IF EXISTS {dbname}"),
        format!("DROP ROLE IF EXISTS {user}"),
        format!("CREATE ROLE {user} LOGIN PASSWORD 'first-password'"),
        format!("CREATE DATABASE {dbname} OWNER {user}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&admin)
            .await
            .unwrap();
    }
    let secret = |password: &str| db_secret(&host, port, &user, password, &dbname);
    let id = secrets.create("db", &secret("first-password")).await;
    let cache = Arc::new(cache(&secrets, LONG));
    let (credentials, options) = DbCredentials::load(cache, &id, None).await.unwrap();
    let db_config = DbConfig::from_lookup(|_| None).unwrap();
    let pool = module_3::db::pool_options(&db_config).connect_lazy_with(options);
    module_3::db::prepare(&pool, &config())
        .await
        .expect("migrate");
    let tickets = RotatingTickets::new(module_3::SqlTickets::new(pool), Some(credentials));

    // Every session of the user ends, as after a freeze or an idle minute:
    // the next request opens a new connection.
    let disconnect = async || {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{user}'"
        )))
        .execute(&admin)
        .await
        .unwrap();
    };
    let mut failures = Vec::new();
    let mut pending = String::new();
    for i in 0..60 {
        match i {
            // createSecret and setSecret: the database has the new password,
            // AWSCURRENT still the old one.
            20 => {
                pending = secrets.put_pending(&id, &secret("second-password")).await;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "ALTER ROLE {user} PASSWORD 'second-password'"
                )))
                .execute(&admin)
                .await
                .unwrap();
                disconnect().await;
                let old = sqlx::AnyPool::connect(&format!(
                    "postgres://{user}:first-password@{host}:{port}/{dbname}"
                ))
                .await;
                let refused = matches!(&old, Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("28P01"));
                assert!(refused, "the old password still works: no window to test");
            }
            // finishSecret.
            40 => {
                secrets.finish(&id, &pending).await;
                disconnect().await;
            }
            _ => {}
        }
        let request = module_1::ReserveRequest {
            event_id: "midnight-tour".into(),
            customer_id: format!("fan-{i}"),
            quantity: 1,
        };
        if let Err(e) = tickets.reserve(&request, Some(&format!("key-{i}"))).await {
            failures.push(format!("request {i}: {e:?}"));
        }
    }
    assert_eq!(
        failures,
        Vec::<String>::new(),
        "requests lost to the rotation"
    );
    let status = tickets.event("midnight-tour").await.unwrap().unwrap();
    assert_eq!(status.seats_left, 100 - 60);
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
async fn step_4_7_a_key_that_cannot_be_had_fails_init_with_its_id() {
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
                "step 4.7: the INIT error names the secret: {message}"
            );
        }
        other => panic!("step 4.7: INIT must fail on a missing key, not {other:?}"),
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
            panic!("step 4.7: INIT must fail when Secrets Manager is unreachable, not {other:?}")
        }
    }

    // A key too short to sign with, and (on the lab's endpoint, which
    // checks permissions) a key the role may not read.
    let short = secrets.create("short-key", "hunter2-short").await;
    let denied = secrets.create("denied-key", KEY_ONE).await;
    let mut cases = vec![(short, "SecretWrongShape", "hunter2")];
    if let Some(lab) = &secrets.lab {
        lab.deny(&denied);
        cases.push((denied, "SecretAccessDenied", KEY_ONE));
    }
    for (id, expected, value) in cases {
        let (mut env, _) = environment(&secrets, &[("TICKET_KEY_SECRET_ID", id.clone())]).await;
        match env.wait_ready().await {
            Err(Outcome::InitError {
                error_type,
                message,
            }) => {
                assert_eq!(error_type, expected, "{message}");
                assert!(message.contains(&id), "step 4.7: {message}");
                assert!(
                    !message.contains(value),
                    "step 4.7: the INIT error shows the secret: {message}"
                );
            }
            other => panic!("step 4.7: INIT must fail with {expected} for {id}, not {other:?}"),
        }
    }
}

#[tokio::test]
async fn step_4_7_the_bootstrap_fetches_at_init_and_never_prints_a_secret() {
    let secrets = Secrets::start().await;
    let id = secrets.create("ticket-signing-key", KEY_ONE).await;
    let db = migrated_database(&secrets.id("bootstrap"));
    let (mut env, mut logs) = environment(
        &secrets,
        &[
            ("TICKET_KEY_SECRET_ID", id.clone()),
            ("DATABASE_URL", db),
            ("EVENTS", "midnight-tour:100".into()),
        ],
    )
    .await;
    env.wait_ready().await.expect("step 4.7: INIT succeeds");
    let after_init = secrets.get_calls();
    let mut answers = String::new();
    let mut ticket = String::new();
    for fan in ["ann", "bob", "cy"] {
        let body = format!(r#"{{"customer_id": "{fan}", "quantity": 1}}"#);
        let event = http_event("POST", "/events/midnight-tour/reservations", Some(body));
        let invocation = env.invoke(event).await;
        let Outcome::Response(body) = &invocation.outcome else {
            panic!("step 4.7: a reservation: {:?}", invocation.outcome);
        };
        let body = String::from_utf8_lossy(body).to_string();
        let answer: Value = serde_json::from_str(&body).unwrap();
        let inner: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        ticket = inner["ticket"].as_str().expect("a ticket").to_string();
        answers.push_str(&body);
    }
    let event = http_event("GET", &format!("/tickets/{ticket}"), None);
    let invocation = env.invoke(event).await;
    if let Outcome::Response(body) = &invocation.outcome {
        answers.push_str(&String::from_utf8_lossy(body));
        assert!(answers.contains(r#"\"valid\":true"#), "the door: {answers}");
    } else {
        panic!("the door: {:?}", invocation.outcome);
    }
    if let (Some(before), Some(after)) = (after_init, secrets.get_calls()) {
        assert_eq!(
            after, before,
            "step 4.7: invocations use the keys fetched at init: no GetSecretValue per request"
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
            "step 4.7: a secret in the logs:\n{printed}"
        );
        assert!(
            !answers.contains(secret),
            "step 4.7: a secret in a response: {answers}"
        );
    }
}

/* -------------------------------- the traces -------------------------------- */

/// A trace as the X-Ray console draws it, without ids and times: each
/// span's depth, name and what X-Ray reads from it.
fn shape(trace: &lab::xray::Trace) -> Vec<Value> {
    trace
        .spans()
        .into_iter()
        .map(|(depth, span)| {
            let doc = &span.doc;
            let mut shown = json!({ "span": format!("{}{}", "  ".repeat(depth), span.name()) });
            for (key, value) in [
                ("origin", &doc["origin"]),
                ("namespace", &doc["namespace"]),
                ("annotations", &doc["annotations"]),
                ("operation", &doc["aws"]["operation"]),
                ("query", &doc["sql"]["sanitized_query"]),
                ("database", &doc["sql"]["database_type"]),
                ("status", &doc["http"]["response"]["status"]),
            ] {
                if !value.is_null() {
                    shown[key] = value.clone();
                }
            }
            if doc["fault"] == true {
                shown["fault"] = json!(true);
            }
            shown
        })
        .collect()
}

/// The traces of `requests` invocations, once each has its handler's span.
async fn traces(collector: &lab::xray::Collector, requests: usize) -> Vec<lab::xray::Trace> {
    // Flushed before each response: they are here within moments, where
    // a batch left to its 5-second timer would not be.
    for _ in 0..100 {
        let traces = collector.traces();
        let handled = traces
            .iter()
            .filter(|t| t.spans().iter().any(|(_, s)| s.name() == "Handler"))
            .count();
        if handled >= requests {
            return traces;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "step 4.8: the Handler spans of {requests} invocation(s) did not reach the collector within a second of the response (flushed before it?); the collector has:\n{}",
        collector
            .traces()
            .iter()
            .map(|t| t.render())
            .collect::<String>()
    );
}

#[tokio::test]
async fn step_4_8_a_cold_and_a_warm_request_read_top_to_bottom() {
    let secrets = Secrets::start().await;
    let id = secrets.create("ticket-signing-key", KEY_ONE).await;
    let db = migrated_database(&secrets.id("traces"));
    let collector = Arc::new(lab::xray::Collector::start().await.unwrap());
    let mut function = FunctionConfig::new("ticket-drop-4", bootstrap());
    function.environment.extend(secrets.env());
    function.environment.extend([
        ("TICKET_KEY_SECRET_ID".to_string(), id),
        ("DATABASE_URL".to_string(), db),
        ("EVENTS".to_string(), "midnight-tour:100".to_string()),
    ]);
    function.tracing = Some(collector.clone());
    let (tx, mut logs) = tokio::sync::mpsc::unbounded_channel();
    let mut env = ExecutionEnvironment::start(1, &function, InitType::OnDemand, tx)
        .await
        .unwrap();

    let body = r#"{"customer_id": "ann", "quantity": 2}"#.to_string();
    let cold = env
        .invoke(http_event(
            "POST",
            "/events/midnight-tour/reservations",
            Some(body),
        ))
        .await;
    assert!(cold.init_duration.is_some(), "the first invocation is cold");
    // Frozen between invocations, as on Lambda: what the function did not
    // send before its response stays in its buffer.
    env.freeze();
    let traced = traces(&collector, 1).await;
    let warm = env
        .invoke(http_event("GET", "/events/midnight-tour", None))
        .await;
    assert!(warm.init_duration.is_none());
    env.freeze();
    let traced = {
        let all = traces(&collector, 2).await;
        assert_eq!(all.len(), 2, "one trace per invocation");
        assert_eq!(traced[0].id, all[0].id);
        all
    };
    env.shutdown().await;
    let shapes: Vec<Vec<Value>> = traced.iter().map(shape).collect();
    insta::assert_json_snapshot!(shapes);

    // Nothing a trace holds is a secret, and every document was accepted.
    assert_eq!(collector.rejected(), 0, "the daemon's framing");
    let sent = serde_json::to_string(&collector.documents()).unwrap();
    let mut printed = String::new();
    while let Ok(line) = logs.try_recv() {
        printed.push_str(&line.line);
    }
    for secret in [KEY_ONE, &secrets.credentials.secret_access_key] {
        assert!(!sent.contains(secret), "step 4.8: a secret in a trace");
        assert!(!printed.contains(secret), "step 4.8: a secret in the logs");
    }
}

#[tokio::test]
async fn step_4_8_a_whole_lab_run_shows_no_secret_anywhere() {
    use lab::apigw::{Api, HttpRequest};
    let db = migrated_database(&format!("whole-run-{}", std::process::id()));
    let mut config = lab::LabConfig::new("ticket-drop-4", bootstrap());
    config.api = Api::Rest {
        stage: "prod".into(),
    };
    config.tracing = true;
    config.secrets = vec![("workshop/ticket-signing-key".into(), KEY_ONE.into())];
    config.environment.extend([
        ("DATABASE_URL".to_string(), db),
        ("EVENTS".to_string(), "midnight-tour:100".to_string()),
        ("SECRETS_TTL_SECONDS".to_string(), "1".to_string()),
    ]);
    let lab = lab::Lab::start(config, lab::Output::Collect).await.unwrap();
    let mut answers = Vec::new();
    let mut tickets = Vec::new();
    let reserve = |fan: usize| {
        HttpRequest::new("POST", "/prod/events/midnight-tour/reservations")
            .header("content-type", "application/json")
            .body(format!(r#"{{"customer_id": "fan-{fan}", "quantity": 1}}"#))
    };
    for fan in 0..5 {
        let response = lab.send(reserve(fan)).await;
        assert_eq!(response.status, 201, "{:?}", response.body);
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        tickets.push(body["ticket"].as_str().unwrap().to_string());
        answers.push(response);
    }
    // The key rotates; the environments see it once their copy is a
    // second old.
    lab.secrets
        .as_ref()
        .unwrap()
        .rotate("workshop/ticket-signing-key", KEY_TWO)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for fan in 5..10 {
        let response = lab.send(reserve(fan)).await;
        assert_eq!(response.status, 201, "{:?}", response.body);
        answers.push(response);
    }
    for ticket in &tickets {
        let door = HttpRequest::new("GET", &format!("/prod/tickets/{ticket}"));
        let response = lab.send(door).await;
        assert_eq!(
            response.status, 200,
            "step 4.4: an old ticket opens the door"
        );
        answers.push(response);
    }
    answers.push(
        lab.send(HttpRequest::new("GET", "/prod/tickets/not-a-ticket"))
            .await,
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = lab.lines().join("\n");
    let traces = serde_json::to_string(&lab.collector.as_ref().unwrap().documents()).unwrap();
    let access_key = lab
        .secrets
        .as_ref()
        .unwrap()
        .options()
        .credentials
        .secret_access_key
        .clone();
    lab.stop().await;
    assert!(
        lines.contains("init complete") && lines.contains("access |"),
        "{lines}"
    );
    assert!(
        traces.contains("GetSecretValue"),
        "step 4.8: no span of the function's reached the collector (INIT's GetSecretValue goes into the first invocation's trace)"
    );
    let responses: String = answers
        .iter()
        .map(|r| format!("{:?} {}\n", r.headers, String::from_utf8_lossy(&r.body)))
        .collect();
    for secret in [KEY_ONE, KEY_TWO, &access_key] {
        assert!(!lines.contains(secret), "a secret in the logs");
        assert!(!traces.contains(secret), "a secret in a trace");
        assert!(!responses.contains(secret), "a secret in a response");
    }
}
