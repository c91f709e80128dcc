//! `cargo coldstart compare A B`: many alternating cold starts of two programs, on the
//! measurement engine the benchmark harness uses. For HTTP servers: exec to first
//! response, RSS and threads at that moment, and how each exits on SIGTERM. For
//! Lambda functions (`--lambda`): a queued invocation at the Runtime API emulator,
//! exec to the caller's answer, init duration and warm invocations.
//!
//! It never leaves a process or a cgroup behind, also on Ctrl-C (see
//! [`crate::interrupt`]).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cgroup::{self, Limits, TempCgroup};
use crate::measure::{self, Exit, Sample, Series, Stats, Target};

mod args;
mod target;

pub use args::{parse, split_equals};
pub(crate) use target::find_program;
pub use target::{apply_url, target, target_of_words};

/// How long a program may take to exit after SIGTERM before it is killed.
pub const STOP_WITHIN: Duration = Duration::from_secs(5);

/// What `compare` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// The first program: the baseline of the ratios.
    pub a: Target,
    /// The second program.
    pub b: Target,
    /// Runs of each.
    pub runs: usize,
    /// Limits of a cgroup every run starts in.
    pub limits: Option<Limits>,
    /// One JSON object instead of the table.
    pub json: bool,
    /// Lambda mode: cargo-lambda, the package the emulator runs in, warm invocations.
    pub lambda: Option<Lambda>,
}

/// `--lambda` settings.
#[derive(Debug, Clone)]
pub struct Lambda {
    /// The `cargo-lambda` executable.
    pub cargo_lambda: PathBuf,
    /// A Cargo package directory for the emulator (it reads the package's metadata).
    pub package: PathBuf,
    /// Warm invocations after each cold start.
    pub warm: usize,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` for both functions, in MB.
    pub memory_mb: u64,
}

/// Whether this process may run `options`: `--cpus` and `--memory` put the programs
/// in a cgroup, which needs root. Known before anything runs, and said as a usage
/// error (after the options' own errors, which `parse` says whoever runs it).
///
/// # Errors
///
/// Limits asked for by a user other than root.
pub fn may_run(options: &Options) -> anyhow::Result<()> {
    if options.limits.is_some() && !crate::cgroup::is_root() {
        bail!(
            "--cpus/--memory run the programs in a cgroup, which needs root; run as root, or drop them{}",
            if options.lambda.is_some() {
                " (without --memory, AWS_LAMBDA_FUNCTION_MEMORY_SIZE=MB in compare's environment sets the functions' memory size, and needs no cgroup)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// Runs the comparison; the report as text or JSON.
///
/// # Errors
///
/// A cgroup that cannot be created, or a run that fails (naming the program and
/// showing its stderr tail).
pub fn run(options: &Options) -> anyhow::Result<String> {
    crate::interrupt::install();
    let mut a = options.a.clone();
    let mut b = options.b.clone();
    if a.name == b.name {
        a.name = format!("A {}", a.name);
        b.name = format!("B {}", b.name);
    }
    let cg = match options.limits {
        Some(limits) => Some(
            TempCgroup::create(&format!("coldstart-compare-{}", std::process::id()), limits)
                .context("--cpus/--memory need a cgroup")?,
        ),
        None => None,
    };
    let targets = [a, b];
    match &options.lambda {
        Some(lambda) => lambda_run(options, lambda, &targets, cg.as_ref()),
        None => http_run(options, &targets, cg.as_ref()),
    }
}

fn setting(options: &Options) -> String {
    match options.limits {
        None => "unconstrained".to_owned(),
        Some(l) => format!(
            "cgroup {} CPU, {} memory",
            l.cpus.map_or("unlimited".into(), |c| c.to_string()),
            l.memory_bytes
                .map_or("unlimited".into(), cgroup::memory_shown)
        ),
    }
}

fn http_run(
    options: &Options,
    targets: &[Target],
    cg: Option<&TempCgroup>,
) -> anyhow::Result<String> {
    let progress = measure::progress("compare");
    let runs = measure::rotate(targets, options.runs, cg, progress, |t| {
        let running = measure::start(t, cg)?;
        let sample = running.sample;
        Ok((sample, running.terminate(STOP_WITHIN)))
    })?;
    let series: Vec<Series> = runs
        .iter()
        .map(|(name, r)| Series {
            name: name.clone(),
            samples: r.iter().map(|(s, _)| *s).collect(),
        })
        .collect();
    let paired = paired_ratios(
        &runs[0].1.iter().map(|(s, _)| ms(s)).collect::<Vec<_>>(),
        &runs[1].1.iter().map(|(s, _)| ms(s)).collect::<Vec<_>>(),
    );
    let exits: Vec<String> = runs
        .iter()
        .map(|(_, r)| exits(&r.iter().map(|(_, e)| *e).collect::<Vec<_>>()))
        .collect();
    if options.json {
        let json = serde_json::json!({
            "mode": "http",
            "setting": setting(options),
            "runs": options.runs,
            "targets": series.iter().zip(&runs).map(|(s, (_, r))| serde_json::json!({
                "name": s.name,
                "first_response_ms": stats_json(s.first_response_ms()),
                "rss_mib": stats_json(s.rss_mib()),
                "threads": stats_json(s.threads()),
                "exit": exit_json(&r.iter().map(|(_, e)| *e).collect::<Vec<_>>()),
            })).collect::<Vec<_>>(),
            "ratio_b_to_a": ratio_json(series[1].first_response_ms().median / series[0].first_response_ms().median, paired),
        });
        return Ok(serde_json::to_string_pretty(&json)?);
    }
    Ok(format!(
        "{}, {} alternating runs each; exec to first response of GET {}\n{}\nB/A {:.2}x (paired runs: {:.2}x to {:.2}x, 10th to 90th percentile)\nexit on SIGTERM:\n  {}: {}\n  {}: {}\n",
        setting(options),
        options.runs,
        targets[0].path,
        measure::table(&series, &series[0].name),
        series[1].first_response_ms().median / series[0].first_response_ms().median,
        paired.0,
        paired.1,
        series[0].name,
        exits[0],
        series[1].name,
        exits[1],
    ))
}

fn lambda_run(
    options: &Options,
    lambda: &Lambda,
    targets: &[Target],
    cg: Option<&TempCgroup>,
) -> anyhow::Result<String> {
    let (_emulator, addr) = measure::start_emulator(&lambda.cargo_lambda, &lambda.package)?;
    let emulator = measure::Emulator::new(addr)?;
    let mut targets = targets.to_vec();
    for t in &mut targets {
        t.env.push((
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
            lambda.memory_mb.to_string().into(),
        ));
    }
    let series = measure::alternate_lambda(
        &targets,
        &emulator,
        options.runs,
        lambda.warm,
        cg,
        measure::progress("compare"),
    )?;
    let answers = |i: usize| -> Vec<f64> {
        series[i]
            .samples
            .iter()
            .map(|s| s.answer.as_secs_f64() * 1e3)
            .collect()
    };
    let paired = paired_ratios(&answers(0), &answers(1));
    let ratio = series[1].answer_ms().median / series[0].answer_ms().median;
    if options.json {
        let json = serde_json::json!({
            "mode": "lambda",
            "setting": setting(options),
            "runs": options.runs,
            "targets": series.iter().map(|s| serde_json::json!({
                "name": s.name,
                "init_ms": stats_json(s.init_ms()),
                "answer_ms": stats_json(s.answer_ms()),
                "warm_ms": s.warm_ms().map(stats_json),
                "rss_mib": stats_json(s.rss_mib()),
            })).collect::<Vec<_>>(),
            "ratio_b_to_a": ratio_json(ratio, paired),
        });
        return Ok(serde_json::to_string_pretty(&json)?);
    }
    Ok(format!(
        "{}, AWS_LAMBDA_FUNCTION_MEMORY_SIZE={}, {} alternating runs each; a queued invocation, exec to the caller's answer\n{}\nB/A {:.2}x (paired runs: {:.2}x to {:.2}x, 10th to 90th percentile)\n",
        setting(options),
        lambda.memory_mb,
        options.runs,
        measure::lambda_table(&series, &series[0].name),
        ratio,
        paired.0,
        paired.1,
    ))
}

fn ms(s: &Sample) -> f64 {
    s.first_response.as_secs_f64() * 1e3
}

/// The 10th and 90th percentiles of the per-round ratios `b[i] / a[i]`: runs of one
/// round ran back to back, so their ratio shows the spread without the drift.
fn paired_ratios(a: &[f64], b: &[f64]) -> (f64, f64) {
    let mut ratios: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(a, _)| **a > 0.0)
        .map(|(a, b)| b / a)
        .collect();
    if ratios.is_empty() {
        return (0.0, 0.0);
    }
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
    (at(0.1), at(0.9))
}

fn stats_json(s: Stats) -> serde_json::Value {
    serde_json::json!({ "median": s.median, "min": s.min, "max": s.max })
}

fn ratio_json(median: f64, paired: (f64, f64)) -> serde_json::Value {
    serde_json::json!({ "median": median, "paired_p10": paired.0, "paired_p90": paired.1 })
}

/// How the runs ended on SIGTERM, in words: `30 exited 0 (median 1.2 ms)`.
fn exits(exits: &[Exit]) -> String {
    let mut kinds: Vec<(String, Vec<f64>)> = Vec::new();
    for e in exits {
        let kind = describe(e);
        let after = e.after.as_secs_f64() * 1e3;
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, times)) => times.push(after),
            None => kinds.push((kind, vec![after])),
        }
    }
    kinds
        .into_iter()
        .map(|(kind, times)| {
            format!(
                "{} {kind} (median {:.1} ms)",
                times.len(),
                Stats::of(times).median
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(e: &Exit) -> String {
    use std::os::unix::process::ExitStatusExt;
    match e.status {
        None => format!("killed, not exited within {STOP_WITHIN:?}"),
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exited {code}"),
            (None, Some(signal)) => format!("ended by signal {signal}"),
            _ => "ended".to_owned(),
        },
    }
}

fn exit_json(exits: &[Exit]) -> serde_json::Value {
    use std::os::unix::process::ExitStatusExt;
    serde_json::Value::Array(
        exits
            .iter()
            .map(|e| {
                serde_json::json!({
                    "code": e.status.and_then(|s| s.code()),
                    "signal": e.status.and_then(|s| s.signal()),
                    "killed_after_timeout": e.status.is_none(),
                    "ms": e.after.as_secs_f64() * 1e3,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_ratio_spread() {
        let (lo, hi) = paired_ratios(&[1.0, 2.0, 4.0, 1.0], &[2.0, 2.0, 2.0, 1.0]);
        assert_eq!((lo, hi), (0.5, 2.0));
        assert_eq!(paired_ratios(&[], &[]), (0.0, 0.0));
    }
}
