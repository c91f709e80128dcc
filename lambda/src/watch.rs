//! Watching `main` until the runtime loop starts: a panic or a return before
//! [`run`](crate::run) is an init failure, reported to the Runtime API.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::init_error::report_if_initialising;

/// Wraps the body of `main`; what `#[coldstart::main]` does on Lambda. `describe`
/// gives the text of an error the body returns (`Error: ` and its `Debug`, as Rust
/// prints it), or `None`.
pub fn watch_init<F: Future>(body: F, describe: fn(&F::Output) -> Option<String>) -> WatchInit<F> {
    WatchInit { body, describe }
}

pin_project_lite::pin_project! {
    /// The future of [`watch_init`]: the body's output, unchanged.
    pub struct WatchInit<F: Future> {
        #[pin]
        body: F,
        describe: fn(&F::Output) -> Option<String>,
    }
}

impl<F: Future> std::fmt::Debug for WatchInit<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchInit").finish_non_exhaustive()
    }
}

impl<F: Future> Future for WatchInit<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let body = this.body;
        match catch_unwind(AssertUnwindSafe(|| body.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            // After `run` has served, `main` ending is no init failure: nothing to say.
            Ok(Poll::Ready(output)) if crate::init_error::serving() => Poll::Ready(output),
            Ok(Poll::Ready(output)) => {
                let message = match (this.describe)(&output) {
                    Some(error) => format!(
                        "main returned an error before the function started serving: {error}"
                    ),
                    None => "main ended before the function started serving (coldstart::lambda::run was not reached)".to_owned(),
                };
                report_if_initialising("Runtime.ExitError", &message);
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
