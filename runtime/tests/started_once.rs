//! The runtime starts once per process: a second `block_on` ends the program with one
//! line and exit code 70 instead of running on the first run's plan, signal listener
//! and telemetry. A start refused for its settings sets nothing, and another may
//! follow. In a child process, since the start is process-wide.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use coldstart_bootstrap::{Env, Settings};
use coldstart_runtime::{Phase, StartError, block_on, start, timeline};

mod support;

const CASE: &str = "STARTED_ONCE_CASE";

/// The case, in the child; nothing in the parent.
#[test]
fn case() {
    if std::env::var(CASE).is_err() {
        return;
    }
    if std::env::var(CASE).as_deref() == Ok("refused first") {
        let bad = Env::fixed([("COLDSTART_WORKER_THREADS", "lots")]);
        let refused = start(&Settings::NONE, &bad).map(|_| ()).unwrap_err();
        println!("case: refused {}", matches!(refused, StartError::Config(_)));
        let probed = |t: coldstart_runtime::Timeline| t.marks[Phase::Probed as usize];
        println!(
            "case: refused probe unmarked {}",
            probed(timeline()).is_none()
        );
        let between = coldstart_runtime::timeline::now_ns();
        let started = start(&Settings::NONE, &Env::fixed(Vec::<(&str, &str)>::new()));
        println!("case: then {}", started.is_ok());
        let marked = probed(timeline()).is_some_and(|ns| ns >= between);
        println!("case: then probe marked by it {marked}");
        let again = start(&Settings::NONE, &Env::fixed(Vec::<(&str, &str)>::new()));
        println!("case: again {}", matches!(again, Err(StartError::Again)));
        return;
    }
    println!("case: first {}", block_on(&Settings::NONE, async { 1 }));
    println!("case: second {}", block_on(&Settings::NONE, async { 2 }));
}

#[test]
fn a_second_start_in_one_process_is_one_line_and_exit_70() {
    let out = support::child(CASE, "twice", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(70), "{stdout}{stderr}");
    assert!(stdout.contains("case: first 1"), "{stdout}");
    assert!(!stdout.contains("case: second"), "{stdout}");
    assert!(
        stderr.contains("coldstart: the runtime was started once already in this process"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A direct caller of `start` whose settings were refused tries again with others:
/// the refusal set nothing (its timeline marks taken back), and the second start is
/// the process's one.
#[test]
fn a_start_refused_for_its_settings_can_be_followed_by_another() {
    let out = support::child(CASE, "refused first", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("case: refused true"), "{stdout}{stderr}");
    assert!(stdout.contains("case: then true"), "{stdout}{stderr}");
    // The timeline shows the start that ran, not the refused one.
    assert!(
        stdout.contains("case: refused probe unmarked true"),
        "{stdout}{stderr}"
    );
    assert!(
        stdout.contains("case: then probe marked by it true"),
        "{stdout}{stderr}"
    );
    assert!(stdout.contains("case: again true"), "{stdout}{stderr}");
}
