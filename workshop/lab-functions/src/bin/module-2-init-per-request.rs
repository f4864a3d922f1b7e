//! Module 2's function with its INIT moved into the handler: what step 1.6
//! warns against, built so that `cargo workshop lab --scenario init` can
//! run it beside the reference.
//!
//! Everything `main` should build once per execution environment (the
//! configuration, the stock, the router) is built again for every request.
//! It costs time on every request, and it costs correctness: the stock
//! starts full each time, so every fan gets seat 1.

use lambda_http::tower::ServiceExt;
use lambda_http::{Error, Request, service_fn};
use module_1::{Config, logging};
use module_2::{App, MemoryTickets, router};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    lambda_http::run(service_fn(|request: Request| async move {
        // Per request: what belongs in INIT.
        let config = Config::from_env()?;
        let app = router(App::new(config.clone(), MemoryTickets::new(config)));
        let response = app.oneshot(request).await?;
        Ok::<_, Error>(response)
    }))
    .await
}
