//! `cargo workshop db up|down|status|migrate`: the throwaway PostgreSQL and
//! PgBouncer of [`lab::db`].

use std::collections::BTreeMap;
use std::process::ExitCode;

use workshop::steps::{Need, Workshop};
use workshop::{build, workspace};

use crate::cli::DbAction;

pub fn run(workshop: &Workshop, action: DbAction) -> Result<ExitCode, String> {
    match action {
        DbAction::Up {
            max_connections,
            pool_size,
        } => {
            let urls = lab::db::up(max_connections, pool_size)?;
            println!(
                "PostgreSQL: {} (max_connections {max_connections})",
                urls.postgres
            );
            println!(
                "PgBouncer:  {} (transaction mode, {pool_size} server connections)",
                urls.pgbouncer
            );
            let numbers = workshop.numbers_needing(Need::Database);
            let modules = workshop::doctor::modules_phrase(&numbers);
            println!("The lab's {modules} scenarios use them; to run {modules}'s suite on them:");
            println!(
                "  export TEST_POSTGRES={} TEST_PGBOUNCER={}",
                urls.postgres, urls.pgbouncer
            );
            for n in numbers {
                println!(
                    "  cargo test -p module-{n} -- --include-ignored   # the PgBouncer tests too"
                );
            }
            println!("`cargo workshop db down` stops them.");
        }
        DbAction::Migrate { url } => {
            migrate_url(&url)?;
            let module = workshop.newest_needing(Need::Database).ok_or(
                "no module keeps its tickets in a database (needs = [\"database\"] in steps.toml)",
            )?;
            let (_, reference) = workspace::packages(module.number);
            let migrator = build::bootstrap(&reference)?;
            let environment: BTreeMap<String, String> = std::env::var("EVENTS")
                .ok()
                .map(|events| ("EVENTS".to_string(), events))
                .into_iter()
                .collect();
            lab::stack::migrate(&migrator, &environment, &url)?;
            println!("Schema applied, events on sale.");
        }
        DbAction::Down => {
            lab::db::down()?;
            println!("PostgreSQL and PgBouncer are stopped.");
        }
        DbAction::Status => {
            if lab::db::is_up() {
                println!(
                    "running: PostgreSQL {} and PgBouncer on port {}",
                    lab::db::admin_url(),
                    lab::db::PGBOUNCER_PORT
                );
            } else {
                println!("not running (`cargo workshop db up` starts them)");
                match lab::db::tools() {
                    Ok(_) => println!("PostgreSQL and PgBouncer are installed."),
                    Err(why) => println!("{why}"),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--url` of `db migrate`: a database the reference's sqlx can open.
fn migrate_url(url: &str) -> Result<(), String> {
    if url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://")
    {
        Ok(())
    } else {
        // Not echoed: the URL may hold a password.
        Err("--url must start with sqlite: or postgres://".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrate_takes_the_urls_sqlx_opens() {
        for good in [
            "sqlite:t.db?mode=rwc",
            "postgres://u:p@h/db",
            "postgresql://h/db",
        ] {
            assert!(migrate_url(good).is_ok(), "{good}");
        }
        let error = migrate_url("mysql://user:s3cret@h/db").unwrap_err();
        assert!(error.contains("sqlite:"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
    }
}
