//! The registrations the order places before serving: the statics it sets apart,
//! each on a thread of its own, and the rest in turn meanwhile on the thread that
//! runs `block_on` (the main thread under `#[coldstart::main]`); then their records,
//! and the end of start-up where one failed (a static apart that fails stops what
//! runs in turn at its next step). A signal a hook takes stops what runs in turn and
//! is never held back by what waits.

use std::panic::catch_unwind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use coldstart_bootstrap::init::{Failure, ON_INIT_FAILURE};

use super::{EXIT_INIT, ORDER, Ran, failure, ran, run_blocking, run_in_turn};
use crate::lifecycle;
use crate::stopwatch::Stopwatch;

/// Set when a static running apart fails: what runs in turn stops at its next step,
/// as it would have had they run one after the other.
static APART_FAILED: AtomicBool = AtomicBool::new(false);

/// Runs what the order places before serving: the statics it sets apart each on a
/// thread of its own, the rest in order on this thread meanwhile, then waits for all. On
/// a failure, tells the failure hooks and ends the program with [`EXIT_INIT`] once
/// what runs apart has finished (it cannot be stopped; had they run one after the
/// other, the failure would have come after it too), naming the first failure in the
/// order; unless a signal a hook takes came meanwhile: then the failure is said and
/// the program stops as the signal asked (its hooks, exit 0), the failure hooks not
/// called.
pub(crate) async fn run_before_serving() {
    let Some((order, _)) = ORDER.get() else {
        return;
    };
    let (apart, in_turn) = order.before.split_at(order.apart);
    // Started first: they are the longest, and their threads run them while this
    // thread gets on with the rest. Each is timed on its own thread. Threads of
    // coldstart's own, not tokio's blocking pool, whose spawn panics where no thread
    // can be made (the process ended with 101); each then runs here, at once.
    let started: Vec<_> = apart
        .iter()
        .map(|&r| {
            crate::task::begin(r.name, move || {
                let start = Instant::now();
                let outcome = run_blocking(r);
                if outcome.is_err() {
                    APART_FAILED.store(true, Ordering::Relaxed);
                }
                (outcome, start.elapsed())
            })
        })
        .collect();
    // Recorded together at the end: one lock, not one per registration. Those that
    // ran apart go in front once they finish.
    let mut done = Vec::with_capacity(order.before.len());
    // Timed by a stopwatch: for many registrations a counter read each, not a clock
    // read (see `stopwatch`). Each one's end is the next one's start, and the records
    // hold the stopwatch's units until it stops.
    let mut watch = Stopwatch::start(in_turn.len());
    for r in in_turn {
        // After a signal (a hook registered by an earlier init, or by the telemetry,
        // took it) the program stops: the rest would only hold its hooks back.
        if APART_FAILED.load(Ordering::Relaxed) || lifecycle::signal_came() {
            break;
        }
        // An async init that waits (a database that does not answer) is left where
        // it waits when a signal comes: it would hold the hooks back for as long.
        // Not recorded: the records are what ran to its end.
        let outcome = tokio::select! {
            biased;
            outcome = run_in_turn(r) => outcome,
            _ = lifecycle::shutdown_signal() => break,
        };
        let failed = outcome.is_err();
        done.push(Ran {
            nanos: watch.lap(),
            outcome,
        });
        if failed {
            break;
        }
    }
    let scale = watch.stop();
    for ran in &mut done {
        ran.nanos = scale.nanos(ran.nanos);
    }
    // What runs apart cannot be stopped: a failure waits for it to finish. After a
    // signal nothing waits for its outcome (no body runs, no profile is written), so
    // one still running is left to its thread, as an async init is left where it
    // waits, and the records end before it.
    let mut ran_apart = Vec::with_capacity(started.len());
    let mut every_apart = true;
    for (begun, r) in started.into_iter().zip(apart) {
        let (outcome, took) = tokio::select! {
            biased;
            finished = begun.finish() => finished,
            _ = lifecycle::shutdown_signal() => {
                every_apart = false;
                break;
            }
        };
        ran_apart.push(Ran::timed(
            took,
            outcome.map_err(|(error, panicked)| failure(r, error, panicked)),
        ));
    }
    // All that ran apart, then what ran in turn up to a failure: a prefix of the
    // order, as the records must be (without what ran in turn where one apart was
    // left running).
    let recorded = if every_apart {
        ran_apart.len() + done.len()
    } else {
        ran_apart.len()
    };
    if !ran_apart.is_empty() {
        done.splice(0..0, ran_apart);
    }
    let mut failures = done
        .iter()
        .filter_map(|ran| ran.outcome.as_ref().err().cloned());
    let failure = failures.next();
    // The first stops start-up and goes to the hooks; any other is said too, or an
    // in-turn init's `Err`, which no panic hook prints, would never be seen.
    let others: Vec<_> = failures.collect();
    done.truncate(recorded);
    record(done);
    // A signal the handler counted, whose listener task has not run yet (on
    // `current_thread`, an init held the one thread): waited for, so that what comes
    // next (no body) follows it.
    if lifecycle::signal_came() && !lifecycle::stop_asked() {
        let _ = tokio::time::timeout(Duration::from_secs(2), lifecycle::shutdown_signal()).await;
    }
    if let Some(failure) = failure {
        if lifecycle::signal_came() {
            // A signal came while the inits ran: the program stops as it asked (the
            // hooks run, exit 0), and the failure is said.
            for failure in std::iter::once(&failure).chain(&others) {
                coldstart_bootstrap::say!("coldstart: {failure}, while stopping at a signal");
            }
            return;
        }
        for other in &others {
            coldstart_bootstrap::say!("coldstart: {other}, at the same start-up");
        }
        fail_start_up(&failure);
    }
}

/// Adds what ran before serving to the records; moved, not copied, when they are
/// empty (as they are on the start-up path).
fn record(mut done: Vec<Ran>) {
    let before = &mut ran().before;
    if before.is_empty() {
        *before = done;
    } else {
        before.append(&mut done);
    }
}

fn fail_start_up(failure: &Failure) -> ! {
    let message = format!("{failure}; start-up stopped");
    coldstart_bootstrap::say!("coldstart: {message}");
    coldstart_bootstrap::failure::report(coldstart_bootstrap::failure::Cause::Init, &message);
    for hook in ON_INIT_FAILURE {
        if catch_unwind(|| hook(failure)).is_err() {
            coldstart_bootstrap::say!("coldstart: an init-failure hook panicked");
        }
    }
    std::process::exit(EXIT_INIT)
}
