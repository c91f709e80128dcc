//! The invocation's future: the inner service (handler and response post), then the
//! telemetry that must leave before the next `/next`.

use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// A cold start: the first invocation, unless the environment was made ready
    /// before any request (provisioned concurrency, managed instances, or a first
    /// invocation long after init: proactive initialisation).
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

/// How long before its deadline an invocation still running is recorded as timed
/// out. Lambda ends a timed-out invocation by stopping the process, with the
/// invocation's span still open and no EMF record written: without this, a timeout
/// would leave no trace at all. What is left (less [`DEADLINE_MARGIN`]) is the
/// flush's budget, 150 ms; an export to a collector in the same region takes a few.
/// The price: a handler that finishes in its last 200 ms is recorded as timed out
/// although its answer goes out (one that has returned, its answer still being
/// posted, is not, where the handler is [`instrument`](crate::instrument)ed, as
/// `run` does). The notice is polled with the handler: a handler that blocks its
/// thread instead of awaiting keeps it from firing.
pub(crate) const TIMEOUT_NOTICE: Duration = Duration::from_millis(200);

/// When the invocation received at `now_ms` is to be recorded as timed out:
/// [`TIMEOUT_NOTICE`] before `deadline_ms`, as an [`Instant`] (at once when that is
/// past already).
fn notice_at(deadline_ms: u64, now_ms: u64, now: Instant) -> Instant {
    now + left(deadline_ms, now_ms).saturating_sub(TIMEOUT_NOTICE)
}

/// What is left at `now_ms` of the time until `deadline_ms`; zero once it is past.
fn left(deadline_ms: u64, now_ms: u64) -> Duration {
    Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

/// The flush's budget: `timeout`, cut to what is left of the invocation's time less
/// [`DEADLINE_MARGIN`]. The flush runs before the next `/next`, and so inside the
/// function's timeout: past it, Lambda stops the invocation as timed out and starts
/// the next one cold.
fn flush_budget(timeout: Duration, deadline_ms: Option<u64>, now_ms: u64) -> Duration {
    let Some(deadline_ms) = deadline_ms else {
        return timeout;
    };
    timeout.min(left(deadline_ms, now_ms).saturating_sub(DEADLINE_MARGIN))
}

/// The flush, on its task: awaited before the next `/next`.
type Flush = tokio::task::JoinHandle<()>;

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
        // Fires [`TIMEOUT_NOTICE`] before the deadline; none without a deadline.
        #[pin]
        notice: Option<tokio::time::Sleep>,
        // The invocation was recorded as timed out.
        timed_out: bool,
    }
}

impl<F> InvocationFuture<F> {
    pub(crate) fn new(
        inner: F,
        shared: Arc<Shared>,
        pending: Pending,
        #[cfg(feature = "tracing")] span: SpanContext,
    ) -> Self {
        let notice = pending.deadline_ms.map(|deadline_ms| {
            let at = notice_at(deadline_ms, now_ms(), Instant::now());
            tokio::time::sleep_until(at.into())
        });
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
            notice,
            timed_out: false,
        }
    }
}

impl<F> Future for InvocationFuture<F>
where
    F: Future<Output = Result<(), BoxError>>,
{
    type Output = Result<(), BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if this.output.is_none() {
            let polled = {
                #[cfg(feature = "tracing")]
                let _entered = this.span.clone().attach();
                this.inner.poll(cx)
            };
            let Poll::Ready(output) = polled else {
                let noticed = match this.notice.as_mut().as_pin_mut() {
                    Some(notice) => notice.poll(cx).is_ready(),
                    None => false,
                };
                if noticed {
                    this.notice.set(None);
                }
                // A handler that has returned is done, though its answer is still
                // being posted (a large one, a slow link): it is not timed out.
                if noticed && !crate::handler::returned() {
                    *this.timed_out = true;
                    record_timeout(this.shared, this.pending, this.span);
                }
                return Poll::Pending;
            };
            // The response (or the error) has been posted: the caller has its answer.
            *this.flush = finish(
                this.shared,
                this.pending,
                this.span,
                output.as_ref().err(),
                *this.timed_out,
            );
            *this.output = Some(output);
        }
        if let Some(flush) = this.flush.as_mut() {
            // Its outcome is said by the task itself; a join error is a panic there.
            let _ = ready!(Pin::new(flush).poll(cx));
            *this.flush = None;
        }
        Poll::Ready(this.output.take().unwrap_or(Ok(())))
    }
}

/// Ends the span, writes the EMF record, marks the first response, and returns the
/// flush to wait for. After [`record_timeout`] (`timed_out`), the span and the record
/// are written already: only the first response is marked and the spans flushed.
fn finish(
    shared: &Shared,
    pending: &Pending,
    span: &SpanContext,
    not_posted: Option<&BoxError>,
    timed_out: bool,
) -> Option<Flush> {
    if !timed_out {
        #[cfg(feature = "tracing")]
        crate::span::end(span, not_posted, crate::handler::not_called());
        let failed = not_posted.is_some() || crate::handler::failed();
        // The sampler counts an HTTP event answered with a 5xx as an error too, as the
        // HTTP layer does; Lambda's `Errors` (the EMF record) are the handler's own.
        #[cfg(feature = "tracing")]
        coldstart_exporters::trace::sampler::record(
            failed || crate::handler::answered_server_error(),
        );
        write_record(shared, pending, failed, false);
    }
    #[cfg(not(feature = "tracing"))]
    let _ = span;
    if pending.first {
        coldstart_runtime::first_request_done();
    }
    say_if_metrics_unexported(shared);
    flush(shared, pending)
}

/// Whether [`say_if_metrics_unexported`] has said it.
static UNEXPORTED_SAID: AtomicBool = AtomicBool::new(false);

/// Says once that the program records metrics nothing exports: on Lambda no
/// `/metrics` listener runs unless an address is set, and without a Pushgateway the
/// metrics would be lost unsaid (the EMF line carries coldstart's own figures only).
fn say_if_metrics_unexported(shared: &Shared) {
    if UNEXPORTED_SAID.load(Ordering::Relaxed) {
        return;
    }
    let Some(name) = shared.telemetry.and_then(|t| t.unexported_metric()) else {
        return;
    };
    UNEXPORTED_SAID.store(true, Ordering::Relaxed);
    coldstart_exporters::problem::report("lambda-metrics-unexported", || {
        format!(
            "lambda: the program records metrics (`{name}` among them) but nothing exports them: on Lambda no /metrics listener runs (a frozen function cannot be scraped) and COLDSTART_METRICS_PUSH_URL is not set; set it to push them to a Pushgateway after each invocation"
        )
    });
}

/// Records the invocation as timed out, [`TIMEOUT_NOTICE`] before its deadline with
/// the handler still running: says so in one line, ends the span as an error of type
/// `timeout`, writes the EMF record with the error, and flushes the spans in what is
/// left. The first response is not marked: none was sent.
fn record_timeout(shared: &Shared, pending: &Pending, span: &SpanContext) {
    coldstart_bootstrap::say!(
        "coldstart: lambda: invocation {} still running {} ms before its deadline; recorded as timed out",
        pending.invocation_id,
        TIMEOUT_NOTICE.as_millis()
    );
    #[cfg(feature = "tracing")]
    {
        crate::span::end_timed_out(span);
        coldstart_exporters::trace::sampler::record(true);
    }
    #[cfg(not(feature = "tracing"))]
    let _ = span;
    write_record(shared, pending, true, true);
    // Not awaited: it goes on by itself on its task (dropping its handle does not stop
    // it); the flush after the response, if the handler still finishes, waits for it
    // on the exporter's lock.
    drop(flush(shared, pending));
}

/// Writes the invocation's EMF record, where records are on.
fn write_record(shared: &Shared, pending: &Pending, error: bool, timed_out: bool) {
    let Some(namespace) = &shared.settings.emf_namespace else {
        return;
    };
    let record = Record {
        function: &shared.function.name,
        invocation_id: &pending.invocation_id,
        cold: pending.cold,
        init: if pending.cold {
            shared.ready.get().and_then(|r| r.init_duration())
        } else {
            None
        },
        duration: pending.received.elapsed(),
        error,
        timed_out,
    };
    // One line, or nothing where stdout is gone (println! would panic on it).
    let line = record.render(namespace, now_ms());
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Flushes the queued spans on a task of their own, within the flush budget cut to
/// the invocation's deadline; the flush to wait for, or `None` without telemetry or
/// time.
fn flush(shared: &Shared, pending: &Pending) -> Option<Flush> {
    let now_ms = now_ms();
    let telemetry = shared.telemetry?;
    let budget = flush_budget(shared.settings.flush_timeout, pending.deadline_ms, now_ms);
    if budget.is_zero() {
        coldstart_exporters::problem::report("lambda-flush-deadline", || {
            "lambda: no time was left before the invocation's deadline to flush spans; they go with the next flush, or are lost if the environment is shut down first (COLDSTART_LAMBDA_EXTENSION=on flushes them at shutdown)".to_owned()
        });
        return None;
    }
    // On a task of its own: a SIGTERM during the flush cancels the program's body,
    // and with it this future; the export under way goes on, and the final flush
    // waits for it (they share the exporter's lock) instead of losing its batch. The
    // budget ends where it was cut, however late the task first runs (on
    // `current_thread`, after the work the first response woke).
    let ends = tokio::time::Instant::now().checked_add(budget);
    Some(coldstart_runtime::task::spawn(async move {
        let remaining = ends.map_or(budget, |ends| {
            ends.saturating_duration_since(tokio::time::Instant::now())
        });
        let left = telemetry.flush(remaining).await;
        if left > 0 {
            coldstart_exporters::problem::report("lambda-flush", || {
                format!(
                    "lambda: {left} spans were still queued or in an unanswered export when the {budget:?} flush budget ran out; they go with the next flush, or are lost if the environment is shut down first (COLDSTART_LAMBDA_FLUSH_TIMEOUT sets the budget; COLDSTART_LAMBDA_EXTENSION=on flushes them at shutdown)"
                )
            });
        }
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
    fn a_timeout_is_noticed_200_ms_before_the_deadline() {
        let (now_ms, now) = (1_700_000_000_000, Instant::now());
        assert_eq!(
            notice_at(now_ms + 3_000, now_ms, now),
            now + Duration::from_millis(2_800)
        );
        // Less than the notice left: at once.
        assert_eq!(notice_at(now_ms + 150, now_ms, now), now);
        assert_eq!(notice_at(now_ms - 10, now_ms, now), now);
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
