/*!
OTLP over gRPC: coldstart's own exporter on the client generated from the official
protobuf definitions (`opentelemetry-proto`), on tonic.

opentelemetry-otlp's gRPC exporter takes the collector's answer itself and only logs a
partial success, so the spans a collector rejected could not be counted. This one reads
the answer as the HTTP exporter does ([`super::otlp::note_partial`]), sends exactly the
metadata coldstart read, and retries only the codes the OTLP specification calls
retryable, with exponential backoff on the runtime's clock, all within the OTLP
timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`). Not read: a collector's `RetryInfo` (the
delay it asks for, which opentelemetry-otlp honours, and with which it also retries
`RESOURCE_EXHAUSTED`); here such an answer is retried after the usual backoff, or,
for `RESOURCE_EXHAUSTED`, counted as a failed export.
*/

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::SpanData;
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;

use super::otlp::USER_AGENT;
use crate::config::Config;

/// Retries after the first attempt, and the backoff before the first retry, doubled
/// before each next one up to [`MAX_DELAY`] (jitter included): opentelemetry-otlp's
/// recommended policy.
const RETRIES: u32 = 3;
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_millis(1600);

/// The OTLP/gRPC span exporter.
#[derive(Debug)]
pub(crate) struct Exporter {
    client: TraceServiceClient<Channel>,
    /// Every request's metadata: the configured headers and a user agent.
    metadata: MetadataMap,
    timeout: Duration,
    resource: ResourceAttributesWithSchema,
}

/// The exporter for `config`'s endpoint; it connects on its first export.
pub(crate) fn exporter(config: &Config) -> Result<Exporter, String> {
    Ok(Exporter {
        client: TraceServiceClient::new(channel(config)?),
        metadata: metadata(&config.otlp_headers),
        timeout: config.otlp_timeout,
        resource: ResourceAttributesWithSchema::default(),
    })
}

impl opentelemetry_sdk::trace::SpanExporter for Exporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, &self.resource),
        };
        // The timeout bounds the whole export, retries included, as the specification
        // asks: an attempt gets what is left of it, and no retry starts past it.
        let deadline = tokio::time::Instant::now() + self.timeout;
        let (mut retry, mut delay) = (0, FIRST_DELAY);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let mut call = tonic::Request::new(request.clone());
            *call.metadata_mut() = self.metadata.clone();
            call.set_timeout(left);
            let status = match tokio::time::timeout(left, self.client.clone().export(call)).await {
                Ok(Ok(answer)) => {
                    if let Some(partial) = answer.into_inner().partial_success {
                        super::otlp::note_partial(partial);
                    }
                    return Ok(());
                }
                Ok(Err(status)) => status,
                Err(_) => tonic::Status::deadline_exceeded(""),
            };
            let wait = (delay + jitter()).min(MAX_DELAY);
            let past_deadline = tokio::time::Instant::now() + wait >= deadline;
            if retry == RETRIES || !retryable(status.code()) || past_deadline {
                return Err(OTelSdkError::InternalFailure(failure(&status)));
            }
            retry += 1;
            tokio::time::sleep(wait).await;
            delay = (delay * 2).min(MAX_DELAY);
        }
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.resource = resource.into();
    }
}

/// The codes the OTLP specification calls retryable (less `RESOURCE_EXHAUSTED`, which
/// it retries only with retry information, not read here).
fn retryable(code: tonic::Code) -> bool {
    use tonic::Code;
    matches!(
        code,
        Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::OutOfRange
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// Up to 100 ms, so that programs started together do not retry together.
fn jitter() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_nanos(u64::from(nanos % 100_000_000))
}

/// Why an export failed, in one line: the code, and for a failure of tonic's own
/// transport (no connection, no name) its causes. The collector's own message is left
/// out, as opentelemetry-otlp leaves it out: it may echo a credential back.
fn failure(status: &tonic::Status) -> String {
    let mut line = format!("gRPC export failed with code {:?}", status.code());
    let mut cause = std::error::Error::source(status);
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    crate::problem::one_line(&line, 300)
}

/// The configured headers as gRPC metadata (a name ending in `-bin` as binary
/// metadata, its value's bytes; a name given twice keeps its last value), and a user
/// agent unless one was configured (tonic adds its own after it).
fn metadata(pairs: &[(String, String)]) -> MetadataMap {
    use tonic::metadata::{BinaryMetadataValue, MetadataKey, MetadataValue};
    let mut metadata = MetadataMap::new();
    for (name, value) in pairs {
        let name = name.to_ascii_lowercase();
        if name.ends_with("-bin") {
            if let Ok(key) = MetadataKey::from_bytes(name.as_bytes()) {
                metadata.insert_bin(key, BinaryMetadataValue::from_bytes(value.as_bytes()));
            }
        } else if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(name.as_bytes()),
            value.parse::<MetadataValue<_>>(),
        ) {
            metadata.insert(key, value);
        }
    }
    if !metadata.contains_key("user-agent") {
        metadata.insert("user-agent", MetadataValue::from_static(USER_AGENT));
    }
    metadata
}

/// A lazily connecting channel to the gRPC endpoint; over TLS for `https://`, with
/// the standard certificate variables (feature `tls`).
fn channel(config: &Config) -> Result<Channel, String> {
    use tonic::transport::Endpoint;
    let url = config.otlp_endpoint_or_default().trim().to_owned();
    let endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| format!("invalid OTLP endpoint `{url}`: {e}"))?
        .timeout(config.otlp_timeout);
    #[cfg(feature = "tls")]
    if super::otlp::https(&url) {
        return tls(endpoint, &config.otlp_tls).map(|e| e.connect_lazy());
    }
    Ok(endpoint.connect_lazy())
}

#[cfg(feature = "tls")]
fn tls(
    endpoint: tonic::transport::Endpoint,
    files: &crate::config::ClientTls,
) -> Result<tonic::transport::Endpoint, String> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
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
        .map_err(|e| format!("OTLP TLS settings: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceResponse,
    };
    use opentelemetry_sdk::trace::SpanExporter as _;
    use tonic::transport::server::TcpIncoming;

    use super::*;
    use crate::trace::otlp::tests::pairs;

    #[test]
    fn metadata_is_the_configured_headers_and_a_user_agent() {
        let metadata = metadata(&pairs(&[
            ("X-Tenant", "a"),
            ("x-tenant", "b"),
            ("trace-proof-bin", "\u{1}raw"),
        ]));
        assert_eq!(metadata.get("x-tenant").unwrap(), "b");
        assert_eq!(
            metadata
                .get_bin("trace-proof-bin")
                .unwrap()
                .to_bytes()
                .unwrap(),
            "\u{1}raw".as_bytes()
        );
        assert!(
            metadata
                .get("user-agent")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("OTel-OTLP-Exporter-Rust (coldstart/")
        );
        assert_eq!(metadata.len(), 3);
    }

    /// A collector that answers each call with the next of `answers` (the last one
    /// again once they run out), counting the calls.
    struct Collector {
        answers: Vec<Result<i64, tonic::Code>>,
        calls: Arc<AtomicUsize>,
    }

    #[tonic::async_trait]
    impl TraceService for Collector {
        async fn export(
            &self,
            _: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            match self.answers[call.min(self.answers.len() - 1)] {
                Ok(0) => Ok(tonic::Response::new(ExportTraceServiceResponse::default())),
                Ok(rejected) => Ok(tonic::Response::new(ExportTraceServiceResponse {
                    partial_success: Some(ExportTracePartialSuccess {
                        rejected_spans: rejected,
                        error_message: "over quota".into(),
                    }),
                })),
                Err(code) => Err(tonic::Status::new(code, "secret-token echoed")),
            }
        }
    }

    /// Serves `answers` on a real tonic server; returns an exporter to it and the count
    /// of calls it received.
    async fn exporter_to(answers: Vec<Result<i64, tonic::Code>>) -> (Exporter, Arc<AtomicUsize>) {
        exporter_with(answers, None).await
    }

    /// [`exporter_to`], with `OTEL_EXPORTER_OTLP_TIMEOUT` if given.
    async fn exporter_with(
        answers: Vec<Result<i64, tonic::Code>>,
        timeout_ms: Option<&str>,
    ) -> (Exporter, Arc<AtomicUsize>) {
        let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = incoming.local_addr().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let collector = Collector {
            answers,
            calls: calls.clone(),
        };
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(collector))
                .serve_with_incoming(incoming),
        );
        let mut vars = vec![
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
        ];
        vars.extend(timeout_ms.map(|ms| ("OTEL_EXPORTER_OTLP_TIMEOUT", ms.to_owned())));
        let (config, errors) = crate::Config::from(&coldstart_bootstrap::Env::fixed(vars));
        assert!(errors.is_empty(), "{errors:?}");
        (exporter(&config).unwrap(), calls)
    }

    /// One test for the partial successes: they are kept in one place for the queue.
    #[tokio::test]
    async fn a_partial_success_is_noted_for_the_queue() {
        let (exporter, calls) = exporter_to(vec![Ok(3), Ok(0)]).await;
        let _ = super::super::otlp::take_partial();
        exporter.export(Vec::new()).await.unwrap();
        let partial = super::super::otlp::take_partial().unwrap();
        assert_eq!(
            (partial.rejected, partial.message.as_str()),
            (3, "over quota")
        );
        // A full success notes nothing.
        exporter.export(Vec::new()).await.unwrap();
        assert_eq!(super::super::otlp::take_partial(), None);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    /// Real backoff: a paused clock would also run out tonic's own timeouts.
    #[tokio::test]
    async fn only_retryable_codes_are_retried_and_the_reason_hides_the_message() {
        // UNAVAILABLE twice, then an answer: three calls, success.
        let (exporter, calls) = exporter_to(vec![
            Err(tonic::Code::Unavailable),
            Err(tonic::Code::Unavailable),
            Ok(0),
        ])
        .await;
        exporter.export(Vec::new()).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        // UNAVAILABLE every time: the first call and three retries, then the failure.
        let (exporter, calls) = exporter_to(vec![Err(tonic::Code::Unavailable)]).await;
        let failed = exporter.export(Vec::new()).await.unwrap_err().to_string();
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert!(failed.contains("code Unavailable"), "{failed}");
        assert!(!failed.contains("secret-token"), "{failed}");

        // PERMISSION_DENIED is not retried.
        let (exporter, calls) = exporter_to(vec![Err(tonic::Code::PermissionDenied)]).await;
        let failed = exporter.export(Vec::new()).await.unwrap_err().to_string();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(failed.contains("code PermissionDenied"), "{failed}");
    }

    /// The timeout bounds the export, retries included: with 250 ms, no retry starts
    /// once the next backoff (100-200 ms, then 200-300 ms) would pass it, so a
    /// collector that is always `UNAVAILABLE` gets at most two calls, not four.
    #[tokio::test]
    async fn retries_stop_at_the_timeout() {
        let (exporter, calls) =
            exporter_with(vec![Err(tonic::Code::Unavailable)], Some("250")).await;
        let failed = exporter.export(Vec::new()).await.unwrap_err().to_string();
        assert!(failed.contains("code Unavailable"), "{failed}");
        let calls = calls.load(Ordering::SeqCst);
        assert!((1..=2).contains(&calls), "{calls} calls within 250 ms");
    }

    #[tokio::test]
    async fn a_collector_that_is_down_is_named_with_the_cause() {
        let port = crate::client::tests::refused_address().port();
        let env = coldstart_bootstrap::Env::fixed([
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{port}"),
            ),
        ]);
        let (config, errors) = crate::Config::from(&env);
        assert!(errors.is_empty(), "{errors:?}");
        let mut exporter = exporter(&config).unwrap();
        exporter.set_resource(&opentelemetry_sdk::Resource::builder_empty().build());
        let failed = exporter.export(Vec::new()).await.unwrap_err().to_string();
        assert!(failed.contains("code Unavailable"), "{failed}");
        assert!(failed.to_lowercase().contains("connect"), "{failed}");
    }
}
