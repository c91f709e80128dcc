//! Watching `main` until the runtime loop starts: a panic or a return before
//! [`run`](crate::run) is an init failure, reported to the Runtime API; a `main`
//! still not serving through coldstart's layer [`NOT_SERVING_AFTER`] after it began
//! is said to be, once (it may serve through `lambda_runtime::run` directly).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::init_error::report_if_initialising;

/// How long after `main` began a function not yet serving through coldstart's layer
/// is said to be: the longest an on-demand init may take. Seen when `main` is next
/// polled after that (an invocation lambda_runtime serves wakes it), with no timer.
pub(crate) const NOT_SERVING_AFTER: Duration = Duration::from_secs(10);

/// Wraps the body of `main`; what `#[coldstart::main]` does on Lambda. `describe`
/// gives the text of an error the body returns (`Error: ` and its `Debug`, as Rust
/// prints it), or `None`.
pub fn watch_init<F: Future>(body: F, describe: fn(&F::Output) -> Option<String>) -> WatchInit<F> {
    // Only where nothing else starts the deferred work (on Lambda, under coldstart's
    // runtime, with no fallback timer), and where 10 s is the longest an init takes:
    // provisioned concurrency and SnapStart allow longer.
    let unmarked = crate::detected()
        && crate::function::current()
            .as_ref()
            .is_ok_and(|f| !f.initialised_ahead)
        && coldstart_runtime::plan().is_some_and(|p| p.first_response_fallback.value.is_none());
    WatchInit {
        body,
        describe,
        since: unmarked.then(Instant::now),
    }
}

pin_project_lite::pin_project! {
    /// The future of [`watch_init`]: the body's output, unchanged.
    pub struct WatchInit<F: Future> {
        #[pin]
        body: F,
        describe: fn(&F::Output) -> Option<String>,
        // When `main` began, while it is watched for serving without coldstart's layer.
        since: Option<Instant>,
    }
}

/// Says, once [`NOT_SERVING_AFTER`] has passed `since` with the function not serving
/// through coldstart's layer, that it is not; whether the watch is over.
fn said_not_serving(since: Instant) -> bool {
    // Serving through coldstart's layer, or through another that marks the first
    // response (a function behind an HTTP adapter, served by the HTTP layer).
    if crate::init_error::serving() || coldstart_runtime::lifecycle::is_first_response_done() {
        return true;
    }
    if since.elapsed() < NOT_SERVING_AFTER {
        return false;
    }
    coldstart_bootstrap::say!(
        "coldstart: lambda: {} s after main began, the function does not serve through coldstart::lambda::run; served through lambda_runtime::run or lambda_http::run directly, no invocation marks the first response, so deferred inits, after_first_request work and the exporters never start, and invocations get no spans or EMF records (give the service to coldstart::lambda::run, or add coldstart::lambda::InvocationLayer to the Runtime)",
        NOT_SERVING_AFTER.as_secs()
    );
    true
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
            Ok(Poll::Pending) => {
                if let Some(since) = *this.since
                    && said_not_serving(since)
                {
                    *this.since = None;
                }
                Poll::Pending
            }
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
