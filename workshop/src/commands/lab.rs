//! `cargo workshop lab --scenario NAME`: a scenario of the lab against a
//! module, its report printed and its charts written. Which modules run
//! which scenario is read from `steps.toml`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use lab::scenario::{self, Scenario, Target};
use workshop::steps::{Module, Need, Workshop};
use workshop::{build, doctor, workspace};

/// Where the lab keeps the secrets of a module that reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SecretsAt {
    // The lab's own Secrets Manager, which counts the calls.
    Lab,
    // A moto server.
    Moto,
}

/// `--scenario`'s help: every scenario, the modules that run it, and what
/// it needs beyond the defaults.
pub fn scenario_help(workshop: &Workshop) -> String {
    // Scenarios listed by the same modules are named together, in the
    // order steps.toml first lists them.
    let mut groups: Vec<(Vec<u32>, Vec<&'static str>, bool)> = Vec::new();
    let all = scenario::scenarios();
    let mut listed: Vec<&str> = Vec::new();
    for module in &workshop.modules {
        for name in &module.scenarios {
            if !listed.contains(&name.as_str()) {
                listed.push(name);
            }
        }
    }
    for name in listed {
        let Some(scenario) = all.iter().find(|s| s.name == name) else {
            continue;
        };
        let modules = workshop.numbers_running(name);
        match groups.iter_mut().find(|g| g.0 == modules) {
            Some(group) => {
                group.1.push(scenario.name);
                group.2 |= scenario.needs_postgres();
            }
            None => groups.push((modules, vec![scenario.name], scenario.needs_postgres())),
        }
    }
    let described: Vec<String> = groups
        .into_iter()
        .map(|(modules, names, needs_postgres)| {
            let names = match names.as_slice() {
                [one] => one.to_string(),
                [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
                [] => unreachable!("a group has a scenario"),
            };
            let after = if needs_postgres {
                ", after `cargo workshop db up`"
            } else {
                ""
            };
            format!("{names} ({}{after})", doctor::modules_phrase(&modules))
        })
        .collect();
    format!("The scenario: {}", described.join("; "))
}

/// The module `--module` names, or the newest that runs the scenario.
fn module_for<'w>(
    workshop: &'w Workshop,
    module: Option<u32>,
    scenario: &str,
) -> Result<&'w Module, String> {
    let runs = workshop.numbers_running(scenario);
    let Some(n) = module else {
        return workshop
            .module_for_scenario(scenario)
            .ok_or_else(|| format!("no module runs the {scenario} scenario (steps.toml)"));
    };
    let chosen = workshop.module(n)?;
    if !chosen.http {
        return Err(format!(
            "module {n} is invoked directly, not over HTTP: the lab serves HTTP functions (`cargo workshop invoke {n}` runs module {n})"
        ));
    }
    if !runs.contains(&n) {
        return Err(format!(
            "module {n} does not run the {scenario} scenario; {} does: add --module {}",
            doctor::modules_phrase(&runs),
            runs.last().copied().unwrap_or(n)
        ));
    }
    Ok(chosen)
}

/// Builds what the scenario serves for `module`.
fn target(module: &Module, scenario: &Scenario) -> Result<Target, String> {
    let (_, reference) = workspace::packages(module.number);
    let reference = build::bootstrap(&reference)?;
    let mut variants = BTreeMap::new();
    for name in scenario.variants() {
        variants.insert(name.to_string(), build::binary("lab-functions", name)?);
    }
    Ok(Target {
        function_name: format!("ticket-drop-{}", module.number),
        reference,
        variants,
        database: module.needs(Need::Database),
        secrets: module.needs(Need::Secrets),
        tracing: module.needs(Need::Traces),
        secrets_endpoint: None,
    })
}

/// The moto server of `--secrets moto`: the one `TEST_SECRETS_URL` names,
/// or one started here on a free port and stopped with the run.
struct Moto {
    url: String,
    server: Option<std::process::Child>,
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(server) = &mut self.server {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

fn moto() -> Result<Moto, String> {
    if let Ok(url) = std::env::var("TEST_SECRETS_URL") {
        eprintln!("Secrets on the moto server at {url} (TEST_SECRETS_URL)");
        return Ok(Moto { url, server: None });
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port for moto: {e}"))?
        .port();
    let dir = workspace::target_dir().join("workshop").join("lab");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let log_path = dir.join("moto.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let server = std::process::Command::new("moto_server")
        .args(["-p", &port.to_string()])
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "--secrets moto starts moto's server, `moto_server`, which is not \
                installed: pip install 'moto[server]' (or set TEST_SECRETS_URL to a moto server that runs)"
                .to_string(),
            _ => format!("cannot start moto_server: {e}"),
        })?;
    let moto = Moto {
        url: format!("http://127.0.0.1:{port}"),
        server: Some(server),
    };
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > std::time::Duration::from_secs(20) {
            return Err(format!(
                "moto_server did not answer on port {port} within 20 s; its log: {}",
                workspace::relative(&log_path)
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    eprintln!(
        "Secrets on a moto server started at {} (its log: {})",
        moto.url,
        workspace::relative(&log_path)
    );
    Ok(moto)
}

pub async fn run(
    workshop: &Workshop,
    module: Option<u32>,
    name: &str,
    out: Option<PathBuf>,
    secrets: SecretsAt,
) -> Result<(), String> {
    let scenario = scenario::find(name)?;
    let module = module_for(workshop, module, name)?;
    if secrets == SecretsAt::Moto && !module.needs(Need::Secrets) {
        return Err(format!(
            "module {} reads no secret: --secrets moto is for the modules that do (needs = [\"secrets\"] in steps.toml)",
            module.number
        ));
    }
    let functions = if scenario.variants().is_empty() {
        "the reference solution"
    } else {
        "the reference solution beside a variant from workshop/lab-functions"
    };
    let mut target = target(module, &scenario)?;
    let moto = match secrets {
        SecretsAt::Moto => Some(moto()?),
        SecretsAt::Lab => None,
    };
    target.secrets_endpoint = moto.as_ref().map(|m| m.url.clone());
    eprintln!("{} (module {}, {functions})", scenario.title, module.number);
    let runs = scenario::run(&target, &scenario).await?;
    if let Some(run) = runs.iter().rev().find(|r| !r.traces.is_empty()) {
        let documents: Vec<serde_json::Value> =
            run.traces.iter().flat_map(|t| t.documents()).collect();
        workshop::traces::save_documents(&documents)?;
    }
    println!("\n{}\n", scenario.title);
    for run in &runs {
        println!("{}", run.text());
    }
    if runs.len() > 1 {
        println!("Side by side\n\n{}", lab::report::side_by_side(&runs));
    }
    let path = out.unwrap_or_else(|| {
        workspace::target_dir()
            .join("workshop")
            .join("lab")
            .join(format!("{}.html", scenario.name))
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let page = lab::report::html(scenario.title, scenario.intro, &runs);
    std::fs::write(&path, page).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("Charts: {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_steps_toml_lists_exists_and_every_scenario_is_listed() {
        let workshop = Workshop::load();
        let known: Vec<&str> = scenario::scenarios().iter().map(|s| s.name).collect();
        for module in &workshop.modules {
            for name in &module.scenarios {
                assert!(
                    known.contains(&name.as_str()),
                    "module {} lists {name}, which the lab does not know",
                    module.number
                );
            }
        }
        for name in known {
            assert!(
                !workshop.numbers_running(name).is_empty(),
                "no module in steps.toml runs the {name} scenario"
            );
        }
    }

    #[test]
    fn scenarios_with_a_database_run_only_on_modules_that_have_one() {
        let workshop = Workshop::load();
        for scenario in scenario::scenarios() {
            for n in workshop.numbers_running(scenario.name) {
                let module = workshop.module(n).unwrap();
                if scenario.needs_postgres() {
                    assert!(
                        module.needs(Need::Database),
                        "module {n} runs {}, which needs PostgreSQL, but does not need a database",
                        scenario.name
                    );
                }
            }
        }
    }

    #[test]
    fn a_scenario_runs_the_newest_module_that_lists_it() {
        let workshop = Workshop::load();
        for scenario in scenario::scenarios() {
            let runs = workshop.numbers_running(scenario.name);
            let chosen = module_for(&workshop, None, scenario.name).unwrap();
            assert_eq!(Some(&chosen.number), runs.last());
            for n in &runs {
                assert_eq!(
                    module_for(&workshop, Some(*n), scenario.name)
                        .unwrap()
                        .number,
                    *n
                );
            }
        }
    }

    #[test]
    fn a_module_that_does_not_run_a_scenario_says_which_do() {
        let workshop = Workshop::load();
        let first = &workshop.modules[0];
        assert!(!first.http);
        let error = module_for(&workshop, Some(first.number), "flash-sale").unwrap_err();
        assert!(error.contains("invoke"), "{error}");
        let storm = workshop.numbers_running("storm");
        let other = workshop
            .modules
            .iter()
            .find(|m| m.http && !storm.contains(&m.number))
            .expect("an HTTP module without the storm scenario");
        let error = module_for(&workshop, Some(other.number), "storm").unwrap_err();
        assert!(
            error.contains(&format!("add --module {}", storm.last().unwrap())),
            "{error}"
        );
    }

    #[test]
    fn the_help_names_every_scenario_and_the_modules_that_run_it() {
        let workshop = Workshop::load();
        let help = scenario_help(&workshop);
        for scenario in scenario::scenarios() {
            assert!(help.contains(scenario.name), "{help}");
        }
        assert!(help.contains("after `cargo workshop db up`"), "{help}");
    }
}
