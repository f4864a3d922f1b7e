//! What the book and the README tell a learner to type does what they say:
//! the help it prints is the help the tool prints, a module's pages run
//! that module's lab, and the URLs point where `serve` listens (or where
//! the page told it to).

use std::path::{Path, PathBuf};
use std::process::Command;

use workshop::steps::Workshop;

fn root() -> PathBuf {
    workshop::workspace::root()
}

/// Every page of the book, with its path relative to `book/src`, and the
/// README.
fn pages() -> Vec<(String, String)> {
    let src = root().join("book/src");
    let mut found = vec![];
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                let name = path.strip_prefix(&src).unwrap().display().to_string();
                found.push((name, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    found.push((
        "README.md".into(),
        std::fs::read_to_string(root().join("README.md")).unwrap(),
    ));
    assert!(found.len() > 30, "the book has its pages");
    found
}

/// The module a page belongs to: `module-N/...` and `instructor/module-N.md`.
fn module_of(page: &str) -> Option<u32> {
    let name = Path::new(page);
    let part = if page.starts_with("instructor/") {
        name.file_stem()?.to_str()?
    } else {
        name.iter().next()?.to_str()?
    };
    part.strip_prefix("module-")?.parse().ok()
}

/// Every `cargo workshop lab ...` a page gives, as its arguments: in a
/// code block to the end of the line, in prose (headings aside) to the
/// closing backtick.
fn lab_commands(text: &str) -> Vec<Vec<String>> {
    let mut commands = vec![];
    let mut in_code = false;
    let mut prose = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            if let Some(rest) = line.trim().strip_prefix("cargo workshop lab") {
                commands.push(rest.split_whitespace().map(String::from).collect());
            }
        } else if !line.starts_with('#') {
            // Headings name the command; they do not run it.
            prose.push_str(line);
            prose.push(' ');
        }
    }
    for (at, _) in prose.match_indices("`cargo workshop lab") {
        let rest = &prose[at + "`cargo workshop lab".len()..];
        let end = rest.find('`').unwrap_or(rest.len());
        commands.push(rest[..end].split_whitespace().map(String::from).collect());
    }
    commands
}

fn value_of<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1).map(String::as_str)
}

#[test]
fn every_lab_command_on_a_modules_page_runs_that_module() {
    let workshop = Workshop::load();
    let scenarios = lab::scenario::scenarios();
    let mut checked = 0;
    for (page, text) in pages() {
        let Some(module) = module_of(&page) else {
            continue;
        };
        for args in lab_commands(&text) {
            if args.iter().any(|a| a == "-h" || a == "--help") {
                continue;
            }
            let name = value_of(&args, "--scenario").unwrap_or("flash-sale");
            assert!(
                scenarios.iter().any(|s| s.name == name),
                "{page}: there is no scenario {name}"
            );
            let runs = match value_of(&args, "--module") {
                Some(m) => m.parse().unwrap(),
                None => {
                    workshop
                        .module_for_scenario(name)
                        .unwrap_or_else(|| panic!("{page}: no module runs {name}"))
                        .number
                }
            };
            assert_eq!(
                runs,
                module,
                "{page}: `cargo workshop lab {}` runs module {runs}, not the page's module {module}",
                args.join(" ")
            );
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} lab commands found");
}

#[test]
fn the_help_the_book_prints_is_the_help_the_tool_prints() {
    let mut checked = 0;
    for (page, text) in pages() {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(args) = line.strip_prefix("cargo workshop ") else {
                continue;
            };
            let args: Vec<&str> = args.split_whitespace().collect();
            if !matches!(args.last(), Some(&"-h" | &"--help")) {
                continue;
            }
            // ```sh, the command, ```, a blank line, ```text, the help, ```.
            assert_eq!(lines.get(i + 3), Some(&"```text"), "{page}: {line}");
            let end = lines[i + 4..].iter().position(|l| *l == "```").unwrap();
            let shown = lines[i + 4..i + 4 + end].join("\n");
            let output = Command::new(env!("CARGO_BIN_EXE_workshop"))
                .args(&args)
                .output()
                .unwrap();
            let printed = String::from_utf8(output.stdout).unwrap();
            assert_eq!(
                shown.trim_end(),
                printed.trim_end(),
                "{page}: what `{line}` prints has changed"
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} help texts found");
}

#[test]
fn urls_point_where_serve_listens_and_the_book_has_its_own_port() {
    let help = Command::new(env!("CARGO_BIN_EXE_workshop"))
        .args(["serve", "-h"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let port_line = help.lines().find(|l| l.contains("--port")).unwrap();
    let serve_port = port_line
        .split("[default: ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap();
    assert_ne!(serve_port, "3000", "3000 is mdbook serve's port");
    for (page, text) in pages() {
        for (n, line) in text.lines().enumerate() {
            for host in ["http://127.0.0.1:", "http://localhost:"] {
                for (at, _) in line.match_indices(host) {
                    let port: String = line[at + host.len()..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    let book = port == "3000" && text.contains("mdbook serve book");
                    let chosen = text.contains(&format!("port {port}"));
                    assert!(
                        port == serve_port || book || chosen,
                        "{page}:{}: {line}: serve listens on {serve_port}",
                        n + 1
                    );
                }
            }
        }
    }
}
