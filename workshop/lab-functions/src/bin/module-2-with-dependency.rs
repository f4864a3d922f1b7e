//! Module 2's function as if every request waited on a dependency: a
//! database or another service that takes `DEPENDENCY_MS` milliseconds
//! (20 by default) to answer. The lab says so wherever it runs it.
//!
//! Module 2's own work takes well under a millisecond, so a laptop barely
//! needs more than one environment to serve a thousand requests a second.
//! Real functions wait on things, and concurrency is requests a second
//! times the seconds each one lasts: this variant lets the throttle
//! scenario show that arithmetic without a database. Module 3 has a real
//! one.

use std::time::Duration;

use lambda_http::tower::ServiceExt;
use lambda_http::{Error, Request, service_fn};
use module_1::{Config, logging};
use module_2::{App, MemoryTickets, router};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let config = Config::from_env()?;
    let wait = Duration::from_millis(
        std::env::var("DEPENDENCY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20),
    );
    let app = router(App::new(config.clone(), MemoryTickets::new(config)));
    lambda_http::run(service_fn(move |request: Request| {
        let app = app.clone();
        async move {
            // The stand-in for the dependency's answer time.
            tokio::time::sleep(wait).await;
            Ok::<_, Error>(app.oneshot(request).await?)
        }
    }))
    .await
}
