//! The work after the first response, taking turns with the end of `main`: one
//! deferred init at a time either starts before the end of `main` (which then waits
//! for it where it runs on a thread of its own) or not at all; and
//! [`deferred_done`], which resolves once all of it is finished.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use crate::lifecycle;

static DEFERRED_DONE: Notify = Notify::const_new();
pub(super) static DEFERRED_FINISHED: AtomicBool = AtomicBool::new(false);

/// Resolves when the work after the first response is finished: deferred inits have
/// run and the profile (if asked for) is written. A readiness check can wait on it.
/// In a `#[coldstart::test]`, where no init runs, it resolves at once. After a signal,
/// or a `fatal` deferred init's failure, the deferred inits not yet started do not run,
/// and it never resolves: do not await it in a shutdown hook.
pub async fn deferred_done() {
    // Awaited by an init before serving, it waits for ever too: said as for
    // `first_response`.
    lifecycle::waits_for_first_response();
    waits_in_deferred_init();
    lifecycle::wait_until(&DEFERRED_DONE, || DEFERRED_FINISHED.load(Ordering::Acquire)).await;
}

thread_local! {
    /// While a deferred init runs (each poll of an async one, the whole of one on its
    /// thread), its name.
    static IN_DEFERRED_INIT: std::cell::Cell<Option<&'static str>> =
        const { std::cell::Cell::new(None) };
}

/// Runs `work` as the deferred init `name`, for [`waits_in_deferred_init`].
pub(super) fn as_deferred_init<T>(name: &'static str, work: impl FnOnce() -> T) -> T {
    let outer = IN_DEFERRED_INIT.replace(Some(name));
    let done = work();
    IN_DEFERRED_INIT.set(outer);
    done
}

/// Says, once, that a deferred init waits for [`deferred_done`]: that comes only after
/// the deferred inits, this one among them, have ended, so the wait has no end; the
/// inits after it never start, and one on a thread of its own holds the end of `main`.
fn waits_in_deferred_init() {
    static SAID: AtomicBool = AtomicBool::new(false);
    if let Some(name) = IN_DEFERRED_INIT.get()
        && !SAID.swap(true, Ordering::Relaxed)
    {
        coldstart_bootstrap::say!(
            "coldstart: deferred init `{name}` waits for deferred_done(), which comes only after the deferred inits, this one among them, have ended: spawn the wait (tokio::spawn) instead"
        );
    }
}

/// Says the work after the first response is finished: [`deferred_done`] resolves.
pub(crate) fn finish_deferred() {
    DEFERRED_FINISHED.store(true, Ordering::Release);
    DEFERRED_DONE.notify_waiters();
}

/// Where the deferred inits are, as the end of `main` sees them. One lock for both, so
/// that an init either starts before the end of `main` (which then waits for it, when
/// it runs on a thread) or not at all.
struct Turn {
    /// `main` has ended and its hooks have run: no deferred init starts after.
    main_ended: bool,
    /// A deferred init runs on a thread of its own, until its outcome is taken.
    in_thread: bool,
}

static TURN: Mutex<Turn> = Mutex::new(Turn {
    main_ended: false,
    in_thread: false,
});
static TURN_OVER: Notify = Notify::const_new();

fn turn() -> MutexGuard<'static, Turn> {
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The end of `main`, once its hooks have run: no further deferred init starts, and
/// the one running on a thread of its own (as `#[tokio::main]` waits for its blocking
/// pool) is waited for, its outcome taken (a fatal one's exit code), while the runtime
/// still runs. That thread is inside the runtime and may wait on it (a timer, a task
/// it spawned), which nothing would drive once `block_on` has returned on
/// `current_thread`. One that runs on the runtime is cancelled with it, as a task is;
/// on `multi_thread` it may end first, its failure then stopping nothing (see
/// `run_after_first_response`).
pub(crate) async fn end_deferred() {
    turn().main_ended = true;
    lifecycle::wait_until(&TURN_OVER, || !turn().in_thread).await;
}

/// Whether the end of `main` has come (see [`end_deferred`]).
pub(super) fn main_ended() -> bool {
    turn().main_ended
}

/// Whether the next deferred init may start (it does, `in_thread` or not): not after
/// a signal or the end of `main`.
pub(super) fn begin_deferred(in_thread: bool) -> bool {
    let mut turn = turn();
    if lifecycle::stop_asked() || turn.main_ended {
        return false;
    }
    turn.in_thread = in_thread;
    true
}

/// The deferred init that ran is over, its outcome taken.
pub(super) fn end_of_turn() {
    turn().in_thread = false;
    TURN_OVER.notify_waiters();
}
