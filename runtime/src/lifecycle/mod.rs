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
//!
//! This file holds the states and the first response; `shutdown.rs` the hooks, the
//! drain and the end of `main`; `signals.rs` the handlers of SIGTERM and SIGINT, the
//! holds and their shared state, which a signal handler writes.

mod shutdown;
mod signals;

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use crate::timeline::{self, Phase};

pub use shutdown::{
    at_end_of_main, cap_hook_deadlines, draining, hook_cap, on_shutdown, shutdown_hooks, skip_drain,
};
pub(crate) use shutdown::{
    drain, end_of_main, run_shutdown_hooks, set_stop_code, shutdown_signal, signal_came, stop,
    stop_asked, stop_code,
};
pub(crate) use signals::give_back_default_signals;
pub use signals::{SignalHold, hold_signals_until_hooks};

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
    signals::MARK_PENDING.store(true, Ordering::Release);
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

/// `mutex` locked; a panic elsewhere while it was held does not stop the shutdown.
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
