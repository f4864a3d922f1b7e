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

/// The children of a process, from /proc (Linux).
fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so read after ')'.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = after.split_whitespace().nth(1).unwrap().parse().unwrap();
        if ppid == pid {
            found.push(child);
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
        .unwrap_or(false)
}

#[test]
#[cfg(target_os = "linux")]
fn serve_stops_every_environment_on_ctrl_c() {
    use std::io::{BufRead, BufReader, Read};
    let mut serve = Command::new(env!("CARGO_BIN_EXE_workshop"))
        .args([
            "serve",
            "2",
            "--port",
            "0",
            "--env",
            "FIXTURE=slow",
            "--env",
            "FIXTURE_MS=200",
            "--bootstrap",
        ])
        .arg(env!("CARGO_BIN_EXE_serve-fixture"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(serve.stderr.take().unwrap());
    let url = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "serve ended before listening"
        );
        if let Some(at) = line.find("http://") {
            break line[at..].trim().to_string();
        }
    };
    let addr = url.trim_start_matches("http://").to_string();
    // Three requests at once: three environments.
    let requests: Vec<_> = (0..3)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut stream = std::net::TcpStream::connect(&addr).unwrap();
                stream
                    .write_all(b"GET /health HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n")
                    .unwrap();
                let mut answer = String::new();
                stream.read_to_string(&mut answer).unwrap();
                answer
            })
        })
        .collect();
    for request in requests {
        assert!(request.join().unwrap().starts_with("HTTP/1.1 200"));
    }
    let environments = children(serve.id());
    assert_eq!(environments.len(), 3, "three bootstrap processes");

    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(serve.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let status = serve.wait().unwrap();
    assert!(status.success(), "serve exits cleanly on Ctrl-C:\n{rest}");
    assert!(
        rest.contains(
            "Stopped. 3 requests (0 throttled by the gateway), 3 invocations, 3 cold starts"
        ),
        "{rest}"
    );
    for pid in environments {
        assert!(!alive(pid), "environment process {pid} is left behind");
    }
}
