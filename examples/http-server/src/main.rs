//! The example service on `#[coldstart::main]`: the one-line change from
//! `#[tokio::main]`. Prints where it listens and the plan coldstart chose; set
//! `COLDSTART_LOG=debug` for the whole budget, plan and start-up timeline.
//!
//! Its start-up work is registered with `#[coldstart::init]`: a config every request
//! reads, and a cache warm-up and a client pool the first request does not need. The
//! embedded profile (`coldstart.profile`, recorded by running this service with
//! `COLDSTART_PROFILE_OUT`) puts the last two after the first response. The
//! `FirstResponseLayer` marks that moment when the first body has been sent; deferred
//! work, including installing the shutdown hook, waits for it.
//!
//! Telemetry is on (features `metrics` and `tracing`): `HttpTelemetryLayer` records
//! each request's metrics and server span from the first request on; the `/metrics`
//! listener (`COLDSTART_METRICS_ADDR`, default `127.0.0.1:9464`) and the OTLP
//! exporter (`OTEL_EXPORTER_OTLP_ENDPOINT`, default `http://localhost:4318`) start
//! after the first response. `OTEL_TRACES_EXPORTER=none` turns span export off;
//! `OTEL_SDK_DISABLED=true` turns tracing off.
//! At SIGTERM or SIGINT after the first response it drains: no new connection, every
//! request already read is answered, and then the telemetry is flushed
//! (`coldstart::draining()`). Before the first response, with no shutdown hook yet, a
//! signal has its default effect, as under `#[tokio::main]`.
//! With feature `logs`, `RUST_LOG=debug COLDSTART_LOG_FORMAT=json` prints a JSON line
//! per request with its `trace_id` and `span_id`.

use std::time::Duration;

use coldstart::FirstResponseLayer;
use coldstart::telemetry::HttpTelemetryLayer;
use tower_layer::Stack;

/// What every request needs.
struct Config {
    greeting: String,
}

#[coldstart::init]
static CONFIG: Config = Config {
    greeting: std::env::var("GREETING").map_or_else(|_| "hello\n".to_string(), |g| g + "\n"),
};

/// Stands in for filling a cache from a remote store (I/O-bound, 40 ms). A function
/// has no reads to profile, so it declares its phase.
#[coldstart::init(deferred)]
async fn warm_cache() {
    tokio::time::sleep(Duration::from_millis(40)).await;
}

/// Stands in for a pool of connections to a backend the first request does not call
/// (blocking connects, 25 ms).
#[coldstart::init]
static CLIENT_POOL: Vec<String> = {
    std::thread::sleep(Duration::from_millis(25));
    (0..4).map(|i| format!("backend-{i}")).collect()
};

/// The answer. With feature `logs` and `RUST_LOG=debug`, a `tracing` span (exported
/// as a child of the server span) and a log line carrying the trace and span ids.
fn greeting() -> &'static str {
    #[cfg(feature = "logs")]
    let _span = tracing::debug_span!("greeting").entered();
    #[cfg(feature = "logs")]
    tracing::debug!(greeting_bytes = CONFIG.greeting.len(), "answering");
    &CONFIG.greeting
}

#[coldstart::main(profile = "coldstart.profile")]
async fn main() -> anyhow::Result<()> {
    let (listener, addr) = http_server::bind().await?;
    if let Some(plan) = coldstart::plan() {
        http_server::say!(
            "http-server: listening on http://{addr}; plan {} ({}), {} with {} worker thread(s)",
            plan.strategy.value,
            plan.strategy.reason,
            plan.flavor.value,
            plan.worker_threads.value
        );
    }
    coldstart::after_first_request(async {
        coldstart::on_shutdown("goodbye", Duration::from_secs(2), || async {
            http_server::say!("http-server: shutdown hook ran");
        });
        // The fallback timer starts it too when nothing asks the service anything.
        let after = match coldstart::trigger() {
            Some(coldstart::Trigger::Fallback) => "the fallback timer (no request yet)",
            _ => "the first response",
        };
        http_server::say!("http-server: deferred work started after {after}");
        // Once the listener is bound (coldstart says why where it could not be).
        match coldstart::telemetry::serving_on().await {
            Some(addr) => {
                let tls =
                    coldstart::telemetry::installed().is_some_and(|c| c.metrics_tls.is_some());
                let scheme = if tls { "https" } else { "http" };
                http_server::say!("http-server: metrics on {scheme}://{addr}/metrics");
            }
            None => http_server::say!("http-server: /metrics is not served"),
        }
    });
    // Every path answers the same greeting: one route, `/`.
    let telemetry = HttpTelemetryLayer::new().route(|_path| Some("/"));
    // Outermost last: the first response is marked done after its telemetry is recorded.
    let layers = Stack::new(telemetry, FirstResponseLayer::new());
    // At SIGTERM or SIGINT: stop accepting, answer what was read, then return; the
    // span flush and the final metrics push run after that.
    http_server::serve(listener, layers, greeting, coldstart::draining()).await?;
    Ok(())
}
