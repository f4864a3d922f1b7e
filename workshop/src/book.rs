//! The book's preprocessor (`[preprocessor.workshop]` in book/book.toml).
//!
//! - Code included from the solutions carries exercise markers (`//- ...`)
//!   and starter lines (`//> ...`) that only the generator reads; they are
//!   removed, so the book shows the reference code as it compiles.
//! - `{{#workshop-steps N}}` becomes the table of module N's steps, from
//!   steps.toml, so the book never lists the steps by hand.

use serde_json::Value;

use crate::generate::is_marker_line;
use crate::steps::{StepKind, Workshop};

/// Cleans one chapter's Markdown.
pub fn process_chapter(content: &str, workshop: &Workshop) -> Result<String, String> {
    let mut out = String::with_capacity(content.len());
    for line in content.lines() {
        if is_marker_line(line) {
            continue;
        }
        if let Some(rest) = line.trim().strip_prefix("{{#workshop-steps ")
            && let Some(n) = rest.strip_suffix("}}")
        {
            let n: u32 = n
                .trim()
                .parse()
                .map_err(|_| format!("bad module number in `{line}`"))?;
            out.push_str(&steps_table(workshop, n)?);
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

/// The steps of a module as a Markdown table, with links and times.
pub fn steps_table(workshop: &Workshop, n: u32) -> Result<String, String> {
    let module = workshop.module(n)?;
    let mut table = String::from("| step | what you do | kind | minutes |\n|---|---|---|---|\n");
    let base = module.book.rsplit_once('/').map_or("", |(dir, _)| dir);
    for step in &module.steps {
        let page = step
            .page
            .strip_prefix(base)
            .map(|p| p.trim_start_matches('/'))
            .unwrap_or(&step.page);
        let kind = match step.kind {
            StepKind::Code => "write code",
            StepKind::Observe => "run and read",
        };
        table.push_str(&format!(
            "| {} | [{}]({page}) | {kind} | {} |\n",
            step.id, step.title, step.minutes
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
            if let Some(Value::Object(chapter)) = map.get_mut("Chapter")
                && let Some(Value::String(content)) = chapter.get_mut("content")
            {
                *content = process_chapter(content, workshop)?;
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
    serde_json::to_string(&book).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_leave_the_book() {
        let page = "```rust\nfn f() {\n    //- exercise 1.1\n    42\n    //- starter\n    //> todo!(\"step 1.1\")\n    //- end\n}\n```\n";
        let clean = process_chapter(page, &Workshop::load()).unwrap();
        assert_eq!(clean, "```rust\nfn f() {\n    42\n}\n```\n");
    }

    #[test]
    fn step_tables_come_from_steps_toml() {
        let table = steps_table(&Workshop::load(), 1).unwrap();
        assert!(table.contains(
            "| 1.1 | [Parse the event into a typed request](step-1-1.md) | write code |"
        ));
        assert!(table.contains("| 1.8 |"));
    }

    #[test]
    fn the_book_json_is_walked() {
        let input = r#"[{"root":"."},{"items":[{"Chapter":{"name":"x","content":"a\n//- end\nb","sub_items":[{"Chapter":{"name":"y","content":"{{#workshop-steps 1}}","sub_items":[]}}]}}]}]"#;
        let out: Value =
            serde_json::from_str(&preprocess(input, &Workshop::load()).unwrap()).unwrap();
        assert_eq!(out["items"][0]["Chapter"]["content"], "a\nb\n");
        let sub = out["items"][0]["Chapter"]["sub_items"][0]["Chapter"]["content"]
            .as_str()
            .unwrap();
        assert!(sub.starts_with("| step |"));
    }
}
