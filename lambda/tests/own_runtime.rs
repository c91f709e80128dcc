//! A program that builds its own `Runtime` with the invocation layer gets the shutdown
//! `run` prepares. Applying the layer caps the hooks to what Lambda gives after
//! SIGTERM (here 250 ms: no registration of coldstart's extension was started, so a
//! SIGTERM would come only through another extension's); uncapped, a final flush
//! planned for its own deadline was cut off by Lambda's kill without a word. Where a
//! shutdown hook waits, `registered()` registers the extension as `run` does, and a
//! program that did not await it is told so: the hook never ran, unsaid. Its own
//! binary, without the test harness: the Lambda variables, the hooks and the cap are
//! the process's, so each case runs in a child of this binary.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use tower_layer::Layer as _;

/// The case a child runs: `cap`, `hook` or `hook-registered`.
const CASE: &str = "OWN_RUNTIME_CASE";

fn main() {
    match std::env::var(CASE) {
        Ok(case) => child(&case),
        Err(_) => parent(),
    }
}

fn parent() {
    let run = |case: &str| {
        let out = coldstart_test_support::output_within(
            std::process::Command::new(std::env::current_exe().unwrap()).env(CASE, case),
            std::time::Duration::from_secs(60),
        );
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{case}: {stderr}");
        stderr
    };
    run("cap");
    let unregistered = "coldstart's extension was not registered, so Lambda may not send SIGTERM: await coldstart::lambda::registered() before Runtime::run";
    let said = run("hook");
    assert!(said.contains(unregistered), "{said}");
    // Registered as `run` registers it (here refused: nothing answers at the address).
    let said = run("hook-registered");
    assert!(!said.contains(unregistered), "{said}");
    assert!(
        said.contains(
            "the internal extension could not register (AWS_LAMBDA_RUNTIME_API=127.0.0.1:9"
        ),
        "{said}"
    );
    println!("own_runtime: the layer caps the hooks; registered() registers where a hook waits");
}

fn child(case: &str) {
    let vars = [
        ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9"),
        ("AWS_LAMBDA_FUNCTION_NAME", "own"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
    ];
    for (key, value) in vars {
        // SAFETY: nothing else runs yet.
        unsafe { std::env::set_var(key, value) };
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        assert_eq!(
            coldstart_runtime::lifecycle::hook_cap(),
            std::time::Duration::MAX
        );
        if case != "cap" {
            coldstart_runtime::on_shutdown("close", std::time::Duration::from_secs(1), || async {});
        }
        if case == "hook-registered" {
            coldstart_lambda::registered().await;
        }
        let layer = coldstart_lambda::InvocationLayer::from_env().unwrap();
        // The layer wraps any service; applying it is what `Runtime::layer` does.
        let _service = layer.layer(());
        // 250 ms in every case: no registration, or one refused (which lowers it so).
        assert_eq!(
            coldstart_runtime::lifecycle::hook_cap(),
            coldstart_lambda::EXTERNAL_SHUTDOWN_BUDGET
        );
    });
}
