/*!
Observability that costs nothing at cold start: Prometheus metrics and OpenTelemetry
tracing whose recording is in place from the first instruction and whose exporting
starts after the first response.

At start-up ([`install`], which `#[coldstart::main]` calls when the `metrics` or
`tracing` feature is on) only in-memory parts are built: the `metrics` recorder and
coldstart's tracer provider ([`trace::tracer()`]) with its span queue. No thread, no
socket, no file. After the
first response (or the fallback timer), [`Telemetry::start_after_first_response`]
starts the `/metrics` listener, Pushgateway pushes and the OTLP exporter on the
program's runtime; the final push and span flush run at shutdown.

A telemetry problem (a bad setting, a collector that is down or never answers, a
port that is taken) never stops or slows the service: it is printed once a minute at
most, and what was dropped is counted in `coldstart_telemetry_dropped_total`.
*/
#![warn(missing_docs, unreachable_pub)]

#[cfg(feature = "metrics")]
mod base64;
#[cfg(feature = "tracing")]
#[doc(hidden)]
pub mod bench;
#[cfg(any(feature = "metrics", feature = "tracing"))]
mod client;
pub mod config;
#[cfg(all(fuzzing, feature = "metrics", feature = "tracing"))]
#[doc(hidden)]
pub mod fuzz;
pub mod http;
#[cfg(feature = "logs")]
mod logs;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod plugin;
pub mod problem;
#[cfg(all(feature = "tls", any(feature = "metrics", feature = "tracing")))]
mod tls;
#[cfg(feature = "tracing")]
pub mod trace;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

pub use config::{Config, ConfigError};

/// The settings of the installed telemetry; the first installation wins.
static INSTALLED: OnceLock<Config> = OnceLock::new();

/// The settings telemetry was installed with; `None` before [`install`].
pub fn installed() -> Option<&'static Config> {
    INSTALLED.get()
}

/// The installed telemetry; `None` before [`install`].
pub fn telemetry() -> Option<Telemetry> {
    installed().map(|config| Telemetry { config })
}

/// The installed telemetry, waiting to start its exporters.
#[derive(Debug, Clone, Copy)]
pub struct Telemetry {
    config: &'static Config,
}

/// Installs the metrics recorder and the tracer provider (whichever features are
/// on), configured from `env` (the file, code and environment layers). Cheap:
/// nothing is started. Bad settings are printed, one line each, and their defaults
/// used.
///
/// `service_version` becomes the `service.version` resource attribute.
pub fn install(env: &coldstart_bootstrap::Env, service_version: Option<&'static str>) -> Telemetry {
    install_adjusted(env, service_version, |_| {})
}

/// [`install`], with `adjust` applied to the settings after they are read and before
/// they are installed: what a platform integration (Lambda) uses to change defaults.
pub fn install_adjusted(
    env: &coldstart_bootstrap::Env,
    service_version: Option<&'static str>,
    adjust: impl FnOnce(&mut Config),
) -> Telemetry {
    let (mut config, errors) = Config::from(env);
    for e in errors {
        coldstart_bootstrap::say!("coldstart: {e}");
    }
    adjust(&mut config);
    install_with(config, service_version)
}

/// [`install`] with the settings given. Installing again keeps the first settings.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub fn install_with(config: Config, service_version: Option<&'static str>) -> Telemetry {
    let config = INSTALLED.get_or_init(|| {
        let mut config = config;
        for mended in config.mend_code_values() {
            coldstart_bootstrap::say!("coldstart: {mended}");
        }
        config
    });
    plugin::install();
    #[cfg(feature = "metrics")]
    metrics::install();
    #[cfg(feature = "tracing")]
    if config.traces {
        trace::install(config, service_version);
    }
    #[cfg(feature = "logs")]
    logs::install(config);
    Telemetry { config }
}

/// How long a final flush given `within` may export: what is left once it keeps
/// 100 ms, or a quarter of a shorter time, to count and say what it could not send
/// before it is cut at `within`, or at the shutdown hooks' cap where that is shorter
/// ([`coldstart_runtime::lifecycle::cap_hook_deadlines`]: on Lambda 400 ms, or 250 ms
/// without coldstart's extension).
///
/// ```
/// use std::time::Duration;
/// let ms = Duration::from_millis;
/// assert_eq!(coldstart_exporters::final_flush_budget(ms(10_000)), ms(9_900));
/// assert_eq!(coldstart_exporters::final_flush_budget(ms(400)), ms(300));
/// assert_eq!(coldstart_exporters::final_flush_budget(ms(80)), ms(60));
/// ```
pub fn final_flush_budget(within: std::time::Duration) -> std::time::Duration {
    let within = within.min(coldstart_runtime::lifecycle::hook_cap());
    within - std::time::Duration::from_millis(100).min(within / 4)
}

/// Set by whichever starts the exporters first: the work after the first response,
/// or the end of `main` when it comes first ([`Telemetry::end_of_main`]).
static EXPORTERS_STARTED: AtomicBool = AtomicBool::new(false);

/// The signal hold of [`Telemetry::start_after_first_response`], until the final
/// flush is registered: released by whichever comes first, the exporters' start or
/// the end of `main`, and only once.
static SIGNAL_HOLD: std::sync::Mutex<Option<coldstart_runtime::lifecycle::SignalHold>> =
    std::sync::Mutex::new(None);

/// [`SIGNAL_HOLD`], locked.
fn signal_hold() -> std::sync::MutexGuard<'static, Option<coldstart_runtime::lifecycle::SignalHold>>
{
    SIGNAL_HOLD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Ends the exporters' signal hold, if it is still held (the lock let go first).
fn release_signal_hold() {
    let hold = signal_hold().take();
    drop(hold);
}

/// Calls [`release_signal_hold`] when dropped, also if starting panics.
struct ReleaseHeldSignals;

impl Drop for ReleaseHeldSignals {
    fn drop(&mut self) {
        release_signal_hold();
    }
}

impl Telemetry {
    /// The settings in use.
    pub fn config(&self) -> &'static Config {
        self.config
    }

    /// Starts the exporters once the first response is done (or the fallback timer
    /// fires). Must be called inside the runtime.
    pub fn start_after_first_response(&self) {
        let config = self.config;
        // A job that pushes is stopped by a signal with its last push made, also
        // before its exporters start: the push's hook is registered now.
        #[cfg(feature = "metrics")]
        metrics::push_at_shutdown(config);
        // The final span flush is registered as the exporters start; a SIGTERM
        // between the first response and then must wait for it.
        #[cfg(feature = "tracing")]
        let flushes = trace::keeps_spans(config);
        #[cfg(not(feature = "tracing"))]
        let flushes = false;
        if flushes {
            *signal_hold() = Some(coldstart_runtime::lifecycle::hold_signals_until_hooks());
        }
        coldstart_runtime::after_first_request(async move {
            // Released when the hooks are registered, and also if starting panics.
            let _release = flushes.then_some(ReleaseHeldSignals);
            let first = !EXPORTERS_STARTED.swap(true, Ordering::AcqRel);
            #[cfg(feature = "metrics")]
            if first {
                metrics::start(config).await;
            }
            #[cfg(feature = "tracing")]
            if first && config.traces {
                trace::start_soon(config).await;
            }
            let _ = (first, config);
        });
    }

    /// For a program whose `main` ends before its first response (a job that serves
    /// nothing and ends before the fallback timer): its exporters never started, and
    /// what it recorded would be lost. This registers their final work (the span
    /// flush, the last Pushgateway push) for the shutdown hooks that run next; the
    /// `/metrics` listener is not started. Does nothing once the exporters have
    /// started. `#[coldstart::main]` has the runtime call it when the body has ended
    /// (returned, panicked or stopped by a signal), before the shutdown hooks run.
    /// Must be called inside the runtime.
    pub fn end_of_main(&self) {
        if EXPORTERS_STARTED.swap(true, Ordering::AcqRel) {
            return;
        }
        let config = self.config;
        #[cfg(feature = "metrics")]
        metrics::at_end_of_main(config);
        #[cfg(feature = "tracing")]
        if config.traces {
            trace::start(config);
        }
        let _ = config;
        release_signal_hold();
    }

    /// The name of a metric the program recorded that nothing will export: no
    /// `/metrics` listener is configured and no Pushgateway push (on AWS Lambda, where
    /// the integration turns the listener off, unless `COLDSTART_METRICS_PUSH_URL` or
    /// `COLDSTART_METRICS_ADDR` is set). `None` when either is configured, while
    /// nothing is recorded, and without the `metrics` feature.
    pub fn unexported_metric(&self) -> Option<String> {
        #[cfg(feature = "metrics")]
        if self.config.metrics_addr.is_none() && self.config.push.is_none() {
            return metrics::any_recorded();
        }
        None
    }

    /// Exports every span queued now, within `budget`, starting the exporter first if
    /// the first response has not started it yet, and pushes the metrics to the
    /// Pushgateway alongside once the first response is done (starting the pushes if
    /// the exporters' start has not run yet); returns how many spans were not
    /// exported within it: those left queued (they go with the next export) and those
    /// of a batch an earlier export still has out (counted as dropped if that export
    /// fails). What the Lambda integration calls after
    /// each invocation's response, before asking for the next one. Must be called
    /// inside the runtime.
    ///
    /// Meant for a process that may be frozen or ended after it: from the first call
    /// on, the exporter no longer waits out its own retry backoff, for this flush and
    /// for every later export (a failure is retried only after a wait the collector
    /// asked for). A long-running server should let the scheduled export run instead.
    pub async fn flush(&self, budget: std::time::Duration) -> usize {
        let spans = async {
            #[cfg(feature = "tracing")]
            if self.config.traces {
                return trace::flush(self.config, budget).await;
            }
            0
        };
        let pushed = async {
            #[cfg(feature = "metrics")]
            metrics::push_within(budget).await;
        };
        let (left, ()) = tokio::join!(spans, pushed);
        let _ = budget;
        left
    }
}

/// `work`'s output, unless `deadline` (none: no deadline) passes first: the span
/// flush's wait for the exporter and the flush's push keep to one budget.
#[cfg(any(feature = "metrics", feature = "tracing"))]
pub(crate) async fn until<T>(
    deadline: Option<tokio::time::Instant>,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, work).await.ok(),
        None => Some(work.await),
    }
}
