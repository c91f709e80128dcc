//! Incoming `traceparent`, `tracestate` and `baggage` headers, each sent any number of
//! times, through the propagators coldstart installs (its own W3C trace context and
//! baggage, which check and mend what they hand the SDK): any header values are read
//! without a panic; a `traceparent` sent more than once gives no parent; `tracestate`
//! and `baggage` sent as several headers read as the one list they make; a span
//! context that was read is written back and read again unchanged; and baggage
//! written back is read again as members of what came in, with their values, none
//! invented.
#![no_main]

use std::sync::Once;

use arbitrary::Arbitrary;
use coldstart_exporters::trace::propagation::{extract_headers, inject_headers};
use http::{HeaderMap, HeaderValue};
use opentelemetry::Context;
use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::TraceContextExt;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Name {
    Traceparent,
    Tracestate,
    Baggage,
}

impl Name {
    const ALL: [Name; 3] = [Name::Traceparent, Name::Tracestate, Name::Baggage];

    fn as_str(self) -> &'static str {
        match self {
            Name::Traceparent => "traceparent",
            Name::Tracestate => "tracestate",
            Name::Baggage => "baggage",
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// The headers in the order sent; a name may come more than once.
    headers: Vec<(Name, &'a [u8])>,
}

/// The baggage of `cx`, as sorted (name, value) pairs.
fn members(cx: &Context) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = cx
        .baggage()
        .iter()
        .map(|(k, (v, _))| (k.as_str().to_owned(), v.as_str().to_string()))
        .collect();
    all.sort();
    all
}

libfuzzer_sys::fuzz_target!(|input: Input<'_>| {
    static PROPAGATORS: Once = Once::new();
    PROPAGATORS.call_once(coldstart_exporters::fuzz::install_propagators);
    let mut headers = HeaderMap::new();
    for (name, value) in &input.headers {
        // What an HTTP server hands on: only bytes a header value may hold.
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name.as_str(), value);
        }
    }
    let cx = extract_headers(&headers);
    let sent = |name: Name| headers.get_all(name.as_str()).iter().count();
    if sent(Name::Traceparent) > 1 {
        assert!(
            !cx.span().span_context().is_valid(),
            "a traceparent sent twice gave a parent"
        );
    }
    // The lists sent in parts read as sent whole, where every part is text.
    let text = headers.values().all(|v| v.to_str().is_ok());
    if text && (sent(Name::Tracestate) > 1 || sent(Name::Baggage) > 1) {
        let mut whole = HeaderMap::new();
        for name in Name::ALL {
            let parts: Vec<&str> = headers
                .get_all(name.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            match name {
                Name::Traceparent => {
                    for part in parts {
                        whole.append(name.as_str(), HeaderValue::from_str(part).expect("text"));
                    }
                }
                _ if !parts.is_empty() => {
                    let joined = HeaderValue::from_str(&parts.join(",")).expect("text");
                    whole.insert(name.as_str(), joined);
                }
                _ => {}
            }
        }
        let one = extract_headers(&whole);
        assert_eq!(members(&one), members(&cx), "baggage sent in parts");
        assert_eq!(
            one.span().span_context().trace_state().header(),
            cx.span().span_context().trace_state().header(),
            "tracestate sent in parts"
        );
    }
    let mut out = HeaderMap::new();
    inject_headers(&cx, &mut out);
    let again = extract_headers(&out);
    // Names are written trimmed (a key is a token; one decoded with blanks around it
    // is written as the token). Every member read back is one that came in; one whose
    // name came in alone (no other name trims to it) has the value it came with.
    let came_in = |name: &str| -> Vec<String> {
        cx.baggage()
            .iter()
            .filter(|(k, _)| k.as_str().trim() == name)
            .map(|(_, (v, _))| v.as_str().to_string())
            .collect()
    };
    for (name, (value, _)) in again.baggage().iter() {
        let values = came_in(name.as_str());
        assert!(
            !values.is_empty(),
            "`{name}` was not among the members read"
        );
        if let [only] = values.as_slice() {
            assert_eq!(only, &value.as_str().to_string(), "{name}");
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
