/*!
The `tracing` crate, bridged (feature `logs`): `tracing` spans become OpenTelemetry
spans of the installed tracer provider (so they wait in the same queue and are
exported after the first response), and events become log lines on stdout, as text
or as JSON, carrying the `trace_id` and `span_id` of the OpenTelemetry span current
when they were emitted: the HTTP layer's server span, or a `tracing` span inside it.

Installed at start-up as the global `tracing` subscriber: a registry, the
tracing-opentelemetry layer and a line writer, both filtered by
`COLDSTART_LOG_FILTER` (else `RUST_LOG`, also when `RUST_LOG` is set in a layer
above it, as an environment variable is above the configuration file; `info` by
default). Records of the `log` crate (a program's `log::info!`, crates that log
through `log`) become events too, under their own targets: coldstart installs the
`log` logger with the subscriber. Nothing here starts a
thread or opens a file. If the program already installed a subscriber, that one is
kept and this is reported once.

A program that installs a `log` logger of its own in its body must use the
logger's fallible set-up (`env_logger::try_init()`): `init()` panics where a logger
is set already. With `COLDSTART_LOG_FORMAT=off` coldstart installs neither.
*/

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::TraceContextExt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{FilterExt, Targets, filter_fn};
use tracing_subscriber::layer::{Context, SubscriberExt};

use crate::config::{Config, LogFormat};
use crate::problem;

/// Installs the subscriber, unless logs are off or one is installed already.
pub(crate) fn install(config: &Config) {
    let json = match config.log_format {
        LogFormat::Off => return,
        LogFormat::Text => false,
        LogFormat::Json => true,
    };
    // The configuration checked the directives; the default keeps lines flowing if
    // the two parsers ever disagree.
    let filter: Targets = config
        .log_filter
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO));
    // The exporters' own clients never become spans: each would need exporting in
    // turn. (Their spans run in tasks the suppressed export context does not reach.)
    // Matched by module path: a target directive matches any name it begins, and
    // `tower` would also have turned off `tower_http`, the program's own trace layer.
    // The module check lets through any level: it gives the most verbose as its hint,
    // so that the levels the subscriber asks for are `filter`'s (without a hint the
    // whole subscriber's is every level, `log`'s maximum too).
    let span_filter = filter.clone().and(
        filter_fn(|meta| !kept_from_spans(meta.target()))
            .with_max_level_hint(tracing::level_filters::LevelFilter::TRACE),
    );
    let spans = crate::trace::tracer().map(|tracer| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer.clone())
            .with_filter(span_filter)
    });
    let subscriber = tracing_subscriber::registry()
        .with(spans)
        .with(Lines { json }.with_filter(filter));
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        problem::report("logs-subscriber", || {
            "logs: the program installed its own tracing subscriber; coldstart's log lines and span bridge are off (COLDSTART_LOG_FORMAT=off says so quietly)".to_owned()
        });
        return;
    }
    // `log` records up to the most verbose level the filter lets through: `log`
    // checks its own maximum before anything else, so what no filter takes costs one
    // comparison. A logger set already (before `main`) is kept.
    let most = tracing_log::AsLog::as_log(&tracing::level_filters::LevelFilter::current());
    let _ = tracing_log::LogTracer::builder()
        .with_max_level(most)
        .init();
}

/// The crates the OTLP exporter and `/metrics` run on.
const EXPORT_CLIENTS: [&str; 8] = [
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
    "rustls",
    "opentelemetry",
    "opentelemetry_sdk",
];

/// The crates whose spans coldstart already makes as its own: `lambda_runtime`'s
/// `Lambda runtime invoke`, around each invocation, is the Lambda integration's
/// invocation span again (it is there for a program's own subscriber, whose log lines
/// it gives the request id).
const SPANS_MADE_ALREADY: [&str; 1] = ["lambda_runtime"];

/// Whether `target` is one of [`EXPORT_CLIENTS`] or [`SPANS_MADE_ALREADY`], or a
/// module of one: its spans do not become OpenTelemetry spans.
fn kept_from_spans(target: &str) -> bool {
    EXPORT_CLIENTS
        .iter()
        .chain(&SPANS_MADE_ALREADY)
        .any(|client| {
            target
                .strip_prefix(client)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
}

/// Writes each event as one line on stdout.
struct Lines {
    json: bool,
}

impl<S: Subscriber> Layer<S> for Lines {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let line = self.line(event);
        // One write per line, so lines from several threads never interleave; a
        // closed stdout loses the line, never the request.
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }
}

impl Lines {
    /// The event's line, ending in its only line break: what the program logged
    /// cannot start a line of its own (a forged event, without trace ids).
    fn line(&self, event: &Event<'_>) -> String {
        let mut line = String::with_capacity(256);
        // A `log` record's own target and level, not the bridge's (`log`).
        let normalized = tracing_log::NormalizeEvent::normalized_metadata(event);
        let from_log = normalized.is_some();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        let ids = Some(span.span_context()).filter(|c| c.is_valid());
        let now = timestamp(SystemTime::now());
        if self.json {
            line.push_str("{\"timestamp\":\"");
            line.push_str(&now);
            line.push_str("\",\"level\":\"");
            line.push_str(meta.level().as_str());
            line.push_str("\",\"target\":");
            json_string(&mut line, meta.target());
            event.record(&mut JsonFields(&mut line, from_log));
            if let Some(ids) = ids {
                let _ = write!(
                    line,
                    ",\"trace_id\":\"{}\",\"span_id\":\"{}\"",
                    ids.trace_id(),
                    ids.span_id()
                );
            }
            line.push('}');
        } else {
            let _ = write!(line, "{now} {:>5} {}:", meta.level(), meta.target());
            event.record(&mut TextFields(&mut line, from_log));
            if let Some(ids) = ids {
                let _ = write!(
                    line,
                    " trace_id={} span_id={}",
                    ids.trace_id(),
                    ids.span_id()
                );
            }
        }
        line.push('\n');
        line
    }
}

/// The names the JSON line gives its own members: a field of the event named like one
/// goes as `fields.<name>`, so that none of them is there twice.
const JSON_OWN: [&str; 5] = ["timestamp", "level", "target", "trace_id", "span_id"];

/// The fields the `log` bridge adds to a record's event: where it was logged, which
/// the line does not show for `tracing` events either (the target is shown).
const LOG_BRIDGE_FIELDS: [&str; 4] = ["log.target", "log.module_path", "log.file", "log.line"];

/// `,"name":value` for each field; the message is `"message"`. The second member:
/// the event is a `log` record's, whose bridge fields are left out.
struct JsonFields<'a>(&'a mut String, bool);

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.key(field) {
            return;
        }
        json_string(self.0, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if !self.key(field) {
            return;
        }
        let _ = write!(self.0, "{value}");
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if !self.key(field) {
            return;
        }
        let _ = write!(self.0, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if !self.key(field) {
            return;
        }
        let _ = write!(self.0, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if !self.key(field) {
            return;
        }
        if value.is_finite() {
            let _ = write!(self.0, "{value}");
        } else {
            json_string(self.0, &value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.key(field) {
            return;
        }
        json_string(self.0, &format!("{value:?}"));
    }
}

impl JsonFields<'_> {
    /// Writes the field's key; `false`, writing nothing, for a field left out.
    fn key(&mut self, field: &Field) -> bool {
        if self.1 && LOG_BRIDGE_FIELDS.contains(&field.name()) {
            return false;
        }
        self.0.push(',');
        match field.name() {
            name if JSON_OWN.contains(&name) => json_string(self.0, &format!("fields.{name}")),
            name => json_string(self.0, name),
        }
        self.0.push(':');
        true
    }
}

/// ` message key=value` for each field (the second member as [`JsonFields`]'s).
struct TextFields<'a>(&'a mut String, bool);

impl Visit for TextFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            // The message unquoted, as written; other strings quoted.
            "message" => self.record_debug(field, &format_args!("{value}")),
            _ => self.record_debug(field, &value),
        }
    }

    /// Line breaks, other control characters but tab, and Unicode's line separators
    /// are written escaped, as `\n` or `\u{2028}`: a value shown with `%` (its
    /// `Display`) or the message would otherwise write them as they are.
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if self.1 && LOG_BRIDGE_FIELDS.contains(&field.name()) {
            return;
        }
        match field.name() {
            "message" => self.0.push(' '),
            name => {
                let _ = write!(self.0, " {name}=");
            }
        }
        let _ = write!(Escaped(self.0), "{value:?}");
    }
}

/// Writes what it is given with line breaks and other control characters escaped.
struct Escaped<'a>(&'a mut String);

impl std::fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        for c in s.chars() {
            match c {
                '\n' => self.0.push_str("\\n"),
                '\r' => self.0.push_str("\\r"),
                '\t' => self.0.push('\t'),
                c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                    let _ = write!(self.0, "{}", c.escape_unicode());
                }
                c => self.0.push(c),
            }
        }
        Ok(())
    }
}

/// `s` as a JSON string, escaped.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Every control character, as the text format has them (DEL and the C1
            // controls, CSI among them, would reach a terminal that shows the line),
            // and Unicode's line breaks: some readers split lines at them.
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// RFC 3339 in UTC with microseconds: `2026-11-24T09:15:02.123456Z`.
fn timestamp(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_the_export_clients_and_their_modules_are_kept_from_spans() {
        for client in [
            "tower",
            "hyper::client::conn",
            "h2",
            "opentelemetry_sdk::trace",
            "lambda_runtime::layers::trace",
        ] {
            assert!(kept_from_spans(client), "{client}");
        }
        for other in [
            "tower_http::trace::on_response",
            "tonic_web",
            "h2o",
            "my_app",
            "towers",
            "lambda_runtime_api_clients",
        ] {
            assert!(!kept_from_spans(other), "{other}");
        }
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = |s: u64, us: u64| {
            timestamp(UNIX_EPOCH + Duration::from_secs(s) + Duration::from_micros(us))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        // 2000-02-29 (a leap day in a century leap year), then one in 2026.
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(at(1_795_000_000, 0), "2026-11-18T11:06:40.000000Z");
    }

    /// The lines `Lines` makes of the events `log` emits, as text and as JSON.
    fn lines_of(log: impl Fn()) -> (Vec<String>, Vec<String>) {
        use std::sync::{Arc, Mutex};
        struct Capture(Arc<Mutex<Vec<String>>>, Lines);
        impl<S: Subscriber> Layer<S> for Capture {
            fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
                self.0.lock().unwrap().push(self.1.line(event));
            }
        }
        let of = |json: bool| {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let subscriber =
                tracing_subscriber::registry().with(Capture(lines.clone(), Lines { json }));
            tracing::subscriber::with_default(subscriber, &log);
            lines.lock().unwrap().clone()
        };
        (of(false), of(true))
    }

    /// A `log` record at `level` under `target`, as the bridge hands it on.
    fn log_record(target: &'static str, level: log::Level, message: &str) {
        tracing_log::format_trace(
            &log::Record::builder()
                .args(format_args!("{message}"))
                .target(target)
                .level(level)
                .module_path_static(Some(target))
                .file_static(Some("src/db.rs"))
                .line(Some(7))
                .build(),
        )
        .unwrap();
    }

    /// A `log` record is a line under its own target and level, as a `tracing` event
    /// is, without the bridge's own fields (`log.file`, `log.line`...).
    #[test]
    fn a_log_record_is_a_line_under_its_own_target() {
        let (text, json) = lines_of(|| log_record("app::db", log::Level::Warn, "pool ready"));
        assert!(
            text[0].ends_with("  WARN app::db: pool ready\n"),
            "{}",
            text[0]
        );
        let parsed: serde_json::Value = serde_json::from_str(&json[0]).unwrap();
        assert_eq!(
            (&parsed["level"], &parsed["target"], &parsed["message"]),
            (
                &serde_json::json!("WARN"),
                &serde_json::json!("app::db"),
                &serde_json::json!("pool ready")
            ),
            "{}",
            json[0]
        );
        assert!(!json[0].contains("log."), "{}", json[0]);
    }

    /// The filter's target directives apply to `log` records by their own targets.
    #[test]
    fn the_filter_applies_to_log_records_by_their_targets() {
        use std::sync::{Arc, Mutex};
        struct Capture(Arc<Mutex<Vec<String>>>);
        impl<S: Subscriber> Layer<S> for Capture {
            fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
                self.0
                    .lock()
                    .unwrap()
                    .push(Lines { json: false }.line(event));
            }
        }
        let lines = Arc::new(Mutex::new(Vec::new()));
        let filter: Targets = "info,app::db=debug".parse().unwrap();
        let subscriber =
            tracing_subscriber::registry().with(Capture(lines.clone()).with_filter(filter));
        tracing::subscriber::with_default(subscriber, || {
            log_record("app::db", log::Level::Debug, "kept");
            log_record("app::web", log::Level::Debug, "left out");
            log_record("app::web", log::Level::Info, "kept too");
        });
        let lines = lines.lock().unwrap().clone();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].ends_with(" DEBUG app::db: kept\n"), "{lines:?}");
        assert!(
            lines[1].ends_with("  INFO app::web: kept too\n"),
            "{lines:?}"
        );
    }

    /// Whatever the program logs, an event is one line: its message and its values
    /// shown with `%` cannot break it, and a field named like one of the JSON line's
    /// own members does not repeat that name.
    #[test]
    fn an_event_is_one_line_and_its_fields_do_not_repeat_a_name() {
        let forged = "x\n2026-01-01T00:00:00.000000Z  INFO app: admin login ok\u{2028}y";
        let (text, json) = lines_of(|| {
            tracing::info!(shown = %forged, quoted = forged, trace_id = "upstream", "body: {forged}");
        });
        for line in text.iter().chain(&json) {
            assert_eq!(line.matches('\n').count(), 1, "{line}");
            assert!(line.ends_with('\n'), "{line}");
            assert!(!line.contains('\u{2028}'), "{line}");
        }
        assert!(
            text[0].contains(" body: x\\n2026-01-01T00:00:00.000000Z  INFO app: admin login ok\\u{2028}y shown=x\\n"),
            "{}",
            text[0]
        );
        let parsed: serde_json::Value = serde_json::from_str(&json[0]).unwrap();
        assert_eq!(parsed["fields.trace_id"], "upstream", "{}", json[0]);
        assert!(
            parsed.get("trace_id").is_none(),
            "no span here: {}",
            json[0]
        );
        assert_eq!(json[0].matches("\"level\"").count(), 1);
    }

    /// The filter the configuration keeps is one the subscriber reads as it was
    /// meant: the level of every directive, and no directive lost or added.
    #[test]
    fn a_filter_the_configuration_takes_means_what_it_says() {
        use tracing::Level;
        let read = |given: &str| {
            let env = coldstart_bootstrap::Env::fixed([("RUST_LOG", given)]);
            let (config, errors) = Config::from(&env);
            assert!(errors.is_empty(), "{given}: {errors:?}");
            config
                .log_filter
                .parse::<Targets>()
                .unwrap_or_else(|e| panic!("{given}: {e}"))
        };
        let trailing = read("info,");
        assert!(trailing.would_enable("other", &Level::INFO), "not `error`");
        let spaced = read("info, my_app = debug");
        assert!(spaced.would_enable("my_app::db", &Level::DEBUG));
        assert!(!spaced.would_enable("other", &Level::DEBUG));
        let bare = read("warn,my_app");
        assert!(bare.would_enable("my_app", &Level::TRACE));
        assert!(!bare.would_enable("other", &Level::INFO));
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut out = String::new();
        json_string(
            &mut out,
            "a \"quote\"\n\\ and \u{1}\u{2028}\u{7f}\u{85}\u{9b}",
        );
        assert_eq!(
            out,
            r#""a \"quote\"\n\\ and \u0001\u2028\u007f\u0085\u009b""#
        );
    }
}
