//! `cargo workshop invoke N`: the arguments; [`workshop::invoke`] runs them.

use std::time::Duration;

use workshop::invoke::{Flavour, InvokeOptions, MAX_TIMEOUT_SECS};

/// Checks the arguments of `invoke` and turns them into options.
pub fn options(
    module: u32,
    solution: bool,
    event: Option<String>,
    repeat: u32,
    memory: u32,
    timeout: f64,
    environment: Vec<(String, String)>,
) -> Result<InvokeOptions, String> {
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err("--timeout must be a positive number of seconds".into());
    }
    Ok(InvokeOptions {
        module,
        flavour: if solution {
            Flavour::Solution
        } else {
            Flavour::Learner
        },
        event,
        repeat,
        memory_mb: memory,
        // Above Lambda's maximum it is kept just above it, so that the
        // range check names the limit.
        timeout: Duration::from_secs_f64(timeout.min(MAX_TIMEOUT_SECS + 1.0)),
        environment: environment.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_must_be_positive_seconds() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let error = options(1, false, None, 1, 128, bad, vec![]).unwrap_err();
            assert!(error.contains("--timeout"), "{error}");
        }
        let options = options(1, true, None, 2, 256, 1e9, vec![("A".into(), "1".into())]).unwrap();
        assert!(options.timeout.as_secs_f64() > MAX_TIMEOUT_SECS);
        assert_eq!(options.flavour, Flavour::Solution);
        assert_eq!(options.environment["A"], "1");
    }
}
