//! Plugins registered at link time and in code see every span, metric value and
//! problem, in priority order. One test: the plugins and telemetry are global.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::sync::Mutex;
use std::time::{Duration, Instant};

use coldstart_bootstrap::{Env, Settings};
use coldstart_exporters::config::Config;
use coldstart_exporters::plugin::{self, Plugin, Recorded, Reported};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::SpanData;

static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Witness(&'static str);

impl Witness {
    fn saw(&self, what: String) {
        SEEN.lock().unwrap().push(format!("{} {what}", self.0));
    }
}

impl Plugin for Witness {
    fn name(&self) -> &str {
        self.0
    }
    fn on_span_end(&self, span: &SpanData) {
        // A span a hook makes while telemetry is not suppressed would be exported and
        // come back to the hook at the next flush.
        let suppressed = opentelemetry::Context::is_current_telemetry_suppressed();
        let unsuppressed = if suppressed {
            ""
        } else {
            " (telemetry not suppressed)"
        };
        self.saw(format!("span {}{unsuppressed}", span.name));
    }
    fn on_metric(&self, metric: &Recorded<'_>) {
        if metric.key.name().starts_with("plugin_test_") {
            self.saw(format!("metric {:?}", metric.value));
        }
    }
    fn on_error(&self, error: &Reported<'_>) {
        self.saw(format!("error {}", error.kind));
    }
}

/// Panics at the metric `plugin_test_panic_total`; counts the hooks it sees after.
struct Panics(std::sync::atomic::AtomicUsize);

impl Plugin for Panics {
    fn name(&self) -> &str {
        "panics"
    }
    fn on_metric(&self, metric: &Recorded<'_>) {
        assert_ne!(
            metric.key.name(),
            "plugin_test_panic_total",
            "a plugin's bug"
        );
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Keeps a count of the test's metrics it sees in a metric of its own: what it records
/// in its hook must not come back to it (it did, until the stack overflowed).
struct Counts;

impl Plugin for Counts {
    fn name(&self) -> &str {
        "counts"
    }
    fn on_metric(&self, metric: &Recorded<'_>) {
        if metric.key.name().starts_with("plugin_test_") {
            metrics::counter!("plugin_test_seen_total").increment(1);
        }
    }
}

coldstart_exporters::plugin!(COUNTS: Counts = Counts, priority = 30);
coldstart_exporters::plugin!(LATE: Witness = Witness("late"), priority = 20);
coldstart_exporters::plugin!(PANICS: Panics = Panics(std::sync::atomic::AtomicUsize::new(0)), priority = 10);
coldstart_exporters::plugin!(EARLY: Witness = Witness("early"), priority = -5);

fn seen(what: &str) -> Vec<String> {
    let seen = SEEN.lock().unwrap();
    seen.iter()
        .filter(|s| s.ends_with(what))
        .map(|s| s.split(' ').next().unwrap().to_owned())
        .collect()
}

#[test]
fn hooks_run_in_priority_order_for_spans_metrics_and_problems() {
    plugin::add(0, Box::new(Witness("code"))).unwrap();
    let env = Env::fixed([
        // Nothing listens on the discard port: the export fails and is reported.
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
        ("COLDSTART_METRICS_ADDR", "off"),
        ("OTEL_BSP_SCHEDULE_DELAY", "10"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000"),
    ]);
    let (config, errors) = Config::from(&env);
    assert!(errors.is_empty(), "{errors:?}");
    let telemetry = coldstart_exporters::install_with(config, None);
    let all: Vec<_> = plugin::order().iter().map(|p| p.name()).collect();
    assert_eq!(all, ["early", "code", "panics", "late", "counts"]);
    let order = ["early", "code", "late"];
    let late = plugin::add(1, Box::new(Witness("too-late"))).unwrap_err();
    assert!(
        late.to_string().contains("`too-late` was added after"),
        "{late}"
    );

    metrics::counter!("plugin_test_total").increment(2);
    assert_eq!(
        seen("metric Increment(2)"),
        order,
        "on the recording thread"
    );
    // A plugin that panics is said once and turned off; the request that recorded
    // goes on, and the plugins after it still run.
    metrics::counter!("plugin_test_panic_total").increment(1);
    assert_eq!(seen("metric Increment(1)"), order);
    assert_eq!(seen("error plugin-panic"), order);
    let before = PANICS.0.load(std::sync::atomic::Ordering::SeqCst);
    metrics::counter!("plugin_test_total").increment(3);
    assert_eq!(seen("metric Increment(3)"), order);
    assert_eq!(
        PANICS.0.load(std::sync::atomic::Ordering::SeqCst),
        before,
        "not run again"
    );
    // The three records above, counted by a hook whose own count reached no hook.
    let text = coldstart_exporters::metrics::render();
    assert!(text.contains("\nplugin_test_seen_total 3\n"), "{text}");
    let tracer = opentelemetry::global::tracer_provider().tracer("plugin-test");
    tracer.start("work").end();
    assert!(
        seen("span work").is_empty(),
        "spans are seen when exported, not on end"
    );

    coldstart_runtime::block_on(&Settings::NONE, async move {
        telemetry.start_after_first_response();
        coldstart_runtime::first_request_done();
        let deadline = Instant::now() + Duration::from_secs(15);
        while seen("error span-export").len() < 3 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert_eq!(seen("span work"), order, "{:?}", SEEN.lock().unwrap());
    assert_eq!(seen("error span-export"), order);
}
