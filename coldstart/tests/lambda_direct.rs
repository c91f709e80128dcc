//! A function that serves through `lambda_runtime`'s own loop (`lambda_runtime::run`,
//! or a `Runtime` without coldstart's layer) never marks its first response: deferred
//! work and the exporters never start. That is said, once, when `main` is next polled
//! 10 s after it began, not left unsaid. A server in a thread stands in for the
//! Runtime API and answers the second `/next` 11 s late, so that an invocation comes
//! after those 10 s. Each case runs in a child process, this test binary again, told
//! so by a variable: the Lambda variables are the process's.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::time::Duration;

use coldstart::lambda::{Error, LambdaEvent, Runtime, service_fn};

const CASE: &str = "COLDSTART_TEST_LAMBDA_DIRECT_CASE";

/// What the line says.
const SAID: &str = "does not serve through coldstart::lambda::run";

async fn echo(event: LambdaEvent<serde_json::Value>) -> Result<serde_json::Value, Error> {
    Ok(event.payload)
}

/// Runs `test`'s case with the Lambda variables for two invocations, the second 11 s
/// after the first; its stderr once it asked for the third.
fn two_invocations_11_s_apart(test: &str) -> String {
    two_invocations_11_s_apart_with(test, &[])
}

/// [`two_invocations_11_s_apart`], with `vars` too.
fn two_invocations_11_s_apart_with(test: &str, vars: &[(&str, &str)]) -> String {
    let waits = [Duration::ZERO, Duration::from_secs(11)];
    coldstart_test_support::run_as_function(CASE, test, "direct", &waits, vars)
}

#[test]
fn serving_through_lambda_runtimes_own_loop_is_said_once() {
    let test = "serving_through_lambda_runtimes_own_loop_is_said_once";
    if std::env::var_os(CASE).is_some() {
        coldstart::Builder::new().block_on(async {
            let _ = Runtime::new(service_fn(echo)).run().await;
        });
        return;
    }
    let stderr = two_invocations_11_s_apart(test);
    let said: Vec<&str> = stderr.lines().filter(|l| l.contains(SAID)).collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(
        said[0].starts_with("coldstart: lambda: 10 s after main began")
            && said[0].contains("InvocationLayer"),
        "{stderr}"
    );
}

/// Provisioned concurrency (and SnapStart) allow an init longer than 10 s: a `main`
/// still busy then is not said to serve the wrong way.
#[test]
fn with_provisioned_concurrency_nothing_is_said() {
    let test = "with_provisioned_concurrency_nothing_is_said";
    if std::env::var_os(CASE).is_some() {
        coldstart::Builder::new().block_on(async {
            let _ = Runtime::new(service_fn(echo)).run().await;
        });
        return;
    }
    let stderr = two_invocations_11_s_apart_with(
        test,
        &[("AWS_LAMBDA_INITIALIZATION_TYPE", "provisioned-concurrency")],
    );
    assert!(!stderr.contains(SAID), "{stderr}");
}

#[test]
fn serving_through_coldstarts_run_is_not_said() {
    let test = "serving_through_coldstarts_run_is_not_said";
    if std::env::var_os(CASE).is_some() {
        coldstart::Builder::new().block_on(async {
            let _ = coldstart::lambda::run(service_fn(echo)).await;
        });
        return;
    }
    let stderr = two_invocations_11_s_apart(test);
    assert!(!stderr.contains(SAID), "{stderr}");
}
