//! A fatal deferred init stops the program (exit 70). A shutdown hook registered after
//! that stop (here by work at the end of `main`, as the exporters register their
//! final flush) installs the signal listener then: one SIGTERM during the hooks is a
//! first signal, the hooks finish and the exit is still 70. The stop used to count as
//! a first signal for that listener, so the one SIGTERM ended the process at once
//! ("again"), its hooks cut. Signals and the lifecycle are process-wide: the case runs
//! in a child process.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::time::Duration;

use coldstart_bootstrap::Settings;
use coldstart_bootstrap::init::{Declared, INITS, Registration, Work, linkme};
use coldstart_runtime::lifecycle::at_end_of_main;
use coldstart_runtime::{block_on, first_request_done, on_shutdown};

mod support;

const CASE: &str = "STOP_THEN_SIGNAL_CASE";

/// Fails at once, after the first response: fatal, in the child only.
#[linkme::distributed_slice(INITS)]
#[linkme(crate = linkme)]
static FAILS: Registration = Registration::new(
    "stop_then_signal::fails",
    Declared::Deferred,
    true,
    Work::Fn(|| match std::env::var_os(CASE) {
        Some(_) => Err("asked to fail".to_owned()),
        None => Ok(()),
    }),
);

/// Registers, at the end of `main`, a hook that sends this process SIGTERM and then
/// goes on for 300 ms.
fn late_hook() {
    on_shutdown("late", Duration::from_secs(5), || async {
        support::raise(libc::SIGTERM);
        tokio::time::sleep(Duration::from_millis(300)).await;
        println!("late hook ran");
    });
}

#[test]
fn case() {
    if std::env::var_os(CASE).is_none() {
        return;
    }
    block_on(&Settings::NONE, async {
        at_end_of_main(late_hook);
        first_request_done();
        // The fatal init stops the program; the body is let go.
        tokio::time::sleep(Duration::from_secs(10)).await;
        println!("body finished");
    });
}

#[test]
fn a_signal_after_a_fatal_init_stopped_the_program_is_a_first_signal() {
    let out = support::child(CASE, "1", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stopping (fatal)"), "{stderr}");
    assert_eq!(out.status.code(), Some(70), "{stdout}{stderr}");
    assert!(stdout.contains("late hook ran"), "{stdout}{stderr}");
    assert!(!stderr.contains("again"), "{stderr}");
    assert!(!stdout.contains("body finished"), "{stdout}");
}
