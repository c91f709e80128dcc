//! Baseline: the lambda-hello example's handler on `lambda_runtime` with telemetry
//! set up eagerly at the top of `main`, as lambda_runtime's OpenTelemetry example
//! does: an OpenTelemetry tracer provider with an OTLP/HTTP batch exporter (the
//! default blocking client, as the HTTP eager baseline), the `tracing` bridge,
//! lambda_runtime's `OpenTelemetryLayer` flushing after each invocation, and a
//! metrics recorder (metrics-exporter-prometheus, no listener: Lambda cannot be
//! scraped). This is what coldstart's lazy start is compared against on Lambda.

use lambda_runtime::layers::{OpenTelemetryFaasTrigger, OpenTelemetryLayer};
use lambda_runtime::{Error, LambdaEvent, Runtime, service_fn};
use opentelemetry::trace::TracerProvider as _;
use serde_json::{Value, json};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

async fn echo(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(json!({ "greeting": "hello", "echo": event.payload }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    let exporter = coldstart_benches::eager_otlp_exporter()?;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .build();
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("baseline-lambda-eager")))
        .init();
    let flushing = provider.clone();
    let runtime = Runtime::new(service_fn(echo)).layer(
        OpenTelemetryLayer::new(move || {
            let _ = flushing.force_flush();
        })
        .with_trigger(OpenTelemetryFaasTrigger::Other),
    );
    runtime.run().await
}
