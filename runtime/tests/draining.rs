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
    if case == "started with sigint ignored" {
        // SAFETY: as `nohup` or a shell's `cmd &` would have left it.
        unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    }
    let after = case == "a signal after block_on";
    let returned = block_on(&settings, async move {
        if case == "started with sigint ignored" {
            on_shutdown("flush", Duration::from_secs(1), || async {
                println!("case: hook ran");
            });
            first_request_done();
            raise(libc::SIGINT);
            tokio::time::sleep(Duration::from_millis(300)).await;
            println!("case: still serving");
            return "returned";
        }
        if case == "a hook waits for what the body lets go" {
            // A writer that ends when the body's sender is gone, and a hook that waits
            // for it: the body must be dropped before the hooks run.
            let (sender, mut receiver) = tokio::sync::mpsc::channel::<u8>(1);
            let writer = tokio::spawn(async move { while receiver.recv().await.is_some() {} });
            on_shutdown("writer", Duration::from_secs(2), || async move {
                let _ = writer.await;
                println!("case: the writer finished");
            });
            first_request_done();
            raise(libc::SIGTERM);
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(sender);
            return "returned";
        }
        if case == "a second signal after a held one" {
            let hold = lifecycle::hold_signals_until_hooks();
            first_request_done();
            // Held: nothing listens yet.
            raise(libc::SIGTERM);
            on_shutdown("slow flush", Duration::from_secs(30), || async {
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
            hold.release();
            std::thread::spawn(|| {
                std::thread::sleep(Duration::from_millis(500));
                println!("case: sending SIGTERM again");
                raise(libc::SIGTERM);
            });
            tokio::time::sleep(Duration::from_secs(30)).await;
            return "returned";
        }
        if case == "a signal after block_on" {
            on_shutdown("flush", Duration::from_secs(1), || async {
                println!("case: hook ran");
            });
            return "returned";
        }
        if case == "a second signal with the only thread blocked" {
            // A hook that blocks the only thread (`minimal` is current_thread): the
            // listener's task never runs again, so the second signal must end the
            // process from its handler.
            on_shutdown("stuck", Duration::from_secs(30), || async {
                std::thread::sleep(Duration::from_secs(30));
            });
            first_request_done();
            std::thread::spawn(|| {
                std::thread::sleep(Duration::from_millis(100));
                // SAFETY: signalling this process.
                unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
                std::thread::sleep(Duration::from_millis(500));
                println!("case: sending SIGTERM again");
                // SAFETY: as above.
                unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
            });
            std::future::pending::<()>().await;
        }
        if case == "a second signal" {
            on_shutdown("slow flush", Duration::from_secs(30), || async {
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
            first_request_done();
            tokio::spawn(async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                raise(libc::SIGTERM);
                tokio::time::sleep(Duration::from_millis(300)).await;
                println!("case: sending SIGTERM again");
                raise(libc::SIGTERM);
            });
            // In-flight work the drain would wait 10 s for.
            draining().await;
            tokio::time::sleep(Duration::from_secs(30)).await;
            return "returned";
        }
        if case == "blocking work running" {
            // Blocking work still running when the drained body returns (a deferred
            // init stuck on the network, say): the program ends after the hooks, not
            // when that work does.
            tokio::task::spawn_blocking(|| {
                std::thread::sleep(Duration::from_secs(3));
                println!("case: blocking work finished");
            });
            on_shutdown("flush", Duration::from_secs(1), || async {
                println!("case: hook ran");
            });
            first_request_done();
            tokio::spawn(async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                raise(libc::SIGTERM);
            });
            draining().await;
            return "returned";
        }
        if case == "a drain in an accept loop" {
            on_shutdown("flush", Duration::from_secs(1), || async {
                println!("case: hook ran");
            });
            first_request_done();
            // An accept loop that selects on a new `draining()` each turn, and answers
            // each connection before the next turn: the signal comes while it answers,
            // with no `draining()` held. It still drains.
            let (connections, mut accept) = tokio::sync::mpsc::channel::<u8>(1);
            tokio::spawn(async move {
                let _ = connections.send(1).await;
                std::future::pending::<()>().await;
            });
            loop {
                tokio::select! {
                    () = draining() => break,
                    Some(_) = accept.recv() => {
                        raise(libc::SIGTERM);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        println!("case: in-flight work answered");
                    }
                }
            }
            return "returned";
        }
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
        if case == "no drain" {
            lifecycle::skip_drain();
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
            "in time" | "no drain" => Duration::from_millis(300),
            "too slow" => Duration::from_secs(5),
            other => panic!("no case `{other}`"),
        };
        tokio::time::sleep(in_flight).await;
        println!("case: in-flight work answered");
        "returned"
    });
    println!("case: block_on {returned}");
    if after {
        // The program's own work after the runtime (a `Builder` program's teardown):
        // a signal has its default effect again.
        // SAFETY: signalling this process.
        unsafe { libc::raise(libc::SIGINT) };
        std::thread::sleep(Duration::from_secs(2));
        println!("case: still running");
    }
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

/// Where the platform ends the process soon after its signal (Lambda), the body is
/// cancelled at the signal and the hooks run at once, even with work in flight that
/// would finish within the drain deadline.
#[test]
fn without_a_drain_the_hooks_run_at_the_signal() {
    let (stdout, stderr) = exits_with(0, "no drain", &[]);
    // The body may see the signal first and say it drains; it is cancelled all the same.
    let stdout = stdout.trim_start_matches("draining in state Draining\n");
    assert_eq!(stdout, "hook ran in state Draining\n", "{stderr}");
    assert!(!stderr.contains("drain deadline"), "{stderr}");
}

/// A body that polls a new `draining()` each turn of its accept loop, and drops it
/// while it answers a connection, drains: the signal that comes while it answers lets
/// it finish and return, it is not cancelled. (The first `draining()` it awaits marks
/// the body as one that drains, for the rest of the process.)
#[test]
fn a_body_that_drains_in_its_accept_loop_finishes_the_connection_it_answers() {
    let (stdout, stderr) = exits_with(0, "a drain in an accept loop", &[]);
    assert_eq!(
        stdout, "in-flight work answered\nhook ran\nblock_on returned\n",
        "{stderr}"
    );
}

#[test]
fn after_a_signal_the_program_ends_with_the_hooks_not_with_blocking_work() {
    let (stdout, stderr) = exits_with(0, "blocking work running", &[]);
    assert_eq!(stdout, "hook ran\nblock_on returned\n", "{stderr}");
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

/// A body cancelled at a signal is dropped before the hooks run, so a hook that waits
/// for what the body owned finishes.
#[test]
fn a_cancelled_body_is_dropped_before_the_hooks() {
    let (stdout, stderr) = exits_with(0, "a hook waits for what the body lets go", &[]);
    assert_eq!(stdout, "the writer finished\n", "{stderr}");
}

/// A second signal while the first drains and runs the hooks ends the process at once
/// with the signal's default effect (the drain and the hook would take 30 s each).
#[test]
fn a_second_signal_ends_the_process_at_once() {
    ends_at_a_second_sigterm("a second signal");
}

/// Runs `case`, which sends SIGTERM twice, and checks the second ended it, said.
fn ends_at_a_second_sigterm(case: &str) {
    use std::os::unix::process::ExitStatusExt;
    let out = child(case, &[]);
    let (stdout, stderr) = said(&out);
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{stdout}{stderr}");
    assert_eq!(stdout, "sending SIGTERM again\n", "{stderr}");
    assert!(
        stderr.contains("coldstart: SIGTERM again; ending now, without waiting for the shutdown"),
        "{stderr}"
    );
}

/// Also where the first signal's shutdown blocks the only thread, so that the
/// listener's task cannot run: the second is acted on in its handler. (It waited for
/// the 30 s hook, and exited 0.)
#[test]
fn a_second_signal_ends_the_process_though_the_only_thread_is_blocked() {
    ends_at_a_second_sigterm("a second signal with the only thread blocked");
}

/// Once `block_on` has returned, its hooks run, a signal has its default effect again:
/// tokio's handler stays for the life of the process and kept it, with nothing left
/// to read it (the program went on, and exited 0).
#[test]
fn after_block_on_a_signal_has_its_default_effect() {
    use std::os::unix::process::ExitStatusExt;
    let out = child("a signal after block_on", &[]);
    let (stdout, stderr) = said(&out);
    assert_eq!(out.status.signal(), Some(libc::SIGINT), "{stdout}{stderr}");
    assert_eq!(stdout, "hook ran\nblock_on returned\n", "{stderr}");
}

/// So does one after a signal the hold kept before any listener existed.
#[test]
fn a_second_signal_after_a_held_one_ends_the_process_at_once() {
    use std::os::unix::process::ExitStatusExt;
    let out = child("a second signal after a held one", &[]);
    let (stdout, stderr) = said(&out);
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{stdout}{stderr}");
    assert_eq!(stdout, "sending SIGTERM again\n", "{stderr}");
}

/// A signal the process was started with ignored stays ignored once hooks are
/// registered, as under `#[tokio::main]`.
#[test]
fn a_signal_ignored_at_start_stays_ignored() {
    let (stdout, stderr) = exits_with(0, "started with sigint ignored", &[]);
    assert_eq!(
        stdout, "still serving\nhook ran\nblock_on returned\n",
        "{stderr}"
    );
}

#[test]
fn a_bad_drain_deadline_is_named_with_what_is_accepted() {
    let (_, stderr) = exits_with(78, "in time", &[("COLDSTART_DRAIN_TIMEOUT", "soon")]);
    assert!(
        stderr.contains(
            "set COLDSTART_DRAIN_TIMEOUT to a duration, a whole number with `ms`, `s`, `m` or `h` (`10s`, `500ms`, `1m`), up to 1h, got `soon`"
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
