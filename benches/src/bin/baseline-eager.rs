//! Baseline: the http-server example's handler on a bare `#[tokio::main]` that sets up
//! observability the usual way, at the top of `main`: metrics-exporter-prometheus's
//! `install()` (recorder, listener and upkeep) and an OpenTelemetry tracer provider
//! with an OTLP/HTTP batch exporter (the batch processor's thread, the blocking
//! client opentelemetry-otlp uses by default). This is what coldstart's lazy start is
//! compared against.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    metrics_exporter_prometheus::PrometheusBuilder::new().install()?;
    let exporter = coldstart_benches::eager_otlp_exporter()?;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .build();
    opentelemetry::global::set_tracer_provider(provider);
    http_server::serve_baseline("baseline-eager").await
}
