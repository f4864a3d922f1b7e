//! Every misuse of `cargo workshop` gets a clear message and a non-zero
//! exit, before anything is built.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn workshop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_workshop"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn fails_with(args: &[&str], message: &str) {
    let output = workshop(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{args:?} should fail");
    assert!(
        stderr.contains(message),
        "{args:?}: expected {message:?} in:\n{stderr}"
    );
}

#[test]
fn unknown_modules_are_named() {
    fails_with(&["invoke", "9"], "there is no module 9: the modules are 1");
    fails_with(&["solve", "9"], "there is no module 9");
    fails_with(&["reset", "0"], "there is no module 0");
}

#[test]
fn a_missing_event_file_is_named() {
    fails_with(
        &["invoke", "1", "--event", "no/such/event.json"],
        "cannot read the event file no/such/event.json",
    );
}

#[test]
fn invalid_json_is_refused_before_the_function_sees_it() {
    let mut file = tempfile();
    file.1.write_all(b"{\"event_id\": ").unwrap();
    fails_with(&["invoke", "1", "--event", &file.0], "is not valid JSON");

    let mut child = Command::new(env!("CARGO_BIN_EXE_workshop"))
        .args(["invoke", "1", "--event", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"not json").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("the event in standard input is not valid JSON")
    );
}

#[test]
fn limits_are_lambdas() {
    fails_with(
        &["invoke", "1", "--memory", "64"],
        "outside Lambda's range of 128 to 10240 MB",
    );
    fails_with(
        &["invoke", "1", "--memory", "20000"],
        "outside Lambda's range",
    );
    fails_with(&["invoke", "1", "--timeout", "0"], "--timeout must be");
    fails_with(&["invoke", "1", "--timeout", "901"], "at most 900 seconds");
    fails_with(
        &["invoke", "1", "--repeat", "0"],
        "--repeat must be at least 1",
    );
    fails_with(&["invoke", "1", "--env", "NOVALUE"], "expected KEY=VALUE");
}

#[test]
fn unknown_commands_get_help() {
    let output = workshop(&["deploy"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unrecognized subcommand 'deploy'"),
        "{stderr}"
    );
}

/// A fresh file in cargo's folder for test files.
fn tempfile() -> (String, std::fs::File) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("event-{}.json", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    (path.display().to_string(), file)
}
