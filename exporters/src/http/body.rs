//! The response body of [`super::HttpTelemetry`]: the inner service's body, frame for
//! frame. A gRPC call sends its code in the trailers after its messages (unless it
//! answers with no message, code in the headers); for such a call the server span
//! stays open until the trailers pass, and gets `rpc.grpc.status_code` from them.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The response body of [`HttpTelemetry`](super::HttpTelemetry): the inner
    /// service's body, frame for frame. A gRPC call sends its code in the trailers
    /// after its messages (unless it answers with no message, code in the headers);
    /// for such a call the server span stays open until the trailers pass, and gets
    /// `rpc.grpc.status_code` from them. A body that fails before its trailers ends
    /// the span as an error; one dropped before them (the server stopped polling it),
    /// without a code. The inner body is polled with the request's context current,
    /// as the handler was: a streamed body's spans are the request's children, its log
    /// lines carry the request's trace.
    #[derive(Debug)]
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        pending: Option<Pending>,
        cx: BodyContext,
    }
}

/// The request's context, attached while the inner body is polled: `None` where there
/// is no server span (tracing off), and the caller's is left current.
#[cfg(feature = "tracing")]
pub(crate) type BodyContext = Option<opentelemetry::Context>;
/// Without tracing, no context.
#[cfg(not(feature = "tracing"))]
pub(crate) type BodyContext = ();

impl<B> ResponseBody<B> {
    pub(crate) fn new(inner: B, pending: Option<Pending>, cx: BodyContext) -> Self {
        ResponseBody { inner, pending, cx }
    }

    /// The body alone: no span to end, no context to poll it in.
    pub(crate) fn plain(inner: B) -> Self {
        ResponseBody {
            inner,
            pending: None,
            cx: BodyContext::default(),
        }
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        #[cfg(feature = "tracing")]
        let _current = this.cx.as_ref().map(|cx| cx.clone().attach());
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        if this.pending.is_some() {
            match &frame {
                Some(Ok(f)) => {
                    if let Some(trailers) = f.trailers_ref()
                        && let Some(pending) = this.pending.take()
                    {
                        pending.end(super::future::grpc_code(trailers));
                    }
                }
                // The body ended without trailers: no code to read.
                None => {
                    if let Some(pending) = this.pending.take() {
                        pending.end(None);
                    }
                }
                Some(Err(_)) => {
                    if let Some(pending) = this.pending.take() {
                        pending.fail("_OTHER", "the response body failed before its trailers");
                    }
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request's server span until it ends: at once for most answers, or, for a gRPC
/// call, when the code comes in the trailers. Dropped before that (the server stopped
/// polling the body), the span ends without a code.
#[derive(Debug)]
pub(crate) struct Pending {
    #[cfg(feature = "tracing")]
    cx: Option<opentelemetry::Context>,
}

impl Pending {
    #[cfg(feature = "tracing")]
    pub(crate) fn new(cx: opentelemetry::Context) -> Pending {
        Pending { cx: Some(cx) }
    }

    /// Ends the span with `code`, if the trailers carried one.
    fn end(self, code: Option<u8>) {
        let error = code.is_some_and(super::future::is_server_error_code);
        self.finish(code, error.then_some(""));
    }

    /// Ends the span as an error of type `error_type` (`error.type`), said by
    /// `description`: a body that failed before its trailers, or a service that failed
    /// or panicked without a response.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn fail(self, error_type: &'static str, description: &'static str) {
        #[cfg(feature = "tracing")]
        if let Some(cx) = &self.cx {
            use opentelemetry::trace::TraceContextExt;
            cx.span()
                .set_attribute(opentelemetry::KeyValue::new("error.type", error_type));
        }
        self.finish(None, Some(description));
    }

    /// Ends the span with `code` and, when `error` is given, an error status with
    /// that description; the dynamic sampler counts the error. What the layer calls
    /// for every answer it can end at once, too.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables, unused_mut))]
    pub(crate) fn finish(mut self, code: Option<u8>, error: Option<&'static str>) {
        #[cfg(feature = "tracing")]
        if let Some(cx) = self.cx.take() {
            use opentelemetry::KeyValue;
            use opentelemetry::trace::{Status, TraceContextExt};
            let span = cx.span();
            if let Some(code) = code {
                span.set_attribute(KeyValue::new("rpc.grpc.status_code", i64::from(code)));
            }
            if let Some(description) = error {
                // A server error's code, by its name, is the error's type, as the
                // conventions ask of a span that ends as an error.
                if let Some(name) = code.and_then(super::future::server_error_code_name) {
                    span.set_attribute(KeyValue::new("error.type", name));
                }
                span.set_status(Status::error(description));
            }
            span.end();
            crate::trace::sampler::record(error.is_some());
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        #[cfg(feature = "tracing")]
        if self.cx.is_some() {
            Pending { cx: self.cx.take() }.end(None);
        }
    }
}
