//! `cargo workshop invoke N`: the arguments; [`workshop::invoke`] runs them.

use std::time::Duration;

use workshop::invoke::{Flavour, InvokeOptions, MAX_TIMEOUT_SECS};

use crate::cli::InvokeArgs;

/// Checks the arguments of `invoke` and turns them into options.
pub fn options(args: InvokeArgs) -> Result<InvokeOptions, String> {
    let InvokeArgs {
        module,
        solution,
        event,
        repeat,
        memory,
        timeout,
        environment,
    } = args;
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
    use clap::Parser;

    fn args(line: &[&str]) -> InvokeArgs {
        let mut argv = vec!["cargo workshop", "invoke", "1"];
        argv.extend_from_slice(line);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Invoke(args) => args,
            _ => unreachable!("the invoke command"),
        }
    }

    #[test]
    fn timeouts_must_be_positive_seconds() {
        for bad in ["0", "-1", "NaN", "inf"] {
            let error = options(args(&[&format!("--timeout={bad}")])).unwrap_err();
            assert!(error.contains("--timeout"), "{error}");
        }
        let options = options(args(&[
            "--solution",
            "--repeat",
            "2",
            "--memory",
            "256",
            "--timeout",
            "1e9",
            "--env",
            "A=1",
        ]))
        .unwrap();
        assert!(options.timeout.as_secs_f64() > MAX_TIMEOUT_SECS);
        assert_eq!(options.flavour, Flavour::Solution);
        assert_eq!(options.environment["A"], "1");
    }
}
