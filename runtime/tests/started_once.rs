//! The runtime starts once per process: a second `block_on` ends the program with one
//! line and exit code 70 instead of running on the first run's plan, signal listener
//! and telemetry. In a child process, since the start is process-wide.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use coldstart_bootstrap::Settings;
use coldstart_runtime::block_on;

mod support;

const CASE: &str = "STARTED_ONCE_CASE";

/// The case, in the child; nothing in the parent.
#[test]
fn case() {
    if std::env::var(CASE).is_err() {
        return;
    }
    println!("case: first {}", block_on(&Settings::NONE, async { 1 }));
    println!("case: second {}", block_on(&Settings::NONE, async { 2 }));
}

#[test]
fn a_second_start_in_one_process_is_one_line_and_exit_70() {
    let out = support::child(CASE, "twice", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(70), "{stdout}{stderr}");
    assert!(stdout.contains("case: first 1"), "{stdout}");
    assert!(!stdout.contains("case: second"), "{stdout}");
    assert!(
        stderr.contains("coldstart: the runtime was started once already in this process"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
