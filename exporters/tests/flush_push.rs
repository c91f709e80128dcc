//! A flush pushes the metrics too, once the first response is done: on Lambda, which flushes
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
    metrics::counter!("http_requests_total", "method" => "GET", "route" => "/", "status" => "200")
        .increment(1);
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
        // At once, before the task the mark woke to start the exporters has run (on
        // Lambda, the cold-start invocation's flush): the flush pushes, and starts
        // the pushes.
        assert_eq!(telemetry.flush(Duration::from_secs(5)).await, 0);
        let first = pushes
            .try_recv()
            .expect("a push made within the first flush");
        assert!(first.contains("\ninvocations_total 1\n"), "{first}");
        // With the HTTP families' own help text, as every later push has it.
        assert!(
            first.contains("# HELP http_requests_total HTTP requests answered"),
            "{first}"
        );
        // The interval's first tick, due at once, is left out: the flush stood for it.
        // The exporters' start, run now, starts no second interval.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            pushes.try_recv().is_err(),
            "the first tick pushed after the flush"
        );
        metrics::counter!("invocations_total").increment(1);
        assert_eq!(telemetry.flush(Duration::from_secs(5)).await, 0);
        let pushed = pushes.try_recv().expect("a push made within the flush");
        assert!(pushed.contains("\ninvocations_total 2\n"), "{pushed}");
        assert!(pushes.try_recv().is_err(), "one push a flush");
    });
}
