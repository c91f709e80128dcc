/*!
What the benches measure of code that is not public API (the OTLP/HTTP exporter's
writing of a request, `benches/benches/otlp_encode.rs`), and the spans they measure it
with, which the tests use too. Not for programs; hidden from the docs.
*/

use std::borrow::Cow;
use std::time::{Duration, UNIX_EPOCH};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

/// flate2's compression level the OTLP/HTTP exporter gzips its requests at.
pub const OTLP_GZIP_LEVEL: u32 = crate::trace::otlp::GZIP_LEVEL;

/// The `ExportTraceServiceRequest` the OTLP/HTTP exporter sends for `batch`.
///
/// # Errors
///
/// As the exporter's writing fails: never, unless the module has a fault.
pub fn otlp_request(resource: &Resource, batch: &[SpanData]) -> Result<Vec<u8>, String> {
    crate::trace::encode::request(&crate::trace::encode::EncodedResource::new(resource), batch)
}

/// The `n`th of a run of sampled server spans as `HttpTelemetryLayer` makes them: named
/// `GET /users/{id}`, four attributes, 120 µs long.
pub fn layer_span(n: u64) -> SpanData {
    let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_micros(n);
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(u128::from(n) * 7919 + 1),
            SpanId::from(n + 1),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: Cow::Owned("GET /users/{id}".to_owned()),
        start_time: start,
        end_time: start + Duration::from_micros(120),
        attributes: vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", "/users/{id}"),
            KeyValue::new("url.path", format!("/users/{n}")),
            KeyValue::new("http.response.status_code", 200_i64),
        ],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("coldstart").build(),
    }
}
