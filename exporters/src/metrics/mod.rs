/*!
Prometheus metrics that cost nothing at cold start.

`install` puts a `metrics` recorder in place at start-up: no thread, no socket, no
runtime, so what the program records from its first instruction is kept. The
`/metrics` listener and Pushgateway pushes start after the
first response (`start`). Process, tokio and coldstart metrics, and the
[`register_collector`] callbacks, are sampled when a scrape or push renders; nothing
about them is recorded on a request's path.
*/

mod coldstart;
mod listener;
pub(crate) mod process;
mod push;
mod registry;
mod text;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hyper::body::Bytes;

use crate::config::Config;
use crate::problem;

/// The HTTP layer's metric names: recorded by its handles, described here, and kept
/// by the registry past its limit on names.
pub(crate) const HTTP_REQUESTS: &str = "http_requests_total";
/// See [`HTTP_REQUESTS`].
pub(crate) const HTTP_DURATION: &str = "http_request_duration_seconds";
/// See [`HTTP_REQUESTS`].
pub(crate) const HTTP_IN_FLIGHT: &str = "http_requests_in_flight";

/// The Content-Type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Buckets of `http_request_duration_seconds`: 100 us to 10 s.
pub const HTTP_DURATION_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

static REGISTRY: registry::Registry = registry::Registry::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);

type Collector = Arc<dyn Fn() + Send + Sync>;
static COLLECTORS: Mutex<Vec<Collector>> = Mutex::new(Vec::new());

/// Whether coldstart's recorder is the global one.
pub(crate) fn installed() -> bool {
    INSTALLED.load(Ordering::Acquire)
}

/// Installs the recorder as the global `metrics` recorder. Returns `false`, after
/// saying why on stderr, when another recorder was installed first.
pub(crate) fn install() -> bool {
    if INSTALLED.load(Ordering::Acquire) {
        return true;
    }
    if metrics::set_global_recorder(registry::Installed(&REGISTRY)).is_err() {
        problem::report("metrics-recorder", || {
            "metrics: another metrics recorder was installed first; coldstart's metrics are off"
                .into()
        });
        return false;
    }
    INSTALLED.store(true, Ordering::Release);
    true
}

/// Registers `collect`, called each time metrics are rendered (a scrape or a push),
/// just before rendering: set gauges and counters from whatever it samples. It may
/// register further collectors (they run from the next rendering on); one that
/// panics is said once, leaves the rendering whole and is not run again (the panic
/// hook would print its panic at every scrape; with `panic = "abort"` the first
/// panic ends the process).
///
/// It runs on a thread of the program's runtime, as the scrape is answered: under
/// the current_thread scheduler (the plan's choice on one CPU or less) nothing else
/// runs meanwhile. Keep it to reading values; sample what blocks (a query, a file
/// read) on a task of its own and let the collector read the last sample.
///
/// ```
/// coldstart_exporters::metrics::register_collector(|| {
///     metrics::gauge!("queue_depth").set(3.0);
/// });
/// ```
pub fn register_collector(collect: impl Fn() + Send + Sync + 'static) {
    COLLECTORS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Arc::new(collect));
}

/// Sets the bucket bounds of the histograms named `name` (as recorded, before any
/// cleaning), for those recorded from now on; `+Inf` is added. Histograms without
/// buckets of their own get [`HTTP_DURATION_BUCKETS`], in seconds.
///
/// # Errors
///
/// Bounds that are empty, not finite or not increasing, and a name already recorded
/// (its histograms keep the buckets they were made with): the message says which.
///
/// ```
/// coldstart_exporters::metrics::set_buckets(
///     "payload_bytes",
///     &[256.0, 1024.0, 4096.0, 16384.0, 65536.0],
/// )
/// .unwrap();
/// metrics::histogram!("payload_bytes").record(5000.0);
/// ```
pub fn set_buckets(name: &str, bounds: &'static [f64]) -> Result<(), String> {
    REGISTRY.set_buckets(name, bounds)
}

/// Everything, in the text exposition format: the registry (after running the
/// collectors), then the process, tokio and coldstart families. Empty when the
/// recorder is not installed.
pub fn render() -> String {
    render_for(&[])
}

/// The name of a metric the program recorded, if it recorded any (see
/// [`crate::Telemetry::unexported_metric`]).
pub(crate) fn any_recorded() -> Option<String> {
    if !installed() {
        return None;
    }
    REGISTRY.any_name()
}

/// The size of the last rendering, scrape or push, in bytes.
static LAST_RENDERED: AtomicUsize = AtomicUsize::new(0);

/// Past this size the last rendering took about a millisecond, and the next one is
/// made on a thread of its own: on the runtime's thread it would hold requests for as
/// long (under `minimal`, all of them). `cargo bench -p coldstart-benches --bench
/// render`: 0.13 ms for 10 KB, 23 ms for 1.2 MB (20 000 counter series and 500
/// histograms; in a 0.25-CPU cgroup that is nearly a period's whole quota), and 33 µs
/// for a thread of its own, which a small rendering is not worth.
const OFF_THREAD_BYTES: usize = 64 << 10;

/// One large rendering at a time: many scrapers at once would each take a thread.
static RENDERING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// [`render_for`] for a scrape or a push. The collectors and coldstart's own families
/// are sampled here, on the runtime's thread (as [`register_collector`] says); the
/// registry's text is made on a thread of its own once the last rendering passed
/// [`OFF_THREAD_BYTES`] ([`coldstart_runtime::task::off_runtime`]), one at a time,
/// else here too.
pub(crate) async fn render_served(grouping: Vec<String>) -> String {
    if !INSTALLED.load(Ordering::Acquire) {
        return String::new();
    }
    let own = sampled();
    let render = move || {
        let grouping: Vec<&str> = grouping.iter().map(String::as_str).collect();
        rendered(&own, &grouping)
    };
    let body = if LAST_RENDERED.load(Ordering::Relaxed) > OFF_THREAD_BYTES {
        // Held by the thread: a caller that stops waiting (a client gone mid-scrape)
        // does not let another large rendering start beside this one.
        let turn = RENDERING.lock().await;
        coldstart_runtime::task::off_runtime("coldstart-metrics-render", move || {
            let _turn = turn;
            render()
        })
        .await
    } else {
        render()
    };
    LAST_RENDERED.store(body.len(), Ordering::Relaxed);
    body
}

/// The latest large rendering a scrape made, and when its sampling began; kept while
/// scrapes wait for it ([`Waiting`]).
static SCRAPE: tokio::sync::Mutex<Option<(Instant, Bytes)>> = tokio::sync::Mutex::const_new(None);

/// How many scrapes of a large registry are waiting for [`SCRAPE`] or rendering.
static SCRAPES_WAITING: AtomicUsize = AtomicUsize::new(0);

/// The text of a scrape of `/metrics` ([`render_served`]). Scrapes that come while a
/// large rendering is being made share the next one: each answer is still made after
/// its request came, but many scrapers at once cost two renderings, not one each,
/// and their connections hold one text between them, not one each (up to 64
/// connections, [`listener`]).
pub(crate) async fn scraped() -> Bytes {
    if LAST_RENDERED.load(Ordering::Relaxed) <= OFF_THREAD_BYTES {
        return Bytes::from(render_served(Vec::new()).await);
    }
    let asked = Instant::now();
    // Declared before the lock's guard, so dropped after it: see `Waiting`'s `drop`.
    let _waiting = Waiting::enter();
    let mut latest = SCRAPE.lock().await;
    if let Some((began, text)) = &*latest
        && *began >= asked
    {
        return text.clone();
    }
    let began = Instant::now();
    let text = Bytes::from(render_served(Vec::new()).await);
    *latest = Some((began, text.clone()));
    text
}

/// One scrape counted in [`SCRAPES_WAITING`]; the last to leave lets the latest
/// rendering go, so that no large text is kept between scrapes. A scrape that leaves
/// while another holds the lock leaves the text to that one, which leaves later.
struct Waiting;

impl Waiting {
    fn enter() -> Waiting {
        SCRAPES_WAITING.fetch_add(1, Ordering::AcqRel);
        Waiting
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if SCRAPES_WAITING.fetch_sub(1, Ordering::AcqRel) == 1
            && let Ok(mut latest) = SCRAPE.try_lock()
        {
            *latest = None;
        }
    }
}

/// [`render`], with the program's labels named in `grouping` (a push's grouping
/// labels, `job` among them) written as `exported_<name>`: the gateway would set
/// them to the group's values, and series that differed only by them would clash
/// and have every push refused.
pub(crate) fn render_for(grouping: &[&str]) -> String {
    if !INSTALLED.load(Ordering::Acquire) {
        return String::new();
    }
    rendered(&sampled(), grouping)
}

/// Runs the collectors, then renders coldstart's own families (the process's, tokio's,
/// coldstart's): what is sampled at each rendering.
fn sampled() -> String {
    // Called with the lock released, so that a collector may register another.
    let collectors = COLLECTORS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for collect in collectors {
        if std::panic::catch_unwind(AssertUnwindSafe(|| collect())).is_err() {
            // Not run again: the panic hook has printed the panic already, and would
            // at every scrape.
            COLLECTORS
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|c| !Arc::ptr_eq(c, &collect));
            problem::report("metrics-collector-panicked", || {
                "metrics: a collector registered with register_collector panicked; it is not run again, and what it set keeps its last value".into()
            });
        }
    }
    let mut own = String::new();
    process::render(&mut own);
    coldstart::render(&mut own);
    own
}

/// The registry's text, then `own` (coldstart's families, from [`sampled`]). Own
/// families come first in the choice of names, so that a program's metric of the same
/// name (a second `# TYPE` would make the scrape invalid) is left out, and said once.
fn rendered(own: &str, grouping: &[&str]) -> String {
    let taken: Vec<&str> = own
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    let mut out = String::new();
    REGISTRY.render(&mut out, &taken, grouping);
    if grouping.is_empty() {
        out.push_str(own);
    } else {
        // Each label said once a rendering, not once a line: every report reaches the
        // plugins.
        let mut renamed: Vec<String> = Vec::new();
        let own = text::export_grouping_labels(own, grouping, |label| {
            if !renamed.iter().any(|r| r == label) {
                renamed.push(label.to_owned());
            }
        });
        for label in renamed {
            problem::report_about("metrics-grouping-label", &label, || {
                format!(
                    "metrics: label `{label}` of coldstart's own metrics is one of the push's grouping labels, which the gateway sets; it is pushed as `exported_{label}`"
                )
            });
        }
        out.push_str(&own);
    }
    out
}

/// Starts what the recorder does not need at start-up: descriptions, the `/metrics`
/// listener and the Pushgateway pushes. Call it after the first response.
pub(crate) async fn start(config: &Config) {
    if !INSTALLED.load(Ordering::Acquire) {
        return;
    }
    describe();
    if let Some(addr) = config.metrics_addr {
        // Settled also if starting panics: no `serving_on` waits for good.
        let unsettled = Unsettled;
        let bound = listener::start(addr, config.metrics_tls.as_ref()).await;
        settle(bound);
        std::mem::forget(unsettled);
    }
    if let Some(push) = config.push.clone() {
        push::start(push);
    }
}

/// Where the listener started serving `/metrics`, once it has bound or failed to, or
/// `None` once it will not start (the end of a `main` that ended first).
static SERVING_ON: std::sync::OnceLock<Option<std::net::SocketAddr>> = std::sync::OnceLock::new();
/// Woken when [`SERVING_ON`] is set.
static SERVING_ON_SET: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Sets what [`serving_on`] gives, the first time only, and wakes its waiters.
fn settle(bound: Option<std::net::SocketAddr>) {
    let _ = SERVING_ON.set(bound);
    SERVING_ON_SET.notify_waiters();
}

/// Settles [`serving_on`] with `None` when dropped before it was forgotten: the
/// listener's start unwinding.
struct Unsettled;

impl Drop for Unsettled {
    fn drop(&mut self) {
        settle(None);
    }
}

/// The address `/metrics` is served on: the one bound, so the port the system chose
/// for `COLDSTART_METRICS_ADDR=127.0.0.1:0`. `None` where it is not served: off (the
/// setting, push mode, or telemetry not installed), or its listener failed to start
/// (the address taken, TLS files refused), which coldstart says on stderr.
///
/// The listener starts after the first response: awaited before, this waits for it,
/// and gives `None` once the end of `main` came first (the exporters then start
/// without a listener). It waits for the exporters to start, which
/// `#[coldstart::main]` and `Builder` do (`Telemetry::start_after_first_response`):
/// a program that installs telemetry itself and never starts them waits for good.
///
/// ```no_run
/// # async fn body() {
/// coldstart_runtime::after_first_request(async {
///     if let Some(addr) = coldstart_exporters::metrics::serving_on().await {
///         eprintln!("metrics on http://{addr}/metrics");
///     }
/// });
/// # }
/// ```
pub async fn serving_on() -> Option<std::net::SocketAddr> {
    let asked = crate::installed().and_then(|c| c.metrics_addr);
    if !INSTALLED.load(Ordering::Acquire) || asked.is_none() {
        return None;
    }
    loop {
        let set = SERVING_ON_SET.notified();
        let mut set = std::pin::pin!(set);
        set.as_mut().enable();
        if let Some(bound) = SERVING_ON.get() {
            return *bound;
        }
        set.await;
    }
}

/// A push now, within `budget`, once the first response is done ([`push::push_within`]).
pub(crate) async fn push_within(budget: std::time::Duration) {
    push::push_within(budget).await;
}

/// Registers the final Pushgateway push as a shutdown hook, when pushes are set.
pub(crate) fn push_at_shutdown(config: &Config) {
    if let (true, Some(push)) = (INSTALLED.load(Ordering::Acquire), &config.push) {
        push::at_shutdown(push.clone());
    }
}

/// At the end of a `main` that ended before its first response: the last push, as a
/// shutdown hook, and no listener (nothing would scrape it).
pub(crate) fn at_end_of_main(config: &Config) {
    settle(None);
    if !INSTALLED.load(Ordering::Acquire) {
        return;
    }
    describe();
    if let Some(push) = config.push.clone() {
        push::at_shutdown(push);
    }
}

/// The help text of the HTTP metrics (the layer records them without it).
fn describe() {
    metrics::describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status."
    );
    metrics::describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "Time from receiving an HTTP request to sending its response head, by method, route template and status."
    );
    metrics::describe_gauge!(HTTP_IN_FLIGHT, "HTTP requests being handled now.");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A label of coldstart's own families that a push's grouping names is said once
    /// a rendering, not once for each line that carries it (each report reaches every
    /// plugin).
    #[test]
    fn a_grouping_label_of_coldstarts_own_is_said_once_a_rendering() {
        let label = "test_grouped_once";
        let own = format!(
            "# TYPE c counter\nc{{{label}=\"a\"}} 1\nc{{{label}=\"b\"}} 2\nc{{{label}=\"c\"}} 3\n"
        );
        let before = problem::reports_about("metrics-grouping-label", label);
        let text = rendered(&own, &[label]);
        assert!(
            text.contains(&format!("c{{exported_{label}=\"c\"}} 3")),
            "{text}"
        );
        assert_eq!(
            problem::reports_about("metrics-grouping-label", label) - before,
            1
        );
    }

    /// The latest large text is kept while a scrape waits for it, and let go by the
    /// last to leave, however it leaves (a dropped scrape too): none is held between
    /// scrapes.
    #[tokio::test]
    async fn the_last_scrape_to_leave_lets_the_text_go() {
        let (first, second) = (Waiting::enter(), Waiting::enter());
        *SCRAPE.lock().await = Some((Instant::now(), Bytes::from_static(b"text")));
        drop(first);
        assert!(SCRAPE.lock().await.is_some(), "one scrape still waits");
        drop(second);
        assert!(SCRAPE.lock().await.is_none());
    }
}
