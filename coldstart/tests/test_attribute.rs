//! `#[coldstart::test]` behaves like `#[tokio::test]`.

use tokio::runtime::{Handle, RuntimeFlavor};

#[coldstart::test]
async fn current_thread_by_default() {
    assert_eq!(
        Handle::current().runtime_flavor(),
        RuntimeFlavor::CurrentThread
    );
}

#[coldstart::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_with_two_workers() {
    assert_eq!(
        Handle::current().runtime_flavor(),
        RuntimeFlavor::MultiThread
    );
    assert_eq!(Handle::current().metrics().num_workers(), 2);
}

#[coldstart::test(name = "named")]
async fn a_name_is_the_runtime_s_as_in_tokio() {
    assert_eq!(Handle::current().name(), Some("named"));
}

#[coldstart::test(flavor = "multi_thread")]
async fn multi_thread_without_a_count_has_a_worker_per_cpu_as_in_tokio() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(Handle::current().metrics().num_workers(), cpus);
}

/// A test's `Err` fails it, as with `#[tokio::test]`: the case returns one when run
/// again as a child with `FAILING` set, and the child's run must fail, naming it.
#[coldstart::test]
async fn tests_may_return_results() -> Result<(), std::num::ParseIntError> {
    const FAILING: &str = "COLDSTART_TEST_ATTRIBUTE_FAILING";
    if std::env::var_os(FAILING).is_some() {
        "seven".parse::<u8>()?;
        return Ok(());
    }
    assert_eq!("7".parse::<u8>()?, 7);
    let out = coldstart_test_support::output_within(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "tests_may_return_results", "--nocapture"])
            .env(FAILING, "1"),
        std::time::Duration::from_secs(60),
    );
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("InvalidDigit"), "{said}");
    Ok(())
}

/// No init runs in a test, so nothing after a first response is awaited.
/// A `return` in the body takes the test's return type, boxed error and all (tokio's
/// issue 6930: a body as an async block inferred its type from the first `return`).
#[coldstart::test]
async fn a_return_in_the_body_is_coerced_to_the_tests_type()
-> Result<(), Box<dyn std::error::Error>> {
    if let Err(e) = "7".parse::<u8>() {
        return Err(Box::new(e));
    }
    Ok(())
}

#[coldstart::test]
async fn deferred_done_resolves_at_once() {
    let done = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        coldstart::deferred_done(),
    );
    assert!(done.await.is_ok(), "deferred_done never resolved");
}

#[coldstart::test]
async fn tests_do_not_plan() {
    assert!(
        coldstart::plan().is_none(),
        "tests behave the same on every machine"
    );
}

#[cfg(feature = "test-util")]
#[coldstart::test(start_paused = true)]
async fn start_paused_auto_advances_the_clock() {
    // Resuming panics unless the clock is paused: an unpaused clock fails here, not by
    // sleeping an hour below.
    tokio::time::resume();
    tokio::time::pause();
    let start = tokio::time::Instant::now();
    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    assert!(start.elapsed() >= std::time::Duration::from_secs(3600));
}
