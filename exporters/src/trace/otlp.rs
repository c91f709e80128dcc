/*!
Talking OTLP: the exporter for the configured protocol, given exactly the settings
coldstart read (endpoint, timeout, headers), whatever opentelemetry-otlp would read
from the environment itself; and the collector's answer, read for the spans it
rejected, which opentelemetry-otlp only logs.
*/

use std::sync::{Arc, Mutex, OnceLock};

use opentelemetry_otlp::SpanExporter;

use crate::client::Client;
use crate::config::{Config, Protocol};
use crate::problem;

/// The OTLP exporter for the configured protocol.
pub(super) fn exporter(config: &Config) -> Result<SpanExporter, String> {
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
    let builder = export_config(SpanExporter::builder().with_http(), config);
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
    let client = HTTP_CLIENT
        .get_or_init(|| {
            Arc::new(OtlpClient {
                client,
                headers: http_headers(&config.otlp_headers),
            })
        })
        .clone();
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

/// The OTLP/HTTP exporter's transport: coldstart's client, sending exactly the
/// headers coldstart read, and reading the collector's answer for spans it rejected.
#[derive(Debug)]
struct OtlpClient {
    client: Client,
    headers: http::HeaderMap,
}

/// What opentelemetry-otlp sets on a request that is its own; every other header it
/// sets (those it reads from `OTEL_EXPORTER_OTLP_HEADERS` itself, a value coldstart may
/// have refused) is replaced by coldstart's.
const PROTOCOL_HEADERS: [http::HeaderName; 3] = [
    http::header::CONTENT_TYPE,
    http::header::CONTENT_ENCODING,
    http::header::USER_AGENT,
];

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpClient {
    async fn send_bytes(
        &self,
        mut request: http::Request<hyper::body::Bytes>,
    ) -> Result<http::Response<hyper::body::Bytes>, opentelemetry_http::HttpError> {
        let mut headers = self.headers.clone();
        for name in PROTOCOL_HEADERS {
            if let (Some(value), false) =
                (request.headers().get(&name), headers.contains_key(&name))
            {
                headers.insert(name, value.clone());
            }
        }
        *request.headers_mut() = headers;
        let response = self.client.send(request).await?;
        if response.status().is_success() {
            note_answer(response.body());
        }
        Ok(response)
    }
}

/// The configured headers as HTTP headers (each was checked when read).
fn http_headers(pairs: &[(String, String)]) -> http::HeaderMap {
    pairs
        .iter()
        .filter_map(|(name, value)| {
            Some((
                http::HeaderName::try_from(name.as_str()).ok()?,
                http::HeaderValue::try_from(value.as_str()).ok()?,
            ))
        })
        .collect()
}

/// The OTLP/HTTP exporter's client, kept to say why an export failed.
static HTTP_CLIENT: OnceLock<Arc<OtlpClient>> = OnceLock::new();

/// Why the last OTLP/HTTP request failed, once; `None` when it did not fail (the
/// collector answered an error status, which the exporter's message says) or the
/// protocol is gRPC.
pub(crate) fn transport_failure() -> Option<String> {
    HTTP_CLIENT.get().and_then(|c| c.client.take_failure())
}

/// OTLP/gRPC on tonic. With the `tls` feature coldstart builds the channel itself,
/// to use the standard certificate variables, which opentelemetry-otlp ignores. The
/// metadata sent is exactly the headers coldstart read: an interceptor replaces what
/// opentelemetry-otlp adds from `OTEL_EXPORTER_OTLP_HEADERS` itself (a value coldstart
/// may have refused).
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
        SpanExporter::builder().with_tonic().with_interceptor(
            move |mut request: tonic::Request<()>| {
                *request.metadata_mut() = metadata.clone();
                Ok(request)
            },
        ),
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
