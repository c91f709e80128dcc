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

/// Runs every target `runs` times, alternating (each round in the order
/// [`round_order`] gives, so that every target goes first, and follows each other,
/// equally often), and calls
/// `progress(done, total)` after each run.
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
    let samples = rotate(targets, runs, cgroup, progress, |t| run_once(t, cgroup))?;
    Ok(samples
        .into_iter()
        .map(|(name, samples)| Series { name, samples })
        .collect())
}

/// Runs `run` on every target `runs` times, each round in the order [`round_order`]
/// gives, after one run of each that is not recorded; each target's name and its
/// results in run order. Each run in `cgroup` ends with everything in it killed
/// ([`in_cgroup`]).
pub(crate) fn rotate<T>(
    targets: &[Target],
    runs: usize,
    cgroup: Option<&TempCgroup>,
    mut progress: impl FnMut(usize, usize),
    mut run: impl FnMut(&Target) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<(String, Vec<T>)>> {
    let mut run = |t: &Target| in_cgroup(cgroup, || run(t));
    let mut results: Vec<(String, Vec<T>)> = targets
        .iter()
        .map(|t| (t.name.clone(), Vec::with_capacity(runs)))
        .collect();
    let total = runs * targets.len();
    let mut done = 0;
    // A measurement's first exec of each program (its pages not yet in the page cache,
    // the CPU's clock still ramping up, a new cgroup's first use) is paid by neither
    // side's figures: round 0 would always give it to whichever it runs first.
    for target in targets {
        coldstart_bootstrap::say!("warm-up run of {} (not recorded)", target.name);
        run(target).with_context(|| format!("the warm-up run of {}", target.name))?;
    }
    for round in 0..runs {
        // Between rounds, a program of no interest runs, unrecorded: the first run of
        // a round follows it, not the last of the round before. Rounds follow each
        // other in a fixed pattern, so that last target always came before the same
        // first (one target ran after bare tokio 19 times in 40, another 10), which
        // the balance within rounds does not see.
        if round > 0 && targets.len() > 2 {
            between_rounds();
        }
        for i in round_order(round, targets.len()) {
            let result = run(&targets[i])
                .with_context(|| format!("run {} of {}", round + 1, targets[i].name))?;
            results[i].1.push(result);
            done += 1;
            progress(done, total);
        }
    }
    Ok(results)
}

/// The run between two rounds: `true`, a program that does nothing, so that no
/// target's run comes right before a round's first.
fn between_rounds() {
    #[cfg(test)]
    tests::BETWEEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let _ = std::process::Command::new("true")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Runs `run`, then, in `cgroup`, kills what is left in it: what the program started
/// outside its process group (a `setsid` daemon) ends with the run too. A run that
/// failed while the cgroup's memory limit killed a process says so.
fn in_cgroup<T>(
    cgroup: Option<&TempCgroup>,
    run: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let Some(cg) = cgroup else {
        return run();
    };
    let before = cg.oom_kills();
    let result = run();
    cg.kill_all();
    result.map_err(|e| match (before, cg.oom_kills()) {
        (Some(before), Some(after)) if after > before => e.context(format!(
            "the cgroup's memory limit (--memory) killed {} process(es) during this run",
            after - before
        )),
        _ => e,
    })
}

/// The order of `n` targets in round `round`: the rows of a Williams design, one a
/// round, in turn. Over every `n` rounds (`2n` for an odd `n`) each target takes
/// each place, and follows each other target within a round, equally often. A fixed
/// rotation gave every target the same predecessor in every round, and the program
/// run right after `baseline-tokio` measured slower (BENCHMARKS.md, "Round order");
/// a shuffle seeded by the round shared places and predecessors out unevenly over
/// 40 or 60 rounds (one target followed bare tokio 19 times in 40, another 8).
pub fn round_order(round: usize, n: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    // The first row: 0, 1, n-1, 2, n-2, 3, ...; the others add the row's number.
    let first = (0..n).map(|j| match j {
        0 => 0,
        j if j % 2 == 1 => j.div_ceil(2),
        j => n - j / 2,
    });
    let rows = if n.is_multiple_of(2) { n } else { 2 * n };
    let row = round % rows;
    let mut order: Vec<usize> = first.map(|t| (t + row) % n).collect();
    // For an odd `n` the rows read backwards make the predecessors even.
    if row >= n {
        order.reverse();
    }
    order
}

/// `runs` rounded up to whole cycles of [`round_order`] for `n` targets: `n` rounds,
/// `2n` for an odd `n`. Only over whole cycles does each target go first, and follow
/// each other, equally often: 30 rounds of four targets gave two of them the first
/// place eight times and the other two seven.
pub fn whole_cycles(runs: usize, n: usize) -> usize {
    let cycle = match n {
        0 | 1 => 1,
        n if n.is_multiple_of(2) => n,
        n => 2 * n,
    };
    runs.div_ceil(cycle) * cycle
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
            "{:width$}  {:>7.3} {:>7.3} {:>7.3} {:>8}  {:>8.2} {:>8}  {:>7}\n",
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

    /// Over a whole cycle of rounds (`n`, or `2n` for an odd `n`) every target takes
    /// every place, and follows every other target, equally often, with every target
    /// once in each round; the same round always has the same order. (The shuffle
    /// before this put one target after bare tokio 19 times in 40 rounds, another 8.)
    #[test]
    fn every_target_takes_every_place_and_follows_every_other_equally() {
        assert!(round_order(7, 0).is_empty());
        assert_eq!(round_order(7, 1), [0]);
        for n in 2..=7 {
            let rows = if n % 2 == 0 { n } else { 2 * n };
            let mut place = vec![vec![0usize; n]; n];
            let mut after = vec![vec![0usize; n]; n];
            for round in 0..rows {
                let order = round_order(round, n);
                let mut sorted = order.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "round {round} of {n}");
                assert_eq!(order, round_order(round + rows, n));
                for (p, &t) in order.iter().enumerate() {
                    place[t][p] += 1;
                }
                for w in order.windows(2) {
                    after[w[0]][w[1]] += 1;
                }
            }
            let each = rows / n;
            for t in 0..n {
                assert!(place[t].iter().all(|&k| k == each), "{n}: places {place:?}");
                for u in (0..n).filter(|&u| u != t) {
                    assert_eq!(after[t][u], each, "{n}: {u} after {t}: {after:?}");
                }
            }
        }
    }

    /// The harnesses' default of 30 rounds is not whole cycles for four targets (nor
    /// three); rounded up, every target has the first place as often as each other.
    #[test]
    fn runs_round_up_to_whole_cycles_of_the_order() {
        assert_eq!(whole_cycles(30, 4), 32);
        assert_eq!(whole_cycles(30, 3), 30);
        assert_eq!(whole_cycles(40, 3), 42);
        assert_eq!(whole_cycles(60, 4), 60);
        assert_eq!(whole_cycles(3, 2), 4);
        assert_eq!(whole_cycles(7, 1), 7);
        assert_eq!(whole_cycles(7, 0), 7);
        for n in 1..=8 {
            for runs in 1..=40 {
                let rounds = whole_cycles(runs, n);
                assert!(
                    rounds >= runs && rounds < runs + 2 * n,
                    "{runs} of {n}: {rounds}"
                );
                let mut first = vec![0usize; n];
                for round in 0..rounds {
                    first[round_order(round, n)[0]] += 1;
                }
                assert!(
                    first.iter().all(|&k| k == first[0]),
                    "{runs} of {n}: {first:?}"
                );
            }
        }
    }

    /// Runs of [`between_rounds`] in this test binary.
    pub(super) static BETWEEN: std::sync::atomic::AtomicUsize =
        std::sync::atomic::AtomicUsize::new(0);

    /// Rounds run back to back: the last target of one came right before the first of
    /// the next, in a pattern as fixed as the rounds'. Counted over the joined
    /// sequence, with four targets one ordered pair came 19 times in 40 rounds and
    /// another 10, which the balance within rounds does not see: with three targets or
    /// more, a program of no interest now runs between rounds.
    #[test]
    fn rounds_of_three_targets_or_more_are_kept_apart() {
        let joined = |n: usize, rounds: usize| -> Vec<Vec<usize>> {
            let mut after = vec![vec![0usize; n]; n];
            let sequence: Vec<usize> = (0..rounds).flat_map(|r| round_order(r, n)).collect();
            for w in sequence.windows(2) {
                after[w[0]][w[1]] += 1;
            }
            after
        };
        // What the joined sequence gave before: uneven.
        let after = joined(4, 40);
        assert_eq!(after[1][0], 19, "{after:?}");
        assert_eq!(after[2][0], 10, "{after:?}");
        // Now each round boundary has a run between.
        let targets: Vec<Target> = ["/bin/true", "/bin/true", "/bin/true"]
            .iter()
            .map(|p| crate::compare::target(p).unwrap())
            .collect();
        let before = BETWEEN.load(std::sync::atomic::Ordering::Relaxed);
        rotate(&targets, 4, None, |_, _| {}, |_| Ok(())).unwrap();
        assert_eq!(
            BETWEEN.load(std::sync::atomic::Ordering::Relaxed) - before,
            3
        );
    }

    #[test]
    fn each_target_runs_once_unrecorded_before_the_rounds() {
        let targets: Vec<Target> = ["/bin/true", "/bin/false"]
            .iter()
            .map(|p| crate::compare::target(p).unwrap())
            .collect();
        let mut calls = Vec::new();
        let results = rotate(
            &targets,
            3,
            None,
            |_, _| {},
            |t| {
                calls.push(t.name.clone());
                Ok(calls.len())
            },
        )
        .unwrap();
        assert_eq!(calls.len(), 8, "{calls:?}");
        // The warm-up runs are the first two calls, one of each in order, and not in
        // the results.
        assert_eq!(calls[..2], ["true", "false"]);
        for (_, recorded) in &results {
            assert_eq!(recorded.len(), 3);
            assert!(recorded.iter().all(|call| *call > 2), "{results:?}");
        }
    }

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
