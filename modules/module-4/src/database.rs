//! Steps 4.5 and 4.6: the database's credentials from their secret, and a
//! password rotation that loses no request.
//!
//! Module 3 read its database from `DATABASE_URL`, password included. Here
//! the function reads `DB_SECRET_ID`: a secret in the JSON shape RDS writes
//! for a database user, fetched at INIT, from which the pool is built.
//!
//! Secrets Manager's single-user rotation changes the password in the
//! database (`setSecret`) before it moves `AWSCURRENT` to the new version
//! (`finishSecret`). In between, a new connection made with `AWSCURRENT`'s
//! password is refused (PostgreSQL's `28P01`), and only `AWSPENDING` holds
//! the password that works. Connections already open keep working: the
//! window hurts an environment that opens one, after a freeze or an idle
//! minute. Alternating users (two users, the rotation changes the one not in
//! use) has no such window; the code below survives both.

use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lambda_http::tracing::{info, warn};
use module_1::ReserveRequest;
use module_2::store::StoreError;
use module_2::{Booking, EventStatus, Tickets};
use module_3::SqlTickets;
use module_3::iam::encode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::any::AnyConnectOptions;

use crate::secrets::{CURRENT, PENDING, SecretCache, SecretError, SecretValue};

/// PostgreSQL's SQLSTATE for "password authentication failed".
pub const PASSWORD_REFUSED: &str = "28P01";

/// A database user's credentials, as RDS and Secrets Manager's rotation
/// functions write them. The password is a [`SecretString`]: `Debug`
/// prints `[REDACTED]`.
#[derive(Debug, Deserialize)]
pub struct DbSecret {
    pub engine: String,
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub username: String,
    pub password: SecretString,
    /// RDS's own master-user secrets leave it out: PostgreSQL's default
    /// database then.
    #[serde(default)]
    pub dbname: Option<String>,
}

fn default_port() -> u16 {
    5432
}

impl DbSecret {
    /// Step 4.5: the secret's JSON, read without ever repeating it.
    ///
    /// serde's own messages quote the value they could not use (`invalid
    /// type: string "hunter2", expected u16`), so none of them is shown:
    /// the error names the field, through serde_path_to_error's path, and
    /// what was wrong with it.
    pub fn parse(secret: &SecretValue) -> Result<DbSecret, SecretError> {
        let wrong = |detail: String| SecretError::WrongShape {
            id: secret.id.clone(),
            detail,
        };
        // TODO (step 4.5): serde_path_to_error::deserialize the JSON of
        // secret.value.expose_secret() into a DbSecret. On an error, never show
        // serde's message (it can quote the value): name e.path() instead, or
        // the line and column when it is not JSON at all. The engine must be
        // postgres. Every error goes through wrong(...).
        let _ = wrong;
        todo!("step 4.5: read the database secret")
    }

    /// The pool's connect options: `host` (the proxy's endpoint, from
    /// `DB_HOST`) in place of the secret's when given. The URL holds the
    /// password: it lives only inside the options.
    pub fn connect_options(&self, host: Option<&str>) -> Result<AnyConnectOptions, String> {
        let host = host.unwrap_or(&self.host);
        let url = format!(
            "postgres://{}:{}@{host}:{}/{}",
            encode(&self.username),
            encode(self.password.expose_secret()),
            self.port,
            encode(self.dbname.as_deref().unwrap_or("postgres")),
        );
        AnyConnectOptions::from_str(&url)
            .map_err(|_| "its host, port or user do not make a PostgreSQL address".to_string())
    }
}

/// The field of serde's "missing field `x`" message, which names the field
/// and nothing of any value.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// The credentials an environment connects with, and where they come from.
pub struct DbCredentials {
    cache: Arc<SecretCache>,
    secret_id: String,
    host: Option<String>,
    /// The version of the secret whose password the pool uses.
    in_use: Mutex<String>,
}

impl DbCredentials {
    /// At INIT: `AWSCURRENT`, and the pool's connect options from it.
    pub async fn load(
        cache: Arc<SecretCache>,
        secret_id: &str,
        host: Option<String>,
    ) -> Result<(DbCredentials, AnyConnectOptions), SecretError> {
        let current = cache.get(secret_id, CURRENT).await?;
        let options = options_of(&current, host.as_deref())?;
        let credentials = DbCredentials {
            cache,
            secret_id: secret_id.to_string(),
            host,
            in_use: Mutex::new(current.version_id.clone()),
        };
        Ok((credentials, options))
    }

    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// The version whose password the pool connects with.
    pub fn version_in_use(&self) -> String {
        self.in_use.lock().unwrap().clone()
    }

    /// Step 4.6: after the database refused the password, the connect
    /// options of a newer version, or none when there is none.
    ///
    /// `AWSCURRENT` is fetched again (not from the cache: the cached one is
    /// what was refused). If it is still the version in use, a single-user
    /// rotation is halfway: the database already has `AWSPENDING`'s
    /// password.
    pub async fn renew(&self) -> Result<Option<AnyConnectOptions>, SecretError> {
        // TODO (step 4.6): self.cache.refresh AWSCURRENT (CURRENT). A version
        // other than self.version_in_use() is the new password; if it is the
        // same one, a single-user rotation is halfway: try AWSPENDING (PENDING).
        // Nothing newer: Ok(None). Else options_of(&version, self.host) and
        // remember its version id in self.in_use.
        todo!("step 4.6: find the password that works now")
    }
}

/// A version's connect options, or why the secret cannot be used.
fn options_of(secret: &SecretValue, host: Option<&str>) -> Result<AnyConnectOptions, SecretError> {
    DbSecret::parse(secret)?
        .connect_options(host)
        .map_err(|detail| SecretError::WrongShape {
            id: secret.id.clone(),
            detail,
        })
}

/// How long the check "was it the password?" may take after a failure.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Module 3's store, with a password that can rotate under it: when an
/// operation fails and a fresh connection is refused with `28P01`, the
/// credentials are renewed from the secret and the operation runs once
/// more. Without a secret (`DATABASE_URL`), it is module 3's store.
pub struct RotatingTickets {
    tickets: SqlTickets,
    credentials: Option<DbCredentials>,
}

impl RotatingTickets {
    pub fn new(tickets: SqlTickets, credentials: Option<DbCredentials>) -> Self {
        RotatingTickets {
            tickets,
            credentials,
        }
    }

    /// `operation`, and once more after a renewed password.
    async fn again<T, F, Fut>(&self, operation: F) -> Result<T, StoreError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let first = operation().await;
        let (Err(StoreError::Unavailable(_)), Some(credentials)) = (&first, &self.credentials)
        else {
            return first;
        };
        if !self.password_refused().await {
            return first;
        }
        match credentials.renew().await {
            Ok(Some(options)) => {
                self.tickets.pool().set_connect_options(options);
                info!(
                    secret_id = credentials.secret_id(),
                    version = credentials.version_in_use(),
                    "database password renewed from its secret"
                );
                operation().await
            }
            Ok(None) => {
                warn!(
                    secret_id = credentials.secret_id(),
                    "the database refuses the password and the secret has no newer one"
                );
                first
            }
            Err(error) => {
                warn!(%error, secret_id = error.id(), "cannot renew the database password");
                first
            }
        }
    }

    /// Whether a fresh connection is refused for its password: the pool's
    /// only connection is free again after the failure.
    async fn password_refused(&self) -> bool {
        match tokio::time::timeout(PROBE_TIMEOUT, self.tickets.pool().acquire()).await {
            Ok(Err(sqlx::Error::Database(e))) => e.code().as_deref() == Some(PASSWORD_REFUSED),
            _ => false,
        }
    }
}

impl Tickets for RotatingTickets {
    async fn event(&self, event_id: &str) -> Result<Option<EventStatus>, StoreError> {
        self.again(|| self.tickets.event(event_id)).await
    }

    async fn reserve(
        &self,
        request: &ReserveRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Booking, StoreError> {
        // A refused connection ran nothing; and a retry with the same
        // idempotency key returns the same booking in any case.
        self.again(|| self.tickets.reserve(request, idempotency_key))
            .await
    }

    async fn reservation(&self, reservation_id: &str) -> Result<Option<Booking>, StoreError> {
        self.again(|| self.tickets.reservation(reservation_id))
            .await
    }
}
