//! The bootstrap: module 4's function, with INIT cut and warmed.
//!
//! Module 4's INIT (`module_4::init`), over the Secrets Manager client that
//! trusts AWS's roots only (step 5.1); then, when provisioned concurrency
//! started the environment, a database connection opened before any
//! traffic (step 5.2).

use lambda_http::Error;
use lambda_http::tracing::{self, Instrument};
use module_4::init;
use module_4::traces::{self, Traced};
use module_5::{InitMode, Warmed, tls, warm};

// ANCHOR: main
#[tokio::main]
async fn main() -> Result<(), Error> {
    let xray = traces::install();
    let mode = InitMode::from_env();
    let init = async {
        let Some(environment) = init::environment_with(tls::client()).await? else {
            return Ok::<_, Error>(None);
        };
        let warmed = warm::warm(&environment.pool, mode)
            .instrument(traces::init_phase("warm"))
            .await;
        match warmed {
            Ok(Warmed::Nothing) => {}
            Ok(Warmed::Connection(took)) => {
                tracing::info!(
                    took_ms = took.as_secs_f64() * 1e3,
                    "warmed a database connection"
                );
            }
            // The first request connects, as it would have on demand.
            Err(e) => tracing::warn!(error = %e, "could not warm a database connection"),
        }
        Ok(Some(environment))
    };
    // INIT in one span: the trace of the first request shows it.
    let Some(environment) = init.instrument(traces::init_span()).await? else {
        return Ok(());
    };
    lambda_http::run(Traced::new(environment.api, xray)).await
}
// ANCHOR_END: main
