//! What the signal tests share: signals and the lifecycle are process-wide, so each
//! case runs in a child process, this test binary run again with its `case` test
//! selected and a variable naming the case.

#![allow(dead_code, unreachable_pub)] // each test file uses its own part

use std::process::{Command, Output};

/// Runs the test `case` of this binary in a child process with `variable` set to
/// `name` and `vars` set; its output. A child still running after two minutes (a
/// hold never released, a signal lost) is killed and fails the test, which would
/// otherwise hang the run.
pub fn child(variable: &str, name: &str, vars: &[(&str, &str)]) -> Output {
    coldstart_test_support::output_within(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "case", "--nocapture", "--test-threads=1"])
            .env(variable, name)
            .envs(vars.iter().copied()),
        std::time::Duration::from_secs(120),
    )
}

/// Sends `signo` to this process.
pub fn raise(signo: i32) {
    // SAFETY: signalling this process.
    unsafe { libc::raise(signo) };
}
