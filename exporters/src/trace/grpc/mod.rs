/*!
OTLP over gRPC: coldstart's own exporter, on tonic.

opentelemetry-otlp's gRPC exporter takes the collector's answer itself and only logs a
partial success, so the spans a collector rejected could not be counted. This one reads
the answer as the HTTP exporter does ([`super::otlp::note_partial`]), sends exactly the
metadata coldstart read, and retries only the codes the OTLP specification calls
retryable, with exponential backoff on the runtime's clock, all within the OTLP
timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`). A collector that sends `RetryInfo` (in the
status details, `grpc-status-details-bin`) is waited for at least the delay it asks
(at most [`MAX_ASKED_DELAY`]), and only then is `RESOURCE_EXHAUSTED` retried, as the
specification says: without it, that code means the collector cannot take more.

The request is the one the HTTP exporter writes ([`super::encode`]), sent as it is
through a codec of its own ([`Written`]) on the method the official definitions name;
the tests serve it with the service opentelemetry-proto generates from them.
*/

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::SpanData;
use tonic::client::Grpc;
use tonic::metadata::MetadataMap;
use tonic::transport::Endpoint;

mod answer;
mod status;

#[cfg(fuzzing)]
pub(crate) use answer::fuzz_answer;
use answer::{ANSWER_LIMIT, Checked};
use status::{asked_delay, failure, retryable, transport_failed, unanswered};

use super::encode::{self, EncodedResource};
use super::otlp::USER_AGENT;
use super::retry::{Attempt, MAX_ASKED_DELAY, Patience, with_retries};
use crate::config::Config;

/// The trace service's export method (`opentelemetry/proto/collector/trace/v1/trace_service.proto`).
const SERVICE: &str = "opentelemetry.proto.collector.trace.v1.TraceService";
const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// A `grpc-timeout` past this is no limit, and not sent: tonic refuses to write one
/// past some 11 000 years (panics), which a timeout given as `Duration::MAX` in code is.
const NO_LIMIT_PAST: Duration = Duration::from_secs(365 * 24 * 3600);

/// The OTLP/gRPC span exporter.
#[derive(Debug)]
pub(crate) struct Exporter {
    /// What a new channel is made from.
    endpoint: Endpoint,
    compression: crate::config::Compression,
    /// The channel, and when it last answered or was made (`None` while a call on it
    /// runs, and once one got no answer or was cut off): one idle longer than
    /// [`MAX_IDLE`](crate::client::MAX_IDLE), or unanswered, is replaced, as the HTTP
    /// client does with its kept connection (a middlebox may have forgotten it, and
    /// tonic connects again only after a transport error, not after a call that timed
    /// out).
    channel: Mutex<(Grpc<Checked>, Option<Instant>)>,
    /// Every request's metadata: the configured headers and a user agent.
    metadata: MetadataMap,
    timeout: Duration,
    resource: EncodedResource,
    /// Whether its own backoff is still waited out ([`Patience`]).
    pub(super) patience: Arc<Patience>,
}

/// The exporter for `config`'s endpoint; it connects on its first export.
pub(crate) fn exporter(config: &Config) -> Result<Exporter, String> {
    let endpoint = endpoint(config)?;
    let grpc = client(&endpoint, config.compression);
    Ok(Exporter {
        channel: Mutex::new((grpc, Some(Instant::now()))),
        endpoint,
        compression: config.compression,
        metadata: metadata(&config.otlp_headers),
        timeout: config.otlp_timeout,
        resource: EncodedResource::default(),
        patience: Arc::default(),
    })
}

impl Exporter {
    fn lock(&self) -> std::sync::MutexGuard<'_, (Grpc<Checked>, Option<Instant>)> {
        self.channel.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The client to send on, and whether its channel was used before: the channel in
    /// use, or a new one where it was idle too long or a call on it got no answer.
    /// Marked as unanswered until [`Exporter::ended`] says otherwise: a call cut off
    /// from outside (a flush's deadline shorter than the OTLP timeout drops it) never
    /// gets there, and its channel, on a connection that may be dead, is not used
    /// again.
    fn grpc(&self) -> (Grpc<Checked>, bool) {
        let mut kept = self.lock();
        let reused = kept
            .1
            .is_some_and(|used| used.elapsed() <= crate::client::MAX_IDLE);
        if !reused {
            kept.0 = client(&self.endpoint, self.compression);
        }
        kept.1 = None;
        (kept.0.clone(), reused)
    }

    /// One export call of `request` on `grpc`, given `left`; `Err(None)` when no
    /// answer came in that time.
    async fn call(
        &self,
        mut grpc: Grpc<Checked>,
        request: &Bytes,
        left: Duration,
    ) -> Result<tonic::Response<Option<(i64, String)>>, Option<tonic::Status>> {
        let mut call = tonic::Request::new(request.clone());
        *call.metadata_mut() = self.metadata.clone();
        if left < NO_LIMIT_PAST {
            call.set_timeout(left);
        }
        call.extensions_mut()
            .insert(tonic::GrpcMethod::new(SERVICE, "Export"));
        let answer = async {
            // As the generated client does; the transport's error kept as the
            // status's source, as tonic keeps it for a call that fails.
            grpc.ready().await.map_err(|e| {
                let mut status = tonic::Status::unknown(format!("Service was not ready: {e}"));
                status.set_source(Arc::from(e));
                status
            })?;
            let path = http::uri::PathAndQuery::from_static(EXPORT);
            grpc.unary(call, path, Written).await
        };
        match tokio::time::timeout(left, answer).await {
            Ok(answer) => answer.map_err(Some),
            Err(_) => Err(None),
        }
    }

    /// Marks the channel as used now where the collector answered; else (no answer in
    /// time, no connection, a status tonic made for a failed transport) as one to
    /// replace at the next call.
    fn ended(&self, answered: bool) {
        self.lock().1 = answered.then(Instant::now);
    }
}

/// A client on a new, lazily connecting channel to `endpoint`, with `compression`.
#[cfg_attr(not(feature = "gzip"), allow(unused_variables))]
fn client(endpoint: &Endpoint, compression: crate::config::Compression) -> Grpc<Checked> {
    let grpc = Grpc::new(Checked(endpoint.connect_lazy())).max_decoding_message_size(ANSWER_LIMIT);
    // Answers in gzip are taken whatever is sent: grpc-go (the OpenTelemetry
    // Collector's server, Jaeger's) answers a compressed call compressed without
    // looking at what the caller accepts, and tonic refuses an answer in an encoding
    // it was not told to take (`UNIMPLEMENTED`), which counted every export taken as
    // failed.
    #[cfg(feature = "gzip")]
    let grpc = grpc.accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    #[cfg(feature = "gzip")]
    let grpc = match compression {
        crate::config::Compression::Gzip => {
            grpc.send_compressed(tonic::codec::CompressionEncoding::Gzip)
        }
        crate::config::Compression::None => grpc,
    };
    grpc
}

impl opentelemetry_sdk::trace::SpanExporter for Exporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let request =
            encode::request(&self.resource, &batch).map_err(OTelSdkError::InternalFailure)?;
        drop(batch);
        let request = Bytes::from(request);
        // Each attempt gets what is left of the timeout.
        with_retries(self.timeout, &self.patience, |left| {
            let request = &request;
            async move {
                let began = tokio::time::Instant::now();
                let (grpc, reused) = self.grpc();
                let mut answer = self.call(grpc, request, left).await;
                // A kept channel whose connection the collector or a middlebox closed
                // while it was idle (on Lambda, while the process was frozen): the call
                // goes again at once, on a new channel, as the HTTP client sends again
                // on a new connection. Not where the other end answered.
                if reused
                    && let Err(Some(status)) = &answer
                    && transport_failed(status)
                {
                    let left = left.saturating_sub(began.elapsed());
                    if !left.is_zero() {
                        let (grpc, _) = self.grpc();
                        answer = self.call(grpc, request, left).await;
                    }
                }
                self.ended(match &answer {
                    Ok(_) => true,
                    Err(Some(status)) => !unanswered(status),
                    Err(None) => false,
                });
                let status = match answer {
                    Ok(answer) => {
                        if let Some((rejected, message)) = answer.into_inner() {
                            super::otlp::note_partial(rejected, &message);
                        }
                        return Attempt::Done;
                    }
                    Err(Some(status)) => status,
                    Err(None) => tonic::Status::deadline_exceeded(""),
                };
                let asked = asked_delay(&status);
                Attempt::Failed {
                    why: failure(&status),
                    retryable: retryable(&status, asked.is_some()),
                    asked,
                }
            }
        })
        .await
        .map_err(OTelSdkError::InternalFailure)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.resource = EncodedResource::new(resource);
    }
}

/// The codec of the export call: the request goes as the bytes [`encode::request`]
/// wrote, the answer is read for its partial success ([`encode::partial_success`]).
#[derive(Debug, Clone, Copy)]
struct Written;

impl tonic::codec::Codec for Written {
    type Encode = Bytes;
    type Decode = Option<(i64, String)>;
    type Encoder = Written;
    type Decoder = Written;

    fn encoder(&mut self) -> Written {
        Written
    }

    fn decoder(&mut self) -> Written {
        Written
    }
}

impl tonic::codec::Encoder for Written {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        request: Bytes,
        out: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut as _;
        out.put_slice(&request);
        Ok(())
    }
}

impl tonic::codec::Decoder for Written {
    type Item = Option<(i64, String)>;
    type Error = tonic::Status;

    /// Never fails: an answer that is not the protobuf answer is taken as a success
    /// without a partial success, as over HTTP (the call itself succeeded).
    fn decode(
        &mut self,
        answer: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Self::Item>, tonic::Status> {
        use bytes::Buf as _;
        let answer = answer.copy_to_bytes(answer.remaining());
        Ok(Some(encode::partial_success(&answer)))
    }
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

/// The gRPC endpoint, for lazily connecting channels; over TLS for `https://`, with
/// the standard certificate variables (feature `tls`). Connecting is bounded by the
/// OTLP timeout, which hyper shares among a name's addresses, as the HTTP client
/// does: one that drops the attempt unanswered does not keep the next from being
/// tried (tonic sets no connect timeout of its own).
fn endpoint(config: &Config) -> Result<Endpoint, String> {
    let url = config.otlp_endpoint_or_default().trim().to_owned();
    let mut endpoint = Endpoint::from_shared(url.clone()).map_err(|e| {
        let url = super::otlp::shown_endpoint(&url);
        format!("invalid OTLP endpoint `{url}`: {e}")
    })?;
    if config.otlp_timeout < NO_LIMIT_PAST {
        endpoint = endpoint
            .timeout(config.otlp_timeout)
            .connect_timeout(config.otlp_timeout);
    }
    // Said once here, as over HTTP: the channel would build, and every batch fail.
    super::otlp::tls_built_for(&url)?;
    #[cfg(feature = "tls")]
    if super::otlp::https(&url) {
        return tls(endpoint, &config.otlp_tls);
    }
    Ok(endpoint)
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
        ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use opentelemetry_sdk::trace::SpanExporter as _;
    use tonic::transport::server::TcpIncoming;

    use super::answer::{Read, pass_on};
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

    /// What the collector received, call by call.
    type Received = Arc<std::sync::Mutex<Vec<Call>>>;

    /// One call the collector received.
    struct Call {
        /// Its `grpc-encoding`, empty for none.
        #[cfg_attr(not(feature = "gzip"), allow(dead_code))]
        encoding: String,
        /// Its `grpc-timeout`, if it had one.
        timeout: Option<String>,
        /// Where it came from: another port is another connection.
        peer: Option<std::net::SocketAddr>,
        /// Its request, read with the generated messages.
        request: ExportTraceServiceRequest,
    }

    /// An answer to give: one larger than tonic reads (a 5 MiB message).
    const HUGE: i64 = i64::MIN;

    /// A collector that answers each call with the next of `answers` (the last one
    /// again once they run out), counting the calls and keeping what it received.
    struct Collector {
        answers: Vec<Result<i64, tonic::Code>>,
        calls: Arc<AtomicUsize>,
        received: Received,
        /// The delay every failed call asks for in `RetryInfo`, if any.
        asks: Option<Duration>,
    }

    #[tonic::async_trait]
    impl TraceService for Collector {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            let header = |name: &str| {
                let value = request.metadata().get(name)?;
                value.to_str().ok().map(str::to_owned)
            };
            let call = Call {
                encoding: header("grpc-encoding").unwrap_or_default(),
                timeout: header("grpc-timeout"),
                peer: request.remote_addr(),
                request: ExportTraceServiceRequest::default(),
            };
            let request = request.into_inner();
            self.received.lock().unwrap().push(Call { request, ..call });
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            match self.answers[call.min(self.answers.len() - 1)] {
                Ok(0) => Ok(tonic::Response::new(ExportTraceServiceResponse::default())),
                Ok(HUGE) => Ok(tonic::Response::new(ExportTraceServiceResponse {
                    partial_success: Some(ExportTracePartialSuccess {
                        rejected_spans: 0,
                        error_message: "x".repeat(5 << 20),
                    }),
                })),
                Ok(rejected) => Ok(tonic::Response::new(ExportTraceServiceResponse {
                    partial_success: Some(ExportTracePartialSuccess {
                        rejected_spans: rejected,
                        error_message: "over quota".into(),
                    }),
                })),
                Err(code) => Err(match self.asks {
                    None => tonic::Status::new(code, "secret-token echoed"),
                    Some(delay) => {
                        use tonic_types::{ErrorDetails, StatusExt as _};
                        let details = ErrorDetails::with_retry_info(Some(delay));
                        tonic::Status::with_error_details(code, "slow down", details)
                    }
                }),
            }
        }
    }

    /// Serves `answers` on a real tonic server; returns an exporter to it and the count
    /// of calls it received.
    async fn exporter_to(answers: Vec<Result<i64, tonic::Code>>) -> (Exporter, Arc<AtomicUsize>) {
        let (exporter, calls, _) = exporter_with(answers, Serve::default()).await;
        (exporter, calls)
    }

    /// How [`exporter_with`] sets up the exporter and its collector.
    #[derive(Default)]
    struct Serve<'a> {
        /// More settings for the exporter.
        vars: &'a [(&'static str, &'a str)],
        /// Whether the collector takes gzip-compressed calls (the `gzip` feature).
        #[cfg_attr(not(feature = "gzip"), allow(dead_code))]
        accept_gzip: bool,
        /// The delay the collector's failed calls ask for in `RetryInfo`.
        asks: Option<Duration>,
        /// Whether the collector's answers say `grpc-encoding: gzip` whatever the call
        /// accepts, as grpc-go's do to a compressed call.
        #[cfg_attr(not(feature = "gzip"), allow(dead_code))]
        answers_gzip: bool,
    }

    /// Puts `grpc-encoding: gzip` on every answer, as grpc-go does to a compressed
    /// call. Its messages stay uncompressed (flag 0), which that header allows.
    #[derive(Clone)]
    struct AnswersGzip<S>(S);

    impl<S, B, A> tower_service::Service<http::Request<B>> for AnswersGzip<S>
    where
        S: tower_service::Service<http::Request<B>, Response = http::Response<A>>,
        S::Future: Send + 'static,
    {
        type Response = S::Response;
        type Error = S::Error;
        type Future = std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>,
        >;

        fn poll_ready(
            &mut self,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), S::Error>> {
            self.0.poll_ready(cx)
        }

        fn call(&mut self, request: http::Request<B>) -> Self::Future {
            let answer = self.0.call(request);
            Box::pin(async move {
                let mut answer = answer.await?;
                answer
                    .headers_mut()
                    .insert("grpc-encoding", http::HeaderValue::from_static("gzip"));
                Ok(answer)
            })
        }
    }

    #[derive(Clone)]
    struct AnswersGzipLayer;

    impl<S> tower_layer::Layer<S> for AnswersGzipLayer {
        type Service = AnswersGzip<S>;
        fn layer(&self, inner: S) -> AnswersGzip<S> {
            AnswersGzip(inner)
        }
    }

    /// [`exporter_to`], set up as `serve` says; also returns what the collector
    /// received.
    async fn exporter_with(
        answers: Vec<Result<i64, tonic::Code>>,
        serve: Serve<'_>,
    ) -> (Exporter, Arc<AtomicUsize>, Received) {
        let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = incoming.local_addr().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let received = Received::default();
        let service = TraceServiceServer::new(Collector {
            answers,
            calls: calls.clone(),
            received: Arc::clone(&received),
            asks: serve.asks,
        });
        #[cfg(feature = "gzip")]
        let service = if serve.accept_gzip {
            service.accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        } else {
            service
        };
        if serve.answers_gzip {
            tokio::spawn(
                tonic::transport::Server::builder()
                    .layer(AnswersGzipLayer)
                    .add_service(service)
                    .serve_with_incoming(incoming),
            );
        } else {
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming(incoming),
            );
        }
        let mut all = vec![
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
        ];
        all.extend(serve.vars.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let (config, errors) = crate::Config::from(&coldstart_bootstrap::Env::fixed(all));
        assert!(errors.is_empty(), "{errors:?}");
        (exporter(&config).unwrap(), calls, received)
    }

    /// One test for the partial successes: they are kept in one place for the queue.
    #[tokio::test]
    async fn a_partial_success_is_noted_for_the_queue() {
        let _serial = crate::trace::otlp::NOTING.lock().await;
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

    /// An answer larger than tonic reads is the collector's answer: the export
    /// succeeds after one call, as over HTTP an answer that is not the protobuf one
    /// does, where tonic's own `OUT_OF_RANGE` sent the batch four times and counted it
    /// failed. A collector's own `OUT_OF_RANGE` (a refusal, with no message) is still
    /// tried again.
    #[tokio::test]
    async fn an_answer_larger_than_tonic_reads_is_taken_once() {
        let (exporter, calls) = exporter_to(vec![Ok(HUGE), Ok(0)]).await;
        exporter.export(Vec::new()).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let (exporter, calls) = exporter_to(vec![Err(tonic::Code::OutOfRange), Ok(0)]).await;
        exporter.export(Vec::new()).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    /// The message's prefix is read across frames however they cut it, and what is not
    /// too large goes on whole.
    #[test]
    fn the_answer_prefix_is_read_across_frames() {
        let message = [0u8, 0, 0, 0, 3, 7, 8, 9];
        for cut in 0..=message.len() {
            let (mut head, mut read) = (Vec::new(), Read::Head);
            let mut out = pass_on(
                &mut head,
                &mut read,
                Bytes::copy_from_slice(&message[..cut]),
            )
            .to_vec();
            out.extend(pass_on(
                &mut head,
                &mut read,
                Bytes::copy_from_slice(&message[cut..]),
            ));
            assert_eq!(out, message, "cut at {cut}");
            assert_eq!(read, Read::Dropped, "the message came whole");
            // A second message, which tonic would read with the trailers (an
            // oversized one refused), is dropped.
            let second = [0u8, 0x7f, 0xff, 0xff, 0xff, 1, 2];
            assert!(pass_on(&mut head, &mut read, Bytes::copy_from_slice(&second)).is_empty());
        }
        // Within one frame too, and a message still coming is passed on as it comes.
        let (mut head, mut read) = (Vec::new(), Read::Head);
        let both = [0u8, 0, 0, 0, 2, 7, 8, 0, 0, 0, 0, 1, 9];
        assert_eq!(
            &pass_on(&mut head, &mut read, Bytes::copy_from_slice(&both))[..],
            &both[..7]
        );
        let (mut head, mut read) = (Vec::new(), Read::Head);
        let part = pass_on(
            &mut head,
            &mut read,
            Bytes::from_static(&[0, 0, 0, 0, 3, 7]),
        );
        assert_eq!(
            (&part[..], read),
            (&[0u8, 0, 0, 0, 3, 7][..], Read::Through(2))
        );
        // A compressed message that could inflate past what tonic reads is as one too
        // large; one that cannot goes on.
        for (length, taken) in [
            (ANSWER_LIMIT / 1032 + 1, false),
            (ANSWER_LIMIT / 1032, true),
        ] {
            let (mut head, mut read) = (Vec::new(), Read::Head);
            let mut message = vec![1u8];
            message.extend_from_slice(&(length as u32).to_be_bytes());
            message.extend_from_slice(&[1, 2, 3, 4]);
            let out = pass_on(&mut head, &mut read, Bytes::from(message.clone()));
            match taken {
                true => assert_eq!(out, message),
                false => assert_eq!(&out[..], [0, 0, 0, 0, 0]),
            }
        }
        let too_large = (ANSWER_LIMIT as u32 + 1).to_be_bytes();
        let (mut head, mut read) = (Vec::new(), Read::Head);
        let first = pass_on(
            &mut head,
            &mut read,
            Bytes::copy_from_slice(&[1, too_large[0], too_large[1]]),
        );
        let second = pass_on(
            &mut head,
            &mut read,
            Bytes::copy_from_slice(&[too_large[2], too_large[3], 42, 42]),
        );
        let rest = pass_on(&mut head, &mut read, Bytes::from_static(&[42; 16]));
        assert!(first.is_empty() && rest.is_empty());
        assert_eq!(
            &second[..],
            [0, 0, 0, 0, 0],
            "an empty message in its place"
        );
        assert_eq!(read, Read::Dropped);
    }

    /// A timeout past what the clock holds (`Duration::MAX` in code) is no limit: no
    /// `grpc-timeout` goes, where tonic panicked writing one and every batch failed.
    /// A timeout the clock holds goes as one.
    #[tokio::test]
    async fn a_timeout_past_what_the_clock_holds_is_no_limit() {
        let (mut exporter, _, received) = exporter_with(vec![Ok(0)], Serve::default()).await;
        exporter.export(Vec::new()).await.unwrap();
        exporter.timeout = Duration::MAX;
        exporter.export(Vec::new()).await.unwrap();
        let received = received.lock().unwrap();
        let timeouts: Vec<_> = received.iter().map(|c| c.timeout.clone()).collect();
        assert!(timeouts[0].is_some(), "{timeouts:?}");
        assert_eq!(timeouts[1], None);
    }

    /// A channel idle longer than the HTTP client keeps a connection is replaced by a
    /// new one; a channel in use is kept.
    #[tokio::test]
    async fn a_channel_idle_too_long_is_replaced() {
        let (exporter, _, received) = exporter_with(vec![Ok(0)], Serve::default()).await;
        exporter.export(Vec::new()).await.unwrap();
        exporter.export(Vec::new()).await.unwrap();
        let idle = crate::client::MAX_IDLE + Duration::from_secs(1);
        exporter.lock().1 = Instant::now().checked_sub(idle);
        exporter.export(Vec::new()).await.unwrap();
        let received = received.lock().unwrap();
        let peers: Vec<_> = received.iter().map(|c| c.peer.unwrap()).collect();
        assert_eq!(peers[0], peers[1], "kept while in use: {peers:?}");
        assert_ne!(peers[1], peers[2], "a new connection once idle: {peers:?}");
    }

    /// Sent again only for the transport's failure before any answer: not for a
    /// status the other end sent (no source), not once the answer's headers came (it
    /// may have been taken), not for a `CANCELLED` that is no hyper cancellation (a
    /// timeout's).
    #[test]
    fn only_a_call_that_got_no_answer_is_sent_again() {
        let made = |code: tonic::Code| {
            let mut status = tonic::Status::new(code, "transport");
            status.set_source(Arc::new(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset,
            )));
            status
        };
        assert!(transport_failed(&made(tonic::Code::Unknown)));
        assert!(transport_failed(&made(tonic::Code::Unavailable)));
        assert!(!transport_failed(&tonic::Status::unavailable(
            "the collector's"
        )));
        let mut after_headers = made(tonic::Code::Unknown);
        after_headers
            .metadata_mut()
            .insert("content-type", "application/grpc".parse().unwrap());
        assert!(!transport_failed(&after_headers));
        assert!(!transport_failed(&made(tonic::Code::Cancelled)));
        assert!(!transport_failed(&made(tonic::Code::DeadlineExceeded)));
    }

    /// A proxy to `to` that resets the connection it carries at the next bytes the
    /// exporter sends once `cut` is set: a connection the collector (or a middlebox)
    /// closed while the exporter's process did not run, the call sent before the
    /// close was seen.
    async fn cutting_proxy(
        to: std::net::SocketAddr,
        cut: Arc<std::sync::atomic::AtomicBool>,
    ) -> std::net::SocketAddr {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut server = tokio::net::TcpStream::connect(to).await.unwrap();
                let cut = cut.clone();
                tokio::spawn(async move {
                    let (mut up, mut down) = ([0u8; 16384], [0u8; 16384]);
                    loop {
                        tokio::select! {
                            n = client.read(&mut up) => match n {
                                Ok(n) if n > 0 => {
                                    if cut.swap(false, Ordering::SeqCst) {
                                        // Dropped with no linger: a reset.
                                        client.set_zero_linger().unwrap();
                                        return;
                                    }
                                    if server.write_all(&up[..n]).await.is_err() {
                                        return;
                                    }
                                }
                                _ => return,
                            },
                            n = server.read(&mut down) => match n {
                                Ok(n) if n > 0 => {
                                    if client.write_all(&down[..n]).await.is_err() {
                                        return;
                                    }
                                }
                                _ => return,
                            },
                        }
                    }
                });
            }
        });
        addr
    }

    /// A call on a kept channel whose connection died while idle (the collector
    /// restarted while a Lambda environment was frozen) fails on the transport: it goes
    /// again at once on a new channel, within the same attempt, as the HTTP client
    /// sends again on a new connection. After a flush no retry would (its patience
    /// has run out), and the batch was lost.
    #[tokio::test]
    async fn a_call_on_a_kept_channel_that_died_goes_again_on_a_new_one() {
        let (mut exporter, calls, received) = exporter_with(vec![Ok(0)], Serve::default()).await;
        let collector = exporter
            .endpoint
            .uri()
            .authority()
            .unwrap()
            .as_str()
            .parse()
            .unwrap();
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let proxy = cutting_proxy(collector, cut.clone()).await;
        exporter.endpoint = Endpoint::from_shared(format!("http://{proxy}")).unwrap();
        exporter.lock().0 = client(&exporter.endpoint, exporter.compression);
        exporter.export(Vec::new()).await.unwrap();
        exporter.patience.run_out();
        cut.store(true, Ordering::SeqCst);
        exporter.export(Vec::new()).await.unwrap();
        assert!(
            !cut.load(Ordering::SeqCst),
            "the kept connection was not used"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let received = received.lock().unwrap();
        let peers: Vec<_> = received.iter().map(|c| c.peer.unwrap()).collect();
        assert_ne!(
            peers[0], peers[1],
            "sent again on a new connection: {peers:?}"
        );
    }

    /// A call that got no answer (here the collector's `UNAVAILABLE`, as tonic says a
    /// lost connection) leaves a channel the next attempt does not use: it was reused,
    /// and a connection a middlebox had dropped held every export and retry for its
    /// timeout.
    #[tokio::test]
    async fn a_channel_whose_call_got_no_answer_is_replaced() {
        let answers = vec![Err(tonic::Code::Unavailable), Ok(0), Ok(0)];
        let (exporter, _, received) = exporter_with(answers, Serve::default()).await;
        exporter.export(Vec::new()).await.unwrap();
        exporter.export(Vec::new()).await.unwrap();
        let received = received.lock().unwrap();
        let peers: Vec<_> = received.iter().map(|c| c.peer.unwrap()).collect();
        assert_eq!(peers.len(), 3, "{peers:?}");
        assert_ne!(peers[0], peers[1], "the retry on a new channel: {peers:?}");
        assert_eq!(peers[1], peers[2], "an answered channel is kept: {peers:?}");
    }

    /// A call cut off from outside, its export dropped before an answer (a flush's
    /// deadline shorter than the OTLP timeout, as on Lambda), leaves a channel the
    /// next export does not use: it was kept as one just used, and a connection a
    /// middlebox had dropped failed every flush while they came less than 30 s apart.
    #[tokio::test]
    async fn a_channel_whose_call_was_cut_off_is_replaced() {
        let (exporter, _, received) = exporter_with(vec![Ok(0)], Serve::default()).await;
        exporter.export(Vec::new()).await.unwrap();
        // Polled once, then dropped unanswered.
        {
            let mut cut = std::pin::pin!(exporter.export(Vec::new()));
            let once =
                std::future::poll_fn(|cx| std::task::Poll::Ready(cut.as_mut().poll(cx))).await;
            assert!(once.is_pending(), "the export was to be cut off");
        }
        exporter.export(Vec::new()).await.unwrap();
        let received = received.lock().unwrap();
        let peers: Vec<_> = received.iter().filter_map(|c| c.peer).collect();
        assert_eq!(peers.len(), 2, "the cut call never reached it: {peers:?}");
        assert_ne!(peers[0], peers[1], "a new channel after the cut: {peers:?}");
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
        let timeout = [("OTEL_EXPORTER_OTLP_TIMEOUT", "250")];
        let serve = Serve {
            vars: &timeout,
            ..Serve::default()
        };
        let (exporter, calls, _) = exporter_with(vec![Err(tonic::Code::Unavailable)], serve).await;
        let failed = exporter.export(Vec::new()).await.unwrap_err().to_string();
        assert!(failed.contains("code Unavailable"), "{failed}");
        let calls = calls.load(Ordering::SeqCst);
        assert!((1..=2).contains(&calls), "{calls} calls within 250 ms");
    }

    /// A collector's `RetryInfo` (sent as tonic-types sends it) is waited for, the
    /// backoff notwithstanding, and makes `RESOURCE_EXHAUSTED` retryable; a delay that
    /// would pass the timeout ends the export at once. Each wait is checked from below
    /// only: that it was not shorter than asked.
    #[tokio::test]
    async fn a_collectors_retry_info_is_honoured() {
        let asking = |delay| Serve {
            asks: Some(delay),
            ..Serve::default()
        };
        // Without RetryInfo, RESOURCE_EXHAUSTED is final.
        let (exporter, calls) = exporter_to(vec![Err(tonic::Code::ResourceExhausted)]).await;
        let failed = exporter.export(Vec::new()).await.unwrap_err().to_string();
        assert!(failed.contains("code ResourceExhausted"), "{failed}");
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // With it, retried after the delay asked.
        let answers = vec![Err(tonic::Code::ResourceExhausted), Ok(0)];
        let asked = Duration::from_millis(400);
        let (exporter, calls, _) = exporter_with(answers, asking(asked)).await;
        let started = std::time::Instant::now();
        exporter.export(Vec::new()).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(started.elapsed() >= asked, "{:?}", started.elapsed());

        // UNAVAILABLE waits what is asked rather than its first backoff (100-200 ms).
        let answers = vec![Err(tonic::Code::Unavailable), Ok(0)];
        let (exporter, calls, _) = exporter_with(answers, asking(asked)).await;
        let started = std::time::Instant::now();
        exporter.export(Vec::new()).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(started.elapsed() >= asked, "{:?}", started.elapsed());

        // A delay past the timeout (10 s): no retry, and no waiting for it.
        let answers = vec![Err(tonic::Code::ResourceExhausted), Ok(0)];
        let (exporter, calls, _) = exporter_with(answers, asking(Duration::from_secs(20))).await;
        let started = std::time::Instant::now();
        let failed = exporter.export(Vec::new()).await.unwrap_err().to_string();
        assert!(failed.contains("code ResourceExhausted"), "{failed}");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn an_asked_delay_is_read_only_from_retry_info_and_capped() {
        use tonic_types::{ErrorDetails, StatusExt as _};
        let status =
            |details| tonic::Status::with_error_details(tonic::Code::Unavailable, "", details);
        let asked = status(ErrorDetails::with_retry_info(Some(Duration::from_millis(
            1500,
        ))));
        assert_eq!(asked_delay(&asked), Some(Duration::from_millis(1500)));
        let long = status(ErrorDetails::with_retry_info(Some(Duration::from_secs(
            3600,
        ))));
        assert_eq!(asked_delay(&long), Some(MAX_ASKED_DELAY));
        let other = status(ErrorDetails::with_resource_info(
            "quota", "spans", "", "over",
        ));
        assert_eq!(asked_delay(&other), None);
        let garbage =
            tonic::Status::with_details(tonic::Code::Unavailable, "", vec![0xff, 0x01].into());
        assert_eq!(asked_delay(&garbage), None);
        assert_eq!(asked_delay(&tonic::Status::unavailable("")), None);
    }

    /// With `gzip`, calls are compressed: a collector that takes gzip gets them so, one
    /// that does not refuses them (`UNIMPLEMENTED`, not retried); without, they are
    /// not.
    #[cfg(feature = "gzip")]
    #[tokio::test]
    async fn calls_are_gzip_compressed_when_asked() {
        let gzip = [("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")];
        let serve = |vars, accept_gzip| Serve {
            vars,
            accept_gzip,
            ..Serve::default()
        };
        let encodings = |received: &Received| {
            let received = received.lock().unwrap();
            received
                .iter()
                .map(|c| c.encoding.clone())
                .collect::<Vec<_>>()
        };
        let (exporter, calls, received) = exporter_with(vec![Ok(0)], serve(&gzip, true)).await;
        let batch = crate::trace::encode::tests::batch();
        exporter.export(batch.clone()).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(encodings(&received), ["gzip"]);
        let mut ids = received.lock().unwrap()[0].request.resource_spans[0]
            .scope_spans
            .iter()
            .flat_map(|scope| scope.spans.iter().map(|s| s.span_id.clone()))
            .collect::<Vec<_>>();
        let mut expected = batch
            .iter()
            .map(|s| s.span_context.span_id().to_bytes().to_vec())
            .collect::<Vec<_>>();
        ids.sort();
        expected.sort();
        assert_eq!(ids, expected, "decompressed and read whole");

        let (exporter, _, received) = exporter_with(vec![Ok(0)], serve(&gzip, false)).await;
        let failed = exporter.export(Vec::new()).await.unwrap_err().to_string();
        assert!(failed.contains("code Unimplemented"), "{failed}");
        assert!(
            encodings(&received).is_empty(),
            "refused before the service"
        );

        let (exporter, _, received) = exporter_with(vec![Ok(0)], serve(&[], true)).await;
        exporter.export(Vec::new()).await.unwrap();
        assert_eq!(encodings(&received), [""]);
    }

    /// A collector that answers a compressed call compressed, as grpc-go does without
    /// looking at what the call accepts, is understood: the export is a success, not
    /// `UNIMPLEMENTED` counted as spans dropped.
    #[cfg(feature = "gzip")]
    #[tokio::test]
    async fn a_collector_that_answers_in_gzip_is_understood() {
        for vars in [&[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")][..], &[]] {
            let serve = Serve {
                vars,
                accept_gzip: true,
                answers_gzip: true,
                ..Serve::default()
            };
            let (exporter, calls, _) = exporter_with(vec![Ok(0)], serve).await;
            let batch = crate::trace::encode::tests::batch();
            let sent = exporter.export(batch).await;
            assert!(sent.is_ok(), "{vars:?}: {sent:?}");
            assert_eq!(calls.load(Ordering::SeqCst), 1);
        }
    }

    /// The request the encoder writes is what the service generated from the official
    /// definitions reads: opentelemetry-proto's own conversion of the batch.
    #[tokio::test]
    async fn a_batch_arrives_as_the_generated_service_reads_it() {
        use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
        use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
        let (mut exporter, _, received) = exporter_with(vec![Ok(0)], Serve::default()).await;
        let resource = opentelemetry_sdk::Resource::builder_empty()
            .with_service_name("checkout")
            .build();
        exporter.set_resource(&resource);
        let batch = crate::trace::encode::tests::batch();
        exporter.export(batch.clone()).await.unwrap();
        let expected = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(
                batch,
                &ResourceAttributesWithSchema::from(&resource),
            ),
        };
        let received = received.lock().unwrap();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].request, expected);
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

    /// A collector whose address leaves the connection attempt unanswered (a full
    /// backlog here: the kernel drops the handshake) fails the export within the OTLP
    /// timeout, as `DeadlineExceeded`: the kernel would keep the attempt for over two
    /// minutes, and the batch's spans with it.
    #[tokio::test]
    async fn a_collector_that_never_answers_the_connection_fails_within_the_timeout() {
        use std::os::fd::AsRawFd;
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = silent.local_addr().unwrap();
        // SAFETY: listen(2) again on a listening socket the test owns sets its backlog.
        assert_eq!(unsafe { libc::listen(silent.as_raw_fd(), 0) }, 0);
        // The one place in the queue taken, later attempts get no answer at all.
        let _queued = std::net::TcpStream::connect(address).unwrap();
        let env = coldstart_bootstrap::Env::fixed([
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{address}")),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "300".to_owned()),
        ]);
        let (config, errors) = crate::Config::from(&env);
        assert!(errors.is_empty(), "{errors:?}");
        let mut exporter = exporter(&config).unwrap();
        exporter.set_resource(&opentelemetry_sdk::Resource::builder_empty().build());
        // Bounded, so that the test fails instead of hanging where nothing cuts the
        // attempt off.
        let failed = tokio::time::timeout(Duration::from_secs(20), exporter.export(Vec::new()))
            .await
            .expect("the export gave up on the connection")
            .unwrap_err()
            .to_string();
        assert!(failed.contains("DeadlineExceeded"), "{failed}");
        drop(silent);
    }

    /// A collector (or a proxy before it) whose failure carries a
    /// `grpc-status-details-bin` that is not base64: in the answer's headers (a
    /// trailers-only answer), or in its trailers after a message.
    #[derive(Clone)]
    struct BadDetails {
        in_trailers: bool,
    }

    impl tonic::server::NamedService for BadDetails {
        const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    }

    /// One empty message, then `trailers`.
    struct ThenTrailers {
        message: Option<Bytes>,
        trailers: Option<http::HeaderMap>,
    }

    impl http_body::Body for ThenTrailers {
        type Data = Bytes;
        type Error = tonic::Status;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
            if let Some(message) = self.message.take() {
                return std::task::Poll::Ready(Some(Ok(http_body::Frame::data(message))));
            }
            std::task::Poll::Ready(
                self.trailers
                    .take()
                    .map(|t| Ok(http_body::Frame::trailers(t))),
            )
        }
    }

    impl tower_service::Service<http::Request<tonic::body::Body>> for BadDetails {
        type Response = http::Response<tonic::body::Body>;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Self::Error>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<tonic::body::Body>) -> Self::Future {
            let mut status = http::HeaderMap::new();
            status.insert("grpc-status", "14".parse().unwrap());
            status.insert("grpc-status-details-bin", "*not base64*".parse().unwrap());
            let mut answer = http::Response::builder().header("content-type", "application/grpc");
            let body = if self.in_trailers {
                tonic::body::Body::new(ThenTrailers {
                    // An empty message: not compressed, length 0.
                    message: Some(Bytes::from_static(&[0, 0, 0, 0, 0])),
                    trailers: Some(status),
                })
            } else {
                answer.headers_mut().unwrap().extend(status);
                tonic::body::Body::empty()
            };
            std::future::ready(Ok(answer.body(body).unwrap()))
        }
    }

    /// tonic's client panics on such an answer (grpc/grpc-rust#2618); the details are
    /// taken out before it reads them, so the export fails with the collector's code,
    /// with no panic (which `panic = "abort"` would not survive).
    #[tokio::test]
    async fn undecodable_status_details_are_a_failed_export_not_a_panic() {
        for in_trailers in [false, true] {
            let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = incoming.local_addr().unwrap();
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(BadDetails { in_trailers })
                    .serve_with_incoming(incoming),
            );
            let env = coldstart_bootstrap::Env::fixed([
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000".to_owned()),
            ]);
            let (config, errors) = crate::Config::from(&env);
            assert!(errors.is_empty(), "{errors:?}");
            let exporter = exporter(&config).unwrap();
            let batch = vec![crate::bench::layer_span(1)];
            let outcome = coldstart_runtime::panics::caught(exporter.export(batch)).await;
            let failed = match outcome {
                Ok(result) => result.unwrap_err().to_string(),
                Err(panic) => panic!(
                    "in_trailers {in_trailers}: {}",
                    crate::problem::panic_text(&*panic)
                ),
            };
            assert!(
                failed.contains("code Unavailable"),
                "in_trailers {in_trailers}: {failed}"
            );
        }
    }

    /// A collector that drops the connection while the call is in flight (a restart,
    /// a load balancer's reset): tonic's client makes that `UNKNOWN`, which the
    /// collector never said; the batch is sent again on a new connection. It was
    /// dropped at the first attempt.
    #[tokio::test]
    async fn a_connection_dropped_mid_call_is_tried_again() {
        use tokio::io::AsyncReadExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                // Takes the call, then drops the connection without answering.
                let mut taken = vec![0u8; 65536];
                let read = stream.read(&mut taken);
                let _ = tokio::time::timeout(Duration::from_millis(50), read).await;
            }
        });
        let env = coldstart_bootstrap::Env::fixed([
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000".to_owned()),
        ]);
        let (config, errors) = crate::Config::from(&env);
        assert!(errors.is_empty(), "{errors:?}");
        let exporter = exporter(&config).unwrap();
        let failed = exporter.export(vec![crate::bench::layer_span(1)]).await;
        let failed = failed.unwrap_err().to_string();
        assert!(failed.contains("code Unknown"), "{failed}");
        assert!(
            accepted.load(Ordering::SeqCst) > 1,
            "not tried again: {failed}"
        );
    }

    /// Without the `tls` feature an `https://` endpoint is refused once, when the
    /// exporter is built, not at every batch. Runs in the feature matrix's builds
    /// without `tls` (`./scripts/test`).
    #[cfg(not(feature = "tls"))]
    #[tokio::test]
    async fn an_https_endpoint_without_the_tls_feature_is_refused_when_built() {
        let env = coldstart_bootstrap::Env::fixed([
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://collector.example:4317",
            ),
        ]);
        let (config, errors) = crate::Config::from(&env);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            exporter(&config).unwrap_err(),
            "the OTLP endpoint `https://collector.example:4317` is https://, which needs coldstart's `tls` feature"
        );
    }
}
