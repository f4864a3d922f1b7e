//! # Module 2 suite — do not edit
//!
//! These tests judge your crate (`cargo test -p module-2`) and the reference
//! (`cargo test -p module-2-solution`) alike. Each test is named after the
//! book step it checks: when `step_2_3_...` fails, read step 2.3 of the book
//! (`book/src/module-2/`), or run `cargo workshop verify`.
//!
//! Most tests send API Gateway events, in both payload versions, through
//! your router the way `lambda_http` does inside Lambda.

mod support;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use lab::apigw::{Api, HttpRequest, HttpResponse};
use lab::lambda::{ExecutionEnvironment, FunctionConfig, InitType, Outcome};
use lab::{Lab, LabConfig, Output};
use module_1::TicketError;
use module_2::body::{MAX_BODY_BYTES, parse_reservation};
use module_2::gateway::RequestIds;
use module_2::{ApiError, App, MemoryTickets, Problem, routes};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

fn post(path: &str, body: &str) -> HttpRequest {
    HttpRequest::new("POST", path)
        .header("content-type", "application/json")
        .body(body.to_string())
}

const RESERVE: &str = r#"{"customer_id": "c-42", "quantity": 2}"#;

/* ------------------------------ step 2.1 ------------------------------ */

fn all_api_errors() -> Vec<ApiError> {
    vec![
        ApiError::MalformedJson("EOF while parsing an object at line 1 column 1".into()),
        ApiError::UnsupportedMediaType("text/plain".into()),
        ApiError::NotFound("nothing at GET /nope".into()),
        ApiError::MethodNotAllowed {
            method: "DELETE".into(),
            allow: "GET,HEAD".into(),
        },
        ApiError::PayloadTooLarge { limit: 8192 },
        ApiError::InvalidIdempotencyKey("it must be printable ASCII".into()),
        ApiError::Ticket(TicketError::InvalidRequest("quantity: invalid type".into())),
        ApiError::Ticket(TicketError::UnknownEvent("matinee".into())),
        ApiError::Ticket(TicketError::SoldOut {
            event_id: "last-row".into(),
            requested: 2,
            left: 1,
        }),
        ApiError::Ticket(TicketError::DeadlineTooClose { remaining_ms: 12 }),
        ApiError::Unavailable("the ticket store is unavailable".into()),
    ]
}

#[test]
fn step_2_1_each_error_has_its_status_and_document() {
    let expected = [400, 415, 404, 405, 413, 422, 422, 404, 409, 503, 503];
    let mut documents = Vec::new();
    for (error, status) in all_api_errors().into_iter().zip(expected) {
        let problem = Problem::from(error.clone());
        assert_eq!(problem.status, status, "step 2.1: {error:?} is a {status}");
        documents.push(serde_json::to_value(&problem).unwrap());
    }
    insta::assert_json_snapshot!("step_2_1_problem_documents", documents);
}

#[test]
fn step_2_1_problems_are_responses_with_their_headers() {
    let response = Problem::from(ApiError::MethodNotAllowed {
        method: "DELETE".into(),
        allow: "GET,HEAD".into(),
    })
    .into_response();
    assert_eq!(
        response.status(),
        StatusCode::METHOD_NOT_ALLOWED,
        "step 2.1"
    );
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json",
        "step 2.1"
    );
    assert_eq!(
        response.headers()[header::ALLOW],
        "GET,HEAD",
        "step 2.1: the Allow header"
    );

    let busy = ApiError::Unavailable("down".into()).into_response();
    assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        busy.headers()[header::RETRY_AFTER],
        "1",
        "step 2.1: 503 says when to retry"
    );
}

/* ------------------------------ step 2.2 ------------------------------ */

fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers
}

#[test]
fn step_2_2_reads_a_reservation_with_the_event_from_the_path() {
    let config = config(EVENTS);
    let request = parse_reservation(
        "midnight-tour",
        &json_headers(),
        &Bytes::from(RESERVE),
        &config,
    )
    .expect("step 2.2: a valid reservation");
    assert_eq!(request.event_id, "midnight-tour");
    assert_eq!(request.customer_id, "c-42");
    assert_eq!(request.quantity, 2);

    let mut charset = HeaderMap::new();
    charset.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    parse_reservation("midnight-tour", &charset, &Bytes::from(RESERVE), &config)
        .expect("step 2.2: a charset parameter is fine");
}

#[test]
fn step_2_2_each_bad_body_gets_its_own_error() {
    let config = config(EVENTS);
    let json = json_headers();
    let none = HeaderMap::new();
    let mut text = HeaderMap::new();
    text.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    let big = format!(
        r#"{{"customer_id": "{}", "quantity": 1}}"#,
        "x".repeat(MAX_BODY_BYTES)
    );
    let cases: Vec<(&str, &HeaderMap, String, u16)> = vec![
        ("no content type", &none, RESERVE.into(), 415),
        ("text/plain", &text, RESERVE.into(), 415),
        ("too large", &json, big, 413),
        ("broken JSON", &json, "{\"customer_id\": ".into(), 400),
        ("empty body", &json, String::new(), 400),
        ("not an object", &json, "[1, 2]".into(), 422),
        (
            "missing quantity",
            &json,
            r#"{"customer_id": "c"}"#.into(),
            422,
        ),
        (
            "quantity as text",
            &json,
            r#"{"customer_id": "c", "quantity": "2"}"#.into(),
            422,
        ),
        (
            "quantity 0",
            &json,
            r#"{"customer_id": "c", "quantity": 0}"#.into(),
            422,
        ),
        (
            "another event",
            &json,
            r#"{"event_id": "matinee", "customer_id": "c", "quantity": 1}"#.into(),
            422,
        ),
    ];
    for (what, headers, body, status) in cases {
        let error = parse_reservation("midnight-tour", headers, &Bytes::from(body), &config)
            .expect_err(&format!("step 2.2: {what} must be refused"));
        assert_eq!(
            Problem::from(error.clone()).status,
            status,
            "step 2.2: {what}: {error:?}"
        );
    }
    let unknown = parse_reservation("matinee", &json, &Bytes::from(RESERVE), &config);
    assert_eq!(
        unknown,
        Err(ApiError::Ticket(TicketError::UnknownEvent(
            "matinee".into()
        ))),
        "step 2.2: the event in the path must be on sale"
    );
}

/* ------------------------------ step 2.3 ------------------------------ */

fn app_state(events: &str) -> std::sync::Arc<App<MemoryTickets>> {
    let config = config(events);
    App::new(config.clone(), MemoryTickets::new(config))
}

async fn read(response: axum::response::Response) -> (StatusCode, HeaderMap, Value) {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    (
        parts.status,
        parts.headers,
        serde_json::from_slice(&bytes).unwrap(),
    )
}

#[tokio::test]
async fn step_2_3_get_event_answers_or_refuses() {
    let app = app_state(EVENTS);
    let response = routes::get_event(State(app.clone()), Path("midnight-tour".into()))
        .await
        .expect("step 2.3: the event is on sale");
    let (status, _, body) = read(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"event_id": "midnight-tour", "seats_total": 100, "seats_left": 100}),
        "step 2.3: the event and its seats"
    );
    let missing = routes::get_event(State(app), Path("matinee".into())).await;
    assert_eq!(
        missing.err(),
        Some(ApiError::Ticket(TicketError::UnknownEvent(
            "matinee".into()
        ))),
        "step 2.3: an event that is not on sale"
    );
}

#[tokio::test]
async fn step_2_3_post_reservation_creates_and_answers_201() {
    let app = app_state(EVENTS);
    let mut headers = json_headers();
    headers.insert("idempotency-key", HeaderValue::from_static("order-42"));
    let response = routes::post_reservation(
        State(app.clone()),
        Path("midnight-tour".into()),
        headers,
        Bytes::from(RESERVE),
    )
    .await
    .expect("step 2.3: a valid reservation");
    let (status, headers, body) = read(response).await;
    assert_eq!(status, StatusCode::CREATED, "step 2.3: 201 Created");
    let id = body["reservation_id"]
        .as_str()
        .expect("step 2.3: a reservation_id");
    assert_eq!(
        headers[header::LOCATION],
        format!("/reservations/{id}"),
        "step 2.3: Location"
    );
    assert_eq!(
        headers["idempotency-key"], "order-42",
        "step 2.3: the key is echoed"
    );
    assert_eq!(body["seats"], json!([1, 2]));
    assert_eq!(body["seats_left"], 98);

    let fetched = routes::get_reservation(State(app.clone()), Path(id.to_string()))
        .await
        .expect("step 2.3: the reservation can be read back");
    assert_eq!(
        read(fetched).await.2,
        body,
        "step 2.3: the same reservation"
    );
    let missing = routes::get_reservation(State(app), Path("nope".into())).await;
    assert!(
        matches!(missing, Err(ApiError::NotFound(_))),
        "step 2.3: an unknown reservation is NotFound"
    );
}

#[tokio::test]
async fn step_2_3_errors_reach_the_caller_as_api_errors() {
    let app = app_state(EVENTS);
    let body = Bytes::from(r#"{"customer_id": "c-1", "quantity": 1}"#);
    let call = |headers: HeaderMap| {
        routes::post_reservation(
            State(app.clone()),
            Path("last-row".into()),
            headers,
            body.clone(),
        )
    };
    call(json_headers()).await.expect("step 2.3: the last seat");
    assert_eq!(
        call(json_headers()).await.err(),
        Some(ApiError::Ticket(TicketError::SoldOut {
            event_id: "last-row".into(),
            requested: 1,
            left: 0
        })),
        "step 2.3: the store's SoldOut comes back as it is"
    );
    let mut bad_key = json_headers();
    bad_key.insert("idempotency-key", HeaderValue::from_static("has spaces"));
    assert!(
        matches!(call(bad_key).await, Err(ApiError::InvalidIdempotencyKey(_))),
        "step 2.3: the Idempotency-Key is checked"
    );
}

/* ------------------------------ step 2.4 ------------------------------ */

#[tokio::test]
async fn step_2_4_the_rest_stage_is_taken_off_the_path() {
    use axum::routing::get;
    use lambda_http::tower::Layer;
    // A router that answers one path, behind your strip_stage.
    let inner = axum::Router::new().route("/events/{event_id}", get(|| async { "routed" }));
    let api = axum::Router::new()
        .fallback_service(axum::middleware::from_fn(module_2::gateway::strip_stage).layer(inner));
    let response = call(&api, &rest(), fixture("v1/get-event.json")).await;
    assert_eq!(
        response.status, 200,
        "step 2.4: lambda_http hands over /prod/events/midnight-tour; routing must see /events/midnight-tour"
    );
    let mut event = fixture("v1/get-event.json");
    event["queryStringParameters"] = json!({"lang": "en"});
    event["multiValueQueryStringParameters"] = json!({"lang": ["en"]});
    let response = call(&api, &rest(), event).await;
    assert_eq!(response.status, 200, "step 2.4: with a query string too");
}

#[tokio::test]
async fn step_2_4_request_ids_are_found_in_both_payload_versions() {
    for (version, gateway) in [
        ("v2", "CjA1ZgkYIAMEbZQ="),
        ("v1", "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"),
    ] {
        let event: lambda_http::request::LambdaRequest =
            serde_json::from_value(fixture(&format!("{version}/get-event.json"))).unwrap();
        let mut context = lambda_http::Context::default();
        context.request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into();
        let request = lambda_http::RequestExt::with_lambda_context(
            lambda_http::Request::from(event),
            context,
        );
        let (parts, body) = request.into_parts();
        let request = axum::extract::Request::from_parts(parts, axum::body::Body::new(body));
        assert_eq!(
            RequestIds::of(&request),
            RequestIds {
                lambda: "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into(),
                gateway: gateway.into(),
            },
            "step 2.4: payload {version}"
        );
    }
}

/* ------------------------------ step 2.5 ------------------------------ */

/// Requests a flash sale meets: broken, hostile, or simply wrong. Each must
/// get a 4xx problem document, never a 5xx.
fn hostile_requests() -> Vec<(String, HttpRequest)> {
    let reserve = "/events/midnight-tour/reservations";
    let mut cases: Vec<(String, HttpRequest)> = Vec::new();
    let mut add = |name: &str, request: HttpRequest| cases.push((name.to_string(), request));

    // Broken JSON.
    for (name, body) in [
        ("json: open brace", "{"),
        ("json: cut short", "{\"customer_id\": "),
        (
            "json: trailing comma",
            "{\"customer_id\": \"c\", \"quantity\": 1,}",
        ),
        ("json: single quotes", "{'customer_id': 'c', 'quantity': 1}"),
        (
            "json: trailing garbage",
            "{\"customer_id\": \"c\", \"quantity\": 1} x",
        ),
        ("json: NaN", "{\"customer_id\": \"c\", \"quantity\": NaN}"),
        (
            "json: lone surrogate",
            "{\"customer_id\": \"\\ud800\", \"quantity\": 1}",
        ),
        (
            "json: byte order mark",
            "\u{feff}{\"customer_id\": \"c\", \"quantity\": 1}",
        ),
        ("json: empty body", ""),
        ("json: whitespace only", "   \n"),
        (
            "json: number out of range",
            "{\"customer_id\": \"c\", \"quantity\": 1e400}",
        ),
    ] {
        add(name, post(reserve, body));
    }
    add("json: nested 5,000 deep", post(reserve, &"[".repeat(5_000)));
    add(
        "json: invalid UTF-8",
        HttpRequest::new("POST", reserve)
            .header("content-type", "application/json")
            .body(Bytes::from_static(
                b"{\"customer_id\": \"\xff\xfe\", \"quantity\": 1}",
            )),
    );

    // Wrong types and values.
    for (name, body) in [
        (
            "type: quantity as text",
            r#"{"customer_id": "c", "quantity": "2"}"#,
        ),
        (
            "type: quantity as float",
            r#"{"customer_id": "c", "quantity": 1.5}"#,
        ),
        (
            "type: quantity negative",
            r#"{"customer_id": "c", "quantity": -1}"#,
        ),
        (
            "type: quantity null",
            r#"{"customer_id": "c", "quantity": null}"#,
        ),
        (
            "type: quantity true",
            r#"{"customer_id": "c", "quantity": true}"#,
        ),
        (
            "type: quantity list",
            r#"{"customer_id": "c", "quantity": [1]}"#,
        ),
        (
            "type: quantity object",
            r#"{"customer_id": "c", "quantity": {"n": 1}}"#,
        ),
        (
            "type: customer number",
            r#"{"customer_id": 42, "quantity": 1}"#,
        ),
        ("type: body is a list", r#"["c", 1]"#),
        ("type: body is a string", r#""two please""#),
        ("type: body is null", "null"),
        (
            "value: quantity 0",
            r#"{"customer_id": "c", "quantity": 0}"#,
        ),
        (
            "value: quantity 5",
            r#"{"customer_id": "c", "quantity": 5}"#,
        ),
        (
            "value: quantity 2^64",
            r#"{"customer_id": "c", "quantity": 18446744073709551616}"#,
        ),
        (
            "value: quantity 2^32",
            r#"{"customer_id": "c", "quantity": 4294967296}"#,
        ),
        (
            "value: another event in the body",
            r#"{"event_id": "last-row", "customer_id": "c", "quantity": 1}"#,
        ),
        (
            "value: event_id as number",
            r#"{"event_id": 1, "customer_id": "c", "quantity": 1}"#,
        ),
        (
            "value: blank customer",
            r#"{"customer_id": "   ", "quantity": 1}"#,
        ),
        (
            "value: control characters",
            r#"{"customer_id": "c\u0000\u0007", "quantity": 1}"#,
        ),
    ] {
        add(name, post(reserve, body));
    }
    add(
        "value: overlong customer",
        post(
            reserve,
            &format!(r#"{{"customer_id": "{}", "quantity": 1}}"#, "c".repeat(65)),
        ),
    );

    // Overlong and odd paths.
    add(
        "path: overlong event id",
        HttpRequest::new("GET", &format!("/events/{}", "e".repeat(10_000))),
    );
    add(
        "path: overlong reservation id",
        HttpRequest::new("GET", &format!("/reservations/{}", "r".repeat(10_000))),
    );
    add(
        "path: emoji event id",
        HttpRequest::new("GET", "/events/%F0%9F%8E%9F%EF%B8%8F"),
    );
    add(
        "path: invalid percent-encoding",
        HttpRequest::new("GET", "/events/%FF%FE"),
    );
    add(
        "path: encoded slash",
        HttpRequest::new("GET", "/events/..%2Fhealth"),
    );
    add(
        "path: unknown event",
        HttpRequest::new("GET", "/events/matinee"),
    );
    add(
        "path: reserve for unknown event",
        post("/events/matinee/reservations", RESERVE),
    );
    add("path: trailing slash", HttpRequest::new("GET", "/events/"));
    add(
        "path: too deep",
        HttpRequest::new("GET", "/events/midnight-tour/reservations/1"),
    );
    add(
        "path: double slash",
        HttpRequest::new("GET", "//events//midnight-tour"),
    );

    // Sizes.
    add(
        "size: just over the limit",
        post(
            reserve,
            &format!(
                r#"{{"customer_id": "c", "quantity": 1, "pad": "{}"}}"#,
                "p".repeat(MAX_BODY_BYTES)
            ),
        ),
    );
    add("size: one megabyte", post(reserve, &"x".repeat(1 << 20)));

    // Methods.
    for (method, path) in [
        ("PUT", "/events/midnight-tour"),
        ("DELETE", "/events/midnight-tour"),
        ("PATCH", "/events/midnight-tour"),
        ("GET", reserve),
        ("DELETE", "/reservations/r-1"),
        ("POST", "/health"),
    ] {
        add(
            &format!("method: {method} {path}"),
            HttpRequest::new(method, path),
        );
    }

    // Content types.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/jsonx",
        "",
    ] {
        let mut request = HttpRequest::new("POST", reserve).body(RESERVE.to_string());
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        add(&format!("content type: {content_type:?}"), request);
    }

    // Idempotency keys.
    for (name, key) in [
        ("key: spaces", "a b"),
        ("key: overlong", &"k".repeat(129)),
        ("key: non-ASCII", "clé"),
    ] {
        add(name, post(reserve, RESERVE).header("idempotency-key", key));
    }
    cases
}

#[tokio::test]
async fn step_2_5_the_router_builds_and_answers_health() {
    // Building the router is the test axum 0.8 needs: a route written the
    // old way (`/:event_id`) panics right here.
    let api = api(EVENTS);
    for version in BOTH {
        let response = send(&api, version, &HttpRequest::new("GET", "/health")).await;
        assert_eq!(
            response.status, 200,
            "step 2.5: GET /health, payload {version}"
        );
        assert_eq!(body_json(&response), json!({"status": "ok"}));
    }
}

#[tokio::test]
async fn step_2_5_every_route_is_routed() {
    let api = api(EVENTS);
    for version in BOTH {
        let event = send(
            &api,
            version,
            &HttpRequest::new("GET", "/events/midnight-tour"),
        )
        .await;
        assert_eq!(
            event.status, 200,
            "step 2.5: GET /events/{{event_id}} ({version})"
        );
        let created = send(
            &api,
            version,
            &post("/events/midnight-tour/reservations", RESERVE),
        )
        .await;
        assert_eq!(
            created.status, 201,
            "step 2.5: POST /events/{{event_id}}/reservations ({version})"
        );
        let location = created
            .header("location")
            .expect("step 2.5: a Location header");
        let fetched = send(&api, version, &HttpRequest::new("GET", location)).await;
        assert_eq!(
            fetched.status, 200,
            "step 2.5: GET /reservations/{{reservation_id}} ({version})"
        );
    }
}

#[tokio::test]
async fn step_2_5_unknown_paths_are_404_problems() {
    let api = api(EVENTS);
    for path in [
        "/",
        "/events",
        "/events/midnight-tour/seats",
        "/reservations",
        "/EVENTS/midnight-tour",
    ] {
        for version in BOTH {
            let response = send(&api, version, &HttpRequest::new("GET", path)).await;
            assert_problem(
                &response,
                404,
                "step 2.5",
                &format!("GET {path} ({version})"),
            );
        }
    }
}

#[tokio::test]
async fn step_2_5_wrong_methods_are_405_with_allow() {
    let api = api(EVENTS);
    let cases = [
        ("DELETE", "/events/midnight-tour", "GET,HEAD"),
        ("PUT", "/events/midnight-tour", "GET,HEAD"),
        ("GET", "/events/midnight-tour/reservations", "POST"),
        ("POST", "/health", "GET,HEAD"),
    ];
    for (method, path, allow) in cases {
        for version in BOTH {
            let response = send(&api, version, &HttpRequest::new(method, path)).await;
            assert_problem(&response, 405, "step 2.5", &format!("{method} {path}"));
            assert_eq!(
                response.header("allow"),
                Some(allow),
                "step 2.5: 405 says what is allowed"
            );
        }
    }
}

#[tokio::test]
async fn step_2_5_documented_events_get_documented_answers() {
    // The fixtures are API Gateway's own event formats (tests/module-2/events).
    let mut answers = serde_json::Map::new();
    for (version, which) in [("v2", Api::Http), ("v1", rest())] {
        let api = api(EVENTS);
        let event = call(&api, &which, fixture(&format!("{version}/get-event.json"))).await;
        let created = call(
            &api,
            &which,
            fixture(&format!("{version}/post-reservation.json")),
        )
        .await;
        assert_eq!(created.status, 201, "step 2.5: {version} POST");
        let after = call(&api, &which, fixture(&format!("{version}/get-event.json"))).await;
        // The other routes and the main errors, built in the same format.
        let number = if version == "v1" { "1.0" } else { "2.0" };
        let location = created.header("location").unwrap_or("/reservations/none");
        let reservation = send(&api, number, &HttpRequest::new("GET", location)).await;
        let health = send(&api, number, &HttpRequest::new("GET", "/health")).await;
        let unknown = send(&api, number, &HttpRequest::new("GET", "/events/matinee")).await;
        let last = r#"{"customer_id": "c-7", "quantity": 1}"#;
        send(&api, number, &post("/events/last-row/reservations", last)).await;
        let sold_out = send(&api, number, &post("/events/last-row/reservations", last)).await;
        answers.insert(
            version.to_string(),
            json!({
                "get_event": summary(&event),
                "post_reservation": summary(&created),
                "get_event_after": summary(&after),
                "get_reservation": summary(&reservation),
                "health": summary(&health),
                "unknown_event": summary(&unknown),
                "sold_out": summary(&sold_out),
            }),
        );
    }
    insta::assert_json_snapshot!("step_2_5_documented_events", answers, {
        ".*.post_reservation.headers.location" => "[location]",
        ".*.post_reservation.body.reservation_id" => "[reservation id]",
        ".*.get_reservation.body.reservation_id" => "[reservation id]",
    });
}

#[tokio::test]
async fn step_2_5_a_reservation_can_be_read_back() {
    let api = api(EVENTS);
    for version in BOTH {
        let created = send(
            &api,
            version,
            &post("/events/midnight-tour/reservations", RESERVE),
        )
        .await;
        let booking = body_json(&created);
        let location = created.header("location").expect("step 2.5: Location");
        assert_eq!(
            location,
            format!(
                "/reservations/{}",
                booking["reservation_id"].as_str().unwrap()
            )
        );
        let fetched = send(&api, version, &HttpRequest::new("GET", location)).await;
        assert_eq!(
            body_json(&fetched),
            booking,
            "step 2.5: the same reservation ({version})"
        );
        let missing = send(
            &api,
            version,
            &HttpRequest::new("GET", "/reservations/nope"),
        )
        .await;
        assert_problem(&missing, 404, "step 2.5", "an unknown reservation");
    }
}

#[tokio::test]
async fn step_2_5_sold_out_is_a_409_with_the_seats_left() {
    let api = api(EVENTS);
    for version in BOTH {
        let api = if version == "1.0" {
            support::api(EVENTS)
        } else {
            api.clone()
        };
        let body = r#"{"customer_id": "c-1", "quantity": 1}"#;
        let first = send(&api, version, &post("/events/last-row/reservations", body)).await;
        assert_eq!(first.status, 201, "step 2.5: the last seat ({version})");
        let second = send(&api, version, &post("/events/last-row/reservations", body)).await;
        assert_problem(&second, 409, "step 2.5", "no seat left");
        assert_eq!(
            body_json(&second)["seats_left"],
            0,
            "step 2.5: the problem says what is left"
        );
    }
}

#[tokio::test]
async fn step_2_5_the_idempotency_key_is_echoed_or_refused() {
    let api = api(EVENTS);
    for version in BOTH {
        let request = post("/events/midnight-tour/reservations", RESERVE)
            .header("Idempotency-Key", "order-42");
        let response = send(&api, version, &request).await;
        assert_eq!(response.status, 201);
        assert_eq!(
            response.header("idempotency-key"),
            Some("order-42"),
            "step 2.5: echoed ({version})"
        );
        for bad in ["has spaces", &"k".repeat(200)] {
            let request =
                post("/events/midnight-tour/reservations", RESERVE).header("Idempotency-Key", bad);
            let response = send(&api, version, &request).await;
            assert_problem(&response, 422, "step 2.5", "a bad Idempotency-Key");
        }
    }
}

#[tokio::test]
async fn step_2_5_hostile_requests_get_4xx_problems_never_5xx() {
    let cases = hostile_requests();
    assert!(cases.len() >= 50);
    let mut statuses = serde_json::Map::new();
    for version in BOTH {
        for (name, request) in &cases {
            // A fresh store each time: no request may depend on another.
            let response = send(&api(EVENTS), version, request).await;
            assert!(
                (400..500).contains(&response.status),
                "step 2.5: {name} ({version}) must be a 4xx, got {}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            );
            assert_problem(&response, response.status, "step 2.5", name);
            let previous = statuses.insert(name.clone(), json!(response.status));
            if let Some(previous) = previous {
                assert_eq!(
                    previous,
                    json!(response.status),
                    "step 2.5: {name}: same answer in both versions"
                );
            }
        }
    }
    insta::assert_json_snapshot!("step_2_5_hostile_statuses", statuses);
}

#[tokio::test]
async fn step_2_5_mislabelled_payload_versions_are_read_by_their_shape() {
    // An event whose `version` field says the other format is still read by
    // its shape: lambda_http is built with both payload formats here.
    let api = api(EVENTS);
    for (version, other) in [("2.0", "1.0"), ("1.0", "2.0")] {
        let mut event = event_for(version, &post("/events/midnight-tour/reservations", "{"));
        event["version"] = json!(other);
        let response = call(&api, &api_for(version), event).await;
        assert_problem(
            &response,
            400,
            "step 2.5",
            &format!("a {version} event labelled {other}"),
        );
    }
}

#[tokio::test]
async fn step_2_5_the_gateway_request_id_comes_back() {
    let api = api(EVENTS);
    for version in BOTH {
        let ok = send(&api, version, &HttpRequest::new("GET", "/health")).await;
        assert_eq!(
            ok.header("x-request-id"),
            Some(format!("gw-{version}").as_str()),
            "step 2.5 ({version})"
        );
        let problem = send(&api, version, &HttpRequest::new("GET", "/nope")).await;
        assert_eq!(
            problem.header("x-request-id"),
            Some(format!("gw-{version}").as_str()),
            "step 2.5: errors carry it too"
        );
    }
}

#[tokio::test]
async fn step_2_5_the_rest_stage_is_not_part_of_the_route() {
    // A REST API on stage "prod": lambda_http puts /prod in front of the path.
    let api = api(EVENTS);
    let response = call(&api, &rest(), fixture("v1/get-event.json")).await;
    assert_eq!(
        response.status, 200,
        "step 2.5: /prod/events/midnight-tour is /events/midnight-tour"
    );
    let response = send(&api, "1.0", &HttpRequest::new("GET", "/health?verbose=1")).await;
    assert_eq!(
        response.status, 200,
        "step 2.5: the query string survives the rewrite"
    );
}

#[tokio::test]
async fn step_2_5_query_strings_and_base64_bodies_are_handled() {
    let api = api(EVENTS);
    for version in BOTH {
        let with_query = HttpRequest::new(
            "GET",
            "/events/midnight-tour?utm_source=mail&utm_source=app&x=%20",
        );
        assert_eq!(
            send(&api, version, &with_query).await.status,
            200,
            "step 2.5: query ({version})"
        );
    }
    // API Gateway base64-encodes bodies it does not treat as text.
    let mut event = event_for("2.0", &post("/events/midnight-tour/reservations", ""));
    event["body"] = json!("eyJjdXN0b21lcl9pZCI6ICJjLTQyIiwgInF1YW50aXR5IjogMn0=");
    event["isBase64Encoded"] = json!(true);
    let response = call(&api, &Api::Http, event).await;
    assert_eq!(response.status, 201, "step 2.5: a base64 body is decoded");
}

#[tokio::test]
async fn step_2_5_cors_preflight_is_answered() {
    let api = api(EVENTS);
    for version in BOTH {
        let preflight = HttpRequest::new("OPTIONS", "/events/midnight-tour/reservations")
            .header("origin", "https://shop.example")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,idempotency-key",
            );
        let response = send(&api, version, &preflight).await;
        assert_eq!(response.status, 200, "step 2.5: preflight ({version})");
        assert_eq!(response.header("access-control-allow-origin"), Some("*"));
        let methods = response
            .header("access-control-allow-methods")
            .unwrap_or_default();
        assert!(
            methods.contains("POST"),
            "step 2.5: POST is allowed: {methods}"
        );
    }
}

/* ------------------------------ step 2.6 ------------------------------ */

#[tokio::test]
async fn step_2_6_one_bootstrap_answers_both_payload_versions() {
    let (tx, mut logs) = tokio::sync::mpsc::unbounded_channel();
    let mut function = FunctionConfig::new("ticket-drop-2", bootstrap());
    function.environment.insert("EVENTS".into(), EVENTS.into());
    let mut env = ExecutionEnvironment::start(1, &function, InitType::OnDemand, tx)
        .await
        .expect("the bootstrap starts");
    let v2 = env
        .invoke(fixture("v2/post-reservation.json").to_string())
        .await;
    let v1 = env.invoke(fixture("v1/get-event.json").to_string()).await;
    env.shutdown().await;
    let mut lines = Vec::new();
    while let Ok(line) = logs.try_recv() {
        lines.push(line.line);
    }
    let read = |outcome: &Outcome, api: &Api| match outcome {
        Outcome::Response(body) => lab::apigw::response(api, body).expect("a valid proxy response"),
        other => panic!(
            "step 2.6: expected a response, got {other:?}\n{}",
            lines.join("\n")
        ),
    };
    let created = read(&v2.outcome, &Api::Http);
    assert_eq!(created.status, 201, "step 2.6: payload 2.0");
    let event = read(&v1.outcome, &rest());
    assert_eq!(
        event.status, 200,
        "step 2.6: payload 1.0 through the same environment"
    );
    assert_eq!(
        body_json(&event)["seats_left"],
        98,
        "step 2.6: the store lives across invocations"
    );
    assert!(
        v1.init_duration.is_none(),
        "step 2.6: one environment, initialised once"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"gatewayRequestId\":\"CjA1ZgkYIAMEbZR=\"")),
        "step 2.6: log lines carry the gateway's request id\n{}",
        lines.join("\n")
    );
    let cold = lines
        .iter()
        .filter(|l| l.contains("\"message\":\"cold start\""))
        .count();
    assert_eq!(
        cold, 1,
        "step 2.6: one cold start line per environment, as in module 1"
    );
}

/* ------------------------------ step 2.7 ------------------------------ */

/// Sends `n` requests with the key at once. Returns the answers and the
/// seconds from before the first was sent to after the last came back:
/// every one of the gateway's decisions on them falls inside that time.
async fn fans_at_once(lab: &Arc<Lab>, n: usize) -> (Vec<HttpResponse>, f64) {
    let started = Instant::now();
    let mut fans = tokio::task::JoinSet::new();
    for _ in 0..n {
        let lab = lab.clone();
        fans.spawn(async move {
            let request = HttpRequest::new("GET", "/prod/events/midnight-tour")
                .header("x-api-key", "fan-key");
            lab.send(request).await
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = fans.join_next().await {
        answers.push(answer.unwrap());
    }
    (answers, started.elapsed().as_secs_f64())
}

/// Waits until at least `wait` has passed since `since`, by the clock, not
/// by trusting one sleep.
async fn wait_since(since: Instant, wait: Duration) {
    while since.elapsed() < wait {
        tokio::time::sleep(
            wait.saturating_sub(since.elapsed())
                .max(Duration::from_millis(1)),
        )
        .await;
    }
}

#[tokio::test]
async fn step_2_7_the_lab_keys_and_throttles_your_api() {
    // Your bootstrap behind the lab's REST API, as `cargo workshop serve 2
    // --api rest --api-key fan-key --rate 1 --burst 3` runs it. A token
    // bucket holds at most BURST tokens and gains RATE a second, so over
    // any stretch of time it admits at most BURST + RATE x its length.
    // The test measures how long things took rather than assuming that
    // sleeps are exact: a loaded machine loosens its bounds, never breaks
    // them.
    const RATE: f64 = 1.0;
    const BURST: usize = 3;
    let mut config = LabConfig::new("ticket-drop-2", bootstrap());
    config.api = rest();
    config.api_key = Some("fan-key".into());
    config.throttle = Some((RATE, BURST as u32));
    config.environment.insert("EVENTS".into(), EVENTS.into());
    let lab = Arc::new(
        Lab::start(config, Output::Quiet)
            .await
            .expect("the lab starts"),
    );
    let started = Instant::now();

    let no_key = lab
        .send(HttpRequest::new("GET", "/prod/events/midnight-tour"))
        .await;
    // Two idle seconds: the bucket is full, and one that saved tokens up
    // past its burst would now hold five.
    wait_since(started, Duration::from_secs(2)).await;
    // Six fans at once: the gateway decides on each before any reaches the
    // function, so a slow cold start cannot refill the bucket in between.
    let first_sent = Instant::now();
    let (burst, burst_secs) = fans_at_once(&lab, 6).await;
    // Then long enough for at least one token, and three fans at once.
    let burst_done = Instant::now();
    wait_since(burst_done, Duration::from_secs_f64(1.2 / RATE)).await;
    let idle_secs = burst_done.elapsed().as_secs_f64();
    let (refill, _) = fans_at_once(&lab, 3).await;
    let total_secs = first_sent.elapsed().as_secs_f64();
    let invocations = lab.recorder.snapshot().invocations.len();
    if let Ok(lab) = Arc::try_unwrap(lab) {
        lab.stop().await;
    }

    assert_eq!(
        no_key.status, 403,
        "step 2.7: a REST API with a usage plan wants its key"
    );
    assert_eq!(body_json(&no_key), json!({"message": "Forbidden"}));
    for answer in burst.iter().chain(&refill) {
        match answer.status {
            200 => assert_eq!(
                body_json(answer)["event_id"],
                "midnight-tour",
                "step 2.7: an admitted request is answered by your function"
            ),
            429 => {
                assert_eq!(
                    body_json(answer),
                    json!({"message": "Too Many Requests"}),
                    "step 2.7: the gateway's own 429 body"
                );
                assert_eq!(answer.header("content-type"), Some("application/json"));
                assert_eq!(
                    answer.header("x-amzn-errortype"),
                    Some("TooManyRequestsException")
                );
            }
            other => panic!(
                "step 2.7: with the key, each answer is your function's 200 or the gateway's \
                 429; got {other}: {}",
                String::from_utf8_lossy(&answer.body)
            ),
        }
    }
    let admitted = |answers: &[HttpResponse]| answers.iter().filter(|r| r.status == 200).count();
    let (burst_ok, refill_ok) = (admitted(&burst), admitted(&refill));
    assert!(
        burst_ok >= BURST,
        "step 2.7: the bucket starts full, so a burst of {BURST} gets through \
         ({burst_ok} of 6 fans sent at once got a 200)"
    );
    let most = |secs: f64| BURST + (RATE * secs).floor() as usize;
    assert!(
        burst_ok <= most(burst_secs),
        "step 2.7: at most the burst of {BURST}, plus {RATE} a second, get through \
         ({burst_ok} of 6 fans sent at once got a 200 in {burst_secs:.2} s, after 2 s idle)"
    );
    assert!(
        refill_ok >= 1,
        "step 2.7: {idle_secs:.2} s after the burst the bucket has refilled and lets a \
         request through (0 of 3 got a 200)"
    );
    assert!(
        burst_ok + refill_ok <= most(total_secs),
        "step 2.7: over {total_secs:.2} s, at most {} requests get through; {} did",
        most(total_secs),
        burst_ok + refill_ok
    );
    assert_eq!(
        invocations,
        burst_ok + refill_ok,
        "step 2.7: refused and throttled requests never reach the function"
    );
}
