/*!
coldstart's `metrics` recorder: counters, gauges and fixed-bucket histograms in
atomics, behind one read-mostly lock per kind, rendered in the Prometheus text format.

Why not metrics-exporter-prometheus's recorder: building it, or recording the first
histogram sample, calibrates `quanta`'s TSC clock, a busy loop of several milliseconds
(it was most of the CPU time to first response in `perf`; BENCHMARKS.md, "Exporters"),
and its registry sizes itself with `available_parallelism()` (tens of microseconds).
Here creating the registry is free (`const`), a sample is a bucket search and three
atomic adds, and nothing reads a clock.
*/

use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

use crate::plugin::{self, Recorded, Value};
use crate::problem::{self, Dropped};

use super::HTTP_DURATION_BUCKETS;
use super::text::{Float, Kind, header, labels};

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

/// The label set a sample past [`SERIES_PER_NAME`] is recorded under.
const OVERFLOW: [(&str, &str); 1] = [("otel_metric_overflow", "true")];

/// The series of one kind, and how many each name has.
pub(crate) struct Series<V> {
    by_key: HashMap<Key, Arc<V>, BuildHasherDefault<PassThrough>>,
    per_name: HashMap<KeyName, Kept<V>, BuildHasherDefault<std::hash::DefaultHasher>>,
}

/// How many series a name has, and its overflow series once it has one.
struct Kept<V> {
    count: usize,
    overflow: Option<Arc<V>>,
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

/// A counter or a gauge (as `f64` bits), with its key for the plugins.
pub(crate) struct Cell {
    value: AtomicU64,
    key: Key,
}

impl Cell {
    fn new(key: &Key, initial: u64) -> Cell {
        Cell {
            value: AtomicU64::new(initial),
            key: key.clone(),
        }
    }

    fn load(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }

    fn add(&self, delta: f64) {
        let _ = self
            .value
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + delta).to_bits())
            });
        recorded(&self.key, Value::GaugeDelta(delta));
    }
}

impl CounterFn for Cell {
    fn increment(&self, n: u64) {
        // Past `u64::MAX` it stays there: wrapped towards 0, Prometheus would read a
        // reset (a scrape between the add and the store may still read the wrapped
        // value once). One atomic add, as before, on the way every request takes.
        if self
            .value
            .fetch_add(n, Ordering::Relaxed)
            .checked_add(n)
            .is_none()
        {
            self.value.store(u64::MAX, Ordering::Relaxed);
        }
        recorded(&self.key, Value::Increment(n));
    }

    fn absolute(&self, n: u64) {
        self.value.fetch_max(n, Ordering::Relaxed);
        recorded(&self.key, Value::Absolute(n));
    }
}

impl GaugeFn for Cell {
    fn increment(&self, delta: f64) {
        self.add(delta);
    }

    fn decrement(&self, delta: f64) {
        self.add(-delta);
    }

    fn set(&self, value: f64) {
        self.value.store(value.to_bits(), Ordering::Relaxed);
        recorded(&self.key, Value::Gauge(value));
    }
}

/// The handle of a name past [`NAMES`]: each sample is counted as dropped.
pub(crate) struct NotKept;

impl NotKept {
    fn handle() -> Arc<NotKept> {
        static ONE: std::sync::OnceLock<Arc<NotKept>> = std::sync::OnceLock::new();
        ONE.get_or_init(|| Arc::new(NotKept)).clone()
    }

    fn sample(&self) {
        problem::drop_count(Dropped::MetricNameLimit, 1);
    }
}

impl CounterFn for NotKept {
    fn increment(&self, _: u64) {
        self.sample();
    }
    fn absolute(&self, _: u64) {
        self.sample();
    }
}

impl GaugeFn for NotKept {
    fn increment(&self, _: f64) {
        self.sample();
    }
    fn decrement(&self, _: f64) {
        self.sample();
    }
    fn set(&self, _: f64) {
        self.sample();
    }
}

impl HistogramFn for NotKept {
    fn record(&self, _: f64) {
        self.sample();
    }
}

/// A histogram with fixed buckets: those set for its name ([`Registry::set_buckets`]),
/// else `HTTP_DURATION_BUCKETS`.
pub(crate) struct Buckets {
    bounds: &'static [f64],
    /// One count per bound, then `+Inf`.
    counts: Box<[AtomicU64]>,
    sum_bits: AtomicU64,
    key: Key,
}

impl Buckets {
    fn new(key: &Key, bounds: &'static [f64]) -> Buckets {
        Buckets {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_bits: AtomicU64::new(0f64.to_bits()),
            key: key.clone(),
        }
    }
}

impl HistogramFn for Buckets {
    fn record(&self, value: f64) {
        recorded(&self.key, Value::Sample(value));
        let i = if value.is_nan() {
            // Not below any bound: in `+Inf` only.
            self.bounds.len()
        } else {
            self.bounds.partition_point(|&bound| bound < value)
        };
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        if !value.is_finite() {
            // Counted in its bucket, not in the sum: one infinity would make the sum
            // infinite for the rest of the process, and one of each sign (or a NaN)
            // NaN.
            return;
        }
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
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
        // coldstart's HTTP names are kept past the limit on names: their descriptions,
        // made when the exporters start, are kept past it too.
        let own = OWN.contains(&name.as_str());
        // Kept under the cleaned name: a name recorded as `my.requests` is rendered
        // as the family `my_requests`.
        let name = sanitize(name.as_str());
        let mut help = self.help.write().unwrap_or_else(|p| p.into_inner());
        let full = help.len() >= NAMES;
        match help.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = description,
            // Past as many descriptions as names are kept, the rest are of names
            // that are not kept, or never recorded.
            None if full && !own => {}
            None => help.push((name, description)),
        }
    }

    /// The descriptions by cleaned name, read once for a rendering: looked up for each
    /// family in a list, a rendering of many names took their number squared.
    fn helps(&self) -> HashMap<String, String> {
        let help = self.help.read().unwrap_or_else(|p| p.into_inner());
        help.iter()
            .map(|(name, description)| (name.clone(), description.trim().to_owned()))
            .collect()
    }

    /// The HELP text of `name`, given its description if it has one. A HELP line with
    /// no text is one `promtool check metrics` refuses: an empty description reads as
    /// none, and a name that reads as nothing (`_`) is its own help.
    fn help_of(name: &str, description: Option<&String>) -> String {
        match description.filter(|d| !d.is_empty()) {
            Some(d) => d.to_owned(),
            None => match name.replace('_', " ").trim() {
                "" => name.to_owned(),
                words => words.to_owned(),
            },
        }
    }

    /// Appends every family in the text format, sorted by name and labels, but for
    /// the names in `taken` (coldstart's own families), which are said once and left
    /// out. What would make the scrape unreadable is left out and said once too: a
    /// name recorded as two kinds (the first of counter, gauge, histogram is kept), a
    /// series written twice (two names that clean to the same one: a counter's or a
    /// histogram's counts are added, of gauges the one whose name sorts first is kept,
    /// whatever the values), an empty name, a family named
    /// as a histogram's `_bucket`, `_sum` or `_count`. Labels named in `grouping`
    /// (a push's grouping labels, which the gateway would overwrite) are written as
    /// `exported_<name>`, as Prometheus does.
    pub(crate) fn render(&self, out: &mut String, taken: &[&str], grouping: &[&str]) {
        let mut families: Vec<(String, Kind, Vec<String>)> = Vec::new();
        // Where each name's family is in `families`: searched for each series, the list
        // made a rendering of many names take their number squared.
        let mut at: HashMap<String, usize> = HashMap::new();
        let mut add = |name: String, kind: Kind, lines: Vec<String>| match at.get(&name) {
            Some(&i) if families[i].1 != kind => {
                let first = families[i].1;
                problem::report_about("metrics-two-kinds", &name, || {
                    format!(
                        "metrics: `{name}` is recorded as a {} and as a {}; only the {} is exported (give one of them another name)",
                        first.name(),
                        kind.name(),
                        first.name()
                    )
                });
            }
            Some(&i) => families[i].2.extend(lines),
            None => {
                at.insert(name.clone(), families.len());
                families.push((name, kind, lines));
            }
        };
        let mut said = Said::default();
        for (key, v) in read(&self.counters) {
            let name = sanitize(key.name());
            let line = sample(&name, "", &key, None, v.load(), grouping, &mut said);
            add(name, Kind::Counter, vec![line]);
        }
        for (key, v) in read(&self.gauges) {
            let name = sanitize(key.name());
            let value = Float(f64::from_bits(v.load()));
            let line = sample(&name, "", &key, None, value, grouping, &mut said);
            add(name, Kind::Gauge, vec![line]);
        }
        for (key, h) in read(&self.histograms) {
            let name = sanitize(key.name());
            let mut lines = Vec::with_capacity(h.counts.len() + 2);
            let mut cumulative = 0;
            for (i, count) in h.counts.iter().enumerate() {
                cumulative += count.load(Ordering::Relaxed);
                let le = h
                    .bounds
                    .get(i)
                    .map_or_else(|| "+Inf".to_owned(), f64::to_string);
                lines.push(sample(
                    &name,
                    "_bucket",
                    &key,
                    Some(&le),
                    cumulative,
                    grouping,
                    &mut said,
                ));
            }
            let sum = Float(f64::from_bits(h.sum_bits.load(Ordering::Relaxed)));
            lines.push(sample(
                &name,
                "_sum",
                &key,
                Some(""),
                sum,
                grouping,
                &mut said,
            ));
            lines.push(sample(
                &name,
                "_count",
                &key,
                Some(""),
                cumulative,
                grouping,
                &mut said,
            ));
            add(name, Kind::Histogram, lines);
        }
        families.sort_by(|a, b| a.0.cmp(&b.0));
        let histograms: HashSet<&str> = families
            .iter()
            .filter(|f| f.1 == Kind::Histogram)
            .map(|f| f.0.as_str())
            .collect();
        let shadowed: Vec<bool> = families
            .iter()
            .map(|(name, _, _)| {
                ["_bucket", "_sum", "_count"]
                    .iter()
                    .filter_map(|suffix| name.strip_suffix(suffix))
                    .any(|base| histograms.contains(base))
            })
            .collect();
        let helps = self.helps();
        for ((name, kind, mut lines), shadowed) in families.into_iter().zip(shadowed) {
            if shadowed {
                problem::report_about("metrics-histogram-suffix", &name, || {
                    format!(
                        "metrics: `{name}` is named as one of a histogram's own series (`_bucket`, `_sum`, `_count`); it is not exported (give it another name)"
                    )
                });
                continue;
            }
            if name.is_empty() {
                problem::report("metrics-no-name", || {
                    "metrics: a metric recorded with an empty name is not exported".into()
                });
                continue;
            }
            if taken.contains(&name.as_str()) {
                problem::report_about("metrics-name-taken", &name, || {
                    format!(
                        "metrics: `{name}` is one of coldstart's own metrics; the program's metric of that name is not exported (give it another name)"
                    )
                });
                continue;
            }
            if kind != Kind::Histogram {
                // By series alone, stably: of two that clean to one series, the one
                // read first (its raw name sorts first) is kept, whatever the values.
                lines.sort_by(|a, b| series(a).cmp(series(b)));
            }
            // A counter's and a histogram's counts only go up: two series that clean
            // to one are added. Of two gauges the first stays (below).
            if kind != Kind::Gauge {
                lines = added_up(lines, &name);
            }
            header(out, &name, &Self::help_of(&name, helps.get(&name)), kind);
            let mut written = HashSet::with_capacity(lines.len());
            for line in &lines {
                let series = series(line);
                if !written.insert(series) {
                    // Said by the family's name: by series, every label value would be
                    // a subject of its own, and their number unbounded.
                    problem::report_about("metrics-same-series", &name, || {
                        recorded_twice(&name, series, "only the first is exported")
                    });
                    continue;
                }
                out.push_str(line);
                out.push('\n');
            }
        }
    }
}

/// A counter's or a histogram's lines, in their order, with the lines of one series
/// (two names or label sets that clean to one) made one, their values added: counts
/// as whole numbers, a histogram's sum as a float. Kept apart, the first by name
/// would be exported, and a name sorting first that came later would make the counts
/// go down (read by `rate()` as a reset). A histogram's bounds are the same for both:
/// buckets cannot be set for a name that cleans to one already recorded.
fn added_up(lines: Vec<String>, name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut at: HashMap<String, usize> = HashMap::with_capacity(lines.len());
    for line in lines {
        let Some(&i) = at.get(series(&line)) else {
            at.insert(series(&line).to_owned(), out.len());
            out.push(line);
            continue;
        };
        let value = |l: &str| l.rsplit_once(' ').map(|(_, v)| v.to_owned());
        let (Some(a), Some(b)) = (value(&out[i]), value(&line)) else {
            continue;
        };
        let added = match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(a), Ok(b)) => a.saturating_add(b).to_string(),
            _ => match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(a), Ok(b)) => Float(a + b).to_string(),
                _ => continue,
            },
        };
        problem::report_about("metrics-same-series", name, || {
            recorded_twice(name, series(&line), "their counts are added")
        });
        out[i] = format!("{} {added}", series(&line));
    }
    out
}

/// The line said when series of `name` (such as `series`) are recorded twice, then
/// what was done.
fn recorded_twice(name: &str, series: &str, then: &str) -> String {
    format!(
        "metrics: series of `{name}` (such as `{series}`) are recorded twice, under names or labels that clean to the same series (an empty label value is no label); {then}"
    )
}

/// The problems of a rendering's sample lines already said: each once a family and
/// label, not once a line (a histogram's every bucket, and every series), each time
/// taking the problems' lock and telling every plugin.
#[derive(Default)]
struct Said(Vec<(&'static str, String, String)>);

impl Said {
    /// Whether `kind` is yet to be said of `label` in the family `name` in this
    /// rendering; it is from now on.
    fn first(&mut self, kind: &'static str, name: &str, label: &str) -> bool {
        if self
            .0
            .iter()
            .any(|(k, n, l)| *k == kind && n == name && l == label)
        {
            return false;
        }
        self.0.push((kind, name.to_owned(), label.to_owned()));
        true
    }
}

/// A sample line without its value: the series.
fn series(line: &str) -> &str {
    line.rsplit_once(' ').map_or(line, |(series, _)| series)
}

/// One sample line: `name<suffix>{labels of key, le} value`, where `name` is the
/// family's (problems are said by it) and `suffix` a histogram line's `_bucket`,
/// `_sum` or `_count`. For a histogram's lines `le` is `Some`, empty for its sum and
/// count, and a label of the key named `le` is left out, as are labels whose cleaned
/// name is empty or already used. A label with an empty value is left out, as
/// Prometheus drops it at a scrape: `x{a=""}` is the series `x`, and kept, the two
/// would be one series written twice, one of them lost. A label named in `grouping`
/// is written as `exported_<name>`.
fn sample(
    name: &str,
    suffix: &str,
    key: &Key,
    le: Option<&str>,
    value: impl std::fmt::Display,
    grouping: &[&str],
    said: &mut Said,
) -> String {
    let mut pairs: Vec<(String, &str)> = Vec::with_capacity(key.labels().len() + 1);
    for label in key.labels() {
        if label.value().is_empty() {
            continue;
        }
        let mut label_name = sanitize(label.key()).replace(':', "_");
        if grouping.contains(&label_name.as_str()) {
            if said.first("metrics-grouping-label", name, &label_name) {
                problem::report_about("metrics-grouping-label", name, || {
                    format!(
                        "metrics: label `{label_name}` of `{name}` is one of the push's grouping labels, which the gateway sets; it is pushed as `exported_{label_name}`"
                    )
                });
            }
            label_name.insert_str(0, "exported_");
        }
        // `__` starts the names Prometheus keeps for itself; a Pushgateway refuses
        // the whole push for one.
        let reserved = (le.is_some() && label_name == "le") || label_name.starts_with("__");
        if label_name.is_empty() || reserved || pairs.iter().any(|(k, _)| *k == label_name) {
            if said.first("metrics-label-left-out", name, label.key()) {
                problem::report_about("metrics-label-left-out", name, || {
                    format!(
                        "metrics: label `{}` of `{name}` is empty, reserved (`le`, or starting with `__`) or repeated once cleaned; it is left out",
                        label.key()
                    )
                });
            }
            continue;
        }
        pairs.push((label_name, label.value()));
    }
    // By name: one series has one spelling, whatever order its labels were given in
    // (two names that clean to one, with their labels in different orders, would
    // otherwise be two lines that Prometheus reads as one series twice, and that a
    // Pushgateway refuses the push for). `le` last, where the format shows it.
    pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if let Some(le) = le.filter(|le| !le.is_empty()) {
        pairs.push(("le".to_owned(), le));
    }
    let mut line = format!("{name}{suffix}");
    labels(&mut line, pairs);
    let _ = write!(line, " {value}");
    line
}

/// The entries of `map`, by name and then labels: in the same order at every render.
fn read<V>(map: &Map<V>) -> Vec<(Key, Arc<V>)> {
    let mut entries: Vec<(Key, Arc<V>)> = {
        let map = map.read().unwrap_or_else(|p| p.into_inner());
        map.by_key
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    entries.sort_by(|(a, _), (b, _)| {
        a.name().cmp(b.name()).then_with(|| {
            a.labels()
                .map(|l| (l.key(), l.value()))
                .cmp(b.labels().map(|l| (l.key(), l.value())))
        })
    });
    entries
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
        // Said the first time only: `counter!` registers at every sample, and each
        // would take the problems' lock (and tell every plugin) under load.
        static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if SAID.swap(true, Ordering::Relaxed) {
            return None;
        }
        problem::report("metrics-name-limit", || {
            format!(
                "metrics: {NAMES} metric names are kept, the most for one program; `{}` is not recorded, nor are other names past the limit (not said again), and their samples are counted in coldstart_telemetry_dropped_total{{signal=\"metrics\",reason=\"name_limit\"}} (is a name made from data?)",
                problem::one_line(name, 100)
            )
        });
        None
    };
    let own = OWN.contains(&key.name());
    {
        // A label set past the limit is found here too, as its name's overflow, and a
        // name past the limit on names as not kept: every sample of them taking the
        // write lock would hold up every other record.
        let map = map.read().unwrap_or_else(|p| p.into_inner());
        let kept = map.per_name.get(key.name());
        let found = map.by_key.get(key).cloned().or_else(|| {
            let kept = kept?;
            // The overflow series exists once either made it: a label set goes to it
            // only for its own reason.
            (kept.count >= SERIES_PER_NAME || too_long(key).is_some())
                .then(|| kept.overflow.clone())
                .flatten()
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
        overflow: None,
    });
    let too_long = too_long(key);
    if kept.count < SERIES_PER_NAME && too_long.is_none() {
        kept.count += 1;
        let v = Arc::new(new(key));
        by_key.insert(key.clone(), v.clone());
        return Some(v);
    }
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
    if let Some(label_bytes) = too_long {
        problem::report_about("metrics-label-length", key.name(), || {
            format!(
                "metrics: a label set of `{}` is {label_bytes} bytes long, more than the {LABEL_BYTES} kept for one series (is a label fed from requests?); samples of such label sets, and of any past the {SERIES_PER_NAME} series kept for the name, are recorded in its series labelled otel_metric_overflow=\"true\"",
                key.name()
            )
        });
    } else {
        problem::report_about("metrics-series-limit", key.name(), || {
            format!(
                "metrics: `{}` has {SERIES_PER_NAME} series, the most kept for one name; samples of other label sets are recorded in its series labelled otel_metric_overflow=\"true\"",
                key.name()
            )
        });
    }
    Some(v)
}

/// The length of `key`'s label set, names and values together, where it is past
/// [`LABEL_BYTES`].
fn too_long(key: &Key) -> Option<usize> {
    let bytes = key.labels().map(|l| l.key().len() + l.value().len()).sum();
    (bytes > LABEL_BYTES).then_some(bytes)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_kind_sorted_with_help() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        rec.describe_counter("jobs_total".into(), None, "Jobs done.".into());
        rec.register_counter(
            &Key::from_parts("jobs_total", vec![metrics::Label::new("kind", "a\"b")]),
            &m,
        )
        .increment(3);
        rec.register_gauge(&Key::from_name("1queue-depth"), &m)
            .set(2.5);
        let h = rec.register_histogram(&Key::from_name("wait_seconds"), &m);
        h.record(0.0002);
        h.record(20.0);
        let mut out = String::new();
        R.render(&mut out, &[], &[]);
        assert!(
            out.starts_with(
                "# HELP _1queue_depth 1queue depth\n# TYPE _1queue_depth gauge\n_1queue_depth 2.5\n"
            ),
            "{out}"
        );
        assert!(out.contains("# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\njobs_total{kind=\"a\\\"b\"} 3\n"), "{out}");
        assert!(
            out.contains(
                "wait_seconds_bucket{le=\"0.0001\"} 0\nwait_seconds_bucket{le=\"0.00025\"} 1\n"
            ),
            "{out}"
        );
        assert!(out.contains("wait_seconds_bucket{le=\"10\"} 1\nwait_seconds_bucket{le=\"+Inf\"} 2\nwait_seconds_sum 20.0002\nwait_seconds_count 2\n"), "{out}");
    }

    #[test]
    fn a_name_coldstart_owns_is_left_out() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        rec.register_gauge(&Key::from_name("process_threads"), &m)
            .set(99.0);
        rec.register_counter(&Key::from_name("jobs_total"), &m)
            .increment(1);
        let mut out = String::new();
        R.render(&mut out, &["process_threads"], &[]);
        assert!(!out.contains("process_threads"), "{out}");
        assert!(out.contains("\njobs_total 1\n"), "{out}");
    }

    #[test]
    fn a_key_registered_twice_is_one_series() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        for _ in 0..3 {
            rec.register_counter(&Key::from_name("hits_total"), &m)
                .increment(1);
        }
        let mut out = String::new();
        R.render(&mut out, &[], &[]);
        assert!(out.contains("\nhits_total 3\n"), "{out}");
    }
    /// Each of these made Prometheus (and promtool) refuse the whole scrape.
    #[test]
    fn what_would_make_the_scrape_unreadable_is_left_out() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        let label = metrics::Label::new;
        rec.register_counter(&Key::from_name(""), &m).increment(1);
        rec.register_counter(
            &Key::from_parts(
                "x_total",
                vec![
                    label("a.b", "1"),
                    label("a-b", "2"),
                    label("", "3"),
                    label("__tenant", "4"),
                    label("-_id", "5"),
                ],
            ),
            &m,
        )
        .increment(1);
        rec.register_histogram(&Key::from_parts("wait_seconds", vec![label("le", "x")]), &m)
            .record(0.5);
        rec.register_counter(&Key::from_name("jobs"), &m)
            .increment(2);
        rec.register_histogram(&Key::from_name("jobs"), &m)
            .record(1.0);
        rec.register_gauge(&Key::from_name("depth.now"), &m)
            .set(1.0);
        rec.register_gauge(&Key::from_name("depth-now"), &m)
            .set(2.0);
        let mut out = String::new();
        R.render(&mut out, &[], &[]);
        assert!(!out.contains("\n{"), "a sample without a name: {out}");
        assert!(out.contains("\nx_total{a_b=\"1\"} 1\n"), "{out}");
        assert!(
            out.contains("\nwait_seconds_bucket{le=\"0.5\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("\nwait_seconds_sum 0.5\n"), "{out}");
        assert!(out.contains("# TYPE jobs counter\njobs 2\n"), "{out}");
        assert!(!out.contains("jobs_bucket"), "{out}");
        assert_eq!(out.matches("\ndepth_now ").count(), 1, "{out}");
        assert_eq!(out.matches("# TYPE").count(), 4, "{out}");
    }

    /// Each metric left out is named, not only the first of its kind of problem:
    /// the reports are counted apart by name.
    #[test]
    fn every_name_left_out_is_named() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        rec.register_histogram(&Key::from_name("lag_seconds"), &m)
            .record(1.0);
        rec.register_gauge(&Key::from_name("lag_seconds_sum"), &m)
            .set(1.0);
        rec.register_counter(&Key::from_name("lag_seconds_count"), &m)
            .increment(1);
        let mut out = String::new();
        R.render(&mut out, &[], &[]);
        let named = crate::problem::subjects("metrics-histogram-suffix");
        for name in ["lag_seconds_sum", "lag_seconds_count"] {
            assert!(named.iter().any(|n| n == name), "{name}: {named:?}");
            assert!(!out.contains(&format!("# TYPE {name} ")), "{out}");
        }
    }

    #[test]
    fn a_nan_sample_counts_in_inf_only_and_leaves_the_sum_alone() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        let h = rec.register_histogram(&Key::from_name("wait_seconds"), &m);
        h.record(f64::NAN);
        h.record(0.5);
        let mut out = String::new();
        R.render(&mut out, &[], &[]);
        assert!(
            out.contains("wait_seconds_bucket{le=\"0.0001\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("wait_seconds_bucket{le=\"+Inf\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("wait_seconds_sum 0.5\nwait_seconds_count 2\n"),
            "{out}"
        );
    }

    #[test]
    fn a_description_reaches_a_name_that_needed_cleaning() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        rec.describe_counter("my.requests".into(), None, "Requests taken.".into());
        rec.register_counter(&Key::from_name("my.requests"), &m)
            .increment(1);
        let mut out = String::new();
        R.render(&mut out, &[], &[]);
        assert!(
            out.starts_with("# HELP my_requests Requests taken.\n"),
            "{out}"
        );
    }
    /// The HTTP names are kept past the limit on names, and so are their
    /// descriptions, made as the exporters start: after a program's 1000, they were
    /// dropped and the families got the default help.
    #[test]
    fn the_http_descriptions_are_kept_past_the_limit() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        for i in 0..NAMES {
            rec.describe_counter(format!("app_{i}_total").into(), None, "An app's.".into());
        }
        let http = super::super::HTTP_REQUESTS;
        rec.describe_counter(http.into(), None, "HTTP requests answered.".into());
        rec.describe_counter("one_more_total".into(), None, "Past the limit.".into());
        rec.register_counter(&Key::from_name(http), &m).increment(1);
        rec.register_counter(&Key::from_name("one_more_total"), &m)
            .increment(1);
        let mut out = String::new();
        R.render(&mut out, &[], &[]);
        assert!(
            out.contains(&format!("# HELP {http} HTTP requests answered.\n")),
            "{out}"
        );
        assert!(!out.contains("Past the limit."), "{out}");
    }

    #[test]
    fn a_name_gets_the_buckets_set_for_it() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        R.set_buckets("payload.bytes", &[1024.0, 4096.0]).unwrap();
        let h = rec.register_histogram(&Key::from_name("payload.bytes"), &m);
        h.record(5000.0);
        h.record(100.0);
        rec.register_histogram(&Key::from_name("wait_seconds"), &m)
            .record(0.5);
        let mut out = String::new();
        R.render(&mut out, &[], &[]);
        assert!(
            out.contains(
                "payload_bytes_bucket{le=\"1024\"} 1\npayload_bytes_bucket{le=\"4096\"} 1\npayload_bytes_bucket{le=\"+Inf\"} 2\npayload_bytes_sum 5100\n"
            ),
            "{out}"
        );
        assert!(
            out.contains("wait_seconds_bucket{le=\"0.0001\"} 0\n"),
            "{out}"
        );
        let err = R.set_buckets("wait_seconds", &[1.0]).unwrap_err();
        assert!(
            err.starts_with("`wait_seconds` was recorded before its buckets were set"),
            "{err}"
        );
        // Named as given, and as recorded: the cleaned name was neither.
        let err = R.set_buckets("wait-seconds", &[1.0]).unwrap_err();
        assert!(
            err.starts_with("`wait-seconds` was recorded (as `wait_seconds`, the same name in the exposition) before"),
            "{err}"
        );
        for bad in [&[][..], &[2.0, 1.0], &[1.0, f64::INFINITY]] {
            let err = R.set_buckets("other", bad).unwrap_err();
            assert!(err.contains("increasing order"), "{err}");
        }
    }

    #[test]
    fn of_two_names_that_clean_to_one_the_first_by_name_is_kept_whatever_the_values() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        let dotted = rec.register_gauge(&Key::from_name("a.b"), &m);
        dotted.set(5.0);
        rec.register_gauge(&Key::from_name("a-b"), &m).set(30.0);
        for later in [5.0, 100.0] {
            dotted.set(later);
            let mut out = String::new();
            R.render(&mut out, &[], &[]);
            // `a-b` sorts before `a.b`: the series does not jump with the values.
            assert!(out.contains("\na_b 30\n"), "{out}");
        }
    }

    /// Of two counters that clean to one series the counts are added: the export
    /// never goes down when a name sorting first comes later.
    #[test]
    fn two_counters_that_clean_to_one_series_are_added() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        rec.register_counter(&Key::from_name("jobs_done"), &m)
            .increment(5000);
        let render = || {
            let mut out = String::new();
            R.render(&mut out, &[], &[]);
            out
        };
        assert!(render().contains("\njobs_done 5000\n"));
        // `jobs.done` sorts before `jobs_done`: it was the one exported, at 1.
        rec.register_counter(&Key::from_name("jobs.done"), &m)
            .increment(1);
        let out = render();
        assert!(out.contains("\njobs_done 5001\n"), "{out}");
        assert_eq!(out.matches("\njobs_done ").count(), 1, "{out}");
        // Their labels given in different orders: still one series, written once.
        let labelled = |name: &'static str, labels: [(&'static str, &'static str); 2]| {
            Key::from_parts(
                name,
                labels.map(|(k, v)| metrics::Label::new(k, v)).to_vec(),
            )
        };
        rec.register_counter(&labelled("jobs_done", [("a", "1"), ("b", "2")]), &m)
            .increment(2);
        rec.register_counter(&labelled("jobs.done", [("b", "2"), ("a", "1")]), &m)
            .increment(3);
        let out = render();
        assert!(out.contains("\njobs_done{a=\"1\",b=\"2\"} 5\n"), "{out}");
        assert!(!out.contains("b=\"2\",a="), "{out}");
    }

    /// Of two histograms that clean to one series each bucket, the sum and the count
    /// are added: a histogram's buckets are counters, and the first by name alone made
    /// them fall when a name sorting first came later (read by `rate()` as a reset).
    #[test]
    fn two_histograms_that_clean_to_one_series_are_added() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        let h = rec.register_histogram(&Key::from_name("lat_seconds"), &m);
        for _ in 0..5 {
            h.record(0.5);
        }
        let render = || {
            let mut out = String::new();
            R.render(&mut out, &[], &[]);
            out
        };
        assert!(render().contains("\nlat_seconds_count 5\n"));
        // `lat.seconds` sorts before `lat_seconds`: it was the one exported, at 1.
        rec.register_histogram(&Key::from_name("lat.seconds"), &m)
            .record(0.25);
        let out = render();
        assert!(out.contains("\nlat_seconds_count 6\n"), "{out}");
        assert!(out.contains("\nlat_seconds_sum 2.75\n"), "{out}");
        assert!(
            out.contains("\nlat_seconds_bucket{le=\"0.25\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("\nlat_seconds_bucket{le=\"+Inf\"} 6\n"),
            "{out}"
        );
        assert_eq!(out.matches("\nlat_seconds_count ").count(), 1, "{out}");
        assert_eq!(
            out.matches("lat_seconds_bucket{le=\"+Inf\"}").count(),
            1,
            "{out}"
        );
    }

    /// A label with an empty value is no label, as Prometheus reads it: `x{a=""}` and
    /// `x` were written as two series that a scrape stored as one, one value lost.
    #[test]
    fn a_label_with_an_empty_value_is_left_out() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        rec.register_counter(
            &Key::from_parts("jobs_total", vec![metrics::Label::new("tenant", "")]),
            &m,
        )
        .increment(5);
        rec.register_counter(&Key::from_name("jobs_total"), &m)
            .increment(7);
        rec.register_gauge(
            &Key::from_parts(
                "depth",
                vec![
                    metrics::Label::new("queue", ""),
                    metrics::Label::new("kind", "a"),
                ],
            ),
            &m,
        )
        .set(3.0);
        let mut out = String::new();
        R.render(&mut out, &[], &[]);
        assert!(out.contains("\njobs_total 12\n"), "{out}");
        assert_eq!(out.matches("\njobs_total").count(), 1, "{out}");
        assert!(out.contains("\ndepth{kind=\"a\"} 3\n"), "{out}");
        assert!(!out.contains("tenant") && !out.contains("queue"), "{out}");
    }

    /// A histogram's problems are said by the histogram's name, once, not by each of
    /// its `_bucket`, `_sum` and `_count` series (names that do not exist).
    #[test]
    fn a_histograms_problems_name_the_histogram() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        rec.register_histogram(
            &Key::from_parts("grouped_seconds", vec![metrics::Label::new("job", "x")]),
            &m,
        )
        .record(1.0);
        let mut out = String::new();
        R.render(&mut out, &[], &["job"]);
        assert!(
            out.contains("grouped_seconds_count{exported_job=\"x\"} 1\n"),
            "{out}"
        );
        let subjects = problem::subjects("metrics-grouping-label");
        assert!(
            subjects.iter().any(|s| s == "grouped_seconds"),
            "{subjects:?}"
        );
        assert!(
            !subjects.iter().any(|s| s.starts_with("grouped_seconds_")),
            "{subjects:?}"
        );
    }

    /// A HELP line always has text: `promtool check metrics` refuses one without
    /// (an empty description, or a name that reads as nothing).
    #[test]
    fn a_help_line_is_never_empty() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        rec.describe_gauge("x".into(), None, " ".into());
        rec.register_gauge(&Key::from_name("x"), &m).set(1.0);
        rec.register_gauge(&Key::from_name("_"), &m).set(2.0);
        let mut out = String::new();
        R.render(&mut out, &[], &[]);
        assert!(out.contains("# HELP x x\n"), "{out}");
        assert!(out.contains("# HELP _ _\n"), "{out}");
        assert!(!out.contains(" \n"), "{out}");
    }

    /// A counter at its greatest value stays there: wrapped to 0, Prometheus would
    /// read a reset.
    #[test]
    fn a_counter_saturates_instead_of_wrapping() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        let counter = rec.register_counter(&Key::from_name("huge_total"), &m);
        counter.absolute(u64::MAX - 1);
        counter.increment(5);
        let mut out = String::new();
        R.render(&mut out, &[], &[]);
        assert!(
            out.contains(&format!("\nhuge_total {}\n", u64::MAX)),
            "{out}"
        );
    }

    /// Clashing series are said by their family: one subject however many label
    /// values clash, so what the problem reports keep stays bounded.
    #[test]
    fn past_the_series_limit_a_name_records_in_its_overflow_series() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        let per_user = |id: usize| {
            let key = Key::from_parts(
                "logins_total",
                vec![metrics::Label::new("user", id.to_string())],
            );
            rec.register_counter(&key, &m)
        };
        for id in 0..SERIES_PER_NAME + 5 {
            per_user(id).increment(2);
        }
        // A label set kept before the limit is still its own series.
        per_user(7).increment(1);
        // Another name has limits of its own.
        rec.register_counter(
            &Key::from_parts("other_total", vec![metrics::Label::new("user", "x")]),
            &m,
        )
        .increment(1);
        let mut out = String::new();
        R.render(&mut out, &[], &[]);
        assert_eq!(
            out.matches("\nlogins_total{user=").count(),
            SERIES_PER_NAME,
            "{out}"
        );
        assert!(out.contains("\nlogins_total{user=\"7\"} 3\n"), "{out}");
        assert!(
            out.contains("\nlogins_total{otel_metric_overflow=\"true\"} 10\n"),
            "{out}"
        );
        assert!(out.contains("\nother_total{user=\"x\"} 1\n"), "{out}");
        assert_eq!(
            crate::problem::subjects("metrics-series-limit"),
            ["logins_total"],
            "said once, for the name past its limit"
        );
    }

    /// A label set past [`LABEL_BYTES`] is recorded in the overflow series: 2000 paths
    /// of 64 KiB each were kept whole, 128 MiB for one name.
    #[test]
    fn a_label_set_too_long_is_recorded_in_the_overflow_series() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        let hit = |path: String| {
            let key = Key::from_parts("hits_total", vec![metrics::Label::new("path", path)]);
            rec.register_counter(&key, &m).increment(1);
        };
        // `path` and the value: at the limit, kept; one byte more, not.
        hit("a".repeat(LABEL_BYTES - "path".len()));
        hit("b".repeat(LABEL_BYTES - "path".len() + 1));
        hit("c".repeat(64 << 10));
        hit("/short".to_owned());
        let mut out = String::new();
        R.render(&mut out, &[], &[]);
        assert!(out.contains(&format!(
            "\nhits_total{{path=\"{}\"}} 1\n",
            "a".repeat(4092)
        )));
        assert!(!out.contains("bbb") && !out.contains("ccc"), "kept whole");
        assert!(
            out.contains("\nhits_total{otel_metric_overflow=\"true\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("\nhits_total{path=\"/short\"} 1\n"), "{out}");
        assert_eq!(
            crate::problem::subjects("metrics-label-length"),
            ["hits_total"]
        );
    }

    #[test]
    fn past_the_name_limit_a_new_name_is_counted_as_dropped_not_kept() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        let named = |name: String| Key::from_name(name);
        // Names of the three kinds share the limit.
        for i in 0..NAMES - 2 {
            rec.register_counter(&named(format!("requests_{i}_total")), &m)
                .increment(1);
        }
        rec.register_gauge(&named("queue_depth".into()), &m)
            .set(4.0);
        rec.register_histogram(&named("wait_seconds".into()), &m)
            .record(0.5);
        let dropped = || problem::dropped(Dropped::MetricNameLimit);
        let before = dropped();
        let reported = problem::reports("metrics-name-limit");
        rec.describe_counter("late_total".into(), None, "Never kept.".into());
        rec.register_counter(&named("late_total".into()), &m)
            .increment(3);
        rec.register_gauge(&named("late_gauge".into()), &m).set(1.0);
        rec.register_histogram(&named("late_seconds".into()), &m)
            .record(1.0);
        rec.register_histogram(&named("late_seconds".into()), &m)
            .record(2.0);
        // One count a sample, whatever it added; said once, not at every sample.
        assert_eq!(dropped() - before, 4);
        assert_eq!(problem::reports("metrics-name-limit") - reported, 1);
        // coldstart's own HTTP names are kept past the limit, and count in none.
        rec.register_gauge(&named("http_requests_in_flight".into()), &m)
            .set(2.0);
        // A name kept before the limit still takes new label sets and samples.
        rec.register_counter(
            &Key::from_parts("requests_0_total", vec![metrics::Label::new("code", "500")]),
            &m,
        )
        .increment(2);
        rec.register_gauge(&named("queue_depth".into()), &m)
            .set(5.0);
        let mut out = String::new();
        R.render(&mut out, &[], &[]);
        assert_eq!(out.matches("# TYPE ").count(), NAMES + 1, "{out}");
        assert!(out.contains("\nhttp_requests_in_flight 2\n"), "{out}");
        assert!(!out.contains("late_"), "{out}");
        assert!(
            out.contains("\nrequests_0_total{code=\"500\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("\nqueue_depth 5\n"), "{out}");
        assert!(out.contains("\nwait_seconds_count 1\n"), "{out}");
        assert!(R.help.read().unwrap().len() <= NAMES);
    }

    #[test]
    fn clashing_series_are_said_once_per_family_not_per_label_value() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        for id in 0..200 {
            for name in ["jobs.clash", "jobs-clash"] {
                let key = Key::from_parts(name, vec![metrics::Label::new("id", id.to_string())]);
                rec.register_gauge(&key, &m).set(1.0);
            }
        }
        let mut out = String::new();
        R.render(&mut out, &[], &[]);
        assert_eq!(out.matches("\njobs_clash{").count(), 200, "{out}");
        assert_eq!(
            crate::problem::subjects("metrics-same-series")
                .iter()
                .filter(|s| s.starts_with("jobs_clash"))
                .collect::<Vec<_>>(),
            ["jobs_clash"]
        );
    }

    #[test]
    fn a_family_named_as_a_histograms_own_series_is_left_out() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        rec.register_histogram(&Key::from_name("payload"), &m)
            .record(1.0);
        rec.register_counter(&Key::from_name("payload_count"), &m)
            .increment(7);
        rec.register_gauge(&Key::from_name("payload_sum"), &m)
            .set(7.0);
        rec.register_counter(&Key::from_name("payload_bucket"), &m)
            .increment(7);
        let mut out = String::new();
        R.render(&mut out, &[], &[]);
        assert!(out.contains("\npayload_count 1\n"), "{out}");
        assert!(!out.contains("# TYPE payload_count"), "{out}");
        assert!(!out.contains("# TYPE payload_sum"), "{out}");
        assert!(!out.contains("# TYPE payload_bucket"), "{out}");
        assert!(!out.contains(" 7\n"), "{out}");
    }

    #[test]
    fn infinities_are_spelled_as_the_format_says() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        rec.register_gauge(&Key::from_name("up"), &m)
            .set(f64::INFINITY);
        rec.register_gauge(&Key::from_name("down"), &m)
            .set(f64::NEG_INFINITY);
        let h = rec.register_histogram(&Key::from_name("wait_seconds"), &m);
        h.record(1.0);
        h.record(f64::INFINITY);
        h.record(f64::NEG_INFINITY);
        h.record(f64::NAN);
        let mut out = String::new();
        R.render(&mut out, &[], &[]);
        assert!(out.contains("\nup +Inf\n"), "{out}");
        assert!(out.contains("\ndown -Inf\n"), "{out}");
        // Counted in their buckets, kept out of the sum: one infinity made it +Inf for
        // good, and one of each sign NaN.
        assert!(
            out.contains("\nwait_seconds_bucket{le=\"+Inf\"} 4\n"),
            "{out}"
        );
        assert!(
            out.contains("\nwait_seconds_bucket{le=\"0.0001\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("\nwait_seconds_sum 1\n"), "{out}");
        assert!(out.contains("\nwait_seconds_count 4\n"), "{out}");
    }

    /// A label or a name that begins with a digit keeps it, after a `_`: `0_shard` was
    /// cleaned to `__shard`, a reserved name, and left out.
    #[test]
    fn a_name_that_begins_with_a_digit_keeps_it() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        rec.register_counter(
            &Key::from_parts("5xx_total", vec![metrics::Label::new("0_shard", "a")]),
            &m,
        )
        .increment(1);
        let mut out = String::new();
        R.render(&mut out, &[], &[]);
        assert!(out.contains("\n_5xx_total{_0_shard=\"a\"} 1\n"), "{out}");
    }

    /// The gateway sets a push's grouping labels on every series: two series that
    /// differed only by one would clash, and every push would be refused.
    #[test]
    fn a_push_writes_the_programs_grouping_labels_as_exported() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        for job in ["resize", "thumb"] {
            let key = Key::from_parts("tasks_total", vec![metrics::Label::new("job", job)]);
            rec.register_counter(&key, &m).increment(1);
        }
        let mut out = String::new();
        R.render(&mut out, &[], &["job", "instance"]);
        assert!(
            out.contains(
                "\ntasks_total{exported_job=\"resize\"} 1\ntasks_total{exported_job=\"thumb\"} 1\n"
            ),
            "{out}"
        );
        let mut scraped = String::new();
        R.render(&mut scraped, &[], &[]);
        assert!(
            scraped.contains("\ntasks_total{job=\"resize\"} 1\n"),
            "{scraped}"
        );
    }

    /// A label renamed or left out is said once a family in a rendering, not once a
    /// sample line: each saying takes the problems' lock and tells every plugin.
    #[test]
    fn a_labels_problem_is_said_once_a_family_not_once_a_line() {
        static R: Registry = Registry::new();
        let rec = Installed(&R);
        let m = Metadata::new("t", metrics::Level::INFO, None);
        for job in ["a", "b", "c"] {
            let labels = vec![
                metrics::Label::new("job", job),
                metrics::Label::new("__x", "y"),
            ];
            let key = Key::from_parts("said_once_seconds", labels);
            rec.register_histogram(&key, &m).record(0.5);
        }
        let said = |kind| problem::reports_about(kind, "said_once_seconds");
        let before = (
            said("metrics-grouping-label"),
            said("metrics-label-left-out"),
        );
        let mut out = String::new();
        R.render(&mut out, &[], &["job"]);
        assert!(out.contains("exported_job=\"c\""), "{out}");
        assert!(!out.contains("__x"), "{out}");
        assert_eq!(
            (
                said("metrics-grouping-label"),
                said("metrics-label-left-out")
            ),
            (before.0 + 1, before.1 + 1)
        );
    }
}
