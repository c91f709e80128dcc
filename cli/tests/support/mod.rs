//! What the command tests share: the examples' binaries and finding cargo-lambda with
//! the CI rule (missing under `CI=true` fails, elsewhere the test says it is skipped).

#![allow(dead_code, unreachable_pub)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// An example's debug binary, built first when it is not there yet.
pub fn example(name: &str) -> PathBuf {
    let debug = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .to_path_buf();
    let path = debug.join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", name])
            .status()
            .unwrap();
        assert!(status.success(), "cargo build -p {name}");
    }
    path
}

/// `cargo-lambda` (`COLDSTART_TEST_CARGO_LAMBDA`, else on `PATH`); `None` after saying
/// `test` is skipped where it is missing outside CI.
pub fn cargo_lambda(test: &str) -> Option<String> {
    let program =
        std::env::var("COLDSTART_TEST_CARGO_LAMBDA").unwrap_or_else(|_| "cargo-lambda".into());
    let found = Command::new(&program)
        .args(["lambda", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(program);
    }
    assert!(
        !coldstart_test_support::in_ci(),
        "{test}: cargo-lambda is missing, and CI must run it (scripts/test installs it)"
    );
    coldstart_test_support::skipped(
        test,
        "cargo-lambda does not run here; scripts/test installs it",
    );
    None
}

/// The Lambda example's package directory, which the emulator reads.
pub const LAMBDA_PACKAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/lambda-hello");

/// The `before serving` and `after 1st response` lines of the server's start-up
/// report, with `profile` in `COLDSTART_PROFILE` when given. The server is killed
/// when they have come, or with the failing test when they do not (in 10 s).
pub fn planned_order(server: &Path, profile: Option<&Path>) -> (String, String) {
    let port = coldstart_test_support::free_port();
    let mut command = Command::new(server);
    match profile {
        Some(profile) => command.env("COLDSTART_PROFILE", profile),
        None => command.env_remove("COLDSTART_PROFILE"),
    };
    let mut child = coldstart_test_support::Reaper(
        command
            .env("PORT", port.to_string())
            .env("COLDSTART_LOG", "debug")
            .env("COLDSTART_METRICS_ADDR", "off")
            .env("OTEL_TRACES_EXPORTER", "none")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = coldstart_test_support::Lines::of(&mut child.0);
    // The plan's `exporters` row says "after 1st response" too: wait for the line
    // of the inits' block, which begins with it.
    let row = |seen: &str, label: &str| {
        seen.lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .map(|rest| rest.trim().to_owned())
    };
    let after = loop {
        let seen = lines.wait_for("after 1st response");
        if let Some(after) = row(seen, "after 1st response") {
            break after;
        }
    };
    let before = row(&lines.seen, "before serving")
        .unwrap_or_else(|| panic!("no `before serving` line; stderr was:\n{}", lines.seen));
    (before, after)
}
