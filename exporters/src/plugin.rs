/*!
Plugins: code that sees every finished span, every recorded metric value and every
telemetry problem, for auditing, custom sinks or counting.

A plugin implements [`Plugin`] and registers with a priority, either at link time
([`crate::plugin!`], a `linkme` distributed slice: nothing runs before `main`) or in
code ([`add`], which `coldstart::Builder::plugin` calls). Plugins run in ascending
priority; equal priorities run in name order, then link-time registrations before
code ones. The order is fixed when telemetry is installed; a plugin added later is
refused and reported.

Where hooks run:
- [`Plugin::on_span_end`]: on the export task, just before a span's batch is sent
  (after the first response for the spans of the cold start): never on a request's
  path. Spans dropped because the queue was full are never seen. With
  `OTEL_TRACES_EXPORTER=none` the batches go nowhere after the plugins, on the same
  schedule; spans are then queued only because a plugin is installed, even one that
  ignores them.
- [`Plugin::on_metric`]: on the thread that records the value, inside the request
  for HTTP metrics. It must be cheap (count, sample into an atomic, push to a
  channel); without a plugin the check costs one relaxed atomic load.
- [`Plugin::on_error`]: on the task that hit the problem, each time, including the
  times the once-a-minute stderr line is held back.

A metric a hook itself records, or a problem it has reported (a counter a plugin
keeps of what it saw), is recorded as any other is but runs no hook: a counting
plugin would otherwise call itself until the stack overflowed. A span a hook makes
reaches `on_span_end` at the next export like any other (one made in `on_span_end`
itself is not recorded: telemetry is suppressed there).

A plugin whose hook panics is said once (its name and the panic's message) and not
run again: its panic would otherwise run into the request that recorded a metric,
or end the export task. Rust's panic hook prints that one panic too; with
`panic = "abort"` it ends the process.
*/

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

#[doc(hidden)]
pub use linkme;

/// A telemetry plugin. Every hook has an empty default.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use coldstart_exporters::plugin::{Plugin, Reported};
///
/// struct CountProblems(AtomicU64);
///
/// impl Plugin for CountProblems {
///     fn name(&self) -> &str {
///         "count-problems"
///     }
///     fn on_error(&self, _: &Reported<'_>) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// coldstart_exporters::plugin!(COUNT: CountProblems = CountProblems(AtomicU64::new(0)), priority = 10);
/// ```
pub trait Plugin: Send + Sync {
    /// A stable name; equal priorities run in name order.
    fn name(&self) -> &str;

    /// A sampled span has ended and is about to be exported (with
    /// `OTEL_TRACES_EXPORTER=none`, about to be dropped).
    #[cfg(feature = "tracing")]
    fn on_span_end(&self, span: &opentelemetry_sdk::trace::SpanData) {
        let _ = span;
    }

    /// A metric value was recorded (see the module docs: keep it cheap).
    #[cfg(feature = "metrics")]
    fn on_metric(&self, metric: &Recorded<'_>) {
        let _ = metric;
    }

    /// A telemetry problem was reported.
    fn on_error(&self, error: &Reported<'_>) {
        let _ = error;
    }
}

/// A value recorded through the `metrics` facade.
#[cfg(feature = "metrics")]
#[derive(Debug, Clone, Copy)]
pub struct Recorded<'a> {
    /// The series: name and labels.
    pub key: &'a metrics::Key,
    /// What was recorded.
    pub value: Value,
}

/// What a metric recording was.
#[cfg(feature = "metrics")]
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A counter grew by this much.
    Increment(u64),
    /// A counter was set to this total.
    Absolute(u64),
    /// A gauge was set to this value.
    Gauge(f64),
    /// A gauge changed by this much.
    GaugeDelta(f64),
    /// A histogram got this sample.
    Sample(f64),
}

/// A telemetry problem, as printed on stderr (without the `coldstart: ` prefix).
#[derive(Debug, Clone, Copy)]
pub struct Reported<'a> {
    /// The kind of problem, such as `span-export` or `metrics-listen`.
    pub kind: &'a str,
    /// The message.
    pub message: &'a str,
}

/// A plugin registered at link time. Use [`crate::plugin!`] to make one.
#[derive(Clone, Copy)]
pub struct Registration {
    /// Lower runs first.
    pub priority: i32,
    /// The plugin.
    pub plugin: &'static dyn Plugin,
}

/// Every plugin registered at link time.
#[linkme::distributed_slice]
pub static PLUGINS: [Registration];

/// Registers a plugin at link time: `plugin!(NAME: Type = value, priority = N);`
/// defines the static `NAME` and adds it to [`PLUGINS`]. In the facade:
/// `coldstart::telemetry::plugin!`.
#[macro_export]
macro_rules! plugin {
    ($name:ident : $ty:ty = $value:expr, priority = $priority:expr $(,)?) => {
        static $name: $ty = $value;
        const _: () = {
            #[$crate::plugin::linkme::distributed_slice($crate::plugin::PLUGINS)]
            #[linkme(crate = $crate::plugin::linkme)]
            static REGISTRATION: $crate::plugin::Registration = $crate::plugin::Registration {
                priority: $priority,
                plugin: &$name,
            };
        };
    };
}

/// Plugins added in code before installation.
static ADDED: Mutex<Vec<Registration>> = Mutex::new(Vec::new());
/// The plugins in run order, fixed at installation.
static ORDER: OnceLock<Vec<&'static dyn Plugin>> = OnceLock::new();
/// Whether any plugin is installed (checked before building a hook's argument).
static ANY: AtomicBool = AtomicBool::new(false);

/// For each plugin of [`ORDER`], whether it panicked and is no longer run.
static OFF: OnceLock<Vec<AtomicBool>> = OnceLock::new();

/// Adds a plugin in code. Must happen before telemetry is installed (before
/// `#[coldstart::main]`'s body, or through `coldstart::Builder::plugin`).
///
/// # Errors
///
/// Telemetry is installed already; the plugin is not added.
pub fn add(priority: i32, plugin: Box<dyn Plugin>) -> Result<(), TooLate> {
    // Under the lock [`install`] fixes the order with: a plugin is added before, or
    // refused after, never accepted and left out.
    let mut added = ADDED.lock().unwrap_or_else(|p| p.into_inner());
    if ORDER.get().is_some() {
        return Err(TooLate(plugin.name().to_owned()));
    }
    let plugin: &'static dyn Plugin = Box::leak(plugin);
    added.push(Registration { priority, plugin });
    Ok(())
}

/// A plugin added after telemetry was installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLate(pub String);

impl std::fmt::Display for TooLate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "plugin `{}` was added after telemetry was installed; add it with coldstart::Builder::plugin",
            self.0
        )
    }
}

impl std::error::Error for TooLate {}

/// Fixes the order: link-time registrations, then code ones, stably sorted by
/// priority and name. Called once, at installation.
pub(crate) fn install() {
    let added = ADDED.lock().unwrap_or_else(|p| p.into_inner());
    let order = ORDER.get_or_init(|| ordered(PLUGINS.iter().copied().chain(added.clone())));
    drop(added);
    OFF.get_or_init(|| order.iter().map(|_| AtomicBool::new(false)).collect());
    ANY.store(!order.is_empty(), Ordering::Release);
}

fn ordered(all: impl Iterator<Item = Registration>) -> Vec<&'static dyn Plugin> {
    let mut all: Vec<Registration> = all.collect();
    all.sort_by(|a, b| (a.priority, a.plugin.name()).cmp(&(b.priority, b.plugin.name())));
    all.into_iter().map(|r| r.plugin).collect()
}

/// The plugins in run order; empty before installation.
pub fn order() -> &'static [&'static dyn Plugin] {
    ORDER.get().map_or(&[], Vec::as_slice)
}

/// Whether any plugin will see a hook.
#[inline]
pub(crate) fn any() -> bool {
    ANY.load(Ordering::Relaxed)
}

thread_local! {
    /// Whether this thread is running a hook.
    static IN_HOOK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Clears [`IN_HOOK`] when the hook ends, however it ends.
struct LeaveHook;

impl Drop for LeaveHook {
    fn drop(&mut self) {
        IN_HOOK.with(|h| h.set(false));
    }
}

/// Runs `hook` for each plugin in order, but those that panicked before. One that
/// panics now is said and turned off; the others still run. Called from inside a
/// hook on the same thread (a hook that records a metric or has a problem
/// reported), it runs none: the metric is recorded, but a counting hook would
/// otherwise call itself until the stack overflowed, which ends the process.
pub(crate) fn each(hook: impl Fn(&dyn Plugin)) {
    if IN_HOOK.with(std::cell::Cell::get) {
        return;
    }
    let off = OFF.get().map_or(&[][..], Vec::as_slice);
    for (plugin, off) in order().iter().zip(off) {
        if off.load(Ordering::Relaxed) {
            continue;
        }
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            IN_HOOK.with(|h| h.set(true));
            let _leave = LeaveHook;
            hook(*plugin);
        }));
        if let Err(panic) = ran {
            // Off before it is said: saying it runs the plugins' `on_error`.
            off.store(true, Ordering::Relaxed);
            turned_off(plugin.name(), &crate::problem::panic_text(&*panic));
        }
    }
}

/// Says that plugin `name` panicked and is turned off. Not generic, as [`each`] is:
/// saying it runs [`each`] again for the plugins' `on_error`.
fn turned_off(name: &str, why: &str) {
    crate::problem::report_about("plugin-panic", name, || {
        format!("plugins: `{name}` panicked in a hook ({why}); it is not run again")
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Named(&'static str);

    impl Plugin for Named {
        fn name(&self) -> &str {
            self.0
        }
    }

    #[test]
    fn order_is_priority_then_name_then_registration() {
        static A: Named = Named("a");
        static B: Named = Named("b");
        static C: Named = Named("c");
        static B2: Named = Named("b");
        let reg = |priority, plugin: &'static dyn Plugin| Registration { priority, plugin };
        let order =
            ordered([reg(5, &C), reg(1, &B), reg(5, &A), reg(1, &B2), reg(-3, &C)].into_iter());
        let names: Vec<_> = order.iter().map(|p| p.name()).collect();
        assert_eq!(names, ["c", "b", "b", "a", "c"]);
        assert!(
            std::ptr::addr_eq(order[1], &B),
            "equal keys keep registration order"
        );
        assert!(std::ptr::addr_eq(order[2], &B2));
    }
}
