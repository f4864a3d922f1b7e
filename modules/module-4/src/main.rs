//! Step 4.7: the bootstrap. Module 3's API over its database, with tickets signed by
//! a key from Secrets Manager, and the database's password from there too
//! when `DB_SECRET_ID` is set.
//!
//! INIT fetches the signing key (both stages) and the database secret once,
//! through one cache; a secret that cannot be had fails INIT with its id
//! and the reason.

use std::sync::Arc;

use axum::Router;
use lambda_http::Error;
use lambda_http::tracing::{self, Instrument};
use module_1::Config;
use module_3::SqlTickets;
use module_3::db::{self, DbConfig};
use module_4::secrets::{self, SecretCache};
use module_4::traces::{self, Traced};
use module_4::{DbCredentials, Keyring, RotatingTickets, TicketKeys, init, router};
use sqlx::AnyPool;

/// `TICKET_KEY_SECRET_ID` when unset.
const DEFAULT_TICKET_KEY_SECRET_ID: &str = "workshop/ticket-signing-key";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let xray = traces::install();
    // INIT in one span: the trace of the first request shows it.
    let Some(api) = init().instrument(traces::init_span()).await? else {
        return Ok(());
    };
    lambda_http::run(Traced::new(api, xray)).await
}

/// Everything an environment does once: the router, or `None` after
/// `migrate`.
async fn init() -> Result<Option<Router>, Error> {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => return Err(init::fail("InvalidConfig", e.to_string()).await),
    };
    let db_config = match DbConfig::from_env() {
        Ok(c) => c,
        Err(e) => return Err(init::fail("InvalidConfig", e.to_string()).await),
    };
    let migrate = std::env::args().nth(1).as_deref() == Some("migrate");
    if migrate && std::env::var("DB_SECRET_ID").is_err() {
        // Module 3's schema and events over DATABASE_URL: no secret needed,
        // so no SDK client and no credentials either.
        let pool = db::connect(&db_config).map_err(|e| e.to_string())?;
        db::prepare(&pool, &config).await?;
        return Ok(None);
    }
    let ttl = match secrets::ttl_from_env() {
        Ok(ttl) => ttl,
        Err(e) => return Err(init::fail("InvalidConfig", e).await),
    };
    let cache = Arc::new(SecretCache::new(secrets::client().await, ttl));
    let (pool, credentials) = match database(&db_config, &cache).await {
        Ok(database) => database,
        Err((kind, message)) => return Err(init::fail(kind, message).await),
    };
    if migrate {
        // The schema and events with the secret's credentials; the signing
        // key is not needed.
        db::prepare(&pool, &config).await?;
        return Ok(None);
    }
    let secret_id = std::env::var("TICKET_KEY_SECRET_ID")
        .unwrap_or_else(|_| DEFAULT_TICKET_KEY_SECRET_ID.into());
    // TODO (step 4.7): fetch the signing keys now, at INIT
    // (TicketKeys::load(&cache, &secret_id)), so that the requests find
    // them in the cache and a key that cannot be had fails INIT:
    // return Err(init::fail(e.kind(), e.to_string()).await).
    let database = match &credentials {
        Some(c) => format!("postgres, credentials from secret {}", c.secret_id()),
        None => db_config.kind().to_string(),
    };
    let tickets = RotatingTickets::new(SqlTickets::new(pool), credentials);
    let app = module_2::App::new(config, tickets);
    let api = router(app, Keyring::new(cache, secret_id));
    tracing::info!(database, "init complete");
    Ok(Some(api))
}

/// The pool: from `DB_SECRET_ID`'s secret when set (`DB_HOST`, the proxy,
/// in place of its host when set), else from `DATABASE_URL` as in module 3.
/// Lazy either way: no connection is opened before a request needs it.
async fn database(
    db_config: &DbConfig,
    cache: &Arc<SecretCache>,
) -> Result<(AnyPool, Option<DbCredentials>), (&'static str, String)> {
    let Ok(secret_id) = std::env::var("DB_SECRET_ID") else {
        // sqlx's error names the driver's reason, never the URL.
        let pool = db::connect(db_config).map_err(|e| ("InvalidConfig", e.to_string()))?;
        return Ok((pool, None));
    };
    let host = std::env::var("DB_HOST").ok();
    let (credentials, options) = DbCredentials::load(cache.clone(), &secret_id, host)
        .await
        .map_err(|e| (e.kind(), e.to_string()))?;
    sqlx::any::install_default_drivers();
    let pool = db::pool_options(db_config).connect_lazy_with(options);
    Ok((pool, Some(credentials)))
}
