//! Configuration, read from the environment once per execution environment.
//!
//! Lambda passes a function's configuration as environment variables. They
//! do not change while an environment lives, so `main` reads them once, at
//! init, and every invocation borrows the result.

use std::collections::BTreeMap;
use std::time::Duration;

/// `EVENTS`: the events on sale and their seats, `id:seats` separated by commas.
pub const DEFAULT_EVENTS: &str = "midnight-tour:100";
/// `MAX_PER_CUSTOMER`: the most seats one request may reserve.
pub const DEFAULT_MAX_PER_CUSTOMER: u32 = 4;
/// `DEADLINE_MARGIN_MS`: refuse to start a reservation with less time left.
pub const DEFAULT_DEADLINE_MARGIN_MS: u64 = 100;

// ANCHOR: config
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Event id to the number of seats on sale.
    pub events: BTreeMap<String, u32>,
    /// The most seats one request may reserve.
    pub max_per_customer: u32,
    /// The least time that must be left before the deadline to start work.
    pub deadline_margin: Duration,
}
// ANCHOR_END: config

/// A configuration value that cannot be used. The message names the
/// variable, so the INIT error in the logs says what to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid configuration: {variable}={value:?}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub reason: String,
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so tests need not touch the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &'static str, default: String| (name, lookup(name).unwrap_or(default));

        let (name, value) = var("EVENTS", DEFAULT_EVENTS.into());
        let events = parse_events(&value).map_err(|reason| ConfigError {
            variable: name,
            value: value.clone(),
            reason,
        })?;

        let (name, value) = var("MAX_PER_CUSTOMER", DEFAULT_MAX_PER_CUSTOMER.to_string());
        let max_per_customer = match value.trim().parse::<u32>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return Err(ConfigError {
                    variable: name,
                    value,
                    reason: "expected a whole number of at least 1".into(),
                });
            }
        };

        let (name, value) = var("DEADLINE_MARGIN_MS", DEFAULT_DEADLINE_MARGIN_MS.to_string());
        let deadline_margin = value
            .trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| ConfigError {
                variable: name,
                value: value.clone(),
                reason: "expected a number of milliseconds".into(),
            })?;

        Ok(Config {
            events,
            max_per_customer,
            deadline_margin,
        })
    }
}

fn parse_events(value: &str) -> Result<BTreeMap<String, u32>, String> {
    let mut events = BTreeMap::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, seats) = item
            .split_once(':')
            .ok_or_else(|| format!("`{item}` is not `id:seats`"))?;
        let id = id.trim();
        if id.is_empty() {
            return Err(format!("`{item}` has an empty event id"));
        }
        let seats = seats
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("`{item}`: seats must be a whole number"))?;
        if events.insert(id.to_string(), seats).is_some() {
            return Err(format!("event `{id}` is listed twice"));
        }
    }
    if events.is_empty() {
        return Err("no events: expected e.g. `midnight-tour:100`".into());
    }
    Ok(events)
}
