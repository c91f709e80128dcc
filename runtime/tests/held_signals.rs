//! Signals held between the first response and the first shutdown hook: the window
//! in which the telemetry exporters register their final flush. Signals and the
//! lifecycle are process-wide, so each case runs in a child process: this test binary
//! run again with `HELD_SIGNALS_CASE` naming the case.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::process::Output;
use std::time::Duration;

use coldstart_bootstrap::{Flavor, Settings, Strategy};
use coldstart_runtime::lifecycle::hold_signals_until_hooks;
use coldstart_runtime::{block_on, first_request_done, on_shutdown};
use tokio::signal::unix::{SignalKind, signal};

mod support;
use support::raise;

const CASE: &str = "HELD_SIGNALS_CASE";

/// Runs `case` in a child process; its output.
fn child(case: &str) -> Output {
    support::child(CASE, case, &[])
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `case`, asserts it exited 0, and returns what it printed.
fn exits_cleanly(case: &str) -> String {
    let out = child(case);
    let said = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    said
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
    let threaded = Settings {
        flavor: Some(Flavor::MultiThread),
        worker_threads: Some(2),
        ..Settings::NONE
    };
    let settings = if case == "every hook" {
        &threaded
    } else {
        &settings
    };
    block_on(settings, async move {
        // The program's own listener, installed before or after the hold.
        let listener = |case: &str| {
            let listen = || signal(SignalKind::terminate()).unwrap();
            match case {
                "listener first" => {
                    let term = listen();
                    let hold = hold_signals_until_hooks();
                    first_request_done();
                    Some((term, hold))
                }
                "listener after" => {
                    let hold = hold_signals_until_hooks();
                    Some((listen(), hold))
                }
                _ => None,
            }
        };
        if let Some((mut term, _hold)) = listener(&case) {
            raise(libc::SIGTERM);
            if tokio::time::timeout(Duration::from_secs(5), term.recv())
                .await
                .is_ok()
            {
                println!("the program's listener got SIGTERM");
            }
            return;
        }
        if case == "hook before the hold" {
            // A hook registered before serving (an init's) installs the listener
            // first; the held work's hook still comes in time.
            on_shutdown("early", Duration::from_secs(1), || async {
                println!("early hook ran");
            });
            let hold = hold_signals_until_hooks();
            first_request_done();
            raise(libc::SIGTERM);
            tokio::time::sleep(Duration::from_millis(200)).await;
            on_shutdown("late", Duration::from_secs(1), || async {
                println!("late hook ran");
            });
            hold.release();
            tokio::time::sleep(Duration::from_secs(5)).await;
            println!("body finished");
            return;
        }
        let hold = hold_signals_until_hooks();
        match case.as_str() {
            "every hook" => {
                first_request_done();
                on_shutdown("first", Duration::from_secs(1), || async {
                    println!("first hook ran");
                });
                raise(libc::SIGTERM);
                tokio::time::sleep(Duration::from_millis(200)).await;
                on_shutdown("second", Duration::from_secs(1), || async {
                    println!("second hook ran");
                });
                hold.release();
            }
            "held" => {
                first_request_done();
                raise(libc::SIGTERM);
                println!("alive after SIGTERM");
                on_shutdown("flush", Duration::from_secs(1), || async {
                    println!("hook ran");
                });
                hold.release();
            }
            "twice while held" => {
                first_request_done();
                raise(libc::SIGTERM);
                println!("alive after the first SIGTERM");
                // The hooks are not registered yet: a second signal does not wait.
                raise(libc::SIGTERM);
                println!("alive after the second SIGTERM");
                on_shutdown("flush", Duration::from_secs(1), || async {
                    println!("hook ran");
                });
                hold.release();
            }
            "two holds" => {
                // The exporters' hold and a program's own: the first released does not
                // end the other.
                let own = hold_signals_until_hooks();
                first_request_done();
                raise(libc::SIGTERM);
                hold.release();
                println!("alive after one release");
                tokio::time::sleep(Duration::from_millis(100)).await;
                on_shutdown("persist", Duration::from_secs(1), || async {
                    println!("hook ran");
                });
                own.release();
            }
            "end of main without a response" => {
                // The held work starts after a first response, which never comes: its
                // hold is never released.
                std::mem::forget(hold);
                // A thread of coldstart's own, which the end of `main` waits for once
                // the (no) hooks have run: the signal comes during that wait.
                tokio::spawn(coldstart_runtime::task::off_runtime("late", || {
                    std::thread::sleep(Duration::from_millis(300));
                    raise(libc::SIGTERM);
                    std::thread::sleep(Duration::from_millis(300));
                    println!("alive after SIGTERM");
                }));
                tokio::task::yield_now().await;
                println!("body returned");
                return;
            }
            "no hooks" => {
                first_request_done();
                raise(libc::SIGINT);
                println!("alive after SIGINT");
                hold.release();
                println!("alive after release");
            }
            "before the first response" => {
                raise(libc::SIGTERM);
                println!("alive after SIGTERM");
            }
            "hook before the first response" => {
                // A hook registered before serving (the Lambda integration's) installs
                // the listener; the held work has not started, so nothing is waited for.
                on_shutdown("flush", Duration::from_secs(1), || async {
                    println!("hook ran");
                });
                // Outside the runtime: says so if the process outlives 1.5 s.
                std::thread::spawn(|| {
                    std::thread::sleep(Duration::from_millis(1500));
                    println!("still running 1.5 s after SIGTERM");
                });
                raise(libc::SIGTERM);
            }
            #[cfg(feature = "tower")]
            "between the write and the mark" => {
                use http_body_util::{BodyExt, Full};
                use hyper::body::Bytes;
                // What a server does with the first response: the layer's body read to
                // its end in one poll, the write in that same poll, and the mark after.
                let body = coldstart_runtime::first_response::MarkOnEnd::new(Full::new(
                    Bytes::from_static(b"hello"),
                ));
                let sent = body.collect().await.unwrap().to_bytes();
                assert!(!coldstart_runtime::lifecycle::is_first_response_done());
                // The client has the response; the mark has not run yet.
                raise(libc::SIGTERM);
                println!("alive after SIGTERM, {} bytes sent", sent.len());
                coldstart_runtime::lifecycle::first_response().await;
                on_shutdown("flush", Duration::from_secs(1), || async {
                    println!("hook ran");
                });
                hold.release();
            }
            other => panic!("no case `{other}`"),
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        println!("body finished");
    });
}

#[test]
fn a_signal_after_the_first_response_waits_for_the_hooks_then_they_run() {
    let said = exits_cleanly("held");
    assert!(said.contains("alive after SIGTERM\nhook ran\n"), "{said}");
    assert!(!said.contains("body finished"), "{said}");
}

/// Holds add up: a signal waits for the last one's release (the first released gave
/// the signals back, and the SIGTERM ended the process before the other's hook).
#[test]
fn a_signal_waits_for_the_last_of_two_holds() {
    let said = exits_cleanly("two holds");
    assert!(
        said.contains("alive after one release\nhook ran\n"),
        "{said}"
    );
    assert!(!said.contains("body finished"), "{said}");
}

#[test]
fn with_no_hooks_registered_a_held_signal_takes_its_default_effect_on_release() {
    use std::os::unix::process::ExitStatusExt;
    let out = child("no hooks");
    let said = stdout(&out);
    assert_eq!(out.status.signal(), Some(libc::SIGINT), "{said}");
    assert!(said.contains("alive after SIGINT\n"), "{said}");
    assert!(!said.contains("alive after release"), "{said}");
}

/// Regression: with the listener installed by a hook registered before serving, the
/// hold was switched off, and a signal ran the hooks before the held work's own was
/// registered (the exporters' span flush, lost).
#[test]
fn with_a_hook_registered_before_the_hold_a_signal_still_waits_for_the_held_hooks() {
    let said = exits_cleanly("hook before the hold");
    assert!(said.contains("early hook ran"), "{said}");
    assert!(said.contains("late hook ran"), "{said}");
    assert!(!said.contains("body finished"), "{said}");
}

/// A second signal while the first is held (Ctrl-C twice while the exporters are
/// still registering their flush) ends the process at once, by the signal.
#[test]
fn a_second_signal_while_the_first_is_held_ends_the_process_at_once() {
    use std::os::unix::process::ExitStatusExt;
    let out = child("twice while held");
    let said = stdout(&out);
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{said}");
    assert!(said.contains("alive after the first SIGTERM\n"), "{said}");
    assert!(!said.contains("alive after the second"), "{said}");
    assert!(!said.contains("hook ran"), "{said}");
}

#[test]
fn before_the_first_response_a_signal_keeps_its_default_effect() {
    use std::os::unix::process::ExitStatusExt;
    let out = child("before the first response");
    let said = stdout(&out);
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{said}");
    assert!(!said.contains("alive"), "{said}");
}

/// Regression: the end of `main` makes the state `Draining` with no response at all,
/// and the hold took that for a first response: a SIGTERM while the end of `main`
/// waited for coldstart's own threads was held for work that never started, and lost
/// (the process went on, and exited 0 once the thread ended).
#[test]
fn at_the_end_of_main_without_a_response_a_signal_keeps_its_default_effect() {
    use std::os::unix::process::ExitStatusExt;
    let out = child("end of main without a response");
    let said = stdout(&out);
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{said}");
    assert!(said.contains("body returned\n"), "{said}");
    assert!(!said.contains("alive"), "{said}");
}

/// Regression: the listener, and then the end of `main`, waited up to 2 s for a hold
/// whose work had not started (it starts after the first response), longer than
/// Lambda's 500 ms after SIGTERM.
#[test]
fn before_the_first_response_a_listener_runs_the_hooks_without_waiting_for_the_hold() {
    let said = exits_cleanly("hook before the first response");
    assert!(said.contains("hook ran"), "{said}");
    assert!(!said.contains("still running"), "{said}");
    assert!(!said.contains("body finished"), "{said}");
}

/// Regression: the tower layer marks the first response only after the server's write,
/// and a signal in between took its default effect, ending the process without its
/// final flush.
#[cfg(feature = "tower")]
#[test]
fn a_signal_between_the_first_response_and_its_mark_is_held_for_the_hooks() {
    let said = exits_cleanly("between the write and the mark");
    assert!(
        said.contains("alive after SIGTERM, 5 bytes sent\nhook ran\n"),
        "{said}"
    );
    assert!(!said.contains("body finished"), "{said}");
}

#[test]
fn a_listener_the_program_installed_first_keeps_the_signal() {
    let said = exits_cleanly("listener first");
    // Had coldstart taken the signal, the body would have been cancelled before its
    // listener heard it.
    assert!(
        said.contains("the program's listener got SIGTERM"),
        "{said}"
    );
}

#[test]
fn a_listener_the_program_installs_later_takes_the_signal_over() {
    let said = exits_cleanly("listener after");
    assert!(
        said.contains("the program's listener got SIGTERM"),
        "{said}"
    );
}

#[test]
fn on_a_multi_thread_runtime_the_hooks_wait_for_every_registration_before_release() {
    let said = exits_cleanly("every hook");
    assert!(said.contains("first hook ran"), "{said}");
    assert!(said.contains("second hook ran"), "{said}");
    assert!(!said.contains("body finished"), "{said}");
}
