//! The response future of [`super::HttpTelemetry`]: records the request when the
//! inner service answers, and keeps the in-flight gauge right when it is dropped
//! unanswered.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use pin_project_lite::pin_project;

pin_project! {
    /// Resolves to the inner service's response.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        record: Option<Record>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, record: Record) -> Self {
        ResponseFuture {
            inner,
            record: Some(record),
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        #[cfg(feature = "tracing")]
        let _current = this.record.as_ref().map(|r| r.cx.clone().attach());
        let output = std::task::ready!(this.inner.poll(cx));
        if let Some(record) = this.record.take() {
            match &output {
                Ok(response) => record.finish(Some(response.status())),
                Err(_) => record.finish(None),
            }
        }
        Poll::Ready(output)
    }
}

/// What is known about a request until it is answered. The timing and labels are
/// for the metrics; without feature `metrics` only the span is kept.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) struct Record {
    start: Instant,
    method: &'static str,
    route: Cow<'static, str>,
    #[cfg(feature = "tracing")]
    cx: opentelemetry::Context,
    finished: bool,
}

impl Record {
    pub(crate) fn new(
        start: Instant,
        method: &'static str,
        route: Cow<'static, str>,
        #[cfg(feature = "tracing")] cx: opentelemetry::Context,
    ) -> Record {
        #[cfg(feature = "metrics")]
        super::handles::in_flight(1.0);
        Record {
            start,
            method,
            route,
            #[cfg(feature = "tracing")]
            cx,
            finished: false,
        }
    }

    /// Records the answer: `None` when the service failed without a response (counted
    /// as status 500).
    #[cfg_attr(
        not(any(feature = "metrics", feature = "tracing")),
        allow(unused_variables)
    )]
    fn finish(mut self, status: Option<http::StatusCode>) {
        self.finished = true;
        let status = status.unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        #[cfg(feature = "metrics")]
        super::handles::record(
            self.method,
            &self.route,
            status.as_u16(),
            self.start.elapsed().as_secs_f64(),
        );
        #[cfg(feature = "tracing")]
        {
            use opentelemetry::KeyValue;
            use opentelemetry::trace::{Status, TraceContextExt};
            let span = self.cx.span();
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status.as_u16()),
            ));
            if status.is_server_error() {
                span.set_status(Status::error(""));
            }
            span.end();
            crate::trace::sampler::record(status.is_server_error());
        }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        #[cfg(feature = "metrics")]
        super::handles::in_flight(-1.0);
        #[cfg(feature = "tracing")]
        if !self.finished {
            use opentelemetry::trace::{Status, TraceContextExt};
            let span = self.cx.span();
            span.set_status(Status::error("request cancelled before a response"));
            span.end();
        }
    }
}

/// Starts the server span for `req`, continuing the caller's trace, and puts its
/// context in the request's extensions. An empty context when tracing is off.
// `&Cow`, not `&str`: cloning it keeps a `'static` route template unallocated.
#[allow(clippy::ptr_arg)]
#[cfg(feature = "tracing")]
pub(crate) fn start_span<B>(
    req: &mut http::Request<B>,
    method: &'static str,
    route: &Cow<'static, str>,
) -> opentelemetry::Context {
    use opentelemetry::KeyValue;
    use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
    let Some(tracer) = crate::trace::tracer() else {
        return opentelemetry::Context::new();
    };
    // Most requests carry no trace context: skip the propagators' lock and parsing.
    let headers = req.headers();
    let parent = if headers.contains_key("traceparent") || headers.contains_key("baggage") {
        crate::trace::propagation::extract_headers(headers)
    } else {
        opentelemetry::Context::current()
    };
    let builder = tracer.span_builder("").with_kind(SpanKind::Server);
    // The name and attributes are made only for a span that is sampled.
    let span = tracer.start_described(builder, &parent, |span| {
        span.name = format!("{method} {route}").into();
        span.attributes = Some(vec![
            KeyValue::new("http.request.method", method),
            KeyValue::new("http.route", route.clone()),
            KeyValue::new("url.path", req.uri().path().to_owned()),
        ]);
    });
    let cx = parent.with_span(span);
    req.extensions_mut().insert(cx.clone());
    cx
}
