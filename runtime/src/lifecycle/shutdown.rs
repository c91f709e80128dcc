//! The shutdown: the hooks run at SIGTERM, SIGINT, [`stop`] or the end of `main`,
//! the drain of a body that awaits [`draining`], and the cap a platform puts on the
//! hooks.
//!
//! `SIGNALLED` is the one reason to stop: 0 while running, the signal's number once
//! one is acted on, [`STOPPED`] for [`stop`]; the first writer wins and it never goes
//! back to 0. Nothing here runs in a signal handler: the signals module acts on a
//! signal here from the listener's task, its installation or a hold's release.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

#[cfg(doc)]
use super::signals::RELEASE_WAIT;
use super::signals::{TAKEN, listen_for_signals, wait_for_held_work};
use super::{State, advance, first_response_marked, locked, wait_until};

type Hook = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

struct Registered {
    name: String,
    deadline: Duration,
    hook: Hook,
}

/// The hooks registered and not run yet; `None` once they have all run (a hook
/// registered later would never run).
static HOOKS: Mutex<Option<Vec<Registered>>> = Mutex::new(Some(Vec::new()));

static SHUTDOWN: Notify = Notify::const_new();
static SIGNALLED: AtomicU8 = AtomicU8::new(0);
/// The exit code after the hooks when the program was stopped by [`stop`].
static STOP_CODE: AtomicI32 = AtomicI32::new(0);

/// Stops the program as a signal would: the body is cancelled, the shutdown hooks
/// run, and the process exits with `code`.
/// Like a signal, it waits (at most [`RELEASE_WAIT`]) for a hold to be released, so
/// that the held work's hooks (the final span flush) are registered before the hooks
/// run.
pub(crate) async fn stop(code: i32) {
    set_stop_code(code);
    wait_for_held_work().await;
    advance(State::Draining);
    // Not a real signal number: any non-zero value ends `shutdown_signal`.
    let _ = SIGNALLED.compare_exchange(0, STOPPED, Ordering::AcqRel, Ordering::Acquire);
    SHUTDOWN.notify_waiters();
}

/// The exit code [`stop`] gives, set before it waits for anything.
pub(crate) fn set_stop_code(code: i32) {
    // After a signal the program exits 0 once the hooks are done, whatever fails
    // while it stops (a fatal deferred init whose pool a hook closed, say).
    if !stop_asked() {
        STOP_CODE.store(code, Ordering::Release);
    }
}

/// The exit code for a program ended by a signal (0) or by [`stop`].
pub(crate) fn stop_code() -> i32 {
    STOP_CODE.load(Ordering::Acquire)
}

/// Whether the program was asked to stop: a signal, or [`stop`].
pub(crate) fn stop_asked() -> bool {
    SIGNALLED.load(Ordering::Acquire) != 0
}

/// What [`stop`] stores in `SIGNALLED`: no signal's number.
const STOPPED: u8 = u8::MAX;

/// Whether a real signal has been acted on (not a [`stop`], which no signal made: a
/// listener installed after one still takes the first signal as the first).
pub(super) fn signal_acted_on() -> bool {
    !matches!(SIGNALLED.load(Ordering::Acquire), 0 | STOPPED)
}

/// Whether a SIGTERM or SIGINT has come that a shutdown hook takes: [`stop_asked`], or
/// one the signal handler counted for the listener, whose task may not have run yet
/// (on `current_thread`, not while a blocking init holds the one thread).
pub(crate) fn signal_came() -> bool {
    stop_asked() || TAKEN.load(Ordering::Acquire) > 0
}

/// Registers a hook that runs on SIGTERM, SIGINT or the end of `main`, and may take at
/// most `deadline`. Hooks run concurrently; the program ends when all have finished or
/// passed their deadline. After a signal the program exits with code 0 once the hooks
/// are done; a program with no hooks keeps the default signal behaviour. The deadline
/// can only cut a hook off where it awaits: a hook that blocks its thread (a
/// synchronous write, a `std::thread::sleep`) should do that work in
/// `tokio::task::spawn_blocking` and await it. A panic in the body of `main` runs the
/// hooks too, before it goes on. A hook registered while the hooks run (by another
/// hook, or by deferred work still running) runs after them; one registered once they
/// have all run does not run, and that is said in one line.
///
/// ```
/// use std::time::Duration;
/// use coldstart_runtime::{block_on, on_shutdown};
/// # use coldstart_bootstrap::Settings;
/// block_on(&Settings::NONE, async {
///     on_shutdown("flush", Duration::from_secs(2), || async {
///         eprintln!("flushing");
///     });
/// }); // the hook runs as the body ends
/// ```
///
/// # Panics
///
/// The first registration must happen inside the runtime (it starts the signal
/// listener there).
pub fn on_shutdown<F, Fut>(name: impl Into<String>, deadline: Duration, hook: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let hook: Hook = Box::new(move || Box::pin(hook()));
    let registered = Registered {
        name: name.into(),
        deadline,
        hook,
    };
    match locked(&HOOKS).as_mut() {
        Some(hooks) => hooks.push(registered),
        None => {
            coldstart_bootstrap::say!(
                "coldstart: shutdown hook `{}` was registered after the shutdown hooks ran; it does not run",
                registered.name
            );
            return;
        }
    }
    listen_for_signals();
}

/// How many shutdown hooks are registered now.
pub fn shutdown_hooks() -> usize {
    locked(&HOOKS).as_ref().map_or(0, Vec::len)
}

/// Work for the end of `main`, before the shutdown hooks ([`at_end_of_main`]); `None`
/// once the end of `main` has come.
static AT_END: Mutex<Option<Vec<Work>>> = Mutex::new(Some(Vec::new()));

type Work = fn();

/// Runs `work` once the body of `main` has ended (returned, panicked or stopped by a
/// signal), before the shutdown hooks run: where work that was to start after the
/// first response, and did not, registers the hooks of what it must not lose (the
/// telemetry's final flush and push, for a program that ended before its first
/// response). Registering installs nothing and costs one push. Work registered once
/// the end of `main` has come runs at once.
pub fn at_end_of_main(work: fn()) {
    // Run with the lock let go: the work may register work of its own.
    let late = locked(&AT_END)
        .as_mut()
        .map(|waiting| waiting.push(work))
        .is_none();
    if late {
        run_at_end(work);
    }
}

fn run_at_end(work: fn()) {
    if std::panic::catch_unwind(work).is_err() {
        coldstart_bootstrap::say!("coldstart: work at the end of main panicked");
    }
}

/// The end of `main`: the [`at_end_of_main`] work, then (as for a signal) a wait for
/// held work that has started to register its hooks.
pub(crate) async fn end_of_main() {
    let work = locked(&AT_END).take().unwrap_or_default();
    for w in work {
        run_at_end(w);
    }
    wait_for_held_work().await;
}

/// Records `signo` as the reason to shut down and wakes the waiters.
pub(super) fn signalled(signo: i32) {
    advance(State::Draining);
    let _ = SIGNALLED.compare_exchange(0, signo as u8, Ordering::AcqRel, Ordering::Acquire);
    SHUTDOWN.notify_waiters();
}

/// Set once the body awaits [`draining`]: a signal then lets it finish instead of
/// cancelling it.
static DRAINS: AtomicBool = AtomicBool::new(false);

/// Resolves when the program is asked to stop (SIGTERM, SIGINT, or a deferred init
/// that must stop it): the moment to stop accepting work, finish what is in flight,
/// and return from the body. Awaiting it tells `#[coldstart::main]` that the body
/// drains: after the signal the body has the plan's drain deadline
/// (`COLDSTART_DRAIN_TIMEOUT`, default 10 s) to return before it is cancelled, and the
/// shutdown hooks (the telemetry flush) run once it has returned. Where drains are
/// skipped ([`skip_drain`], on Lambda), the body is cancelled at the signal. The mark
/// stays for the rest of the process: an accept loop that selects on a new
/// `draining()` each turn holds none while it answers a connection, and still drains
/// (so does a body that awaited it once and gave it up: it has the deadline too).
///
/// Give it to the server's graceful shutdown, as `axum::serve(..)
/// .with_graceful_shutdown(coldstart::draining())` or hyper-util's `GracefulShutdown`.
///
/// The signal listener is installed after the first response, off the start path: a
/// signal before the first response keeps its default effect (the process ends), as it
/// does without coldstart, unless a hook was registered before serving (on Lambda, or
/// with Pushgateway pushes set): then the hooks run at once.
///
/// ```no_run
/// # async fn serve_until(stop: impl std::future::Future<Output = ()>) {}
/// # coldstart_runtime::block_on(&coldstart_bootstrap::Settings::NONE, async {
/// // The server stops accepting at SIGTERM and returns once its requests are answered.
/// serve_until(coldstart_runtime::lifecycle::draining()).await;
/// # });
/// ```
pub async fn draining() {
    DRAINS.store(true, Ordering::Release);
    tokio::select! {
        () = first_response_marked() => {}
        _ = shutdown_signal() => return,
    }
    listen_for_signals();
    shutdown_signal().await;
}

/// Lets a body that awaits [`draining`] finish within `deadline` once the signal has
/// come: its output, or `None` when it does not await it, drains are skipped
/// ([`skip_drain`]) or it runs out of time (it is cancelled then, with a line on
/// stderr).
pub(crate) async fn drain<F: Future>(body: Pin<&mut F>, deadline: Duration) -> Option<F::Output> {
    if !DRAINS.load(Ordering::Acquire) || NO_DRAIN.load(Ordering::Acquire) {
        return None;
    }
    let drained = tokio::time::timeout(deadline, body).await.ok();
    if drained.is_none() {
        coldstart_bootstrap::say!(
            "coldstart: in-flight work did not finish within the drain deadline of {deadline:?} \
             (COLDSTART_DRAIN_TIMEOUT); cancelling it"
        );
    }
    drained
}

/// Resolves with the signal number when a shutdown signal arrives.
pub(crate) async fn shutdown_signal() -> i32 {
    wait_until(&SHUTDOWN, || SIGNALLED.load(Ordering::Acquire) != 0).await;
    i32::from(SIGNALLED.load(Ordering::Acquire))
}

static NO_DRAIN: AtomicBool = AtomicBool::new(false);

/// After a signal, the body is cancelled at once, even one that awaits [`draining`]:
/// for a platform that signals only a process with nothing in flight, and ends it
/// soon after (Lambda sends SIGTERM to an idle environment, and stops it 500 ms
/// later). A drain there would wait on the runtime's own `/next`, which never
/// answers, and the hooks would never run. coldstart's Lambda integration sets it.
pub fn skip_drain() {
    NO_DRAIN.store(true, Ordering::Release);
}

/// The longest the shutdown hooks may take, all rounds together, whatever their own
/// deadlines: set where the platform ends the process soon after its signal
/// (Lambda, 500 ms after SIGTERM).
static HOOK_CAP_MS: AtomicU64 = AtomicU64::new(u64::MAX);

/// Caps the shutdown hooks at `cap` from the moment they start, all of them
/// together: a hook whose own deadline is longer, or one registered by a hook while
/// they run, gets what is left. A hook cut there is said, as one past its own
/// deadline is. coldstart's Lambda integration sets it to what Lambda allows after
/// SIGTERM.
pub fn cap_hook_deadlines(cap: Duration) {
    let ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
    HOOK_CAP_MS.fetch_min(ms, Ordering::AcqRel);
}

/// The cap [`cap_hook_deadlines`] set, `Duration::MAX` where none is: what a hook
/// that plans its own work (the telemetry's final flush) has at most.
pub fn hook_cap() -> Duration {
    match HOOK_CAP_MS.load(Ordering::Acquire) {
        u64::MAX => Duration::MAX,
        ms => Duration::from_millis(ms),
    }
}

/// Runs every registered hook, each within its deadline (and all within the cap, if
/// one is set), and reports on stderr the ones that failed to finish in time.
pub(crate) async fn run_shutdown_hooks() {
    advance(State::Draining);
    // One end for every round: a hook that registers another does not extend it.
    let capped = tokio::time::Instant::now()
        .checked_add(Duration::from_millis(HOOK_CAP_MS.load(Ordering::Acquire)));
    // Rounds, until none is left: a hook (or deferred work still running) may
    // register another while the hooks run.
    loop {
        let hooks = {
            let mut hooks = locked(&HOOKS);
            match hooks.as_mut() {
                Some(list) if !list.is_empty() => std::mem::take(list),
                // None left (or run already): later registrations are refused.
                _ => {
                    *hooks = None;
                    return;
                }
            }
        };
        let running: Vec<_> = hooks
            .into_iter()
            .map(|r| {
                let now = tokio::time::Instant::now();
                let left = capped.map_or(r.deadline, |end| end.saturating_duration_since(now));
                let (hook, own) = (r.hook, r.deadline);
                let deadline = own.min(left);
                // Called on its task: a hook that panics before it returns its future
                // (a poisoned lock, say) is said, and the others still run. Its own
                // deadline counts from when it first runs, as the flush hooks count
                // their budgets; the cap's end is the same for all, whenever each
                // first runs (a hook before it that blocks `current_thread` must not
                // move it).
                let task = crate::task::spawn(async move {
                    // The earlier of the two; neither where neither fits the clock.
                    let own_end = tokio::time::Instant::now().checked_add(own);
                    match own_end.into_iter().chain(capped).min() {
                        Some(end) => tokio::time::timeout_at(end, hook()).await.is_ok(),
                        None => {
                            hook().await;
                            true
                        }
                    }
                });
                (r.name, deadline, task)
            })
            .collect();
        // Said in the order the hooks were registered, whenever each ended.
        for (name, deadline, task) in running {
            match task.await {
                Ok(true) => {}
                Ok(false) => {
                    coldstart_bootstrap::say!(
                        "coldstart: shutdown hook `{name}` did not finish within {deadline:?}"
                    )
                }
                Err(e) => {
                    coldstart_bootstrap::say!("coldstart: shutdown hook `{name}` panicked: {e}")
                }
            }
        }
    }
}
