//! A program whose `main` ends before its first response (a job that serves nothing
//! and ends before the fallback timer) still exports the spans it recorded, to the
//! real OTLP receiver. One test: telemetry is global to the process.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use opentelemetry::trace::{Tracer as _, TracerProvider as _};

use coldstart_test_support::Collector;

/// Regression: the exporters started only after a first response, so a job's spans
/// were never sent, counted or reported.
#[test]
fn spans_of_a_main_that_ends_before_its_first_response_are_exported() {
    let test = "spans_of_a_main_that_ends_before_its_first_response_are_exported";
    let Some(collector) = Collector::start(test, "ok") else {
        return;
    };
    coldstart::Builder::new()
        .set("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint())
        .set("OTEL_SERVICE_NAME", "end-of-main")
        .set("COLDSTART_METRICS_ADDR", "off")
        .block_on(async {
            let tracer = opentelemetry::global::tracer_provider().tracer("job");
            tracer.in_span("step", |_| {});
            assert_eq!(coldstart::state(), coldstart::State::Serving);
        });
    let spans = collector.at_least(1);
    assert!(spans.iter().any(|s| s["name"] == "step"), "{spans:?}");
}
