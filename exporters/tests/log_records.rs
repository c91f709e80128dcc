//! With the `logs` feature, records of the `log` crate (a program's `log::info!`,
//! crates that log through `log`) are log lines too, under their own targets and the
//! same filter: only `tracing` events were, and `log` records went nowhere. One test,
//! its case run again as a child: the subscriber and the `log` logger are the
//! process's.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

mod telemetry;

use std::process::Command;
use std::time::Duration;

const CASE: &str = "COLDSTART_TEST_LOG_RECORDS_CASE";

#[test]
fn log_records_are_lines() {
    if std::env::var_os(CASE).is_some() {
        // Tracing on (nothing exported): the span bridge is part of the subscriber.
        let _telemetry = telemetry::installed(vec![
            ("COLDSTART_LOG_FORMAT", "json".to_owned()),
            ("COLDSTART_LOG_FILTER", "info,app::db=debug".to_owned()),
            ("OTEL_TRACES_EXPORTER", "none".to_owned()),
        ]);
        // `log` is asked for no more than the filter takes: a `trace!` anywhere costs
        // one comparison (it was every level, each record then offered to the filter).
        assert_eq!(log::max_level(), log::LevelFilter::Debug);
        log::debug!(target: "app::db", "pool ready");
        log::debug!(target: "app::web", "left out");
        log::warn!(target: "app::web", "slow");
        return;
    }
    let out = coldstart_test_support::output_within(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "log_records_are_lines", "--nocapture"])
            .env(CASE, "1"),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let seen: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["level"].as_str().unwrap_or_default(),
                l["target"].as_str().unwrap_or_default(),
                l["message"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("DEBUG", "app::db", "pool ready"),
            ("WARN", "app::web", "slow")
        ],
        "{stdout}"
    );
}
