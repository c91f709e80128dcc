//! Baseline: the http-server example's handler on a bare `#[tokio::main]` that sets up
//! observability the usual way, at the top of `main`: metrics-exporter-prometheus's
//! `install()` (recorder, listener and upkeep) and an OpenTelemetry tracer provider
//! with an OTLP/HTTP batch exporter (the batch processor's thread, the blocking
//! client opentelemetry-otlp uses by default). This is what coldstart's lazy start is
//! compared against.

use opentelemetry_otlp::WithHttpConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    metrics_exporter_prometheus::PrometheusBuilder::new().install()?;
    // opentelemetry-otlp builds its default blocking client on a thread of its own
    // (it cannot be built inside a runtime); do the same so the client is the default
    // one whichever client features the workspace turns on.
    let client = std::thread::spawn(reqwest::blocking::Client::new)
        .join()
        .map_err(|_| anyhow::anyhow!("building the HTTP client panicked"))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .build()?;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .build();
    opentelemetry::global::set_tracer_provider(provider);
    http_server::serve_baseline("baseline-eager").await
}
