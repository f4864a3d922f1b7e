//! Step 2.6: one bootstrap behind both payload versions.
//!
//! INIT builds what every request shares, exactly as in module 1; then
//! `lambda_http::run` turns each API Gateway event (payload 1.0 or 2.0)
//! into an `http::Request`, runs the router, and turns the response back
//! into the shape that API Gateway version expects.

use lambda_http::{Error, tracing};
use module_1::{Config, logging};
use module_2::{App, MemoryTickets, router};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // TODO (step 2.6): as in module 1: logging::init(), the Config from the
    // environment (log and return its error), then a MemoryTickets and the
    // router, built once; then lambda_http::run(router).await.
    todo!("step 2.6: initialise once, then serve the router")
}
