//! # Module 5 suite — do not edit
//!
//! These tests judge your crate (`cargo test -p module-5`) and the reference
//! (`cargo test -p module-5-solution`) alike: the pure parts directly, the
//! bootstrap in the lab, with its CPU share where this machine can enforce
//! it. Each test is named after the book step it checks.

mod support;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use lab::cpu::CpuLimits;
use lab::fleet::{FleetOptions, ProvisionedScaling};
use module_5::pricing::{self, Arch, invocation_cost, request_share};
use module_5::sizing::{break_even, provisioned_for, provisioned_hour};
use module_5::tuning::{Measured, Strategy, recommend, trimmed_mean};
use module_5::{InitMode, Warmed, tls, warm};
use support::*;

/* ------------------------------ step 5.1 ------------------------------ */

#[test]
fn step_5_1_the_sdk_trusts_aws_roots_and_nothing_else() {
    assert_eq!(
        String::from_utf8_lossy(tls::AMAZON_ROOTS)
            .matches("-----BEGIN CERTIFICATE-----")
            .count(),
        5,
        "Amazon Root CA 1 to 4 and Starfield Services Root CA G2"
    );
    let context = format!("{:?}", tls::amazon_roots());
    assert!(
        context.contains("enable_native_roots: false"),
        "step 5.1: the system's roots are off (TrustStore::empty or with_native_roots(false))"
    );
    assert_eq!(
        context.matches("CertificatePEM").count(),
        1,
        "step 5.1: AMAZON_ROOTS is in the trust store, once"
    );
}

#[tokio::test]
async fn step_5_1_init_reads_no_system_certificate() {
    // With the system's store pointed nowhere, a client that loads it says
    // so in the log ("native root CA certificate loading errors").
    let mut config = lab_config();
    for var in ["SSL_CERT_FILE", "SSL_CERT_DIR"] {
        config
            .environment
            .insert(var.into(), "/nonexistent/certificates".into());
    }
    let lab = lab::Lab::start(config, lab::Output::Collect)
        .await
        .expect("step 5.1: the lab starts (and `bootstrap migrate` applies the schema)");
    let response = lab.send(reservation(1)).await;
    let lines = lab.lines().join("\n");
    lab.stop().await;
    assert_eq!(
        response.status,
        201,
        "step 5.1: a reservation through the bootstrap: {}\n{lines}",
        String::from_utf8_lossy(&response.body)
    );
    assert!(
        !lines.contains("native root CA"),
        "step 5.1: INIT loaded the system's root certificates:\n{lines}"
    );
}

/* ------------------------------ step 5.2 ------------------------------ */

#[test]
fn step_5_2_only_provisioned_concurrency_is_eager() {
    let cases = [
        (Some("provisioned-concurrency"), InitMode::Eager),
        (Some("on-demand"), InitMode::Lazy),
        (Some("snap-start"), InitMode::Lazy),
        (Some("something-new"), InitMode::Lazy),
        (None, InitMode::Lazy),
    ];
    for (value, mode) in cases {
        assert_eq!(
            InitMode::from_initialization_type(value),
            mode,
            "step 5.2: AWS_LAMBDA_INITIALIZATION_TYPE={value:?}"
        );
    }
}

async fn sqlite_pool() -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(2)
        .connect_lazy(&fresh_sqlite())
        .unwrap()
}

#[tokio::test]
async fn step_5_2_eager_opens_one_connection_lazy_none() {
    let pool = sqlite_pool().await;
    let lazy = warm::warm(&pool, InitMode::Lazy).await.unwrap();
    assert_eq!(lazy, Warmed::Nothing, "step 5.2: lazy warms nothing");
    assert_eq!(pool.size(), 0, "step 5.2: lazy opens no connection");
    let eager = warm::warm(&pool, InitMode::Eager).await.unwrap();
    assert!(
        matches!(eager, Warmed::Connection(_)),
        "step 5.2: eager opens a connection: {eager:?}"
    );
    assert_eq!(pool.size(), 1, "step 5.2: one connection, not more");
    // A connection goes back to the pool a moment after it is dropped.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while pool.num_idle() < 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        pool.num_idle(),
        1,
        "step 5.2: and it is back in the pool, idle, for the first request"
    );
}

#[tokio::test]
async fn step_5_2_a_provisioned_environment_is_warm_before_traffic() {
    let mut config = lab_config();
    config.fleet = FleetOptions {
        provisioned: 1,
        ..FleetOptions::default()
    };
    let lab = lab::Lab::start(config, lab::Output::Collect)
        .await
        .expect("step 5.2: a provisioned environment finishes INIT");
    let before_traffic = lab.lines().join("\n");
    let response = lab.send(reservation(1)).await;
    let snapshot = lab.recorder.snapshot();
    lab.stop().await;
    assert!(
        before_traffic.contains("warmed a database connection"),
        "step 5.2: a provisioned environment opens its connection at INIT:\n{before_traffic}"
    );
    assert_eq!(response.status, 201);
    assert_eq!(snapshot.cold_starts(), 0, "the request found it warm");

    // On demand, INIT leaves the connection to the request.
    let lab = lab::Lab::start(lab_config(), lab::Output::Collect)
        .await
        .unwrap();
    assert_eq!(lab.send(reservation(2)).await.status, 201);
    let lines = lab.lines().join("\n");
    lab.stop().await;
    assert!(
        !lines.contains("warmed a database connection"),
        "step 5.2: on demand, nothing is warmed:\n{lines}"
    );
}

/* ------------------------------ step 5.3 ------------------------------ */

#[test]
fn step_5_3_an_invocation_costs_its_request_and_its_gb_seconds() {
    let mut table = String::from("memory   billed  arch    $ per million  request share\n");
    for (memory, billed) in [(128, 2), (128, 100), (512, 2), (1769, 1), (1024, 1000)] {
        for arch in [Arch::X86_64, Arch::Arm64] {
            let _ = writeln!(
                table,
                "{memory:>4} MB {billed:>5} ms  {:<7} {:>12.4}  {:>5.1} %",
                format!("{arch:?}"),
                invocation_cost(memory, billed, arch) * 1e6,
                request_share(memory, billed, arch) * 100.0
            );
        }
    }
    insta::assert_snapshot!(table);
    // The request, $0.20 a million, is most of a 2 ms bill at 128 MB.
    assert!(request_share(128, 2, Arch::X86_64) > 0.97);
    assert_eq!(pricing::billed_ms(Duration::from_micros(1_001)), 2);
    assert_eq!(pricing::billed_ms(Duration::from_millis(3)), 3);
}

/* ------------------------------ step 5.4 ------------------------------ */

#[test]
fn step_5_4_provisioned_concurrency_from_the_traffic() {
    let ms = Duration::from_millis;
    assert_eq!(
        provisioned_for(2_000.0, ms(25), 0.0),
        50,
        "step 5.4: 2,000 a second x 25 ms"
    );
    assert_eq!(
        provisioned_for(2_000.0, ms(25), 0.2),
        60,
        "step 5.4: with 20 % headroom"
    );
    assert_eq!(
        provisioned_for(300.0, ms(3), 0.0),
        1,
        "step 5.4: 0.9 rounds up"
    );
    assert_eq!(
        provisioned_for(0.0, ms(3), 0.5),
        1,
        "step 5.4: at least one"
    );
    assert_eq!(provisioned_for(10_000.0, ms(2), 0.25), 25);
}

#[test]
fn step_5_4_provisioned_concurrency_pays_above_sixty_percent() {
    for arch in [Arch::X86_64, Arch::Arm64] {
        let u = break_even(arch);
        assert!(
            (u - 0.60).abs() < 0.005,
            "step 5.4: the break-even utilisation on {arch:?} is about 60 %, not {:.1} %",
            u * 100.0
        );
    }
    // The drop's 20 environments of 512 MB, an hour on arm64.
    let hour = provisioned_hour(20, 512, Arch::Arm64);
    assert!((hour - 0.12).abs() < 0.001, "{hour}");
}

/* ------------------------------ step 5.5 ------------------------------ */

fn measured(memory_mb: u32, duration_ms: f64) -> Measured {
    let billed = duration_ms.ceil() as u64;
    Measured {
        memory_mb,
        duration_ms,
        cost: invocation_cost(memory_mb, billed, Arch::Arm64),
    }
}

#[test]
fn step_5_5_each_strategy_picks_its_size() {
    // Short of CPU at 128 MB, a little faster still past 1,769 MB.
    let curve = [
        measured(3008, 2.3),
        measured(128, 20.0),
        measured(256, 10.5),
        measured(512, 5.6),
        measured(1024, 3.2),
        measured(1769, 2.4),
    ];
    let pick = |s| recommend(&curve, s).map(|m| m.memory_mb);
    assert_eq!(
        pick(Strategy::Cost),
        Some(128),
        "step 5.5: the request dominates: the smallest bill is the smallest size"
    );
    assert_eq!(pick(Strategy::Speed), Some(3008), "step 5.5: the fastest");
    assert_eq!(
        pick(Strategy::Balanced(0.5)),
        Some(1024),
        "step 5.5: half cost / max cost, half duration / max duration"
    );
    assert_eq!(
        pick(Strategy::Balanced(1.0)),
        Some(128),
        "step 5.5: weight 1 is cost"
    );
    let tie = [measured(3008, 2.0), measured(1769, 2.0)];
    assert_eq!(
        recommend(&tie, Strategy::Speed).map(|m| m.memory_mb),
        Some(1769),
        "step 5.5: of equals, the smallest"
    );
    assert_eq!(recommend(&[], Strategy::Cost), None);
}

/* ------------------------------ step 5.6 ------------------------------ */

/// The mean duration of `n` reservations at `memory_mb`, with its CPU share.
async fn duration_at(memory_mb: u32, limits: &Arc<CpuLimits>, n: usize) -> (f64, u64) {
    let mut config = lab_config();
    config.memory_mb = memory_mb;
    config.cpu = Some(limits.clone());
    let lab = lab::Lab::start(config, lab::Output::Quiet)
        .await
        .expect("step 5.6: the lab starts");
    for fan in 0..n {
        let status = lab.send(reservation(fan)).await.status;
        assert_eq!(status, 201, "step 5.6: a reservation at {memory_mb} MB");
    }
    let snapshot = lab.recorder.snapshot();
    lab.stop().await;
    let durations: Vec<f64> = snapshot.invocations.iter().map(|i| i.duration_ms).collect();
    let used = snapshot
        .invocations
        .iter()
        .filter_map(|i| i.max_memory_mb)
        .max()
        .unwrap_or(0);
    (trimmed_mean(&durations, 0.2).unwrap(), used)
}

#[tokio::test]
async fn step_5_6_memory_buys_cpu_in_the_lab() {
    let limits = Arc::new(CpuLimits::detect());
    if !limits.is_enforced() {
        let said = limits.describe(128);
        eprintln!("{said}");
        assert!(said.contains("modelled"), "{said}");
        return;
    }
    let (small, used) = duration_at(128, &limits, 25).await;
    let (one_vcpu, _) = duration_at(1769, &limits, 25).await;
    assert!(
        small > 2.0 * one_vcpu,
        "step 5.6: at 128 MB (0.07 of a core) your function should take longer than at 1,769 MB \
         (one core): {small:.2} ms against {one_vcpu:.2} ms"
    );
    assert!(
        used < 128,
        "step 5.6: the bootstrap fits in 128 MB: {used} MB"
    );
}

/* ------------------------------ step 5.7 ------------------------------ */

#[tokio::test]
async fn step_5_7_provisioned_environments_take_the_spike_then_it_spills_over() {
    let mut config = lab_config();
    config.fleet = FleetOptions {
        provisioned: 2,
        ..FleetOptions::default()
    };
    let lab = Arc::new(lab::Lab::start(config, lab::Output::Quiet).await.unwrap());
    let mut statuses = Vec::new();
    for wave in 0..3 {
        statuses.extend(burst(&lab, wave * 12, 12).await);
    }
    let snapshot = lab.recorder.snapshot();
    Arc::try_unwrap(lab).ok().unwrap().stop().await;
    assert!(
        statuses.iter().all(|&s| s == 201),
        "step 5.7: every fan gets a seat: {statuses:?}"
    );
    let on_provisioned = snapshot
        .invocations
        .iter()
        .filter(|i| i.provisioned)
        .count();
    assert!(
        on_provisioned > 0,
        "step 5.7: the provisioned environments serve"
    );
    assert!(
        snapshot.spillovers() > 0,
        "step 5.7: 12 at once outgrow 2 provisioned environments: spillover"
    );
    assert!(
        snapshot
            .invocations
            .iter()
            .filter(|i| i.init_ms.is_some())
            .all(|i| i.spillover),
        "step 5.7: the only cold starts are the spillover's"
    );
}

/* ------------------------------ step 5.8 ------------------------------ */

#[tokio::test]
async fn step_5_8_raised_before_the_drop_no_fan_waits_for_init() {
    // The scheduled action raises provisioned concurrency before the drop:
    // the spike finds every environment it needs initialised.
    let mut config = lab_config();
    config.fleet = FleetOptions {
        provisioned: 1,
        provisioned_scaling: Some(ProvisionedScaling::Scheduled {
            at: Duration::from_millis(100),
            to: 6,
        }),
        ..FleetOptions::default()
    };
    let lab = Arc::new(lab::Lab::start(config, lab::Output::Quiet).await.unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while lab.fleet.provisioned() < 6 {
        assert!(
            std::time::Instant::now() < deadline,
            "step 5.8: the scheduled action raised provisioned concurrency to 6"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut statuses = Vec::new();
    for wave in 0..4 {
        statuses.extend(burst(&lab, wave * 6, 6).await);
    }
    let snapshot = lab.recorder.snapshot();
    Arc::try_unwrap(lab).ok().unwrap().stop().await;
    assert!(statuses.iter().all(|&s| s == 201), "{statuses:?}");
    assert_eq!(
        snapshot.cold_starts(),
        0,
        "step 5.8: no fan of the drop waited for an INIT"
    );
    assert_eq!(snapshot.peak_provisioned(), 6);
}
