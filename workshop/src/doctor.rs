//! `cargo workshop doctor`: what this machine has, and what each missing
//! piece would cost a learner. The offline path needs Rust alone.

use std::process::{Command, Stdio};

use crate::steps::{Need, Workshop};

/// The oldest Rust the workspace builds with (its `rust-version`, set by
/// sqlx 0.9's minimum).
pub const MIN_RUST_MINOR: u32 = 95;

/// One thing the workshop may use.
struct Check {
    name: &'static str,
    /// The command and arguments that print its version.
    probe: &'static [&'static str],
    /// What it is for.
    used_for: &'static str,
    /// True when the offline path (learn, test, run the lab) needs it.
    required: bool,
}

const CHECKS: &[Check] = &[
    Check {
        name: "rustc",
        probe: &["rustc", "--version"],
        used_for: "everything (Rust 1.95 or newer, edition 2024)",
        required: true,
    },
    Check {
        name: "cargo",
        probe: &["cargo", "--version"],
        used_for: "everything",
        required: true,
    },
    Check {
        name: "cargo-lambda",
        probe: &["cargo", "lambda", "--version"],
        used_for: "deploying to AWS (sam build uses it); `pip install cargo-lambda`",
        required: false,
    },
    Check {
        name: "sam",
        probe: &["sam", "--version"],
        used_for: "deploying to AWS (infra/ templates)",
        required: false,
    },
    Check {
        name: "aws",
        probe: &["aws", "--version"],
        used_for: "looking at logs and metrics on AWS",
        required: false,
    },
    Check {
        name: "mdbook",
        probe: &["mdbook", "--version"],
        used_for: "reading the book offline: `mdbook serve book`",
        required: false,
    },
    Check {
        name: "postgres",
        probe: &["pg_config", "--version"],
        used_for: "{database} against a real PostgreSQL (SQLite is the default)",
        required: false,
    },
    Check {
        name: "pgbouncer",
        probe: &["pgbouncer", "--version"],
        used_for: "{database}: the local stand-in for RDS Proxy",
        required: false,
    },
    Check {
        name: "python3",
        probe: &["python3", "--version"],
        used_for: "installing cargo-lambda and cfn-lint with pip",
        required: false,
    },
];

/// Runs `probe` and returns the first line it printed.
fn version(probe: &[&str]) -> Option<String> {
    let output = Command::new(probe[0])
        .args(&probe[1..])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = if output.stdout.is_empty() {
        output.stderr
    } else {
        output.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|l| l.trim().to_string())
}

/// The minor version of `rustc 1.95.0 (...)`.
pub fn rust_minor(version_line: &str) -> Option<u32> {
    let version = version_line.split_whitespace().nth(1)?;
    let mut parts = version.split('.');
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    (major == 1).then_some(minor)
}

/// "module 3", "modules 3 and 4", "modules 3, 4 and 5".
pub fn modules_phrase(numbers: &[u32]) -> String {
    let names: Vec<String> = numbers.iter().map(u32::to_string).collect();
    match names.as_slice() {
        [] => "no module".to_string(),
        [one] => format!("module {one}"),
        [rest @ .., last] => format!("modules {} and {last}", rest.join(", ")),
    }
}

/// "a, b and c".
fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// What `cargo workshop db up` serves, read from `steps.toml` and the lab's
/// scenarios: "module 3's storm and per-request-connect scenarios", and how
/// many modules that is.
fn db_up_use(workshop: &Workshop) -> (String, usize) {
    let postgres: Vec<&'static str> = lab::scenario::scenarios()
        .iter()
        .filter(|s| s.needs_postgres())
        .map(|s| s.name)
        .collect();
    let owners: Vec<u32> = workshop
        .modules
        .iter()
        .filter(|m| postgres.iter().any(|s| m.runs(s)))
        .map(|m| m.number)
        .collect();
    let scenarios = if postgres.len() == 1 {
        "scenario"
    } else {
        "scenarios"
    };
    let text = format!(
        "{}'s {} {scenarios}",
        modules_phrase(&owners),
        and_list(&postgres)
    );
    (text, owners.len())
}

/// Prints the report; returns false when the offline path cannot work.
pub fn run(workshop: &Workshop) -> bool {
    let database = modules_phrase(&workshop.numbers_needing(Need::Database));
    println!("{:<13} {:<9} used for", "tool", "status");
    let mut ok = true;
    for check in CHECKS {
        let found = version(check.probe);
        let status = match (&found, check.required) {
            (Some(_), _) => "found",
            (None, true) => "MISSING",
            (None, false) => "absent",
        };
        if found.is_none() && check.required {
            ok = false;
        }
        let used_for = check.used_for.replace("{database}", &database);
        println!("{:<13} {:<9} {used_for}", check.name, status);
        if let Some(v) = &found {
            println!("{:<13} {:<9} {}", "", "", v);
        }
        if check.name == "rustc"
            && let Some(minor) = found.as_deref().and_then(rust_minor)
            && minor < MIN_RUST_MINOR
        {
            println!("{:<13} {:<9} too old: run `rustup update stable`", "", "");
            ok = false;
        }
    }
    let proc_memory = std::path::Path::new("/proc/self/status").exists();
    println!(
        "{:<13} {:<9} {}",
        "/proc",
        if proc_memory { "found" } else { "absent" },
        if proc_memory {
            "Max Memory Used in REPORT lines is measured"
        } else {
            "Max Memory Used is shown as ? (this system has no /proc)"
        }
    );
    match lab::db::tools() {
        Ok(tools) => {
            let (uses, owners) = db_up_use(workshop);
            let suites = if owners == 1 {
                "its suite"
            } else {
                "their suites"
            };
            println!(
                "{:<13} {:<9} {uses}, and {suites} on PostgreSQL",
                "db up", "ready"
            );
            if let Some(user) = &tools.run_as {
                println!(
                    "{:<13} {:<9} running as root: the servers will run as the {user} user",
                    "", ""
                );
            }
        }
        Err(why) => {
            println!(
                "{:<13} {:<9} {} (optional)",
                "db up",
                "absent",
                db_up_use(workshop).0
            );
            println!("{:<13} {:<9} {why}", "", "");
        }
    }
    println!();
    if ok {
        println!(
            "Ready for the offline path: every module, its tests and the local lab need nothing more."
        );
        println!(
            "The tools marked absent matter only for deploying to AWS or for the optional real-database runs."
        );
    } else {
        println!("Something the offline path needs is missing (marked MISSING above).");
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rust_versions() {
        assert_eq!(rust_minor("rustc 1.95.0 (59807616e 2026-04-14)"), Some(95));
        assert_eq!(rust_minor("rustc 1.88.0-nightly"), Some(88));
        assert_eq!(rust_minor("something else"), None);
    }

    #[test]
    fn modules_are_named_as_a_person_would() {
        assert_eq!(modules_phrase(&[3]), "module 3");
        assert_eq!(modules_phrase(&[3, 4]), "modules 3 and 4");
        assert_eq!(modules_phrase(&[3, 4, 5]), "modules 3, 4 and 5");
    }

    #[test]
    fn db_up_names_the_scenarios_that_need_postgres() {
        let (text, _) = db_up_use(&Workshop::load());
        for scenario in lab::scenario::scenarios() {
            assert_eq!(
                text.contains(scenario.name),
                scenario.needs_postgres(),
                "{text}"
            );
        }
    }

    #[test]
    fn the_minimum_is_the_workspace_rust_version() {
        let manifest =
            std::fs::read_to_string(crate::workspace::root().join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("rust-version = \"1.{MIN_RUST_MINOR}\"")),
            "doctor's minimum and the workspace's rust-version disagree"
        );
    }
}
