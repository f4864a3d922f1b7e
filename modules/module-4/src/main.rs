//! Step 4.7: the bootstrap. Module 3's API over its database, with tickets
//! signed by a key from Secrets Manager, and the database's password from
//! there too when `DB_SECRET_ID` is set: INIT is [`init::environment`].

use lambda_http::Error;
use lambda_http::tracing::Instrument;
use module_4::init;
use module_4::traces::{self, Traced};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let xray = traces::install();
    // INIT in one span: the trace of the first request shows it.
    let Some(environment) = init::environment().instrument(traces::init_span()).await? else {
        return Ok(());
    };
    lambda_http::run(Traced::new(environment.api, xray)).await
}
