//! The request lifecycle: starting, serving, first response done, draining.
//!
//! The first response is marked by [`first_request_done`] (called by the tower layer,
//! the Lambda integration, or the program), or by the fallback timer for programs that
//! never serve a request. Work given to [`after_first_request`] waits for that moment.
//! Hooks given to [`on_shutdown`] run on SIGTERM, SIGINT or the end of `main`.
//!
//! A body that awaits [`draining`] is told when a signal comes, stops accepting work
//! and returns once its in-flight requests are answered; it has the plan's drain
//! deadline to do so. The hooks run after it returns, so the telemetry flush carries
//! what the last requests recorded. A body that never awaits it is cancelled at the
//! signal, as before.
//!
//! Marking the first response is one atomic exchange and one wake-up; nothing here may
//! block or allocate on a request's path. Signal handlers are installed only when the
//! first shutdown hook is registered, or [`draining`] is awaited once the first
//! response is done: a program without either keeps the default signal behaviour and
//! pays nothing at start-up.
//!
//! Work that registers its hooks only after the first response (the telemetry
//! exporters) calls [`hold_signals_until_hooks`] before serving and releases the
//! [`SignalHold`] it gets once its hooks are registered: a signal in between is
//! held, not fatal, and the hooks run for it once all of them exist. The listener
//! itself (tokio's signal registry and its self-pipe) stays off the start path, where
//! it measured 1.07x to 1.26x, unless a hook is registered before serving: the Lambda
//! integration's, and the exporters' last Pushgateway push where pushes are set (a job
//! that pushes keeps its counts when stopped early).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
use std::sync::{Mutex, MutexGuard, Once, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use crate::timeline::{self, Phase};

/// Where the process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Before the body of `main` runs.
    Starting,
    /// The body runs; no response has completed yet.
    Serving,
    /// The first response has been sent (or the fallback timer fired).
    FirstResponseDone,
    /// A shutdown signal came, or `main` ended: in-flight work finishes (after a
    /// signal), then the shutdown hooks run.
    Draining,
}

/// What marked the first response done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A response was sent (tower layer, Lambda integration, or an explicit call).
    Response = 1,
    /// Nothing was served before the fallback timer fired.
    Fallback = 2,
}

/// The state only moves forward (`fetch_max`), in [`State`] order.
static STATE: AtomicU8 = AtomicU8::new(0);
/// 0 until the first response is marked, then the [`Trigger`]: the one atomic that
/// decides which caller marked it.
static TRIGGER: AtomicU8 = AtomicU8::new(0);
static FIRST: Notify = Notify::const_new();

const fn encode(state: State) -> u8 {
    state as u8
}

/// The current state.
///
/// ```
/// // Outside #[coldstart::main] nothing has started.
/// assert_eq!(coldstart_runtime::lifecycle::state(), coldstart_runtime::lifecycle::State::Starting);
/// ```
pub fn state() -> State {
    match STATE.load(Ordering::Acquire) {
        0 => State::Starting,
        1 => State::Serving,
        2 => State::FirstResponseDone,
        _ => State::Draining,
    }
}

fn advance(to: State) {
    STATE.fetch_max(encode(to), Ordering::AcqRel);
}

pub(crate) fn set_serving() {
    advance(State::Serving);
}

fn mark(trigger: Trigger) -> bool {
    if state() == State::Draining {
        return false;
    }
    let won = TRIGGER
        .compare_exchange(0, trigger as u8, Ordering::AcqRel, Ordering::Acquire)
        .is_ok();
    if won {
        coldstart_bootstrap::init::first_response_done();
        advance(State::FirstResponseDone);
        timeline::mark(Phase::FirstResponse);
        FIRST.notify_waiters();
    }
    won
}

/// Marks the first response as done: deferred work may start now. Only the first call
/// counts; it returns whether this call was it.
///
/// The tower layer calls this when a response body has been fully sent; call it
/// yourself when you serve by other means.
pub fn first_request_done() -> bool {
    mark(Trigger::Response)
}

/// What marked the first response done, once it is.
pub fn trigger() -> Option<Trigger> {
    match TRIGGER.load(Ordering::Acquire) {
        0 => None,
        t if t == Trigger::Fallback as u8 => Some(Trigger::Fallback),
        _ => Some(Trigger::Response),
    }
}

/// Says that the first response's body has ended and [`first_request_done`] will be
/// called as soon as the server's current poll returns. Signals are held from now on,
/// as after the first response: one that lands after the client has read the response
/// but before the mark waits for the telemetry's final flush instead of ending the
/// process without it.
#[cfg(feature = "tower")]
pub(crate) fn first_response_pending() {
    MARK_PENDING.store(true, Ordering::Release);
}

/// Whether the first response is done, or the shutdown has begun (from then on the
/// process is past serving its first request, whether or not it made one).
pub fn is_first_response_done() -> bool {
    matches!(state(), State::FirstResponseDone | State::Draining)
}

/// Resolves when the first response is done (at once if it already is), by a
/// response or the fallback timer; never when the shutdown began before either.
///
/// An init that runs before serving and awaits it waits for ever, unless something
/// else ends its wait: no request is served before those inits end, and the fallback
/// timer starts with serving. That is said on stderr, naming the init.
pub async fn first_response() {
    waits_for_first_response();
    first_response_marked().await;
}

/// Notes, for an init before serving being polled, that it began to wait for what
/// comes after the first response.
pub(crate) fn waits_for_first_response() {
    IN_TURN_INIT.with(|init| {
        if init.get().is_some() {
            init.set(Some(true));
        }
    });
}

/// [`first_response`], for coldstart's own waits.
async fn first_response_marked() {
    wait_until(&FIRST, || trigger().is_some()).await;
}

thread_local! {
    /// While an init before serving is polled, whether it awaited [`first_response`].
    static IN_TURN_INIT: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// Runs `poll`, the poll of an init before serving; with its result, whether the init
/// began to wait for the first response in it.
pub(crate) fn polling_init_before_serving<T>(poll: impl FnOnce() -> T) -> (T, bool) {
    let outer = IN_TURN_INIT.replace(Some(false));
    let polled = poll();
    let waited = IN_TURN_INIT.replace(outer) == Some(true);
    (polled, waited)
}

/// Resolves once `done()` holds, woken by `notify_waiters` on `notify`.
pub(crate) async fn wait_until(notify: &Notify, done: impl Fn() -> bool) {
    loop {
        // A `Notified` receives `notify_waiters` from the moment it is created, so
        // the condition is checked after creating it: no wake-up can be missed.
        let notified = notify.notified();
        if done() {
            return;
        }
        notified.await;
    }
}

/// Runs `work` on the runtime after the first response is done.
///
/// ```
/// use coldstart_runtime::{after_first_request, block_on, first_request_done};
/// # use coldstart_bootstrap::Settings;
/// // What `#[coldstart::main] async fn main()` runs:
/// block_on(&Settings::NONE, async {
///     let warm = after_first_request(async { "cache warmed" });
///     // ... the first request is served, and the server (or its layer) says so:
///     first_request_done();
///     assert_eq!(warm.await.unwrap(), "cache warmed");
/// });
/// ```
///
/// # Panics
///
/// Outside a tokio runtime, as `tokio::spawn` does.
#[track_caller]
pub fn after_first_request<F>(work: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    crate::task::spawn(async move {
        first_response_marked().await;
        work.await
    })
}

/// Starts the fallback timer: after `after`, the first response is marked done if
/// nothing else marked it.
pub(crate) fn start_fallback(after: Duration) {
    crate::task::spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(after) => { mark(Trigger::Fallback); }
            () = first_response_marked() => {}
        }
    });
}

type Hook = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

struct Registered {
    name: String,
    deadline: Duration,
    hook: Hook,
}

/// The hooks registered and not run yet; `None` once they have all run (a hook
/// registered later would never run).
static HOOKS: Mutex<Option<Vec<Registered>>> = Mutex::new(Some(Vec::new()));

/// `mutex` locked; a panic elsewhere while it was held does not stop the shutdown.
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
/// Set once tokio's signal listener is in place.
static LISTENING: AtomicBool = AtomicBool::new(false);
/// Set while tokio's signal listener is being installed.
static INSTALLING: AtomicBool = AtomicBool::new(false);
/// A signal `note` caught before the listener existed; 0 if none.
static HELD: AtomicI32 = AtomicI32::new(0);
/// The handlers of SIGTERM and SIGINT once the listener was in place (tokio's), where
/// it took them from their default disposition; 0 where it did not.
static TOKIO_HANDLERS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
/// The signals the listener has been sent, counted by `note` (which tokio's handler
/// calls first) once the listener exists or while it is being installed, and 1 from
/// the start where one came before it existed. Counted in the handler, before the
/// listener's task runs: [`signal_came`] reads it so.
static TAKEN: AtomicU32 = AtomicU32::new(0);
/// Set while a [`SignalHold`] is held (any of them).
static HOLDING: AtomicBool = AtomicBool::new(false);
/// How many [`SignalHold`]s are held: the signals are given back when the last one is
/// released, not the first (the exporters' and a program's own overlap).
static HOLDS: Mutex<usize> = Mutex::new(0);
/// Woken when a hold is released.
static RELEASED: Notify = Notify::const_new();
/// Set when the first response's body has ended and its mark is on its way: the tower
/// layer marks it only after the server's poll that writes it, so a client can read
/// the response before the mark. From here on a signal is held as after the first
/// response.
static MARK_PENDING: AtomicBool = AtomicBool::new(false);
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
fn signal_acted_on() -> bool {
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

/// Installs the handlers now, so that a signal arriving right after the first
/// registration already runs the hooks, and waits for them on a task. Under a hold
/// ([`hold_signals_until_hooks`]) a signal runs the hooks only once the hold is
/// released, so that every hook of the held work is registered by then. Only the
/// first call installs; a concurrent call returns once the listener is in place.
fn listen_for_signals() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once_force(|_| install_listener());
}

/// tokio sets up its signal handler before its listener subscribes: a signal in
/// between is taken by the handler and reaches no listener, and its default effect is
/// gone too, so the process would go on as if nothing had been sent. `note` is
/// installed first (where the disposition is still the default), and tokio's handler
/// calls the handler it replaces before its own work, so a signal in that window is
/// kept in `HELD` and acted on here once the listener exists.
fn install_listener() {
    use tokio::signal::unix::{SignalKind, signal};
    // Outside a runtime this panics (as documented) before any disposition changes;
    // a later call inside one installs.
    let _ = tokio::runtime::Handle::current();
    INSTALLING.store(true, Ordering::Release);
    let found = [libc::SIGTERM, libc::SIGINT].map(install_note);
    let [term_ignored, int_ignored] = found.map(|found| found == libc::SIG_IGN);
    // A signal the hold kept before this listener existed is acted on through
    // `take_held`, never seen by the listener: the next one the listener sees is the
    // second. Read before the listener's handlers exist, which see what comes after.
    let earlier = HELD.load(Ordering::Acquire) != 0 || signal_acted_on();
    if earlier {
        TAKEN.fetch_max(1, Ordering::AcqRel);
    }
    // A signal the process was started with ignored (`nohup`, a script's `cmd &`)
    // stays ignored, as under `#[tokio::main]`: tokio's handler would take it over.
    let listen = |ignored, kind| match ignored {
        true => Ok(None),
        false => signal(kind).map(Some),
    };
    let listeners = (
        listen(term_ignored, SignalKind::terminate()),
        listen(int_ignored, SignalKind::interrupt()),
    );
    let note_handler = note as extern "C" fn(libc::c_int) as libc::sighandler_t;
    let (Ok(mut term), Ok(mut int)) = listeners else {
        // One listener may have been made: its handler, tokio's, would take that
        // signal with nothing listening. The default comes back where it was the
        // default or `note`.
        for (signo, found) in [libc::SIGTERM, libc::SIGINT].into_iter().zip(found) {
            let now = disposition(signo);
            if (found == libc::SIG_DFL || found == note_handler)
                && now != found
                && now != note_handler
            {
                // SAFETY: restoring the default disposition.
                unsafe { libc::signal(signo, libc::SIG_DFL) };
            }
        }
        INSTALLING.store(false, Ordering::Release);
        coldstart_bootstrap::say!(
            "coldstart: cannot listen for SIGTERM/SIGINT; shutdown hooks run only at the end of main"
        );
        give_back_signals();
        return;
    };
    // The handler tokio installed over the default disposition (taken by `note` here
    // or by a hold's): given back when the runtime is done, where still in place
    // ([`give_back_default_signals`]).
    for ((handler, signo), found) in TOKIO_HANDLERS
        .iter()
        .zip([libc::SIGTERM, libc::SIGINT])
        .zip(found)
    {
        if found == libc::SIG_DFL || found == note_handler {
            handler.store(disposition(signo), Ordering::Release);
        }
    }
    LISTENING.store(true, Ordering::Release);
    INSTALLING.store(false, Ordering::Release);
    crate::task::spawn(async move {
        if !earlier {
            let first = next_signal(&mut term, &mut int).await;
            // A second signal, while the first waits for held work or the shutdown it
            // started runs, ends the process at once: the default effect a user
            // pressing Ctrl-C twice expects.
            tokio::select! {
                () = wait_for_held_work() => {}
                again = next_signal(&mut term, &mut int) => end_at_once(again),
            }
            signalled(first);
        }
        end_at_once(next_signal(&mut term, &mut int).await);
    });
    if !HOLDING.load(Ordering::Acquire) {
        take_held();
    } else if HELD.load(Ordering::Acquire) != 0 {
        // Caught before the listener could take it: acted on as the listener would.
        crate::task::spawn(async {
            wait_for_held_work().await;
            take_held();
        });
    }
}

/// The next SIGTERM or SIGINT of the streams there are.
async fn next_signal(
    term: &mut Option<tokio::signal::unix::Signal>,
    int: &mut Option<tokio::signal::unix::Signal>,
) -> libc::c_int {
    async fn recv(stream: &mut Option<tokio::signal::unix::Signal>) {
        // `None` only once tokio's driver is gone: nothing more will come.
        let received = match stream {
            Some(s) => s.recv().await,
            None => None,
        };
        if received.is_none() {
            std::future::pending::<()>().await;
        }
    }
    tokio::select! {
        () = recv(term) => libc::SIGTERM,
        () = recv(int) => libc::SIGINT,
    }
}

/// Gives SIGTERM and SIGINT their default disposition back where the listener took them
/// from it; for when the runtime is done with them, its hooks run. tokio's handler
/// stays installed for the life of the process, and with the runtime gone nothing
/// reads what it keeps: a Ctrl-C after `block_on` (a `Builder` program's own
/// teardown, or the wait for blocking work as the runtime is dropped) did nothing.
///
/// Only where tokio's handler is still the one installed: a handler the program put
/// in its place since (the `ctrlc` crate, say) stays. tokio installs its handler once
/// per process, so a `tokio::signal` listener made after this (a second runtime)
/// hears nothing: the signal has its default effect instead.
pub(crate) fn give_back_default_signals() {
    for (handler, signo) in TOKIO_HANDLERS.iter().zip([libc::SIGTERM, libc::SIGINT]) {
        let tokio = handler.swap(0, Ordering::AcqRel);
        if tokio != 0 && disposition(signo) == tokio {
            // SAFETY: restoring the default disposition.
            unsafe { libc::signal(signo, libc::SIG_DFL) };
        }
    }
}

/// Ends the process with `signo`'s default effect, now.
fn end_at_once(signo: libc::c_int) -> ! {
    let line = again_line(signo);
    coldstart_bootstrap::say!("{}", line.trim_end());
    default_effect(signo);
    // Not reached where the default effect ends the process; the shell's code if not.
    std::process::exit(128 + signo)
}

/// The line [`end_at_once`] says, from a signal handler: written only where stderr
/// takes it at once (a write to a full pipe would hold the handler, and the end with
/// it). Async-signal-safe: `poll` and `write`.
fn say_again(signo: libc::c_int) {
    let line = again_line(signo).as_bytes();
    let mut stderr = libc::pollfd {
        fd: libc::STDERR_FILENO,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: polling and writing fd 2 with a valid pollfd and buffer.
    unsafe {
        if libc::poll(&mut stderr, 1, 0) == 1 && stderr.revents & libc::POLLOUT != 0 {
            libc::write(libc::STDERR_FILENO, line.as_ptr().cast(), line.len());
        }
    }
}

/// The line a second signal is said with, ending in a newline.
fn again_line(signo: libc::c_int) -> &'static str {
    if signo == libc::SIGINT {
        "coldstart: SIGINT again; ending now, without waiting for the shutdown\n"
    } else {
        "coldstart: SIGTERM again; ending now, without waiting for the shutdown\n"
    }
}

/// Raises `signo` again with its default disposition: the effect it would have had
/// with nothing installed. Async-signal-safe.
fn default_effect(signo: libc::c_int) {
    // SAFETY: `signal` and `raise` are async-signal-safe; restoring the default
    // disposition and raising a signal this process was sent.
    unsafe {
        libc::signal(signo, libc::SIG_DFL);
        libc::raise(signo);
    }
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

/// Waits (at most [`RELEASE_WAIT`]) for a hold to be released. Only after the first
/// response: before it the held work has not started, so there is nothing to wait for.
async fn wait_for_held_work() {
    // `trigger`, not the state: a signal before the first response makes it `Draining`.
    if trigger().is_none() && !MARK_PENDING.load(Ordering::Acquire) {
        return;
    }
    let released = wait_until(&RELEASED, || !HOLDING.load(Ordering::Acquire));
    let _ = tokio::time::timeout(RELEASE_WAIT, released).await;
}

/// Records `signo` as the reason to shut down and wakes the waiters.
fn signalled(signo: i32) {
    advance(State::Draining);
    let _ = SIGNALLED.compare_exchange(0, signo as u8, Ordering::AcqRel, Ordering::Acquire);
    SHUTDOWN.notify_waiters();
}

/// Acts on a signal the hold caught, if there is one.
fn take_held() {
    let held = HELD.swap(0, Ordering::AcqRel);
    if held != 0 {
        signalled(held);
    }
}

/// Longest a signal waits for a hold to be released before the hooks run anyway.
const RELEASE_WAIT: Duration = Duration::from_secs(2);

/// Holds SIGTERM and SIGINT that arrive after the first response, for work that
/// registers its shutdown hooks only after the first response (the exporters' final
/// flush): instead of ending the process before the hooks exist, the signal runs them
/// once the hold is released, saying they are registered. Before the first response a
/// signal keeps its default effect; from the moment the tower layer sees the first
/// response's body end it is held, since the mark follows the server's write. Only a
/// signal whose disposition is still the default is held: a handler or an ignore set
/// before is left as it is, and a handler installed after (tokio's, say) takes the
/// signal over. The first hold costs two `sigaction` calls per signal; call it before
/// serving.
///
/// Holds add up: with several (the exporters' and a program's own), a signal waits
/// for the last to be released.
///
/// ```no_run
/// # async fn start_uploader() {}
/// # async fn body() {
/// let hold = coldstart_runtime::lifecycle::hold_signals_until_hooks();
/// coldstart_runtime::after_first_request(async move {
///     start_uploader().await;
///     coldstart_runtime::on_shutdown("upload", std::time::Duration::from_secs(2), || async {
///         // the last upload
///     });
///     // The hook exists: a signal held until now runs it.
///     hold.release();
/// });
/// # }
/// ```
pub fn hold_signals_until_hooks() -> SignalHold {
    let mut holds = locked(&HOLDS);
    *holds += 1;
    if *holds == 1 {
        HOLDING.store(true, Ordering::Release);
        // With the listener in place (a hook registered before serving), it waits for
        // the release itself; `note` is only for a process without one yet.
        if !LISTENING.load(Ordering::Acquire) {
            for signo in [libc::SIGTERM, libc::SIGINT] {
                install_note(signo);
            }
        }
    }
    SignalHold(())
}

/// A hold of SIGTERM and SIGINT ([`hold_signals_until_hooks`]), released when dropped
/// (also when the work that holds it panics) or by [`SignalHold::release`]: release
/// it once the held work has registered its hooks, or found it had none to register.
#[must_use = "the hold ends when this is dropped"]
#[derive(Debug)]
pub struct SignalHold(());

impl SignalHold {
    /// Ends this hold. Once no other is held, the default disposition comes back
    /// where `note` is still installed, and a held signal takes its effect now,
    /// running the hooks if a listener exists, as the default signal would otherwise.
    pub fn release(self) {}
}

impl Drop for SignalHold {
    fn drop(&mut self) {
        let mut holds = locked(&HOLDS);
        *holds = holds.saturating_sub(1);
        if *holds == 0 {
            give_back_signals();
        }
    }
}

/// Installs `note` for `signo` where its disposition is still the default; the
/// disposition it found.
fn install_note(signo: libc::c_int) -> libc::sighandler_t {
    let found = disposition(signo);
    if found != libc::SIG_DFL {
        return found;
    }
    // SAFETY: setting a disposition with a valid pointer; `note` only does
    // async-signal-safe things (atomics, `sigaction`, `signal`, `raise`, `poll`,
    // `write`).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = note as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signo, &action, std::ptr::null_mut());
    }
    found
}

/// The disposition of `signo`: `SIG_DFL`, `SIG_IGN` or a handler.
fn disposition(signo: libc::c_int) -> libc::sighandler_t {
    // SAFETY: reading the disposition into a valid sigaction; async-signal-safe.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signo, std::ptr::null(), &mut current);
        current.sa_sigaction
    }
}

/// Whether `note` is the installed handler of `signo`.
fn holds(signo: libc::c_int) -> bool {
    disposition(signo) == note as extern "C" fn(libc::c_int) as libc::sighandler_t
}

/// The handler of a hold, and of the listener's installation. tokio's registry keeps
/// the handler it replaces and calls it first: when `note` is not the installed
/// handler, the signal belongs to tokio's handler, which keeps it once its listener
/// exists; while coldstart's listener is being installed it may not, so the signal is
/// kept here too (acting on it twice is the same as once). Once the listener exists,
/// the second signal it is sent ends the process here.
extern "C" fn note(signo: libc::c_int) {
    if LISTENING.load(Ordering::Acquire) {
        // The listener takes the first signal. A second ends the process here, in the
        // handler: the listener's task may never run again (a hook or a body blocking
        // the only thread under `current_thread`), nor its line be written (stderr
        // held by a stalled reader).
        if TAKEN.fetch_add(1, Ordering::AcqRel) >= 1 {
            say_again(signo);
            default_effect(signo);
        }
        return;
    }
    // The listener is being installed because a hook is registered: the signal is
    // kept and acted on once it exists, whether `note` is still the handler or
    // tokio's now calls it first (before the first response too: the hooks run).
    if INSTALLING.load(Ordering::Acquire) {
        HELD.store(signo, Ordering::Release);
        // Counted for the listener: the next signal is a second one.
        TAKEN.fetch_add(1, Ordering::AcqRel);
        return;
    }
    if !holds(signo) {
        return;
    }
    // Held, unless one is held already: a second signal takes its default effect.
    // Only once a first response (or the fallback) came: `trigger`, not the state,
    // which the end of `main` makes `Draining` with no response at all.
    if (trigger().is_some() || MARK_PENDING.load(Ordering::Acquire))
        && HELD
            .compare_exchange(0, signo, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    {
        // The hold may have ended between the check above and the store: then its
        // release looked at `HELD` already, found nothing, and gave the disposition
        // back. Taken back (unless taken already) and raised again, for the
        // disposition now in place, once this handler returns. Where the listener is
        // coming instead, it reads `HELD` itself.
        let listener = LISTENING.load(Ordering::Acquire) || INSTALLING.load(Ordering::Acquire);
        if !holds(signo)
            && !listener
            && HELD
                .compare_exchange(signo, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // SAFETY: raise(3) is async-signal-safe; the signal is blocked while its
            // handler runs, and delivered to the disposition in place once it returns.
            unsafe { libc::raise(signo) };
        }
        return;
    }
    // Before the first response, or a second signal: the default effect, as if nothing
    // had been installed.
    default_effect(signo);
}

/// Where `note` is still installed the default disposition comes back; a held
/// signal is acted on by the listener if there is one, else raised with its default
/// effect.
fn give_back_signals() {
    for signo in [libc::SIGTERM, libc::SIGINT] {
        if holds(signo) {
            // SAFETY: restoring the default disposition.
            unsafe { libc::signal(signo, libc::SIG_DFL) };
        }
    }
    HOLDING.store(false, Ordering::Release);
    RELEASED.notify_waiters();
    if LISTENING.load(Ordering::Acquire) {
        take_held();
        return;
    }
    let held = HELD.swap(0, Ordering::AcqRel);
    if held != 0 {
        // SAFETY: raising a signal this process was sent, now with its default effect.
        unsafe { libc::raise(held) };
    }
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
