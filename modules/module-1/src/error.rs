//! Step 1.4: typed errors, reported by Lambda as `errorType` and `errorMessage`.
//!
//! A handler that returns `Err` does not crash the environment: the runtime
//! posts the error to Lambda, which hands the caller
//! `{"errorType": "...", "errorMessage": "..."}`. Callers branch on
//! `errorType`, so it must be a short, stable name, not a Rust type path.

use lambda_runtime::Diagnostic;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// The event is not a well-formed request, or a field is out of range.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// No such event is on sale.
    #[error("unknown event `{0}`")]
    UnknownEvent(String),
    /// Fewer seats are left than were asked for; nothing was taken.
    #[error("sold out: {requested} seat(s) asked for `{event_id}`, {left} left")]
    SoldOut {
        event_id: String,
        requested: u32,
        left: u32,
    },
    /// Too little time is left before the invocation's deadline to start.
    #[error("{remaining_ms} ms left before the deadline: not enough to reserve safely")]
    DeadlineTooClose { remaining_ms: u64 },
}

impl TicketError {
    /// The `errorType` Lambda reports for this error.
    pub fn error_type(&self) -> &'static str {
        // TODO (step 1.4): one short, stable name per variant: the variant's name.
        todo!("step 1.4: name each error for Lambda's errorType")
    }
}

impl From<TicketError> for Diagnostic {
    fn from(error: TicketError) -> Diagnostic {
        // TODO (step 1.4): errorType from `error_type()`, errorMessage from Display.
        todo!("step 1.4: turn a TicketError into a Lambda Diagnostic")
    }
}
