//! Learner crates, derived from the reference solutions.
//!
//! The solution is the single source of truth. In its Rust sources, an
//! exercise region marks what the learner writes:
//!
//! ```text
//!     //- exercise 1.3
//!     ... the reference code ...
//!     //- starter
//!     //> // TODO (step 1.3): what to do
//!     //> todo!("step 1.3: ...")
//!     //- end
//! ```
//!
//! The learner crate gets the starter lines (without their `//> ` prefix)
//! instead of the reference code. `// ANCHOR:` lines, which carve out what
//! the book shows, are dropped. `Cargo.toml` is renamed to the learner's
//! package and binary, and allows unused code while the gaps are open.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::steps::{Module, StepKind};
use crate::workspace;

/// The generated files of one learner crate, by path relative to the crate.
pub type Files = BTreeMap<PathBuf, String>;

/// What the book must not show of an exercise region: the markers and the
/// starter lines. The book's preprocessor uses this to clean included code.
pub fn is_marker_line(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("//- ") || t == "//>" || t.starts_with("//> ")
}

/// What goes into the gaps of a generated learner crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The starter: TODOs and `todo!()`s, as shipped.
    Starter,
    /// The reference code (`cargo workshop solve`).
    Solved,
    /// The reference code for the steps up to this one (module, step), the
    /// starter for the rest: a learner partway through.
    SolvedThrough(u32, u32),
}

impl Variant {
    /// Whether the gap of step `id` ("1.3") is filled with the reference.
    pub fn solves(self, id: &str) -> bool {
        match self {
            Variant::Starter => false,
            Variant::Solved => true,
            Variant::SolvedThrough(m, s) => step_number(id).is_some_and(|n| n <= (m, s)),
        }
    }
}

/// "1.3" as (1, 3).
pub fn step_number(id: &str) -> Option<(u32, u32)> {
    let (m, s) = id.split_once('.')?;
    Some((m.parse().ok()?, s.parse().ok()?))
}

/// Derives the learner's version of one Rust source file.
pub fn learner_source(text: &str, file: &str) -> Result<(String, Vec<String>), String> {
    derive_source(text, file, Variant::Starter)
}

/// Derives one Rust source file of the learner crate, with its gaps filled
/// as `variant` says; also returns the steps of its exercise regions.
pub fn derive_source(
    text: &str,
    file: &str,
    variant: Variant,
) -> Result<(String, Vec<String>), String> {
    enum State {
        Normal,
        Solution(String, usize),
        Starter(String, usize, bool),
    }
    let mut out = String::new();
    let mut steps = Vec::new();
    let mut state = State::Normal;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let t = line.trim_start();
        let at = || format!("{file}:{n}");
        if t.starts_with("// ANCHOR:") || t.starts_with("// ANCHOR_END:") {
            continue;
        }
        state = match (state, t) {
            (State::Normal, t) if t.starts_with("//- exercise ") => {
                let id = t["//- exercise ".len()..].trim().to_string();
                steps.push(id.clone());
                State::Solution(id, n)
            }
            (State::Normal, t) if t.starts_with("//- ") || t.starts_with("//>") => {
                return Err(format!("{}: `{t}` outside an exercise region", at()));
            }
            (State::Normal, _) => {
                out.push_str(line);
                out.push('\n');
                State::Normal
            }
            (State::Solution(id, start), "//- starter") => State::Starter(id, start, false),
            (State::Solution(id, start), t) if t.starts_with("//- ") => {
                return Err(format!(
                    "{}: exercise {id} (line {start}) needs `//- starter` before `{t}`",
                    at()
                ));
            }
            (State::Solution(id, start), _) => {
                if variant.solves(&id) {
                    out.push_str(line);
                    out.push('\n');
                }
                State::Solution(id, start)
            }
            (State::Starter(id, start, named), "//- end") => {
                if !named {
                    return Err(format!(
                        "{file}:{start}: the starter of exercise {id} must mention \"step {id}\", so the learner knows where to read"
                    ));
                }
                State::Normal
            }
            (State::Starter(id, start, named), t) if t == "//>" || t.starts_with("//> ") => {
                let indent = &line[..line.len() - t.len()];
                let code = t.strip_prefix("//> ").unwrap_or("");
                if variant.solves(&id) {
                    // The reference code stands in the gap instead.
                } else if code.is_empty() {
                    out.push('\n');
                } else {
                    out.push_str(indent);
                    out.push_str(code);
                    out.push('\n');
                }
                let named = named || code.contains(&format!("step {id}"));
                State::Starter(id, start, named)
            }
            (State::Starter(id, _, _), t) => {
                return Err(format!(
                    "{}: in the starter of exercise {id}, every line starts with `//> ` (found `{t}`)",
                    at()
                ));
            }
        };
    }
    match state {
        State::Normal => Ok((out, steps)),
        State::Solution(id, start) | State::Starter(id, start, _) => {
            Err(format!("{file}:{start}: exercise {id} has no `//- end`"))
        }
    }
}

/// Derives the learner's `Cargo.toml`.
pub fn learner_manifest(text: &str, n: u32) -> String {
    let (learner, reference) = workspace::packages(n);
    let body = text
        .replace(&format!("\"{reference}\""), &format!("\"{learner}\""))
        .replace(", reference solution:", ", your crate:");
    let allows: String = LEARNER_ALLOWED
        .iter()
        .map(|lint| format!("{lint} = \"allow\"\n"))
        .collect();
    format!(
        "# Generated by `cargo workshop generate` from solutions/module-{n}/Cargo.toml.\n\
         # Do not edit: change the solution and generate again.\n\
         {body}\n\
         # While the gaps are open, code nothing calls yet and the bindings a\n\
         # gap leaves unread are expected: stay quiet about those alone.\n\
         # Every other warning (an ignored Result, a future never awaited)\n\
         # points at a real bug, and stays on.\n\
         [lints.rust]\n\
         {allows}"
    )
}

/// The lints the starters' open gaps make noisy, allowed in learner crates:
/// a gap takes away the code that would call a function, read a binding,
/// use an import or a `mut`, or run after a `todo!()`.
const LEARNER_ALLOWED: &[&str] = &[
    "dead_code",
    "unused_variables",
    "unused_assignments",
    "unused_mut",
    "unused_imports",
    "unreachable_code",
];

/// Every file of the learner crate for `module`, as generated from its
/// solution; checks that each code step has at least one exercise region.
pub fn learner_files(root: &Path, module: &Module) -> Result<Files, String> {
    derive_files(root, module, Variant::Starter)
}

/// Every file of the learner crate for `module`, its gaps filled as
/// `variant` says.
pub fn derive_files(root: &Path, module: &Module, variant: Variant) -> Result<Files, String> {
    let n = module.number;
    let source = workspace::solution_dir(root, n);
    let mut files = Files::new();
    let mut regions = Vec::new();
    for path in walk(&source)? {
        let rel = path
            .strip_prefix(&source)
            .expect("walked below source")
            .to_path_buf();
        let text = fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let generated = if rel == Path::new("Cargo.toml") {
            learner_manifest(&text, n)
        } else if rel.extension().is_some_and(|e| e == "rs") {
            let label = format!("solutions/module-{n}/{}", rel.display());
            let (code, steps) = derive_source(&text, &label, variant)?;
            regions.extend(steps);
            code
        } else {
            text
        };
        files.insert(rel, generated);
    }
    for id in &regions {
        if !module.steps.iter().any(|s| &s.id == id) {
            return Err(format!(
                "solutions/module-{n} has an exercise for step {id}, which steps.toml does not list"
            ));
        }
    }
    for step in module.steps.iter().filter(|s| s.kind == StepKind::Code) {
        if !regions.contains(&step.id) {
            return Err(format!(
                "step {} is a code step, but solutions/module-{n} has no `//- exercise {}` region",
                step.id, step.id
            ));
        }
    }
    Ok(files)
}

/// Files below `dir`, skipping build output, sorted.
fn walk(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = fs::read_dir(&d).map_err(|e| format!("cannot read {}: {e}", d.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", d.display()))?;
            let path = entry.path();
            let name = entry.file_name();
            if name == "target" || name.to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The differences between what is on disk in `dir` and `files`.
pub fn drift(dir: &Path, files: &Files) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    for (rel, expected) in files {
        match fs::read_to_string(dir.join(rel)) {
            Ok(actual) if &actual == expected => {}
            Ok(_) => problems.push(format!("{} differs", rel.display())),
            Err(_) => problems.push(format!("{} is missing", rel.display())),
        }
    }
    if dir.exists() {
        for path in walk(dir)? {
            let rel = path.strip_prefix(dir).expect("below dir");
            if !files.contains_key(rel) {
                problems.push(format!("{} is not generated", rel.display()));
            }
        }
    }
    Ok(problems)
}

/// Replaces the learner crate in `dir` with `files` (build output is kept).
pub fn write(dir: &Path, files: &Files) -> Result<(), String> {
    if dir.exists() {
        for path in walk(dir)? {
            fs::remove_file(&path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
        }
    }
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    remove_empty_dirs(dir);
    Ok(())
}

fn remove_empty_dirs(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && entry.file_name() != "target" {
                remove_empty_dirs(&path);
                let _ = fs::remove_dir(&path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOLUTION: &str = "\
fn answer() -> u32 {
    // ANCHOR: body
    //- exercise 1.1
    6 * 7
    //- starter
    //> // TODO (step 1.1): compute it
    //> todo!(\"step 1.1: the answer\")
    //- end
    // ANCHOR_END: body
}
";

    #[test]
    fn exercise_regions_become_starters() {
        let (code, steps) = learner_source(SOLUTION, "x.rs").unwrap();
        assert_eq!(
            code,
            "fn answer() -> u32 {\n    // TODO (step 1.1): compute it\n    todo!(\"step 1.1: the answer\")\n}\n"
        );
        assert_eq!(steps, vec!["1.1"]);
    }

    #[test]
    fn solved_crates_keep_the_reference_code() {
        let (code, _) = derive_source(SOLUTION, "x.rs", Variant::Solved).unwrap();
        assert_eq!(code, "fn answer() -> u32 {\n    6 * 7\n}\n");
    }

    #[test]
    fn a_learner_partway_through_has_the_earlier_gaps_filled() {
        let text = format!(
            "{SOLUTION}{}",
            SOLUTION.replace("1.1", "1.2").replace("answer", "other")
        );
        let (code, _) = derive_source(&text, "x.rs", Variant::SolvedThrough(1, 1)).unwrap();
        assert!(code.contains("    6 * 7\n"), "step 1.1 is filled: {code}");
        assert!(code.contains("todo!(\"step 1.2"), "step 1.2 is not: {code}");
    }

    #[test]
    fn a_starter_must_name_its_step() {
        let text = SOLUTION.replace("step 1.1", "step one");
        let error = learner_source(&text, "x.rs").unwrap_err();
        assert!(error.contains("must mention \"step 1.1\""), "{error}");
    }

    #[test]
    fn unterminated_regions_are_refused() {
        let text = "fn f() {\n//- exercise 1.1\n1\n//- starter\n//> todo!(\"step 1.1\")\n";
        let error = learner_source(text, "x.rs").unwrap_err();
        assert!(
            error.contains("x.rs:2: exercise 1.1 has no `//- end`"),
            "{error}"
        );
    }

    #[test]
    fn a_region_without_starter_is_refused() {
        let text = "//- exercise 1.1\nlet x = 1;\n//- end\n";
        let error = learner_source(text, "x.rs").unwrap_err();
        assert!(error.contains("needs `//- starter`"), "{error}");
    }

    #[test]
    fn starter_lines_need_their_prefix() {
        let text = "//- exercise 1.1\n//- starter\ntodo!(\"step 1.1\")\n//- end\n";
        let error = learner_source(text, "x.rs").unwrap_err();
        assert!(error.contains("every line starts with `//> `"), "{error}");
    }

    #[test]
    fn manifests_are_renamed_and_quiet() {
        let manifest = "[package]\nname = \"module-1-solution\"\ndescription = \"M1, reference solution: x\"\n\n[[bin]]\nname = \"module-1-solution\"\n";
        let learner = learner_manifest(manifest, 1);
        assert!(learner.contains("name = \"module-1\"\ndescription = \"M1, your crate: x\""));
        assert!(learner.contains("[[bin]]\nname = \"module-1\"\n"));
        assert!(!learner.contains("solution\""));
        assert!(learner.ends_with(
            "[lints.rust]\ndead_code = \"allow\"\nunused_variables = \"allow\"\nunused_assignments = \"allow\"\nunused_mut = \"allow\"\nunused_imports = \"allow\"\nunreachable_code = \"allow\"\n"
        ));
        assert!(
            !learner.contains("unused = "),
            "the whole unused group stays on"
        );
    }
}

/// Copies the learner crate for module `n` (all but build output) into a
/// new, dated backup folder, and returns its path.
pub fn backup(root: &Path, n: u32) -> Result<PathBuf, String> {
    let dir = workspace::learner_dir(root, n);
    let stamp = timestamp();
    let backups = workspace::backups_dir(root);
    let mut target = backups.join(format!("module-{n}-{stamp}"));
    let mut k = 1;
    while target.exists() {
        k += 1;
        target = backups.join(format!("module-{n}-{stamp}-{k}"));
    }
    for path in walk(&dir)? {
        let rel = path.strip_prefix(&dir).expect("below dir");
        let to = target.join(rel);
        fs::create_dir_all(to.parent().expect("has a parent"))
            .map_err(|e| format!("cannot create {}: {e}", target.display()))?;
        fs::copy(&path, &to).map_err(|e| format!("cannot back up {}: {e}", path.display()))?;
    }
    Ok(target)
}

/// Replaces the learner crate of `module` with `variant`. What is there is
/// backed up first, unless it is the untouched starter or the untouched
/// reference, which can always be generated again. Returns the backup, if
/// one was made.
pub fn replace_learner(
    root: &Path,
    module: &Module,
    variant: Variant,
) -> Result<Option<PathBuf>, String> {
    let n = module.number;
    let dir = workspace::learner_dir(root, n);
    let mut pristine = false;
    for v in [Variant::Starter, Variant::Solved] {
        pristine |= drift(&dir, &derive_files(root, module, v)?)?.is_empty();
    }
    let saved = if pristine {
        None
    } else {
        Some(backup(root, n)?)
    };
    write(&dir, &derive_files(root, module, variant)?)?;
    Ok(saved)
}

/// UTC date and time as `20261125-193353`, for backup names.
fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = lab::clock::civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod solve_tests {
    use super::*;
    use crate::steps::Workshop;

    /// A scratch repository holding a copy of solutions/module-1.
    fn scratch(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let from = workspace::solution_dir(&workspace::root(), 1);
        for path in walk(&from).unwrap() {
            let to = workspace::solution_dir(&root, 1).join(path.strip_prefix(&from).unwrap());
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::copy(&path, &to).unwrap();
        }
        root
    }

    #[test]
    fn solve_and_reset_keep_the_learners_work() {
        let root = scratch("solve-reset");
        let workshop = Workshop::load();
        let module = workshop.module(1).unwrap();
        let learner = workspace::learner_dir(&root, 1);
        let stock = learner.join("src/stock.rs");

        // Generated starter: nothing to keep.
        write(&learner, &learner_files(&root, module).unwrap()).unwrap();
        assert!(
            fs::read_to_string(&stock)
                .unwrap()
                .contains("todo!(\"step 1.3")
        );
        assert_eq!(
            replace_learner(&root, module, Variant::Solved).unwrap(),
            None
        );
        assert!(!fs::read_to_string(&stock).unwrap().contains("todo!("));

        // The learner's own edits are kept before the starter comes back.
        fs::write(&stock, "// my work\n").unwrap();
        let saved = replace_learner(&root, module, Variant::Starter)
            .unwrap()
            .expect("a backup");
        assert_eq!(
            fs::read_to_string(saved.join("src/stock.rs")).unwrap(),
            "// my work\n"
        );
        assert!(saved.starts_with(workspace::backups_dir(&root)));
        assert!(
            drift(&learner, &learner_files(&root, module).unwrap())
                .unwrap()
                .is_empty()
        );
        let _ = fs::remove_dir_all(&root);
    }
}
