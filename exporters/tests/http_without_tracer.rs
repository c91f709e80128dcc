//! Without a tracer (telemetry not installed, or `OTEL_SDK_DISABLED=true`),
//! `HttpTelemetryLayer` leaves the context the handler runs in as it found it: it
//! attached an empty one around the call and every poll, which hid what a layer
//! outside it had put there (a value, baggage, a span of the program's own).

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use coldstart_exporters::http::HttpTelemetryLayer;
use http::{Request, Response};
use tower_layer::Layer as _;
use tower_service::Service;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Marker(u32);

/// What the context held, as the handler saw it.
static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Notes what the context holds in its synchronous part and in its future.
#[derive(Clone, Copy)]
struct Reads;

type Answer = Pin<Box<dyn Future<Output = Result<Response<String>, &'static str>>>>;

impl Service<Request<()>> for Reads {
    type Response = Response<String>;
    type Error = &'static str;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), &'static str>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Answer {
        let seen = |at: &str| {
            let marker = opentelemetry::Context::current().get::<Marker>().copied();
            SEEN.lock().unwrap().push(format!("{at}: {marker:?}"));
        };
        seen("call");
        Box::pin(async move {
            tokio::task::yield_now().await;
            seen("future");
            Ok(Response::new(String::new()))
        })
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_callers_context_reaches_the_handler() {
    let mut service = HttpTelemetryLayer::new().layer(Reads);
    let _outer = opentelemetry::Context::current_with_value(Marker(7)).attach();
    service
        .call(Request::get("/").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        *SEEN.lock().unwrap(),
        ["call: Some(Marker(7))", "future: Some(Marker(7))"]
    );
}
