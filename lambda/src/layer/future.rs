//! The invocation's future: the inner service (handler and response post), then the
//! telemetry that must leave before the next `/next`.

use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

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
    pub(crate) cold: bool,
    pub(crate) received: Instant,
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
    if pending.cold {
        coldstart_runtime::first_request_done();
    }
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
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        // One line, or nothing where stdout is gone (println! would panic on it).
        let line = record.render(namespace, now_ms);
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
    let telemetry = shared.telemetry?;
    let budget = shared.settings.flush_timeout;
    Some(Box::pin(async move {
        let left = telemetry.flush(budget).await;
        if left > 0 {
            coldstart_exporters::problem::report("lambda-flush", || {
                format!(
                    "lambda: {left} spans were still queued when the {budget:?} flush budget ran out; they go with the next flush (COLDSTART_LAMBDA_FLUSH_TIMEOUT sets the budget)"
                )
            });
        }
    }))
}
