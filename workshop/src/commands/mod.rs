//! One file per command; [`run`] hands each its arguments.

use std::process::ExitCode;

use workshop::steps::Workshop;
use workshop::{doctor, runner};

use crate::cli::Command;

mod db;
mod generate;
mod invoke;
pub mod lab;
mod load;
mod mdbook;
mod serve;
mod solve;
mod tune;

pub fn run(command: Command, workshop: &Workshop) -> Result<ExitCode, String> {
    match command {
        Command::Verify { module } => {
            if let Some(n) = module {
                workshop.module(n)?;
            }
            Ok(exit(runner::verify(workshop, module)?))
        }
        Command::Invoke(args) => {
            let options = invoke::options(args)?;
            let failed = runtime()?.block_on(workshop::invoke::run(workshop, &options))?;
            Ok(exit(failed == 0))
        }
        Command::Tune(args) => {
            runtime()?.block_on(tune::run(workshop, args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            runtime()?.block_on(serve::run(workshop, args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Lab {
            module,
            scenario,
            out,
            secrets,
        } => {
            runtime()?.block_on(lab::run(workshop, module, &scenario, out, secrets))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Load(args) => {
            runtime()?.block_on(load::run(&args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Traces { last } => {
            let traces = workshop::traces::load()?;
            print!("{}", workshop::traces::render_last(&traces, last));
            println!(
                "{} of {} traces in {}",
                last.min(traces.len()),
                traces.len(),
                workshop::workspace::relative(&workshop::traces::path())
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Solve { module } => solve::solve(workshop, module),
        Command::Reset { module } => solve::reset(workshop, module),
        Command::Doctor => Ok(exit(doctor::run(workshop))),
        Command::Db { action } => db::run(workshop, action),
        Command::Generate { check } => generate::run(workshop, check),
        Command::CheckStarters => {
            runner::check_starters(workshop)?;
            println!("Every learner crate compiles, and every step is red on the starter.");
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckProgression { module } => {
            runner::check_progression(workshop, module)?;
            println!(
                "Step by step, each filled gap turns its step green, and no later gap holds it back."
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Mdbook { args } => mdbook::run(workshop, &args),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
