/*!
The exporters' settings: defaults, then the configuration file, code and the
environment (`COLDSTART_*` and the standard `OTEL_*` variables), through the layers
of an [`Env`]. Read once, at start-up; no file is opened here.

A bad value never stops the service: it becomes a [`ConfigError`] that names the
variable, where the value came from, the value and what is accepted; it is printed
once, and the default is used for that one setting. Telemetry must not be the reason
a service fails to start.
*/

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use coldstart_bootstrap::plan::settings::parse_duration;
use coldstart_bootstrap::{Env, Layer};

mod show;

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

impl Sampler {
    /// Every kind once (ratios at 1; [`read_sampler`] reads the real argument).
    const KINDS: [Sampler; 8] = [
        Sampler::AlwaysOn,
        Sampler::AlwaysOff,
        Sampler::TraceIdRatio(1.0),
        Sampler::ParentBasedAlwaysOn,
        Sampler::ParentBasedAlwaysOff,
        Sampler::ParentBasedTraceIdRatio(1.0),
        Sampler::Dynamic(1.0),
        Sampler::ParentBasedDynamic(1.0),
    ];

    /// The name `OTEL_TRACES_SAMPLER` gives it.
    pub fn name(&self) -> &'static str {
        match self {
            Sampler::AlwaysOn => "always_on",
            Sampler::AlwaysOff => "always_off",
            Sampler::TraceIdRatio(_) => "traceidratio",
            Sampler::ParentBasedAlwaysOn => "parentbased_always_on",
            Sampler::ParentBasedAlwaysOff => "parentbased_always_off",
            Sampler::ParentBasedTraceIdRatio(_) => "parentbased_traceidratio",
            Sampler::Dynamic(_) => "coldstart_dynamic",
            Sampler::ParentBasedDynamic(_) => "parentbased_coldstart_dynamic",
        }
    }
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

/// What one span keeps at most (`OTEL_*_COUNT_LIMIT`, with the specification's
/// defaults); what is past a limit is dropped and counted in the span's own dropped
/// counts, which the exporter sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanLimits {
    /// The attribute limits' fallback (`OTEL_ATTRIBUTE_COUNT_LIMIT`, 128): attributes
    /// per span, event or link where that limit's own variable is unset.
    pub any_attributes: u32,
    /// Attributes per span (`OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, 128).
    pub attributes: u32,
    /// Events per span (`OTEL_SPAN_EVENT_COUNT_LIMIT`, 128).
    pub events: u32,
    /// Links per span (`OTEL_SPAN_LINK_COUNT_LIMIT`, 128).
    pub links: u32,
    /// Attributes per event (`OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT`, 128).
    pub event_attributes: u32,
    /// Attributes per link (`OTEL_LINK_ATTRIBUTE_COUNT_LIMIT`, 128).
    pub link_attributes: u32,
    /// The value length limit's fallback (`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`, none).
    pub any_value_length: Option<u32>,
    /// Characters a string attribute value (or each string of an array) keeps, on the
    /// span, its events and links (`OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`, else
    /// `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`; none by default): longer ones are cut.
    pub value_length: Option<u32>,
}

impl Default for SpanLimits {
    fn default() -> Self {
        SpanLimits {
            any_attributes: 128,
            attributes: 128,
            events: 128,
            links: 128,
            event_attributes: 128,
            link_attributes: 128,
            any_value_length: None,
            value_length: None,
        }
    }
}

impl SpanLimits {
    /// Each limit with its variable, in the order `doctor` shows them.
    pub fn by_variable(&self) -> [(&'static str, u32); 6] {
        [
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", self.any_attributes),
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", self.attributes),
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", self.events),
            ("OTEL_SPAN_LINK_COUNT_LIMIT", self.links),
            ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", self.event_attributes),
            ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", self.link_attributes),
        ]
    }

    /// The value length limits with their variables, in the order `doctor` shows them.
    pub fn value_lengths(&self) -> [(&'static str, Option<u32>); 2] {
        [
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", self.any_value_length),
            ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", self.value_length),
        ]
    }
}

/// Pushing to a Prometheus Pushgateway, for jobs too short-lived to be scraped.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    /// The Pushgateway's base URL (`COLDSTART_METRICS_PUSH_URL`), without the user
    /// info: this is the form logs and `doctor` show.
    pub url: http::Uri,
    /// `user:password` from the URL's user info, sent as HTTP basic authentication.
    pub credentials: Option<Credentials>,
    /// The `job` grouping label (`COLDSTART_METRICS_PUSH_JOB`, default the service
    /// name).
    pub job: String,
    /// Time between pushes (`COLDSTART_METRICS_PUSH_INTERVAL`, default 10 s); one
    /// more push happens at shutdown.
    pub interval: Duration,
    /// Grouping labels after `job` (`COLDSTART_METRICS_PUSH_GROUPING`, default none):
    /// instances that push the same job need one of their own (`instance=...`), or
    /// each push replaces the others' metrics.
    pub grouping: Vec<(String, String)>,
    /// How long the push at shutdown may take, waiting first for a periodic push in
    /// flight: [`FINAL_PUSH_WITHIN`], each push taking up to 5 s. coldstart's Lambda
    /// integration cuts it to what Lambda allows after SIGTERM.
    pub final_within: Duration,
}

/// The shortest [`Push::interval`] `COLDSTART_METRICS_PUSH_INTERVAL` accepts.
pub const MIN_PUSH_INTERVAL: Duration = Duration::from_millis(100);

/// The default [`Config::final_flush_within`]: the span flush at shutdown.
pub const FINAL_FLUSH_WITHIN: Duration = Duration::from_secs(5);

/// The default [`Push::final_within`]: a periodic push in flight, then the final one,
/// each within its 5 s timeout.
pub const FINAL_PUSH_WITHIN: Duration = Duration::from_secs(10);

/// Basic-authentication credentials (`user:password`, percent-decoded). Never shown:
/// `Debug` prints `Credentials(<not shown>)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials(String);

impl Credentials {
    /// The `Authorization` header value.
    #[cfg(feature = "metrics")]
    pub(crate) fn basic(&self) -> String {
        format!("Basic {}", crate::base64::standard(self.0.as_bytes()))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(<not shown>)")
    }
}

/// A Pushgateway URL: `http://`, a host, and optional `user:password@` split off.
fn push_url(raw: &str) -> Option<(http::Uri, Option<Credentials>)> {
    let uri = raw.parse::<http::Uri>().ok()?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() || !port_ok(&uri) {
        return None;
    }
    let authority = uri.authority()?.as_str();
    let Some((user_info, host_port)) = authority.rsplit_once('@') else {
        return Some((uri, None));
    };
    let bare = http::Uri::builder()
        .scheme("http")
        .authority(host_port)
        .path_and_query(uri.path_and_query().map_or("/", |p| p.as_str()))
        .build()
        .ok()?;
    Some((bare, Some(Credentials(percent_decode(user_info)?))))
}

/// Whether `uri`'s port, if it has one, is a port: `http::Uri` takes `:70000` and
/// `:4318x`, and a client would then go to port 80 or 443 without a word. (An empty
/// one is the scheme's default, as RFC 3986 has it.)
pub(crate) fn port_ok(uri: &http::Uri) -> bool {
    // `port()` says nothing of a port it cannot read: the authority's text does.
    let Some(authority) = uri.authority() else {
        return true;
    };
    let host_port = authority
        .as_str()
        .rsplit_once('@')
        .map_or(authority.as_str(), |(_, h)| h);
    let after_host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(_, rest)| rest),
        None => host_port.find(':').map_or("", |i| &host_port[i..]),
    };
    match after_host.strip_prefix(':') {
        None => after_host.is_empty(),
        Some(port) => port.is_empty() || port.parse::<u16>().is_ok_and(|n| n > 0),
    }
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

impl Protocol {
    /// The name `OTEL_EXPORTER_OTLP_PROTOCOL` gives it.
    pub fn name(&self) -> &'static str {
        match self {
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::Grpc => "grpc",
        }
    }
}

/// How export requests are compressed (`OTEL_EXPORTER_OTLP_TRACES_COMPRESSION`, else
/// `OTEL_EXPORTER_OTLP_COMPRESSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `none`, the default.
    None,
    /// `gzip` (the `gzip` feature).
    Gzip,
}

impl Compression {
    /// The name `OTEL_EXPORTER_OTLP_COMPRESSION` gives it.
    pub fn name(&self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
        }
    }
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

/// A variable with a value it does not accept; what is used instead is `instead`
/// (usually the default).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigError {
    /// The variable.
    pub key: &'static str,
    /// The value given.
    pub value: String,
    /// What it accepts, in words.
    pub accepts: &'static str,
    /// What happens instead, such as `using the default`.
    pub instead: &'static str,
    /// Where the value came from.
    pub layer: Layer,
    /// What is wrong with it, where the value is not shown (a headers value).
    pub why: Option<String>,
}

/// What a rejected value usually leads to.
const USING_THE_DEFAULT: &str = "using the default";

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "set {} to {}, got `{}`{}{}; {}",
            self.key,
            self.accepts,
            coldstart_bootstrap::plan::settings::OneLine(&self.value),
            self.layer.describe(self.key),
            self.why
                .as_ref()
                .map_or(String::new(), |why| format!(" ({why})")),
            self.instead
        )
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// Whether part of the value given is used all the same (the known propagators
    /// of a list with an unknown one; a batch size cut to the queue's): the setting
    /// still comes from where it was given, adjusted.
    pub fn adjusted(&self) -> bool {
        matches!(self.instead, USING_THE_KNOWN_ONES | THE_QUEUE_SIZE_IS_USED)
    }
}

const USING_THE_KNOWN_ONES: &str = "using the known ones";
const THE_QUEUE_SIZE_IS_USED: &str = "the queue size is used";

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
    /// A build with every feature (what `cargo coldstart doctor` checks against).
    pub const ALL: Build = Build {
        grpc: true,
        tls: true,
        logs: true,
        gzip: true,
    };
}

/// Reads one variable; a bad value is recorded in `errors` and yields `None`.
struct Reader<'a> {
    env: &'a Env,
    build: Build,
    errors: Vec<ConfigError>,
}

impl Reader<'_> {
    fn raw(&self, key: &str) -> Option<String> {
        self.layered(key).map(|(v, _)| v)
    }

    /// A value, trimmed, and the layer it came from (a blank one is unset in
    /// [`Env::lookup`]).
    fn layered(&self, key: &str) -> Option<(String, Layer)> {
        let (v, layer) = self.env.lookup(key)?;
        Some((v.to_string_lossy().trim().to_owned(), layer))
    }

    fn read<T>(
        &mut self,
        key: &'static str,
        accepts: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Option<T> {
        let (raw, layer) = self.layered(key)?;
        let parsed = parse(&raw);
        if parsed.is_none() {
            self.refuse(key, raw, layer, accepts, USING_THE_DEFAULT);
        }
        parsed
    }

    /// The signal's own setting (`own`), else the general one: a bad `own` is said,
    /// naming the general setting as what is used `instead` when that is usable.
    fn read_either<T>(
        &mut self,
        names: [&'static str; 2],
        accepts: &'static str,
        instead: &'static str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        self.read_either_from(names, accepts, instead, parse)
            .map(|(value, _)| value)
    }

    /// Whether `own`, a more specific setting than `general`, is the one to read: it
    /// is set, and `general` is not set in a layer above it. Layers come first (an
    /// environment variable overrides the file's value, however specific), then the
    /// more specific setting.
    fn own_first(&self, own: &str, general: &str) -> bool {
        self.env.is_set(own) && !self.env.set_above(general, own)
    }

    /// [`Reader::read_either`], with the name the value was read from.
    fn read_either_from<T>(
        &mut self,
        [own, general]: [&'static str; 2],
        accepts: &'static str,
        instead: &'static str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<(T, &'static str)> {
        if !self.own_first(own, general) {
            return self
                .read(general, accepts, parse)
                .map(|value| (value, general));
        }
        if let Some((raw, layer)) = self.layered(own) {
            if let Some(value) = parse(&raw) {
                return Some((value, own));
            }
            let usable = |(v, _): (String, Layer)| parse(&v);
            let instead = if self.layered(general).and_then(usable).is_some() {
                instead
            } else {
                USING_THE_DEFAULT
            };
            self.refuse(own, raw, layer, accepts, instead);
        }
        self.read(general, accepts, parse)
            .map(|value| (value, general))
    }

    fn refuse(
        &mut self,
        key: &'static str,
        value: String,
        layer: Layer,
        accepts: &'static str,
        instead: &'static str,
    ) -> &mut ConfigError {
        // Header values and a URL's user info are secrets: never repeated.
        let value = coldstart_bootstrap::config::shown(key, &value);
        self.errors.push(ConfigError {
            key,
            value,
            accepts,
            instead,
            layer,
            why: None,
        });
        let last = self.errors.len() - 1;
        &mut self.errors[last]
    }
}

/// The `service.name` among resource attributes, unless it is empty.
fn service_name_in(attributes: &[(String, String)]) -> Option<&str> {
    attributes
        .iter()
        .find(|(k, v)| k == "service.name" && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

impl Config {
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
        let push_url = match r.layered("COLDSTART_METRICS_PUSH_URL") {
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
        let push = push_url.map(|(url, credentials)| Push {
            url,
            credentials,
            // A job named `unknown_service:...` would say nothing the name does not.
            // An empty job is refused by the gateway at every push.
            job: r
                .raw("COLDSTART_METRICS_PUSH_JOB")
                .or_else(|| named_service.clone().filter(|s| !s.is_empty()))
                .or_else(executable_name)
                .unwrap_or_else(unknown_service),
            interval: r
                .read(
                    "COLDSTART_METRICS_PUSH_INTERVAL",
                    "a duration such as `10s` or `500ms` (from 100ms to 1h)",
                    |s| parse_duration(s).filter(|d| *d >= MIN_PUSH_INTERVAL),
                )
                .unwrap_or(Duration::from_secs(10)),
            grouping: r
                .read(
                    "COLDSTART_METRICS_PUSH_GROUPING",
                    "comma-separated `label=value` pairs, values percent-encoded, label names of letters, digits and `_` (not `job`, `le` or `quantile`, not starting with `__` or a digit)",
                    |s| {
                        parse_pairs(s).filter(|pairs| {
                            pairs.iter().all(|(label, _)| grouping_label(label))
                                && pairs.iter().enumerate().all(|(i, (label, _))| {
                                    pairs[..i].iter().all(|(other, _)| other != label)
                                })
                        })
                    },
                )
                .unwrap_or_default(),
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
            .unwrap_or(Duration::from_secs(10));
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
                "a CloudWatch namespace (1 to 255 characters: letters, digits, `.-_/#:` and spaces, not starting with `AWS/`, which CloudWatch keeps for its own), or `off`",
                |s| match s {
                    "off" => Some(None),
                    _ if s.len() <= 255
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

fn read_protocol(r: &mut Reader<'_>) -> Protocol {
    let grpc = r.build.grpc;
    let accepts = if grpc {
        "`http/protobuf` or `grpc`"
    } else {
        "`http/protobuf` (`grpc` needs coldstart's `grpc` feature)"
    };
    r.read_either(
        [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ],
        accepts,
        "OTEL_EXPORTER_OTLP_PROTOCOL is used instead",
        |s| {
            [Protocol::HttpProtobuf, Protocol::Grpc]
                .into_iter()
                .find(|p| p.name().eq_ignore_ascii_case(s) && (grpc || *p != Protocol::Grpc))
        },
    )
    .unwrap_or(Protocol::HttpProtobuf)
}

/// The specification's names, in any case (as opentelemetry-otlp takes them).
fn read_compression(r: &mut Reader<'_>) -> Compression {
    let gzip = r.build.gzip;
    let accepts = if gzip {
        "`gzip` or `none`"
    } else {
        "`none` (`gzip` needs coldstart's `gzip` feature)"
    };
    r.read_either(
        [
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            "OTEL_EXPORTER_OTLP_COMPRESSION",
        ],
        accepts,
        "OTEL_EXPORTER_OTLP_COMPRESSION is used instead",
        |s| {
            [Compression::None, Compression::Gzip]
                .into_iter()
                .find(|c| c.name().eq_ignore_ascii_case(s) && (gzip || *c != Compression::Gzip))
        },
    )
    .unwrap_or(Compression::None)
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

const URL: &str = "an http:// or https:// URL such as `http://collector:4318`, without a `#fragment` \
     or user info (credentials go in OTEL_EXPORTER_OTLP_HEADERS, as `authorization=Basic ...`)";

/// The traces endpoint from the most specific variable that is set and valid.
fn read_endpoint(r: &mut Reader<'_>, protocol: Protocol) -> Option<String> {
    let url = |s: &str| {
        s.parse::<http::Uri>()
            .ok()
            .filter(|u| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() && port_ok(u)
            })
            // The signal's path goes after the base's: a fragment would hide it.
            .filter(|_| !s.contains('#'))
            // The exporter sends no credentials from the URL: a collector that wants
            // them would refuse every batch with a bare 401.
            .filter(|u| u.authority().is_none_or(|a| !a.as_str().contains('@')))
            .map(|_| s.to_owned())
    };
    const GENERAL: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
    let (endpoint, from) = r.read_either_from(
        ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", GENERAL],
        URL,
        "OTEL_EXPORTER_OTLP_ENDPOINT is used instead",
        url,
    )?;
    Some(if from == GENERAL {
        with_traces_path(endpoint, protocol)
    } else {
        endpoint
    })
}

/// The general endpoint with the signal's path (`/v1/traces`) for OTLP/HTTP, before
/// any query the base carries.
fn with_traces_path(base: String, protocol: Protocol) -> String {
    if protocol == Protocol::Grpc {
        return base;
    }
    let (path, query) = match base.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (base.as_str(), None),
    };
    let mut endpoint = format!("{}/v1/traces", path.trim_end_matches('/'));
    if let Some(query) = query {
        endpoint.push('?');
        endpoint.push_str(query);
    }
    endpoint
}

/// Export headers: `OTEL_EXPORTER_OTLP_TRACES_HEADERS` when it is set and readable,
/// else `OTEL_EXPORTER_OTLP_HEADERS`, each whole, as the other OpenTelemetry SDKs
/// read them (the signal's own setting replaces the general one, it is not merged
/// into it). A value that cannot be read entirely sends nothing of itself.
fn read_headers(r: &mut Reader<'_>) -> Vec<(String, String)> {
    const OWN: &str = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
    let keys: &[&str] = if r.own_first(OWN, "OTEL_EXPORTER_OTLP_HEADERS") {
        &[OWN, "OTEL_EXPORTER_OTLP_HEADERS"]
    } else {
        &["OTEL_EXPORTER_OTLP_HEADERS"]
    };
    for &key in keys {
        let Some((raw, layer)) = r.layered(key) else {
            continue;
        };
        let valid = parse_pairs(&raw).filter(|pairs| {
            pairs.iter().all(|(k, v)| {
                http::HeaderName::try_from(k.as_str()).is_ok()
                    && http::HeaderValue::try_from(v.as_str()).is_ok()
            })
        });
        let general = "OTEL_EXPORTER_OTLP_HEADERS";
        let instead = if key != general && r.layered(general).is_some() {
            "no headers from it are sent; OTEL_EXPORTER_OTLP_HEADERS is read instead"
        } else {
            "no headers from it are sent"
        };
        match valid {
            Some(pairs) => return pairs,
            None => {
                let why = headers_problem(&raw);
                r.refuse(
                    key,
                    raw,
                    layer,
                    "comma-separated `name=value` pairs, values percent-encoded",
                    instead,
                )
                .why = why;
            }
        }
    }
    Vec::new()
}

/// What is wrong with a headers value, without its values (they are credentials):
/// the first pair that cannot be sent, by its place and, where it is one, its name.
fn headers_problem(raw: &str) -> Option<String> {
    let pairs = raw.split(',').map(str::trim).filter(|p| !p.is_empty());
    for (n, pair) in pairs.enumerate().map(|(i, p)| (i + 1, p)) {
        let Some((name, value)) = pair.split_once('=') else {
            return Some(format!("pair {n} has no `=`"));
        };
        let name = name.trim();
        if name.is_empty() {
            return Some(format!("pair {n} has no name"));
        }
        // A name that is none may be a credential written in the wrong place.
        if http::HeaderName::try_from(name).is_err() {
            return Some(format!(
                "pair {n}'s name is not a header name (letters, digits, `-` and `_`)"
            ));
        }
        let problem = match percent_decode_bytes(value.trim()).map(String::from_utf8) {
            None => "a `%` not followed by two hex digits",
            Some(Err(_)) => "its value decodes to bytes that are not UTF-8",
            Some(Ok(value)) if http::HeaderValue::try_from(value.as_str()).is_err() => {
                "its value holds a character no header value may (a control character)"
            }
            Some(Ok(_)) => continue,
        };
        return Some(format!("pair {n}, `{name}`: {problem}"));
    }
    None
}

/// `k1=v1,k2=v2` with percent-encoded values (W3C baggage style, as the OpenTelemetry
/// specification reads `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_EXPORTER_OTLP_HEADERS`).
fn parse_pairs(s: &str) -> Option<Vec<(String, String)>> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then_some(())?;
            Some((k.to_owned(), percent_decode(v.trim())?))
        })
        .collect()
}

/// Whether `label` may name a Pushgateway grouping label: a Prometheus label name,
/// not `job` (the job comes first), not a reserved `__` name, and not `le` or
/// `quantile`: the gateway sets grouping labels on every series, and a histogram's
/// buckets would carry `le` twice, which makes Prometheus refuse the gateway's
/// whole scrape.
fn grouping_label(label: &str) -> bool {
    let mut chars = label.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !matches!(label, "job" | "le" | "quantile")
        && !label.starts_with("__")
}

pub(crate) fn percent_decode(s: &str) -> Option<String> {
    String::from_utf8(percent_decode_bytes(s)?).ok()
}

/// The bytes `s` percent-encodes; `None` for a `%` not followed by two hex digits.
pub(crate) fn percent_decode_bytes(s: &str) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = tail
                .get(..2)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
            bytes.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    Some(bytes)
}

/// What a TLS file setting accepts in `build`.
fn tls_file_accepts(build: Build) -> &'static str {
    if build.tls {
        "a PEM file"
    } else {
        "a PEM file, in a build with coldstart's `tls` feature"
    }
}

fn read_client_tls(r: &mut Reader<'_>) -> ClientTls {
    let tls = r.build.tls;
    let accepts = tls_file_accepts(r.build);
    let tls_file = |s: &str| tls.then(|| PathBuf::from(s));
    let mut file = |traces: &'static str, any: &'static str, instead: &'static str| {
        r.read_either([traces, any], accepts, instead, tls_file)
    };
    let tls = ClientTls {
        ca: file(
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CERTIFICATE is used instead",
        ),
        certificate: file(
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE is used instead",
        ),
        key: file(
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY is used instead",
        ),
    };
    if tls.certificate.is_some() != tls.key.is_some() {
        // One without the other cannot authenticate: name the one given, drop both.
        let (names, given) = match (&tls.certificate, &tls.key) {
            (Some(c), _) => (
                [
                    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
                    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                ],
                c,
            ),
            (_, Some(k)) => (
                [
                    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
                    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
                ],
                k,
            ),
            _ => unreachable!("exactly one is set"),
        };
        // Named as it was given: the traces-only name wins when it is set (`file`
        // above reads it first), and the pair asked for is of the same family.
        let traces = r.layered(names[0]).is_some();
        let (key, accepts) = if traces {
            (
                names[0],
                "a PEM file, together with both OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            )
        } else {
            (
                names[1],
                "a PEM file, together with both OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY",
            )
        };
        let layer = r.layered(key).map_or(Layer::Variable, |(_, l)| l);
        r.refuse(
            key,
            given.display().to_string(),
            layer,
            accepts,
            "no client certificate is sent",
        );
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
    let build = r.build;
    let [certificate, key, client_ca] = KEYS.map(|key| r.raw(key));
    if certificate.is_none() && key.is_none() && client_ca.is_none() {
        return Ok(None);
    }
    let mut refuse =
        |key: &'static str, value: Option<String>, accepts: &'static str, why: Option<String>| {
            let layer = r.layered(key).map_or(Layer::Variable, |(_, l)| l);
            r.refuse(
                key,
                value.unwrap_or_default(),
                layer,
                accepts,
                "/metrics is not served",
            )
            .why = why;
            Err(())
        };
    if !build.tls {
        let (key, value) = KEYS
            .into_iter()
            .zip([certificate, key, client_ca])
            .find_map(|(k, v)| Some((k, v?)))
            .unwrap_or((KEYS[0], String::new()));
        return refuse(key, Some(value), tls_file_accepts(build), None);
    }
    // Which of the three were given: what asked for TLS, named where one is missing.
    let given: Vec<&str> = KEYS
        .into_iter()
        .zip([&certificate, &key, &client_ca])
        .filter_map(|(k, v)| v.is_some().then_some(k))
        .collect();
    match (certificate, key) {
        (Some(certificate), Some(key)) => Ok(Some(ServerTls {
            certificate: certificate.into(),
            key: key.into(),
            client_ca: client_ca.map(PathBuf::from),
        })),
        // The first of the two that is missing.
        (certificate, _) => {
            let missing = if certificate.is_none() {
                KEYS[0]
            } else {
                KEYS[1]
            };
            let verb = if given.len() == 1 { "is" } else { "are" };
            refuse(
                missing,
                None,
                "a PEM file (TLS for /metrics needs a certificate and its key)",
                Some(format!("it is not set, and {} {verb}", given.join(" and "))),
            )
        }
    }
}

const SAMPLERS: &str = "one of `always_on`, `always_off`, `traceidratio`, `parentbased_always_on`, \
`parentbased_always_off`, `parentbased_traceidratio`, `coldstart_dynamic`, `parentbased_coldstart_dynamic`";

fn read_sampler(r: &mut Reader<'_>) -> Sampler {
    let kind = r
        .read("OTEL_TRACES_SAMPLER", SAMPLERS, |s| {
            Sampler::KINDS
                .into_iter()
                .find(|k| k.name().eq_ignore_ascii_case(s))
        })
        .unwrap_or(Sampler::ParentBasedAlwaysOn);
    let arg = |r: &mut Reader<'_>| {
        r.read(
            "OTEL_TRACES_SAMPLER_ARG",
            "a probability from 0 to 1, such as `0.25`",
            |s| s.parse::<f64>().ok().filter(|p| (0.0..=1.0).contains(p)),
        )
        .unwrap_or(1.0)
    };
    // The argument is read only for the samplers that take one.
    match kind {
        Sampler::TraceIdRatio(_) => Sampler::TraceIdRatio(arg(r)),
        Sampler::ParentBasedTraceIdRatio(_) => Sampler::ParentBasedTraceIdRatio(arg(r)),
        Sampler::Dynamic(_) => Sampler::Dynamic(arg(r)),
        Sampler::ParentBasedDynamic(_) => Sampler::ParentBasedDynamic(arg(r)),
        other => other,
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

/// What a timeout accepts: a timeout of 0 would fail every export.
const TIMEOUT: &str = "milliseconds, from 1 to 3600000";

/// [`millis`] above zero.
fn timeout(s: &str) -> Option<Duration> {
    millis(s).filter(|d| !d.is_zero())
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
    const BATCH: &str = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE";
    let batch = match r.read(BATCH, "a whole number from 1 to 1048576", count) {
        Some(batch) if batch > max_spans => {
            if let Some((raw, layer)) = r.layered(BATCH) {
                r.refuse(
                    BATCH,
                    raw,
                    layer,
                    "a whole number no larger than OTEL_BSP_MAX_QUEUE_SIZE",
                    THE_QUEUE_SIZE_IS_USED,
                );
            }
            max_spans
        }
        Some(batch) => batch,
        None => default.batch.min(max_spans),
    };
    Queue {
        max_spans,
        batch,
        delay: r
            .read(
                "OTEL_BSP_SCHEDULE_DELAY",
                "milliseconds, from 0 to 3600000",
                millis,
            )
            .unwrap_or(default.delay),
        export_timeout: r
            .read("OTEL_BSP_EXPORT_TIMEOUT", TIMEOUT, timeout)
            .unwrap_or(default.export_timeout),
    }
}

fn read_span_limits(r: &mut Reader<'_>) -> SpanLimits {
    const ACCEPTS: &str = "a whole number from 0 to 1048576";
    let count = |s: &str| s.parse::<u32>().ok().filter(|n| *n <= 1 << 20);
    const ANY: &str = "OTEL_ATTRIBUTE_COUNT_LIMIT";
    let mut limits = SpanLimits::default();
    // The general attribute limit, which each model's own limit overrides (unless
    // the general one's layer overrides the own one's).
    if let Some(n) = r.read(ANY, ACCEPTS, count) {
        limits.any_attributes = n;
        limits.attributes = n;
        limits.event_attributes = n;
        limits.link_attributes = n;
    }
    // Each model's own limit, and whether the general one stands for it.
    let fields = [
        (&mut limits.attributes, true),
        (&mut limits.events, false),
        (&mut limits.links, false),
        (&mut limits.event_attributes, true),
        (&mut limits.link_attributes, true),
    ];
    let own = SpanLimits::default().by_variable().into_iter().skip(1);
    for ((key, _), (field, general)) in own.zip(fields) {
        if general && !r.own_first(key, ANY) {
            continue;
        }
        if let Some(n) = r.read(key, ACCEPTS, count) {
            *field = n;
        }
    }
    const LENGTH: &str = "a whole number of characters from 0 to 1048576";
    const ANY_LENGTH: &str = "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT";
    const OWN_LENGTH: &str = "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT";
    limits.any_value_length = r.read(ANY_LENGTH, LENGTH, count);
    let own_length = if r.own_first(OWN_LENGTH, ANY_LENGTH) {
        r.read(OWN_LENGTH, LENGTH, count)
    } else {
        None
    };
    limits.value_length = own_length.or(limits.any_value_length);
    limits
}

/// `OTEL_PROPAGATORS`: whether trace context and baggage are on. An entry coldstart
/// does not know (`b3`, say) is named as an error and the known ones are used, so the
/// list never turns on a propagator it does not name; with none known, the default.
fn read_propagators(r: &mut Reader<'_>) -> (bool, bool) {
    const KEY: &str = "OTEL_PROPAGATORS";
    const ACCEPTS: &str = "a comma-separated list of `tracecontext`, `baggage`, or `none`";
    let Some((raw, layer)) = r.layered(KEY) else {
        return (true, true);
    };
    let (mut trace_context, mut baggage, mut known, mut unknown) = (false, false, false, false);
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name.to_ascii_lowercase().as_str() {
            "tracecontext" => trace_context = true,
            "baggage" => baggage = true,
            "none" => {}
            _ => {
                unknown = true;
                continue;
            }
        }
        known = true;
    }
    match (known, unknown) {
        (_, false) => (trace_context, baggage),
        (true, true) => {
            r.refuse(KEY, raw, layer, ACCEPTS, USING_THE_KNOWN_ONES);
            (trace_context, baggage)
        }
        (false, true) => {
            r.refuse(KEY, raw, layer, ACCEPTS, USING_THE_DEFAULT);
            (true, true)
        }
    }
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
        assert!(c.traces && c.export_traces && c.trace_context && c.baggage);
        assert_eq!(c.sampler, Sampler::ParentBasedAlwaysOn);
        assert_eq!(c.queue, Queue::default());
        assert!(c.push.is_none());
    }

    #[test]
    fn known_http_methods_replace_the_standard_ones_and_a_bad_list_is_named() {
        let (c, errors) = config(&[(
            "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS",
            "GET, POST,PROPFIND,",
        )]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            c.http_known_methods.as_deref(),
            Some(&["GET".to_owned(), "POST".to_owned(), "PROPFIND".to_owned()][..])
        );
        for bad in ["GET,BAD METHOD", ",", "GET,(x)"] {
            let (c, errors) = config(&[("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS", bad)]);
            assert_eq!(c.http_known_methods, None, "{bad}");
            assert_eq!(
                errors[0].to_string(),
                format!(
                    "set OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS to comma-separated HTTP methods such as `GET,POST,PROPFIND` (case-sensitive tokens, at most 64), which replace the standard nine, got `{bad}`; using the default"
                )
            );
        }
        let many = (0..65)
            .map(|i| format!("M{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let (c, _) = config(&[("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS", many.as_str())]);
        assert_eq!(c.http_known_methods, None);
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
            "set OTEL_PROPAGATORS to a comma-separated list of `tracecontext`, `baggage`, or `none`, got `tracecontext,b3`; using the known ones"
        );
        assert!(
            c.trace_context && !c.baggage,
            "only what the list names and coldstart knows"
        );
        let (none_known, refused) = config(&[("OTEL_PROPAGATORS", "b3,jaeger")]);
        assert!(refused[0].to_string().ends_with("using the default"));
        assert!(none_known.trace_context && none_known.baggage);
        assert_eq!(c.sampler, Sampler::ParentBasedTraceIdRatio(1.0));
        assert_eq!(c.metrics_addr, DEFAULT_METRICS_ADDR.parse().ok());
        assert!(c.traces);
    }

    /// `none` means no exporter, as the specification says, not no tracing: spans are
    /// still made and propagated.
    #[test]
    fn no_trace_exporter_keeps_the_tracer_and_the_propagators() {
        let (c, errors) = config(&[("OTEL_TRACES_EXPORTER", "none")]);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(c.traces && !c.export_traces && c.trace_context && c.baggage);
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
        assert!(!c.traces && !c.export_traces && !c.trace_context && !c.baggage);
        let push = c.push.unwrap();
        assert_eq!(
            (push.job.as_str(), push.interval),
            ("checkout", Duration::from_secs(2))
        );
        assert_eq!(c.sampler, Sampler::Dynamic(0.5));
    }

    #[test]
    fn push_grouping_labels_are_prometheus_names_after_the_job() {
        let url = ("COLDSTART_METRICS_PUSH_URL", "http://127.0.0.1:9091");
        let (c, errors) = config(&[
            url,
            (
                "COLDSTART_METRICS_PUSH_GROUPING",
                "instance=host%2C1, zone=eu",
            ),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            c.push.unwrap().grouping,
            [
                ("instance".to_owned(), "host,1".to_owned()),
                ("zone".to_owned(), "eu".to_owned())
            ]
        );
        for bad in [
            "job=x",
            "__x=1",
            "le=1",
            "quantile=0.5",
            "1a=b",
            "a-b=c",
            "a=1,a=2",
            "novalue",
        ] {
            let (c, errors) = config(&[url, ("COLDSTART_METRICS_PUSH_GROUPING", bad)]);
            assert_eq!(errors.len(), 1, "{bad}");
            assert_eq!(errors[0].key, "COLDSTART_METRICS_PUSH_GROUPING");
            assert!(errors[0].to_string().contains("not `job`"), "{}", errors[0]);
            assert!(c.push.unwrap().grouping.is_empty(), "{bad}");
        }
    }

    #[test]
    fn a_refused_value_with_a_line_break_is_said_on_one_line() {
        let (_, errors) = config(&[("OTEL_BSP_MAX_QUEUE_SIZE", "1\n2")]);
        let text = errors[0].to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains("got `1\\n2`"), "{text}");
    }

    #[test]
    fn a_job_that_pushes_listens_only_when_told_to() {
        let url = ("COLDSTART_METRICS_PUSH_URL", "http://127.0.0.1:9091");
        let (c, errors) = config(&[url]);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(c.push.is_some());
        assert_eq!(c.metrics_addr, None, "pushing, and no address given");
        let (c, _) = config(&[url, ("COLDSTART_METRICS_ADDR", "127.0.0.1:9100")]);
        assert_eq!(
            c.metrics_addr,
            "127.0.0.1:9100".parse().ok(),
            "both, as told"
        );
        // An empty `service.name` names no job: the gateway refuses an empty one.
        let (c, _) = config(&[url, ("OTEL_RESOURCE_ATTRIBUTES", "service.name=")]);
        assert!(!c.push.unwrap().job.is_empty());
        // An address refused falls back to the default, which for a job that pushes
        // is no listener; a push URL refused leaves the listener's default.
        let (c, errors) = config(&[url, ("COLDSTART_METRICS_ADDR", "localhost")]);
        assert_eq!((c.metrics_addr, errors.len()), (None, 1));
        let (c, errors) = config(&[("COLDSTART_METRICS_PUSH_URL", "ftp://gateway")]);
        assert_eq!(errors.len(), 1);
        assert_eq!(c.metrics_addr, DEFAULT_METRICS_ADDR.parse().ok());
    }

    #[test]
    fn a_push_url_must_be_http() {
        let (c, errors) = config(&[("COLDSTART_METRICS_PUSH_URL", "ftp://gateway")]);
        assert!(c.push.is_none());
        assert_eq!(errors[0].key, "COLDSTART_METRICS_PUSH_URL");
    }

    /// CloudWatch refuses custom namespaces under `AWS/`: every EMF line would be lost.
    #[test]
    fn an_emf_namespace_cloudwatch_keeps_for_itself_is_refused() {
        let (c, errors) = config(&[("COLDSTART_EMF_NAMESPACE", "AWS/Lambda")]);
        assert_eq!(errors[0].key, "COLDSTART_EMF_NAMESPACE");
        assert!(
            errors[0].to_string().contains("not starting with `AWS/`"),
            "{}",
            errors[0]
        );
        assert_eq!(c.lambda.emf_namespace.as_deref(), Some("coldstart"));
        let (c, errors) = config(&[("COLDSTART_EMF_NAMESPACE", "Shop/AWS")]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.lambda.emf_namespace.as_deref(), Some("Shop/AWS"));
    }

    /// A fragment hid the signal's path: `http://c:4318/#x` became
    /// `http://c:4318/#x/v1/traces`, and spans went to `/`.
    #[test]
    fn an_endpoint_with_a_fragment_is_refused() {
        for key in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ] {
            let (c, errors) = config(&[(key, "http://c:4318/#x")]);
            assert_eq!(errors[0].key, key);
            assert!(errors[0].to_string().contains("#fragment"), "{}", errors[0]);
            assert_eq!(c.otlp_endpoint, None);
        }
    }

    /// The exporter sends nothing of an endpoint's user info: refused by name, never
    /// repeated, instead of every batch failing with a 401.
    #[test]
    fn an_endpoint_with_user_info_is_refused_and_not_repeated() {
        for key in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ] {
            // A password with `/` ends the authority early (base64 holds them).
            for url in [
                "https://ci:s3cret@collector:4318",
                "https://ci:s3cr/t@collector:4318",
            ] {
                let (c, errors) = config(&[(key, url)]);
                assert_eq!(errors[0].key, key);
                let said = errors[0].to_string();
                assert!(said.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{said}");
                assert!(!said.contains("s3cr"), "{said}");
                assert_eq!(c.otlp_endpoint, None);
            }
        }
    }

    /// `http::Uri` takes a port it cannot read, and a client then went to port 80.
    #[test]
    fn a_url_with_a_port_that_is_no_port_is_refused() {
        for bad in [
            "http://collector:70000",
            "http://collector:4318x",
            "http://[::1]:0",
        ] {
            let (c, errors) = config(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", bad)]);
            assert_eq!(errors[0].key, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "{bad}");
            assert_ne!(c.otlp_endpoint.as_deref(), Some(bad));
            let (c, errors) = config(&[("COLDSTART_METRICS_PUSH_URL", bad)]);
            assert_eq!(errors[0].key, "COLDSTART_METRICS_PUSH_URL", "{bad}");
            assert!(c.push.is_none());
        }
        let (c, errors) = config(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://[::1]:4318")]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.otlp_endpoint.as_deref(), Some("http://[::1]:4318"));
    }

    #[test]
    fn a_push_password_is_never_repeated() {
        let (c, errors) = config(&[("COLDSTART_METRICS_PUSH_URL", "ftp://ci:s3cret@gateway/x")]);
        assert!(c.push.is_none());
        let message = errors[0].to_string();
        assert!(message.contains("ftp://<not shown>@gateway/x"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
        // A password with `/` or `#` in it, as base64 may have, and an endpoint's.
        for (key, url) in [
            ("COLDSTART_METRICS_PUSH_URL", "http://ci:pa/s3cret@gw:9091"),
            ("COLDSTART_METRICS_PUSH_URL", "http://ci:pa#s3cret@gw:9091"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://ci:s3cret@collector:0",
            ),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://ci:pa/s3cret@collector:99999",
            ),
        ] {
            let (_, errors) = config(&[(key, url)]);
            let message = errors[0].to_string();
            assert!(!message.contains("s3cret"), "{message}");
            assert!(message.contains("<not shown>@"), "{message}");
        }
        let (c, errors) = config(&[("COLDSTART_METRICS_PUSH_URL", "http://ci:s3cret@gw:9091")]);
        assert!(errors.is_empty());
        let push = c.push.unwrap();
        assert_eq!(push.url.to_string(), "http://gw:9091/");
        assert_eq!(
            push.credentials.unwrap(),
            Credentials("ci:s3cret".to_owned())
        );
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
    fn compression_is_none_unless_gzip_is_asked_for_and_built_in() {
        assert_eq!(config(&[]).0.compression, Compression::None);
        let (c, errors) = config(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")]);
        if cfg!(feature = "gzip") {
            assert!(errors.is_empty(), "{errors:?}");
            assert_eq!(c.compression, Compression::Gzip);
        } else {
            assert_eq!(errors[0].key, "OTEL_EXPORTER_OTLP_COMPRESSION");
            assert!(errors[0].accepts.contains("`gzip` feature"), "{errors:?}");
            assert_eq!(c.compression, Compression::None);
        }
        let (c, errors) = config(&[
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "NONE"),
        ]);
        assert!(errors.is_empty(), "the traces variable wins: {errors:?}");
        assert_eq!(c.compression, Compression::None);
        let (c, errors) = config(&[("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd")]);
        assert_eq!(errors[0].key, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION");
        assert_eq!(errors[0].value, "zstd");
        assert!(errors[0].accepts.contains("`none`"), "{errors:?}");
        assert_eq!(c.compression, Compression::None);
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
            // Named as given, through the traces-only name (which wins over the
            // general one), asking for the pair of the same family.
            for vars in [
                &[("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "client.key")][..],
                &[
                    ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "client.key"),
                    ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "general.key"),
                ],
            ] {
                let (_, errors) = config(vars);
                assert_eq!(errors[0].key, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY");
                assert_eq!(errors[0].value, "client.key");
                assert!(
                    errors[0]
                        .accepts
                        .contains("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE")
                );
            }
            let (_, errors) =
                config(&[("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", "client.pem")]);
            assert_eq!(
                errors[0].key,
                "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"
            );
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
            // What asked for TLS is named: a client CA alone named only the missing
            // certificate, with an empty value the user never gave.
            assert!(
                error
                    .to_string()
                    .contains("(it is not set, and COLDSTART_METRICS_TLS_CERT is)"),
                "{error}"
            );
            let (_, errors) = config(&[("COLDSTART_METRICS_TLS_CLIENT_CA", "/ca.pem")]);
            assert!(
                errors[0].to_string().contains(
                    "set COLDSTART_METRICS_TLS_CERT to a PEM file (TLS for /metrics needs a certificate and its key), got `` (it is not set, and COLDSTART_METRICS_TLS_CLIENT_CA is)"
                ),
                "{}",
                errors[0]
            );
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

    #[test]
    fn span_limits_are_read_each_from_its_variable() {
        let (c, errors) = config(&[
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "0"),
            ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "7"),
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", "-1"),
        ]);
        let expected = SpanLimits {
            attributes: 0,
            link_attributes: 7,
            ..SpanLimits::default()
        };
        assert_eq!(c.span_limits, expected);
        assert_eq!(
            errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "set OTEL_SPAN_EVENT_COUNT_LIMIT to a whole number from 0 to 1048576, got `-1`; using the default"
            ]
        );
    }

    #[test]
    fn the_general_attribute_limit_applies_where_a_model_sets_none() {
        let (c, errors) = config(&[
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", "5"),
            ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "9"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        let expected = SpanLimits {
            any_attributes: 5,
            attributes: 5,
            event_attributes: 9,
            link_attributes: 5,
            ..SpanLimits::default()
        };
        assert_eq!(c.span_limits, expected);
        // The value length limit: none by default, the general one where the span's is
        // unset.
        assert_eq!(c.span_limits.value_length, None);
        let (c, _) = config(&[("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "64")]);
        assert_eq!(c.span_limits.value_length, Some(64));
        let (c, errors) = config(&[
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "64"),
            ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "lots"),
        ]);
        assert_eq!(errors[0].key, "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT");
        assert_eq!(c.span_limits.value_length, Some(64));
    }

    fn with_file(text: &str, vars: &[(&str, &str)]) -> (Config, Vec<ConfigError>) {
        let file = coldstart_bootstrap::config::ConfigFile::parse("coldstart.toml", text).unwrap();
        Config::from(&Env::fixed(vars.iter().copied()).with_file(Box::leak(Box::new(file))))
    }

    #[test]
    fn the_file_sets_what_the_environment_does_not() {
        let (c, errors) = with_file(
            "[coldstart]\nmetrics_addr = \"0.0.0.0:9100\"\n[otel]\nservice_name = \"from-file\"\ntraces_sampler = \"always_off\"\nbsp_max_queue_size = \"many\"\n",
            &[("OTEL_SERVICE_NAME", "from-env")],
        );
        assert_eq!(c.metrics_addr, "0.0.0.0:9100".parse().ok());
        assert_eq!(c.service_name, "from-env", "the environment beats the file");
        assert_eq!(c.sampler, Sampler::AlwaysOff);
        assert_eq!(
            errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "set OTEL_BSP_MAX_QUEUE_SIZE to a whole number from 1 to 1048576, got `many` (coldstart.toml line 6, `[otel] bsp_max_queue_size`); using the default"
            ]
        );
    }

    #[test]
    fn endpoints_follow_the_specification() {
        let endpoint = |vars: &[(&str, &str)]| config(vars).0.otlp_endpoint;
        assert_eq!(endpoint(&[]), None);
        assert_eq!(
            endpoint(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]).as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        assert_eq!(
            endpoint(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "https://traces.example/custom"
                ),
            ])
            .as_deref(),
            Some("https://traces.example/custom"),
            "the signal's own variable is used as given"
        );
        let (c, errors) = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]);
        assert_eq!(
            (c.otlp_endpoint, errors[0].key),
            (None, "OTEL_EXPORTER_OTLP_ENDPOINT")
        );
    }

    #[test]
    fn headers_from_the_file_are_decoded_and_never_echoed() {
        let (c, errors) = with_file(
            "[otel]\nexporter_otlp_headers = \"authorization=Bearer%20abc,x-tenant=7\"\n",
            &[],
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            c.otlp_headers,
            [
                ("authorization".to_owned(), "Bearer abc".to_owned()),
                ("x-tenant".to_owned(), "7".to_owned())
            ]
        );
        let (_, errors) = config(&[("OTEL_EXPORTER_OTLP_HEADERS", "token-without-value-secret")]);
        assert_eq!(errors[0].key, "OTEL_EXPORTER_OTLP_HEADERS");
        assert!(!errors[0].to_string().contains("secret"), "{}", errors[0]);
    }

    /// A refused headers value says what is wrong, by the pair's place and name, and
    /// never a value: all of these were one line with nothing but `<not shown>`.
    #[test]
    fn a_refused_headers_value_says_what_is_wrong_without_its_values() {
        for (raw, why) in [
            (
                "x-api-key=%zz,tenant=acme",
                "(pair 1, `x-api-key`: a `%` not followed by two hex digits)",
            ),
            ("tenant=acme,token-secret", "(pair 2 has no `=`)"),
            ("=secret", "(pair 1 has no name)"),
            (
                "Bearer secret=x",
                "(pair 1's name is not a header name (letters, digits, `-` and `_`))",
            ),
            (
                "a=b,x-key=%ff",
                "(pair 2, `x-key`: its value decodes to bytes that are not UTF-8)",
            ),
            (
                "x-key=%0a",
                "(pair 1, `x-key`: its value holds a character no header value may (a control character))",
            ),
        ] {
            let (_, errors) = config(&[("OTEL_EXPORTER_OTLP_HEADERS", raw)]);
            let said = errors[0].to_string();
            assert!(
                said.contains(&format!("got `<not shown>` {why}; no headers")),
                "{raw}: {said}"
            );
            for secret in ["secret", "acme", "zz"] {
                assert!(!said.contains(secret), "{raw}: {said}");
            }
        }
    }

    /// Of two settings for one thing, the one from the layer above wins, however
    /// specific the other: a file's value never masks a variable an operator set.
    #[test]
    fn a_variable_overrides_a_more_specific_setting_in_the_file() {
        let file = "[otel]\n\
            service_name = \"from-file\"\n\
            exporter_otlp_traces_endpoint = \"http://file:4318/v1/traces\"\n\
            span_attribute_count_limit = 5\n\
            [coldstart]\n\
            log_filter = \"warn\"\n";
        let (c, errors) = with_file(
            file,
            &[
                ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-variable"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://variable:4318"),
                ("OTEL_ATTRIBUTE_COUNT_LIMIT", "9"),
                ("RUST_LOG", "debug"),
            ],
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.service_name, "from-variable");
        assert_eq!(
            c.otlp_endpoint.as_deref(),
            Some("http://variable:4318/v1/traces")
        );
        assert_eq!(c.span_limits.attributes, 9);
        assert_eq!(c.log_filter, "debug");
        // Without the variables, the file's values stand.
        let (c, errors) = with_file(file, &[]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.service_name, "from-file");
        assert_eq!(c.span_limits.attributes, 5);
        assert_eq!(c.log_filter, "warn");
        // In one layer, the more specific setting wins, and an empty name is none.
        let (c, _) = config(&[
            ("OTEL_SERVICE_NAME", "own"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=general"),
        ]);
        assert_eq!(c.service_name, "own");
        let (c, _) = config(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=")]);
        assert!(
            c.service_name.starts_with("unknown_service:"),
            "{}",
            c.service_name
        );
    }

    /// The traces-only variable replaces the general one whole in one layer; from a
    /// lower layer than the general one's (the file's, under a variable), it is the
    /// one replaced. One that cannot be read leaves the general one in use, and says so.
    #[test]
    fn the_traces_headers_replace_the_general_ones() {
        let (c, errors) = with_file(
            "[otel]\nexporter_otlp_headers = \"authorization=Bearer%20abc,x-tenant=7\"\nexporter_otlp_traces_headers = \"x-tenant=8\"\n",
            &[],
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.otlp_headers, [("x-tenant".to_owned(), "8".to_owned())]);
        let (c, errors) = with_file(
            "[otel]\nexporter_otlp_traces_headers = \"x-tenant=8\"\n",
            &[(
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer%20abc,x-tenant=7",
            )],
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            c.otlp_headers,
            [
                ("authorization".to_owned(), "Bearer abc".to_owned()),
                ("x-tenant".to_owned(), "7".to_owned())
            ]
        );
        let (c, errors) = config(&[
            ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20abc"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-tenant=8,broken"),
        ]);
        assert_eq!(errors[0].key, "OTEL_EXPORTER_OTLP_TRACES_HEADERS");
        assert!(
            errors[0]
                .to_string()
                .ends_with("OTEL_EXPORTER_OTLP_HEADERS is read instead"),
            "{}",
            errors[0]
        );
        assert_eq!(
            c.otlp_headers,
            [("authorization".to_owned(), "Bearer abc".to_owned())]
        );
    }

    #[test]
    fn a_service_named_by_nothing_is_an_unknown_service_and_pushes_as_its_program() {
        let program = executable_name().unwrap();
        let push = ("COLDSTART_METRICS_PUSH_URL", "http://127.0.0.1:9091");
        let (c, errors) = config(&[push]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.service_name, format!("unknown_service:{program}"));
        assert_eq!(c.push.unwrap().job, program);
        let (c, _) = config(&[push, ("OTEL_RESOURCE_ATTRIBUTES", "service.name=orders")]);
        assert_eq!(c.push.unwrap().job, "orders");
    }

    #[test]
    fn resource_attributes_name_the_service_after_the_variable() {
        let attrs = (
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=orders,deployment.environment=eu%2Cwest",
        );
        let (c, errors) = config(&[attrs]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.service_name, "orders");
        assert_eq!(c.resource_attributes[1].1, "eu,west");
        let (c, _) = config(&[attrs, ("OTEL_SERVICE_NAME", "checkout")]);
        assert_eq!(c.service_name, "checkout");
        let (c, errors) = config(&[("OTEL_RESOURCE_ATTRIBUTES", "novalue,a=%zz")]);
        assert_eq!(errors[0].key, "OTEL_RESOURCE_ATTRIBUTES");
        assert!(
            c.resource_attributes.is_empty(),
            "a bad value is discarded whole"
        );
    }

    #[test]
    fn log_settings() {
        let (c, errors) = config(&[("RUST_LOG", "warn,http_server=debug")]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.log_filter, "warn,http_server=debug");
        // As the subscriber reads them: a trailing comma (which it read as `error`),
        // spaces (which made a target no target), a bare target, a numeric level.
        for (given, kept) in [
            ("info,", "info"),
            ("info, my_app = debug", "info,my_app=debug"),
            ("my_app", "my_app"),
            ("warn,my_app=4", "warn,my_app=4"),
        ] {
            let (c, errors) = config(&[("RUST_LOG", given)]);
            assert!(errors.is_empty(), "{given}: {errors:?}");
            assert_eq!(c.log_filter, kept);
        }
        for bad in [
            ",",
            "my_app=loud",
            "a=b=c",
            "my_app[{x}]=info",
            "my app=info",
        ] {
            let (c, errors) = config(&[("RUST_LOG", bad)]);
            assert_eq!(errors.len(), 1, "{bad}");
            assert_eq!(c.log_filter, "info", "{bad}");
        }
        let (c, errors) = config(&[
            ("RUST_LOG", "debug"),
            ("COLDSTART_LOG_FILTER", "my_crate=loud"),
        ]);
        assert_eq!(errors[0].key, "COLDSTART_LOG_FILTER");
        assert_eq!(c.log_filter, "debug", "the next source is used");
        // And said to be: the line said the default was, while `RUST_LOG` was.
        assert!(
            errors[0].to_string().contains("RUST_LOG is used instead"),
            "{}",
            errors[0]
        );
        let (c, errors) = config(&[("COLDSTART_LOG_FORMAT", "json")]);
        if cfg!(feature = "logs") {
            assert!(errors.is_empty(), "{errors:?}");
            assert_eq!(c.log_format, LogFormat::Json);
        } else {
            assert!(errors[0].accepts.contains("`logs` feature"), "{errors:?}");
        }
    }

    #[test]
    fn a_query_on_the_general_endpoint_stays_after_the_signal_path() {
        let (c, errors) = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/base/?x=1")]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            c.otlp_endpoint.as_deref(),
            Some("http://c:4318/base/v1/traces?x=1")
        );
    }

    #[test]
    fn a_bad_signal_setting_names_the_general_one_used_instead() {
        let (c, errors) = config(&[
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "soon"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
        ]);
        assert_eq!(c.otlp_timeout, Duration::from_secs(2));
        assert_eq!(c.otlp_endpoint.as_deref(), Some("http://c:4318/v1/traces"));
        let said: Vec<_> = errors.iter().map(|e| (e.key, e.instead)).collect();
        assert_eq!(
            said,
            [
                (
                    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                    "OTEL_EXPORTER_OTLP_TIMEOUT is used instead"
                ),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "OTEL_EXPORTER_OTLP_ENDPOINT is used instead"
                ),
            ]
        );
        // Without a usable general setting, the default is what is used.
        let (_, errors) = config(&[("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd")]);
        assert_eq!(errors[0].instead, USING_THE_DEFAULT);
        let (_, errors) = config(&[
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "0"),
        ]);
        assert_eq!(errors[0].instead, USING_THE_DEFAULT);
        assert_eq!(errors.len(), 2, "{errors:?}");
    }

    #[test]
    fn a_timeout_of_zero_is_refused_since_every_export_would_fail() {
        let (c, errors) = config(&[
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "0"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "0"),
        ]);
        assert_eq!(c.otlp_timeout, Duration::from_secs(10));
        assert_eq!(c.queue.export_timeout, Queue::default().export_timeout);
        let keys: Vec<_> = errors.iter().map(|e| (e.key, e.accepts)).collect();
        assert_eq!(
            keys,
            [
                ("OTEL_BSP_EXPORT_TIMEOUT", TIMEOUT),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", TIMEOUT)
            ]
        );
    }

    #[test]
    fn a_batch_larger_than_the_queue_is_said_and_the_queue_size_used() {
        let (c, errors) = config(&[("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096")]);
        assert_eq!(c.queue.batch, c.queue.max_spans);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].key, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE");
        assert_eq!(errors[0].value, "4096");
        let (c, errors) = config(&[
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "8192"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.queue.batch, 4096);
    }

    #[test]
    fn a_percent_escape_is_two_hex_digits_and_nothing_else() {
        assert_eq!(percent_decode("a%41b").as_deref(), Some("aAb"));
        assert_eq!(percent_decode("%+41"), None);
        assert_eq!(percent_decode("%4"), None);
    }

    #[test]
    fn names_of_values_are_read_in_any_case() {
        let (c, errors) = config(&[
            ("OTEL_TRACES_SAMPLER", "ALWAYS_OFF"),
            ("OTEL_PROPAGATORS", "TraceContext"),
            ("OTEL_TRACES_EXPORTER", "None"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "HTTP/Protobuf"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.sampler, Sampler::AlwaysOff);
        assert!(c.trace_context && !c.baggage);
        assert!(!c.export_traces);
        assert_eq!(c.protocol, Protocol::HttpProtobuf);
    }
}
