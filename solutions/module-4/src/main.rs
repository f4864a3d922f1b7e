//! The bootstrap: module 3's API over its database, with tickets signed by
//! a key from Secrets Manager.
//!
//! INIT fetches the signing key (both stages) once, through the cache; a
//! key that cannot be had fails INIT with the secret's id and the reason.

use lambda_http::{Error, tracing};
use module_1::{Config, logging};
use module_3::SqlTickets;
use module_3::db::{self, DbConfig};
use module_4::secrets::{self, SecretCache};
use module_4::{Keyring, TicketKeys, init, router};

/// `TICKET_KEY_SECRET_ID` when unset.
const DEFAULT_TICKET_KEY_SECRET_ID: &str = "workshop/ticket-signing-key";

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => return Err(init::fail("InvalidConfig", e.to_string()).await),
    };
    let db_config = match DbConfig::from_env() {
        Ok(c) => c,
        Err(e) => return Err(init::fail("InvalidConfig", e.to_string()).await),
    };
    if std::env::args().nth(1).as_deref() == Some("migrate") {
        // Module 3's schema and events: no secret is needed to apply them.
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&db_config.url)
            .await?;
        return Ok(db::prepare(&pool, &config).await?);
    }
    let ttl = match secrets::ttl_from_env() {
        Ok(ttl) => ttl,
        Err(e) => return Err(init::fail("InvalidConfig", e).await),
    };
    let secret_id = std::env::var("TICKET_KEY_SECRET_ID")
        .unwrap_or_else(|_| DEFAULT_TICKET_KEY_SECRET_ID.into());
    let cache = SecretCache::new(secrets::client().await, ttl);
    // Fetched now, not at the first request: a missing or unreadable key
    // fails INIT, where the cold start's log says which secret and why.
    if let Err(e) = TicketKeys::load(&cache, &secret_id).await {
        return Err(init::fail(e.kind(), e.to_string()).await);
    }
    let pool = db::connect(&db_config)?;
    let tickets = SqlTickets::new(pool);
    let app = module_2::App::new(config, tickets);
    let api = router(app, Keyring { cache, secret_id });
    tracing::info!(database = db_config.kind(), "init complete");
    lambda_http::run(api).await
}
