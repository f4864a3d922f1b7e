//! Step 4.7: INIT, everything an environment does once, and an INIT that
//! fails says why, as Lambda reports it.
//!
//! INIT fetches the signing key (both stages) and the database secret once,
//! through one cache; a secret that cannot be had fails INIT with its id
//! and the reason.
//!
//! A bootstrap that exits during INIT shows up in Lambda as
//! `Runtime.ExitError` and nothing more. One that posts to the Runtime
//! API's `/runtime/init/error` first shows its own error type and message
//! in the INIT's log and in the first invocation's error: "secret
//! workshop/ticket-signing-key: access denied ...", never the value.

use std::sync::Arc;

use axum::Router;
use lambda_http::Error;
use lambda_http::http::{Method, Request};
use lambda_http::tracing::{self, Instrument};
use lambda_runtime_api_client::PooledClient;
use lambda_runtime_api_client::body::Body;
use module_1::Config;
use module_3::SqlTickets;
use module_3::db::{self, DbConfig};
use serde_json::json;
use sqlx::AnyPool;

use crate::secrets::{self, SecretCache};
use crate::traces;
use crate::{DbCredentials, Keyring, RotatingTickets, TicketKeys, router};

/// `TICKET_KEY_SECRET_ID` when unset.
const DEFAULT_TICKET_KEY_SECRET_ID: &str = "workshop/ticket-signing-key";

/// What INIT leaves for the requests: the API, and the pool under it (lazy:
/// no connection is open yet).
pub struct Environment {
    pub api: Router,
    pub pool: AnyPool,
}

/// Reports `message` as an INIT error of type `error_type`, logs it, and
/// gives back the error the bootstrap exits with.
pub async fn fail(error_type: &str, message: String) -> lambda_http::Error {
    tracing::error!(error_type, error = %message, "init failed");
    let client = PooledClient::builder().build();
    let body = json!({ "errorType": error_type, "errorMessage": message }).to_string();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/2018-06-01/runtime/init/error")
        .header("lambda-runtime-function-error-type", error_type)
        .header("content-type", "application/json")
        .body(Body::from(body));
    if let Ok(request) = request
        && let Err(e) = client.call(request).await
    {
        tracing::error!(error = %e, "could not report the init error to the Runtime API");
    }
    message.into()
}

/// Everything an environment does once: the router and its pool, or
/// `None` after `migrate`.
pub async fn environment() -> Result<Option<Environment>, Error> {
    environment_with(secrets::client()).await
}

/// [`environment`] with the SDK's client that `client` builds (module 5
/// builds a cheaper one).
pub async fn environment_with(
    client: impl Future<Output = aws_sdk_secretsmanager::Client>,
) -> Result<Option<Environment>, Error> {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => return Err(fail("InvalidConfig", e.to_string()).await),
    };
    let db_config = match DbConfig::from_env() {
        Ok(c) => c,
        Err(e) => return Err(fail("InvalidConfig", e.to_string()).await),
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
        Err(e) => return Err(fail("InvalidConfig", e).await),
    };
    let client = client.instrument(traces::init_phase("SDK client")).await;
    let cache = Arc::new(SecretCache::new(client, ttl));
    let (pool, credentials) = match database(&db_config, &cache)
        .instrument(traces::init_phase("database"))
        .await
    {
        Ok(database) => database,
        Err((kind, message)) => return Err(fail(kind, message).await),
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
    // return Err(fail(e.kind(), e.to_string()).await).
    let database = match &credentials {
        Some(c) => format!("postgres, credentials from secret {}", c.secret_id()),
        None => db_config.kind().to_string(),
    };
    let tickets = RotatingTickets::new(SqlTickets::new(pool.clone()), credentials);
    let app = module_2::App::new(config, tickets);
    let api = router(app, Keyring::new(cache, secret_id));
    tracing::info!(database, "init complete");
    Ok(Some(Environment { api, pool }))
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
