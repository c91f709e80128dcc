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
