//! Steps 3.1 and 3.5: the database connection, as a Lambda function needs it.
//!
//! An execution environment serves one request at a time, so it never needs
//! more than one connection; and it may sit frozen for minutes between
//! requests, so a connection it holds may be dead when it wakes. A
//! thousand environments with a pool of ten each would ask the database for
//! ten thousand connections: the pool is small on purpose.

use std::time::Duration;

use std::borrow::Cow;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Any, AnyPool, Execute, SqlSafeStr};

/// `DATABASE_URL` when unset: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite:ticket-drop.db?mode=rwc";
/// The schema, shipped with the crate, applied by the lab or
/// `cargo workshop db migrate`, never by an invocation.
pub const MIGRATIONS: &[(&str, &str)] = &[(
    "0001_tickets",
    include_str!("../migrations/0001_tickets.sql"),
)];

#[derive(Debug, Clone, PartialEq)]
pub struct DbConfig {
    pub url: String,
    /// How long a request waits for its connection before giving up with a
    /// 503. Far below the function's timeout.
    pub acquire_timeout: Duration,
    /// `DATABASE_IAM_AUTH=true`: the password is an IAM token (step 3.6).
    pub iam_auth: bool,
}

/// A database setting that cannot be used. The message names the variable;
/// it never repeats `DATABASE_URL`, which may hold a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbConfigError {
    /// `DATABASE_URL` has a scheme, but not one of sqlx's drivers here.
    #[error("DATABASE_URL must start with sqlite: or postgres://, not {scheme}://")]
    UnsupportedScheme { scheme: String },
    /// `DATABASE_URL` has no scheme at all: nothing of it is shown.
    #[error(
        "DATABASE_URL must start with sqlite: or postgres:// (its value is not shown: it may hold a password)"
    )]
    NotAUrl,
    /// `DB_ACQUIRE_TIMEOUT_MS` is not a whole number.
    #[error("DB_ACQUIRE_TIMEOUT_MS={value:?} is not a number of milliseconds")]
    AcquireTimeout { value: String },
}

impl DbConfig {
    pub fn from_env() -> Result<Self, DbConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, DbConfigError> {
        let url = lookup("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            return Err(match scheme_of(&url) {
                Some(scheme) => DbConfigError::UnsupportedScheme {
                    scheme: scheme.into(),
                },
                None => DbConfigError::NotAUrl,
            });
        }
        let acquire_timeout = match lookup("DB_ACQUIRE_TIMEOUT_MS") {
            None => Duration::from_millis(1000),
            Some(ms) => ms
                .trim()
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| DbConfigError::AcquireTimeout { value: ms })?,
        };
        let iam_auth = lookup("DATABASE_IAM_AUTH").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Ok(DbConfig {
            url,
            acquire_timeout,
            iam_auth,
        })
    }

    /// The database kind, for logs: never the URL, which may hold a password.
    pub fn kind(&self) -> &'static str {
        if self.url.starts_with("sqlite:") {
            "sqlite"
        } else {
            "postgres"
        }
    }
}

/// The scheme of `scheme://...`, when it looks like one (a letter, then
/// letters, digits, `+`, `-` or `.`): safe to show, unlike the rest.
fn scheme_of(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && scheme.len() <= 32
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// Step 3.1: the pool of one environment.
pub fn pool_options(config: &DbConfig) -> AnyPoolOptions {
    // TODO (step 3.1): a pool for an environment that serves one request at a
    // time and may freeze between requests: at most 1 connection, none opened
    // in advance, config.acquire_timeout to get one, tested before use, idle
    // ones dropped after 60 s, none kept over 10 minutes.
    todo!("step 3.1: size the pool for one execution environment")
}

/// The pool, created once per environment at init. Lazy: INIT succeeds
/// even while the database is down, and requests get 503s until it is back.
pub fn connect(config: &DbConfig) -> Result<AnyPool, sqlx::Error> {
    sqlx::any::install_default_drivers();
    pool_options(config).connect_lazy(&config.url)
}

/// Step 3.5: every statement this crate sends.
///
/// sqlx prepares statements by name and caches them on the connection. A
/// proxy in transaction mode hands each transaction whichever server
/// connection is free, where that name may not exist: PgBouncer 1.18, the
/// lab's proxy, fails. (RDS Proxy follows protocol-level statements, and
/// pins a client to one connection on session state: SET, advisory locks,
/// temporary tables, SQL-level PREPARE.) Unnamed statements travel safely
/// inside explicit transactions (outside one, the statement and its
/// execution may land on different server connections): this crate runs
/// even its reads in a transaction.
pub fn statement(sql: &'static str) -> sqlx::query::Query<'static, Any, sqlx::any::AnyArguments> {
    // TODO (step 3.5): a statement a proxy can multiplex: not persistent.
    sqlx::query(sql)
}

/// Whether a statement from [`statement`] would be prepared by name.
pub fn is_persistent(sql: &'static str) -> bool {
    Execute::persistent(&statement(sql))
}

/// The schema as sqlx migrations, embedded in the binary.
pub fn migrator() -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .enumerate()
            .map(|(k, (description, sql))| {
                Migration::new(
                    k as i64 + 1,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// Applies the schema and puts the configured events on sale (an event
/// already there keeps its stock). The lab and `cargo workshop db migrate`
/// run this through the bootstrap's `migrate` command.
pub async fn prepare(pool: &AnyPool, events: &module_1::Config) -> Result<(), sqlx::Error> {
    migrator().run(pool).await?;
    if pool.connect_options().database_url.scheme() == "sqlite" {
        // SQLite stands in for the server on a laptop: every environment
        // opens the same file. In its write-ahead-log mode (kept in the
        // file, so every later connection has it) readers never wait for
        // the writer and a commit appends to the log, so environments queue
        // for the write lock for microseconds, not milliseconds.
        sqlx::raw_sql("PRAGMA journal_mode = WAL")
            .execute(pool)
            .await?;
    } else {
        // Server-side limits for every session of this database, through a
        // proxy or not: a reservation that waits a second for the event's
        // row lock gives up (and releases what it holds) instead of queueing
        // behind a spike. The client gives up a little later (store.rs).
        let name: String = statement("SELECT current_database()::TEXT")
            .fetch_one(pool)
            .await
            .and_then(|row| sqlx::Row::try_get(&row, 0))?;
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        for setting in [
            "lock_timeout = '1s'",
            "statement_timeout = '2s'",
            "idle_in_transaction_session_timeout = '5s'",
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "ALTER DATABASE {quoted} SET {setting}"
            )))
            .execute(pool)
            .await?;
        }
    }
    let mut tx = pool.begin().await?;
    for (event_id, &seats) in &events.events {
        statement(
            "INSERT INTO events (event_id, seats_total, seats_left) VALUES ($1, $2, $2) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(event_id.as_str())
        .bind(i64::from(seats))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}
