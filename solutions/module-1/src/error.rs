//! Step 1.4: typed errors, reported by Lambda as `errorType` and `errorMessage`.
//!
//! A handler that returns `Err` does not crash the environment: the runtime
//! posts the error to Lambda, which hands the caller
//! `{"errorType": "...", "errorMessage": "..."}`. Callers branch on
//! `errorType`, so it must be a short, stable name, not a Rust type path.

use lambda_runtime::Diagnostic;

// ANCHOR: error
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
// ANCHOR_END: error

impl TicketError {
    /// The `errorType` Lambda reports for this error.
    // ANCHOR: error_type
    pub fn error_type(&self) -> &'static str {
        //- exercise 1.4
        match self {
            TicketError::InvalidRequest(_) => "InvalidRequest",
            TicketError::UnknownEvent(_) => "UnknownEvent",
            TicketError::SoldOut { .. } => "SoldOut",
            TicketError::DeadlineTooClose { .. } => "DeadlineTooClose",
        }
        //- starter
        //> // TODO (step 1.4): one short, stable name per variant: the variant's name.
        //> todo!("step 1.4: name each error for Lambda's errorType")
        //- end
    }
    // ANCHOR_END: error_type
}

// ANCHOR: diagnostic
impl From<TicketError> for Diagnostic {
    fn from(error: TicketError) -> Diagnostic {
        //- exercise 1.4
        Diagnostic {
            error_type: error.error_type().to_string(),
            error_message: error.to_string(),
        }
        //- starter
        //> // TODO (step 1.4): errorType from `error_type()`, errorMessage from Display.
        //> todo!("step 1.4: turn a TicketError into a Lambda Diagnostic")
        //- end
    }
}
// ANCHOR_END: diagnostic
