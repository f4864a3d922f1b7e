//! # Module 1 suite — do not edit
//!
//! These tests judge your crate (`cargo test -p module-1`) and the reference
//! solution (`cargo test -p module-1-solution`) alike. Each test is named
//! after the book step it checks: when `step_1_3_...` fails, read step 1.3
//! of the book (`book/src/module-1/`), or run `cargo workshop verify`.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use lab::lambda::Outcome;
use lambda_runtime::Diagnostic;
use module_1::{ReserveRequest, Stock, TicketError, handle};
use serde_json::{Value, json};
use support::{Lab, config, event, show, state};

/* ------------------------------ step 1.1 ------------------------------ */

#[test]
fn step_1_1_parses_a_well_formed_event() {
    let event = json!({"event_id": "midnight-tour", "customer_id": "c-42", "quantity": 2});
    let request = ReserveRequest::parse(event).expect("step 1.1: a well-formed event parses");
    assert_eq!(
        request,
        ReserveRequest {
            event_id: "midnight-tour".into(),
            customer_id: "c-42".into(),
            quantity: 2,
        }
    );
}

#[test]
fn step_1_1_ignores_fields_it_does_not_know() {
    let event = json!({"event_id": "e", "customer_id": "c", "quantity": 1, "coupon": "VIP"});
    let request = ReserveRequest::parse(event).expect("step 1.1: unknown fields are ignored");
    assert_eq!(request.quantity, 1);
}

#[test]
fn step_1_1_rejects_malformed_events_with_the_reason() {
    let cases = [
        (
            "missing quantity",
            json!({"event_id": "e", "customer_id": "c"}),
        ),
        (
            "missing event_id",
            json!({"customer_id": "c", "quantity": 1}),
        ),
        (
            "quantity as text",
            json!({"event_id": "e", "customer_id": "c", "quantity": "two"}),
        ),
        (
            "negative quantity",
            json!({"event_id": "e", "customer_id": "c", "quantity": -1}),
        ),
        (
            "fractional quantity",
            json!({"event_id": "e", "customer_id": "c", "quantity": 1.5}),
        ),
        (
            "quantity too big",
            json!({"event_id": "e", "customer_id": "c", "quantity": 1u64 << 40}),
        ),
        (
            "event_id as number",
            json!({"event_id": 7, "customer_id": "c", "quantity": 1}),
        ),
        (
            "null fields",
            json!({"event_id": null, "customer_id": null, "quantity": null}),
        ),
        ("an array", json!([1, 2, 3])),
        ("a string", json!("two tickets please")),
        ("null", Value::Null),
        ("empty object", json!({})),
    ];
    let mut seen = Vec::new();
    for (name, event) in cases {
        match ReserveRequest::parse(event) {
            Err(TicketError::InvalidRequest(reason)) => {
                seen.push(json!({"case": name, "reason": reason}))
            }
            other => panic!("step 1.1: {name}: expected InvalidRequest, got {other:?}"),
        }
    }
    insta::assert_json_snapshot!("step_1_1_malformed_events", seen);
}

/* ------------------------------ step 1.2 ------------------------------ */

fn request(event_id: &str, customer_id: &str, quantity: u32) -> ReserveRequest {
    ReserveRequest {
        event_id: event_id.into(),
        customer_id: customer_id.into(),
        quantity,
    }
}

#[test]
fn step_1_2_accepts_quantities_within_the_limit() {
    let config = config(&[("EVENTS", "midnight-tour:100"), ("MAX_PER_CUSTOMER", "4")]);
    for quantity in 1..=4 {
        assert_eq!(
            request("midnight-tour", "c-42", quantity).validate(&config),
            Ok(()),
            "step 1.2: quantity {quantity} is within 1..=4"
        );
    }
}

#[test]
fn step_1_2_rejects_quantities_outside_the_limit() {
    let config = config(&[("EVENTS", "midnight-tour:100"), ("MAX_PER_CUSTOMER", "4")]);
    for quantity in [0, 5, u32::MAX] {
        match request("midnight-tour", "c-42", quantity).validate(&config) {
            Err(TicketError::InvalidRequest(reason)) => assert!(
                reason.contains('4'),
                "step 1.2: the reason should say what is allowed (1 to 4), got {reason:?}"
            ),
            other => {
                panic!("step 1.2: quantity {quantity}: expected InvalidRequest, got {other:?}")
            }
        }
    }
}

#[test]
fn step_1_2_rejects_unknown_events() {
    let config = config(&[("EVENTS", "midnight-tour:100")]);
    assert_eq!(
        request("matinee", "c-42", 1).validate(&config),
        Err(TicketError::UnknownEvent("matinee".into())),
        "step 1.2: an event that is not on sale is UnknownEvent"
    );
}

#[test]
fn step_1_2_rejects_unusable_customer_ids() {
    let config = config(&[]);
    for customer in ["", "   ", &"x".repeat(65), "c-\u{0}42", "c-\n42"] {
        assert!(
            matches!(
                request("midnight-tour", customer, 1).validate(&config),
                Err(TicketError::InvalidRequest(_))
            ),
            "step 1.2: customer id {customer:?} should be rejected"
        );
    }
    assert_eq!(
        request("midnight-tour", &"é".repeat(64), 1).validate(&config),
        Ok(()),
        "step 1.2: 64 characters is allowed (count characters, not bytes)"
    );
}

/* ------------------------------ step 1.3 ------------------------------ */

#[test]
fn step_1_3_reserves_numbered_seats() {
    let stock = Stock::new(&config(&[("EVENTS", "midnight-tour:100")]));
    let first = stock
        .reserve("midnight-tour", 2)
        .expect("step 1.3: seats are on sale");
    assert_eq!(first.numbers, vec![1, 2]);
    assert_eq!(first.seats_left, 98);
    let second = stock
        .reserve("midnight-tour", 3)
        .expect("step 1.3: seats are on sale");
    assert_eq!(
        second.numbers,
        vec![3, 4, 5],
        "step 1.3: seats are numbered in sale order"
    );
    assert_eq!(second.seats_left, 95);
    assert_eq!(stock.seats_left("midnight-tour"), Some(95));
}

#[test]
fn step_1_3_sells_exactly_the_seats_there_are() {
    let stock = Stock::new(&config(&[("EVENTS", "last-row:10")]));
    let sold = (0..12)
        .filter(|_| stock.reserve("last-row", 1).is_ok())
        .count();
    assert_eq!(sold, 10, "step 1.3: 10 seats, 10 sales");
    assert_eq!(stock.seats_left("last-row"), Some(0));
}

#[test]
fn step_1_3_a_sold_out_request_takes_nothing() {
    let stock = Stock::new(&config(&[("EVENTS", "last-row:3")]));
    assert_eq!(
        stock.reserve("last-row", 4),
        Err(TicketError::SoldOut {
            event_id: "last-row".into(),
            requested: 4,
            left: 3
        }),
        "step 1.3: asking for 4 of 3 seats is SoldOut, with the 3 that are left"
    );
    assert_eq!(
        stock.seats_left("last-row"),
        Some(3),
        "step 1.3: all or nothing"
    );
    let rest = stock
        .reserve("last-row", 3)
        .expect("step 1.3: the 3 seats are still there");
    assert_eq!(rest.numbers, vec![1, 2, 3]);
}

#[test]
fn step_1_3_unknown_event() {
    let stock = Stock::new(&config(&[]));
    assert_eq!(
        stock.reserve("matinee", 1),
        Err(TicketError::UnknownEvent("matinee".into()))
    );
}

#[test]
fn step_1_3_racing_reservations_never_share_a_seat() {
    let stock = Stock::new(&config(&[("EVENTS", "midnight-tour:100")]));
    let sold: Vec<u32> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    (0..40)
                        .filter_map(|_| stock.reserve("midnight-tour", 1).ok())
                        .flat_map(|s| s.numbers)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let distinct: BTreeSet<u32> = sold.iter().copied().collect();
    assert_eq!(
        sold.len(),
        100,
        "step 1.3: 320 attempts on 100 seats sell 100"
    );
    assert_eq!(
        distinct.len(),
        100,
        "step 1.3: no seat is sold twice in one environment"
    );
    assert_eq!(distinct.first(), Some(&1));
    assert_eq!(distinct.last(), Some(&100));
}

/* ------------------------------ step 1.4 ------------------------------ */

fn all_errors() -> Vec<TicketError> {
    vec![
        TicketError::InvalidRequest("missing field `quantity`".into()),
        TicketError::UnknownEvent("matinee".into()),
        TicketError::SoldOut {
            event_id: "midnight-tour".into(),
            requested: 4,
            left: 1,
        },
        TicketError::DeadlineTooClose { remaining_ms: 12 },
    ]
}

#[test]
fn step_1_4_errors_become_lambda_diagnostics() {
    let diagnostics: Vec<Diagnostic> = all_errors().into_iter().map(Diagnostic::from).collect();
    // What the caller of the function receives.
    insta::assert_json_snapshot!("step_1_4_diagnostics", diagnostics);
}

#[test]
fn step_1_4_error_types_are_short_stable_names() {
    for error in all_errors() {
        let diagnostic = Diagnostic::from(error.clone());
        assert_eq!(diagnostic.error_type, error.error_type());
        assert!(
            diagnostic
                .error_type
                .chars()
                .all(|c| c.is_ascii_alphanumeric()),
            "step 1.4: errorType {:?} should be a plain name, not a Rust type path",
            diagnostic.error_type
        );
        assert_eq!(diagnostic.error_message, error.to_string());
    }
}

/* ------------------------------ step 1.5 ------------------------------ */

#[tokio::test]
async fn step_1_5_the_handler_answers_with_a_reservation() {
    let state = state(&[("EVENTS", "midnight-tour:100")]);
    let payload = json!({"event_id": "midnight-tour", "customer_id": "c-42", "quantity": 2});
    let reservation = handle(&state, event("req-0001", payload))
        .await
        .expect("step 1.5: a valid event gets a reservation");
    assert_eq!(
        reservation.request_id, "req-0001",
        "step 1.5: the answer carries the request id"
    );
    insta::assert_json_snapshot!("step_1_5_reservation", reservation);
}

#[tokio::test]
async fn step_1_5_the_handler_refuses_work_it_cannot_finish() {
    let state = state(&[
        ("EVENTS", "midnight-tour:100"),
        ("DEADLINE_MARGIN_MS", "100"),
    ]);
    let payload = json!({"event_id": "midnight-tour", "customer_id": "c-42", "quantity": 1});
    let context = support::context("req-late", Duration::from_millis(20));
    let result = handle(&state, lambda_runtime::LambdaEvent::new(payload, context)).await;
    assert!(
        matches!(result, Err(TicketError::DeadlineTooClose { remaining_ms }) if remaining_ms <= 20),
        "step 1.5: with 20 ms left and a 100 ms margin, refuse: got {result:?}"
    );
    assert_eq!(
        state.stock.seats_left("midnight-tour"),
        Some(100),
        "step 1.5: a refused request takes no seat"
    );
}

#[tokio::test]
async fn step_1_5_errors_are_typed_and_take_no_seats() {
    let state = state(&[("EVENTS", "midnight-tour:3")]);
    let cases = [
        json!({"event_id": "midnight-tour", "customer_id": "c-1"}),
        json!({"event_id": "matinee", "customer_id": "c-1", "quantity": 1}),
        json!({"event_id": "midnight-tour", "customer_id": "c-1", "quantity": 0}),
        json!({"event_id": "midnight-tour", "customer_id": "c-1", "quantity": 4}),
    ];
    let expected = [
        "InvalidRequest",
        "UnknownEvent",
        "InvalidRequest",
        "SoldOut",
    ];
    for (payload, expected) in cases.into_iter().zip(expected) {
        let error = handle(&state, event("req", payload.clone()))
            .await
            .expect_err("step 1.5: this event must be refused");
        assert_eq!(error.error_type(), expected, "step 1.5: {payload}");
    }
    assert_eq!(
        state.stock.seats_left("midnight-tour"),
        Some(3),
        "step 1.5: nothing lost"
    );
}

#[tokio::test]
async fn step_1_5_no_input_makes_the_handler_panic() {
    let state = state(&[]);
    let long = "🎟".repeat(10_000);
    let mut deep = json!(1);
    for _ in 0..64 {
        deep = json!([deep]);
    }
    let hostile = [
        json!({"event_id": long, "customer_id": "c", "quantity": 1}),
        json!({"event_id": "midnight-tour", "customer_id": long, "quantity": 1}),
        json!({"event_id": "midnight-tour", "customer_id": "\u{0}\u{202e}c", "quantity": 1}),
        json!({"event_id": "midnight-tour", "customer_id": "c", "quantity": u64::MAX}),
        json!({"event_id": "midnight-tour", "customer_id": "c", "quantity": 1e300}),
        json!({"event_id": "midnight-tour", "customer_id": "c", "quantity": true}),
        json!({"event_id": "midnight-tour", "customer_id": "c", "quantity": [2]}),
        json!({"event_id": ["midnight-tour"], "customer_id": "c", "quantity": 1}),
        json!({"event_id": "", "customer_id": "", "quantity": 0}),
        deep,
        json!(""),
        json!(0),
    ];
    for payload in hostile {
        // A panic here fails the test; any Ok or Err is fine.
        let _ = handle(&state, event("req", payload)).await;
    }
    assert_eq!(state.stock.seats_left("midnight-tour"), Some(100));
}

/* ------------------------------ step 1.6 ------------------------------ */

fn reserve_payload(event_id: &str, quantity: u32) -> String {
    let event = json!({"event_id": event_id, "customer_id": "c-42", "quantity": quantity});
    event.to_string()
}

fn response_json(outcome: &Outcome, logs: &[String]) -> Value {
    match outcome {
        Outcome::Response(body) => serde_json::from_slice(body).expect("the response is JSON"),
        other => panic!(
            "expected a response, got {other:?}\n--- logs ---\n{}",
            show(logs)
        ),
    }
}

#[tokio::test]
async fn step_1_6_the_bootstrap_initialises_once_then_stays_warm() {
    let mut lab = Lab::start(&[("EVENTS", "midnight-tour:100")]).await;
    let mut invocations = Vec::new();
    for _ in 0..3 {
        invocations.push(lab.env.invoke(reserve_payload("midnight-tour", 2)).await);
    }
    let logs = lab.stop().await;

    let responses: Vec<Value> = invocations
        .iter()
        .map(|i| response_json(&i.outcome, &logs))
        .collect();
    assert!(
        invocations[0].init_duration.is_some(),
        "step 1.6: the first invocation is a cold start"
    );
    assert!(
        invocations[1..].iter().all(|i| i.init_duration.is_none()),
        "step 1.6: later invocations reuse the warm environment"
    );
    for (invocation, response) in invocations.iter().zip(&responses) {
        assert_eq!(
            response["request_id"], invocation.request_id,
            "step 1.6: each answer carries its own request id"
        );
    }
    let init_lines: Vec<&String> = logs
        .iter()
        .filter(|l| l.contains("init complete"))
        .collect();
    assert!(
        init_lines.len() == 1 && init_lines[0].contains("events"),
        "step 1.6: INIT logs `init complete` once, with the number of events\n--- logs ---\n{}",
        show(&logs)
    );
    // The stock built at init survives between invocations.
    insta::assert_json_snapshot!("step_1_6_warm_invocations", responses, {
        "[].request_id" => "[request id]"
    });
}

#[tokio::test]
async fn step_1_6_bad_configuration_fails_init_with_a_clear_error() {
    let mut lab = Lab::start(&[("EVENTS", "midnight-tour")]).await;
    let invocation = lab.env.invoke(reserve_payload("midnight-tour", 1)).await;
    let logs = lab.stop().await;
    match &invocation.outcome {
        Outcome::InitError { error_type, .. } => {
            assert_eq!(
                error_type, "Runtime.ExitError",
                "step 1.6: main returned an error"
            )
        }
        other => panic!("step 1.6: EVENTS=midnight-tour must fail INIT, got {other:?}"),
    }
    assert!(
        logs.iter()
            .any(|l| l.contains("EVENTS") && !l.contains("not yet implemented")),
        "step 1.6: the init failure should name the EVENTS variable\n--- logs ---\n{}",
        show(&logs)
    );
}

#[tokio::test]
async fn step_1_6_a_function_error_keeps_the_environment() {
    let mut lab = Lab::start(&[]).await;
    let bad = lab.env.invoke(r#"{"event_id":"midnight-tour"}"#).await;
    let good = lab.env.invoke(reserve_payload("midnight-tour", 1)).await;
    let logs = lab.stop().await;
    match &bad.outcome {
        Outcome::FunctionError {
            error_type,
            payload,
        } => {
            assert_eq!(error_type, "InvalidRequest", "step 1.6");
            let doc: Value = serde_json::from_slice(payload).unwrap();
            insta::assert_json_snapshot!("step_1_6_error_payload", doc);
        }
        other => panic!(
            "step 1.6: expected a function error, got {other:?}\n{}",
            show(&logs)
        ),
    }
    response_json(&good.outcome, &logs);
    assert!(
        bad.init_duration.is_some() && good.init_duration.is_none(),
        "step 1.6: an error answer does not cost the environment"
    );
}

/* ------------------------------ step 1.7 ------------------------------ */

#[tokio::test]
async fn step_1_7_logs_are_json_lines_that_carry_the_request_id() {
    let mut lab = Lab::start(&[]).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let invocation = lab.env.invoke(reserve_payload("midnight-tour", 1)).await;
        ids.push(invocation.request_id);
    }
    let logs = lab.stop().await;
    let lines: Vec<(String, Value)> = logs
        .iter()
        .map(|l| {
            let parsed = serde_json::from_str::<Value>(l).unwrap_or_else(|_| {
                panic!("step 1.7: every log line should be one JSON object, got:\n{l}")
            });
            assert!(
                parsed.get("level").is_some(),
                "step 1.7: each line has a level: {l}"
            );
            (l.clone(), parsed)
        })
        .collect();
    let message = |v: &Value| v.get("message").and_then(Value::as_str).map(String::from);

    let reserved: Vec<&String> = lines
        .iter()
        .filter(|(_, v)| message(v).as_deref() == Some("seats reserved"))
        .map(|(l, _)| l)
        .collect();
    assert_eq!(
        reserved.len(),
        3,
        "step 1.7: expected one line per invocation whose top-level \"message\" is \"seats reserved\"\n{}",
        show(&logs)
    );
    for (line, id) in reserved.iter().zip(&ids) {
        assert!(
            line.contains(id.as_str()),
            "step 1.7: the line should carry request id {id}: {line}"
        );
    }

    let cold: Vec<&String> = lines
        .iter()
        .filter(|(_, v)| message(v).as_deref() == Some("cold start"))
        .map(|(l, _)| l)
        .collect();
    assert_eq!(
        cold.len(),
        1,
        "step 1.7: expected exactly one \"cold start\" line for the environment\n{}",
        show(&logs)
    );
    assert!(
        cold[0].contains(&ids[0]),
        "step 1.7: logged by the first invocation"
    );
}

/* ------------------------------ step 1.8 ------------------------------ */

#[tokio::test]
async fn step_1_8_two_environments_both_sell_the_last_seat() {
    // One seat left, two fans, two execution environments (as Lambda starts
    // when two requests arrive at once): each environment has its own stock.
    let vars = [("EVENTS", "last-row:1")];
    let mut a = Lab::start_numbered(1, &vars).await;
    let mut b = Lab::start_numbered(2, &vars).await;
    let (first, second) = tokio::join!(
        a.env.invoke(reserve_payload("last-row", 1)),
        b.env.invoke(reserve_payload("last-row", 1))
    );
    let mut logs = a.stop().await;
    logs.extend(b.stop().await);
    let first = response_json(&first.outcome, &logs);
    let second = response_json(&second.outcome, &logs);
    assert_eq!(first["seats"], json!([1]), "step 1.8");
    assert_eq!(
        second["seats"],
        json!([1]),
        "step 1.8: seat 1 is sold twice: in-memory stock is per environment (module 3 fixes this)"
    );
}
