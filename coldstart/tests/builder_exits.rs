//! A number out of range given to `coldstart::Builder` ends the program with one line
//! and exit code 78 before its body, as the same value in a variable does. The case
//! runs in a child process: this test binary again, told so by a variable.

use std::process::Command;

const CASE: &str = "COLDSTART_TEST_BUILDER_CASE";

#[test]
fn a_number_out_of_range_in_code_is_one_line_and_exit_78() {
    if std::env::var_os(CASE).is_some() {
        coldstart::Builder::new()
            .worker_threads(0)
            .block_on(async { println!("the body ran") });
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_number_out_of_range_in_code_is_one_line_and_exit_78",
            "--nocapture",
        ])
        .env(CASE, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stdout}\n{stderr}");
    assert!(!stdout.contains("the body ran"), "{stdout}");
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("coldstart: "))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(
        said[0]
            == "coldstart: set COLDSTART_WORKER_THREADS to a whole number from 1 to 1024, got `0` (set in code)",
        "{stderr}"
    );
}

/// A second start in one process is one line and exit code 70, with telemetry (in a
/// workspace build the facade has it) not installed again: a bad telemetry value is
/// said once, by the first start.
#[test]
fn a_second_start_is_one_line_and_exit_70_with_telemetry_installed_once() {
    let test = "a_second_start_is_one_line_and_exit_70_with_telemetry_installed_once";
    if std::env::var_os(CASE).is_some() {
        coldstart::Builder::new().block_on(async { println!("first") });
        coldstart::Builder::new().block_on(async { println!("second") });
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture"])
        .env(CASE, "1")
        .env("OTEL_TRACES_SAMPLER", "sometimes")
        .env("COLDSTART_METRICS_ADDR", "off")
        .env("OTEL_TRACES_EXPORTER", "none")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(70), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("first") && !stdout.contains("second"),
        "{stdout}"
    );
    let sampler = stderr.matches("OTEL_TRACES_SAMPLER").count();
    assert!(sampler <= 1, "said at each start: {stderr}");
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
