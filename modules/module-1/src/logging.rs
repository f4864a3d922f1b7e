//! Step 1.7: structured logs.
//!
//! With the function's log format set to JSON (the SAM template does this,
//! and so does the local lab), Lambda sets `AWS_LAMBDA_LOG_FORMAT=JSON` and
//! `AWS_LAMBDA_LOG_LEVEL`. Each line the function writes should then be one
//! JSON object with a `level`: Lambda drops lines below the configured level,
//! and CloudWatch Logs Insights can query the fields. Each line should also
//! carry the request id, so the lines of one invocation can be found among
//! thousands.

/// Installs the process-wide `tracing` subscriber. Call it once, at init.
pub fn init() {
    use lambda_runtime::tracing::{Level, subscriber};

    // TODO (step 1.7): these lines are plain text and know nothing of the
    // request. Write one JSON object per line instead: `.json()`, with the
    // event's fields at the top level (`.flatten_event(true)`), the current
    // span (the runtime's, which holds the requestId), no span list, no
    // target, no time, at the level in AWS_LAMBDA_LOG_LEVEL (INFO if unset).
    subscriber::fmt().without_time().with_ansi(false).init();
}
