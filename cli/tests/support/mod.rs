//! What the command tests share: the examples' binaries and finding cargo-lambda with
//! the CI rule (missing under `CI=true` fails, elsewhere the test says it is skipped).

#![allow(dead_code, unreachable_pub)] // each test file uses its own part

use std::path::PathBuf;
use std::process::Command;

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
        std::env::var_os("CI").is_none(),
        "{test}: cargo-lambda is missing, and CI must run it (scripts/test installs it)"
    );
    eprintln!("SKIPPED {test}: cargo-lambda does not run here; scripts/test installs it");
    None
}

/// The Lambda example's package directory, which the emulator reads.
pub const LAMBDA_PACKAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/lambda-hello");
