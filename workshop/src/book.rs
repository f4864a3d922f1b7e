//! The book's preprocessor (`[preprocessor.workshop]` in book/book.toml).
//!
//! - Code included from the solutions carries exercise markers (`//- ...`)
//!   and starter lines (`//> ...`) that only the generator reads; they are
//!   removed, so the book shows the reference code as it compiles.
//! - mdbook's anchor lines (`// ANCHOR: name`, `// ANCHOR_END: name`)
//!   are removed too: mdbook drops them only from the part an anchored
//!   include names, not from a whole-file include.
//! - `{{#workshop-steps N}}` becomes the table of module N's steps, from
//!   steps.toml, so the book never lists the steps by hand.

use serde_json::Value;

use crate::generate::is_marker_line;
use crate::steps::{StepKind, Workshop};

/// Cleans one chapter's Markdown; `chapter_path` is its file, relative to
/// the book's `src`, so that generated links work from any page.
pub fn process_chapter(
    content: &str,
    chapter_path: &str,
    workshop: &Workshop,
) -> Result<String, String> {
    let mut out = String::with_capacity(content.len());
    for line in content.lines() {
        if is_marker_line(line) || is_anchor_line(line) {
            continue;
        }
        if let Some(rest) = line.trim().strip_prefix("{{#workshop-steps ")
            && let Some(n) = rest.strip_suffix("}}")
        {
            let n: u32 = n
                .trim()
                .parse()
                .map_err(|_| format!("bad module number in `{line}`"))?;
            out.push_str(&steps_table(workshop, n, chapter_path)?);
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

/// An mdbook anchor line: `// ANCHOR: name` or `// ANCHOR_END: name`.
fn is_anchor_line(line: &str) -> bool {
    let Some(comment) = line.trim_start().strip_prefix("//") else {
        return false;
    };
    let comment = comment.trim_start();
    comment.starts_with("ANCHOR:") || comment.starts_with("ANCHOR_END:")
}

/// The steps of a module as a Markdown table, with links and times, for
/// the page at `from` (relative to the book's `src`).
pub fn steps_table(workshop: &Workshop, n: u32, from: &str) -> Result<String, String> {
    let module = workshop.module(n)?;
    let up = "../".repeat(from.matches('/').count());
    let mut table = String::from("| step | what you do | kind | minutes |\n|---|---|---|---|\n");
    for step in &module.steps {
        let kind = match step.kind {
            StepKind::Code => "write code",
            StepKind::Observe => "run and read",
        };
        table.push_str(&format!(
            "| {} | [{}]({up}{}) | {kind} | {} |\n",
            step.id, step.title, step.page, step.minutes
        ));
    }
    let total: u32 = module.steps.iter().map(|s| s.minutes).sum();
    table.push_str(&format!("| | **all steps** | | **{total}** |\n"));
    Ok(table)
}

/// Applies [`process_chapter`] to every chapter of the book JSON.
fn walk(value: &mut Value, workshop: &Workshop) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(chapter)) = map.get_mut("Chapter") {
                let path = chapter
                    .get("path")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if let Some(Value::String(content)) = chapter.get_mut("content") {
                    *content = process_chapter(content, &path, workshop)?;
                }
            }
            for v in map.values_mut() {
                walk(v, workshop)?;
            }
        }
        Value::Array(items) => {
            for v in items {
                walk(v, workshop)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// mdbook's protocol: `[context, book]` on stdin, the book on stdout.
pub fn preprocess(input: &str, workshop: &Workshop) -> Result<String, String> {
    let parsed: Value =
        serde_json::from_str(input).map_err(|e| format!("bad input from mdbook: {e}"))?;
    let Value::Array(mut pair) = parsed else {
        return Err("mdbook sent something other than [context, book]".into());
    };
    if pair.len() != 2 {
        return Err("mdbook sent something other than [context, book]".into());
    }
    let mut book = pair.pop().expect("two items");
    walk(&mut book, workshop)?;
    serde_json::to_string(&book).map_err(|e| format!("cannot hand the book back to mdbook: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_leave_the_book() {
        let page = "```rust\nfn f() {\n    //- exercise 1.1\n    42\n    //- starter\n    //> todo!(\"step 1.1\")\n    //- end\n}\n```\n";
        let clean = process_chapter(page, "module-1/step-1-1.md", &Workshop::load()).unwrap();
        assert_eq!(clean, "```rust\nfn f() {\n    42\n}\n```\n");
    }

    #[test]
    fn anchor_lines_leave_the_book() {
        let page =
            "```rust\n// ANCHOR: f\nfn f() {}\n    // ANCHOR_END: f\n// ANCHORS are fine\n```\n";
        let clean = process_chapter(page, "module-2/step-2-3.md", &Workshop::load()).unwrap();
        assert_eq!(clean, "```rust\nfn f() {}\n// ANCHORS are fine\n```\n");
    }

    /// What mdbook's `{{#include path}}`, `{{#include path:anchor}}` and
    /// `{{#include path:from:to}}` (lines, from 1, either end open) insert,
    /// or why they cannot.
    fn include(page: &std::path::Path, spec: &str) -> Result<String, String> {
        let (file, part) = match spec.split_once(':') {
            Some((file, part)) => (file, Some(part)),
            None => (spec, None),
        };
        let path = page.parent().unwrap().join(file);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let lines: Vec<&str> = text.lines().collect();
        let Some(part) = part else {
            return Ok(text);
        };
        let line = |n: &str, default: usize| -> Result<usize, String> {
            if n.is_empty() {
                Ok(default)
            } else {
                n.parse().map_err(|_| format!("bad line number {n:?}"))
            }
        };
        if part.starts_with(|c: char| c.is_ascii_digit() || c == ':') {
            let (from, to) = match part.split_once(':') {
                Some((from, to)) => (line(from, 1)?, line(to, lines.len())?),
                None => (line(part, 1)?, line(part, 1)?),
            };
            if from == 0 || from > to || to > lines.len() {
                return Err(format!("{file} has no lines {part}"));
            }
            return Ok(lines[from - 1..to].join("\n"));
        }
        let anchor = part;
        let start = lines
            .iter()
            .position(|l| l.trim() == format!("// ANCHOR: {anchor}"))
            .ok_or_else(|| format!("{file} has no anchor {anchor}"))?;
        let end = lines[start..]
            .iter()
            .position(|l| l.trim() == format!("// ANCHOR_END: {anchor}"))
            .ok_or_else(|| format!("{file}'s anchor {anchor} never ends"))?;
        Ok(lines[start + 1..start + end].join("\n"))
    }

    #[test]
    fn every_page_renders_without_markers_or_unresolved_includes() {
        let src = crate::workspace::root().join("book/src");
        let workshop = Workshop::load();
        let mut pages = vec![];
        let mut dirs = vec![src.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "md") {
                    pages.push(path);
                }
            }
        }
        assert!(pages.len() > 30, "the book has its pages");
        for page in pages {
            let name = page.strip_prefix(&src).unwrap().display().to_string();
            let text = std::fs::read_to_string(&page).unwrap();
            let mut expanded = String::new();
            for line in text.lines() {
                match line
                    .trim()
                    .strip_prefix("{{#include ")
                    .and_then(|rest| rest.strip_suffix("}}"))
                {
                    Some(spec) => expanded.push_str(
                        &include(&page, spec.trim())
                            .unwrap_or_else(|e| panic!("{name}: {line}: {e}")),
                    ),
                    None => expanded.push_str(line),
                }
                expanded.push('\n');
            }
            let rendered = process_chapter(&expanded, &name, &workshop).unwrap();
            for line in rendered.lines() {
                assert!(
                    !is_anchor_line(line) && !is_marker_line(line),
                    "{name} would show {line:?}"
                );
                assert!(
                    !line.contains("{{#"),
                    "{name} has a directive the book cannot expand: {line:?}"
                );
            }
        }
    }

    #[test]
    fn step_tables_come_from_steps_toml() {
        let table = steps_table(&Workshop::load(), 1, "module-1/index.md").unwrap();
        assert!(table.contains(
            "| 1.1 | [Parse the event into a typed request](../module-1/step-1-1.md) | write code |"
        ));
        assert!(table.contains("| 1.8 |"));
        let top = steps_table(&Workshop::load(), 1, "introduction.md").unwrap();
        assert!(top.contains("](module-1/step-1-1.md)"));
    }

    #[test]
    fn the_book_json_is_walked() {
        let input = r#"[{"root":"."},{"items":[{"Chapter":{"name":"x","content":"a\n//- end\nb","sub_items":[{"Chapter":{"name":"y","path":"m/y.md","content":"{{#workshop-steps 1}}","sub_items":[]}}]}}]}]"#;
        let out: Value =
            serde_json::from_str(&preprocess(input, &Workshop::load()).unwrap()).unwrap();
        assert_eq!(out["items"][0]["Chapter"]["content"], "a\nb\n");
        let sub = out["items"][0]["Chapter"]["sub_items"][0]["Chapter"]["content"]
            .as_str()
            .unwrap();
        assert!(sub.starts_with("| step |"));
    }

    #[test]
    fn every_step_has_its_page_in_the_book() {
        let src = crate::workspace::root().join("book/src");
        let summary = std::fs::read_to_string(src.join("SUMMARY.md")).unwrap();
        for module in &Workshop::load().modules {
            let pages = std::iter::once(&module.book).chain(module.steps.iter().map(|s| &s.page));
            for page in pages {
                assert!(src.join(page).is_file(), "book/src/{page} is missing");
                assert!(
                    summary.contains(&format!("]({page})")),
                    "book/src/SUMMARY.md does not link {page}"
                );
            }
        }
    }
}
