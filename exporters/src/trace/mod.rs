/*!
OpenTelemetry tracing that costs nothing at cold start.

[`install`] builds the tracer provider at start-up with the configured sampler and a
processor that only queues (no exporter, no client, no thread), and sets the global
provider and propagators. [`start`] builds the OTLP exporter after the first response
and starts exporting on the program's runtime; spans ended before then were queued,
so the cold-start request's trace is exported too. At shutdown, what is queued is
flushed within a deadline.
*/

pub mod propagation;
mod queue;
pub mod sampler;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{Sampler as SdkSampler, SdkTracer, SdkTracerProvider, ShouldSample};

use crate::config::{Config, Sampler};
use crate::problem;
use queue::{Queue, Queueing};
use sampler::DynamicSampler;

/// The instrumentation scope of the spans coldstart creates.
pub const SCOPE: &str = "coldstart";

/// How long the final flush may take at shutdown.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(5);

static TRACER: OnceLock<SdkTracer> = OnceLock::new();
static QUEUE: OnceLock<Arc<Queue>> = OnceLock::new();

/// The tracer the HTTP layer uses, once [`install`] has run.
pub(crate) fn tracer() -> Option<&'static SdkTracer> {
    TRACER.get()
}

/// Builds and installs the tracer provider and the propagators.
pub(crate) fn install(config: &Config, service_version: Option<&'static str>) {
    if TRACER.get().is_some() {
        return;
    }
    let mut propagators: Vec<Box<dyn TextMapPropagator + Send + Sync>> = Vec::new();
    if config.trace_context {
        propagators.push(Box::new(TraceContextPropagator::new()));
    }
    if config.baggage {
        propagators.push(Box::new(BaggagePropagator::new()));
    }
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(propagators));

    let queue = Queue::new(config.queue);
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler(config))
        .with_resource(resource(config, service_version))
        .with_span_processor(Queueing(queue.clone()))
        .build();
    let _ = TRACER.set(provider.tracer(SCOPE));
    let _ = QUEUE.set(queue);
    opentelemetry::global::set_tracer_provider(provider);
}

fn sampler(config: &Config) -> Box<dyn ShouldSample> {
    let dynamic = |base| Box::new(DynamicSampler::new(base, config.dynamic));
    let sampler = match config.sampler {
        Sampler::AlwaysOn => SdkSampler::AlwaysOn,
        Sampler::AlwaysOff => SdkSampler::AlwaysOff,
        Sampler::TraceIdRatio(r) => SdkSampler::TraceIdRatioBased(r),
        Sampler::ParentBasedAlwaysOn => SdkSampler::ParentBased(Box::new(SdkSampler::AlwaysOn)),
        Sampler::ParentBasedAlwaysOff => SdkSampler::ParentBased(Box::new(SdkSampler::AlwaysOff)),
        Sampler::ParentBasedTraceIdRatio(r) => {
            SdkSampler::ParentBased(Box::new(SdkSampler::TraceIdRatioBased(r)))
        }
        Sampler::Dynamic(base) => return dynamic(base),
        Sampler::ParentBasedDynamic(base) => SdkSampler::ParentBased(dynamic(base)),
    };
    Box::new(sampler)
}

/// `service.name`, `service.version`, `host.arch`, `process.pid`, and whatever
/// `OTEL_RESOURCE_ATTRIBUTES` adds (the SDK reads it).
fn resource(config: &Config, service_version: Option<&'static str>) -> Resource {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "x86",
        "arm" => "arm32",
        other => other,
    };
    let mut attributes = vec![
        KeyValue::new("host.arch", arch),
        KeyValue::new("process.pid", i64::from(std::process::id())),
    ];
    if let Some(version) = service_version {
        attributes.push(KeyValue::new("service.version", version));
    }
    Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attributes(attributes)
        .build()
}

/// Builds the OTLP exporter and starts exporting the queue; registers the final
/// flush at shutdown. Call it after the first response, inside the runtime.
pub(crate) fn start(config: &Config) {
    use opentelemetry_otlp::WithHttpConfig;
    let Some(queue) = QUEUE.get().cloned() else {
        return;
    };
    // hyper on the program's runtime: no client thread, no second runtime.
    let client =
        opentelemetry_http::hyper::HyperClient::with_default_connector(config.otlp_timeout, None);
    let mut exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .build()
    {
        Ok(e) => e,
        Err(e) => {
            let waiting = queue.discard();
            problem::report("otlp-build", || {
                format!(
                    "traces: cannot build the OTLP exporter ({e}); tracing is off, {waiting} queued spans are dropped"
                )
            });
            return;
        }
    };
    queue.prepare(&mut exporter);
    let exporter = Arc::new(tokio::sync::Mutex::new(exporter));
    let (last_queue, last_exporter) = (queue.clone(), exporter.clone());
    coldstart_runtime::on_shutdown("span flush", FLUSH_DEADLINE, move || async move {
        last_queue.flush(&last_exporter).await;
    });
    tokio::spawn(queue.run(exporter));
}
