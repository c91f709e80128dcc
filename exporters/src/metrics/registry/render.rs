//! The registry in the Prometheus text format: families sorted by name and labels,
//! what would make a scrape unreadable left out and said once.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use metrics::Key;

use crate::problem;

use super::super::text::{Float, Kind, header, labels};
use super::{Map, Registry, sanitize};

impl Registry {
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
            let mut said = false;
            for line in &lines {
                let series = series(line);
                if !written.insert(series) {
                    // Said by the family's name: by series, every label value would be
                    // a subject of its own, and their number unbounded. Once a
                    // rendering: not once a line, each taking the problems' lock.
                    if !std::mem::replace(&mut said, true) {
                        problem::report_about("metrics-same-series", &name, || {
                            recorded_twice(&name, series, "only the first is exported")
                        });
                    }
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
    let mut said = false;
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
        // Once a rendering, as above: a histogram has a line a bucket.
        if !std::mem::replace(&mut said, true) {
            problem::report_about("metrics-same-series", name, || {
                recorded_twice(name, series(&line), "their counts are added")
            });
        }
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
