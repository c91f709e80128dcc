//! The real tools the tests run (Prometheus, the Pushgateway, the OTLP receiver's
//! Python), found with the CI rule: missing under `CI=true` fails, elsewhere the test
//! says it is skipped and why.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{Reaper, free_port, get_http10, poll};

/// Whether this is a CI run, where a missing tool or privilege fails the test instead
/// of skipping it: `CI` set to anything but empty, `false` or `0` (as CI services set
/// it to `true`; `CI=false` is how one says it is not).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| means_ci(&v))
}

fn means_ci(value: &str) -> bool {
    !matches!(value.to_ascii_lowercase().as_str(), "" | "false" | "0")
}

#[cfg(test)]
#[test]
fn ci_is_any_value_but_empty_false_or_0() {
    for yes in ["true", "1", "yes", "TRUE"] {
        assert!(means_ci(yes), "{yes}");
    }
    for no in ["", "false", "False", "0"] {
        assert!(!means_ci(no), "{no}");
    }
}

/// A tool the test needs. Missing: under `CI` a failure, elsewhere `None` after
/// printing that `test` is skipped.
pub fn tool(test: &str, program: &str, check: &[&str]) -> Option<PathBuf> {
    let ok = Command::new(program)
        .args(check)
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(PathBuf::from(program));
    }
    let why = format!(
        "`{program} {}` does not run here (missing, or not allowed to this user)",
        check.join(" ")
    );
    assert!(
        !in_ci(),
        "{test}: {why}, and CI must run it (scripts/test installs the tools and runs as root)"
    );
    skipped(test, &format!("{why}; scripts/test installs the tools"));
    None
}

/// Says that `test` is skipped and why, where the test harness shows it: what
/// `eprintln!` writes is captured, and a passing test's captured output never shown.
pub fn skipped(test: &str, why: &str) {
    use std::io::Write;
    // One write: stderr is unbuffered, and parallel tests write to it too.
    let _ = std::io::stderr().write_all(format!("SKIPPED {test}: {why}\n").as_bytes());
}

/// The Python that has the OTLP receiver's packages: `COLDSTART_TEST_PYTHON`
/// (scripts/test sets it to its venv), else `python3`.
pub fn otlp_python(test: &str) -> Option<PathBuf> {
    let python = std::env::var("COLDSTART_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    tool(
        test,
        &python,
        &[
            "-c",
            "import opentelemetry.proto.collector.trace.v1.trace_service_pb2, grpc",
        ],
    )
}

/// A real Pushgateway on a free port, answering (pushes made before it listens would
/// be lost); `None` (after saying the test is skipped) where it is missing outside CI.
/// Stopped when the `Reaper` is dropped.
pub fn start_pushgateway(test: &str) -> Option<(Reaper, u16)> {
    let gateway = tool(test, "prometheus-pushgateway", &["--version"])?;
    let port = free_port();
    let child = Command::new(gateway)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reaper = Reaper(child);
    // Ready when its own readiness endpoint says so, and while it still runs: another
    // program on the port (the port is free when chosen, not when bound) answers too.
    let ready = poll(Duration::from_secs(10), || {
        if let Ok(Some(status)) = reaper.0.try_wait() {
            panic!("the Pushgateway on port {port} exited at start ({status})");
        }
        get_http10(port, "/-/ready").filter(|answer| {
            answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200")
        })
    });
    assert!(
        ready.is_some(),
        "the Pushgateway on port {port} never said it was ready"
    );
    Some((reaper, port))
}

/// A real Prometheus (`program`) on a free port with `config`, its data under `dir`;
/// stopped when the `Reaper` is dropped, which must come before `dir` goes (declare
/// the directory first: it is then dropped last).
pub fn start_prometheus(program: &Path, config: &Path, dir: &Path) -> (Reaper, u16) {
    let port = free_port();
    let child = Command::new(program)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (Reaper(child), port)
}

/// An instant query to the Prometheus on `port`: its JSON answer, `None` while it does
/// not answer.
pub fn prometheus_query(port: u16, query: &str) -> Option<serde_json::Value> {
    let mut encoded = String::new();
    for b in query.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                encoded.push(char::from(b));
            }
            _ => encoded.push_str(&format!("%{b:02X}")),
        }
    }
    let response = get_http10(port, &format!("/api/v1/query?query={encoded}"))?;
    serde_json::from_str(response.split_once("\r\n\r\n")?.1).ok()
}
