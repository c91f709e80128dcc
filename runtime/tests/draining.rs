//! Draining: after SIGTERM a body that awaits `draining()` finishes its in-flight work
//! within the drain deadline, and only then do the shutdown hooks (the telemetry flush)
//! run. Signals and the lifecycle are process-wide, so each case runs in a child
//! process: this test binary run again with `DRAINING_CASE` naming the case.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::process::Output;
use std::time::Duration;

use coldstart_bootstrap::{Settings, Strategy};
use coldstart_runtime::lifecycle;
use coldstart_runtime::{block_on, draining, first_request_done, on_shutdown};

mod support;
use support::raise;

const CASE: &str = "DRAINING_CASE";

/// Runs `case` in a child process with `vars`; its output.
fn child(case: &str, vars: &[(&str, &str)]) -> Output {
    support::child(CASE, case, vars)
}

/// Runs `case` with `vars`, asserts it exited with `code`, and returns what it
/// printed and its stderr.
fn exits_with(code: i32, case: &str, vars: &[(&str, &str)]) -> (String, String) {
    let out = child(case, vars);
    let (stdout, stderr) = said(&out);
    assert_eq!(out.status.code(), Some(code), "{stdout}{stderr}");
    (stdout, stderr)
}

/// What the case printed (its lines start with `case: `, apart from the test
/// harness's), and its stderr.
fn said(out: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout)
        .split_inclusive('\n')
        .filter_map(|l| l.split_once("case: ").map(|(_, said)| said.to_owned()))
        .collect();
    (stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The cases, in the child; nothing in the parent.
#[test]
fn case() {
    let Ok(case) = std::env::var(CASE) else {
        return;
    };
    let settings = Settings {
        strategy: Some(Strategy::Minimal),
        ..Settings::NONE
    };
    let returned = block_on(&settings, async move {
        if case == "before the first response" {
            tokio::spawn(async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                raise(libc::SIGTERM);
            });
            draining().await;
            println!("case: drained before the first response");
            return "returned";
        }
        if case == "sigint and a slow hook" {
            // A body that does not drain: cancelled at the signal. A hook that
            // panics before it returns its future ends no other.
            #[allow(unreachable_code)]
            on_shutdown("broken", Duration::from_secs(1), || {
                panic!("a hook's own bug");
                async {}
            });
            on_shutdown("slow", Duration::from_millis(200), || async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                println!("case: slow hook finished");
            });
            on_shutdown("quick", Duration::from_secs(1), || async {
                println!("case: quick hook ran");
            });
            first_request_done();
            raise(libc::SIGINT);
            tokio::time::sleep(Duration::from_secs(5)).await;
            println!("case: body finished");
            return "returned";
        }
        on_shutdown("flush", Duration::from_secs(1), || async {
            println!("case: hook ran in state {:?}", lifecycle::state());
        });
        first_request_done();
        // The signal comes while a request is in flight.
        tokio::spawn(async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            raise(libc::SIGTERM);
        });
        draining().await;
        println!("case: draining in state {:?}", lifecycle::state());
        let in_flight = match case.as_str() {
            "in time" => Duration::from_millis(300),
            "too slow" => Duration::from_secs(5),
            other => panic!("no case `{other}`"),
        };
        tokio::time::sleep(in_flight).await;
        println!("case: in-flight work answered");
        "returned"
    });
    println!("case: block_on {returned}");
}

#[test]
fn in_flight_work_finishes_after_sigterm_and_then_the_hooks_run() {
    let (stdout, stderr) = exits_with(0, "in time", &[]);
    assert_eq!(
        stdout,
        "draining in state Draining\n\
         in-flight work answered\n\
         hook ran in state Draining\n\
         block_on returned\n",
        "{stderr}"
    );
}

#[test]
fn work_past_the_drain_deadline_is_cancelled_named_and_the_hooks_still_run() {
    let (stdout, stderr) = exits_with(0, "too slow", &[("COLDSTART_DRAIN_TIMEOUT", "200ms")]);
    assert_eq!(
        stdout, "draining in state Draining\nhook ran in state Draining\n",
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "coldstart: in-flight work did not finish within the drain deadline of 200ms \
             (COLDSTART_DRAIN_TIMEOUT); cancelling it"
        ),
        "{stderr}"
    );
}

#[test]
fn sigint_runs_the_hooks_and_a_hook_past_its_deadline_is_named_and_abandoned() {
    let (stdout, stderr) = exits_with(0, "sigint and a slow hook", &[]);
    assert_eq!(stdout, "quick hook ran\n", "{stderr}");
    assert!(
        stderr.contains("coldstart: shutdown hook `slow` did not finish within 200ms"),
        "{stderr}"
    );
    assert!(
        stderr.contains("coldstart: shutdown hook `broken` panicked"),
        "{stderr}"
    );
}

#[test]
fn a_bad_drain_deadline_is_named_with_what_is_accepted() {
    let (_, stderr) = exits_with(78, "in time", &[("COLDSTART_DRAIN_TIMEOUT", "soon")]);
    assert!(
        stderr.contains(
            "set COLDSTART_DRAIN_TIMEOUT to a duration such as `10s` or `500ms` (up to 1h), got `soon`"
        ),
        "{stderr}"
    );
}

#[test]
fn before_the_first_response_a_signal_keeps_its_default_effect_while_draining_is_awaited() {
    use std::os::unix::process::ExitStatusExt;
    let out = child("before the first response", &[]);
    let (stdout, stderr) = said(&out);
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{stdout}{stderr}");
    assert!(!stdout.contains("drained"), "{stdout}");
}
