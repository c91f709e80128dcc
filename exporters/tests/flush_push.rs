//! A flush pushes the metrics too, once pushes have started: on Lambda, which flushes
//! after each invocation's response, the interval's timer does not run while the
//! process is frozen, so an invocation's counts reached the gateway only at the next
//! thaw, during the next invocation. (That the interval's next tick is then left out
//! is a unit test of the push module's.) One test: telemetry is global.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::time::Duration;

use coldstart_bootstrap::Settings;

mod telemetry;

#[test]
fn a_flush_pushes_the_metrics_before_it_returns() {
    let (gateway, pushes) = telemetry::gateway();
    let telemetry = telemetry::installed(vec![
        (
            "COLDSTART_METRICS_PUSH_URL",
            format!("http://127.0.0.1:{gateway}"),
        ),
        ("COLDSTART_METRICS_PUSH_INTERVAL", "1h".to_owned()),
        ("OTEL_TRACES_EXPORTER", "none".to_owned()),
    ]);
    metrics::counter!("invocations_total").increment(1);
    let settings = Settings {
        flavor: Some(coldstart_bootstrap::Flavor::CurrentThread),
        ..Settings::NONE
    };
    coldstart_runtime::block_on(&settings, async move {
        // Before pushes start, a flush pushes nothing.
        assert_eq!(telemetry.flush(Duration::from_secs(5)).await, 0);
        assert!(pushes.try_recv().is_err(), "a push before pushes started");
        telemetry.start_after_first_response();
        coldstart_runtime::first_request_done();
        // The interval's first push comes at once; the next one in an hour.
        let (first, pushes) = tokio::task::spawn_blocking(move || {
            (pushes.recv_timeout(Duration::from_secs(10)), pushes)
        })
        .await
        .unwrap();
        assert!(first.unwrap().contains("\ninvocations_total 1\n"));
        metrics::counter!("invocations_total").increment(1);
        assert_eq!(telemetry.flush(Duration::from_secs(5)).await, 0);
        let pushed = pushes.try_recv().expect("a push made within the flush");
        assert!(pushed.contains("\ninvocations_total 2\n"), "{pushed}");
        assert!(pushes.try_recv().is_err(), "one push a flush");
    });
}
