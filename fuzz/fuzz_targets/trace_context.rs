//! Incoming `traceparent`, `tracestate` and `baggage` headers through the propagators
//! coldstart installs (its own W3C trace context and baggage, which check and mend what
//! they hand the SDK): any header values are read without a panic, a span context that
//! was read is written back and read again unchanged, and baggage written back is read
//! again as members of what came in, with their values.
#![no_main]

use std::sync::Once;

use arbitrary::Arbitrary;
use coldstart_exporters::trace::propagation::{extract_headers, inject_headers};
use http::{HeaderMap, HeaderValue};
use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::TraceContextExt;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    traceparent: Option<&'a [u8]>,
    tracestate: Option<&'a [u8]>,
    baggage: Option<&'a [u8]>,
}

libfuzzer_sys::fuzz_target!(|input: Input<'_>| {
    static PROPAGATORS: Once = Once::new();
    PROPAGATORS.call_once(coldstart_exporters::fuzz::install_propagators);
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
    let mut out = HeaderMap::new();
    inject_headers(&cx, &mut out);
    let again = extract_headers(&out);
    // Names are written trimmed (a key is a token; one decoded with blanks around it
    // is written as the token), so a member is compared where its name came back as
    // the only one of the names read that trims to it.
    let trimmed = |name: &str| {
        cx.baggage()
            .iter()
            .filter(|(k, _)| k.as_str().trim() == name)
            .count()
    };
    for (name, (value, _)) in again.baggage().iter() {
        if trimmed(name.as_str()) != 1 {
            continue;
        }
        if let Some(first) = cx.baggage().get(name.as_str()) {
            assert_eq!(
                first.as_str().to_string(),
                value.as_str().to_string(),
                "{name}"
            );
        }
    }
    let span = cx.span().span_context().clone();
    if !span.is_valid() {
        return;
    }
    let span_again = again.span().span_context().clone();
    assert_eq!(span.trace_id(), span_again.trace_id());
    assert_eq!(span.span_id(), span_again.span_id());
    assert_eq!(span.trace_flags(), span_again.trace_flags());
    assert_eq!(
        span.trace_state().header(),
        span_again.trace_state().header()
    );
});
