/*!
The exporters' settings: defaults, then the configuration file, code and the
environment (`COLDSTART_*` and the standard `OTEL_*` variables), through the layers
of an [`Env`]. Read once, at start-up; no file is opened here.

A bad value never stops the service: it becomes a [`ConfigError`] that names the
variable, where the value came from, the value and what is accepted; it is printed
once, and the default is used for that one setting. Telemetry must not be the reason
a service fails to start.
*/

use std::net::SocketAddr;
use std::time::Duration;

use coldstart_bootstrap::Env;
use coldstart_bootstrap::plan::settings::parse_duration;

mod otlp;
pub(crate) mod push;
pub(crate) mod reader;
mod show;
mod tls;
mod trace;

pub(crate) use otlp::https;
pub use otlp::{Compression, Protocol};
pub use push::{Credentials, FINAL_PUSH_WITHIN, MIN_PUSH_INTERVAL, Push};
pub use reader::ConfigError;
pub use tls::{ClientTls, PEM_LIMIT, ServerTls};
pub use trace::{Dynamic, FINAL_FLUSH_WITHIN, Queue, Sampler, SpanLimits};

use otlp::{read_compression, read_endpoint, read_headers, read_protocol};
use push::{grouping_label, push_url};
use reader::{Reader, TIMEOUT, USING_THE_DEFAULT, parse_pairs, timeout};
use tls::{read_client_tls, read_server_tls};
use trace::{read_dynamic, read_propagators, read_queue, read_sampler, read_span_limits};

/// The default `/metrics` address: loopback, the OpenTelemetry Prometheus port.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

/// How `tracing` events are written (`COLDSTART_LOG_FORMAT`, the `logs` feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `text`, the default: `timestamp LEVEL target: message key=value trace_id=.. span_id=..`.
    Text,
    /// `json`: one object per line, with `trace_id` and `span_id`.
    Json,
    /// `off`: no subscriber is installed (the program may install its own).
    Off,
}

/// How long one OTLP request may take where no variable says (the specification's
/// default).
const OTLP_TIMEOUT: Duration = Duration::from_secs(10);

/// Every exporter setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where `/metrics` listens (`COLDSTART_METRICS_ADDR`; `off` for no listener). By
    /// default [`DEFAULT_METRICS_ADDR`], and no listener when pushing to a
    /// Pushgateway: then only an address given says to listen too.
    pub metrics_addr: Option<SocketAddr>,
    /// Pushgateway mode, when `COLDSTART_METRICS_PUSH_URL` is set.
    pub push: Option<Push>,
    /// Whether spans are made at all: the tracer and the propagators are installed
    /// unless `OTEL_SDK_DISABLED` is `true`.
    pub traces: bool,
    /// Whether spans are exported over OTLP: `OTEL_TRACES_EXPORTER` is `otlp`, the
    /// default, and [`Config::traces`] is on. With `none` spans are still made,
    /// sampled, carried on to outgoing requests and named in log lines, as the
    /// specification says; they are only not exported.
    pub export_traces: bool,
    /// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`.
    pub sampler: Sampler,
    /// The dynamic sampler's constants.
    pub dynamic: Dynamic,
    /// `OTEL_PROPAGATORS`: W3C trace context.
    pub trace_context: bool,
    /// `OTEL_PROPAGATORS`: W3C baggage.
    pub baggage: bool,
    /// `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`: the HTTP methods the HTTP layer names
    /// in labels and spans instead of the standard nine; any other is `_OTHER`.
    pub http_known_methods: Option<Vec<String>>,
    /// The span queue.
    pub queue: Queue,
    /// What one span keeps at most.
    pub span_limits: SpanLimits,
    /// `OTEL_SERVICE_NAME`, else `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, else, as
    /// the specification has it, `unknown_service:` and the executable's name.
    pub service_name: String,
    /// How long one OTLP request may take (`OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else
    /// `OTEL_EXPORTER_OTLP_TIMEOUT`, in milliseconds; default 10 s).
    pub otlp_timeout: Duration,
    /// How long the span flush at shutdown may take ([`FINAL_FLUSH_WITHIN`]);
    /// coldstart's Lambda integration cuts it to what Lambda allows after SIGTERM.
    pub final_flush_within: Duration,
    /// How spans travel to the collector.
    pub protocol: Protocol,
    /// How export requests are compressed.
    pub compression: Compression,
    /// Where spans go, when a setting names it (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
    /// as given, else `OTEL_EXPORTER_OTLP_ENDPOINT` plus `/v1/traces` over HTTP; the
    /// general one also when its layer is above the traces one's); `None` for the
    /// protocol's default on localhost.
    pub otlp_endpoint: Option<String>,
    /// Headers for every export (`OTEL_EXPORTER_OTLP_TRACES_HEADERS`, else
    /// `OTEL_EXPORTER_OTLP_HEADERS`, also when its layer is above the traces one's;
    /// decoded): exactly these are sent.
    pub otlp_headers: Vec<(String, String)>,
    /// `OTEL_RESOURCE_ATTRIBUTES`, decoded.
    pub resource_attributes: Vec<(String, String)>,
    /// The OTLP exporter's TLS files.
    pub otlp_tls: ClientTls,
    /// TLS for `/metrics`; `None` serves plain HTTP.
    pub metrics_tls: Option<ServerTls>,
    /// How `tracing` events are written.
    pub log_format: LogFormat,
    /// Which events and spans pass (`COLDSTART_LOG_FILTER`, else `RUST_LOG`):
    /// comma-separated `level` or `target=level` directives.
    pub log_filter: String,
    /// On AWS Lambda (the `lambda` feature).
    pub lambda: Lambda,
}

/// Settings of the AWS Lambda integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lambda {
    /// How long the flush after each invocation's response may take before the next
    /// invocation is asked for (`COLDSTART_LAMBDA_FLUSH_TIMEOUT`, default 1 s). What
    /// does not make it stays queued for the next flush.
    pub flush_timeout: Duration,
    /// Whether an internal extension is registered so that Lambda sends SIGTERM
    /// before shutting down (`COLDSTART_LAMBDA_EXTENSION`).
    pub extension: Extension,
    /// The CloudWatch namespace of the EMF metric lines (`COLDSTART_EMF_NAMESPACE`,
    /// default `coldstart`); `None` (`off`) writes none.
    pub emf_namespace: Option<String>,
}

/// `COLDSTART_LAMBDA_EXTENSION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extension {
    /// `auto`, the default: only when the program has shutdown hooks of its own, or
    /// pushes metrics, when it starts serving.
    Auto,
    /// `on`: always, its registration overlapping the program's init.
    On,
    /// `off`: never; Lambda then freezes and kills the process without SIGTERM.
    Off,
}

impl Extension {
    /// The setting's value as written.
    pub fn name(self) -> &'static str {
        match self {
            Extension::Auto => "auto",
            Extension::On => "on",
            Extension::Off => "off",
        }
    }
}

impl Default for Lambda {
    fn default() -> Self {
        Lambda {
            flush_timeout: Duration::from_secs(1),
            extension: Extension::Auto,
            emf_namespace: Some("coldstart".to_owned()),
        }
    }
}

/// What the build that reads the settings can do: a setting that needs a feature the
/// build lacks is refused with a message naming the feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Build {
    /// OTLP over gRPC (the `grpc` feature).
    pub grpc: bool,
    /// TLS files (the `tls` feature).
    pub tls: bool,
    /// The `tracing` bridge and log lines (the `logs` feature).
    pub logs: bool,
    /// gzip for OTLP export (the `gzip` feature).
    pub gzip: bool,
}

impl Build {
    /// This build.
    pub const THIS: Build = Build {
        grpc: cfg!(feature = "grpc"),
        tls: cfg!(feature = "tls"),
        logs: cfg!(feature = "logs"),
        gzip: cfg!(feature = "gzip"),
    };
    /// A build with none of the optional features (what `cargo coldstart doctor`
    /// compares with, to say which values need one).
    pub const NONE: Build = Build {
        grpc: false,
        tls: false,
        logs: false,
        gzip: false,
    };
    /// A build with every feature (what `cargo coldstart doctor` checks against).
    pub const ALL: Build = Build {
        grpc: true,
        tls: true,
        logs: true,
        gzip: true,
    };
}

/// The `service.name` among resource attributes, unless it is empty.
fn service_name_in(attributes: &[(String, String)]) -> Option<&str> {
    attributes
        .iter()
        .find(|(k, v)| k == "service.name" && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

impl Config {
    /// Mends what code can give (`install_with`, a platform's `adjust`) and no
    /// variable can: a zero (a batch or a queue of no span exported nothing, a
    /// timeout of zero failed every export) takes the default, and a batch larger
    /// than the queue is cut to it, as `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` is. What it
    /// changed, a line each.
    pub(crate) fn mend_code_values(&mut self) -> Vec<String> {
        let mut said = Vec::new();
        let default = trace::Queue::default();
        let mut count = |name: &str, value: &mut usize, default: usize| {
            if *value == 0 {
                *value = default;
                said.push(format!(
                    "{name} of 0 given in code: {default} is used (from 1 up is taken)"
                ));
            }
        };
        count(
            "queue.max_spans",
            &mut self.queue.max_spans,
            default.max_spans,
        );
        count("queue.batch", &mut self.queue.batch, default.batch);
        if self.queue.batch > self.queue.max_spans {
            said.push(format!(
                "queue.batch of {} given in code is larger than queue.max_spans: {} is used",
                self.queue.batch, self.queue.max_spans
            ));
            self.queue.batch = self.queue.max_spans;
        }
        let mut time = |name: &str, value: &mut Duration, default: Duration| {
            if value.is_zero() {
                *value = default;
                said.push(format!(
                    "{name} of 0 given in code: {} ms is used (from 1 ms up is taken)",
                    default.as_millis()
                ));
            }
        };
        time(
            "queue.export_timeout",
            &mut self.queue.export_timeout,
            default.export_timeout,
        );
        time("otlp_timeout", &mut self.otlp_timeout, OTLP_TIMEOUT);
        said
    }

    /// The service's name as `OTEL_RESOURCE_ATTRIBUTES` gives it (`service.name`),
    /// unless it is empty, which names none.
    pub fn service_name_attribute(&self) -> Option<&str> {
        service_name_in(&self.resource_attributes)
    }

    /// Where spans go: [`Config::otlp_endpoint`], else the protocol's default on
    /// localhost (the specification's).
    pub fn otlp_endpoint_or_default(&self) -> &str {
        self.otlp_endpoint
            .as_deref()
            .unwrap_or(match self.protocol {
                Protocol::HttpProtobuf => "http://localhost:4318/v1/traces",
                Protocol::Grpc => "http://localhost:4317",
            })
    }

    /// Whether spans are exported to an `https://` collector: the one case the OTLP
    /// TLS files ([`Config::otlp_tls`]) are read, when the exporter starts.
    pub fn exports_over_tls(&self) -> bool {
        self.export_traces && https(self.otlp_endpoint_or_default())
    }

    /// The settings from the process environment alone, and the values it rejected.
    pub fn from_env() -> (Config, Vec<ConfigError>) {
        Config::from(&Env::process())
    }

    /// The settings from `env` (all its layers), and the values it rejected.
    ///
    /// ```
    /// use coldstart_bootstrap::{Env, Layer};
    /// use coldstart_exporters::config::Config;
    /// let (config, errors) = Config::from(&Env::fixed([("OTEL_TRACES_SAMPLER", "sometimes")]));
    /// assert_eq!(errors[0].key, "OTEL_TRACES_SAMPLER");
    /// assert_eq!(config.metrics_addr.unwrap().to_string(), "127.0.0.1:9464");
    /// ```
    pub fn from(env: &Env) -> (Config, Vec<ConfigError>) {
        Config::read(env, Build::THIS)
    }

    /// [`Config::from`] as a build with the features in `build` would read it.
    pub fn read(env: &Env, build: Build) -> (Config, Vec<ConfigError>) {
        let mut r = Reader {
            env,
            build,
            errors: Vec::new(),
        };
        let metrics_addr = r.read(
            "COLDSTART_METRICS_ADDR",
            "an address such as `127.0.0.1:9464` or `0.0.0.0:9464`, or `off`",
            |s| match s {
                "off" => Some(None),
                _ => s.parse().ok().map(Some),
            },
        );
        let resource_attributes = r
            .read(
                "OTEL_RESOURCE_ATTRIBUTES",
                "comma-separated `key=value` pairs, values percent-encoded",
                parse_pairs,
            )
            .unwrap_or_default();
        // The specification's order: the variable, then the attribute (unless the
        // attribute's layer overrides the variable's). An empty name is none.
        let variable = r.raw("OTEL_SERVICE_NAME");
        let attribute = service_name_in(&resource_attributes).map(str::to_owned);
        let named_service = if r.own_first("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES") {
            variable.or(attribute)
        } else {
            attribute.or(variable)
        };
        let given_url = r.layered("COLDSTART_METRICS_PUSH_URL");
        let push_asked = given_url.is_some();
        let push_url = match given_url {
            None => None,
            Some((raw, layer)) => {
                let parsed = push_url(&raw);
                if parsed.is_none() {
                    r.refuse(
                        "COLDSTART_METRICS_PUSH_URL",
                        raw,
                        layer,
                        "an http:// URL such as `http://127.0.0.1:9091` (user:password@ for basic authentication)",
                        USING_THE_DEFAULT,
                    );
                }
                parsed
            }
        };
        // The other push settings are read wherever a URL was given, even one refused:
        // their errors are said with its own, not one at a time as each is mended.
        let push_settings = push_asked.then(|| {
            let interval = r
                .read(
                    "COLDSTART_METRICS_PUSH_INTERVAL",
                    "a duration, a whole number with `ms`, `s`, `m` or `h` (`10s`, `500ms`, `1m`), from 100ms to 1h",
                    |s| parse_duration(s).filter(|d| *d >= MIN_PUSH_INTERVAL),
                )
                .unwrap_or(Duration::from_secs(10));
            let grouping = r
                .read(
                    "COLDSTART_METRICS_PUSH_GROUPING",
                    "comma-separated `label=value` pairs, each label once, values percent-encoded, label names of letters, digits and `_` (not `job`, `le` or `quantile`, not starting with `__` or a digit)",
                    |s| {
                        parse_pairs(s).filter(|pairs| {
                            pairs.iter().all(|(label, _)| grouping_label(label))
                                && pairs.iter().enumerate().all(|(i, (label, _))| {
                                    pairs[..i].iter().all(|(other, _)| other != label)
                                })
                        })
                    },
                )
                .unwrap_or_default();
            (interval, grouping)
        });
        let push = push_url
            .zip(push_settings)
            .map(|((url, credentials), (interval, grouping))| Push {
                url,
                credentials,
                // A job named `unknown_service:...` would say nothing the name does not.
                // An empty job is refused by the gateway at every push.
                job: r
                    .raw("COLDSTART_METRICS_PUSH_JOB")
                    .or_else(|| named_service.clone().filter(|s| !s.is_empty()))
                    .or_else(executable_name)
                    .unwrap_or_else(unknown_service),
                interval,
                grouping,
                final_within: FINAL_PUSH_WITHIN,
            });
        // A program that pushes is a short-lived job: a listener too would only take
        // a port (and say so for each job running at the same time). Asked for, both.
        let metrics_addr = metrics_addr.unwrap_or_else(|| match push {
            Some(_) => None,
            None => DEFAULT_METRICS_ADDR.parse().ok(),
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
            .read("OTEL_TRACES_EXPORTER", "`otlp` or `none`", |s| {
                match s.to_ascii_lowercase().as_str() {
                    "otlp" => Some(true),
                    "none" => Some(false),
                    _ => None,
                }
            })
            .unwrap_or(true);
        let sampler = read_sampler(&mut r);
        let dynamic = read_dynamic(&mut r);
        let (trace_context, baggage) = read_propagators(&mut r);
        let http_known_methods = r
            .read(
                "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS",
                "comma-separated HTTP methods such as `GET,POST,PROPFIND` (case-sensitive tokens, at most 64), which replace the standard nine",
                |s| {
                    let methods: Vec<String> = s
                        .split(',')
                        .map(str::trim)
                        .filter(|m| !m.is_empty())
                        .map(str::to_owned)
                        .collect();
                    let tokens = methods
                        .iter()
                        .all(|m| http::Method::from_bytes(m.as_bytes()).is_ok());
                    (tokens && (1..=64).contains(&methods.len())).then_some(Some(methods))
                },
            )
            .flatten();
        let queue = read_queue(&mut r);
        let span_limits = read_span_limits(&mut r);
        let otlp_timeout = r
            .read_either(
                [
                    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                    "OTEL_EXPORTER_OTLP_TIMEOUT",
                ],
                TIMEOUT,
                "OTEL_EXPORTER_OTLP_TIMEOUT is used instead",
                timeout,
            )
            .unwrap_or(OTLP_TIMEOUT);
        let protocol = read_protocol(&mut r);
        let compression = read_compression(&mut r);
        let otlp_endpoint = read_endpoint(&mut r, protocol);
        let otlp_headers = read_headers(&mut r);
        let otlp_tls = read_client_tls(&mut r);
        let metrics_tls = read_server_tls(&mut r);
        let (log_format, log_filter) = read_logs(&mut r);
        let lambda = read_lambda(&mut r);
        // Serving metrics in the clear when TLS was asked for would be worse than
        // not serving them.
        let metrics_addr = match metrics_tls {
            Err(()) => None,
            Ok(_) => metrics_addr,
        };
        let config = Config {
            metrics_addr,
            push,
            traces: !disabled,
            export_traces: exporter && !disabled,
            sampler,
            dynamic,
            trace_context,
            baggage,
            http_known_methods,
            queue,
            span_limits,
            service_name: named_service.unwrap_or_else(unknown_service),
            otlp_timeout,
            final_flush_within: FINAL_FLUSH_WITHIN,
            protocol,
            compression,
            otlp_endpoint,
            otlp_headers,
            resource_attributes,
            otlp_tls,
            metrics_tls: metrics_tls.ok().flatten(),
            log_format,
            log_filter,
            lambda,
        };
        (config, r.errors)
    }
}

fn read_lambda(r: &mut Reader<'_>) -> Lambda {
    let default = Lambda::default();
    Lambda {
        flush_timeout: r
            .read(
                "COLDSTART_LAMBDA_FLUSH_TIMEOUT",
                "a duration such as `1s` or `200ms` (from 1ms to 10s)",
                |s| {
                    parse_duration(s).filter(|d| {
                        (Duration::from_millis(1)..=Duration::from_secs(10)).contains(d)
                    })
                },
            )
            .unwrap_or(default.flush_timeout),
        extension: r
            .read(
                "COLDSTART_LAMBDA_EXTENSION",
                "`auto`, `on` or `off`",
                |s| {
                    [Extension::Auto, Extension::On, Extension::Off]
                        .into_iter()
                        .find(|e| e.name() == s)
                },
            )
            .unwrap_or(default.extension),
        emf_namespace: r
            .read(
                "COLDSTART_EMF_NAMESPACE",
                "a CloudWatch namespace (1 to 255 characters: letters, digits, `.-_/#:` and spaces, not starting with `:` or with `AWS/`, which CloudWatch keeps for its own), or `off`",
                |s| match s {
                    "off" => Some(None),
                    // CloudWatch's pattern for a namespace is `[^:].*`: one starting
                    // with `:` extracts no metric from any line, unsaid.
                    _ if s.len() <= 255
                        && !s.starts_with(':')
                        && !s.starts_with("AWS/")
                        && s.chars().all(|c| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c)) =>
                    {
                        Some(Some(s.to_owned()))
                    }
                    _ => None,
                },
            )
            .unwrap_or(default.emf_namespace),
    }
}

fn read_logs(r: &mut Reader<'_>) -> (LogFormat, String) {
    let logs = r.build.logs;
    let format = r
        .read(
            "COLDSTART_LOG_FORMAT",
            if logs {
                "one of `text`, `json`, `off`"
            } else {
                "`off` (`text` and `json` need coldstart's `logs` feature)"
            },
            |s| match s {
                "text" if logs => Some(LogFormat::Text),
                "json" if logs => Some(LogFormat::Json),
                "off" => Some(LogFormat::Off),
                _ => None,
            },
        )
        .unwrap_or(LogFormat::Text);
    let accepts = "comma-separated `level`, `target=level` or `target` (all of it) directives, levels `trace`, `debug`, `info`, `warn`, `error`, `off` or 5 to 0";
    let filter = r
        .read_either(
            ["COLDSTART_LOG_FILTER", "RUST_LOG"],
            accepts,
            "RUST_LOG is used instead",
            filter_directives,
        )
        .unwrap_or_else(|| "info".to_owned());
    (format, filter)
}

/// The directives of a log filter as `tracing_subscriber::filter::Targets` reads
/// them, which is word for word: spaces around a directive, its `=` or its level
/// trimmed and empty directives left out here (`info,` would read its empty last
/// directive as `error`, and ` my_app` would match no target); `None` for one it
/// refuses or would misread (a level that is none, a second `=`, a field filter).
fn filter_directives(s: &str) -> Option<String> {
    let level = |l: &str| {
        ["trace", "debug", "info", "warn", "error", "off"]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(l))
            || matches!(l, "0" | "1" | "2" | "3" | "4" | "5")
    };
    let target =
        |t: &str| !t.is_empty() && !t.contains(|c: char| c.is_whitespace() || "[]{}=".contains(c));
    let directives = s
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| match d.split_once('=') {
            Some((t, l)) => {
                let (t, l) = (t.trim(), l.trim());
                (target(t) && level(l)).then(|| format!("{t}={l}"))
            }
            // A bare level, or a bare target: all of it.
            None => (level(d) || target(d)).then(|| d.to_owned()),
        })
        .collect::<Option<Vec<_>>>()?;
    (!directives.is_empty()).then(|| directives.join(","))
}

/// The name the program was started by, without its directory (the conventions'
/// `process.executable.name`).
pub(crate) fn executable_name() -> Option<String> {
    let program = std::env::args_os().next()?;
    let name = std::path::Path::new(&program).file_name()?;
    Some(name.to_string_lossy().into_owned())
}

/// The specification's `service.name` for a service that names none.
fn unknown_service() -> String {
    match executable_name() {
        Some(name) => format!("unknown_service:{name}"),
        None => "unknown_service".to_owned(),
    }
}

#[cfg(test)]
mod tests;
