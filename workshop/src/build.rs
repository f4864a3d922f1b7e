//! Cargo builds started by the tool, with progress a person can see: what
//! is being built, how many crates are done, and how long it has taken.
//!
//! The first build of a module compiles a few hundred crates and takes
//! minutes; a silent terminal for that long looks the same as a hang. Cargo
//! is asked for its JSON messages (`--message-format
//! json-render-diagnostics`): one line per crate it finished, while the
//! compiler's warnings and errors still reach standard error as text.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a build left behind.
#[derive(Debug, Default)]
pub struct Built {
    pub success: bool,
    /// Executables cargo produced or found up to date: bins, and test
    /// binaries for `cargo test --no-run`.
    pub executables: Vec<(String, PathBuf)>,
    /// Everything cargo and the compiler wrote to standard error.
    pub stderr: String,
    /// Crates compiled (not found up to date) by this build.
    pub compiled: usize,
}

/// How the compiler's own messages are shown while the build runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diagnostics {
    /// Show warnings and errors as they come (a build the learner asked for).
    Show,
    /// Keep them for the caller, which decides what to show (`verify`).
    Keep,
}

/// Runs `command`, a `cargo build` or `cargo test --no-run` from
/// [`crate::workspace::cargo`], with a progress line under the name
/// `label`. Adds the message-format arguments itself.
pub fn run(mut command: Command, label: &str, diagnostics: Diagnostics) -> Result<Built, String> {
    command
        .args(["--quiet", "--message-format", "json-render-diagnostics"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let progress = Arc::new(Mutex::new(Progress::new(label)));
    let stderr = child.stderr.take().expect("stderr is piped");
    let stderr_progress = progress.clone();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if diagnostics == Diagnostics::Show {
                stderr_progress
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .above(&line);
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let ticker_progress = progress.clone();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ticker_done = done.clone();
    let ticker = std::thread::spawn(move || {
        while !ticker_done.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(250));
            ticker_progress
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .tick();
        }
    });
    let mut built = Built::default();
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let Some(message) = Message::parse(&line) else {
            continue;
        };
        if let Some(executable) = message.executable {
            built.executables.push((message.target, executable));
        }
        if message.compiled {
            let mut progress = progress.lock().unwrap_or_else(|e| e.into_inner());
            progress.crate_done(&message.crate_name);
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("cannot wait for cargo: {e}"))?;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = ticker.join();
    built.stderr = stderr_reader.join().unwrap_or_default();
    built.success = status.success();
    let progress = progress.lock().unwrap_or_else(|e| e.into_inner());
    built.compiled = progress.compiled;
    progress.finish(built.success);
    Ok(built)
}

/// The parts of one of cargo's JSON messages that progress needs.
#[derive(Debug, PartialEq)]
struct Message {
    crate_name: String,
    target: String,
    /// False when cargo found the crate up to date.
    compiled: bool,
    executable: Option<PathBuf>,
}

impl Message {
    fn parse(line: &str) -> Option<Message> {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        if value["reason"] != "compiler-artifact" {
            return None;
        }
        // "registry+https://...#ring@0.17.14", "path+file:///w/lab#workshop-lab@0.1.0",
        // or, when the name is the directory's, "path+file:///w/modules/module-1#0.1.0".
        let package = value["package_id"].as_str().unwrap_or_default();
        let (source, fragment) = package.rsplit_once('#').unwrap_or((package, ""));
        let crate_name = match fragment.split_once('@') {
            Some((name, _)) => name,
            None => source.rsplit('/').next().unwrap_or(source),
        }
        .to_string();
        Some(Message {
            crate_name,
            target: value["target"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            compiled: value["fresh"] == false,
            executable: value["executable"].as_str().map(PathBuf::from),
        })
    }
}

/// The progress line: rewritten in place on a terminal; on anything else
/// (a CI log, a file) a line every [`Progress::QUIET_EVERY`].
struct Progress {
    label: String,
    start: Instant,
    terminal: bool,
    compiled: usize,
    latest: String,
    last_line: Option<Instant>,
    shown: bool,
}

impl Progress {
    const QUIET_EVERY: Duration = Duration::from_secs(20);
    /// A build that finishes sooner says nothing: most builds are up to date.
    const SILENT_FOR: Duration = Duration::from_secs(2);

    fn new(label: &str) -> Self {
        Progress {
            label: label.to_string(),
            start: Instant::now(),
            terminal: std::io::stderr().is_terminal(),
            compiled: 0,
            latest: String::new(),
            last_line: None,
            shown: false,
        }
    }

    fn crate_done(&mut self, name: &str) {
        self.compiled += 1;
        self.latest = name.to_string();
    }

    fn text(&self) -> String {
        let latest = if self.latest.is_empty() {
            String::new()
        } else {
            format!(", last {}", self.latest)
        };
        format!(
            "  building {}: {} compiled{latest}, {}",
            self.label,
            crates(self.compiled),
            elapsed(self.start.elapsed())
        )
    }

    fn tick(&mut self) {
        let now = Instant::now();
        if now - self.start < Self::SILENT_FOR {
            return;
        }
        if self.terminal {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{}", self.text());
            let _ = err.flush();
            self.shown = true;
        } else if self
            .last_line
            .is_none_or(|last| now - last >= Self::QUIET_EVERY)
        {
            eprintln!("{}", self.text());
            self.last_line = Some(now);
            self.shown = true;
        }
    }

    /// Prints a line of the compiler's above the progress line.
    fn above(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        if self.terminal && self.shown {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(err, "{line}");
        if self.terminal && self.shown {
            let _ = write!(err, "{}", self.text());
        }
        let _ = err.flush();
    }

    fn finish(&self, success: bool) {
        if !self.shown {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K");
        }
        let verb = if success { "built" } else { "stopped building" };
        let _ = writeln!(
            err,
            "  {verb} {} in {} ({} compiled)",
            self.label,
            elapsed(self.start.elapsed()),
            crates(self.compiled)
        );
    }
}

fn crates(n: usize) -> String {
    if n == 1 {
        "1 crate".into()
    } else {
        format!("{n} crates")
    }
}

/// `42 s`, `3 min 05 s`.
pub fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{} min {:02} s", s / 60, s % 60)
    }
}

/// Builds a module's bootstrap in the release profile (what Lambda runs)
/// and returns its path.
pub fn bootstrap(package: &str) -> Result<PathBuf, String> {
    binary(package, package)
}

/// Builds binary `bin` of `package` in the release profile, once per
/// command: a later call returns the binary already built.
pub fn binary(package: &str, bin: &str) -> Result<PathBuf, String> {
    static BUILT: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let key = format!("{package}/{bin}");
    if let Some((_, path)) = built.iter().find(|(k, _)| *k == key) {
        return Ok(path.clone());
    }
    eprintln!("Building {bin} (release profile, as deployed)…");
    let mut command = crate::workspace::cargo();
    command.args(["build", "--release", "--package", package, "--bin", bin]);
    let build = run(command, bin, Diagnostics::Show)?;
    if !build.success {
        return Err(format!(
            "{package} does not build; fix the errors above (or run `cargo build -p {package}`)"
        ));
    }
    let path = build
        .executables
        .into_iter()
        .find(|(target, _)| target == bin)
        .map(|(_, path)| path)
        .unwrap_or_else(|| crate::workspace::target_dir().join("release").join(bin));
    if !path.exists() {
        return Err(format!(
            "cargo built {bin}, but {} is not there",
            path.display()
        ));
    }
    built.push((key, path.clone()));
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compiled_crate_is_counted_and_named() {
        let line = r#"{"reason":"compiler-artifact","package_id":"registry+https://github.com/rust-lang/crates.io-index#ring@0.17.14","target":{"name":"ring","kind":["lib"]},"fresh":false,"executable":null}"#;
        assert_eq!(
            Message::parse(line),
            Some(Message {
                crate_name: "ring".into(),
                target: "ring".into(),
                compiled: true,
                executable: None,
            })
        );
    }

    #[test]
    fn an_up_to_date_binary_gives_its_path_and_is_not_counted() {
        let line = r#"{"reason":"compiler-artifact","package_id":"path+file:///w/solutions/module-2#module-2-solution@0.1.0","target":{"name":"module-2-solution","kind":["bin"]},"fresh":true,"executable":"/w/target/release/module-2-solution"}"#;
        let message = Message::parse(line).unwrap();
        assert_eq!(message.crate_name, "module-2-solution");
        assert!(!message.compiled);
        assert_eq!(
            message.executable,
            Some(PathBuf::from("/w/target/release/module-2-solution"))
        );
    }

    #[test]
    fn a_package_named_after_its_directory_is_named_too() {
        let line = r#"{"reason":"compiler-artifact","package_id":"path+file:///w/modules/module-1#0.1.0","target":{"name":"module_1"},"fresh":false}"#;
        assert_eq!(Message::parse(line).unwrap().crate_name, "module-1");
    }

    #[test]
    fn other_messages_and_test_output_are_ignored() {
        for line in [
            r#"{"reason":"build-finished","success":true}"#,
            r#"{"level":"INFO","message":"init complete"}"#,
            "test step_1_1_parses ... ok",
            "",
        ] {
            assert_eq!(Message::parse(line), None, "{line}");
        }
    }

    #[test]
    fn elapsed_time_reads_as_a_person_says_it() {
        assert_eq!(elapsed(Duration::from_secs(7)), "7 s");
        assert_eq!(elapsed(Duration::from_secs(185)), "3 min 05 s");
    }
}
