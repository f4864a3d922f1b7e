//! The ordered list of modules and steps, from `steps.toml`.

use serde::Deserialize;

const STEPS_TOML: &str = include_str!("../../steps.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workshop {
    #[serde(rename = "module")]
    pub modules: Vec<Module>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Module {
    pub number: u32,
    pub title: String,
    /// The module's first page, relative to `book/src`.
    pub book: String,
    /// The event `cargo workshop invoke N` sends when none is given.
    pub default_event: String,
    /// True when the function answers HTTP requests through API Gateway
    /// (`cargo workshop serve N` and the lab); false when it is invoked
    /// directly.
    #[serde(default)]
    pub http: bool,
    /// What the function needs beside itself, which the tooling provides.
    #[serde(default)]
    pub needs: Vec<Need>,
    /// The lab scenarios of the module's lab page.
    #[serde(default)]
    pub scenarios: Vec<String>,
    #[serde(rename = "step")]
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub id: String,
    pub title: String,
    /// The step's page, relative to `book/src`.
    pub page: String,
    pub minutes: u32,
    pub kind: StepKind,
    pub hint: String,
}

/// Something a module's function needs beside itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Need {
    /// A database holds the tickets: a fresh SQLite file unless told
    /// otherwise, its schema applied by the reference's `migrate` command
    /// before the first invocation.
    Database,
    /// Secrets Manager holds its credentials: the lab's own endpoint, with
    /// the ticket signing key in it (`workshop/ticket-signing-key`).
    Secrets,
    /// Active tracing: the lab's collector receives its X-Ray segments.
    Traces,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    /// The learner fills a gap in the code.
    Code,
    /// The learner runs something and reads the result.
    Observe,
}

impl Module {
    /// Whether the function needs `need`.
    pub fn needs(&self, need: Need) -> bool {
        self.needs.contains(&need)
    }

    /// Whether the module's lab page runs `scenario`.
    pub fn runs(&self, scenario: &str) -> bool {
        self.scenarios.iter().any(|s| s == scenario)
    }
}

impl Step {
    /// The prefix of the names of this step's tests: `step_1_3_`.
    pub fn test_prefix(&self) -> String {
        format!("step_{}_", self.id.replace('.', "_"))
    }
}

impl Workshop {
    /// The steps shipped with this build of the tool.
    pub fn load() -> Workshop {
        Self::parse(STEPS_TOML).expect("steps.toml is valid (checked by the workshop's tests)")
    }

    pub fn parse(text: &str) -> Result<Workshop, String> {
        let workshop: Workshop = toml::from_str(text).map_err(|e| format!("steps.toml: {e}"))?;
        for (i, module) in workshop.modules.iter().enumerate() {
            if module.number as usize != i + 1 {
                return Err(format!("module {} is out of order", module.number));
            }
            if !module.scenarios.is_empty() && !module.http {
                return Err(format!(
                    "module {} lists lab scenarios, but the lab serves HTTP functions only (http = true)",
                    module.number
                ));
            }
            for (j, step) in module.steps.iter().enumerate() {
                let expected = format!("{}.{}", module.number, j + 1);
                if step.id != expected {
                    return Err(format!("step {} should be {expected}", step.id));
                }
            }
        }
        Ok(workshop)
    }

    pub fn module(&self, number: u32) -> Result<&Module, String> {
        self.modules
            .iter()
            .find(|m| m.number == number)
            .ok_or_else(|| {
                let known: Vec<String> =
                    self.modules.iter().map(|m| m.number.to_string()).collect();
                format!(
                    "there is no module {number}: the modules are {}",
                    known.join(", ")
                )
            })
    }

    /// The numbers of the modules that need `need`, in order.
    pub fn numbers_needing(&self, need: Need) -> Vec<u32> {
        self.numbers_where(|m| m.needs(need))
    }

    /// The numbers of the modules whose lab page runs `scenario`, in order.
    pub fn numbers_running(&self, scenario: &str) -> Vec<u32> {
        self.numbers_where(|m| m.runs(scenario))
    }

    fn numbers_where(&self, keep: impl Fn(&Module) -> bool) -> Vec<u32> {
        self.modules
            .iter()
            .filter(|m| keep(m))
            .map(|m| m.number)
            .collect()
    }

    /// The newest module that needs `need`.
    pub fn newest_needing(&self, need: Need) -> Option<&Module> {
        self.modules.iter().rev().find(|m| m.needs(need))
    }

    /// The module a scenario runs when none is named: the newest that
    /// lists it.
    pub fn module_for_scenario(&self, scenario: &str) -> Option<&Module> {
        self.modules.iter().rev().find(|m| m.runs(scenario))
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.modules
            .iter()
            .flat_map(|m| &m.steps)
            .find(|s| s.id == id)
    }

    /// The step a test belongs to, by its name.
    pub fn step_of_test(&self, test_name: &str) -> Option<&Step> {
        self.modules
            .iter()
            .flat_map(|m| &m.steps)
            .find(|s| test_name.starts_with(&s.test_prefix()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_steps_parse_and_are_in_order() {
        let workshop = Workshop::load();
        assert_eq!(workshop.modules[0].number, 1);
        assert!(workshop.modules.iter().all(|m| !m.steps.is_empty()));
    }

    #[test]
    fn tests_map_to_their_step() {
        let workshop = Workshop::load();
        let step = workshop
            .step_of_test("step_1_3_reserves_numbered_seats")
            .unwrap();
        assert_eq!(step.id, "1.3");
        assert!(workshop.step_of_test("helper_test").is_none());
    }

    #[test]
    fn out_of_order_steps_are_refused() {
        let text = STEPS_TOML.replacen("id = \"1.2\"", "id = \"1.9\"", 1);
        let error = Workshop::parse(&text).unwrap_err();
        assert!(error.contains("1.9"), "{error}");
    }

    #[test]
    fn what_a_module_needs_is_read_from_steps_toml() {
        let workshop = Workshop::load();
        let database = workshop.newest_needing(Need::Database).unwrap();
        assert!(database.http && database.needs(Need::Database));
        assert!(!workshop.modules[0].needs(Need::Database));
        assert!(workshop.module_for_scenario("no-such-scenario").is_none());
    }

    #[test]
    fn unknown_needs_are_refused() {
        let text = STEPS_TOML.replacen("needs = [\"database\"]", "needs = [\"databse\"]", 1);
        let error = Workshop::parse(&text).unwrap_err();
        assert!(error.contains("databse"), "{error}");
    }

    #[test]
    fn unknown_modules_are_named() {
        let error = Workshop::load().module(42).unwrap_err();
        assert!(error.contains("no module 42"), "{error}");
    }
}
