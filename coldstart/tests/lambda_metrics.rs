//! On AWS Lambda no `/metrics` listener runs: metrics the program records reach
//! nothing without a Pushgateway, and that is said once, not left unsaid. A server in
//! a thread stands in for the Runtime API (the real emulator is used by the Lambda
//! example's tests, which record no metrics of their own). Each case runs in a child
//! process, this test binary again, told so by a variable: the Lambda variables and
//! the recorder are the process's.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::time::Duration;

const CASE: &str = "COLDSTART_TEST_LAMBDA_METRICS_CASE";

/// What the line says.
const SAID: &str = "nothing exports them";

/// The function of a case: each invocation counts itself.
fn function() {
    coldstart::Builder::new().block_on(async {
        let handler = coldstart::lambda::service_fn(
            |_: coldstart::lambda::LambdaEvent<serde_json::Value>| async {
                metrics::counter!("invocations_seen_total").increment(1);
                Ok::<_, coldstart::lambda::Error>(serde_json::Value::Null)
            },
        );
        let _ = coldstart::lambda::run(handler).await;
    });
}

/// Runs `test`'s case with the Lambda variables and `vars` for two invocations; its
/// stderr once it asked for the third.
fn two_invocations(test: &str, vars: &[(&str, &str)]) -> String {
    coldstart_test_support::run_as_function(CASE, test, "counted", &[Duration::ZERO; 2], vars)
}

/// Two invocations that record a counter, no push URL: one line, naming the metric
/// and the setting that exports it.
#[test]
fn recorded_metrics_nothing_exports_are_said_once() {
    let test = "recorded_metrics_nothing_exports_are_said_once";
    if std::env::var_os(CASE).is_some() {
        return function();
    }
    let stderr = two_invocations(test, &[]);
    let said: Vec<&str> = stderr.lines().filter(|l| l.contains(SAID)).collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(
        said[0].contains("`invocations_seen_total`")
            && said[0].contains("COLDSTART_METRICS_PUSH_URL"),
        "{stderr}"
    );
}

/// With a `/metrics` address set, the listener runs on Lambda too: nothing is said.
#[test]
fn with_a_listener_nothing_is_said() {
    let test = "with_a_listener_nothing_is_said";
    if std::env::var_os(CASE).is_some() {
        return function();
    }
    let stderr = two_invocations(test, &[("COLDSTART_METRICS_ADDR", "127.0.0.1:0")]);
    assert!(!stderr.contains(SAID), "{stderr}");
}
