/*!
OpenTelemetry tracing that costs nothing at cold start.

`install` sets coldstart's tracer ([`tracer::Tracer`]: the configured sampler, and a
span queue with no exporter, client or thread behind it yet) as the global tracer
provider, and the propagators. `start` builds the OTLP exporter and the resource
after the first response and starts exporting on the program's runtime; spans ended
before then were queued, so the cold-start request's trace is exported too. At
shutdown, what is queued is flushed within a deadline.

With `OTEL_TRACES_EXPORTER=none` spans are still made, sampled and propagated; they
go only to the plugins, if any, on the same schedule, and nowhere else.
*/

pub(crate) mod encode;
#[cfg(feature = "grpc")]
mod grpc;
pub(crate) mod otlp;
pub mod propagation;
mod queue;
mod retry;
pub mod sampler;
pub mod tracer;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler as SdkSampler, ShouldSample, SpanLimits};

use crate::config::{Config, Sampler};
use crate::problem;
#[cfg(all(fuzzing, feature = "grpc"))]
pub(crate) use grpc::fuzz_answer as grpc_answer;
#[cfg(fuzzing)]
pub(crate) use otlp::retry_after as otlp_retry_after;
pub(crate) use otlp::{Partial, take_partial};
use queue::Queue;
use sampler::DynamicSampler;
use tracer::{Core, Provider, Tracer};

/// The instrumentation scope of the spans coldstart creates.
pub const SCOPE: &str = "coldstart";

static CORE: OnceLock<Core> = OnceLock::new();
static TRACER: OnceLock<Tracer> = OnceLock::new();
/// `service.version`, kept from [`install`] for the resource [`start`] builds.
static SERVICE_VERSION: OnceLock<Option<&'static str>> = OnceLock::new();

/// coldstart's tracer (instrumentation scope [`SCOPE`]), once telemetry is installed
/// with traces on; what the HTTP layer and the Lambda integration create spans with.
pub fn tracer() -> Option<&'static Tracer> {
    TRACER.get()
}

/// Installs coldstart's W3C propagators as the global one, those asked for
/// (`OTEL_PROPAGATORS`).
pub(crate) fn install_propagators(trace_context: bool, baggage: bool) {
    let mut propagators: Vec<Box<dyn TextMapPropagator + Send + Sync>> = Vec::new();
    if trace_context {
        propagators.push(Box::new(propagation::TraceContext::default()));
    }
    if baggage {
        propagators.push(Box::new(propagation::Baggage));
    }
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(propagators));
}

/// Installs the global tracer provider and the propagators. Nothing here reads a file
/// or builds the resource: that waits for [`start`].
pub(crate) fn install(config: &Config, service_version: Option<&'static str>) {
    if CORE.get().is_some() {
        return;
    }
    install_propagators(config.trace_context, config.baggage);

    let core = CORE.get_or_init(|| Core {
        sampler: sampler(config),
        limits: span_limits(config),
        value_length: config.span_limits.value_length,
        queue: keeps_spans(config).then(|| Queue::new(config.queue)),
    });
    let _ = SERVICE_VERSION.set(service_version);
    let provider = Provider::new(core);
    let _ = TRACER.set(provider.tracer(SCOPE));
    opentelemetry::global::set_tracer_provider(provider);
}

/// Whether ended spans are kept for anything: an exporter, or a plugin to see them.
/// Without either a span is its context alone (for propagation and log lines) and
/// keeps no record. Known once the plugins are installed.
pub(crate) fn keeps_spans(config: &Config) -> bool {
    config.traces && (config.export_traces || crate::plugin::any())
}

fn span_limits(config: &Config) -> SpanLimits {
    let limits = config.span_limits;
    SpanLimits {
        max_attributes_per_span: limits.attributes,
        max_events_per_span: limits.events,
        max_links_per_span: limits.links,
        max_attributes_per_event: limits.event_attributes,
        max_attributes_per_link: limits.link_attributes,
    }
}

/// The configured sampler. The parent-based ones are the SDK's `ParentBasedSampler`,
/// which the specification describes: a parent context whose span is not valid (an
/// empty one a failed extraction left) counts as no parent, and the root sampler
/// decides. The SDK's older `Sampler::ParentBased` read such a parent as not sampled,
/// and dropped the span.
fn sampler(config: &Config) -> Box<dyn ShouldSample> {
    let dynamic = |base| Box::new(DynamicSampler::new(base, config.dynamic));
    let parent_based = |root: Box<dyn ShouldSample>| -> Box<dyn ShouldSample> {
        Box::new(SdkSampler::parent_based(root))
    };
    match config.sampler {
        Sampler::AlwaysOn => Box::new(SdkSampler::AlwaysOn),
        Sampler::AlwaysOff => Box::new(SdkSampler::AlwaysOff),
        Sampler::TraceIdRatio(r) => Box::new(SdkSampler::TraceIdRatioBased(r)),
        Sampler::ParentBasedAlwaysOn => parent_based(Box::new(SdkSampler::AlwaysOn)),
        Sampler::ParentBasedAlwaysOff => parent_based(Box::new(SdkSampler::AlwaysOff)),
        Sampler::ParentBasedTraceIdRatio(r) => {
            parent_based(Box::new(SdkSampler::TraceIdRatioBased(r)))
        }
        Sampler::Dynamic(base) => dynamic(base),
        Sampler::ParentBasedDynamic(base) => parent_based(dynamic(base)),
    }
}

/// Resource attributes the conventions define as integers; `OTEL_RESOURCE_ATTRIBUTES`
/// only carries strings.
const INT_ATTRIBUTES: [&str; 2] = ["faas.max_memory", "process.pid"];

/// `service.name`, `service.version`, `host.arch`, `process.pid`,
/// `process.executable.name`, the SDK's
/// `telemetry.sdk.*`, and `OTEL_RESOURCE_ATTRIBUTES` (read by coldstart, so the file
/// and code layers count; its entries win over the detected ones).
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
    if let Some(name) = crate::config::executable_name() {
        attributes.push(KeyValue::new("process.executable.name", name));
    }
    if let Some(version) = service_version {
        attributes.push(KeyValue::new("service.version", version));
    }
    attributes.extend(
        config
            .resource_attributes
            .iter()
            .map(|(k, v)| match v.parse::<i64>() {
                Ok(n) if INT_ATTRIBUTES.contains(&k.as_str()) => KeyValue::new(k.clone(), n),
                _ => KeyValue::new(k.clone(), v.clone()),
            }),
    );
    Resource::builder_empty()
        .with_detector(Box::new(
            opentelemetry_sdk::resource::TelemetryResourceDetector,
        ))
        .with_attributes(attributes)
        .with_service_name(config.service_name.clone())
        .build()
}

/// Where the queue's batches go once [`start`] has run: the OTLP exporter, or, with
/// `OTEL_TRACES_EXPORTER=none`, nowhere (the plugins have seen them by then).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one value, made once, behind an `Arc`
pub(crate) enum Sink {
    Http(otlp::Exporter),
    #[cfg(feature = "grpc")]
    Grpc(grpc::Exporter),
    Nowhere,
    /// The exporter could not be built, and plugins still want the spans: each batch
    /// reaches them and is counted as a failed export.
    Unbuilt,
}

impl Sink {
    /// The exporter's [`retry::Patience`]; `None` for no exporter.
    fn patience(&self) -> Option<Arc<retry::Patience>> {
        match self {
            Sink::Http(exporter) => Some(exporter.patience.clone()),
            #[cfg(feature = "grpc")]
            Sink::Grpc(exporter) => Some(exporter.patience.clone()),
            Sink::Nowhere | Sink::Unbuilt => None,
        }
    }
}

impl opentelemetry_sdk::trace::SpanExporter for Sink {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        match self {
            Sink::Http(exporter) => exporter.export(batch).await,
            #[cfg(feature = "grpc")]
            Sink::Grpc(exporter) => exporter.export(batch).await,
            Sink::Nowhere => Ok(()),
            Sink::Unbuilt => {
                problem::drop_count(problem::Dropped::SpanExportFailed, batch.len() as u64);
                Ok(())
            }
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        match self {
            Sink::Http(exporter) => exporter.set_resource(resource),
            #[cfg(feature = "grpc")]
            Sink::Grpc(exporter) => exporter.set_resource(resource),
            Sink::Nowhere | Sink::Unbuilt => {}
        }
    }
}

/// The sink once [`start`] has built it, shared by the export task and flushes, and
/// its exporter's patience.
pub(crate) struct Started {
    sink: Arc<tokio::sync::Mutex<Sink>>,
    patience: Option<Arc<retry::Patience>>,
}
static EXPORTER: OnceLock<Option<Started>> = OnceLock::new();

/// Builds the OTLP exporter (when spans are exported) and starts draining the queue;
/// registers the final flush at shutdown. Call it after the first response, inside
/// the runtime. Only the first call does anything; it returns the sink, `None` when
/// no span is kept or the exporter could not be built and no plugin wants the spans
/// (with plugins, an exporter that could not be built is a sink that counts each
/// batch as dropped after the plugins saw it).
pub(crate) fn start(config: &Config) -> Option<&'static Started> {
    EXPORTER.get_or_init(|| build_and_run(config)).as_ref()
}

/// When the final flush given `within` stops exporting, from `now`
/// ([`crate::final_flush_budget`]); none past what the clock can hold
/// (`Duration::MAX` given in code).
fn final_flush_deadline(
    now: tokio::time::Instant,
    within: Duration,
) -> Option<tokio::time::Instant> {
    now.checked_add(crate::final_flush_budget(within))
}

/// [`start`], on a thread of its own when building the exporter reads the system's CA
/// store (an `https://` collector: 3 to 5 ms to read and parse Debian 12's 145 roots
/// in a release build), so that the runtime's threads go on serving meanwhile; under
/// `minimal` the one thread would otherwise hold every request for that long, just
/// after the first response ([`coldstart_runtime::task::off_runtime`]).
pub(crate) async fn start_soon(config: &'static Config) {
    if EXPORTER.get().is_some() {
        return;
    }
    if config.exports_over_tls() {
        coldstart_runtime::task::off_runtime("coldstart-otlp-start", move || {
            start(config);
        })
        .await;
    } else {
        start(config);
    }
}

fn build_and_run(config: &Config) -> Option<Started> {
    use opentelemetry_sdk::trace::SpanExporter as _;
    let queue = CORE.get()?.queue.clone()?;
    let sink = if config.export_traces {
        let mut sink = match otlp::exporter(config) {
            Ok(e) => e,
            // The plugins still see every span, on the export schedule.
            Err(e) if crate::plugin::any() => {
                problem::report("otlp-build", || {
                    format!(
                        "traces: cannot build the OTLP exporter ({e}); spans are not exported and are counted as dropped, after the plugins saw them"
                    )
                });
                Sink::Unbuilt
            }
            Err(e) => {
                let waiting = queue.discard();
                problem::report("otlp-build", || {
                    format!(
                        "traces: cannot build the OTLP exporter ({e}); spans are not exported, {waiting} queued spans are dropped"
                    )
                });
                return None;
            }
        };
        let version = SERVICE_VERSION.get().copied().flatten();
        sink.set_resource(&resource(config, version));
        sink
    } else {
        Sink::Nowhere
    };
    let patience = sink.patience();
    let exporter = Arc::new(tokio::sync::Mutex::new(sink));
    let (last_queue, last_exporter, last_patience) =
        (queue.clone(), exporter.clone(), patience.clone());
    let within = config.final_flush_within;
    coldstart_runtime::on_shutdown("span flush", within, move || async move {
        // Ends a little before the hook's deadline, so that what it could not send is
        // still counted and said.
        let deadline = final_flush_deadline(tokio::time::Instant::now(), within);
        if let Some(patience) = &last_patience {
            patience.run_out();
        }
        last_queue.finish(&last_exporter, deadline).await;
    });
    coldstart_runtime::task::spawn(queue.run(exporter.clone()));
    Some(Started {
        sink: exporter,
        patience,
    })
}

/// Exports every span queued now, starting the exporter if it has not started,
/// within `budget`. A batch still unanswered when the budget is spent is dropped and
/// counted; spans not yet taken stay queued for the next export. From the first such
/// flush on, the exporter no longer waits out its own retry backoff
/// ([`retry::Patience`]): the process may be frozen after it. Returns how many spans
/// were still queued, or in an export not answered yet, at the end.
pub(crate) async fn flush(config: &'static Config, budget: Duration) -> usize {
    // From now, not from after the exporter's start (its first build may take a
    // while, and the budget may be all that is left before a Lambda deadline). A
    // budget past what the clock can hold (`Duration::MAX`) is no deadline.
    let deadline = tokio::time::Instant::now().checked_add(budget);
    // Started off the runtime's threads where that reads the CA store, as at the
    // first response: a flush may come first (Lambda's first invocation).
    start_soon(config).await;
    let (Some(core), Some(started)) = (CORE.get(), start(config)) else {
        return 0;
    };
    let Some(queue) = &core.queue else {
        return 0;
    };
    if let Some(patience) = &started.patience {
        patience.run_out();
    }
    queue.flush(&started.sink, deadline).await;
    // A batch the periodic export still has out (it held the exporter past the
    // budget) is not exported yet either.
    queue.len() + queue.in_flight()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::Context;
    use opentelemetry::trace::{
        SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::trace::SamplingDecision;

    fn decision(sampler: Sampler, parent: Option<SpanContext>) -> SamplingDecision {
        let config = Config {
            sampler,
            ..Config::from(&coldstart_bootstrap::Env::fixed(Vec::<(&str, &str)>::new())).0
        };
        let cx = parent.map(|p| Context::new().with_remote_span_context(p));
        super::sampler(&config)
            .should_sample(
                cx.as_ref(),
                TraceId::from(7),
                "GET",
                &SpanKind::Server,
                &[],
                &[],
            )
            .decision
    }

    /// The final flush keeps 100 ms to count what it could not send, or a quarter of
    /// a shorter time (a fixed 100 ms left a flush of 100 ms or less no time to
    /// export); a time the clock cannot hold is no deadline.
    #[test]
    fn the_final_flush_keeps_a_margin_it_can_afford() {
        let now = tokio::time::Instant::now();
        let after = |within| final_flush_deadline(now, within).map(|d| d - now);
        let ms = Duration::from_millis;
        assert_eq!(after(Duration::from_secs(10)), Some(ms(9_900)));
        assert_eq!(after(ms(400)), Some(ms(300)));
        assert_eq!(after(ms(80)), Some(ms(60)));
        assert_eq!(after(Duration::ZERO), Some(Duration::ZERO));
        assert_eq!(after(Duration::MAX), None);
    }

    /// An invalid parent (what a failed extraction leaves in a context) is no parent:
    /// the root sampler decides. A valid one is followed.
    #[test]
    fn a_parent_that_is_not_valid_leaves_the_decision_to_the_root_sampler() {
        let sample = SamplingDecision::RecordAndSample;
        let parent = |flags| {
            SpanContext::new(
                TraceId::from(7),
                SpanId::from(9),
                flags,
                true,
                TraceState::default(),
            )
        };
        for sampler in [
            Sampler::ParentBasedAlwaysOn,
            Sampler::ParentBasedTraceIdRatio(1.0),
            Sampler::ParentBasedDynamic(1.0),
        ] {
            assert_eq!(
                decision(sampler, Some(SpanContext::empty_context())),
                sample
            );
            assert_eq!(decision(sampler, None), sample);
            assert_eq!(decision(sampler, Some(parent(TraceFlags::SAMPLED))), sample);
            assert_eq!(
                decision(sampler, Some(parent(TraceFlags::default()))),
                SamplingDecision::Drop
            );
        }
        assert_eq!(
            decision(
                Sampler::ParentBasedAlwaysOff,
                Some(parent(TraceFlags::SAMPLED))
            ),
            sample
        );
    }
}
