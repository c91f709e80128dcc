//! Telemetry end to end, with the real components: Prometheus scrapes the example
//! after one request, `promtool` checks the exposition, an OTLP receiver built on the
//! official protobuf definitions receives the first request's server span, and every
//! failure of a telemetry backend leaves the service answering, counted and reported
//! once. Time is never asserted on here; the cost is measured in the benchmarks.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use coldstart_test_support::{
    Collector, Lines, Reaper, free_port, get, get_http10, get_with, poll, prometheus_query,
    start_prometheus, start_pushgateway, temp_dir, tool,
};

const SERVER: &str = env!("CARGO_BIN_EXE_http-server");

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// Starts the example with `vars`, stderr piped; waits until it listens.
fn server(vars: &[(&str, String)]) -> (u16, Reaper, Lines) {
    server_in(std::path::Path::new("."), vars)
}

/// [`server`] in the working directory `dir` (where it looks for its configuration
/// file).
fn server_in(dir: &std::path::Path, vars: &[(&str, String)]) -> (u16, Reaper, Lines) {
    coldstart_test_support::start_server(SERVER, dir, vars)
}

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// The value of the first sample of `series` (a name with labels, as exposed).
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn scrape(port: u16) -> String {
    body(&get_with(port, "/metrics", "")).to_owned()
}

fn dropped(exposition: &str, reason: &str) -> f64 {
    let signal = if reason == "push_failed" {
        "metrics"
    } else {
        "spans"
    };
    sample(
        exposition,
        &format!("coldstart_telemetry_dropped_total{{signal=\"{signal}\",reason=\"{reason}\"}}"),
    )
    .unwrap_or(-1.0)
}

/// Nothing answered before the fallback timer: the exporters start all the same, and
/// the moment is `phase="fallback"`, never a `first_response` no one got (an alert on
/// slow first responses fired on every idle start).
#[test]
fn a_fallback_start_is_not_counted_as_a_first_response() {
    let mport = free_port();
    let (_port, _server, _lines) = server(&[
        ("COLDSTART_METRICS_ADDR", format!("127.0.0.1:{mport}")),
        ("COLDSTART_FIRST_RESPONSE_FALLBACK", "200ms".into()),
        ("OTEL_TRACES_EXPORTER", "none".into()),
    ]);
    let exposition = poll(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", mport)).ok()?;
        Some(scrape(mport))
    })
    .expect("the fallback timer started the metrics listener");
    let fallback = sample(&exposition, "coldstart_phase_seconds{phase=\"fallback\"}");
    assert!(fallback.is_some_and(|s| s >= 0.2), "{exposition}");
    assert!(
        !exposition.contains("phase=\"first_response\""),
        "{exposition}"
    );
}

/// The example says where `/metrics` is served once its listener is bound: the port
/// the system chose for port 0; where the address is taken, that it is not served
/// (after coldstart says why). It said the configured address, `:0` or taken alike.
#[test]
fn the_example_says_the_address_metrics_are_served_on_once_bound() {
    let vars = |addr: String| {
        [
            ("COLDSTART_METRICS_ADDR", addr),
            ("OTEL_TRACES_EXPORTER", "none".into()),
        ]
    };
    let (port, _server, mut lines) = server(&vars("127.0.0.1:0".into()));
    assert!(get(port).ends_with("hello\n"));
    let said = lines.wait_for("metrics on").to_owned();
    let bound: u16 = said
        .lines()
        .find_map(|line| line.strip_prefix("http-server: metrics on http://127.0.0.1:"))
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert_ne!(bound, 0, "{said}");
    let series = "http_requests_total{method=\"GET\",route=\"/\",status=\"200\"}";
    assert_eq!(sample(&scrape(bound), series), Some(1.0));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (port, _server, mut lines) = server(&vars(addr.clone()));
    assert!(get(port).ends_with("hello\n"));
    let said = lines.wait_for("/metrics is not served").to_owned();
    assert!(said.contains(&format!("cannot listen on {addr}")), "{said}");
    assert!(!said.contains("metrics on"), "{said}");
}

#[test]
fn metrics_start_after_the_first_response_and_prometheus_scrapes_them() {
    let test = "metrics_start_after_the_first_response_and_prometheus_scrapes_them";
    let (Some(prometheus), Some(promtool)) = (
        tool(test, "prometheus", &["--version"]),
        tool(test, "promtool", &["--version"]),
    ) else {
        return;
    };
    let mport = free_port();
    let (port, _server, mut lines) = server(&[
        ("COLDSTART_METRICS_ADDR", format!("127.0.0.1:{mport}")),
        ("OTEL_TRACES_EXPORTER", "none".into()),
    ]);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", mport)).is_err(),
        "the metrics listener must not start before the first response"
    );
    assert!(get(port).ends_with("hello\n"));
    lines.wait_for("metrics on");
    let response = get_with(mport, "/metrics", "");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{response}"
    );
    let exposition = body(&response);
    assert_eq!(
        sample(
            exposition,
            "http_requests_total{method=\"GET\",route=\"/\",status=\"200\"}"
        ),
        Some(1.0),
        "the cold-start request was recorded before the listener started:\n{exposition}"
    );
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_open_fds",
        "tokio_workers",
        "coldstart_cold_starts_total",
        "coldstart_phase_seconds{phase=\"first_response\"}",
        "coldstart_init_duration_seconds{name=\"http_server::CONFIG\",place=\"before_serving\"}",
        "coldstart_limit_cpu_cores",
    ] {
        assert!(
            sample(exposition, name).is_some(),
            "{name} missing:\n{exposition}"
        );
    }

    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let checked = check.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(
        checked.status.success() && said.trim().is_empty(),
        "promtool: {said}"
    );

    let dir = temp_dir("prometheus");
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: coldstart\n    static_configs:\n      - targets: ['127.0.0.1:{mport}']\n"
        ),
    )
    .unwrap();
    let (_prometheus, pport) = start_prometheus(&prometheus, &dir.join("prometheus.yml"), &dir);
    let query = |q: &str| -> Option<f64> {
        prometheus_query(pport, q)?["data"]["result"][0]["value"][1]
            .as_str()?
            .parse()
            .ok()
    };
    let seen = poll(Duration::from_secs(15), || {
        let up = query("up{job=\"coldstart\"}")?;
        let requests = query("sum(http_requests_total)")?;
        (up == 1.0 && requests >= 1.0).then_some((up, requests))
    });
    assert!(
        seen.is_some(),
        "Prometheus never saw up == 1 and http_requests_total >= 1 within 15 s"
    );
    // The directory goes after Prometheus stops (declared before it, dropped after).
}

/// Certificates made for one test, as PEM files in a temporary directory: a CA
/// (`ca.pem`), a server certificate for 127.0.0.1 and localhost (`server.pem`,
/// `server.key`), a client certificate from that CA (`client.pem`, `client.key`),
/// and another CA (`other-ca.pem`) with a client certificate from it (`stranger.pem`,
/// `stranger.key`).
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
struct Pki {
    dir: coldstart_test_support::TempDir,
}

#[cfg_attr(not(feature = "tls"), allow(dead_code))]
impl Pki {
    fn new(name: &str) -> Pki {
        use rcgen::{ExtendedKeyUsagePurpose as Usage, Issuer, KeyPair};
        let dir = temp_dir(&format!("pki-{name}"));
        let write = |file: &str, pem: String| std::fs::write(dir.join(file), pem).unwrap();
        let authority = |name: &str| {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            params.key_usages = vec![
                rcgen::KeyUsagePurpose::KeyCertSign,
                rcgen::KeyUsagePurpose::DigitalSignature,
            ];
            let key = KeyPair::generate().unwrap();
            let pem = params.self_signed(&key).unwrap().pem();
            (Issuer::new(params, key), pem)
        };
        let leaf = |issuer: &Issuer<'_, KeyPair>, names: &[&str], usage: Usage, file: &str| {
            let mut params = rcgen::CertificateParams::new(
                names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            )
            .unwrap();
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate().unwrap();
            write(
                &format!("{file}.pem"),
                params.signed_by(&key, issuer).unwrap().pem(),
            );
            write(&format!("{file}.key"), key.serialize_pem());
        };
        let (ca, ca_pem) = authority("coldstart test CA");
        write("ca.pem", ca_pem);
        leaf(
            &ca,
            &["127.0.0.1", "localhost"],
            Usage::ServerAuth,
            "server",
        );
        leaf(&ca, &["client"], Usage::ClientAuth, "client");
        let (other, other_pem) = authority("another CA");
        write("other-ca.pem", other_pem);
        leaf(&other, &["client"], Usage::ClientAuth, "stranger");
        Pki { dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The exporter's TLS variables: trust the CA, and present `client` (`client` or
    /// `stranger`) unless `None`.
    fn exporter_vars(&self, client: Option<&str>) -> Vec<(&'static str, String)> {
        self.exporter_vars_trusting("ca.pem", client)
    }

    /// [`Pki::exporter_vars`], trusting the CA in the file `ca` instead.
    fn exporter_vars_trusting(
        &self,
        ca: &str,
        client: Option<&str>,
    ) -> Vec<(&'static str, String)> {
        let path = |f: &str| self.path(f).display().to_string();
        let mut vars = vec![("OTEL_EXPORTER_OTLP_CERTIFICATE", path(ca))];
        if let Some(client) = client {
            vars.push((
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                path(&format!("{client}.pem")),
            ));
            vars.push((
                "OTEL_EXPORTER_OTLP_CLIENT_KEY",
                path(&format!("{client}.key")),
            ));
        }
        vars
    }
}

/// `GET /` on `port` as part of trace `trace` (its parent [`PARENT_ID`]); the example
/// must answer it.
fn answered_in_trace(port: u16, trace: &str) {
    let traceparent = format!("traceparent: 00-{trace}-{PARENT_ID}-01\r\n");
    assert!(get_with(port, "/", &traceparent).ends_with("hello\n"));
}

/// Sends the cold-start request of a trace through an example exporting to
/// `collector` with `vars`, and returns the span the collector received.
fn first_span_through(collector: &Collector, vars: &[(&str, String)]) -> serde_json::Value {
    let mut all = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint()),
        ("COLDSTART_METRICS_ADDR", "off".into()),
    ];
    all.extend(vars.iter().cloned());
    let (port, _server, _lines) = server(&all);
    answered_in_trace(port, TRACE_ID);
    let span = collector.span_of(TRACE_ID);
    assert_eq!(span["parent_span_id"], PARENT_ID);
    assert_eq!(span["name"], "GET /");
    span
}

#[cfg(feature = "grpc")]
#[test]
fn the_first_requests_span_reaches_an_otlp_receiver_over_grpc() {
    let test = "the_first_requests_span_reaches_an_otlp_receiver_over_grpc";
    let Some(collector) = Collector::start_with(test, "ok", true, None) else {
        return;
    };
    let span = first_span_through(
        &collector,
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "2".into()),
        ],
    );
    assert_eq!(span["transport"], "grpc");
    // The value length limit cuts the span's strings, not the resource's.
    assert_eq!(span["attributes"]["http.request.method"], "GE");
    // Named by nothing, the service is named as the specification says.
    assert_eq!(
        span["resource"]["service.name"],
        "unknown_service:http-server"
    );
    assert_eq!(span["resource"]["process.executable.name"], "http-server");
}

/// The headers (or gRPC metadata) the collector received with the span of a request
/// the example answered with `vars`, in `dir` (where it looks for its configuration
/// file); `case` numbers the request's trace. No headers variable is inherited.
fn headers_sent(
    collector: &Collector,
    case: u8,
    dir: &std::path::Path,
    vars: &[(&str, &str)],
) -> serde_json::Value {
    let mut all = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint()),
        ("COLDSTART_METRICS_ADDR", "off".into()),
    ];
    all.extend(vars.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let unset = [
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "COLDSTART_ENV",
        "APP_ENV",
    ];
    let (port, _server, _lines) =
        coldstart_test_support::start_server_without(SERVER, dir, &all, &unset);
    let trace = format!("{case:032x}");
    answered_in_trace(port, &trace);
    collector.span_of(&trace)["headers"].clone()
}

/// Exactly the headers coldstart read are sent, decoded, the traces-only variable
/// replacing the general one whole; a headers variable coldstart refuses sends
/// nothing (opentelemetry-otlp's exporter, which read the variables too, sent the
/// pairs it could parse); one that names `content-length` sends the other pairs.
fn only_the_headers_coldstart_read_are_sent(test: &str, grpc: bool) {
    let Some(collector) = Collector::start_with(test, "ok", grpc, None) else {
        return;
    };
    let protocol = if grpc { "grpc" } else { "http/protobuf" };
    let here = std::path::Path::new(".");
    let general = "x-tenant=a%20b,authorization=Bearer%20t0k";
    let sent = headers_sent(
        &collector,
        1,
        here,
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_EXPORTER_OTLP_HEADERS", general),
        ],
    );
    assert_eq!(sent["x-tenant"], "a b", "{sent}");
    assert_eq!(sent["authorization"], "Bearer t0k", "{sent}");
    let agent = sent["user-agent"].as_str().unwrap_or_default();
    assert!(
        agent.starts_with("OTel-OTLP-Exporter-Rust (coldstart/"),
        "{sent}"
    );
    let sent = headers_sent(
        &collector,
        2,
        here,
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_EXPORTER_OTLP_HEADERS", general),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-tenant=c"),
        ],
    );
    assert_eq!(sent["x-tenant"], "c", "{sent}");
    assert!(
        sent.get("authorization").is_none(),
        "replaced whole: {sent}"
    );
    let sent = headers_sent(
        &collector,
        3,
        here,
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=a,no-value-here"),
        ],
    );
    assert!(sent.get("x-tenant").is_none(), "{sent}");
    // The file's traces-only headers are sent, and replaced by general ones an
    // operator sets in the environment: layers first, then the more specific name.
    let dir = temp_dir("headers-file");
    std::fs::write(
        dir.join("coldstart.toml"),
        "[otel]\nexporter_otlp_traces_headers = \"x-tenant=from%20file\"\n",
    )
    .unwrap();
    let sent = headers_sent(
        &collector,
        4,
        &dir,
        &[("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)],
    );
    assert_eq!(sent["x-tenant"], "from file", "{sent}");
    let sent = headers_sent(
        &collector,
        5,
        &dir,
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_EXPORTER_OTLP_HEADERS", general),
        ],
    );
    assert_eq!(sent["x-tenant"], "a b", "{sent}");
    assert_eq!(sent["authorization"], "Bearer t0k", "{sent}");
    // A pair that frames the body is left out, the rest sent (the given length failed
    // every export).
    let sent = headers_sent(
        &collector,
        6,
        here,
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_EXPORTER_OTLP_HEADERS", "content-length=5,x-tenant=d"),
        ],
    );
    assert_eq!(sent["x-tenant"], "d", "{sent}");
    assert_ne!(sent.get("content-length"), Some(&"5".into()), "{sent}");
}

#[test]
fn only_the_headers_coldstart_read_are_sent_over_http() {
    only_the_headers_coldstart_read_are_sent(
        "only_the_headers_coldstart_read_are_sent_over_http",
        false,
    );
}

#[cfg(feature = "grpc")]
#[test]
fn only_the_headers_coldstart_read_are_sent_over_grpc() {
    only_the_headers_coldstart_read_are_sent(
        "only_the_headers_coldstart_read_are_sent_over_grpc",
        true,
    );
}

/// Compression follows coldstart's layers: `gzip` from the environment or from the
/// file alone, a file's traces-only `none` replacing its own general `gzip`, and the
/// environment's general `gzip` overriding the file's traces-only `none`. Over HTTP the receiver gunzips a body that says it is gzip, and what each
/// request said is checked. Over gRPC grpcio decompresses a call and keeps its
/// `grpc-encoding` to itself, so what is checked is that every call was read (the
/// exporter's own test, `trace::grpc::tests::calls_are_gzip_compressed_when_asked`,
/// sees the encoding on a tonic server).
#[cfg(feature = "gzip")]
fn compression_follows_coldstarts_layers(test: &str, grpc: bool) {
    let Some(collector) = Collector::start_with(test, "ok", grpc, None) else {
        return;
    };
    let protocol = if grpc { "grpc" } else { "http/protobuf" };
    let protocol = ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol);
    let gzip = ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip");
    let file = |name: &str, line: &str| {
        let dir = temp_dir(&format!("{test}-{name}"));
        std::fs::write(dir.join("coldstart.toml"), format!("[otel]\n{line}\n")).unwrap();
        dir
    };
    let environment = headers_sent(&collector, 1, std::path::Path::new("."), &[protocol, gzip]);
    let dir = file(
        "none",
        "exporter_otlp_compression = \"gzip\"\nexporter_otlp_traces_compression = \"none\"",
    );
    let file_none = headers_sent(&collector, 2, &dir, &[protocol]);
    // The environment's general setting overrides the file's traces-only one.
    let over_file = headers_sent(&collector, 4, &dir, &[protocol, gzip]);
    let dir = file("gzip", "exporter_otlp_compression = \"gzip\"");
    let file_gzip = headers_sent(&collector, 3, &dir, &[protocol]);
    if grpc {
        for sent in [&environment, &file_none, &over_file, &file_gzip] {
            let agent = sent["user-agent"].as_str().unwrap_or_default();
            assert!(agent.starts_with("OTel-OTLP-Exporter-Rust"), "{sent}");
        }
    } else {
        assert_eq!(environment["content-encoding"], "gzip", "{environment}");
        assert!(file_none.get("content-encoding").is_none(), "{file_none}");
        assert_eq!(over_file["content-encoding"], "gzip", "{over_file}");
        assert_eq!(file_gzip["content-encoding"], "gzip", "{file_gzip}");
    }
}

#[cfg(feature = "gzip")]
#[test]
fn compression_follows_coldstarts_layers_over_http() {
    compression_follows_coldstarts_layers("compression_follows_coldstarts_layers_over_http", false);
}

#[cfg(all(feature = "gzip", feature = "grpc"))]
#[test]
fn compression_follows_coldstarts_layers_over_grpc() {
    compression_follows_coldstarts_layers("compression_follows_coldstarts_layers_over_grpc", true);
}

/// A receiver that requires client certificates gets the span from an exporter
/// with a certificate from its CA, and nothing from one without a certificate, with
/// a certificate from another CA, or that does not trust the receiver's CA: those
/// drops are counted.
#[cfg(feature = "tls")]
fn mutual_tls_export(test: &str, grpc: bool) {
    let pki = Pki::new(test);
    let Some(collector) = Collector::start_with(test, "ok", grpc, Some(&pki.dir)) else {
        return;
    };
    let protocol = (
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        if grpc { "grpc" } else { "http/protobuf" }.into(),
    );
    let mut vars = pki.exporter_vars(Some("client"));
    vars.push(protocol.clone());
    let span = first_span_through(&collector, &vars);
    assert_eq!(span["transport"], if grpc { "grpc" } else { "http" });

    for (case, mut vars) in [
        ("no client certificate", pki.exporter_vars(None)),
        (
            "a client certificate from another CA",
            pki.exporter_vars(Some("stranger")),
        ),
        (
            "a server certificate from a CA it does not trust",
            pki.exporter_vars_trusting("other-ca.pem", Some("client")),
        ),
    ] {
        let mport = free_port();
        vars.extend([
            protocol.clone(),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint()),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000".into()),
            ("OTEL_BSP_SCHEDULE_DELAY", "50".into()),
            ("COLDSTART_METRICS_ADDR", format!("127.0.0.1:{mport}")),
        ]);
        let (port, _server, _lines) = server(&vars);
        let trace = "0af7651916cd43dd8448eb211c80319c";
        answered_in_trace(port, trace);
        let counted = poll(Duration::from_secs(10), || {
            (dropped(&scrape(mport), "export_failed") >= 1.0).then_some(())
        });
        assert!(
            counted.is_some(),
            "{case}: the refused export was not counted:\n{}",
            scrape(mport)
        );
        assert!(
            collector.spans().iter().all(|s| s["trace_id"] != trace),
            "{case}: the export must be refused"
        );
    }
}

#[cfg(feature = "tls")]
#[test]
fn spans_reach_a_receiver_that_requires_client_certificates_over_http() {
    mutual_tls_export(
        "spans_reach_a_receiver_that_requires_client_certificates_over_http",
        false,
    );
}

#[cfg(all(feature = "tls", feature = "grpc"))]
#[test]
fn spans_reach_a_receiver_that_requires_client_certificates_over_grpc() {
    mutual_tls_export(
        "spans_reach_a_receiver_that_requires_client_certificates_over_grpc",
        true,
    );
}

/// `/metrics` over TLS with a client CA: curl without a certificate, or with one
/// from another CA, is refused; with one from the CA it gets the first request.
#[cfg(feature = "tls")]
#[test]
fn metrics_over_tls_serve_only_clients_with_a_certificate_from_the_ca() {
    let test = "metrics_over_tls_serve_only_clients_with_a_certificate_from_the_ca";
    let Some(curl) = tool(test, "curl", &["--version"]) else {
        return;
    };
    let pki = Pki::new(test);
    let mport = free_port();
    let path = |f: &str| pki.path(f).display().to_string();
    let (port, _server, mut lines) = server(&[
        ("COLDSTART_METRICS_ADDR", format!("127.0.0.1:{mport}")),
        ("COLDSTART_METRICS_TLS_CERT", path("server.pem")),
        ("COLDSTART_METRICS_TLS_KEY", path("server.key")),
        ("COLDSTART_METRICS_TLS_CLIENT_CA", path("ca.pem")),
        ("OTEL_TRACES_EXPORTER", "none".into()),
    ]);
    assert!(get(port).ends_with("hello\n"));
    lines.wait_for("metrics on");
    let url = format!("https://127.0.0.1:{mport}/metrics");
    let fetch = |client: Option<&str>| {
        let mut cmd = Command::new(&curl);
        cmd.args(["-sS", "--max-time", "10", "--cacert"])
            .arg(path("ca.pem"));
        if let Some(client) = client {
            cmd.arg("--cert").arg(path(&format!("{client}.pem")));
            cmd.arg("--key").arg(path(&format!("{client}.key")));
        }
        cmd.arg(&url).output().unwrap()
    };
    for refused in [None, Some("stranger")] {
        let out = fetch(refused);
        assert!(
            !out.status.success(),
            "client {refused:?} was served: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let out = fetch(Some("client"));
    let exposition = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        sample(
            &exposition,
            "http_requests_total{method=\"GET\",route=\"/\",status=\"200\"}"
        ),
        Some(1.0),
        "{exposition}"
    );
    // Plain HTTP on the TLS port gets nothing.
    assert!(get_http10(mport, "/metrics").is_none_or(|r| !r.contains("http_requests_total")));
}

#[test]
fn the_first_requests_span_reaches_an_otlp_receiver_with_its_parent() {
    let test = "the_first_requests_span_reaches_an_otlp_receiver_with_its_parent";
    let Some(collector) = Collector::start(test, "ok") else {
        return;
    };
    let span = first_span_through(&collector, &[("OTEL_SERVICE_NAME", "hello-test".into())]);
    assert_eq!(span["transport"], "http");
    assert_eq!(span["kind"], 2, "SPAN_KIND_SERVER");
    assert_eq!(span["attributes"]["http.route"], "/");
    assert_eq!(span["attributes"]["http.request.method"], "GET");
    assert_eq!(span["attributes"]["http.response.status_code"], 200);
    assert_eq!(span["resource"]["service.name"], "hello-test");
    assert_eq!(
        span["resource"]["service.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert!(span["resource"]["host.arch"].is_string());
    assert!(span["resource"]["process.pid"].is_i64());
    assert_eq!(span["resource"]["process.executable.name"], "http-server");
}

#[test]
fn settings_from_the_environments_file_reach_metrics_and_traces() {
    let test = "settings_from_the_environments_file_reach_metrics_and_traces";
    let Some(collector) = Collector::start(test, "ok") else {
        return;
    };
    let dir = temp_dir("config-file");
    std::fs::create_dir_all(dir.join("config")).unwrap();
    let metrics_port = free_port();
    std::fs::write(
        dir.join("config/staging.toml"),
        format!(
            "# as a deployment would ship it\n\
             [coldstart]\n\
             metrics_addr = \"127.0.0.1:{metrics_port}\"\n\
             [otel]\n\
             service_name = \"from-file\"\n\
             resource_attributes = \"deployment.environment=staging\"\n\
             exporter_otlp_endpoint = \"{}\"\n\
             traces_sampler = \"always_off\"\n",
            collector.endpoint()
        ),
    )
    .unwrap();
    // The environment beats the file: the sampler from the file would drop the span.
    let (port, _server, _lines) = server_in(
        &dir,
        &[
            ("APP_ENV", "staging".into()),
            ("OTEL_TRACES_SAMPLER", "parentbased_always_on".into()),
        ],
    );
    answered_in_trace(port, TRACE_ID);
    let span = collector.span_of(TRACE_ID);
    assert_eq!(span["resource"]["service.name"], "from-file");
    assert_eq!(span["resource"]["deployment.environment"], "staging");
    let exposition = poll(Duration::from_secs(10), || {
        Some(scrape(metrics_port)).filter(|e| e.contains("http_requests_total"))
    })
    .unwrap();
    assert_eq!(
        sample(
            &exposition,
            "http_requests_total{method=\"GET\",route=\"/\",status=\"200\"}"
        ),
        Some(1.0)
    );
}

#[cfg(feature = "logs")]
#[test]
fn tracing_spans_are_exported_and_log_lines_carry_their_ids() {
    let test = "tracing_spans_are_exported_and_log_lines_carry_their_ids";
    let Some(collector) = Collector::start(test, "ok") else {
        return;
    };
    let (port, _server, stdout, _lines) = logging_server(&collector, &[]);
    answered_in_trace(port, TRACE_ID);
    let line = line_with(stdout, "answering");
    let log: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(log["level"], "DEBUG");
    assert_eq!(log["target"], "http_server");
    assert_eq!(log["greeting_bytes"], 6);
    assert_eq!(log["trace_id"], TRACE_ID, "{line}");
    // The `tracing` span arrives as a child of the server span, and the log line
    // names it: metric, trace and log line up.
    let spans = poll(Duration::from_secs(10), || {
        let spans: Vec<_> = collector
            .spans()
            .into_iter()
            .filter(|s| s["trace_id"] == TRACE_ID)
            .collect();
        (spans.len() >= 2).then_some(spans)
    })
    .unwrap_or_else(|| panic!("got {:?}", collector.spans()));
    let server = spans.iter().find(|s| s["name"] == "GET /").unwrap();
    let greeting = spans.iter().find(|s| s["name"] == "greeting").unwrap();
    assert_eq!(greeting["parent_span_id"], server["span_id"]);
    assert_eq!(log["span_id"], greeting["span_id"]);
}

/// `OTEL_TRACES_EXPORTER=none` stops the export and nothing else, as the
/// specification says: the incoming trace is carried on (the request's log line names
/// it) and no span reaches the collector, not even at the final flush. With
/// `OTEL_SDK_DISABLED=true` there is no tracing at all, so the line names no trace.
#[cfg(feature = "logs")]
#[test]
fn without_a_trace_exporter_spans_are_made_but_never_sent() {
    let test = "without_a_trace_exporter_spans_are_made_but_never_sent";
    let Some(collector) = Collector::start(test, "ok") else {
        return;
    };
    let answer_and_stop = |switch: (&str, &str)| -> serde_json::Value {
        let (port, mut server, stdout, mut lines) = logging_server(&collector, &[switch]);
        answered_in_trace(port, TRACE_ID);
        answered_in_trace(port, TRACE_ID);
        let line = line_with(stdout, "answering");
        // Once the example's hook is registered (before, a signal has its default
        // effect); the final flush runs at SIGTERM: it must send nothing either.
        lines.wait_for("deferred work started after the first response");
        // SAFETY: kill(2) on a child this test started and has not reaped.
        assert_eq!(
            unsafe { libc::kill(server.0.id() as i32, libc::SIGTERM) },
            0
        );
        assert!(server.wait_within(Duration::from_secs(30)).success());
        serde_json::from_str(&line).unwrap()
    };

    let log = answer_and_stop(("OTEL_TRACES_EXPORTER", "none"));
    assert_eq!(log["trace_id"], TRACE_ID, "{log}");
    assert!(log["span_id"].is_string(), "{log}");
    let log = answer_and_stop(("OTEL_SDK_DISABLED", "true"));
    assert!(log.get("trace_id").is_none(), "{log}");
    assert_eq!(collector.spans(), Vec::<serde_json::Value>::new());
    // The same collector does receive the spans of a program that exports them.
    answer_and_stop(("OTEL_TRACES_EXPORTER", "otlp"));
    assert!(
        collector
            .at_least(2)
            .iter()
            .all(|s| s["trace_id"] == TRACE_ID)
    );
}

/// The example exporting to `collector` with `vars`, logging a JSON line per request
/// on its stdout, which is returned with its stderr's lines; it may not listen yet (a
/// request waits for it).
#[cfg(feature = "logs")]
fn logging_server(
    collector: &Collector,
    vars: &[(&str, &str)],
) -> (u16, Reaper, std::process::ChildStdout, Lines) {
    let port = free_port();
    let mut child = Command::new(SERVER)
        .env("PORT", port.to_string())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint())
        .env("COLDSTART_METRICS_ADDR", "off")
        .env("COLDSTART_LOG_FORMAT", "json")
        .env("RUST_LOG", "info,http_server=debug")
        .envs(vars.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = Lines::of(&mut child);
    (port, Reaper(child), stdout, lines)
}

/// The first line of `stdout` that contains `needle`, read on a thread: a line that
/// never comes fails the test after 10 s instead of hanging it.
#[cfg(feature = "logs")]
fn line_with(stdout: std::process::ChildStdout, needle: &'static str) -> String {
    use std::io::BufRead as _;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let line = std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains(needle));
        let _ = tx.send(line);
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Some(line)) => line,
        Ok(None) => panic!("the server's output ended without a line with `{needle}`"),
        Err(_) => panic!("no line with `{needle}` within 10 s"),
    }
}

/// Serves `n` requests; all must be answered.
fn serve_all(port: u16, n: usize) {
    for i in 0..n {
        let r = get(port);
        assert!(
            r.starts_with("HTTP/1.1 200") && r.ends_with("hello\n"),
            "request {i}: {r}"
        );
    }
}

/// Runs the example against a broken OTLP endpoint and checks that every request is
/// answered, the drop is counted, and the problem is reported on one line.
fn survives_a_broken_collector(endpoint: String, extra: &[(&str, String)], reason: &str) -> String {
    survives_a_broken_collector_then(endpoint, extra, reason, |_| {})
}

/// [`survives_a_broken_collector`], then `after` with the port of `/metrics` while the
/// server still runs.
fn survives_a_broken_collector_then(
    endpoint: String,
    extra: &[(&str, String)],
    reason: &str,
    after: impl FnOnce(u16),
) -> String {
    let mport = free_port();
    let mut vars = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "300".into()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".into()),
        ("COLDSTART_METRICS_ADDR", format!("127.0.0.1:{mport}")),
    ];
    vars.extend(extra.iter().cloned());
    let (port, _server, mut lines) = server(&vars);
    serve_all(port, 40);
    let counted = poll(Duration::from_secs(10), || {
        let n = dropped(&scrape(mport), reason);
        (n >= 1.0).then_some(n)
    });
    assert!(
        counted.is_some(),
        "no drop counted as {reason}:\n{}",
        scrape(mport)
    );
    serve_all(port, 10);
    let said = lines.drain(Duration::from_millis(500)).to_owned();
    // One line per kind of problem, not a storm. A collector that never answers has
    // two kinds (the queue fills; an export times out), whose lines may both come
    // within the window: the kind is the text before its first parenthesis, less its
    // counts ("rejected 3 spans" and "rejected 5 spans" are one kind).
    let mut kinds: Vec<String> = said
        .lines()
        .filter(|l| l.contains("coldstart: traces:"))
        .map(|l| {
            let kind = l.split('(').next().unwrap_or(l);
            kind.chars().filter(|c| !c.is_ascii_digit()).collect()
        })
        .collect();
    let reports = kinds.len();
    kinds.sort_unstable();
    kinds.dedup();
    assert!(reports >= 1, "the problem was not reported:\n{said}");
    assert_eq!(
        reports,
        kinds.len(),
        "one line per kind, not a storm:\n{said}"
    );
    after(mport);
    said
}

#[test]
fn a_collector_that_is_down_is_counted_and_reported_once() {
    // Port 1, where nothing listens (a port freed a moment ago could be another
    // test's by now).
    let port = 1;
    let said =
        survives_a_broken_collector(format!("http://127.0.0.1:{port}"), &[], "export_failed");
    let why = format!("cannot connect to 127.0.0.1:{port}: Connection refused");
    assert!(said.contains(&why), "the line says why ({why}):\n{said}");
}

#[test]
fn a_collector_whose_name_does_not_resolve_is_counted_and_reported_once() {
    // `.invalid` never resolves (RFC 6761).
    let said =
        survives_a_broken_collector("http://collector.invalid:4318".into(), &[], "export_failed");
    let why = "cannot resolve `collector.invalid`: ";
    assert!(said.contains(why), "the line says why ({why}):\n{said}");
}

#[cfg(feature = "grpc")]
#[test]
fn a_grpc_collector_that_is_down_or_unresolvable_is_counted_and_reported_once() {
    let grpc = [("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned())];
    // Port 1, where nothing listens (a port freed a moment ago could be another
    // test's by now).
    survives_a_broken_collector("http://127.0.0.1:1".to_owned(), &grpc, "export_failed");
    survives_a_broken_collector(
        "http://collector.invalid:4317".into(),
        &grpc,
        "export_failed",
    );
}

#[cfg(feature = "grpc")]
#[test]
fn a_grpc_collector_that_never_answers_bounds_the_queue() {
    let test = "a_grpc_collector_that_never_answers_bounds_the_queue";
    let Some(collector) = Collector::start_with(test, "hang", true, None) else {
        return;
    };
    survives_a_broken_collector(
        collector.endpoint(),
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "8".into()),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000".into()),
        ],
        "queue_full",
    );
}

#[test]
fn a_collector_that_answers_errors_is_counted_and_reported_once() {
    let test = "a_collector_that_answers_errors_is_counted_and_reported_once";
    let Some(collector) = Collector::start(test, "error") else {
        return;
    };
    survives_a_broken_collector(collector.endpoint(), &[], "export_failed");
}

/// A collector that takes each batch but rejects its spans (an OTLP partial success):
/// every rejected span is counted as `rejected`, and the reason it gave is said once.
#[test]
fn spans_a_collector_rejects_are_counted_and_reported_once() {
    rejected_spans_are_counted(
        "spans_a_collector_rejects_are_counted_and_reported_once",
        false,
    );
}

/// The same over gRPC, whose exporter reads the collector's answer too.
#[cfg(feature = "grpc")]
#[test]
fn spans_a_grpc_collector_rejects_are_counted_and_reported_once() {
    rejected_spans_are_counted(
        "spans_a_grpc_collector_rejects_are_counted_and_reported_once",
        true,
    );
}

fn rejected_spans_are_counted(test: &str, grpc: bool) {
    let Some(collector) = Collector::start_with(test, "reject", grpc, None) else {
        return;
    };
    // Each of the 50 requests' spans is rejected once, and counted once, as nothing
    // but `rejected`.
    let every_span_once = |mport| {
        let counted = poll(Duration::from_secs(10), || {
            let exposition = scrape(mport);
            (dropped(&exposition, "rejected") >= 50.0).then_some(exposition)
        })
        .unwrap_or_else(|| scrape(mport));
        assert_eq!(dropped(&counted, "rejected"), 50.0, "{counted}");
        assert_eq!(dropped(&counted, "export_failed"), 0.0, "{counted}");
    };
    let protocol = if grpc { "grpc" } else { "http/protobuf" };
    let said = survives_a_broken_collector_then(
        collector.endpoint(),
        &[("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.into())],
        "rejected",
        every_span_once,
    );
    assert!(
        said.contains("the collector rejected") && said.contains("rejected (--mode reject)"),
        "{said}"
    );
}

#[test]
fn a_collector_that_never_answers_bounds_the_queue() {
    let test = "a_collector_that_never_answers_bounds_the_queue";
    let Some(collector) = Collector::start(test, "hang") else {
        return;
    };
    // A queue of 8 and a collector that holds each export for the whole timeout:
    // the rest of the 50 spans cannot fit.
    survives_a_broken_collector(
        collector.endpoint(),
        &[
            ("OTEL_BSP_MAX_QUEUE_SIZE", "8".into()),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000".into()),
        ],
        "queue_full",
    );
}

#[test]
fn a_taken_metrics_port_is_reported_once_and_the_service_keeps_serving() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mport = taken.local_addr().unwrap().port();
    let (port, _server, mut lines) = server(&[
        ("COLDSTART_METRICS_ADDR", format!("127.0.0.1:{mport}")),
        ("OTEL_TRACES_EXPORTER", "none".into()),
    ]);
    serve_all(port, 1);
    let said = lines.wait_for("cannot listen on").to_owned();
    assert!(
        said.contains(&format!("metrics: cannot listen on 127.0.0.1:{mport}")),
        "{said}"
    );
    serve_all(port, 5);
    let all = lines.drain(Duration::from_millis(300)).to_owned();
    assert_eq!(all.matches("cannot listen on").count(), 1, "{all}");
}

/// Every address of this machine's interfaces other than loopback.
fn other_addresses() -> Vec<std::net::IpAddr> {
    let mut found = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list that freeifaddrs releases;
    // each node's address is read only when its family says which sockaddr it is.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return found;
        }
        let mut node = list;
        while !node.is_null() {
            let addr = (*node).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let v4 = &*(addr as *const libc::sockaddr_in);
                        found.push(
                            std::net::Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)).into(),
                        );
                    }
                    libc::AF_INET6 => {
                        let v6 = &*(addr as *const libc::sockaddr_in6);
                        // Link-local addresses need a scope to connect to; skip them.
                        let ip = std::net::Ipv6Addr::from(v6.sin6_addr.s6_addr);
                        if !ip.is_unicast_link_local() {
                            found.push(ip.into());
                        }
                    }
                    _ => {}
                }
            }
            node = (*node).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    found.retain(|ip| !ip.is_loopback());
    found
}

/// With no `COLDSTART_METRICS_ADDR`, `/metrics` is served on 127.0.0.1:9464 and on no
/// other address of the machine.
#[test]
fn metrics_listen_on_loopback_only_by_default() {
    let test = "metrics_listen_on_loopback_only_by_default";
    let others = other_addresses();
    if others.is_empty() {
        let why = "this machine has no interface address other than loopback";
        assert!(!coldstart_test_support::in_ci(), "{test}: {why}");
        coldstart_test_support::skipped(test, why);
        return;
    }
    // The default port must be free, or another program's /metrics would answer.
    if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", 9464)) {
        panic!("{test} needs 127.0.0.1:9464, the default, free: {e}");
    }
    let (port, _server, mut lines) = coldstart_test_support::start_server_without(
        SERVER,
        std::path::Path::new("."),
        &[("OTEL_TRACES_EXPORTER", "none".into())],
        &["COLDSTART_METRICS_ADDR", "COLDSTART_CONFIG"],
    );
    serve_all(port, 1);
    let said = lines.wait_for("metrics on").to_owned();
    assert!(said.contains("http://127.0.0.1:9464/metrics"), "{said}");
    // This server's own: its one request, on a listener it could open.
    let series = "http_requests_total{method=\"GET\",route=\"/\",status=\"200\"}";
    let counted = poll(Duration::from_secs(10), || sample(&scrape(9464), series));
    assert_eq!(counted, Some(1.0), "{series} on :9464");
    let rest = lines.drain(Duration::from_millis(100));
    assert!(!rest.contains("cannot listen"), "{rest}");
    for ip in others {
        let reached =
            std::net::TcpStream::connect_timeout(&(ip, 9464).into(), Duration::from_secs(1));
        assert!(reached.is_err(), "/metrics answered on {ip}:9464");
    }
}

#[test]
fn an_unreachable_pushgateway_is_counted_and_reported_once() {
    // Port 1, where nothing listens (a port freed a moment ago could be another
    // test's by now).
    push_failures_are_counted("http://127.0.0.1:1".to_owned());
}

#[test]
fn a_pushgateway_whose_name_does_not_resolve_is_counted_and_reported_once() {
    push_failures_are_counted("http://pushgateway.invalid:9091".into());
}

/// Pushes to `url` fail: every request is answered, each failed push is counted, and
/// the problem is reported on one line.
fn push_failures_are_counted(url: String) {
    let mport = free_port();
    let (port, _server, mut lines) = server(&[
        ("COLDSTART_METRICS_ADDR", format!("127.0.0.1:{mport}")),
        ("COLDSTART_METRICS_PUSH_URL", url),
        ("COLDSTART_METRICS_PUSH_INTERVAL", "100ms".into()),
        ("OTEL_TRACES_EXPORTER", "none".into()),
    ]);
    serve_all(port, 1);
    let counted = poll(Duration::from_secs(10), || {
        let n = dropped(&scrape(mport), "push_failed");
        (n >= 3.0).then_some(n)
    });
    assert!(counted.is_some(), "{}", scrape(mport));
    serve_all(port, 5);
    let said = lines.drain(Duration::from_millis(300)).to_owned();
    assert_eq!(said.matches("metrics: push to").count(), 1, "{said}");
}

#[test]
fn a_bad_telemetry_setting_is_named_and_the_service_still_serves() {
    let (port, _server, mut lines) = server(&[
        ("OTEL_TRACES_SAMPLER", "sometimes".into()),
        ("OTEL_TRACES_EXPORTER", "none".into()),
        ("COLDSTART_METRICS_ADDR", "off".into()),
    ]);
    let said = lines.drain(Duration::from_millis(100)).to_owned();
    // One line, naming the variable, what it accepts and the value.
    let named: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("OTEL_TRACES_SAMPLER"))
        .collect();
    assert_eq!(named.len(), 1, "{said}");
    assert!(
        named[0].starts_with("coldstart: set OTEL_TRACES_SAMPLER to one of `always_on`")
            && named[0].contains("got `sometimes`; using the default"),
        "{said}"
    );
    serve_all(port, 2);
}

/// A rejected endpoint falls back to the default in the exporter too (when the
/// exporter was opentelemetry-otlp's, which read the variable itself, it failed to
/// build and tracing was off).
#[test]
fn a_rejected_otlp_endpoint_never_reaches_the_exporter() {
    let (port, _server, mut lines) = server(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost 4318".into()),
        ("COLDSTART_METRICS_ADDR", "off".into()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".into()),
    ]);
    serve_all(port, 2);
    // The exporter was built, with the default endpoint: it tried it (nothing listens
    // there in the tests).
    let said = lines.wait_for("traces: export failed").to_owned();
    assert!(
        said.contains("OTEL_EXPORTER_OTLP_ENDPOINT") && said.contains("using the default"),
        "{said}"
    );
    assert!(said.contains("localhost:4318"), "{said}");
    assert!(
        !said.contains("cannot build the OTLP exporter"),
        "the exporter saw the rejected value: {said}"
    );
}

#[test]
fn pushes_reach_a_real_pushgateway_and_the_last_push_happens_at_shutdown() {
    let test = "pushes_reach_a_real_pushgateway_and_the_last_push_happens_at_shutdown";
    // The first push comes right after the first response and the next in an hour:
    // the gateway must be listening before the service starts, as it is once started.
    let Some((_gateway, gport)) = start_pushgateway(test) else {
        return;
    };
    let (port, mut server, mut lines) = server(&[
        ("COLDSTART_METRICS_ADDR", "off".into()),
        (
            "COLDSTART_METRICS_PUSH_URL",
            format!("http://127.0.0.1:{gport}"),
        ),
        ("COLDSTART_METRICS_PUSH_JOB", "push-test".into()),
        // The group of this instance, a value in the gateway's base64 form, and a
        // grouping label coldstart's own metrics also have (`reason`): the gateway
        // sets it on every series, and refused pushes where that made two alike.
        (
            "COLDSTART_METRICS_PUSH_GROUPING",
            "instance=host/1,reason=nightly".into(),
        ),
        // Only the push right after the first response, then the one at shutdown.
        ("COLDSTART_METRICS_PUSH_INTERVAL", "1h".into()),
        ("OTEL_TRACES_EXPORTER", "none".into()),
    ]);
    let series = "http_requests_total{instance=\"host/1\",job=\"push-test\",method=\"GET\",reason=\"nightly\",route=\"/\",status=\"200\"}";
    let pushed = |at_least: f64| {
        poll(Duration::from_secs(10), || {
            let exposition = get_http10(gport, "/metrics")?;
            sample(body(&exposition), series).filter(|n| *n >= at_least)
        })
    };
    serve_all(port, 1);
    assert_eq!(
        pushed(1.0),
        Some(1.0),
        "the first push after the first response"
    );
    let own = "coldstart_telemetry_dropped_total{exported_reason=\"queue_full\",instance=\"host/1\",job=\"push-test\",reason=\"nightly\",signal=\"spans\"}";
    let exposition = get_http10(gport, "/metrics").unwrap();
    assert_eq!(sample(body(&exposition), own), Some(0.0), "{exposition}");
    serve_all(port, 2);
    // SAFETY: signalling our own child.
    assert_eq!(
        unsafe { libc::kill(server.0.id() as i32, libc::SIGTERM) },
        0
    );
    let status = server.wait_within(Duration::from_secs(30));
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        lines.drain(Duration::from_millis(100))
    );
    assert_eq!(
        pushed(3.0),
        Some(3.0),
        "the final push at shutdown carries all three requests"
    );
}
