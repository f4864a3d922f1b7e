//! The shape of the code: the lab is a library the workshop tool builds on,
//! never the reverse, and inside each crate no source file imports one
//! that imports it back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every `.rs` file under `dir`, by its module path (`commands::lab`);
/// `bin/` is left out (separate crates), `mod.rs` names its folder.
fn modules(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if name != "bin" {
                modules(&path, &format!("{prefix}{name}::"), out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let module = if name == "mod" {
                prefix.trim_end_matches("::").to_string()
            } else {
                format!("{prefix}{name}")
            };
            out.insert(module, std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// The modules of the same crate that `text` names through `crate::`.
fn imports(text: &str, known: &BTreeSet<&str>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        // The longest prefix that is a module of the crate.
        for n in (1..=parts.len()).rev() {
            let candidate = parts[..n].join("::");
            if known.contains(candidate.as_str()) {
                found.insert(candidate);
                break;
            }
        }
    }
    found
}

/// A cycle in the graph of `crate::` imports, if there is one.
fn cycle(files: &BTreeMap<String, String>) -> Option<Vec<String>> {
    let known: BTreeSet<&str> = files.keys().map(String::as_str).collect();
    let edges: BTreeMap<&str, BTreeSet<String>> = files
        .iter()
        .map(|(module, text)| {
            let mut to = imports(text, &known);
            to.remove(module);
            (module.as_str(), to)
        })
        .collect();
    fn visit<'a>(
        node: &'a str,
        edges: &'a BTreeMap<&'a str, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = path[at..].iter().map(|s| s.to_string()).collect();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for next in &edges[node] {
            if let Some(cycle) = visit(next.as_str(), edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, &edges, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let files: BTreeMap<String, String> = [
        ("a", "use crate::b::thing;"),
        ("b", "fn f() { crate::c::g() }"),
        ("c", "use crate::a;"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(cycle(&files).unwrap(), ["a", "b", "c", "a"]);
    let mut acyclic = files.clone();
    acyclic.insert("c".into(), "use crate::d;".into());
    assert_eq!(cycle(&acyclic), None);
}

#[test]
fn no_module_of_the_lab_or_the_tool_imports_one_that_imports_it_back() {
    let root = root();
    let mut lab = BTreeMap::new();
    modules(&root.join("lab/src"), "", &mut lab);
    let mut tool_lib = BTreeMap::new();
    modules(&root.join("workshop/src"), "", &mut tool_lib);
    // The binary (main.rs, cli.rs, commands/) is a crate of its own.
    let bin_modules = ["main", "cli"];
    let tool_bin: BTreeMap<String, String> = tool_lib
        .iter()
        .filter(|(m, _)| bin_modules.contains(&m.as_str()) || m.starts_with("commands"))
        .map(|(m, t)| (m.clone(), t.clone()))
        .collect();
    tool_lib.retain(|m, _| !tool_bin.contains_key(m));
    assert!(lab.contains_key("stack") && tool_lib.contains_key("steps"));
    assert!(tool_bin.contains_key("commands::lab"));
    for (name, files) in [
        ("lab", &lab),
        ("workshop", &tool_lib),
        ("cargo workshop", &tool_bin),
    ] {
        if let Some(cycle) = cycle(files) {
            panic!(
                "{name}: {} import each other in a circle",
                cycle.join(" -> ")
            );
        }
    }
}

#[test]
fn the_lab_knows_nothing_of_the_tool() {
    let root = root();
    let manifest = std::fs::read_to_string(root.join("lab/Cargo.toml")).unwrap();
    assert!(
        !manifest
            .lines()
            .any(|l| l.trim_start().starts_with("workshop")),
        "lab/Cargo.toml depends on the tool"
    );
    let mut lab = BTreeMap::new();
    modules(&root.join("lab/src"), "", &mut lab);
    for (module, text) in &lab {
        assert!(
            !text.contains("workshop::"),
            "lab/src/{module}.rs uses the workshop crate"
        );
    }
}

#[test]
fn the_suites_build_on_the_lab_without_its_load_generator() {
    let root = root();
    for entry in std::fs::read_dir(root.join("solutions")).unwrap() {
        let dir = entry.unwrap().path();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let dev = manifest
            .split("[dev-dependencies]")
            .nth(1)
            .unwrap_or_else(|| panic!("{}: no dev-dependencies", dir.display()));
        assert!(
            dev.contains("lab.workspace = true") && !dev.contains("workshop"),
            "{}: the suite should use the lab, not the tool",
            dir.display()
        );
        assert!(!manifest.contains("\"load\""), "{}", dir.display());
    }
}
