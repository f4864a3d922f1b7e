//! Step 1.6: the bootstrap. Lambda starts this process once per execution
//! environment; everything before `lambda_runtime::run` is INIT, paid once
//! per cold start, and every invocation after it reuses what INIT built.

use lambda_runtime::{Error, service_fn, tracing};
use module_1::{State, handle, logging};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // TODO (step 1.6): call logging::init(), build the State once with
    // State::from_env()? (log the error first), log "init complete" with
    // the number of events, then hand the handler to the runtime:
    // lambda_runtime::run(service_fn(|event| handle(&state, event))).await
    todo!("step 1.6: initialise once, then run the handler")
}
