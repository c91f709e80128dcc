//! A flush given a budget past what the clock can hold (`Duration::MAX`) is a flush
//! without a deadline: it used to panic adding the budget to the clock. The collector
//! here takes each connection and closes it unanswered, counting them (an export
//! that fails, and a count that shows the flush made its attempt). One test:
//! telemetry is global.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use coldstart_bootstrap::Settings;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};

mod telemetry;

#[test]
fn a_flush_with_an_unbounded_budget_ends_without_a_panic() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = format!("http://{}", listener.local_addr().unwrap());
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let telemetry = telemetry::installed(vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", refused),
        ("COLDSTART_METRICS_ADDR", "off".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "60000".to_owned()),
    ]);
    let tracer = opentelemetry::global::tracer_provider().tracer("flush-test");
    let left = coldstart_runtime::block_on(&Settings::NONE, async move {
        tracer.start("queued").end();
        tokio::time::timeout(Duration::from_secs(30), telemetry.flush(Duration::MAX))
            .await
            .expect("the flush ended")
    });
    assert_eq!(left, 0, "the span was taken (and dropped: nothing answers)");
    assert!(
        attempts.load(Ordering::SeqCst) >= 1,
        "the flush made its attempt"
    );
}
