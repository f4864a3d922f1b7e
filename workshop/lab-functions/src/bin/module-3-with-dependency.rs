//! Module 3's reference function as if every request also waited on
//! another service (a payment check, say) for `DEPENDENCY_MS` milliseconds
//! (50 by default), outside its database transaction. The lab says so
//! wherever it runs it.
//!
//! Module 3's own work takes a millisecond or two, so 400 fans a second
//! keep one or two environments busy, and a database that takes 16
//! connections never runs out. Concurrency is requests a second times the
//! seconds each one lasts: at 50 ms a request, 400 a second need about 20
//! environments at once, each with its own connection, which is the
//! connection storm the storm scenario is about.

use std::time::Duration;

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
    let wait = Duration::from_millis(
        std::env::var("DEPENDENCY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50),
    );
    // As the reference: one pool per environment, created at init.
    let app = router(App::new(config, SqlTickets::new(db::connect(&db_config)?)));
    lambda_http::run(service_fn(move |request: Request| {
        let app = app.clone();
        async move {
            // The other service's answer time, before the reservation.
            tokio::time::sleep(wait).await;
            Ok::<_, Error>(app.oneshot(request).await?)
        }
    }))
    .await
}
