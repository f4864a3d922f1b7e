//! Helpers for the module 3 suite: a fresh database per test, on SQLite by
//! default, or on PostgreSQL (directly or through PgBouncer) when the
//! environment says so:
//!
//! - `TEST_POSTGRES=postgres://USER:PASS@HOST:PORT` runs the suite on
//!   PostgreSQL, a new database per test;
//! - `TEST_PGBOUNCER=postgres://USER:PASS@HOST:PORT` (with TEST_POSTGRES)
//!   connects through PgBouncer in transaction mode instead.
//!
//! `cargo workshop db up` starts both and prints these two lines. The two
//! tests of step 3.5 that need PgBouncer are `#[ignore]`d: with both set,
//! `-- --include-ignored` runs them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use module_1::Config;
use module_3::SqlTickets;
use module_3::db::{self, DbConfig};
use sqlx::AnyPool;

pub const EVENTS: &str = "midnight-tour:100,last-row:1";

pub fn config(events: &str) -> Config {
    Config::from_lookup(|name| (name == "EVENTS").then(|| events.to_string()))
        .expect("test configuration is valid")
}

/// Which database this run of the suite uses.
pub fn backend() -> &'static str {
    match (
        std::env::var("TEST_POSTGRES"),
        std::env::var("TEST_PGBOUNCER"),
    ) {
        (Ok(_), Ok(_)) => "pgbouncer",
        (Ok(_), Err(_)) => "postgres",
        _ => "sqlite",
    }
}

/// A database of its own for one test, with the schema and `events`.
pub struct TestDb {
    /// The URL functions connect to (through PgBouncer when configured).
    pub url: String,
    /// The database itself, never through a proxy: where migrations run
    /// (sqlx's migrator prepares its statements by name).
    pub direct_url: String,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl TestDb {
    pub async fn new(events: &str) -> TestDb {
        sqlx::any::install_default_drivers();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let name = format!("tickets_{}_{n}", std::process::id());
        let (url, direct_url) = match std::env::var("TEST_POSTGRES") {
            Ok(server) => {
                let admin = AnyPool::connect(&format!("{server}/postgres"))
                    .await
                    .expect("TEST_POSTGRES answers");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&admin)
                    .await
                    .expect("create a test database");
                admin.close().await;
                let base = std::env::var("TEST_PGBOUNCER").unwrap_or(server.clone());
                (format!("{base}/{name}"), format!("{server}/{name}"))
            }
            Err(_) => {
                let dir = scratch_dir().join(&name);
                std::fs::create_dir_all(&dir).unwrap();
                let url = format!("sqlite:{}?mode=rwc", dir.join("tickets.db").display());
                (url.clone(), url)
            }
        };
        let db = TestDb { url, direct_url };
        let pool = AnyPool::connect(&db.direct_url)
            .await
            .expect("the test database answers");
        db::prepare(&pool, &config(events))
            .await
            .expect("the schema applies");
        pool.close().await;
        db
    }

    pub fn db_config(&self) -> DbConfig {
        DbConfig {
            url: self.url.clone(),
            acquire_timeout: Duration::from_secs(10),
            iam_auth: false,
        }
    }

    /// One execution environment's store: its own pool, as `main` builds it.
    pub fn environment(&self) -> SqlTickets {
        SqlTickets::new(db::connect(&self.db_config()).expect("a pool"))
    }
}

pub fn scratch_dir() -> PathBuf {
    std::env::temp_dir().join("ticket-drop-tests")
}

/// The bootstrap binary of the crate under test (see module 1's suite).
pub fn bootstrap() -> PathBuf {
    let path = option_env!("CARGO_BIN_EXE_module-3")
        .or(option_env!("CARGO_BIN_EXE_module-3-solution"))
        .expect("the crate under test has a module-3 bootstrap binary");
    PathBuf::from(path)
}
