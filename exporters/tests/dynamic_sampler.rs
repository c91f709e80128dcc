//! The dynamic sampler counts what the HTTP layer answers: with a base so small that
//! no trace is sampled without errors, and an error weight so large that one 5xx in
//! the window makes the probability 1, the request after a failed one is the only one
//! sampled. Uncounted, none would be. One test: telemetry is global.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

mod handler;
mod spans_seen;
mod telemetry;

use coldstart_bootstrap::Settings;
use coldstart_exporters::http::HttpTelemetryLayer;
use handler::Handler;
use http::Request;
use spans_seen::SEEN;
use tower_layer::Layer as _;
use tower_service::Service;

#[test]
fn the_dynamic_sampler_counts_answers_and_their_errors() {
    let telemetry = telemetry::installed(vec![
        ("OTEL_TRACES_EXPORTER", "none".to_owned()),
        ("COLDSTART_METRICS_ADDR", "off".to_owned()),
        ("OTEL_TRACES_SAMPLER", "coldstart_dynamic".to_owned()),
        ("OTEL_TRACES_SAMPLER_ARG", "1e-9".to_owned()),
        ("COLDSTART_SAMPLER_K1", "1e12".to_owned()),
        ("COLDSTART_SAMPLER_FLOOR", "0".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "10".to_owned()),
    ]);
    coldstart_runtime::block_on(&Settings::NONE, async move {
        let mut service = HttpTelemetryLayer::new().layer(Handler);
        for path in ["/before", "/down", "/after"] {
            if path == "/after" {
                // The probability is worked out once per tick of the coarse clock
                // (1 to 10 ms): the next decision must come in a later one.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            let request = Request::get(path).body(()).unwrap();
            let response = service.call(request).await.unwrap();
            // The answer's body is read to its end, as a server does (the layer ends
            // the span and counts the request at the response's head, but for a gRPC
            // call, whose code may come in the trailers).
            let _ = http_body_util::BodyExt::collect(response.into_body()).await;
        }
        telemetry.start_after_first_response();
        coldstart_runtime::first_request_done();
        telemetry::until(|| !SEEN.lock().unwrap().is_empty()).await;
    });
    let seen = SEEN.lock().unwrap().clone();
    let paths: Vec<_> = seen
        .iter()
        .map(|s| s.attributes.get("url.path").cloned().unwrap_or_default())
        .collect();
    assert_eq!(paths, ["/after"], "{seen:#?}");
    assert_eq!((seen[0].name.as_str(), &seen[0].error), ("GET", &None));
}
