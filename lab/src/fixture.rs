//! A function that misbehaves on purpose, for the tests of the lab and of
//! the tool on top of it (each package's `fixture-function` binary runs
//! [`main`]).
//!
//! It speaks the Lambda Runtime API with a hand-written HTTP/1.1 client (so
//! the lab is also checked against a client other than lambda_runtime), and
//! does what `FIXTURE` says:
//!
//! - `echo`: answers each event with the event itself;
//! - `error`: reports a function error for each event;
//! - `crash`: exits with status 3 while handling an event;
//! - `sleep`: never answers (the lab's timeout must stop it);
//! - `big`: answers with 7 MB, over Lambda's 6 MB limit;
//! - `init-error`: reports an init error, then exits;
//! - `init-crash`: exits before asking for an event;
//! - `env`: answers with the environment variables it was started with;
//! - `slow`: waits `FIXTURE_MS` milliseconds, then answers like `proxy`;
//! - `proxy`: answers an API Gateway event with a proxy response (200)
//!   naming the path and stage it received.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// Runs the fixture until the lab stops it.
pub fn main() {
    let mode = std::env::var("FIXTURE").unwrap_or_else(|_| "echo".into());
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").expect("AWS_LAMBDA_RUNTIME_API is set");
    println!("{{\"level\":\"INFO\",\"message\":\"fixture init\",\"mode\":\"{mode}\"}}");
    match mode.as_str() {
        "init-crash" => std::process::exit(2),
        "init-error" => {
            let body = r#"{"errorType":"FixtureInitError","errorMessage":"cannot start"}"#;
            request(
                &api,
                "POST",
                "/2018-06-01/runtime/init/error",
                body.as_bytes(),
            );
            std::process::exit(1);
        }
        _ => {}
    }
    loop {
        let (headers, event) = request(&api, "GET", "/2018-06-01/runtime/invocation/next", b"");
        let id = header(&headers, "lambda-runtime-aws-request-id").expect("a request id");
        let respond = format!("/2018-06-01/runtime/invocation/{id}/response");
        match mode.as_str() {
            "error" => {
                let body = r#"{"errorType":"FixtureError","errorMessage":"no"}"#;
                let path = format!("/2018-06-01/runtime/invocation/{id}/error");
                request(&api, "POST", &path, body.as_bytes());
            }
            "crash" => std::process::exit(3),
            "sleep" => std::thread::sleep(std::time::Duration::from_secs(3600)),
            "big" => {
                request(&api, "POST", &respond, &vec![b'x'; 7 * 1024 * 1024]);
            }
            "slow" | "proxy" => {
                if mode == "slow" {
                    let ms: u64 = std::env::var("FIXTURE_MS")
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(100);
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                }
                let event: serde_json::Value = serde_json::from_slice(&event).unwrap_or_default();
                let seen = serde_json::json!({
                    "path": event.get("rawPath").or_else(|| event.get("path")),
                    "stage": event.pointer("/requestContext/stage"),
                    "version": event.get("version"),
                });
                let answer = serde_json::json!({
                    "statusCode": 200,
                    "headers": {"content-type": "application/json"},
                    "body": seen.to_string(),
                });
                request(&api, "POST", &respond, answer.to_string().as_bytes());
            }
            "env" => {
                let vars: std::collections::BTreeMap<String, String> = std::env::vars().collect();
                let body = serde_json::to_vec(&vars).expect("serialisable");
                request(&api, "POST", &respond, &body);
            }
            _ => {
                let deadline = header(&headers, "lambda-runtime-deadline-ms").unwrap_or_default();
                let trace = header(&headers, "lambda-runtime-trace-id").unwrap_or_default();
                let arn =
                    header(&headers, "lambda-runtime-invoked-function-arn").unwrap_or_default();
                let answer = serde_json::json!({
                    "event": serde_json::from_slice::<serde_json::Value>(&event).ok(),
                    "deadline_ms": deadline,
                    "trace_id": trace,
                    "function_arn": arn,
                });
                request(&api, "POST", &respond, answer.to_string().as_bytes());
            }
        }
    }
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// One HTTP/1.1 request on a fresh connection; returns headers and body.
fn request(api: &str, method: &str, path: &str, body: &[u8]) -> (Vec<(String, String)>, Vec<u8>) {
    let mut stream = TcpStream::connect(api).expect("the Runtime API is up");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {api}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write");
    stream.write_all(body).expect("write");
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).expect("status line");
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let length: usize = header(&headers, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("body");
    (headers, body)
}
