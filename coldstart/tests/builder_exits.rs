//! A number out of range given to `coldstart::Builder`, or a setting no feature of the
//! build reads, ends the program with one line and exit code 78 before its body, as
//! the same value in a variable does. Each case runs in a child process: this test
//! binary again, told so by a variable.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::process::Command;

const CASE: &str = "COLDSTART_TEST_BUILDER_CASE";

/// Runs `test` as a case in a child process: its one `coldstart: ` line, after
/// checking that it exited 78 without running its body.
fn the_line_and_exit_78(test: &str) -> String {
    the_line_and_exit_78_with(test, &[])
}

/// [`the_line_and_exit_78`] with `env` set for the child.
fn the_line_and_exit_78_with(test: &str, env: &[(&str, &str)]) -> String {
    let out = coldstart_test_support::output_within(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture"])
            .env(CASE, "1")
            .envs(env.iter().copied()),
        std::time::Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stdout}\n{stderr}");
    assert!(!stdout.contains("the body ran"), "{stdout}");
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("coldstart: "))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    said[0].to_owned()
}

#[test]
fn a_number_out_of_range_in_code_is_one_line_and_exit_78() {
    if std::env::var_os(CASE).is_some() {
        coldstart::Builder::new()
            .worker_threads(0)
            .block_on(async { println!("the body ran") });
        return;
    }
    let said = the_line_and_exit_78("a_number_out_of_range_in_code_is_one_line_and_exit_78");
    assert_eq!(
        said,
        "coldstart: set COLDSTART_WORKER_THREADS to a whole number from 1 to 1024, got `0` (set in code)"
    );
}

/// A blank runtime name (tokio panics on one) is refused as a bad value is.
#[test]
fn a_blank_name_in_code_is_one_line_and_exit_78() {
    if std::env::var_os(CASE).is_some() {
        coldstart::Builder::new()
            .name(" ")
            .block_on(async { println!("the body ran") });
        return;
    }
    let said = the_line_and_exit_78("a_blank_name_in_code_is_one_line_and_exit_78");
    assert_eq!(
        said,
        "coldstart: set name to a name that is not blank, got ` `"
    );
}

/// A setting no feature of this build reads, given to `Builder::set`: the line names
/// the variable and the feature that reads it. Built without `metrics` (the facade's
/// feature matrix in `scripts/test` runs it so).
#[cfg(not(feature = "metrics"))]
#[test]
fn a_setting_no_feature_of_this_build_reads_is_one_line_and_exit_78() {
    if std::env::var_os(CASE).is_some() {
        coldstart::Builder::new()
            .set("COLDSTART_METRICS_ADDR", "127.0.0.1:9464")
            .block_on(async { println!("the body ran") });
        return;
    }
    let said =
        the_line_and_exit_78("a_setting_no_feature_of_this_build_reads_is_one_line_and_exit_78");
    assert!(
        said.contains("COLDSTART_METRICS_ADDR") && said.contains("`metrics` feature"),
        "{said}"
    );
}

/// The same setting in the configuration file: refused as `Builder::set` refuses it,
/// with the file's line (it was accepted and never read).
#[cfg(not(feature = "metrics"))]
#[test]
fn a_file_setting_no_feature_of_this_build_reads_is_one_line_and_exit_78() {
    if std::env::var_os(CASE).is_some() {
        coldstart::Builder::new().block_on(async { println!("the body ran") });
        return;
    }
    let dir = coldstart_test_support::temp_dir("builder-exits");
    let file = dir.join("coldstart.toml");
    std::fs::write(
        &file,
        "[coldstart]\nstrategy = \"minimal\"\nmetrics_addr = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let said = the_line_and_exit_78_with(
        "a_file_setting_no_feature_of_this_build_reads_is_one_line_and_exit_78",
        &[("COLDSTART_CONFIG", file.to_str().unwrap())],
    );
    assert!(
        said.contains("coldstart.toml line 3: `[coldstart] metrics_addr` is read only in a build with coldstart's `metrics` feature"),
        "{said}"
    );
}

/// A variable read from the environment only, given to `Builder::set`: said to be one.
#[test]
fn a_setting_read_from_the_environment_only_is_said_to_be_one_in_code() {
    if std::env::var_os(CASE).is_some() {
        coldstart::Builder::new()
            .set("COLDSTART_PROFILE", "a.profile")
            .block_on(async { println!("the body ran") });
        return;
    }
    let said =
        the_line_and_exit_78("a_setting_read_from_the_environment_only_is_said_to_be_one_in_code");
    assert!(
        said.contains("`COLDSTART_PROFILE` is read from the environment only"),
        "{said}"
    );
}
