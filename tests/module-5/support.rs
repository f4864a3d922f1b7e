//! Helpers for the module 5 suite: the bootstrap under test, in a lab of its
//! own with a fresh SQLite database and the ticket key in the lab's Secrets
//! Manager, and the requests a fan sends.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use lab::apigw::HttpRequest;

/// The bootstrap binary of the crate under test.
pub fn bootstrap() -> PathBuf {
    let path = option_env!("CARGO_BIN_EXE_module-5")
        .or(option_env!("CARGO_BIN_EXE_module-5-solution"))
        .expect("the crate under test has a module-5 bootstrap binary");
    PathBuf::from(path)
}

pub fn scratch_dir() -> PathBuf {
    std::env::temp_dir().join("ticket-drop-tests-5")
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A SQLite URL of a fresh file, for this test alone.
pub fn fresh_sqlite() -> String {
    let dir = scratch_dir().join(format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tickets.db");
    let _ = std::fs::remove_file(&file);
    format!("sqlite:{}?mode=rwc", file.display())
}

/// A lab for the bootstrap: 100,000 seats on sale in a fresh database
/// (migrated by the bootstrap's `migrate`), the ticket key in the lab's
/// Secrets Manager.
pub fn lab_config() -> lab::LabConfig {
    let mut config = lab::LabConfig::new("ticket-drop-5", bootstrap());
    config
        .environment
        .insert("EVENTS".into(), "midnight-tour:100000".into());
    let url = fresh_sqlite();
    config.database = Some(lab::LabDatabase {
        url: url.clone(),
        direct_url: url,
        watch: None,
        migrator: bootstrap(),
    });
    config.secrets = vec![(
        "workshop/ticket-signing-key".into(),
        "k5-Hs3kT8wQ1zX6cV9bN2mL5jG7fD0sA4pO8iU1yR3eW6qZ9xC2vB5nM7kJ0hG4f".into(),
    )];
    config.environment.insert(
        "TICKET_KEY_SECRET_ID".into(),
        "workshop/ticket-signing-key".into(),
    );
    config
}

/// One fan's reservation of one seat.
pub fn reservation(fan: usize) -> HttpRequest {
    HttpRequest::new("POST", "/events/midnight-tour/reservations")
        .header("content-type", "application/json")
        .body(format!(r#"{{"customer_id": "fan-{fan}", "quantity": 1}}"#))
}

/// `count` reservations at once; their statuses.
pub async fn burst(lab: &std::sync::Arc<lab::Lab>, first: usize, count: usize) -> Vec<u16> {
    let mut fans = tokio::task::JoinSet::new();
    for fan in first..first + count {
        let lab = lab.clone();
        fans.spawn(async move { lab.send(reservation(fan)).await.status });
    }
    let mut statuses = Vec::new();
    while let Some(status) = fans.join_next().await {
        statuses.push(status.unwrap());
    }
    statuses
}
