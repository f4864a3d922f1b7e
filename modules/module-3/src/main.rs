//! Step 3.7: the bootstrap. Module 2's router, over the shared database.
//!
//! INIT builds the pool (lazily: no connection until a request needs one)
//! and the router, once. `module-3-solution migrate` applies the schema and
//! puts the events on sale: the lab and `cargo workshop db migrate` run it
//! before any traffic, never an invocation, and directly against the
//! database, never through a proxy.

use lambda_http::{Error, tracing};
use module_1::{Config, logging};
use module_2::{App, router};
use module_3::db::{self, DbConfig};
use module_3::{SqlTickets, iam};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let config = Config::from_env().inspect_err(|error| tracing::error!(%error, "init failed"))?;
    let mut db_config =
        DbConfig::from_env().inspect_err(|error| tracing::error!(%error, "init failed"))?;
    // With IAM authentication the password is a token signed with the
    // execution role (step 3.6), renewed before it expires.
    let mut tokens = None;
    if db_config.iam_auth {
        let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
        let (refresh, url) = iam::TokenRefresh::start(&db_config.url, &region)
            .inspect_err(|error| tracing::error!(%error, "init failed"))?;
        db_config.url = url;
        tokens = Some(refresh);
    }
    if std::env::args().nth(1).as_deref() == Some("migrate") {
        return migrate(&db_config, &config).await;
    }
    // TODO (step 3.7): the pool, once (db::connect(&db_config)?), the store over it
    // (SqlTickets::new, .with_token_refresh(tokens) when there are tokens), module
    // 2's router over the store; then lambda_http::run.
    todo!("step 3.7: serve module 2's router over the database")
}

/// `bootstrap migrate`: the schema and the events, then exit.
async fn migrate(db_config: &DbConfig, config: &Config) -> Result<(), Error> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&db_config.url)
        .await?;
    db::prepare(&pool, config).await?;
    tracing::info!(
        database = db_config.kind(),
        events = config.events.len(),
        "schema applied"
    );
    Ok(())
}
