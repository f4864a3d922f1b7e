//! `cargo workshop solve N` and `cargo workshop reset N`: a module's crate
//! replaced with the reference or the starter, the learner's code kept.

use std::process::ExitCode;

use workshop::generate::{self, Variant};
use workshop::steps::Workshop;
use workshop::workspace::{self, relative};

pub fn solve(workshop: &Workshop, module: u32) -> Result<ExitCode, String> {
    let module = workshop.module(module)?;
    let saved = generate::replace_learner(&workspace::root(), module, Variant::Solved)?;
    let n = module.number;
    println!("modules/module-{n} now holds the reference solution.");
    match saved {
        Some(path) => println!(
            "Your code is kept in {}: copy back what you want from there.",
            relative(&path)
        ),
        None => println!("(It held untouched generated code, so there was nothing to keep.)"),
    }
    println!(
        "`cargo workshop reset {n}` brings the starter back; `cargo workshop verify` shows where you are."
    );
    Ok(ExitCode::SUCCESS)
}

pub fn reset(workshop: &Workshop, module: u32) -> Result<ExitCode, String> {
    let module = workshop.module(module)?;
    let saved = generate::replace_learner(&workspace::root(), module, Variant::Starter)?;
    let n = module.number;
    println!("modules/module-{n} is back to the starter.");
    if let Some(path) = saved {
        println!("What it held is kept in {}.", relative(&path));
    }
    Ok(ExitCode::SUCCESS)
}
