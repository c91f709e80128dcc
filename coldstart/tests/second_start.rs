//! A second start in one process, with telemetry built in. The case runs in a child
//! process: this test binary again, told so by a variable.

use std::process::Command;

const CASE: &str = "COLDSTART_TEST_SECOND_START_CASE";

/// A second start in one process is one line and exit code 70, with telemetry not
/// installed again: a bad telemetry value is said once, by the first start (it was said
/// again, and with the `logs` feature a second `tracing` subscriber was refused, before
/// the line).
#[test]
fn a_second_start_is_one_line_and_exit_70_with_telemetry_installed_once() {
    let test = "a_second_start_is_one_line_and_exit_70_with_telemetry_installed_once";
    if std::env::var_os(CASE).is_some() {
        coldstart::Builder::new().block_on(async { println!("first") });
        coldstart::Builder::new().block_on(async { println!("second") });
        return;
    }
    let out = coldstart_test_support::output_within(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture"])
            .env(CASE, "1")
            .env("OTEL_TRACES_SAMPLER", "sometimes")
            .env("COLDSTART_METRICS_ADDR", "off")
            .env("OTEL_TRACES_EXPORTER", "none"),
        std::time::Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(70), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("first") && !stdout.contains("second"),
        "{stdout}"
    );
    assert_eq!(
        stderr.matches("OTEL_TRACES_SAMPLER").count(),
        1,
        "said by the first start alone: {stderr}"
    );
    let others: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("coldstart: ") && !l.contains("OTEL_TRACES_SAMPLER"))
        .collect();
    assert_eq!(others.len(), 1, "{stderr}");
    assert!(
        others[0].starts_with("coldstart: the runtime was started once already in this process"),
        "{stderr}"
    );
}
