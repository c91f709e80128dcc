/*!
Talking OTLP: the exporter for the configured protocol, given exactly the settings
coldstart read (endpoint, timeout, headers, compression), whatever opentelemetry-otlp
would read from the environment itself; and the collector's answer, read for the spans
it rejected, which opentelemetry-otlp only logs.
*/

use std::sync::{Arc, Mutex, OnceLock};

use opentelemetry_otlp::SpanExporter;

use crate::client::Client;
use crate::config::{Config, Protocol};
use crate::problem;

/// The OTLP exporter for the configured protocol.
pub(super) fn exporter(config: &Config) -> Result<super::Sink, String> {
    match config.protocol {
        Protocol::HttpProtobuf => http_exporter(config).map(super::Sink::Otlp),
        #[cfg(feature = "grpc")]
        Protocol::Grpc => super::grpc::exporter(config).map(super::Sink::Grpc),
        #[cfg(not(feature = "grpc"))]
        Protocol::Grpc => Err("gRPC needs coldstart's `grpc` feature".into()),
    }
}

/// OTLP/HTTP with coldstart's HTTP/1.1 client, on the program's runtime: no client
/// thread, no second runtime.
fn http_exporter(config: &Config) -> Result<SpanExporter, String> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    // The protocol is given, so that opentelemetry-otlp never takes its own from the
    // environment or from features another crate turned on (`http-json`).
    let builder = export_config(
        SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary),
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
    let client = HTTP_CLIENT
        .get_or_init(|| {
            Arc::new(OtlpClient {
                client,
                headers: http_headers(&config.otlp_headers),
                #[cfg(feature = "gzip")]
                gzip: config.compression == crate::config::Compression::Gzip,
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
pub(super) fn https(url: &str) -> bool {
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

/// The partial success of the last OTLP export (HTTP or gRPC), until the queue takes
/// it with that export's outcome: over HTTP opentelemetry-otlp reads the answer too,
/// but only logs it.
static PARTIAL: Mutex<Option<Partial>> = Mutex::new(None);

/// Keeps the partial success in `answer`, the body of a successful export's answer,
/// for [`take_partial`]. An answer that is empty, not the protobuf answer, or a full
/// success keeps nothing.
pub(crate) fn note_answer(answer: &[u8]) {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    use prost::Message as _;
    if let Some(partial) = ExportTraceServiceResponse::decode(answer)
        .ok()
        .and_then(|a| a.partial_success)
    {
        note_partial(partial);
    }
}

/// Keeps a collector's partial success for [`take_partial`], unless it is a full
/// success (nothing rejected, no message).
pub(crate) fn note_partial(
    partial: opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess,
) {
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
    /// Every header of a request: the configured ones, then the protocol's.
    headers: http::HeaderMap,
    /// Whether bodies are sent gzip-compressed. coldstart compresses them itself:
    /// opentelemetry-otlp's own gzip would follow the variables in the environment
    /// alone, not the file and code layers.
    #[cfg(feature = "gzip")]
    gzip: bool,
}

/// How the exporter names itself, as the OTLP specification asks (opentelemetry-otlp's
/// own, which its requests carry, could have come from the environment).
pub(super) const USER_AGENT: &str = concat!(
    "OTel-OTLP-Exporter-Rust (coldstart/",
    env!("CARGO_PKG_VERSION"),
    ")"
);

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpClient {
    /// Sends the request with coldstart's headers in place of every header
    /// opentelemetry-otlp set: its own, and those it read from
    /// `OTEL_EXPORTER_OTLP_TRACES_HEADERS` or `OTEL_EXPORTER_OTLP_HEADERS` itself (a
    /// value coldstart may have refused). The body is protobuf, gzip-compressed here
    /// when coldstart's setting asks for it (feature `gzip`). It comes compressed
    /// already only if another crate turned on one of opentelemetry-otlp's compression
    /// features and the environment asks for it; it is then sent as it is. Either
    /// way its encoding is told from the body itself, which no header can misstate.
    async fn send_bytes(
        &self,
        mut request: http::Request<hyper::body::Bytes>,
    ) -> Result<http::Response<hyper::body::Bytes>, opentelemetry_http::HttpError> {
        #[cfg(feature = "gzip")]
        if self.gzip && compression(request.body()).is_none() {
            let body = gzip(request.body())?;
            *request.body_mut() = body.into();
        }
        let mut headers = self.headers.clone();
        if let Some(encoding) = compression(request.body()) {
            headers.insert(
                http::header::CONTENT_ENCODING,
                http::HeaderValue::from_static(encoding),
            );
        }
        *request.headers_mut() = headers;
        let response = self.client.send(request).await?;
        if response.status().is_success() {
            note_answer(response.body());
        }
        Ok(response)
    }
}

/// `body` gzip-compressed, at the level opentelemetry-otlp's own gzip uses.
#[cfg(feature = "gzip")]
fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let compressed = Vec::with_capacity(body.len() / 2);
    let mut encoder = flate2::write::GzEncoder::new(compressed, flate2::Compression::default());
    encoder.write_all(body)?;
    encoder.finish()
}

/// The encoding of a compressed export body, from its first bytes: a protobuf
/// request starts with its first field's tag (`0x0a`), never with a gzip or zstd
/// magic number.
fn compression(body: &[u8]) -> Option<&'static str> {
    if body.starts_with(&[0x1f, 0x8b]) {
        Some("gzip")
    } else if body.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some("zstd")
    } else {
        None
    }
}

/// A request's headers: the configured ones (each was checked when read; a name given
/// twice keeps its last value), a user agent unless one was configured, and the
/// protobuf content type, which is the protocol's and wins.
fn http_headers(pairs: &[(String, String)]) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::try_from(name.as_str()),
            http::HeaderValue::try_from(value.as_str()),
        ) {
            headers.insert(name, value);
        }
    }
    if !headers.contains_key(http::header::USER_AGENT) {
        headers.insert(
            http::header::USER_AGENT,
            http::HeaderValue::from_static(USER_AGENT),
        );
    }
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-protobuf"),
    );
    headers
}

/// The OTLP/HTTP exporter's client, kept to say why an export failed. Made by the
/// first exporter built, with its headers: a process builds one.
static HTTP_CLIENT: OnceLock<Arc<OtlpClient>> = OnceLock::new();

/// Why the last OTLP/HTTP request failed, once; `None` when it did not fail (the
/// collector answered an error status, which the exporter's message says) or the
/// protocol is gRPC.
pub(crate) fn transport_failure() -> Option<String> {
    HTTP_CLIENT.get().and_then(|c| c.client.take_failure())
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    /// Header pairs as the configuration holds them.
    pub(crate) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// What goes out is coldstart's set and the protocol's headers, whatever the
    /// request opentelemetry-otlp made carried (here: a header it read from the
    /// environment, its own user agent, a wrong content type).
    #[tokio::test]
    async fn an_http_export_carries_exactly_coldstarts_headers() {
        use opentelemetry_http::HttpClient as _;
        let (url, heads) = crate::client::tests::server(1);
        let client = super::OtlpClient {
            client: crate::client::Client::plain(Duration::from_secs(5)),
            headers: super::http_headers(&pairs(&[
                ("X-Tenant", "a b"),
                ("authorization", "Bearer 1"),
                ("authorization", "Bearer 2"),
            ])),
            #[cfg(feature = "gzip")]
            gzip: false,
        };
        let request = http::Request::post(format!("{url}/v1/traces"))
            .header("x-from-environment", "refused")
            .header("user-agent", "OTel-OTLP-Exporter-Rust/0.33.1")
            .header("content-type", "text/plain")
            .body(hyper::body::Bytes::from_static(b"payload"))
            .unwrap();
        client.send_bytes(request).await.unwrap();
        let head = heads.recv_timeout(Duration::from_secs(5)).unwrap();
        let head = head.to_ascii_lowercase();
        assert!(head.contains("\r\nx-tenant: a b\r\n"), "{head}");
        assert!(head.contains("\r\nauthorization: bearer 2\r\n"), "{head}");
        assert!(
            !head.contains("bearer 1"),
            "a name given twice keeps its last value: {head}"
        );
        assert!(!head.contains("x-from-environment"), "{head}");
        assert!(
            head.contains("\r\ncontent-type: application/x-protobuf\r\n"),
            "{head}"
        );
        assert!(
            head.contains("\r\nuser-agent: otel-otlp-exporter-rust (coldstart/"),
            "{head}"
        );
    }

    /// A body that comes compressed (possible only with a feature another crate turns
    /// on) is sent with its encoding, told from the body; a protobuf body has none.
    #[tokio::test]
    async fn a_compressed_body_is_sent_with_its_encoding() {
        use opentelemetry_http::HttpClient as _;
        let (url, heads) = crate::client::tests::server(2);
        let client = super::OtlpClient {
            client: crate::client::Client::plain(Duration::from_secs(5)),
            headers: super::http_headers(&[]),
            #[cfg(feature = "gzip")]
            gzip: false,
        };
        // Seven bytes each, as the test server reads: a gzip header's start, and a
        // protobuf request's start (field 1, length-delimited).
        for body in [b"\x1f\x8b\x08\0\0\0\0", b"\x0a\x05abcde"] {
            let request = http::Request::post(format!("{url}/v1/traces"))
                .header("content-encoding", "br")
                .body(hyper::body::Bytes::from_static(body))
                .unwrap();
            client.send_bytes(request).await.unwrap();
        }
        let gzip = heads.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(gzip.contains("content-encoding: gzip\r\n"), "{gzip}");
        let plain = heads.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(!plain.contains("content-encoding"), "{plain}");
    }

    /// With `gzip` the body is sent gzip-compressed and says so; a body that comes
    /// compressed already is not compressed again.
    #[cfg(feature = "gzip")]
    #[tokio::test]
    async fn with_gzip_a_protobuf_body_is_compressed_once() {
        use std::io::{BufRead as _, Read as _, Write as _};

        use opentelemetry_http::HttpClient as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let (sent, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            loop {
                let (mut head, mut line) = (String::new(), String::new());
                while line != "\r\n" {
                    line.clear();
                    if reader.read_line(&mut line).unwrap() == 0 {
                        return;
                    }
                    head.push_str(&line.to_ascii_lowercase());
                }
                let length = head
                    .split("content-length: ")
                    .nth(1)
                    .and_then(|rest| rest.split("\r\n").next())
                    .unwrap()
                    .parse()
                    .unwrap();
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                sent.send((head, body)).unwrap();
                (&stream)
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .unwrap();
            }
        });
        let client = super::OtlpClient {
            client: crate::client::Client::plain(Duration::from_secs(5)),
            headers: super::http_headers(&[]),
            gzip: true,
        };
        let protobuf = b"\x0a\x05abcde".repeat(20);
        let compressed = super::gzip(&protobuf).unwrap();
        for body in [protobuf.clone(), compressed.clone()] {
            let request = http::Request::post(&url).body(body.into()).unwrap();
            client.send_bytes(request).await.unwrap();
        }
        for _ in 0..2 {
            let (head, body) = received.recv_timeout(Duration::from_secs(5)).unwrap();
            assert!(head.contains("\r\ncontent-encoding: gzip\r\n"), "{head}");
            let mut unpacked = Vec::new();
            flate2::read::GzDecoder::new(body.as_slice())
                .read_to_end(&mut unpacked)
                .unwrap();
            assert_eq!(unpacked, protobuf, "compressed exactly once");
        }
    }

    /// A configured user agent replaces the exporter's; the content type stays the
    /// protocol's.
    #[test]
    fn configured_headers_come_first_but_the_content_type_is_the_protocols() {
        let headers = super::http_headers(&pairs(&[
            ("user-agent", "mine/1"),
            ("content-type", "text/plain"),
        ]));
        assert_eq!(headers["user-agent"], "mine/1");
        assert_eq!(headers["content-type"], "application/x-protobuf");
        assert_eq!(headers.len(), 2);
    }

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
