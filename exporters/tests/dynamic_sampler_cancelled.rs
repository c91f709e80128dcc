//! The dynamic sampler counts a request the client cancelled as traffic and not as an
//! error, and the failures a server counts itself (`sampler::record`, which
//! `coldstart::telemetry::record_for_sampler` calls) as errors. With a base so small
//! that no trace is sampled without errors, and an error weight so large that errors
//! over half of the window make the probability 1, whether a request is sampled shows
//! what the requests before it were counted as. One test: telemetry is global.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

mod handler;
mod spans_seen;
mod telemetry;

use std::time::Duration;

use coldstart_bootstrap::Settings;
use coldstart_exporters::http::HttpTelemetryLayer;
use coldstart_exporters::trace::sampler;
use handler::Handler;
use http::Request;
use spans_seen::SEEN;
use tower_layer::Layer as _;
use tower_service::Service;

/// Requests cancelled before their answer: with them counted as traffic, one 5xx is
/// 0.001% of the window, a sampling probability of 2e-5.
const CANCELLED: u32 = 100_000;

#[test]
fn cancelled_requests_are_traffic_and_a_servers_own_count_is_errors() {
    // p = 1e-9 * (1 + 2e9 * error_pct / 100), in a 10 s window.
    let telemetry = telemetry::installed(vec![
        ("OTEL_TRACES_EXPORTER", "none".to_owned()),
        ("COLDSTART_METRICS_ADDR", "off".to_owned()),
        ("OTEL_TRACES_SAMPLER", "coldstart_dynamic".to_owned()),
        ("OTEL_TRACES_SAMPLER_ARG", "1e-9".to_owned()),
        ("COLDSTART_SAMPLER_K1", "2e9".to_owned()),
        ("COLDSTART_SAMPLER_K2", "0".to_owned()),
        ("COLDSTART_SAMPLER_FLOOR", "0".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "10".to_owned()),
    ]);
    coldstart_runtime::block_on(&Settings::NONE, async move {
        let mut service = HttpTelemetryLayer::new().layer(Handler);
        // Made and dropped unanswered, as when the client goes away; none is sampled
        // (no errors yet).
        for _ in 0..CANCELLED {
            drop(service.call(Request::get("/gone").body(()).unwrap()));
        }
        for path in ["/down", "/after-cancelled"] {
            // The probability is worked out once per tick of the coarse clock (1 to
            // 10 ms): each decision that must see what came before is in a later one.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let request = Request::get(path).body(()).unwrap();
            let response = service.call(request).await.unwrap();
            let _ = http_body_util::BodyExt::collect(response.into_body()).await;
        }
        // Counted as errors, or not at all, the cancelled requests would have left the
        // 5xx the whole window and `/after-cancelled` sampled. Now a server's own
        // count of failures makes errors most of the window: the next is sampled.
        for _ in 0..10 * CANCELLED {
            sampler::record(true);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let request = Request::get("/after-own-errors").body(()).unwrap();
        let response = service.call(request).await.unwrap();
        let _ = http_body_util::BodyExt::collect(response.into_body()).await;
        telemetry.start_after_first_response();
        coldstart_runtime::first_request_done();
        telemetry::until(|| !SEEN.lock().unwrap().is_empty()).await;
    });
    let seen = SEEN.lock().unwrap().clone();
    let paths: Vec<_> = seen
        .iter()
        .map(|s| s.attributes.get("url.path").cloned().unwrap_or_default())
        .collect();
    // Spans leave in the order they end: a sampled `/after-cancelled` would come first.
    assert!(
        paths == ["/after-own-errors"],
        "{} spans, the first {:?}",
        paths.len(),
        &paths[..paths.len().min(5)]
    );
    // Sampled for what came before it, not for what it was.
    assert_eq!((seen[0].name.as_str(), &seen[0].error), ("GET", &None));
}
