//! Running a module's suite and reading the result step by step: what
//! `cargo workshop verify` shows a learner, and what CI checks of the
//! starters.

use std::collections::BTreeMap;
use std::process::Stdio;

use crate::steps::{Module, Step, Workshop};
use crate::workspace;

/// The outcome of `cargo test -p <package>`.
#[derive(Debug, Clone, Default)]
pub struct SuiteRun {
    /// False when the crate or its tests did not build.
    pub compiled: bool,
    /// Test name to passed, for the tests that ran.
    pub tests: BTreeMap<String, bool>,
    /// The tests libtest left out (`#[ignore]`), with the reason their
    /// attribute gives ("" when it gives none). Neither passed nor failed.
    pub ignored: BTreeMap<String, String>,
    /// Whether the run asked for the ignored tests too (`--include-ignored`).
    pub include_ignored: bool,
    /// What each failed test printed (its panic message, mostly).
    pub failures: BTreeMap<String, String>,
    /// Everything cargo printed, for when nothing else explains it.
    pub output: String,
    pub command: String,
}

/// How one step stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepStatus {
    Done,
    /// Some of its tests fail (their names).
    Failing(Vec<String>),
    /// Every test of the step was ignored: nothing checked it.
    Skipped,
    /// No test is named after the step.
    Untested,
}

impl SuiteRun {
    pub fn step_status(&self, step: &Step) -> StepStatus {
        let prefix = step.test_prefix();
        let mine: Vec<(&String, &bool)> = self
            .tests
            .iter()
            .filter(|(name, _)| name.starts_with(&prefix))
            .collect();
        if mine.is_empty() {
            return if self.skipped(step).is_empty() {
                StepStatus::Untested
            } else {
                StepStatus::Skipped
            };
        }
        let failing: Vec<String> = mine
            .iter()
            .filter(|(_, passed)| !**passed)
            .map(|(name, _)| name.to_string())
            .collect();
        if failing.is_empty() {
            StepStatus::Done
        } else {
            StepStatus::Failing(failing)
        }
    }

    /// The step's ignored tests, counted by reason: `(reason, how many)`.
    pub fn skipped(&self, step: &Step) -> Vec<(String, usize)> {
        let prefix = step.test_prefix();
        let mut by_reason: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, reason) in self.ignored.iter().filter(|(n, _)| n.starts_with(&prefix)) {
            *by_reason.entry(reason.as_str()).or_default() += 1;
        }
        by_reason
            .into_iter()
            .map(|(reason, n)| (reason.to_string(), n))
            .collect()
    }

    /// What verify says of a step's ignored tests, one line per reason:
    /// `step 3.5: 2 skipped: needs ...`.
    pub fn skipped_lines(&self, step: &Step) -> Vec<String> {
        self.skipped(step)
            .into_iter()
            .map(|(reason, n)| {
                let reason = if reason.is_empty() {
                    "ignored, with no reason given".to_string()
                } else {
                    reason
                };
                format!("step {}: {n} skipped: {reason}", step.id)
            })
            .collect()
    }

    /// The steps done, counted from the first.
    pub fn steps_done(&self, module: &Module) -> usize {
        module
            .steps
            .iter()
            .filter(|s| self.step_status(s) == StepStatus::Done)
            .count()
    }

    /// The first step that is not done. A step whose every test was
    /// skipped is not done, but it does not hold the learner up either.
    pub fn first_unfinished<'m>(&self, module: &'m Module) -> Option<(&'m Step, StepStatus)> {
        module.steps.iter().find_map(|s| match self.step_status(s) {
            StepStatus::Done | StepStatus::Skipped => None,
            other => Some((s, other)),
        })
    }
}

/// Whether the suites run their ignored tests too: when both
/// `TEST_POSTGRES` and `TEST_PGBOUNCER` are set, the tests of step 3.5
/// that need PgBouncer have what they need (the suites read the same two
/// variables).
pub fn include_ignored() -> bool {
    std::env::var("TEST_POSTGRES").is_ok() && std::env::var("TEST_PGBOUNCER").is_ok()
}

/// Runs a package's tests and collects the result of each: first the
/// build, with progress on standard error, then the tests.
pub fn run_suite(package: &str) -> Result<SuiteRun, String> {
    let mut build = workspace::cargo();
    build.args(["test", "--package", package, "--no-run", "--color", "never"]);
    let built = crate::build::run(build, package, crate::build::Diagnostics::Keep)?;
    let include_ignored = include_ignored();
    let mut args = vec![
        "test",
        "--package",
        package,
        "--no-fail-fast",
        "--color",
        "never",
        "--",
        "--color",
        "never",
    ];
    if include_ignored {
        args.push("--include-ignored");
    }
    let command = format!("cargo {}", args.join(" "));
    if !built.success {
        return Ok(SuiteRun {
            compiled: false,
            output: built.stderr,
            command,
            include_ignored,
            ..SuiteRun::default()
        });
    }
    let output = workspace::cargo()
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut run = parse_test_output(&stdout);
    run.command = command;
    run.include_ignored = include_ignored;
    // A build failure leaves no test results; a failing test leaves some.
    run.compiled =
        !stderr.contains("could not compile") && (output.status.success() || !run.tests.is_empty());
    run.output = format!("{}{stderr}{stdout}", built.stderr);
    Ok(run)
}

/// Reads libtest's plain output: `test NAME ... ok|FAILED|ignored` lines
/// (`ignored, REASON` for `#[ignore = "REASON"]`) and the
/// `---- NAME stdout ----` sections of the failures.
pub fn parse_test_output(stdout: &str) -> SuiteRun {
    let mut run = SuiteRun::default();
    let mut current: Option<String> = None;
    for line in stdout.lines() {
        // Test names have no " ... "; a reason may.
        if let Some(rest) = line.strip_prefix("test ")
            && let Some((name, result)) = rest.split_once(" ... ")
        {
            match result.trim() {
                "ok" => {
                    run.tests.insert(name.to_string(), true);
                }
                "FAILED" => {
                    run.tests.insert(name.to_string(), false);
                }
                "ignored" => {
                    run.ignored.insert(name.to_string(), String::new());
                }
                other => {
                    if let Some(reason) = other.strip_prefix("ignored, ") {
                        run.ignored
                            .insert(name.to_string(), reason.trim().to_string());
                    }
                }
            }
            continue;
        }
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            current = Some(name.to_string());
            run.failures.entry(name.to_string()).or_default();
            continue;
        }
        if line == "failures:" || line.starts_with("test result:") {
            current = None;
            continue;
        }
        if let Some(name) = &current {
            let text = run.failures.entry(name.clone()).or_default();
            text.push_str(line);
            text.push('\n');
        }
    }
    run
}

/// The lines of a failure worth showing: the panic and its message, without
/// insta's boxes and backtrace notes.
pub fn failure_summary(text: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    let start = lines
        .iter()
        .position(|l| l.contains("panicked at") || l.contains("Snapshot Summary"))
        .unwrap_or(0);
    let shown: Vec<&str> = lines[start..].iter().take(max_lines).copied().collect();
    let mut out = shown.join("\n");
    if lines.len() - start > max_lines {
        out.push_str("\n…");
    }
    out
}

/// `cargo workshop verify [N]`: the learner's progress, module by module,
/// stopping at the first unfinished one.
pub fn verify(workshop: &Workshop, only: Option<u32>) -> Result<bool, String> {
    match only {
        None => println!(
            "Checking your modules in order (this builds each one; the first run takes a while)…\n"
        ),
        Some(n) => println!("Checking module {n} (this builds it; the first run takes a while)…\n"),
    }
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    let mut report = None;
    let modules = workshop
        .modules
        .iter()
        .filter(|m| only.is_none_or(|n| n == m.number));
    for module in modules {
        if report.is_some() {
            rows.push((module, "-".to_string(), "not checked yet".to_string()));
            continue;
        }
        let (learner, _) = workspace::packages(module.number);
        eprintln!("  testing {learner} …");
        let run = run_suite(&learner)?;
        let total = module.steps.len();
        if !run.compiled {
            rows.push((module, format!("0/{total}"), "does not compile".into()));
            report = Some(Report::DoesNotCompile(module, run));
            continue;
        }
        skipped.extend(module.steps.iter().flat_map(|s| run.skipped_lines(s)));
        let done = run.steps_done(module);
        match run.first_unfinished(module) {
            None if done == total => {
                rows.push((module, format!("{done}/{total}"), "done ✔".into()))
            }
            None => rows.push((
                module,
                format!("{done}/{total}"),
                format!("done, {} step(s) skipped", total - done),
            )),
            Some((step, status)) => {
                rows.push((
                    module,
                    format!("{done}/{total}"),
                    format!("step {} next", step.id),
                ));
                report = Some(Report::Unfinished(module, step, status, run));
            }
        }
    }

    println!("{:<8} {:<34} {:>6}  Status", "Module", "Title", "Steps");
    for (module, steps, status) in &rows {
        println!(
            "{:<8} {:<34} {:>6}  {}",
            module.number, module.title, steps, status
        );
    }
    println!();
    if !skipped.is_empty() {
        println!("Skipped (not run, so neither passed nor failed):");
        for line in &skipped {
            println!("  {line}");
        }
        println!("  With TEST_POSTGRES and TEST_PGBOUNCER both set, verify runs them too.");
        println!();
    }
    match report {
        None if only.is_some() => {
            println!("This module is done. `cargo workshop verify` shows the others.");
            Ok(true)
        }
        None => {
            println!(
                "Every module is done. Well played: the lab is yours (`cargo workshop --help`)."
            );
            Ok(true)
        }
        Some(Report::DoesNotCompile(module, run)) => {
            let (learner, _) = workspace::packages(module.number);
            println!(
                "modules/module-{} does not compile yet. What the compiler said:\n",
                module.number
            );
            let errors: Vec<&str> = run
                .output
                .lines()
                .skip_while(|l| !l.starts_with("error"))
                .take(40)
                .collect();
            println!("{}", errors.join("\n"));
            println!(
                "\nFix it and run `cargo workshop verify` again (or `cargo build -p {learner}`)."
            );
            Ok(false)
        }
        Some(Report::Unfinished(module, step, status, run)) => {
            let (learner, _) = workspace::packages(module.number);
            println!("Next: step {} — {}", step.id, step.title);
            println!("  read:  book/src/{}", step.page);
            println!("  hint:  {}", step.hint);
            match status {
                StepStatus::Failing(tests) => {
                    println!("  failing tests:");
                    for test in &tests {
                        println!("    {test}");
                    }
                    if let Some(text) = tests.first().and_then(|t| run.failures.get(t)) {
                        let summary = failure_summary(text, 12);
                        println!("\n  {} says:", tests[0]);
                        for line in summary.lines() {
                            println!("    {line}");
                        }
                    }
                    let ignored = if run.include_ignored {
                        " -- --include-ignored"
                    } else {
                        ""
                    };
                    println!(
                        "\n  run just this step: cargo test -p {learner} {}{ignored}",
                        step.test_prefix()
                    );
                }
                StepStatus::Untested | StepStatus::Done | StepStatus::Skipped => {
                    println!("  (no test is named after this step; ask your instructor)");
                }
            }
            Ok(false)
        }
    }
}

enum Report<'a> {
    DoesNotCompile(&'a Module, SuiteRun),
    Unfinished(&'a Module, &'a Step, StepStatus, SuiteRun),
}

/// For CI: every learner crate compiles, and on the starter every step of
/// the module has at least one failing test (a suite that passes on the
/// starter teaches nothing); every test belongs to a step.
pub fn check_starters(workshop: &Workshop) -> Result<(), String> {
    let mut problems = Vec::new();
    for module in &workshop.modules {
        let (learner, _) = workspace::packages(module.number);
        eprintln!("checking the starter of {learner} …");
        let run = run_suite(&learner)?;
        if !run.compiled {
            problems.push(format!(
                "{learner} does not compile as shipped:\n{}",
                run.output
            ));
            continue;
        }
        for step in &module.steps {
            match run.step_status(step) {
                StepStatus::Failing(_) => {}
                StepStatus::Done => problems.push(format!(
                    "step {} passes on the starter of {learner}: its tests teach nothing",
                    step.id
                )),
                StepStatus::Skipped => problems.push(format!(
                    "step {} on the starter of {learner}: every test was ignored, so nothing shows it red",
                    step.id
                )),
                StepStatus::Untested => problems.push(format!(
                    "step {} has no test named {}*",
                    step.id,
                    step.test_prefix()
                )),
            }
        }
        for name in run.tests.keys().chain(run.ignored.keys()) {
            if workshop.step_of_test(name).is_none() {
                problems.push(format!("{learner}: test {name} is not named after a step"));
            }
        }
        eprintln!(
            "  {} tests, {} failing on the starter, {} ignored, every step red",
            run.tests.len() + run.ignored.len(),
            run.tests.values().filter(|p| !**p).count(),
            run.ignored.len()
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// For CI: a learner who has done the steps up to one step passes every
/// test of those steps, whatever the later gaps still hold. Fills the gaps
/// of each learner crate one step at a time, runs its suite each time, and
/// puts the starter back at the end. Refuses to run on a learner crate
/// that is not the untouched starter.
pub fn check_progression(workshop: &Workshop, only: Option<u32>) -> Result<(), String> {
    use crate::generate::{Variant, derive_files, drift, step_number, write};
    let root = workspace::root();
    let mut problems = Vec::new();
    if let Some(n) = only {
        workshop.module(n)?;
    }
    for module in workshop
        .modules
        .iter()
        .filter(|m| only.is_none_or(|n| n == m.number))
    {
        let n = module.number;
        let (learner, _) = workspace::packages(n);
        let dir = workspace::learner_dir(&root, n);
        let starter = derive_files(&root, module, Variant::Starter)?;
        if !drift(&dir, &starter)?.is_empty() {
            return Err(format!(
                "modules/module-{n} is not the starter: this check rewrites it, so run it on a clean tree"
            ));
        }
        let code_steps: Vec<&Step> = module
            .steps
            .iter()
            .filter(|s| s.kind == crate::steps::StepKind::Code)
            .collect();
        let mut walk = || -> Result<(), String> {
            for step in &code_steps {
                let (m, k) =
                    step_number(&step.id).ok_or_else(|| format!("bad step id {}", step.id))?;
                write(
                    &dir,
                    &derive_files(&root, module, Variant::SolvedThrough(m, k))?,
                )?;
                let run = run_suite(&learner)?;
                if !run.compiled {
                    problems.push(format!(
                        "{learner} through step {} does not compile:\n{}",
                        step.id, run.output
                    ));
                    continue;
                }
                let red: Vec<String> = module
                    .steps
                    .iter()
                    .filter(|s| step_number(&s.id).is_some_and(|x| x <= (m, k)))
                    .filter_map(|earlier| match run.step_status(earlier) {
                        StepStatus::Failing(tests) => {
                            Some(format!("step {} ({})", earlier.id, tests.join(", ")))
                        }
                        _ => None,
                    })
                    .collect();
                if red.is_empty() {
                    eprintln!(
                        "  {learner} through step {}: every step so far is green",
                        step.id
                    );
                } else {
                    problems.push(format!(
                        "{learner} with the gaps up to step {} filled still fails {}",
                        step.id,
                        red.join("; ")
                    ));
                }
            }
            Ok(())
        };
        let walked = walk();
        write(&dir, &starter)?;
        walked?;
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
running 3 tests
test step_1_1_parses ... ok
test step_1_2_rejects ... FAILED
test step_1_3_reserves ... ok

failures:

---- step_1_2_rejects stdout ----

thread 'step_1_2_rejects' panicked at tests/module-1/main.rs:10:5:
not yet implemented: step 1.2: validate the request
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace


failures:
    step_1_2_rejects

test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out
";

    #[test]
    fn reads_results_and_failure_messages() {
        let run = parse_test_output(OUTPUT);
        assert_eq!(run.tests.len(), 3);
        assert!(!run.tests["step_1_2_rejects"]);
        let summary = failure_summary(&run.failures["step_1_2_rejects"], 5);
        assert_eq!(
            summary,
            "thread 'step_1_2_rejects' panicked at tests/module-1/main.rs:10:5:\nnot yet implemented: step 1.2: validate the request"
        );
    }

    #[test]
    fn steps_are_judged_by_their_tests() {
        let run = parse_test_output(OUTPUT);
        let workshop = Workshop::load();
        let module = workshop.module(1).unwrap();
        assert_eq!(run.step_status(&module.steps[0]), StepStatus::Done);
        assert_eq!(
            run.step_status(&module.steps[1]),
            StepStatus::Failing(vec!["step_1_2_rejects".into()])
        );
        assert_eq!(run.step_status(&module.steps[3]), StepStatus::Untested);
        let (first, _) = run.first_unfinished(module).unwrap();
        assert_eq!(first.id, "1.2");
    }

    /// What libtest prints for `#[ignore = "..."]` and a bare `#[ignore]`
    /// (checked on rustc 1.95).
    const IGNORED: &str = "\
running 5 tests
test step_3_4_recovers ... ignored
test step_3_5_named_statements_break_behind_pgbouncer ... ignored, needs TEST_POSTGRES and TEST_PGBOUNCER (cargo workshop db up)
test step_3_5_session_state_leaks_between_clients_of_pgbouncer ... ignored, needs TEST_POSTGRES and TEST_PGBOUNCER (cargo workshop db up)
test step_3_5_statements_are_not_prepared_by_name ... ok
test step_3_6_signs ... ignored, slow ... on a laptop

test result: ok. 1 passed; 0 failed; 4 ignored; 0 measured; 0 filtered out; finished in 0.00s
";

    fn step<'m>(module: &'m Module, id: &str) -> &'m Step {
        module.steps.iter().find(|s| s.id == id).unwrap()
    }

    #[test]
    fn ignored_tests_are_read_with_their_reason_and_neither_pass_nor_fail() {
        let run = parse_test_output(IGNORED);
        assert_eq!(
            run.tests.keys().collect::<Vec<_>>(),
            ["step_3_5_statements_are_not_prepared_by_name"]
        );
        assert_eq!(run.ignored.len(), 4);
        assert_eq!(
            run.ignored["step_3_5_named_statements_break_behind_pgbouncer"],
            "needs TEST_POSTGRES and TEST_PGBOUNCER (cargo workshop db up)"
        );
        assert_eq!(run.ignored["step_3_4_recovers"], "");
        assert_eq!(
            run.ignored["step_3_6_signs"], "slow ... on a laptop",
            "a reason may hold the separator; a test name cannot"
        );
        assert!(run.failures.is_empty());
    }

    #[test]
    fn ignored_tests_of_a_step_are_reported_as_skipped() {
        let run = parse_test_output(IGNORED);
        let workshop = Workshop::load();
        let module = workshop.module(3).unwrap();
        // Its one test that ran passed: done, and the two others said so.
        assert_eq!(run.step_status(step(module, "3.5")), StepStatus::Done);
        assert_eq!(
            run.skipped_lines(step(module, "3.5")),
            ["step 3.5: 2 skipped: needs TEST_POSTGRES and TEST_PGBOUNCER (cargo workshop db up)"]
        );
        assert_eq!(
            run.skipped_lines(step(module, "3.4")),
            ["step 3.4: 1 skipped: ignored, with no reason given"]
        );
        // Nothing of 3.4 ran: not done, yet not what holds the learner up.
        assert_eq!(run.step_status(step(module, "3.4")), StepStatus::Skipped);
        assert_eq!(run.step_status(step(module, "3.7")), StepStatus::Untested);
        assert_eq!(run.steps_done(module), 1);
        let (first, status) = run.first_unfinished(module).unwrap();
        assert_eq!((first.id.as_str(), status), ("3.1", StepStatus::Untested));
        assert!(run.skipped_lines(step(module, "3.1")).is_empty());
    }

    #[test]
    fn ignored_tests_that_run_count_like_any_other() {
        // With `--include-ignored`, libtest prints them as ok or FAILED.
        let run = parse_test_output(
            "test step_3_5_named_statements_break_behind_pgbouncer ... FAILED\n\
             test step_3_5_statements_are_not_prepared_by_name ... ok\n",
        );
        let workshop = Workshop::load();
        let module = workshop.module(3).unwrap();
        assert!(run.ignored.is_empty());
        assert_eq!(
            run.step_status(step(module, "3.5")),
            StepStatus::Failing(vec![
                "step_3_5_named_statements_break_behind_pgbouncer".into()
            ])
        );
    }
}
