//! `cargo workshop`: the learner's runner and the local Lambda lab.

use std::process::ExitCode;

use clap::Parser;
use workshop::steps::Workshop;

mod cli;
mod commands;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let workshop = Workshop::load();
    match commands::run(cli.command, &workshop) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
