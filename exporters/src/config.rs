/*!
The exporters' settings: defaults, then `COLDSTART_*` and the standard `OTEL_*`
variables. Read once, at start-up, from the environment only (no file is opened here).

A bad value never stops the service: it becomes a [`ConfigError`] that names the
variable, the value and what is accepted, is printed once, and the default is used
for that one setting. Telemetry must not be the reason a service fails to start.
*/

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use coldstart_bootstrap::Env;
use coldstart_bootstrap::plan::settings::parse_duration;

/// The default `/metrics` address: loopback, the OpenTelemetry Prometheus port.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

/// Which sampler decides whether a new trace is recorded (`OTEL_TRACES_SAMPLER`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    /// `always_on`.
    AlwaysOn,
    /// `always_off`.
    AlwaysOff,
    /// `traceidratio` with its ratio.
    TraceIdRatio(f64),
    /// `parentbased_always_on` (the specification's default).
    ParentBasedAlwaysOn,
    /// `parentbased_always_off`.
    ParentBasedAlwaysOff,
    /// `parentbased_traceidratio` with its ratio.
    ParentBasedTraceIdRatio(f64),
    /// `coldstart_dynamic` with its base probability: QPS and error rate decide.
    Dynamic(f64),
    /// `parentbased_coldstart_dynamic`: the dynamic sampler for root spans.
    ParentBasedDynamic(f64),
}

/// The dynamic sampler's constants (DESIGN.md):
/// `p = clamp(base * (1 + k1 * error_pct / 100) / (1 + k2 * log10(qps + 1)), floor, 1)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dynamic {
    /// Weight of the error percentage (`COLDSTART_SAMPLER_K1`, default 0.5).
    pub k1: f64,
    /// Weight of the request rate (`COLDSTART_SAMPLER_K2`, default 2).
    pub k2: f64,
    /// The lowest probability (`COLDSTART_SAMPLER_FLOOR`, default 0.01).
    pub floor: f64,
    /// The sliding window QPS and errors are counted over (`COLDSTART_SAMPLER_WINDOW`,
    /// default 10 s).
    pub window: Duration,
}

impl Default for Dynamic {
    fn default() -> Self {
        Dynamic {
            k1: 0.5,
            k2: 2.0,
            floor: 0.01,
            window: Duration::from_secs(10),
        }
    }
}

/// The export queue (`OTEL_BSP_*`, with the specification's defaults). Spans wait
/// here from the first instruction; what does not fit is dropped and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queue {
    /// Spans kept at most (`OTEL_BSP_MAX_QUEUE_SIZE`, 2048).
    pub max_spans: usize,
    /// Spans per export (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, 512).
    pub batch: usize,
    /// Time between exports (`OTEL_BSP_SCHEDULE_DELAY`, 5000 ms).
    pub delay: Duration,
    /// Longest an export may take (`OTEL_BSP_EXPORT_TIMEOUT`, 30000 ms).
    pub export_timeout: Duration,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            max_spans: 2048,
            batch: 512,
            delay: Duration::from_millis(5000),
            export_timeout: Duration::from_millis(30_000),
        }
    }
}

/// Pushing to a Prometheus Pushgateway, for jobs too short-lived to be scraped.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    /// The Pushgateway's base URL (`COLDSTART_METRICS_PUSH_URL`).
    pub url: http::Uri,
    /// The `job` grouping label (`COLDSTART_METRICS_PUSH_JOB`, default the service
    /// name).
    pub job: String,
    /// Time between pushes (`COLDSTART_METRICS_PUSH_INTERVAL`, default 10 s); one
    /// more push happens at shutdown.
    pub interval: Duration,
}

/// How spans travel to the collector (`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else
/// `OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `http/protobuf`, the default: port 4318, path `/v1/traces`.
    HttpProtobuf,
    /// `grpc` (the `grpc` feature): port 4317.
    Grpc,
}

/// The OTLP exporter's TLS files (`OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE`,
/// `_CLIENT_CERTIFICATE`, `_CLIENT_KEY`; the `tls` feature). Read when the exporter
/// starts, after the first response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// The CA that signs the collector's certificate; without it, the system's roots.
    pub ca: Option<PathBuf>,
    /// The client certificate chain, for collectors that require one (mutual TLS).
    pub certificate: Option<PathBuf>,
    /// The client certificate's private key.
    pub key: Option<PathBuf>,
}

/// TLS for `/metrics` (`COLDSTART_METRICS_TLS_CERT`, `_KEY`, `_CLIENT_CA`; the `tls`
/// feature). Read when the listener starts, after the first response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// The server certificate chain (PEM).
    pub certificate: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// When set, only clients with a certificate signed by this CA are served.
    pub client_ca: Option<PathBuf>,
}

/// Every exporter setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where `/metrics` listens (`COLDSTART_METRICS_ADDR`; `off` for no listener).
    pub metrics_addr: Option<SocketAddr>,
    /// Pushgateway mode, when `COLDSTART_METRICS_PUSH_URL` is set.
    pub push: Option<Push>,
    /// Whether spans are exported over OTLP (`OTEL_TRACES_EXPORTER` is `otlp`, the
    /// default, and `OTEL_SDK_DISABLED` is not `true`).
    pub traces: bool,
    /// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`.
    pub sampler: Sampler,
    /// The dynamic sampler's constants.
    pub dynamic: Dynamic,
    /// `OTEL_PROPAGATORS`: W3C trace context.
    pub trace_context: bool,
    /// `OTEL_PROPAGATORS`: W3C baggage.
    pub baggage: bool,
    /// The span queue.
    pub queue: Queue,
    /// `OTEL_SERVICE_NAME`, else the executable's name.
    pub service_name: String,
    /// How long one OTLP request may take (`OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else
    /// `OTEL_EXPORTER_OTLP_TIMEOUT`, in milliseconds; default 10 s).
    pub otlp_timeout: Duration,
    /// How spans travel to the collector.
    pub protocol: Protocol,
    /// The OTLP exporter's TLS files.
    pub otlp_tls: ClientTls,
    /// TLS for `/metrics`; `None` serves plain HTTP.
    pub metrics_tls: Option<ServerTls>,
}

/// A variable with a value it does not accept. The default is used instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable.
    pub key: &'static str,
    /// The value given.
    pub value: String,
    /// What it accepts, in words.
    pub accepts: &'static str,
    /// What happens instead, such as `using the default`.
    pub instead: &'static str,
}

/// What a rejected value usually leads to.
const USING_THE_DEFAULT: &str = "using the default";

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "set {} to {}, got `{}`; {}",
            self.key, self.accepts, self.value, self.instead
        )
    }
}

impl std::error::Error for ConfigError {}

/// Reads one variable; a bad value is recorded in `errors` and yields `None`.
struct Reader<'a> {
    env: &'a Env,
    errors: Vec<ConfigError>,
}

impl Reader<'_> {
    fn raw(&self, key: &str) -> Option<String> {
        let v = self.env.get(key)?.to_string_lossy().trim().to_owned();
        (!v.is_empty()).then_some(v)
    }

    fn read<T>(
        &mut self,
        key: &'static str,
        accepts: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Option<T> {
        let raw = self.raw(key)?;
        let parsed = parse(&raw);
        if parsed.is_none() {
            self.errors.push(ConfigError {
                key,
                value: raw,
                accepts,
                instead: USING_THE_DEFAULT,
            });
        }
        parsed
    }
}

impl Config {
    /// The settings from the process environment, and the values it rejected.
    pub fn from_env() -> (Config, Vec<ConfigError>) {
        Config::from(&Env::process())
    }

    /// The settings from `env`, and the values it rejected.
    ///
    /// ```
    /// use coldstart_bootstrap::Env;
    /// use coldstart_exporters::config::Config;
    /// let (config, errors) = Config::from(&Env::fixed([("OTEL_TRACES_SAMPLER", "sometimes")]));
    /// assert_eq!(errors[0].key, "OTEL_TRACES_SAMPLER");
    /// assert_eq!(config.metrics_addr.unwrap().to_string(), "127.0.0.1:9464");
    /// ```
    pub fn from(env: &Env) -> (Config, Vec<ConfigError>) {
        let mut r = Reader {
            env,
            errors: Vec::new(),
        };
        let default_addr = DEFAULT_METRICS_ADDR.parse().ok();
        let metrics_addr = r
            .read(
                "COLDSTART_METRICS_ADDR",
                "an address such as `127.0.0.1:9464` or `0.0.0.0:9464`, or `off`",
                |s| match s {
                    "off" => Some(None),
                    _ => s.parse().ok().map(Some),
                },
            )
            .unwrap_or(default_addr);
        let service_name = r.raw("OTEL_SERVICE_NAME").unwrap_or_else(executable_name);
        let push = r
            .read(
                "COLDSTART_METRICS_PUSH_URL",
                "an http:// URL such as `http://127.0.0.1:9091`",
                |s| {
                    s.parse::<http::Uri>()
                        .ok()
                        .filter(|u| u.scheme_str() == Some("http") && u.host().is_some())
                },
            )
            .map(|url| Push {
                url,
                job: r
                    .raw("COLDSTART_METRICS_PUSH_JOB")
                    .unwrap_or_else(|| service_name.clone()),
                interval: r
                    .read(
                        "COLDSTART_METRICS_PUSH_INTERVAL",
                        "a duration such as `10s` or `500ms` (from 100ms to 1h)",
                        |s| parse_duration(s).filter(|d| *d >= Duration::from_millis(100)),
                    )
                    .unwrap_or(Duration::from_secs(10)),
            });
        let disabled = r
            .read("OTEL_SDK_DISABLED", "`true` or `false`", |s| {
                match s.to_ascii_lowercase().as_str() {
                    "true" => Some(true),
                    "false" => Some(false),
                    _ => None,
                }
            })
            .unwrap_or(false);
        let exporter = r
            .read("OTEL_TRACES_EXPORTER", "`otlp` or `none`", |s| match s {
                "otlp" => Some(true),
                "none" => Some(false),
                _ => None,
            })
            .unwrap_or(true);
        let sampler = read_sampler(&mut r);
        let dynamic = read_dynamic(&mut r);
        let (trace_context, baggage) = r
            .read(
                "OTEL_PROPAGATORS",
                "a comma-separated list of `tracecontext`, `baggage`, or `none`",
                parse_propagators,
            )
            .unwrap_or((true, true));
        let queue = read_queue(&mut r);
        let otlp_timeout = [
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ]
        .into_iter()
        .find_map(|key| r.read(key, "milliseconds, from 0 to 3600000", millis))
        .unwrap_or(Duration::from_secs(10));
        let protocol = read_protocol(&mut r);
        let otlp_tls = read_client_tls(&mut r);
        let metrics_tls = read_server_tls(&mut r);
        // Serving metrics in the clear when TLS was asked for would be worse than
        // not serving them.
        let metrics_addr = match metrics_tls {
            Err(()) => None,
            Ok(_) => metrics_addr,
        };
        let config = Config {
            metrics_addr,
            push,
            traces: exporter && !disabled,
            sampler,
            dynamic,
            trace_context,
            baggage,
            queue,
            service_name,
            otlp_timeout,
            protocol,
            otlp_tls,
            metrics_tls: metrics_tls.ok().flatten(),
        };
        (config, r.errors)
    }
}

#[cfg(feature = "grpc")]
const PROTOCOLS: &str = "`http/protobuf` or `grpc`";
#[cfg(not(feature = "grpc"))]
const PROTOCOLS: &str = "`http/protobuf` (`grpc` needs coldstart's `grpc` feature)";

fn read_protocol(r: &mut Reader<'_>) -> Protocol {
    [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]
    .into_iter()
    .find_map(|key| {
        r.read(key, PROTOCOLS, |s| match s {
            "http/protobuf" => Some(Protocol::HttpProtobuf),
            "grpc" if cfg!(feature = "grpc") => Some(Protocol::Grpc),
            _ => None,
        })
    })
    .unwrap_or(Protocol::HttpProtobuf)
}

#[cfg(feature = "tls")]
const TLS_FILE: &str = "a PEM file";
#[cfg(not(feature = "tls"))]
const TLS_FILE: &str = "a PEM file, in a build with coldstart's `tls` feature";

/// A path, when this build can use one.
fn tls_file(s: &str) -> Option<PathBuf> {
    cfg!(feature = "tls").then(|| PathBuf::from(s))
}

fn read_client_tls(r: &mut Reader<'_>) -> ClientTls {
    let mut file = |traces: &'static str, any: &'static str| {
        r.read(traces, TLS_FILE, tls_file)
            .or_else(|| r.read(any, TLS_FILE, tls_file))
    };
    let tls = ClientTls {
        ca: file(
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
        ),
        certificate: file(
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        ),
        key: file(
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
        ),
    };
    if tls.certificate.is_some() != tls.key.is_some() {
        // One without the other cannot authenticate: name the one given, drop both.
        let (key, given) = match (&tls.certificate, &tls.key) {
            (Some(c), _) => ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", c),
            (_, Some(k)) => ("OTEL_EXPORTER_OTLP_CLIENT_KEY", k),
            _ => unreachable!("exactly one is set"),
        };
        r.errors.push(ConfigError {
            key,
            value: given.display().to_string(),
            accepts: "a PEM file, together with both OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY",
            instead: "no client certificate is sent",
        });
        return ClientTls {
            ca: tls.ca,
            ..ClientTls::default()
        };
    }
    tls
}

/// `Ok(None)`: plain HTTP. `Err(())`: TLS was asked for but cannot be set up (the
/// error is recorded), so `/metrics` is not served at all.
fn read_server_tls(r: &mut Reader<'_>) -> Result<Option<ServerTls>, ()> {
    const KEYS: [&str; 3] = [
        "COLDSTART_METRICS_TLS_CERT",
        "COLDSTART_METRICS_TLS_KEY",
        "COLDSTART_METRICS_TLS_CLIENT_CA",
    ];
    let [certificate, key, client_ca] = KEYS.map(|key| r.raw(key));
    if certificate.is_none() && key.is_none() && client_ca.is_none() {
        return Ok(None);
    }
    let mut refuse = |key: &'static str, value: Option<String>, accepts: &'static str| {
        r.errors.push(ConfigError {
            key,
            value: value.unwrap_or_default(),
            accepts,
            instead: "/metrics is not served",
        });
        Err(())
    };
    if !cfg!(feature = "tls") {
        let (key, value) = KEYS
            .into_iter()
            .zip([certificate, key, client_ca])
            .find_map(|(k, v)| Some((k, v?)))
            .unwrap_or((KEYS[0], String::new()));
        return refuse(key, Some(value), TLS_FILE);
    }
    match (certificate, key) {
        (Some(certificate), Some(key)) => Ok(Some(ServerTls {
            certificate: certificate.into(),
            key: key.into(),
            client_ca: client_ca.map(PathBuf::from),
        })),
        // The first of the two that is missing.
        (certificate, _) => refuse(
            if certificate.is_none() {
                KEYS[0]
            } else {
                KEYS[1]
            },
            None,
            "a PEM file (TLS for /metrics needs a certificate and its key)",
        ),
    }
}

const SAMPLERS: &str = "one of `always_on`, `always_off`, `traceidratio`, `parentbased_always_on`, \
`parentbased_always_off`, `parentbased_traceidratio`, `coldstart_dynamic`, `parentbased_coldstart_dynamic`";

fn read_sampler(r: &mut Reader<'_>) -> Sampler {
    let name = r
        .read("OTEL_TRACES_SAMPLER", SAMPLERS, |s| {
            [
                "always_on",
                "always_off",
                "traceidratio",
                "parentbased_always_on",
                "parentbased_always_off",
                "parentbased_traceidratio",
                "coldstart_dynamic",
                "parentbased_coldstart_dynamic",
            ]
            .into_iter()
            .find(|n| *n == s)
        })
        .unwrap_or("parentbased_always_on");
    let arg = |r: &mut Reader<'_>| {
        r.read(
            "OTEL_TRACES_SAMPLER_ARG",
            "a probability from 0 to 1, such as `0.25`",
            |s| s.parse::<f64>().ok().filter(|p| (0.0..=1.0).contains(p)),
        )
        .unwrap_or(1.0)
    };
    match name {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatio(arg(r)),
        "parentbased_always_off" => Sampler::ParentBasedAlwaysOff,
        "parentbased_traceidratio" => Sampler::ParentBasedTraceIdRatio(arg(r)),
        "coldstart_dynamic" => Sampler::Dynamic(arg(r)),
        "parentbased_coldstart_dynamic" => Sampler::ParentBasedDynamic(arg(r)),
        _ => Sampler::ParentBasedAlwaysOn,
    }
}

fn read_dynamic(r: &mut Reader<'_>) -> Dynamic {
    let default = Dynamic::default();
    let non_negative = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0);
    Dynamic {
        k1: r
            .read(
                "COLDSTART_SAMPLER_K1",
                "a number from 0 up, such as `0.5`",
                non_negative,
            )
            .unwrap_or(default.k1),
        k2: r
            .read(
                "COLDSTART_SAMPLER_K2",
                "a number from 0 up, such as `2`",
                non_negative,
            )
            .unwrap_or(default.k2),
        floor: r
            .read(
                "COLDSTART_SAMPLER_FLOOR",
                "a probability from 0 to 1, such as `0.01`",
                |s| s.parse::<f64>().ok().filter(|p| (0.0..=1.0).contains(p)),
            )
            .unwrap_or(default.floor),
        window: r
            .read(
                "COLDSTART_SAMPLER_WINDOW",
                "a duration such as `10s` (from 1s to 1h, whole seconds)",
                |s| parse_duration(s).filter(|d| d.as_secs() >= 1 && d.subsec_nanos() == 0),
            )
            .unwrap_or(default.window),
    }
}

/// Whole milliseconds, up to one hour (the `OTEL_*` timeouts and delays).
fn millis(s: &str) -> Option<Duration> {
    s.parse::<u64>()
        .ok()
        .filter(|n| *n <= 3_600_000)
        .map(Duration::from_millis)
}

fn read_queue(r: &mut Reader<'_>) -> Queue {
    let default = Queue::default();
    let count = |s: &str| {
        s.parse::<usize>()
            .ok()
            .filter(|n| (1..=1 << 20).contains(n))
    };
    let max_spans = r
        .read(
            "OTEL_BSP_MAX_QUEUE_SIZE",
            "a whole number from 1 to 1048576",
            count,
        )
        .unwrap_or(default.max_spans);
    Queue {
        max_spans,
        batch: r
            .read(
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                "a whole number from 1 to 1048576",
                count,
            )
            .unwrap_or(default.batch)
            .min(max_spans),
        delay: r
            .read(
                "OTEL_BSP_SCHEDULE_DELAY",
                "milliseconds, from 0 to 3600000",
                millis,
            )
            .unwrap_or(default.delay),
        export_timeout: r
            .read(
                "OTEL_BSP_EXPORT_TIMEOUT",
                "milliseconds, from 0 to 3600000",
                millis,
            )
            .unwrap_or(default.export_timeout),
    }
}

/// `tracecontext,baggage` into (trace context, baggage); `none` turns both off.
fn parse_propagators(s: &str) -> Option<(bool, bool)> {
    let (mut tc, mut bg) = (false, false);
    for name in s.split(',').map(str::trim) {
        match name {
            "tracecontext" => tc = true,
            "baggage" => bg = true,
            "none" => {}
            _ => return None,
        }
    }
    Some((tc, bg))
}

fn executable_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "unknown_service".to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config(vars: &[(&str, &str)]) -> (Config, Vec<ConfigError>) {
        Config::from(&Env::fixed(vars.iter().copied()))
    }

    #[test]
    fn defaults_follow_the_specification() {
        let (c, errors) = config(&[]);
        assert!(errors.is_empty());
        assert_eq!(c.metrics_addr, DEFAULT_METRICS_ADDR.parse().ok());
        assert!(c.traces && c.trace_context && c.baggage);
        assert_eq!(c.sampler, Sampler::ParentBasedAlwaysOn);
        assert_eq!(c.queue, Queue::default());
        assert!(c.push.is_none());
    }

    #[test]
    fn every_bad_value_is_named_and_falls_back() {
        let (c, errors) = config(&[
            ("COLDSTART_METRICS_ADDR", "localhost"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
            ("OTEL_PROPAGATORS", "tracecontext,b3"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "-1"),
            ("OTEL_TRACES_EXPORTER", "zipkin"),
        ]);
        let keys: Vec<_> = errors.iter().map(|e| e.key).collect();
        assert_eq!(
            keys,
            [
                "COLDSTART_METRICS_ADDR",
                "OTEL_TRACES_EXPORTER",
                "OTEL_TRACES_SAMPLER_ARG",
                "OTEL_PROPAGATORS",
                "OTEL_BSP_MAX_QUEUE_SIZE"
            ]
        );
        assert_eq!(
            errors[3].to_string(),
            "set OTEL_PROPAGATORS to a comma-separated list of `tracecontext`, `baggage`, or `none`, got `tracecontext,b3`; using the default"
        );
        assert_eq!(c.sampler, Sampler::ParentBasedTraceIdRatio(1.0));
        assert_eq!(c.metrics_addr, DEFAULT_METRICS_ADDR.parse().ok());
        assert!(c.traces);
    }

    #[test]
    fn switches_and_push() {
        let (c, errors) = config(&[
            ("COLDSTART_METRICS_ADDR", "off"),
            ("OTEL_SDK_DISABLED", "TRUE"),
            ("OTEL_PROPAGATORS", "none"),
            ("OTEL_SERVICE_NAME", "checkout"),
            ("COLDSTART_METRICS_PUSH_URL", "http://127.0.0.1:9091"),
            ("COLDSTART_METRICS_PUSH_INTERVAL", "2s"),
            ("OTEL_TRACES_SAMPLER", "coldstart_dynamic"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.metrics_addr, None);
        assert!(!c.traces && !c.trace_context && !c.baggage);
        let push = c.push.unwrap();
        assert_eq!(
            (push.job.as_str(), push.interval),
            ("checkout", Duration::from_secs(2))
        );
        assert_eq!(c.sampler, Sampler::Dynamic(0.5));
    }

    #[test]
    fn a_push_url_must_be_http() {
        let (c, errors) = config(&[("COLDSTART_METRICS_PUSH_URL", "ftp://gateway")]);
        assert!(c.push.is_none());
        assert_eq!(errors[0].key, "COLDSTART_METRICS_PUSH_URL");
    }

    #[test]
    fn the_protocol_is_http_unless_grpc_is_built_in() {
        let (c, errors) = config(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
        if cfg!(feature = "grpc") {
            assert!(errors.is_empty(), "{errors:?}");
            assert_eq!(c.protocol, Protocol::Grpc);
        } else {
            assert_eq!(errors[0].key, "OTEL_EXPORTER_OTLP_PROTOCOL");
            assert!(errors[0].accepts.contains("`grpc` feature"));
            assert_eq!(c.protocol, Protocol::HttpProtobuf);
        }
        let (c, errors) = config(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ]);
        assert!(errors.is_empty(), "the traces variable wins: {errors:?}");
        assert_eq!(c.protocol, Protocol::HttpProtobuf);
        let (_, errors) = config(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]);
        assert_eq!(errors[0].value, "http/json");
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let (c, errors) = config(&[
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "ca.pem"),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "client.pem"),
        ]);
        if cfg!(feature = "tls") {
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].key, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE");
            assert_eq!(errors[0].instead, "no client certificate is sent");
            assert_eq!(c.otlp_tls.ca, Some(PathBuf::from("ca.pem")));
            assert_eq!((c.otlp_tls.certificate, c.otlp_tls.key), (None, None));
        } else {
            assert_eq!(errors[0].key, "OTEL_EXPORTER_OTLP_CERTIFICATE");
            assert!(errors[0].accepts.contains("`tls` feature"));
            assert_eq!(c.otlp_tls, ClientTls::default());
        }
    }

    #[test]
    fn metrics_asked_to_use_tls_are_never_served_in_the_clear() {
        let (c, errors) = config(&[("COLDSTART_METRICS_TLS_CERT", "server.pem")]);
        let error = &errors[0];
        assert_eq!(error.instead, "/metrics is not served");
        assert_eq!((c.metrics_addr, c.metrics_tls), (None, None));
        if cfg!(feature = "tls") {
            assert_eq!(error.key, "COLDSTART_METRICS_TLS_KEY");
            let (c, errors) = config(&[
                ("COLDSTART_METRICS_TLS_CERT", "server.pem"),
                ("COLDSTART_METRICS_TLS_KEY", "server.key"),
            ]);
            assert!(errors.is_empty(), "{errors:?}");
            assert!(c.metrics_addr.is_some());
            assert_eq!(
                c.metrics_tls.map(|t| (t.certificate, t.client_ca)),
                Some((PathBuf::from("server.pem"), None))
            );
        } else {
            assert_eq!(error.key, "COLDSTART_METRICS_TLS_CERT");
            assert_eq!(error.value, "server.pem");
        }
    }

    #[test]
    fn the_batch_never_exceeds_the_queue() {
        let (c, _) = config(&[("OTEL_BSP_MAX_QUEUE_SIZE", "10")]);
        assert_eq!((c.queue.max_spans, c.queue.batch), (10, 10));
    }
}
