//! An OTLP exporter that cannot be built (an `https://` collector without the `tls`
//! feature, or with a CA file that is not there) is reported once, and the plugins
//! still see every span, before and after: it used to drop the queue and every later
//! span without a plugin seeing them. One test: the plugins and telemetry are global.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use coldstart_bootstrap::Settings;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};

mod telemetry;
mod witness;
use witness::SEEN;

#[test]
fn plugins_see_spans_when_the_exporter_cannot_be_built() {
    let mut vars = vec![
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://127.0.0.1:1".to_owned(),
        ),
        ("COLDSTART_METRICS_ADDR", "off".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "10".to_owned()),
    ];
    // Read only when the exporter is built.
    if cfg!(feature = "tls") {
        vars.push((
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            "/nonexistent/coldstart-ca.pem".to_owned(),
        ));
    }
    let telemetry = telemetry::installed(vars);
    let tracer = opentelemetry::global::tracer_provider().tracer("plugin-test");
    tracer.start("before the start").end();

    coldstart_runtime::block_on(&Settings::NONE, async move {
        telemetry.start_after_first_response();
        coldstart_runtime::first_request_done();
        telemetry::until(|| SEEN.lock().unwrap().len() >= 2).await;
        tracer.start("after the start").end();
        telemetry::until(|| SEEN.lock().unwrap().len() >= 3).await;
    });
    assert_eq!(
        *SEEN.lock().unwrap(),
        [
            "error otlp-build",
            "span before the start",
            "span after the start"
        ]
    );
}
