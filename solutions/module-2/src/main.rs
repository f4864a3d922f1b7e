//! Step 2.6: one bootstrap behind both payload versions.
//!
//! INIT builds what every request shares, exactly as in module 1; then
//! `lambda_http::run` turns each API Gateway event (payload 1.0 or 2.0)
//! into an `http::Request`, runs the router, and turns the response back
//! into the shape that API Gateway version expects.

use lambda_http::{Error, tracing};
use module_1::{Config, logging};
use module_2::{App, MemoryTickets, router};

// ANCHOR: main
#[tokio::main]
async fn main() -> Result<(), Error> {
    //- exercise 2.6
    logging::init();
    let config = Config::from_env().inspect_err(|error| tracing::error!(%error, "init failed"))?;
    let tickets = MemoryTickets::new(config.clone());
    let app = router(App::new(config, tickets));
    tracing::info!("init complete");
    lambda_http::run(app).await
    //- starter
    //> // TODO (step 2.6): as in module 1: logging::init(), the Config from the
    //> // environment (log and return its error), then a MemoryTickets and the
    //> // router, built once; then lambda_http::run(router).await.
    //> todo!("step 2.6: initialise once, then serve the router")
    //- end
}
// ANCHOR_END: main
