//! Incoming `traceparent`, `tracestate` and `baggage` headers through the propagators
//! coldstart installs (W3C trace context and baggage): any header values are read
//! without a panic, and a context that was read is written back and read again
//! unchanged.
#![no_main]

use std::sync::Once;

use arbitrary::Arbitrary;
use coldstart_exporters::trace::propagation::{extract_headers, inject_headers};
use http::{HeaderMap, HeaderValue};
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    traceparent: Option<&'a [u8]>,
    tracestate: Option<&'a [u8]>,
    baggage: Option<&'a [u8]>,
}

libfuzzer_sys::fuzz_target!(|input: Input<'_>| {
    static PROPAGATORS: Once = Once::new();
    PROPAGATORS.call_once(|| {
        opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ]));
    });
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("traceparent", input.traceparent),
        ("tracestate", input.tracestate),
        ("baggage", input.baggage),
    ] {
        // What an HTTP server hands on: only bytes a header value may hold.
        if let Some(value) = value.and_then(|v| HeaderValue::from_bytes(v).ok()) {
            headers.insert(name, value);
        }
    }
    let cx = extract_headers(&headers);
    let span = cx.span().span_context().clone();
    if !span.is_valid() {
        return;
    }
    let mut out = HeaderMap::new();
    inject_headers(&cx, &mut out);
    let again = extract_headers(&out);
    let span_again = again.span().span_context().clone();
    assert_eq!(span.trace_id(), span_again.trace_id());
    assert_eq!(span.span_id(), span_again.span_id());
    assert_eq!(span.trace_flags(), span_again.trace_flags());
    assert_eq!(
        span.trace_state().header(),
        span_again.trace_state().header()
    );
});
