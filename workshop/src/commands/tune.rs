//! `cargo workshop tune N`: a module's bootstrap at each memory size, with
//! that size's CPU share, the table, the chart and each strategy's pick.

use std::collections::BTreeMap;
use std::path::PathBuf;

use lab::scenario::{RESERVE, Target};
use lab::tune::{self, Strategy, TuneOptions, Workload};
use workshop::steps::{Need, Workshop};
use workshop::{build, workspace};

use crate::cli::{TuneArgs, TuneStrategy};

/// Lambda's memory sizes.
const MEMORY_RANGE: std::ops::RangeInclusive<u32> = 128..=10_240;

pub async fn run(workshop: &Workshop, args: TuneArgs) -> Result<(), String> {
    let module = workshop.module(args.module)?;
    if let Some(bad) = args.memory.iter().find(|m| !MEMORY_RANGE.contains(m)) {
        return Err(format!(
            "--memory {bad}: Lambda's memory sizes go from 128 to 10240 MB"
        ));
    }
    if args.invocations < 5 {
        return Err(format!(
            "--invocations {}: at least 5, so that discarding the fastest and slowest fifth leaves some",
            args.invocations
        ));
    }
    let (learner, reference) = workspace::packages(module.number);
    let (package, whose) = if args.solution {
        (reference, "the reference solution")
    } else {
        (learner, "your crate")
    };
    let bootstrap = build::bootstrap(&package)?;
    let workload = if module.http {
        Workload::Http(RESERVE)
    } else {
        let path = workspace::root().join(&module.default_event);
        let event = std::fs::read(&path)
            .map_err(|e| format!("cannot read {}: {e}", workspace::relative(&path)))?;
        Workload::Event(event.into())
    };
    let target = Target {
        function_name: format!("ticket-drop-{}", module.number),
        reference: bootstrap,
        variants: BTreeMap::new(),
        database: module.needs(Need::Database),
        secrets: module.needs(Need::Secrets),
        tracing: module.needs(Need::Traces),
        secrets_endpoint: None,
    };
    let options = TuneOptions {
        memory_mb: args.memory.clone(),
        invocations: args.invocations,
        cold_starts: args.cold_starts,
        ..TuneOptions::default()
    };
    eprintln!(
        "Tuning module {} ({whose}): {} invocations at each of {} MB",
        module.number,
        options.invocations,
        args.memory
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let report = tune::run(&target, &workload, &options, true).await?;
    if let Some(size) = report
        .sizes
        .iter()
        .find(|s| s.errors == options.invocations)
    {
        return Err(format!(
            "at {} MB the function answered none of its {} requests: {}",
            size.memory_mb,
            options.invocations,
            if args.solution {
                "see `cargo workshop invoke` for its logs".to_string()
            } else {
                format!(
                    "are your steps done? `cargo workshop verify {n}` says; `cargo workshop tune {n} --solution` tunes the reference",
                    n = module.number
                )
            }
        ));
    }
    println!("\n{}", report.text());
    let strategy = match args.strategy {
        TuneStrategy::Cost => Strategy::Cost,
        TuneStrategy::Speed => Strategy::Speed,
        TuneStrategy::Balanced => Strategy::Balanced(0.5),
    };
    if let Some(pick) = report.recommend(strategy) {
        println!(
            "--strategy {}: {} MB (MemorySize in infra/module-5's template)",
            strategy.name(),
            pick.memory_mb
        );
    }
    if !report.enforced {
        println!(
            "The CPU share was modelled, not enforced: every size ran with the whole machine, so the durations do not bend."
        );
    }
    let path: PathBuf = args.out.unwrap_or_else(|| {
        workspace::target_dir()
            .join("workshop")
            .join("lab")
            .join("tune.html")
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(&path, report.html())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("Chart: {}", path.display());
    Ok(())
}
