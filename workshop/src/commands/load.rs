//! `cargo workshop load`: open-loop traffic at a URL, and its summary.

use std::time::Duration;

use lab::load;

use crate::cli::LoadArgs;

pub async fn run(args: &LoadArgs) -> Result<(), String> {
    let options = load_options(args)?;
    eprintln!(
        "Sending {} requests to {} over {:.0} s (open loop: on schedule, whatever the answers)…",
        options.plan.expected(),
        options.target.url,
        options.plan.duration.as_secs_f64()
    );
    let report = load::run(options).await?;
    if args.json {
        println!("{}", report.json());
    } else {
        println!("{}", report.summary());
    }
    Ok(())
}

/// Checks the arguments of `load` and turns them into a plan.
fn load_options(args: &LoadArgs) -> Result<load::LoadOptions, String> {
    let shape = match (&args.rate, &args.ramp) {
        (Some(r), None) if r.is_finite() && *r > 0.0 => load::Shape::Constant(*r),
        (Some(_), None) => {
            return Err("--rate must be a positive number of requests a second".into());
        }
        (None, Some(ramp)) => load::parse_ramp(ramp)?,
        (None, None) => return Err("say how fast: --rate R or --ramp A..B".into()),
        (Some(_), Some(_)) => unreachable!("clap refuses both"),
    };
    let duration = load::parse_duration(&args.duration)?;
    if duration.is_zero() {
        return Err("--duration must be more than 0".into());
    }
    let spikes = args
        .spike
        .iter()
        .map(|s| load::parse_spike(s))
        .collect::<Result<Vec<_>, _>>()?;
    let headers = args
        .headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| format!("--header {h:?}: expected 'Name: value'"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if args.concurrency_cap == Some(0) {
        return Err("--concurrency-cap must be at least 1".into());
    }
    Ok(load::LoadOptions {
        target: load::Target {
            url: args.url.clone(),
            method: args.method.clone(),
            headers,
            body: args.body.clone(),
        },
        plan: load::Plan {
            shape,
            spikes,
            duration,
        },
        concurrency_cap: args.concurrency_cap,
        request_timeout: Duration::from_secs(35),
        progress: !args.json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(line: &[&str]) -> LoadArgs {
        let mut argv = vec![
            "cargo workshop",
            "load",
            "--url",
            "http://127.0.0.1:4000/health",
        ];
        argv.extend_from_slice(line);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Load(args) => args,
            _ => unreachable!("the load command"),
        }
    }

    #[test]
    fn a_rate_or_a_ramp_is_required() {
        let error = load_options(&args(&[])).unwrap_err();
        assert!(error.contains("--rate R or --ramp A..B"), "{error}");
        let error = load_options(&args(&["--rate", "0"])).unwrap_err();
        assert!(error.contains("positive"), "{error}");
        let options = load_options(&args(&["--ramp", "10..200", "--duration", "2s"])).unwrap();
        assert_eq!(options.plan.duration, Duration::from_secs(2));
    }

    #[test]
    fn headers_spikes_and_caps_are_checked() {
        let error = load_options(&args(&["--rate", "5", "--header", "no colon"])).unwrap_err();
        assert!(error.contains("'Name: value'"), "{error}");
        let error = load_options(&args(&["--rate", "5", "--concurrency-cap", "0"])).unwrap_err();
        assert!(error.contains("at least 1"), "{error}");
        let error = load_options(&args(&["--rate", "5", "--duration", "0s"])).unwrap_err();
        assert!(error.contains("more than 0"), "{error}");
        let options = load_options(&args(&[
            "--rate",
            "5",
            "--spike",
            "1s:50:1s",
            "--header",
            "x-api-key: k",
            "--json",
        ]))
        .unwrap();
        assert_eq!(options.plan.spikes.len(), 1);
        assert_eq!(
            options.target.headers,
            vec![("x-api-key".into(), "k".into())]
        );
        assert!(!options.progress);
    }
}
