//! Watching `main` until the runtime loop starts: a panic or a return before
//! [`run`](crate::run) is an init failure, reported to the Runtime API.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::init_error::report_if_initialising;

/// Wraps the body of `main`; what `#[coldstart::main]` does on Lambda.
pub fn watch_init<F: Future>(body: F) -> WatchInit<F> {
    WatchInit { body }
}

pin_project_lite::pin_project! {
    /// The future of [`watch_init`]: the body's output, unchanged.
    #[derive(Debug)]
    pub struct WatchInit<F> {
        #[pin]
        body: F,
    }
}

impl<F: Future> Future for WatchInit<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let body = self.project().body;
        match catch_unwind(AssertUnwindSafe(|| body.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => {
                report_if_initialising(
                    "Runtime.ExitError",
                    "main ended before the function started serving (coldstart::lambda::run was not reached)",
                );
                Poll::Ready(output)
            }
            Err(panic) => {
                let message = crate::handler::panic_message(&*panic);
                report_if_initialising(
                    "Runtime.ExitError",
                    &format!("main {message} before the function started serving"),
                );
                resume_unwind(panic)
            }
        }
    }
}
