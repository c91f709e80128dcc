//! Catching a panic where it would otherwise unwind through the runtime: a future
//! polled under `catch_unwind`, and a panic's message as text.

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

/// Polls `future`, returning its output, or the payload of a panic while it was
/// polled (it is not polled again).
pub async fn caught<F: Future>(future: F) -> std::thread::Result<F::Output> {
    polled_catching(future, None).await
}

/// [`caught`], for a place that may panic at every call for a reason outside the
/// program, such as a third-party client on a peer's bad answer: the panic hook
/// (Rust's own prints the message and where) hears of the first panic there, and
/// after that of none, so that a peer answering the same way does not make a line
/// per call. The caller says what it caught, rate-limited. `said` is the place's
/// own flag: set once a panic there has reached the hook.
///
/// The first call puts a hook around the program's own (the one in place then) that
/// passes on every other panic. A hook the program sets later replaces it and hears
/// of every panic again, unless it calls the hook it replaced.
pub async fn caught_said_once<F: Future>(
    said: &'static AtomicBool,
    future: F,
) -> std::thread::Result<F::Output> {
    static AROUND: Once = Once::new();
    AROUND.call_once(|| {
        let program_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // One panic per poll at most: a second one (a drop that panics while the
            // first unwinds, which aborts the process) is heard of.
            if !HUSHED.replace(false) {
                program_hook(info);
            }
        }));
    });
    polled_catching(future, Some(said)).await
}

async fn polled_catching<F: Future>(
    future: F,
    said: Option<&'static AtomicBool>,
) -> std::thread::Result<F::Output> {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(move |cx| {
        // Polls may run on any worker thread: the flag is set around each, and only
        // for a place that has one (`caught` polls the body of `main`, often).
        let outer = said.map(|said| HUSHED.replace(said.load(Ordering::Acquire)));
        let polled = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)));
        if let Some(outer) = outer {
            HUSHED.set(outer);
        }
        match polled {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => {
                if let Some(said) = said {
                    said.store(true, Ordering::Release);
                }
                Poll::Ready(Err(panic))
            }
        }
    })
    .await
}

/// A future whose drop is caught: a panic while it is dropped is kept in `caught`
/// instead of unwinding past what must still run. The body of `main`, cancelled at a
/// signal, is dropped before the shutdown hooks; one that owns a tokio runtime (which
/// panics when dropped inside another) took the hooks, and the telemetry's last
/// flush, with it. Under `panic = "abort"` nothing is caught: the process ends there.
pub(crate) struct DropCaught<'a, F> {
    future: std::mem::ManuallyDrop<F>,
    caught: &'a Cell<Option<Box<dyn Any + Send>>>,
}

impl<'a, F> DropCaught<'a, F> {
    pub(crate) fn new(future: F, caught: &'a Cell<Option<Box<dyn Any + Send>>>) -> Self {
        DropCaught {
            future: std::mem::ManuallyDrop::new(future),
            caught,
        }
    }
}

impl<F: Future> Future for DropCaught<'_, F> {
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is pinned with `self`: it is never moved out, and it is
        // dropped in place, in `drop`.
        unsafe { self.map_unchecked_mut(|s| &mut *s.future) }.poll(cx)
    }
}

impl<F> Drop for DropCaught<'_, F> {
    fn drop(&mut self) {
        let future = &mut self.future;
        // SAFETY: dropped once, here, in place; never used after.
        let dropped = catch_unwind(AssertUnwindSafe(|| unsafe {
            std::mem::ManuallyDrop::drop(future);
        }));
        if let Err(payload) = dropped {
            self.caught.set(Some(payload));
        }
    }
}

thread_local! {
    /// Whether a panic on this thread now is one the hook has heard of already.
    static HUSHED: Cell<bool> = const { Cell::new(false) };
}

/// A panic payload's message: the `&str` or `String` it carries.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_string()
    }
}
