//! Step 5.2: INIT by how the environment was started.
//!
//! An on-demand environment starts because a request is waiting: whatever
//! INIT does, that request waits for. A provisioned environment starts
//! before any traffic, when the alias's provisioned concurrency is
//! allocated, and Lambda tells it so in `AWS_LAMBDA_INITIALIZATION_TYPE`:
//! its INIT is on nobody's clock, so it does now what the first request
//! would otherwise do, opening the database connection.
//!
//! Warming is an optimisation: if it fails, INIT goes on, and the first
//! request connects as it would have.

use std::time::{Duration, Instant};

use sqlx::AnyPool;

/// What INIT does with work the first request could do instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitMode {
    /// Do it now: nobody is waiting (provisioned concurrency).
    Eager,
    /// Leave it to the request that needs it (on demand, SnapStart).
    Lazy,
}

impl InitMode {
    // ANCHOR: mode
    /// The mode for an `AWS_LAMBDA_INITIALIZATION_TYPE` of `value`:
    /// `provisioned-concurrency` is eager; `on-demand`, `snap-start` (a
    /// connection in a snapshot is dead on restore) and anything else or
    /// nothing are lazy.
    pub fn from_initialization_type(value: Option<&str>) -> InitMode {
        //- exercise 5.2
        match value {
            Some("provisioned-concurrency") => InitMode::Eager,
            _ => InitMode::Lazy,
        }
        //- starter
        //> // TODO (step 5.2): Eager for "provisioned-concurrency", Lazy for
        //> // everything else (a match on value). Until then, every
        //> // environment is lazy, as in module 4.
        //> InitMode::Lazy
        //- end
    }
    // ANCHOR_END: mode

    /// The mode of this environment, from Lambda's variable.
    pub fn from_env() -> InitMode {
        InitMode::from_initialization_type(
            std::env::var("AWS_LAMBDA_INITIALIZATION_TYPE")
                .ok()
                .as_deref(),
        )
    }
}

/// What [`warm`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warmed {
    /// Nothing: the mode is lazy.
    Nothing,
    /// A connection opened and tried, left idle in the pool, in this long.
    Connection(Duration),
}

// ANCHOR: warm
/// In [`InitMode::Eager`], opens one of the pool's connections and runs a
/// statement on it, so that the first request finds it open and tried
/// (TCP, TLS and the login, on PostgreSQL), then gives it back; in
/// [`InitMode::Lazy`], nothing.
pub async fn warm(pool: &AnyPool, mode: InitMode) -> Result<Warmed, sqlx::Error> {
    //- exercise 5.2
    if mode == InitMode::Lazy {
        return Ok(Warmed::Nothing);
    }
    let started = Instant::now();
    let mut connection = pool.acquire().await?;
    sqlx::query("SELECT 1").execute(&mut *connection).await?;
    // Dropped here: back in the pool, open and idle.
    Ok(Warmed::Connection(started.elapsed()))
    //- starter
    //> // TODO (step 5.2): Lazy: Ok(Warmed::Nothing). Eager: acquire a
    //> // connection (pool.acquire().await?), run "SELECT 1" on it
    //> // (sqlx::query(..).execute(&mut *connection)), let it go back to
    //> // the pool, and return Warmed::Connection with the time it took.
    //> // Until then, nothing is warmed, as in module 4.
    //> Ok(Warmed::Nothing)
    //- end
}
// ANCHOR_END: warm
