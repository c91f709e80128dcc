//! Many runs of many targets: alternating order, summary statistics, and the table
//! the harness prints.

use anyhow::Context;

use super::{Sample, Target, run_once};
use crate::cgroup::TempCgroup;

/// All runs of one target.
#[derive(Debug, Clone)]
pub struct Series {
    /// The target's name.
    pub name: String,
    /// Its samples, in run order.
    pub samples: Vec<Sample>,
}

/// Median, min and max of some values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// The median (mean of the middle two for an even count).
    pub median: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

impl Stats {
    /// Stats of `values`; all zero when empty.
    pub fn of(mut values: Vec<f64>) -> Stats {
        if values.is_empty() {
            return Stats {
                median: 0.0,
                min: 0.0,
                max: 0.0,
            };
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Stats {
            median,
            min: values[0],
            max: values[n - 1],
        }
    }
}

impl Series {
    /// Time to first response in milliseconds.
    pub fn first_response_ms(&self) -> Stats {
        Stats::of(
            self.samples
                .iter()
                .map(|s| s.first_response.as_secs_f64() * 1e3)
                .collect(),
        )
    }

    /// RSS at first response in MiB.
    pub fn rss_mib(&self) -> Stats {
        Stats::of(
            self.samples
                .iter()
                .map(|s| s.rss_bytes as f64 / (1 << 20) as f64)
                .collect(),
        )
    }

    /// Threads at first response.
    pub fn threads(&self) -> Stats {
        Stats::of(self.samples.iter().map(|s| f64::from(s.threads)).collect())
    }
}

/// Runs every target `runs` times, alternating (the order rotates each round so no
/// target always goes first), and calls `progress(done, total)` after each run.
///
/// # Errors
///
/// The first run that fails, naming the target.
pub fn alternate(
    targets: &[Target],
    runs: usize,
    cgroup: Option<&TempCgroup>,
    progress: impl FnMut(usize, usize),
) -> anyhow::Result<Vec<Series>> {
    let samples = rotate(targets, runs, progress, |t| run_once(t, cgroup))?;
    Ok(samples
        .into_iter()
        .map(|(name, samples)| Series { name, samples })
        .collect())
}

/// Runs `run` on every target `runs` times in rotating order; each target's name and
/// its results in run order.
pub(crate) fn rotate<T>(
    targets: &[Target],
    runs: usize,
    mut progress: impl FnMut(usize, usize),
    mut run: impl FnMut(&Target) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<(String, Vec<T>)>> {
    let mut results: Vec<(String, Vec<T>)> = targets
        .iter()
        .map(|t| (t.name.clone(), Vec::with_capacity(runs)))
        .collect();
    let total = runs * targets.len();
    let mut done = 0;
    for round in 0..runs {
        for k in 0..targets.len() {
            let i = (round + k) % targets.len();
            let result = run(&targets[i])
                .with_context(|| format!("run {} of {}", round + 1, targets[i].name))?;
            results[i].1.push(result);
            done += 1;
            progress(done, total);
        }
    }
    Ok(results)
}

/// A table of series, with the ratio of each median to the median of `baseline`.
pub fn table(series: &[Series], baseline: &str) -> String {
    let base = series
        .iter()
        .find(|s| s.name == baseline)
        .map(|s| (s.first_response_ms().median, s.rss_mib().median));
    let width = series
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(4)
        .max(6);
    let mut out = format!(
        "{:width$}  {:>7} {:>7} {:>7} {:>8}  {:>8} {:>8}  {:>7}\n",
        "target", "median", "min", "max", "ratio", "RSS MiB", "ratio", "threads"
    );
    out.push_str(&format!(
        "{:width$}  {:>7} {:>7} {:>7} {:>8}  {:>8} {:>8}  {:>7}\n",
        "", "ms", "ms", "ms", "time", "median", "RSS", "median"
    ));
    for s in series {
        let t = s.first_response_ms();
        let r = s.rss_mib();
        let ratio = |v: f64, b: f64| {
            if b > 0.0 {
                format!("{:.2}x", v / b)
            } else {
                "-".into()
            }
        };
        let (tr, rr) = base.map_or(("-".into(), "-".into()), |(bt, br)| {
            (ratio(t.median, bt), ratio(r.median, br))
        });
        out.push_str(&format!(
            "{:width$}  {:>7.3} {:>7.3} {:>7.3} {:>8}  {:>8.2} {:>8}  {:>7.0}\n",
            s.name,
            t.median,
            t.min,
            t.max,
            tr,
            r.median,
            rr,
            s.threads().median
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_of_even_and_odd_counts() {
        assert_eq!(
            Stats::of(vec![3.0, 1.0, 2.0]),
            Stats {
                median: 2.0,
                min: 1.0,
                max: 3.0
            }
        );
        assert_eq!(Stats::of(vec![4.0, 1.0, 2.0, 3.0]).median, 2.5);
        assert_eq!(Stats::of(vec![]).median, 0.0);
    }
}
