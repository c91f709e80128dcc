//! A final flush given `Duration::MAX` in code (no limit) exports what is queued: the
//! hook added it to the clock and panicked, and the span was lost. The collector is
//! the real OTLP receiver. One test: telemetry is global.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::time::Duration;

use coldstart_bootstrap::{Env, Settings};
use coldstart_exporters::config::Config;
use coldstart_test_support::Collector;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};

#[test]
fn a_final_flush_without_a_limit_exports_what_is_queued() {
    let test = "a_final_flush_without_a_limit_exports_what_is_queued";
    let Some(collector) = Collector::start(test, "ok") else {
        return;
    };
    let (mut config, errors) = Config::from(&Env::fixed([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint()),
        ("COLDSTART_METRICS_ADDR", "off".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "60000".to_owned()),
    ]));
    assert!(errors.is_empty(), "{errors:?}");
    config.final_flush_within = Duration::MAX;
    let telemetry = coldstart_exporters::install_with(config, None);
    let tracer = opentelemetry::global::tracer_provider().tracer("final-flush-test");
    coldstart_runtime::block_on(&Settings::NONE, async move {
        telemetry.start_after_first_response();
        coldstart_runtime::first_request_done();
        // Once the exporter runs: it exports at once what was queued before it. The
        // span ended after that waits for the schedule (a minute), or the final flush.
        tokio::time::sleep(Duration::from_millis(300)).await;
        tracer.start("queued").end();
    });
    // The final flush ran as `block_on` ended.
    let names: Vec<String> = collector
        .spans()
        .iter()
        .map(|span| span["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(names, ["queued"]);
}
