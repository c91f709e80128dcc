/*!
OpenTelemetry tracing that costs nothing at cold start.

[`install`] sets coldstart's tracer ([`tracer::Tracer`]: the configured sampler, and a
span queue with no exporter, client or thread behind it yet) as the global tracer
provider, and the propagators. [`start`] builds the OTLP exporter and the resource
after the first response and starts exporting on the program's runtime; spans ended
before then were queued, so the cold-start request's trace is exported too. At
shutdown, what is queued is flushed within a deadline.

With `OTEL_TRACES_EXPORTER=none` spans are still made, sampled and propagated; they
go only to the plugins, if any, on the same schedule, and nowhere else.
*/

pub mod propagation;
mod queue;
pub mod sampler;
pub mod tracer;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::SpanExporter;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{Sampler as SdkSampler, ShouldSample, SpanLimits};

use crate::client::Client;
use crate::config::{Config, Protocol, Sampler};
use crate::problem;
use queue::Queue;
use sampler::DynamicSampler;
use tracer::{Core, Provider, Tracer};

/// The instrumentation scope of the spans coldstart creates.
pub const SCOPE: &str = "coldstart";

/// How long the final flush may take at shutdown.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(5);

/// What the final flush leaves of [`FLUSH_DEADLINE`] to count and report what it
/// could not send.
const FLUSH_MARGIN: Duration = Duration::from_millis(100);

static CORE: OnceLock<Core> = OnceLock::new();
static TRACER: OnceLock<Tracer> = OnceLock::new();
/// `service.version`, kept from [`install`] for the resource [`start`] builds.
static SERVICE_VERSION: OnceLock<Option<&'static str>> = OnceLock::new();

/// coldstart's tracer (instrumentation scope [`SCOPE`]), once telemetry is installed
/// with traces on; what the HTTP layer and the Lambda integration create spans with.
pub fn tracer() -> Option<&'static Tracer> {
    TRACER.get()
}

/// Installs the global tracer provider and the propagators. Nothing here reads a file
/// or builds the resource: that waits for [`start`].
pub(crate) fn install(config: &Config, service_version: Option<&'static str>) {
    if CORE.get().is_some() {
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

    let core = CORE.get_or_init(|| Core {
        sampler: sampler(config),
        limits: span_limits(config),
        queue: keeps_spans(config).then(|| Queue::new(config.queue)),
    });
    let _ = SERVICE_VERSION.set(service_version);
    let provider = Provider::new(core);
    let _ = TRACER.set(provider.tracer(SCOPE));
    opentelemetry::global::set_tracer_provider(provider);
}

/// Whether ended spans are kept for anything: an exporter, or a plugin to see them.
/// Without either they are made (for propagation and log lines) and dropped when they
/// end. Known once the plugins are installed.
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

/// Resource attributes the conventions define as integers; `OTEL_RESOURCE_ATTRIBUTES`
/// only carries strings.
const INT_ATTRIBUTES: [&str; 2] = ["faas.max_memory", "process.pid"];

/// `service.name`, `service.version`, `host.arch`, `process.pid`, the SDK's
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
    Otlp(SpanExporter),
    Nowhere,
}

impl opentelemetry_sdk::trace::SpanExporter for Sink {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        match self {
            Sink::Otlp(exporter) => exporter.export(batch).await,
            Sink::Nowhere => Ok(()),
        }
    }
}

/// The sink once [`start`] has built it, shared by the export task and flushes.
type Shared = Arc<tokio::sync::Mutex<Sink>>;
static EXPORTER: OnceLock<Option<Shared>> = OnceLock::new();

/// Builds the OTLP exporter (when spans are exported) and starts draining the queue;
/// registers the final flush at shutdown. Call it after the first response, inside
/// the runtime. Only the first call does anything; it returns the sink, `None` when
/// no span is kept or the exporter could not be built.
pub(crate) fn start(config: &Config) -> Option<&'static Shared> {
    EXPORTER.get_or_init(|| build_and_run(config)).as_ref()
}

fn build_and_run(config: &Config) -> Option<Shared> {
    use opentelemetry_sdk::trace::SpanExporter as _;
    let queue = CORE.get()?.queue.clone()?;
    let sink = if config.export_traces {
        let mut exporter = match exporter(config) {
            Ok(e) => e,
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
        exporter.set_resource(&resource(config, version));
        Sink::Otlp(exporter)
    } else {
        Sink::Nowhere
    };
    let exporter = Arc::new(tokio::sync::Mutex::new(sink));
    let (last_queue, last_exporter) = (queue.clone(), exporter.clone());
    coldstart_runtime::on_shutdown("span flush", FLUSH_DEADLINE, move || async move {
        // Ends a little before the hook's deadline, so that what it could not send is
        // still counted and said.
        let deadline = tokio::time::Instant::now() + FLUSH_DEADLINE - FLUSH_MARGIN;
        last_queue.finish(&last_exporter, deadline).await;
    });
    tokio::spawn(queue.run(exporter.clone()));
    Some(exporter)
}

/// Exports every span queued now, starting the exporter if it has not started,
/// within `budget`. A batch still unanswered when the budget is spent is dropped and
/// counted; spans not yet taken stay queued for the next export. Returns how many
/// spans were still queued at the end.
pub(crate) async fn flush(config: &Config, budget: Duration) -> usize {
    let (Some(core), Some(exporter)) = (CORE.get(), start(config)) else {
        return 0;
    };
    let Some(queue) = &core.queue else {
        return 0;
    };
    queue
        .flush(exporter, Some(tokio::time::Instant::now() + budget))
        .await;
    queue.len()
}

/// The OTLP exporter for the configured protocol. The endpoint and the timeout are
/// always given here, and the headers of the file and code layers; opentelemetry-otlp
/// reads the headers variables itself (a value coldstart rejects may still give it the
/// pairs it can parse).
fn exporter(config: &Config) -> Result<SpanExporter, String> {
    match config.protocol {
        Protocol::HttpProtobuf => http_exporter(config),
        #[cfg(feature = "grpc")]
        Protocol::Grpc => grpc_exporter(config),
        #[cfg(not(feature = "grpc"))]
        Protocol::Grpc => Err("gRPC needs coldstart's `grpc` feature".into()),
    }
}

/// OTLP/HTTP with coldstart's HTTP/1.1 client, on the program's runtime: no client
/// thread, no second runtime.
fn http_exporter(config: &Config) -> Result<SpanExporter, String> {
    use opentelemetry_otlp::WithHttpConfig;
    let builder = export_config(
        SpanExporter::builder()
            .with_http()
            .with_headers(config.otlp_headers.iter().cloned().collect()),
        config,
    );
    // TLS settings are built only for an `https://` collector: a plain one must not
    // depend on a CA bundle being present (the default endpoint is plain).
    #[cfg(feature = "tls")]
    let client = if https(config.otlp_endpoint_or_default()) {
        Client::with_tls(
            config.otlp_timeout,
            crate::tls::client_config(&config.otlp_tls)?,
        )
    } else {
        Client::plain(config.otlp_timeout)
    };
    #[cfg(not(feature = "tls"))]
    let client = Client::plain(config.otlp_timeout);
    let client = HTTP_CLIENT.get_or_init(|| Arc::new(client)).clone();
    builder
        .with_shared_http_client(client)
        .build()
        .map_err(|e| e.to_string())
}

/// The endpoint and the timeout, always given, so that opentelemetry-otlp never
/// reads its own from the environment: a value coldstart rejected ("using the
/// default") must not reach it.
fn export_config<B: opentelemetry_otlp::WithExportConfig>(builder: B, config: &Config) -> B {
    builder
        .with_endpoint(config.otlp_endpoint_or_default())
        .with_timeout(config.otlp_timeout)
}

/// Whether an OTLP endpoint is an `https://` URL.
#[cfg(feature = "tls")]
fn https(url: &str) -> bool {
    url.trim_start()
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// What a collector said of the spans it took, in an OTLP partial success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Partial {
    /// How many spans it says it rejected, as it says it (the queue caps it by the
    /// batch).
    pub(crate) rejected: u64,
    /// Its reason or warning, made fit for one line.
    pub(crate) message: String,
}

/// The partial success of the last OTLP/HTTP export, until the queue takes it with
/// that export's outcome: opentelemetry-otlp reads the answer too, but only logs it.
static PARTIAL: Mutex<Option<Partial>> = Mutex::new(None);

/// Keeps the partial success in `answer`, the body of a successful export's answer,
/// for [`take_partial`]. An answer that is empty, not the protobuf answer, or a full
/// success keeps nothing.
pub(crate) fn note_answer(answer: &[u8]) {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    use prost::Message as _;
    let Some(partial) = ExportTraceServiceResponse::decode(answer)
        .ok()
        .and_then(|a| a.partial_success)
    else {
        return;
    };
    let rejected = u64::try_from(partial.rejected_spans).unwrap_or(0);
    let message = problem::one_line(&partial.error_message, 200);
    if rejected > 0 || !message.is_empty() {
        *PARTIAL.lock().unwrap_or_else(|p| p.into_inner()) = Some(Partial { rejected, message });
    }
}

/// The partial success noted since the last call, once.
pub(crate) fn take_partial() -> Option<Partial> {
    PARTIAL.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// The OTLP/HTTP exporter's client, kept to say why an export failed.
static HTTP_CLIENT: OnceLock<Arc<Client>> = OnceLock::new();

/// Why the last OTLP/HTTP request failed, once; `None` when it did not fail (the
/// collector answered an error status, which the exporter's message says) or the
/// protocol is gRPC.
pub(crate) fn transport_failure() -> Option<String> {
    HTTP_CLIENT.get().and_then(|c| c.take_failure())
}

/// OTLP/gRPC on tonic. With the `tls` feature coldstart builds the channel itself,
/// to use the standard certificate variables, which opentelemetry-otlp ignores.
#[cfg(feature = "grpc")]
fn grpc_exporter(config: &Config) -> Result<SpanExporter, String> {
    use opentelemetry_otlp::WithTonicConfig;
    let mut metadata = tonic::metadata::MetadataMap::new();
    for (name, value) in &config.otlp_headers {
        if let (Ok(name), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes()),
            value.parse(),
        ) {
            metadata.insert(name, value);
        }
    }
    let builder = export_config(
        SpanExporter::builder().with_tonic().with_metadata(metadata),
        config,
    );
    #[cfg(feature = "tls")]
    let builder = builder.with_channel(grpc_channel(config)?);
    builder.build().map_err(|e| e.to_string())
}

/// A lazily connecting channel to the gRPC endpoint, over TLS for `https://`.
#[cfg(all(feature = "grpc", feature = "tls"))]
fn grpc_channel(config: &Config) -> Result<tonic::transport::Channel, String> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let url = config.otlp_endpoint_or_default().to_owned();
    let endpoint = Endpoint::from_shared(url.trim().to_owned())
        .map_err(|e| format!("invalid OTLP endpoint `{url}`: {e}"))?
        .timeout(config.otlp_timeout);
    if !url.trim_start().starts_with("https://") {
        return Ok(endpoint.connect_lazy());
    }
    let files = &config.otlp_tls;
    let mut tls = ClientTlsConfig::new();
    tls = match &files.ca {
        Some(ca) => tls.ca_certificate(Certificate::from_pem(crate::tls::certificate_pem(ca)?)),
        None => tls.with_native_roots(),
    };
    if let (Some(cert), Some(key)) = (&files.certificate, &files.key) {
        tls = tls.identity(Identity::from_pem(
            crate::tls::certificate_pem(cert)?,
            crate::tls::key_pem(key)?,
        ));
    }
    endpoint
        .tls_config(tls)
        .map(|e| e.connect_lazy())
        .map_err(|e| format!("OTLP TLS settings: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use opentelemetry_sdk::trace::SpanExporter as _;

    /// TLS settings are read only for an `https://` collector: a CA file that cannot be
    /// read (or a machine without a CA bundle) leaves a plain collector reachable.
    #[cfg(feature = "tls")]
    #[test]
    fn tls_settings_are_needed_only_for_an_https_collector() {
        let with = |endpoint: &str| {
            let env = coldstart_bootstrap::Env::fixed([
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.to_owned()),
                (
                    "OTEL_EXPORTER_OTLP_CERTIFICATE",
                    "/nonexistent/ca.pem".to_owned(),
                ),
            ]);
            let (config, errors) = crate::Config::from(&env);
            assert!(errors.is_empty(), "{errors:?}");
            super::exporter(&config).map(|_| ())
        };
        assert_eq!(with("http://127.0.0.1:4318"), Ok(()));
        let refused = with("HTTPS://collector.example:4318").unwrap_err();
        assert!(refused.contains("/nonexistent/ca.pem"), "{refused}");
    }

    /// Regression: with no collector listening, the OTLP/HTTP exporter retries with
    /// backoff, and without opentelemetry-otlp's `tokio` feature it slept with
    /// `std::thread::sleep`, blocking the runtime's thread (under `minimal`, the only
    /// one) and every request with it. On a paused tokio clock a backoff that waits on
    /// tokio advances that clock without any real waiting; a blocking sleep leaves it
    /// where it was. Nothing here measures real time.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_failing_export_backs_off_on_the_runtime_never_blocking_its_thread() {
        let port = crate::client::tests::refused_address().port();
        let env = coldstart_bootstrap::Env::fixed([(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        )]);
        let (config, errors) = crate::Config::from(&env);
        assert!(errors.is_empty(), "{errors:?}");
        let exporter = super::exporter(&config).unwrap();
        let start = tokio::time::Instant::now();
        let outcome = exporter.export(Vec::new()).await;
        assert!(outcome.is_err(), "an export to a closed port must fail");
        assert!(
            start.elapsed() > Duration::ZERO,
            "the retry backoff did not wait on tokio's clock: it blocked the thread"
        );
    }
}
