//! With `OTEL_TRACES_EXPORTER=none`, spans are still made and the plugins see them,
//! on the export schedule as usual; nothing is sent to the endpoint. One test: the
//! plugins and telemetry are global.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::net::TcpListener;

use coldstart_bootstrap::Settings;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};

mod telemetry;
mod witness;
use witness::SEEN;

#[test]
fn plugins_see_spans_that_are_not_exported() {
    // A collector address that accepts connections: a connection would show an export.
    let collector = TcpListener::bind("127.0.0.1:0").unwrap();
    collector.set_nonblocking(true).unwrap();
    let telemetry = telemetry::installed(vec![
        ("OTEL_TRACES_EXPORTER", "none".to_owned()),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{}", collector.local_addr().unwrap()),
        ),
        ("COLDSTART_METRICS_ADDR", "off".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "10".to_owned()),
    ]);
    let tracer = opentelemetry::global::tracer_provider().tracer("plugin-test");
    let mut span = tracer.start("work");
    assert!(span.is_recording(), "spans are still made");
    span.end();

    coldstart_runtime::block_on(&Settings::NONE, async move {
        telemetry.start_after_first_response();
        coldstart_runtime::first_request_done();
        telemetry::until(|| !SEEN.lock().unwrap().is_empty()).await;
        // A second span goes the same way, on the export task's schedule.
        tracer.start("more work").end();
        telemetry::until(|| SEEN.lock().unwrap().len() >= 2).await;
    });
    assert_eq!(*SEEN.lock().unwrap(), ["span work", "span more work"]);
    assert_eq!(
        collector.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "nothing may connect to the endpoint"
    );
}
