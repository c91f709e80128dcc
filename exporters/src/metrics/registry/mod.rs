/*!
coldstart's `metrics` recorder: counters, gauges and fixed-bucket histograms in
atomics, behind one read-mostly lock per kind, rendered in the Prometheus text format.

Why not metrics-exporter-prometheus's recorder: building it, or recording the first
histogram sample, calibrates `quanta`'s TSC clock, a busy loop of several milliseconds
(it was most of the CPU time to first response in `perf`; BENCHMARKS.md, "Exporters"),
and its registry sizes itself with `available_parallelism()` (tens of microseconds).
Here creating the registry is free (`const`), a sample is a bucket search and three
atomic adds, and nothing reads a clock.

This file holds the registry, its limits and the recorder; `handles.rs` the handles
a recording goes through, `render.rs` the Prometheus text rendering.
*/

mod handles;
mod render;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

use crate::plugin::{self, Recorded, Value};
use crate::problem;

use super::HTTP_DURATION_BUCKETS;
use handles::{Buckets, Cell, NotKept};

/// `Key` hashes itself once, when it is built; this hasher passes that hash through.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Map<V> = RwLock<Series<V>>;

/// At most this many series of one metric name (as recorded) are kept, as
/// OpenTelemetry SDKs do by default: a label set past them is recorded in the name's one
/// series labelled `otel_metric_overflow="true"`, and that is said when it first
/// happens to the name. A label fed from requests (a user id, a raw path) would
/// otherwise grow the memory and every scrape without bound.
pub(crate) const SERIES_PER_NAME: usize = 2000;

/// At most this many metric names (as recorded, of the three kinds together) are kept.
/// A name past them is not recorded: its samples are counted in
/// `coldstart_telemetry_dropped_total{signal="metrics",reason="name_limit"}`, and that
/// is said. A name made from data (`format!("requests_{path}")`) would otherwise grow
/// the memory and every scrape without bound, [`SERIES_PER_NAME`] at a time.
pub(crate) const NAMES: usize = 1000;

/// A metric name longer than this, in bytes, is not recorded, as OpenTelemetry's SDKs
/// refuse an instrument name past 255 characters: its samples are counted as a name
/// past [`NAMES`] is, and that is said. A name made from data (a raw path, up to 64
/// KiB) would otherwise keep that much a name, [`NAMES`] times, and every scrape write
/// it on each line of its family.
pub(crate) const NAME_BYTES: usize = 255;

/// The names coldstart's HTTP layer records: kept past [`NAMES`] too, and not counted
/// in it (a handle cached before the limit was reached, or after, would otherwise
/// leave requests out of the HTTP metrics for the life of the process).
const OWN: [&str; 3] = [
    super::HTTP_REQUESTS,
    super::HTTP_DURATION,
    super::HTTP_IN_FLIGHT,
];

/// A new label set longer than this, its names and values together in bytes, is
/// recorded in its name's overflow series, as one past [`SERIES_PER_NAME`] is: a label
/// fed from requests (a raw path, up to 64 KiB in a request head) would otherwise keep
/// megabytes a series, and every scrape render them. Prometheus servers are often
/// set to refuse label values past 2 KiB (`label_value_length_limit`).
pub(crate) const LABEL_BYTES: usize = 4096;

/// A name's label sets together, in bytes as [`LABEL_BYTES`] counts them, are kept to
/// this: a new one past it is recorded in the name's overflow series. Rendered, a
/// histogram writes its label set on each of its lines (19 with the default buckets):
/// 2000 series of 4 KiB labels made every scrape of one histogram 156 MB. Ordinary
/// labels (method, route, status: under 100 bytes) fill 2000 series in under 200 KiB.
pub(crate) const NAME_LABEL_BYTES: usize = 256 << 10;

/// The label set a sample past [`SERIES_PER_NAME`] is recorded under.
const OVERFLOW: [(&str, &str); 1] = [("otel_metric_overflow", "true")];

/// The series of one kind, and how many each name has.
pub(crate) struct Series<V> {
    by_key: HashMap<Key, Arc<V>, BuildHasherDefault<PassThrough>>,
    per_name: HashMap<KeyName, Kept<V>, BuildHasherDefault<std::hash::DefaultHasher>>,
}

/// How many series a name has, their label sets' bytes, and its overflow series
/// once it has one.
struct Kept<V> {
    count: usize,
    bytes: usize,
    overflow: Option<Arc<V>>,
}

impl<V> Kept<V> {
    /// Why a new label set of `bytes` goes to the overflow series, if it does: too
    /// long itself, or past the name's series or bytes.
    fn refuses(&self, bytes: usize) -> Option<Overflow> {
        if bytes > LABEL_BYTES {
            Some(Overflow::LabelLength(bytes))
        } else if self.count >= SERIES_PER_NAME {
            Some(Overflow::Series)
        } else if self.bytes + bytes > NAME_LABEL_BYTES {
            Some(Overflow::NameBytes)
        } else {
            None
        }
    }
}

/// Why a label set is recorded in its name's overflow series.
enum Overflow {
    /// The label set alone is past [`LABEL_BYTES`]; its length.
    LabelLength(usize),
    /// The name has [`SERIES_PER_NAME`] series.
    Series,
    /// The name's label sets would pass [`NAME_LABEL_BYTES`].
    NameBytes,
}

impl<V> Series<V> {
    const fn new() -> Map<V> {
        RwLock::new(Series {
            by_key: HashMap::with_hasher(BuildHasherDefault::new()),
            per_name: HashMap::with_hasher(BuildHasherDefault::new()),
        })
    }
}

/// Tells the plugins, if there are any, that `key` got `value`.
#[inline]
fn recorded(key: &Key, value: Value) {
    if plugin::any() {
        let metric = Recorded { key, value };
        plugin::each(|p| p.on_metric(&metric));
    }
}

/// Every metric recorded through the `metrics` facade.
pub(crate) struct Registry {
    counters: Map<Cell>,
    gauges: Map<Cell>,
    histograms: Map<Buckets>,
    /// How many names the three maps keep together, at most [`NAMES`].
    names: AtomicUsize,
    /// Descriptions by cleaned name, as families are named.
    help: RwLock<Vec<(String, SharedString)>>,
    /// Buckets set for histograms of a name, by its cleaned name.
    buckets: RwLock<Vec<(String, &'static [f64])>>,
}

impl Registry {
    pub(crate) const fn new() -> Registry {
        Registry {
            counters: Series::new(),
            gauges: Series::new(),
            histograms: Series::new(),
            names: AtomicUsize::new(0),
            help: RwLock::new(Vec::new()),
            buckets: RwLock::new(Vec::new()),
        }
    }

    /// The name of a series recorded so far, if any: the first counter's, else
    /// gauge's, else histogram's the maps hold.
    pub(crate) fn any_name(&self) -> Option<String> {
        fn first<V>(map: &Map<V>) -> Option<String> {
            let map = map.read().unwrap_or_else(|p| p.into_inner());
            map.per_name
                .keys()
                .next()
                .map(|name| name.as_str().to_owned())
        }
        first(&self.counters)
            .or_else(|| first(&self.gauges))
            .or_else(|| first(&self.histograms))
    }

    /// Sets the bucket bounds of the histograms named `name` recorded from now on.
    pub(crate) fn set_buckets(&self, name: &str, bounds: &'static [f64]) -> Result<(), String> {
        let increasing = bounds.windows(2).all(|w| w[0] < w[1]);
        if bounds.is_empty() || !increasing || bounds.iter().any(|b| !b.is_finite()) {
            return Err(format!(
                "the buckets of `{name}` must be finite bounds in increasing order, at least one (`+Inf` is added), got {bounds:?}"
            ));
        }
        let given = name;
        let name = sanitize(name);
        // Held until the bounds are in: a first record in between would take the
        // default ones, and this would still say it set them.
        let histograms = self.histograms.read().unwrap_or_else(|p| p.into_inner());
        let recorded = histograms
            .by_key
            .keys()
            .find(|key| sanitize(key.name()) == name)
            .map(|key| key.name().to_owned());
        if let Some(recorded) = recorded {
            // Named as given, and as recorded where that differs (the exposition's
            // name is the same for both: `payload.bytes` and `payload-bytes`).
            let recorded = if recorded == given {
                String::new()
            } else {
                format!(" (as `{recorded}`, the same name in the exposition)")
            };
            return Err(format!(
                "`{given}` was recorded{recorded} before its buckets were set, with the default ones; set them before the first record"
            ));
        }
        let mut buckets = self.buckets.write().unwrap_or_else(|p| p.into_inner());
        buckets.retain(|(n, _)| *n != name);
        buckets.push((name, bounds));
        drop(histograms);
        Ok(())
    }

    fn bounds_of(&self, name: &str) -> &'static [f64] {
        let buckets = self.buckets.read().unwrap_or_else(|p| p.into_inner());
        if buckets.is_empty() {
            return &HTTP_DURATION_BUCKETS;
        }
        let name = sanitize(name);
        buckets
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(&HTTP_DURATION_BUCKETS, |(_, bounds)| *bounds)
    }

    fn describe(&self, name: KeyName, description: SharedString) {
        // A name too long to be recorded is not described either.
        if name.as_str().len() > NAME_BYTES {
            return;
        }
        // coldstart's HTTP names are kept past the limit on names: their descriptions,
        // made when the exporters start, are kept past it too. So is the description
        // of a name recorded already (kept), whatever descriptions of names never
        // recorded (a library's) came first.
        let kept = || {
            holds(&self.counters, &name)
                || holds(&self.gauges, &name)
                || holds(&self.histograms, &name)
        };
        let own = OWN.contains(&name.as_str());
        // Kept under the cleaned name: a name recorded as `my.requests` is rendered
        // as the family `my_requests`.
        let clean = sanitize(name.as_str());
        let mut help = self.help.write().unwrap_or_else(|p| p.into_inner());
        let full = help.len() >= NAMES + OWN.len();
        match help.iter_mut().find(|(n, _)| *n == clean) {
            Some(entry) => entry.1 = description,
            // Past as many descriptions as names are kept, the rest are of names not
            // recorded yet, or never: one recorded later goes without its own.
            None if full && !own && !kept() => {}
            None => help.push((clean, description)),
        }
    }
}

/// The series of `key`, made with `new` the first time; past [`SERIES_PER_NAME`] of
/// its name, the name's overflow series; `None` for a new name past [`NAMES`] (`names`
/// counts the names of every kind).
fn get_or_insert<V>(
    map: &Map<V>,
    names: &AtomicUsize,
    key: &Key,
    new: impl FnOnce(&Key) -> V,
) -> Option<Arc<V>> {
    let not_kept = |name: &str| {
        static SAID: AtomicBool = AtomicBool::new(false);
        say_once(&SAID, "metrics-name-limit", || {
            format!(
                "metrics: {NAMES} metric names are kept, the most for one program; `{}` is not recorded, nor are other names past the limit (not said again), and their samples are counted in coldstart_telemetry_dropped_total{{signal=\"metrics\",reason=\"name_limit\"}} (is a name made from data?)",
                problem::one_line(name, 100)
            )
        });
        None
    };
    let own = OWN.contains(&key.name());
    if key.name().len() > NAME_BYTES {
        static SAID: AtomicBool = AtomicBool::new(false);
        let name = key.name();
        say_once(&SAID, "metrics-name-length", || {
            format!(
                "metrics: a metric name of {} bytes (`{}`) is longer than the {NAME_BYTES} kept; it is not recorded, nor are other names past {NAME_BYTES} bytes (not said again), and their samples are counted in coldstart_telemetry_dropped_total{{signal=\"metrics\",reason=\"name_limit\"}} (is a name made from data?)",
                name.len(),
                problem::one_line(name, 100)
            )
        });
        return None;
    }
    {
        // A label set past the limit is found here too, as its name's overflow, and a
        // name past the limit on names as not kept: every sample of them taking the
        // write lock would hold up every other record.
        let map = map.read().unwrap_or_else(|p| p.into_inner());
        let kept = map.per_name.get(key.name());
        let found = map.by_key.get(key).cloned().or_else(|| {
            let kept = kept?;
            // The overflow series exists once any reason made it: a label set goes to
            // it only for its own.
            kept.refuses(label_bytes(key))
                .and_then(|_| kept.overflow.clone())
        });
        if let Some(v) = found {
            return Some(v);
        }
        if kept.is_none() && !own && names.load(Ordering::Relaxed) >= NAMES {
            drop(map);
            return not_kept(key.name());
        }
    }
    let mut map = map.write().unwrap_or_else(|p| p.into_inner());
    let Series { by_key, per_name } = &mut *map;
    if let Some(v) = by_key.get(key) {
        return Some(v.clone());
    }
    if !own && !per_name.contains_key(key.name()) {
        let room = names
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < NAMES).then_some(n + 1)
            })
            .is_ok();
        if !room {
            drop(map);
            return not_kept(key.name());
        }
    }
    let kept = per_name.entry(key.name_shared()).or_insert(Kept {
        count: 0,
        bytes: 0,
        overflow: None,
    });
    let bytes = label_bytes(key);
    let Some(why) = kept.refuses(bytes) else {
        kept.count += 1;
        kept.bytes += bytes;
        let v = Arc::new(new(key));
        by_key.insert(key.clone(), v.clone());
        return Some(v);
    };
    if let Some(v) = &kept.overflow {
        return Some(v.clone());
    }
    let overflow = Key::from_parts(key.name_shared(), &OVERFLOW);
    let v = by_key
        .entry(overflow)
        .or_insert_with_key(|k| Arc::new(new(k)))
        .clone();
    kept.overflow = Some(v.clone());
    // Said with the lock let go: a plugin told of the problem may record a metric.
    // Said once a name, when its overflow series is made, for what made it.
    drop(map);
    let name = key.name();
    match why {
        Overflow::LabelLength(bytes) => problem::report_about("metrics-label-length", name, || {
            format!(
                "metrics: a label set of `{name}` is {bytes} bytes long, more than the {LABEL_BYTES} kept for one series (is a label fed from requests?); samples of such label sets, and of any past the {SERIES_PER_NAME} series or {NAME_LABEL_BYTES} bytes of labels kept for the name, are recorded in its series labelled otel_metric_overflow=\"true\""
            )
        }),
        Overflow::Series => problem::report_about("metrics-series-limit", name, || {
            format!(
                "metrics: `{name}` has {SERIES_PER_NAME} series, the most kept for one name; samples of other label sets are recorded in its series labelled otel_metric_overflow=\"true\""
            )
        }),
        Overflow::NameBytes => problem::report_about("metrics-label-bytes", name, || {
            format!(
                "metrics: the label sets of `{name}` add up to {NAME_LABEL_BYTES} bytes, the most kept for one name (is a label fed from requests?); samples of other label sets are recorded in its series labelled otel_metric_overflow=\"true\""
            )
        }),
    }
    Some(v)
}

/// Says a problem of `kind` the first time only (`said` marks it): `counter!`
/// registers at every sample, and each would take the problems' lock (and tell every
/// plugin) under load.
fn say_once(said: &AtomicBool, kind: &'static str, message: impl FnOnce() -> String) {
    if !said.swap(true, Ordering::Relaxed) {
        problem::report(kind, message);
    }
}

/// Whether `map` keeps series of `name`.
fn holds<V>(map: &Map<V>, name: &KeyName) -> bool {
    let map = map.read().unwrap_or_else(|p| p.into_inner());
    map.per_name.contains_key(name)
}

/// The length of `key`'s label set, its names and values together, in bytes.
fn label_bytes(key: &Key) -> usize {
    key.labels().map(|l| l.key().len() + l.value().len()).sum()
}

/// Metric and label names may hold only `[a-zA-Z0-9_:]` (labels: no `:`), and may
/// not start with a digit: anything else becomes `_`.
fn sanitize(name: &str) -> String {
    let mut clean = String::with_capacity(name.len() + 1);
    // A name may not begin with a digit: `_` goes before it (`0_shard` as `__shard`
    // would have been a reserved name, and `5xx_total` lost its digit).
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        clean.push('_');
    }
    clean.extend(name.chars().map(|c| match c {
        'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | ':' => c,
        _ => '_',
    }));
    clean
}

/// The recorder installed as the global `metrics` recorder.
pub(crate) struct Installed(pub(crate) &'static Registry);

impl Recorder for Installed {
    fn describe_counter(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        self.0.describe(key, description);
    }
    fn describe_gauge(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        self.0.describe(key, description);
    }
    fn describe_histogram(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        self.0.describe(key, description);
    }
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        match get_or_insert(&self.0.counters, &self.0.names, key, |k| Cell::new(k, 0)) {
            Some(cell) => Counter::from_arc(cell),
            None => Counter::from_arc(NotKept::handle()),
        }
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        match get_or_insert(&self.0.gauges, &self.0.names, key, |k| {
            Cell::new(k, 0f64.to_bits())
        }) {
            Some(cell) => Gauge::from_arc(cell),
            None => Gauge::from_arc(NotKept::handle()),
        }
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        match get_or_insert(&self.0.histograms, &self.0.names, key, |k| {
            Buckets::new(k, self.0.bounds_of(k.name()))
        }) {
            Some(buckets) => Histogram::from_arc(buckets),
            None => Histogram::from_arc(NotKept::handle()),
        }
    }
}
