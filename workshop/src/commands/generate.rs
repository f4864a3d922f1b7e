//! `cargo workshop generate [--check]`: the learner crates, derived from
//! the solutions.

use std::process::ExitCode;

use workshop::generate;
use workshop::steps::Workshop;
use workshop::workspace;

pub fn run(workshop: &Workshop, check: bool) -> Result<ExitCode, String> {
    let root = workspace::root();
    let mut drifted = Vec::new();
    for module in &workshop.modules {
        let n = module.number;
        let files = generate::learner_files(&root, module)?;
        let dir = workspace::learner_dir(&root, n);
        if check {
            let problems = generate::drift(&dir, &files)?;
            if !problems.is_empty() {
                drifted.push(format!("modules/module-{n}: {}", problems.join(", ")));
            }
        } else {
            generate::write(&dir, &files)?;
            println!(
                "modules/module-{n}: {} files generated from solutions/module-{n}",
                files.len()
            );
        }
    }
    if !drifted.is_empty() {
        return Err(format!(
            "learner crates drifted from their solutions:\n  {}\nEdit the solution, then run `cargo workshop generate`.",
            drifted.join("\n  ")
        ));
    }
    if check {
        println!("Every learner crate matches what its solution generates.");
    }
    Ok(ExitCode::SUCCESS)
}
