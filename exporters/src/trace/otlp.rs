/*!
Talking OTLP: the exporter for the configured protocol, and coldstart's own OTLP/HTTP
exporter. It writes each request itself ([`super::encode`], without converting the
spans into opentelemetry-proto's messages first), sends exactly the settings coldstart
read (endpoint, timeout, headers, compression) with coldstart's HTTP/1.1 client on the
program's runtime (no client thread, no second runtime), retries as the OTLP
specification says ([`super::retry`]; the codes 429, 502, 503 and 504 and failed
connections, waiting at least what a `Retry-After` asks), and reads the collector's
answer for the spans it rejected, which both protocols note here for the queue.
*/

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hyper::body::Bytes;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::SpanData;

use super::encode::{self, EncodedResource};
use super::retry::{Attempt, MAX_ASKED_DELAY, Patience, with_retries};
use crate::client::Client;
use crate::config::{Config, Protocol};
use crate::problem;

/// The OTLP exporter for the configured protocol.
pub(super) fn exporter(config: &Config) -> Result<super::Sink, String> {
    match config.protocol {
        Protocol::HttpProtobuf => http_exporter(config).map(super::Sink::Http),
        #[cfg(feature = "grpc")]
        Protocol::Grpc => super::grpc::exporter(config).map(super::Sink::Grpc),
        #[cfg(not(feature = "grpc"))]
        Protocol::Grpc => Err("gRPC needs coldstart's `grpc` feature".into()),
    }
}

/// The OTLP/HTTP span exporter.
#[derive(Debug)]
pub(crate) struct Exporter {
    client: Client,
    url: http::Uri,
    /// Every request's headers: the configured ones, then the protocol's.
    headers: http::HeaderMap,
    /// Whether bodies are gzip-compressed (feature `gzip`).
    #[cfg(feature = "gzip")]
    gzip: bool,
    /// The whole export's, retries included.
    timeout: Duration,
    resource: EncodedResource,
    /// Whether its own backoff is still waited out ([`Patience`]).
    pub(super) patience: Arc<Patience>,
}

fn http_exporter(config: &Config) -> Result<Exporter, String> {
    let endpoint = config.otlp_endpoint_or_default().trim();
    let url = endpoint
        .parse::<http::Uri>()
        .map_err(|e| format!("invalid OTLP endpoint `{}`: {e}", shown_endpoint(endpoint)))?;
    tls_built_for(endpoint)?;
    // TLS settings are built only for an `https://` collector: a plain one must not
    // depend on a CA bundle being present (the default endpoint is plain).
    #[cfg(feature = "tls")]
    let client = if https(endpoint) {
        Client::with_tls(
            config.otlp_timeout,
            crate::tls::client_config(&config.otlp_tls)?,
        )
    } else {
        Client::plain(config.otlp_timeout)
    };
    #[cfg(not(feature = "tls"))]
    let client = Client::plain(config.otlp_timeout);
    #[cfg_attr(not(feature = "gzip"), allow(unused_mut))]
    let mut headers = http_headers(&config.otlp_headers);
    #[cfg(feature = "gzip")]
    let gzip = config.compression == crate::config::Compression::Gzip;
    #[cfg(feature = "gzip")]
    if gzip {
        headers.insert(
            http::header::CONTENT_ENCODING,
            http::HeaderValue::from_static("gzip"),
        );
    }
    Ok(Exporter {
        client,
        url,
        headers,
        #[cfg(feature = "gzip")]
        gzip,
        timeout: config.otlp_timeout,
        resource: EncodedResource::default(),
        patience: Arc::default(),
    })
}

impl opentelemetry_sdk::trace::SpanExporter for Exporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let body =
            encode::request(&self.resource, &batch).map_err(OTelSdkError::InternalFailure)?;
        drop(batch);
        #[cfg(feature = "gzip")]
        let body = if self.gzip {
            gzip(&body).map_err(|e| {
                OTelSdkError::InternalFailure(format!("cannot gzip the request: {e}"))
            })?
        } else {
            body
        };
        let body = Bytes::from(body);
        with_retries(self.timeout, &self.patience, |left| {
            let mut request = http::Request::new(body.clone());
            *request.method_mut() = http::Method::POST;
            *request.uri_mut() = self.url.clone();
            *request.headers_mut() = self.headers.clone();
            async move {
                // The client's own timeout is the whole export's; a retry has less.
                let answer = match self.client.send_within(request, left).await {
                    Ok(answer) => answer,
                    // An answer came that could not be read: the collector had the
                    // batch, which is not sent again.
                    Err(cause) if cause.answered => {
                        return Attempt::Failed {
                            why: format!("HTTP export failed: unreadable answer: {cause}"),
                            retryable: false,
                            asked: None,
                        };
                    }
                    Err(cause) => return failed_connection(cause.why),
                };
                let status = answer.status().as_u16();
                if answer.status().is_success() {
                    note_answer(answer.body());
                    return Attempt::Done;
                }
                // A `Retry-After` is read where the specification says it comes.
                let asked = matches!(status, 429 | 503)
                    .then(|| retry_after(answer.headers()))
                    .flatten();
                Attempt::Failed {
                    why: format!("HTTP export failed with status code: {status}"),
                    retryable: matches!(status, 429 | 502 | 503 | 504),
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

/// A request that got no answer: tried again, as the specification asks. (The
/// endpoint itself was checked when the exporter was built, so this is the network:
/// no name, no connection, a TLS failure, no answer in time, an answer cut short.)
fn failed_connection(cause: String) -> Attempt {
    Attempt::Failed {
        why: format!("HTTP export failed: network error: {cause}"),
        retryable: true,
        asked: None,
    }
}

/// The delay a `Retry-After` header asks for (seconds, or an HTTP date), at most
/// [`MAX_ASKED_DELAY`].
pub(crate) fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    };
    Some(delay.min(MAX_ASKED_DELAY))
}

/// flate2's level for OTLP/HTTP bodies: its fastest (see [`gzip`]).
pub(crate) const GZIP_LEVEL: u32 = 1;

/// `body` gzip-compressed at flate2's fastest level. It runs on a runtime thread (under
/// `minimal`, the only one): for a batch of 512 of the HTTP layer's spans (100 KB) the
/// default level, opentelemetry-otlp's, takes 1.63 ms and the fastest 0.12 ms, for 4 %
/// more bytes (9 489 against 9 132; `cargo bench -p coldstart-benches --bench
/// otlp_encode`, BENCHMARKS.md).
#[cfg(feature = "gzip")]
fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let compressed = Vec::with_capacity(body.len() / 2);
    let mut encoder =
        flate2::write::GzEncoder::new(compressed, flate2::Compression::new(GZIP_LEVEL));
    encoder.write_all(body)?;
    encoder.finish()
}

pub(super) use crate::config::https;

/// `endpoint` as a message shows it: no user info, no query.
pub(super) fn shown_endpoint(endpoint: &str) -> String {
    coldstart_bootstrap::config::shown("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
}

/// Refuses an `https://` endpoint in a build without the `tls` feature, once, when the
/// exporter is built: otherwise every batch would fail.
pub(super) fn tls_built_for(endpoint: &str) -> Result<(), String> {
    if cfg!(not(feature = "tls")) && https(endpoint) {
        return Err(format!(
            "the OTLP endpoint `{}` is https://, which needs coldstart's `tls` feature",
            shown_endpoint(endpoint)
        ));
    }
    Ok(())
}

/// How the exporter names itself, as the OTLP specification asks.
pub(super) const USER_AGENT: &str = concat!(
    "OTel-OTLP-Exporter-Rust (coldstart/",
    env!("CARGO_PKG_VERSION"),
    ")"
);

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
/// it with that export's outcome.
static PARTIAL: Mutex<Option<Partial>> = Mutex::new(None);

/// Keeps the partial success in `answer`, the body of a successful export's answer,
/// for [`take_partial`]. An answer that is empty, not the protobuf answer, or a full
/// success keeps nothing.
pub(crate) fn note_answer(answer: &[u8]) {
    if let Some((rejected, message)) = encode::partial_success(answer) {
        note_partial(rejected, &message);
    }
}

/// Keeps a collector's partial success for [`take_partial`], unless it is a full
/// success (nothing rejected, no message).
pub(crate) fn note_partial(rejected_spans: i64, message: &str) {
    let rejected = u64::try_from(rejected_spans).unwrap_or(0);
    let message = problem::one_line(message, 200);
    if rejected > 0 || !message.is_empty() {
        *PARTIAL.lock().unwrap_or_else(|p| p.into_inner()) = Some(Partial { rejected, message });
    }
}

/// The partial success noted since the last call, once.
pub(crate) fn take_partial() -> Option<Partial> {
    PARTIAL.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// Held by the tests that note a collector's partial success or read the note: it is
/// the process's, and one test's must not be taken by another's export. (The
/// exporter tests here take no lock: their collectors answer without a partial
/// success, which notes nothing.)
#[cfg(test)]
pub(crate) static NOTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::{BufRead as _, Read as _, Write as _};
    use std::sync::mpsc::Receiver;
    use std::time::Duration;

    use opentelemetry_sdk::trace::SpanExporter as _;

    /// Header pairs as the configuration holds them.
    pub(crate) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// A collector that answers the requests it reads with `answers` in turn (the last
    /// one again once they run out), and sends each request's head (lower case) and
    /// body to the test.
    fn collector(answers: &[&'static str]) -> (String, Receiver<(String, Vec<u8>)>) {
        let answers = answers.to_vec();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let (sent, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut n = 0;
            for stream in listener.incoming() {
                let stream = stream.unwrap();
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                loop {
                    let (mut head, mut line) = (String::new(), String::new());
                    while line != "\r\n" {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        head.push_str(&line.to_ascii_lowercase());
                    }
                    let Some(length) = head
                        .split("content-length: ")
                        .nth(1)
                        .and_then(|rest| rest.split("\r\n").next())
                        .and_then(|n| n.parse().ok())
                    else {
                        break;
                    };
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let _ = sent.send((head, body));
                    let answer = answers[n.min(answers.len() - 1)];
                    n += 1;
                    (&stream).write_all(answer.as_bytes()).unwrap();
                }
            }
        });
        (url, received)
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";

    /// The OTLP/HTTP exporter for `vars` plus an endpoint of `url`.
    fn exporter_to(url: &str, vars: &[(&'static str, &str)]) -> super::Exporter {
        let mut all = vec![("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url.to_owned())];
        all.extend(vars.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let (config, errors) = crate::Config::from(&coldstart_bootstrap::Env::fixed(all));
        assert!(errors.is_empty(), "{errors:?}");
        super::http_exporter(&config).unwrap()
    }

    /// What goes out is the protobuf request for the batch, with coldstart's headers
    /// and the protocol's.
    #[tokio::test]
    async fn an_export_posts_the_batch_with_exactly_coldstarts_headers() {
        let (url, requests) = collector(&[OK]);
        let headers = "X-Tenant=a%20b,authorization=Bearer%201,authorization=Bearer%202";
        let exporter = exporter_to(&url, &[("OTEL_EXPORTER_OTLP_HEADERS", headers)]);
        let batch = super::super::encode::tests::batch();
        let expected = super::encode::request(&Default::default(), &batch).unwrap();
        exporter.export(batch).await.unwrap();
        let (head, body) = requests.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(head.starts_with("post /v1/traces http/1.1\r\n"), "{head}");
        let mut names: Vec<&str> = head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .map(|(name, _)| name)
            .collect();
        names.sort_unstable();
        let expected_names = [
            "authorization",
            "content-length",
            "content-type",
            "host",
            "user-agent",
            "x-tenant",
        ];
        assert_eq!(names, expected_names, "{head}");
        assert!(head.contains("\r\nx-tenant: a b\r\n"), "{head}");
        assert!(head.contains("\r\nauthorization: bearer 2\r\n"), "{head}");
        assert!(
            !head.contains("bearer 1"),
            "a name given twice keeps its last value: {head}"
        );
        assert!(
            head.contains("\r\ncontent-type: application/x-protobuf\r\n"),
            "{head}"
        );
        assert!(
            head.contains("\r\nuser-agent: otel-otlp-exporter-rust (coldstart/"),
            "{head}"
        );
        assert!(!head.contains("content-encoding"), "{head}");
        assert_eq!(body, expected);
    }

    /// `content-length` and `transfer-encoding` frame the body and `content-encoding`
    /// says how it is encoded, which are the exporter's to set: given in the headers
    /// setting, they are left out and said, and the other headers are sent.
    #[tokio::test]
    async fn framing_headers_in_the_setting_are_left_out_and_the_rest_sent() {
        let (url, requests) = collector(&[OK]);
        let env = coldstart_bootstrap::Env::fixed([
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "Content-Length=5,x-tenant=a,transfer-encoding=chunked,content-encoding=gzip"
                    .to_owned(),
            ),
        ]);
        let (config, errors) = crate::Config::from(&env);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].adjusted(), "{errors:?}");
        let said = errors[0].to_string();
        assert!(
            said.ends_with(
                "(it names `Content-Length`, `transfer-encoding` and `content-encoding`); the other headers are sent"
            ),
            "{said}"
        );
        let exporter = super::http_exporter(&config).unwrap();
        let batch = super::super::encode::tests::batch();
        let expected = super::encode::request(&Default::default(), &batch).unwrap();
        tokio::time::timeout(Duration::from_secs(5), exporter.export(batch))
            .await
            .unwrap()
            .unwrap();
        let (head, body) = requests.recv_timeout(Duration::from_secs(5)).unwrap();
        let length = format!("\r\ncontent-length: {}\r\n", expected.len());
        assert!(head.contains(&length), "{head}");
        assert!(head.contains("\r\nx-tenant: a\r\n"), "{head}");
        assert!(!head.contains("transfer-encoding"), "{head}");
        assert!(!head.contains("content-encoding"), "{head}");
        assert_eq!(body, expected);
    }

    /// With `gzip` the body is the same request, gzip-compressed, and says so.
    #[cfg(feature = "gzip")]
    #[tokio::test]
    async fn with_gzip_the_body_is_compressed_and_says_so() {
        let (url, requests) = collector(&[OK]);
        let exporter = exporter_to(&url, &[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")]);
        let batch = super::super::encode::tests::batch();
        let expected = super::encode::request(&Default::default(), &batch).unwrap();
        exporter.export(batch).await.unwrap();
        let (head, body) = requests.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(head.contains("\r\ncontent-encoding: gzip\r\n"), "{head}");
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(body.as_slice())
            .read_to_end(&mut unpacked)
            .unwrap();
        assert_eq!(unpacked, expected);
        // At the fastest level, which the header's XFL byte says (RFC 1952: 4).
        assert_eq!(body[8], 4, "XFL {}", body[8]);
    }

    /// Only the statuses the specification calls retryable are retried, after at
    /// least what a `Retry-After` asks (checked from below only); a delay past the
    /// timeout ends the export at once.
    #[tokio::test]
    async fn retryable_statuses_are_retried_after_what_the_collector_asks() {
        let unavailable = "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n";
        let (url, requests) = collector(&[unavailable, OK]);
        exporter_to(&url, &[]).export(Vec::new()).await.unwrap();
        assert_eq!(requests.try_iter().count(), 2);

        let slow_down =
            "HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\ncontent-length: 0\r\n\r\n";
        let (url, requests) = collector(&[slow_down, OK]);
        let started = std::time::Instant::now();
        exporter_to(&url, &[]).export(Vec::new()).await.unwrap();
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(requests.try_iter().count(), 2);

        let bad = "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        let (url, requests) = collector(&[bad, OK]);
        let failed = exporter_to(&url, &[]).export(Vec::new()).await.unwrap_err();
        assert!(failed.to_string().contains("status code: 400"), "{failed}");
        assert_eq!(requests.try_iter().count(), 1);

        let later =
            "HTTP/1.1 503 Service Unavailable\r\nretry-after: 20\r\ncontent-length: 0\r\n\r\n";
        let (url, requests) = collector(&[later, OK]);
        let started = std::time::Instant::now();
        let exporter = exporter_to(&url, &[("OTEL_EXPORTER_OTLP_TIMEOUT", "2000")]);
        let failed = exporter.export(Vec::new()).await.unwrap_err();
        assert!(failed.to_string().contains("status code: 503"), "{failed}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(requests.try_iter().count(), 1);
    }

    /// A collector's answer is its status: one that cannot be read goes once, neither
    /// on a new connection nor by the retries; a 2xx whose body stalls, or runs past
    /// the 4 MiB read, is taken, its batch not sent again.
    #[tokio::test]
    async fn an_answer_is_its_status_whatever_its_body_and_goes_once() {
        let unreadable = "HTTP/1.1 200 OK\r\nbad\x01header: x\r\ncontent-length: 0\r\n\r\n";
        let (url, requests) = collector(&[unreadable, OK]);
        let failed = exporter_to(&url, &[]).export(Vec::new()).await.unwrap_err();
        assert!(failed.to_string().contains("unreadable answer"), "{failed}");
        assert_eq!(requests.try_iter().count(), 1);

        let stalls = "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nok";
        let (url, requests) = collector(&[stalls, OK]);
        let exporter = exporter_to(&url, &[("OTEL_EXPORTER_OTLP_TIMEOUT", "2000")]);
        exporter.export(Vec::new()).await.unwrap();
        assert_eq!(requests.try_iter().count(), 1);

        let n = 5 << 20;
        let long = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {n}\r\n\r\n{}",
            "x".repeat(n)
        );
        let (url, requests) = collector(&[Box::leak(long.into_boxed_str())]);
        exporter_to(&url, &[]).export(Vec::new()).await.unwrap();
        assert_eq!(requests.try_iter().count(), 1);
    }

    #[test]
    fn retry_after_is_seconds_or_a_date_and_capped() {
        let asked = |value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(http::header::RETRY_AFTER, value.parse().unwrap());
            super::retry_after(&headers)
        };
        assert_eq!(asked("7"), Some(Duration::from_secs(7)));
        assert_eq!(asked("86400"), Some(super::MAX_ASKED_DELAY));
        let soon = std::time::SystemTime::now() + Duration::from_secs(12);
        let delay = asked(&httpdate::fmt_http_date(soon)).unwrap();
        assert!(
            (Duration::from_secs(10)..=Duration::from_secs(12)).contains(&delay),
            "{delay:?}"
        );
        assert_eq!(asked("Thu, 01 Jan 1970 00:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(asked("soon"), None);
        assert_eq!(super::retry_after(&http::HeaderMap::new()), None);
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

    /// With no collector listening the exporter retries with backoff on tokio's clock,
    /// never blocking the runtime's thread (under `minimal`, the only one) and every
    /// request with it. On a paused tokio clock a backoff that waits on tokio advances
    /// that clock without any real waiting; a blocking sleep leaves it where it was.
    /// Nothing here measures real time.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_failing_export_backs_off_on_the_runtime_never_blocking_its_thread() {
        let port = crate::client::tests::refused_address().port();
        let exporter = exporter_to(&format!("http://127.0.0.1:{port}/v1/traces"), &[]);
        let start = tokio::time::Instant::now();
        let failed = exporter.export(Vec::new()).await.unwrap_err().to_string();
        assert!(
            failed.contains(&format!(
                "network error: cannot connect to 127.0.0.1:{port}"
            )),
            "{failed}"
        );
        // The three backoffs (100, 200 and 400 ms, plus jitter), every one of them on
        // tokio's clock.
        assert!(
            start.elapsed() >= Duration::from_millis(700),
            "the retry backoff did not wait on tokio's clock: it blocked the thread ({:?})",
            start.elapsed()
        );
    }
}
