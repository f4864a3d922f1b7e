//! Module 3's function with its database connection opened in the handler:
//! the anti-pattern step 3.1 warns against, built so that `cargo workshop
//! lab --module 3 --scenario per-request-connect` can run it beside the
//! reference.
//!
//! Every request pays a connection (a TCP handshake, PostgreSQL's SCRAM
//! login, and on AWS a TLS handshake as well) before its first query, and
//! closes it after: the database sees a storm of logins instead of a few
//! long-lived connections.

use lambda_http::tower::ServiceExt;
use lambda_http::{Error, Request, service_fn};
use module_1::{Config, logging};
use module_2::{App, router};
use module_3::SqlTickets;
use module_3::db::{self, DbConfig};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let config = Config::from_env()?;
    let db_config = DbConfig::from_env()?;
    lambda_http::run(service_fn(|request: Request| {
        let config = config.clone();
        let db_config = db_config.clone();
        async move {
            // Per request: a pool of its own, and so a connection of its own.
            let pool = db::connect(&db_config)?;
            let app = router(App::new(config, SqlTickets::new(pool.clone())));
            let response = app.oneshot(request).await?;
            pool.close().await;
            Ok::<_, Error>(response)
        }
    }))
    .await
}
