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

/// A `path:LINE:COL` that a page quotes from a transcript.
#[derive(Debug)]
struct Position {
    /// The page and the line of it the quote is on.
    page: String,
    at: usize,
    /// As the page writes it, e.g. `modules/module-1/../../tests/module-1/main.rs:487:18`.
    quote: String,
    /// Relative to the repository, `..` resolved.
    path: String,
    line: usize,
    column: usize,
    /// What the quote is: a panic, a compiler diagnostic, or not known.
    kind: PositionKind,
}

#[derive(Debug)]
enum PositionKind {
    /// `panicked at PATH:L:C:`, and the panic's message on the next line.
    Panic {
        message: Option<String>,
    },
    /// `--> PATH:L:C`, and the source line rustc shows under it as `L | code`.
    Diagnostic {
        shown: Option<String>,
    },
    Unknown,
}

/// `tests/...`, `modules/...` or `solutions/...`, then `:LINE:COL`.
fn parse_position(token: &str) -> Option<(String, usize, usize)> {
    let token = token.trim_end_matches([':', ',', '.', ';', ')']);
    if !["modules/", "solutions/", "tests/"]
        .iter()
        .any(|p| token.starts_with(p))
    {
        return None;
    }
    let mut parts = token.rsplitn(3, ':');
    let column = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    let path = parts.next()?;
    let mut resolved: Vec<&str> = vec![];
    for part in path.split('/') {
        match part {
            ".." => {
                resolved.pop()?;
            }
            "." => {}
            part => resolved.push(part),
        }
    }
    Some((resolved.join("/"), line, column))
}

/// Every position quoted in the book: in a transcript's words, anything
/// that reads `modules/...:L:C`, `tests/...:L:C` or `solutions/...:L:C`.
fn quoted_positions() -> Vec<Position> {
    let mut found = vec![];
    for (page, text) in pages() {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            for token in line.split(|c: char| c.is_whitespace() || matches!(c, '`' | '(' | '\'')) {
                let Some((path, l, c)) = parse_position(token) else {
                    continue;
                };
                let before = &line[..token.as_ptr() as usize - line.as_ptr() as usize];
                let kind = if before.ends_with("panicked at ") {
                    // The message is on the next line, behind what the
                    // quote's own line has in front of `thread`
                    // (indentation, a log prefix).
                    let prefix = &before[..before.find("thread '").unwrap_or(0)];
                    let message = lines
                        .get(i + 1)
                        .and_then(|next| next.strip_prefix(prefix))
                        .map(String::from);
                    PositionKind::Panic { message }
                } else if before.trim_end().ends_with("-->") {
                    // rustc: `  --> path:L:C`, `   |`, `L |     code`.
                    let gutter = format!("{l} |");
                    let shown = lines[i + 1..]
                        .iter()
                        .take(4)
                        .find_map(|next| next.strip_prefix(&gutter))
                        .map(|code| code.strip_prefix(' ').unwrap_or(code).to_string());
                    PositionKind::Diagnostic { shown }
                } else {
                    PositionKind::Unknown
                };
                found.push(Position {
                    page: page.clone(),
                    at: i + 1,
                    quote: token.trim_end_matches(':').to_string(),
                    path,
                    line: l,
                    column: c,
                    kind,
                });
            }
        }
    }
    found
}

/// The string literals in `code`, unescaped (`\n`, `\"`, `\\`).
fn string_literals(code: &str) -> Vec<String> {
    let mut literals = vec![];
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut literal = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => literal.push('\n'),
                    // A backslash at the end of a line continues the
                    // string after the next line's indentation.
                    Some('\n') => while chars.next_if(|c| c.is_whitespace()).is_some() {},
                    Some(other) => literal.push(other),
                    None => {}
                },
                c => literal.push(c),
            }
        }
        literals.push(literal);
    }
    literals
}

/// What a format string prints before its first argument (`{{` is `{`).
fn fixed_prefix(format: &str) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => break,
            c => out.push(c),
        }
    }
    out
}

/// The name at `column` (1-based) of `line`, its path (`insta::`) skipped:
/// `(name, is a method call, is a macro)`.
fn call_at(line: &str, column: usize) -> Option<(String, bool, bool)> {
    let start = line.char_indices().nth(column.checked_sub(1)?)?.0;
    if line[..start].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
        return None; // the middle of a name
    }
    let method = line[..start].ends_with('.');
    let mut rest = &line[start..];
    loop {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let (name, after) = rest.split_at(end);
        match after.strip_prefix("::") {
            Some(next) if !name.is_empty() => rest = next,
            _ if name.is_empty() => return None,
            _ => return Some((name.to_string(), method, after.starts_with('!'))),
        }
    }
}

/// Where a test can panic: what the panic's location points at.
const PANIC_METHODS: &[&str] = &["expect", "unwrap", "expect_err", "unwrap_err"];
const PANIC_MACROS: &[&str] = &[
    "panic",
    "assert",
    "assert_eq",
    "assert_ne",
    "unreachable",
    "todo",
    "unimplemented",
    "assert_snapshot",
    "assert_debug_snapshot",
    "assert_json_snapshot",
    "assert_yaml_snapshot",
];

/// Why the quote does not point where it should, if it does not.
fn check_position(position: &Position) -> Result<(), String> {
    let root = root();
    let file = root.join(&position.path);
    let text =
        std::fs::read_to_string(&file).map_err(|_| format!("{} does not exist", position.path))?;
    let lines: Vec<&str> = text.lines().collect();
    let (l, c) = (position.line, position.column);
    let Some(&source) = lines.get(l.wrapping_sub(1)) else {
        return Err(format!(
            "{} has {} lines, not {l}",
            position.path,
            lines.len()
        ));
    };
    let found = format!("line {l} is `{}`", source.trim());
    let learner = position.path.starts_with("modules/");
    match &position.kind {
        PositionKind::Unknown => Err("neither a panic (`panicked at`) nor a compiler \
             diagnostic (`-->`): this test does not know what the position should point at"
            .to_string()),
        PositionKind::Panic { message } => {
            let Some((name, method, is_macro)) = call_at(source, c) else {
                return Err(format!("{found}: nothing that panics starts at column {c}"));
            };
            // A learner crate as shipped panics in its gaps only, at a
            // generated `todo!(` (generate.rs).
            let site = if learner {
                name == "todo" && is_macro
            } else {
                (method && PANIC_METHODS.contains(&name.as_str()))
                    || (is_macro && PANIC_MACROS.contains(&name.as_str()))
            };
            if !site {
                let expected = if learner {
                    "a gap's `todo!(`"
                } else {
                    "an assertion, `panic!`, `expect` or `unwrap`"
                };
                return Err(format!(
                    "{found}: at column {c}, `{name}` is not {expected}"
                ));
            }
            let Some(message) = message else {
                return Err(format!(
                    "{found}: the panic's message is not on the next line"
                ));
            };
            // The message the transcript shows must be this site's: the
            // fixed start of one of its string literals (for `todo!`,
            // behind "not yet implemented: ").
            if matches!(name.as_str(), "unwrap" | "unwrap_err") {
                return if message.starts_with("called `") {
                    Ok(())
                } else {
                    Err(format!("{found}: `{name}` does not print `{message}`"))
                };
            }
            // The site's statement: from the column on, to its `;` (or
            // the end of its match arm), a dozen lines at most.
            let from = source.char_indices().nth(c - 1).map_or(0, |(b, _)| b);
            let mut statement = source[from..].to_string();
            for next in lines[l..].iter().take(12) {
                let last = statement.lines().last().unwrap_or_default().trim();
                if last.ends_with(';') || last == ")," || last == "}," {
                    break;
                }
                statement.push('\n');
                statement.push_str(next);
            }
            let shown = message
                .strip_prefix("not yet implemented: ")
                .filter(|_| name == "todo")
                .or_else(|| message.strip_prefix("assertion `left == right` failed: "))
                .or_else(|| message.strip_prefix("assertion `left != right` failed: "))
                .unwrap_or(message);
            let matches = string_literals(&statement).iter().any(|literal| {
                let fixed = fixed_prefix(literal);
                !fixed.is_empty() && shown.starts_with(&fixed)
            });
            if matches || (name == "assert" && message.starts_with("assertion failed: ")) {
                Ok(())
            } else {
                Err(format!(
                    "{found}: the transcript's message `{message}` is not the one this `{name}` prints"
                ))
            }
        }
        PositionKind::Diagnostic { shown } => {
            let Some(shown) = shown else {
                return Err(format!(
                    "the diagnostic does not show line {l} under the position"
                ));
            };
            // A compiler error in a learner crate is about the learner's
            // code: the crate with the step done (and one mistake in it).
            let source = if learner {
                let (dir, rel) = position.path["modules/".len()..].split_once("/").unwrap();
                let solution = format!("solutions/{dir}/{rel}");
                let text = std::fs::read_to_string(root.join(&solution))
                    .map_err(|_| format!("{solution} does not exist"))?;
                let (solved, _) = workshop::generate::derive_source(
                    &text,
                    &solution,
                    workshop::generate::Variant::Solved,
                )
                .unwrap();
                solved.lines().nth(l - 1).unwrap_or_default().to_string()
            } else {
                source.to_string()
            };
            if source != *shown {
                Err(format!(
                    "line {l} is `{}`{}, not `{}` as shown",
                    source.trim(),
                    if learner {
                        " (with its step solved)"
                    } else {
                        ""
                    },
                    shown.trim()
                ))
            } else if c == 0 || c > source.chars().count() {
                Err(format!("line {l} has no column {c}"))
            } else {
                Ok(())
            }
        }
    }
}

/// A transcript that quotes `file:LINE:COL` goes stale silently when a
/// comment above that line is edited. Every such quote must still be true:
/// - a panic in a learner crate (`modules/`) is at a gap's `todo!(`, and
///   the message under it is that `todo!`'s;
/// - a panic in a suite or a solution is at an assertion, a `panic!`, an
///   `expect` or an `unwrap` (the column at its name, as Rust reports it),
///   and the message under it starts as one of that call's strings does;
/// - a compiler diagnostic (`--> file:L:C`) shows line L as it is; in a
///   learner crate, as it is with the step solved (the learner's code).
#[test]
fn the_positions_transcripts_quote_are_where_the_code_is() {
    let positions = quoted_positions();
    let mut wrong = vec![];
    for position in &positions {
        if let Err(why) = check_position(position) {
            wrong.push(format!(
                "{}:{}: `{}`: {why}",
                position.page, position.at, position.quote
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "positions quoted in the book that are not where the code is (rerun \
         the command the transcript shows and copy what it prints):\n{}",
        wrong.join("\n")
    );
    assert!(
        positions.len() >= 20,
        "only {} quoted positions found",
        positions.len()
    );
}

#[test]
fn rust_is_included_by_anchor_not_by_line_numbers() {
    for (page, text) in pages() {
        for (n, line) in text.lines().enumerate() {
            for (at, _) in line.match_indices("{{#include ") {
                let target = &line[at + "{{#include ".len()..];
                let target = &target[..target.find("}}").unwrap_or(target.len())];
                let Some((path, range)) = target.split_once(".rs:") else {
                    continue;
                };
                assert!(
                    !range.starts_with(|c: char| c.is_ascii_digit() || c == ':'),
                    "{page}:{}: `{path}.rs:{range}` includes lines by number, which move \
                     when the file is edited: mark them with an ANCHOR and include that",
                    n + 1
                );
            }
        }
    }
}
