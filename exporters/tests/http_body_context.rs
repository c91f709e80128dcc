//! A response body is polled with the request's context current, as the handler was:
//! a streamed body (server-sent events, a stream of rows) that makes spans or logs
//! did so outside the request's trace. One test: telemetry is global.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

mod telemetry;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use coldstart_exporters::http::HttpTelemetryLayer;
use http::{Request, Response};
use http_body::{Body, Frame};
use opentelemetry::trace::{TraceContextExt as _, TraceId};
use tower_layer::Layer as _;
use tower_service::Service;

/// The trace current where it was asked.
fn current_trace() -> TraceId {
    opentelemetry::Context::current()
        .span()
        .span_context()
        .trace_id()
}

type Noted = std::sync::Arc<std::sync::Mutex<Option<TraceId>>>;

/// A body of one frame that notes the trace current when it is polled.
struct Observed(Noted);

impl Body for Observed {
    type Data = &'static [u8];
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<&'static [u8]>, Self::Error>>> {
        let mut noted = self.0.lock().unwrap();
        if noted.is_some() {
            return Poll::Ready(None);
        }
        *noted = Some(current_trace());
        Poll::Ready(Some(Ok(Frame::data(&b"row\n"[..]))))
    }
}

/// Answers with an [`Observed`] body, noting the trace its call ran in.
#[derive(Clone)]
struct Streams {
    called: Noted,
    polled: Noted,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<Observed>, &'static str>> + Send>>;

impl Service<Request<()>> for Streams {
    type Response = Response<Observed>;
    type Error = &'static str;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), &'static str>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Answer {
        *self.called.lock().unwrap() = Some(current_trace());
        let body = Observed(std::sync::Arc::clone(&self.polled));
        Box::pin(async { Ok(Response::new(body)) })
    }
}

#[test]
fn the_body_is_polled_in_the_requests_context() {
    let _telemetry = telemetry::installed(vec![("OTEL_TRACES_EXPORTER", "none".to_owned())]);
    let streams = Streams {
        called: Noted::default(),
        polled: Noted::default(),
    };
    let mut service = HttpTelemetryLayer::new().layer(streams.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let response = runtime
        .block_on(service.call(Request::get("/rows").body(()).unwrap()))
        .unwrap();
    let mut body = std::pin::pin!(response.into_body());
    let mut cx = Context::from_waker(std::task::Waker::noop());
    assert!(matches!(
        body.as_mut().poll_frame(&mut cx),
        Poll::Ready(Some(Ok(_)))
    ));
    let in_call = streams.called.lock().unwrap().unwrap();
    assert_ne!(
        in_call,
        TraceId::INVALID,
        "the handler ran in the server span"
    );
    // Polled here, outside any span: the body saw the request's trace all the same.
    assert_eq!(current_trace(), TraceId::INVALID);
    assert_eq!(*streams.polled.lock().unwrap(), Some(in_call));
}
