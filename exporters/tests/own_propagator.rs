//! A propagator the program installs in place of coldstart's (B3, X-Ray: headers other
//! than `traceparent` and `baggage`) is what `HttpTelemetryLayer` reads a request's
//! trace context with: its server span continues the caller's trace. The layer read
//! the propagator only for requests that carried `traceparent` or `baggage`, so such a
//! program's requests each began a new trace. One test: the propagator is global.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

mod handler;
mod spans_seen;
mod telemetry;

use std::sync::LazyLock;

use coldstart_bootstrap::Settings;
use coldstart_exporters::http::HttpTelemetryLayer;
use handler::Handler;
use http::Request;
use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use spans_seen::SEEN;
use tower_layer::Layer as _;
use tower_service::Service;

/// Carries a trace id alone, in `x-test-trace`, as B3's single header carries more.
#[derive(Debug)]
struct OneHeader;

static FIELDS: LazyLock<[String; 1]> = LazyLock::new(|| ["x-test-trace".to_owned()]);

impl TextMapPropagator for OneHeader {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        injector.set(
            "x-test-trace",
            cx.span().span_context().trace_id().to_string(),
        );
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let Some(trace) = extractor
            .get("x-test-trace")
            .and_then(|t| TraceId::from_hex(t).ok())
        else {
            return cx.clone();
        };
        let parent = SpanContext::new(
            trace,
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        cx.with_remote_span_context(parent)
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&*FIELDS)
    }
}

#[test]
fn a_propagator_the_program_installs_is_read() {
    let telemetry = telemetry::installed(vec![
        ("OTEL_TRACES_EXPORTER", "none".to_owned()),
        ("COLDSTART_METRICS_ADDR", "off".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "10".to_owned()),
    ]);
    opentelemetry::global::set_text_map_propagator(OneHeader);
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";

    coldstart_runtime::block_on(&Settings::NONE, async move {
        let mut service = HttpTelemetryLayer::new().layer(Handler);
        let carried = Request::get("/carried")
            .header("x-test-trace", trace)
            .body(())
            .unwrap();
        service.call(carried).await.unwrap();
        service
            .call(Request::get("/new").body(()).unwrap())
            .await
            .unwrap();
        telemetry.start_after_first_response();
        coldstart_runtime::first_request_done();
        telemetry::until(|| SEEN.lock().unwrap().len() >= 2).await;
    });
    let seen = SEEN.lock().unwrap().clone();
    let of = |path: &str| {
        seen.iter()
            .find(|s| s.attributes.get("url.path").map(String::as_str) == Some(path))
            .unwrap_or_else(|| panic!("no span of {path}: {seen:#?}"))
            .clone()
    };
    assert_eq!(of("/carried").trace_id, trace, "{seen:#?}");
    // A request without the header begins a trace of its own.
    assert_ne!(of("/new").trace_id, trace, "{seen:#?}");
}
