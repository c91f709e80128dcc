//! The invocation's future: the inner service (handler and response post), then the
//! telemetry that must leave before the next `/next`.

use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime_api_client::BoxError;

use super::Shared;
use crate::emf::Record;

/// The span's context with `tracing`; nothing without.
#[cfg(feature = "tracing")]
pub(crate) type SpanContext = opentelemetry::Context;
#[cfg(not(feature = "tracing"))]
pub(crate) type SpanContext = ();

/// What is known of an invocation when it starts.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) invocation_id: String,
    /// The process's first invocation: its response is the first response.
    pub(crate) first: bool,
    /// A cold start: the first invocation, unless provisioned concurrency made the
    /// environment ready before it.
    pub(crate) cold: bool,
    pub(crate) received: Instant,
    /// When Lambda stops the invocation, in milliseconds since the Unix epoch; `None`
    /// when not given, or already past when the invocation came (an emulator sends a
    /// duration there).
    pub(crate) deadline_ms: Option<u64>,
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The invocation's deadline as the Runtime API gave it (`deadline_ms`), received at
/// `now_ms`: `None` when it had already passed, which no invocation Lambda gives has.
pub(crate) fn deadline(deadline_ms: u64, now_ms: u64) -> Option<u64> {
    (deadline_ms > now_ms).then_some(deadline_ms)
}

/// What the flush leaves of the invocation's time for asking for the next one.
const DEADLINE_MARGIN: Duration = Duration::from_millis(50);

/// The flush's budget: `timeout`, cut to what is left of the invocation's time less
/// [`DEADLINE_MARGIN`]. The flush runs before the next `/next`, and so inside the
/// function's timeout: past it, Lambda stops the invocation as timed out and starts
/// the next one cold.
fn flush_budget(timeout: Duration, deadline_ms: Option<u64>, now_ms: u64) -> Duration {
    let Some(deadline_ms) = deadline_ms else {
        return timeout;
    };
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    timeout.min(left.saturating_sub(DEADLINE_MARGIN))
}

type Flush = Pin<Box<dyn Future<Output = ()> + Send>>;

pin_project_lite::pin_project! {
    /// The future of an [`Invocation`](super::Invocation).
    pub struct InvocationFuture<F> {
        #[pin]
        inner: F,
        shared: Arc<Shared>,
        pending: Pending,
        span: SpanContext,
        output: Option<Result<(), BoxError>>,
        flush: Option<Flush>,
    }
}

impl<F> InvocationFuture<F> {
    pub(crate) fn new(
        inner: F,
        shared: Arc<Shared>,
        pending: Pending,
        #[cfg(feature = "tracing")] span: SpanContext,
    ) -> Self {
        InvocationFuture {
            inner,
            shared,
            pending,
            #[cfg(feature = "tracing")]
            span,
            #[cfg(not(feature = "tracing"))]
            span: (),
            output: None,
            flush: None,
        }
    }
}

impl<F> Future for InvocationFuture<F>
where
    F: Future<Output = Result<(), BoxError>>,
{
    type Output = Result<(), BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.output.is_none() {
            let output = {
                #[cfg(feature = "tracing")]
                let _entered = this.span.clone().attach();
                ready!(this.inner.poll(cx))
            };
            // The response (or the error) has been posted: the caller has its answer.
            *this.flush = finish(this.shared, this.pending, this.span, output.is_err());
            *this.output = Some(output);
        }
        if let Some(flush) = this.flush.as_mut() {
            ready!(flush.as_mut().poll(cx));
            *this.flush = None;
        }
        Poll::Ready(this.output.take().unwrap_or(Ok(())))
    }
}

/// Ends the span, marks the first response, writes the EMF record, and returns the
/// flush to wait for.
fn finish(shared: &Shared, pending: &Pending, span: &SpanContext, failed: bool) -> Option<Flush> {
    let duration = pending.received.elapsed();
    let error = failed || crate::handler::failed();
    #[cfg(feature = "tracing")]
    crate::span::end(span, failed, crate::handler::not_called());
    #[cfg(not(feature = "tracing"))]
    let _ = span;
    if pending.first {
        coldstart_runtime::first_request_done();
    }
    let now_ms = now_ms();
    if let Some(namespace) = &shared.settings.emf_namespace {
        let record = Record {
            function: &shared.function.name,
            invocation_id: &pending.invocation_id,
            cold: pending.cold,
            init: if pending.cold {
                shared.ready.get().and_then(|r| r.init_duration())
            } else {
                None
            },
            duration,
            error,
        };
        // One line, or nothing where stdout is gone (println! would panic on it).
        let line = record.render(namespace, now_ms);
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
    let telemetry = shared.telemetry?;
    let budget = flush_budget(shared.settings.flush_timeout, pending.deadline_ms, now_ms);
    if budget.is_zero() {
        coldstart_exporters::problem::report("lambda-flush-deadline", || {
            "lambda: no time was left before the invocation's deadline to flush spans; they go with the next flush".to_owned()
        });
        return None;
    }
    // On a task of its own: a SIGTERM during the flush cancels the program's body,
    // and with it this future; the export under way goes on, and the final flush
    // waits for it (they share the exporter's lock) instead of losing its batch.
    let flush = tokio::spawn(async move {
        let left = telemetry.flush(budget).await;
        if left > 0 {
            coldstart_exporters::problem::report("lambda-flush", || {
                format!(
                    "lambda: {left} spans were still queued when the {budget:?} flush budget ran out; they go with the next flush (COLDSTART_LAMBDA_FLUSH_TIMEOUT sets the budget)"
                )
            });
        }
    });
    Some(Box::pin(async move {
        let _ = flush.await;
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flush_ends_before_the_invocations_deadline() {
        let second = Duration::from_secs(1);
        let now = 1_700_000_000_000;
        // Plenty of time: the configured budget.
        assert_eq!(flush_budget(second, Some(now + 60_000), now), second);
        // 300 ms left: the flush takes what is left less the margin.
        assert_eq!(
            flush_budget(second, Some(now + 300), now),
            Duration::from_millis(250)
        );
        // Too late, or past it: no flush.
        assert_eq!(flush_budget(second, Some(now + 40), now), Duration::ZERO);
        assert_eq!(flush_budget(second, Some(now - 5), now), Duration::ZERO);
        // No deadline given.
        assert_eq!(flush_budget(second, None, now), second);
    }

    #[test]
    fn a_deadline_past_when_the_invocation_came_is_none() {
        let now = 1_700_000_000_000;
        assert_eq!(deadline(now + 3_000, now), Some(now + 3_000));
        // What the emulator sends: the timeout, 600 s, as if it were the deadline.
        assert_eq!(deadline(600_000, now), None);
        assert_eq!(deadline(0, now), None);
    }
}
