//! `cargo workshop`: the learner's runner and the local Lambda lab.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use workshop::generate::{self, Variant};
use workshop::invoke::{self, Flavour, InvokeOptions};
use workshop::steps::Workshop;
use workshop::{book, doctor, runner, workspace};

#[derive(Parser)]
#[command(
    name = "cargo workshop",
    bin_name = "cargo workshop",
    about = "High-Traffic Serverless with Rust: the runner and the local lab",
    after_help = "Learners: `cargo workshop verify` after each step. The book: book/src (or `mdbook serve book`)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show your progress, module by module, and what to do next.
    Verify,
    /// Build a module's bootstrap and run events through it as Lambda does.
    Invoke {
        /// The module number.
        module: u32,
        /// Run the reference solution instead of your crate.
        #[arg(long)]
        solution: bool,
        /// The event: a JSON file, or - for standard input. Default: the module's sample event.
        #[arg(long, value_name = "FILE|-")]
        event: Option<String>,
        /// Invoke this many times; the environment stays warm between them.
        #[arg(long, default_value_t = 1, value_name = "K")]
        repeat: u32,
        /// Memory size in MB (128 to 10240).
        #[arg(long, default_value_t = 128, value_name = "MB")]
        memory: u32,
        /// Function timeout in seconds.
        #[arg(long, default_value_t = 3.0, value_name = "S")]
        timeout: f64,
        /// A function environment variable, as KEY=VALUE (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        environment: Vec<(String, String)>,
    },
    /// Replace a module's crate with the reference solution (your code is backed up).
    Solve {
        /// The module number.
        module: u32,
    },
    /// Restore a module's crate to the starter (your code is backed up).
    Reset {
        /// The module number.
        module: u32,
    },
    /// Check this machine for what each module needs.
    Doctor,
    /// Derive the learner crates from the solutions.
    Generate {
        /// Fail if a learner crate differs from what the solution generates.
        #[arg(long)]
        check: bool,
    },
    /// For CI: every learner crate compiles and every step fails on the starter.
    CheckStarters,
    /// The book's preprocessor (run by mdbook).
    #[command(hide = true)]
    Mdbook {
        #[arg(num_args = 0..)]
        args: Vec<String>,
    },
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let workshop = Workshop::load();
    match run(cli.command, &workshop) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, workshop: &Workshop) -> Result<ExitCode, String> {
    match command {
        Command::Verify => Ok(exit(runner::verify(workshop)?)),
        Command::Invoke {
            module,
            solution,
            event,
            repeat,
            memory,
            timeout,
            environment,
        } => {
            if !(timeout.is_finite() && timeout > 0.0) {
                return Err("--timeout must be a positive number of seconds".into());
            }
            let options = InvokeOptions {
                module,
                flavour: if solution {
                    Flavour::Solution
                } else {
                    Flavour::Learner
                },
                event,
                repeat,
                memory_mb: memory,
                timeout: Duration::from_secs_f64(timeout.min(invoke::MAX_TIMEOUT_SECS + 1.0)),
                environment: environment.into_iter().collect::<BTreeMap<_, _>>(),
            };
            let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            let failed = runtime.block_on(invoke::run(workshop, &options))?;
            Ok(exit(failed == 0))
        }
        Command::Solve { module } => {
            let module = workshop.module(module)?;
            let saved = generate::replace_learner(&workspace::root(), module, Variant::Solved)?;
            let n = module.number;
            println!("modules/module-{n} now holds the reference solution.");
            match saved {
                Some(path) => println!(
                    "Your code is kept in {}: copy back what you want from there.",
                    relative(&path)
                ),
                None => {
                    println!("(It held untouched generated code, so there was nothing to keep.)")
                }
            }
            println!(
                "`cargo workshop reset {n}` brings the starter back; `cargo workshop verify` shows where you are."
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Reset { module } => {
            let module = workshop.module(module)?;
            let saved = generate::replace_learner(&workspace::root(), module, Variant::Starter)?;
            let n = module.number;
            println!("modules/module-{n} is back to the starter.");
            if let Some(path) = saved {
                println!("What it held is kept in {}.", relative(&path));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor => Ok(exit(doctor::run())),
        Command::Generate { check } => {
            let mut drifted = Vec::new();
            for module in &workshop.modules {
                let n = module.number;
                let root = workspace::root();
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
            if drifted.is_empty() {
                if check {
                    println!("Every learner crate matches what its solution generates.");
                }
                Ok(ExitCode::SUCCESS)
            } else {
                Err(format!(
                    "learner crates drifted from their solutions:\n  {}\nEdit the solution, then run `cargo workshop generate`.",
                    drifted.join("\n  ")
                ))
            }
        }
        Command::CheckStarters => {
            runner::check_starters(workshop)?;
            println!("Every learner crate compiles, and every step is red on the starter.");
            Ok(ExitCode::SUCCESS)
        }
        Command::Mdbook { args } => {
            if args.first().map(String::as_str) == Some("supports") {
                return Ok(ExitCode::SUCCESS);
            }
            let mut input = String::new();
            std::io::stdin()
                .read_to_string(&mut input)
                .map_err(|e| e.to_string())?;
            print!("{}", book::preprocess(&input, workshop)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn relative(path: &std::path::Path) -> String {
    path.strip_prefix(workspace::root())
        .unwrap_or(path)
        .display()
        .to_string()
}
