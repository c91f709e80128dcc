//! The start-up harness: whole processes, exec to first HTTP response, RSS and threads
//! at first response, alternating runs; unconstrained and, as root, inside a real
//! cgroup (default 0.25 CPU, 64 MiB). Uses the measurement engine of
//! `cargo-coldstart`.
//!
//! ```text
//! scripts/build-bench
//! target/release/startup --runs 40
//! target/release/startup --runs 40 --cpus 0.5 --memory 128M --only-cgroup \
//!     --target floor=baseline-current-thread --target tokio=baseline-tokio
//! target/release/startup --target on=http-server,COLDSTART_PREWARM=on \
//!     --target off=http-server,COLDSTART_PREWARM=off
//! ```

use anyhow::{Context, bail};
use cargo_coldstart::cgroup::{self, Limits, TempCgroup};
use cargo_coldstart::measure::{self, Series, Target};
use coldstart_benches::{parse_target, progress, runs, sibling};

const HELP: &str = "\
startup: exec-to-first-response of whole processes, alternating runs

    startup [--runs N] [--cpus X] [--memory SIZE] [--no-cgroup | --only-cgroup]
            [--target NAME=PROGRAM[,VAR=VALUE...]]... [--baseline NAME] [--json]

Defaults: 32 runs each of http-server, runtime-alone (the example's handler on
coldstart without telemetry), baseline-tokio and baseline-current-thread (found next
to this executable), unconstrained and then, as root, inside a cgroup of 0.25 CPU
and 64M. Ratios are against --baseline (default baseline-tokio if a target has that
name, else the last target). Runs are rounded up to whole cycles of the balanced
order (a multiple of the number of targets, twice it for an odd number).
";

struct Args {
    runs: usize,
    limits: Limits,
    unconstrained: bool,
    constrained: bool,
    targets: Vec<Target>,
    /// Whether `--cpus` or `--memory` was given (the limits have defaults).
    limits_given: bool,
    /// As given; resolved by [`coldstart_benches::baseline`].
    baseline: Option<String>,
    json: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        runs: 32,
        limits: Limits {
            cpus: Some(0.25),
            memory_bytes: Some(64 << 20),
        },
        unconstrained: true,
        constrained: true,
        targets: Vec::new(),
        limits_given: false,
        baseline: None,
        json: false,
    };
    let mut it = coldstart_benches::args()?.into_iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--runs" => args.runs = runs(&arg, &value()?)?,
            "--cpus" => {
                args.limits.cpus = Some(cgroup::parse_cpus(&value()?)?);
                args.limits_given = true;
            }
            "--memory" => {
                let bytes = cgroup::parse_size(&value()?)?;
                cgroup::check_memory(bytes)?;
                args.limits.memory_bytes = Some(bytes);
                args.limits_given = true;
            }
            "--no-cgroup" => args.constrained = false,
            "--only-cgroup" => args.unconstrained = false,
            "--target" => args.targets.push(parse_target(&value()?)?),
            "--baseline" => args.baseline = Some(value()?),
            "--json" => args.json = true,
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n{HELP}"),
        }
    }
    if args.targets.is_empty() {
        for name in [
            "http-server",
            "runtime-alone",
            "baseline-tokio",
            "baseline-current-thread",
        ] {
            args.targets.push(Target::new(name, sibling(name)?));
        }
    }
    args.baseline = Some(coldstart_benches::baseline(args.baseline, &args.targets)?);
    args.runs = coldstart_benches::whole_cycles("--runs", args.runs, args.targets.len());
    Ok(args)
}

fn series_json(series: &[Series]) -> serde_json::Value {
    serde_json::Value::Array(
        series
            .iter()
            .map(|s| {
                let (t, r, th) = (s.first_response_ms(), s.rss_mib(), s.threads());
                serde_json::json!({
                    "name": s.name,
                    "runs": s.samples.len(),
                    "first_response_ms": { "median": t.median, "min": t.min, "max": t.max },
                    "rss_mib": { "median": r.median, "min": r.min, "max": r.max },
                    "threads": { "median": th.median },
                })
            })
            .collect(),
    )
}

/// Runs every target in one setting and prints its table, or keeps its JSON.
fn measure_setting(
    args: &Args,
    key: &str,
    label: &str,
    cgroup: Option<&TempCgroup>,
    report: &mut serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<()> {
    let series = measure::alternate(&args.targets, args.runs, cgroup, progress(label))?;
    if args.json {
        report.insert(key.into(), series_json(&series));
    } else {
        println!(
            "{label}, {} alternating runs each\n{}",
            args.runs,
            measure::table(&series, args.baseline.as_deref().unwrap_or_default())
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // Ctrl-C stops the programs started and removes the cgroups created.
    cargo_coldstart::interrupt::install();
    run().inspect_err(|_| {
        // A run that failed because Ctrl-C stopped its program is said by the
        // clean-up, with its own exit code, not as this error.
        cargo_coldstart::interrupt::wait_if_interrupted();
        cargo_coldstart::measure::end_progress_line();
    })
}

fn run() -> anyhow::Result<()> {
    let args = parse_args()?;
    if !args.unconstrained && !args.constrained {
        bail!("--no-cgroup and --only-cgroup together measure nothing; give one");
    }
    if !args.constrained && args.limits_given {
        bail!("--cpus and --memory set the cgroup's limits, which --no-cgroup leaves out");
    }
    // Asked once: it says when it skips.
    let constrained = args.constrained && cgroup::can_create("the cgroup runs")?;
    // Only the cgroup runs were asked for: without the right to make one, fail rather
    // than skip them and measure nothing.
    if !args.unconstrained && !constrained {
        bail!("--only-cgroup needs a cgroup, which this process cannot create (see above)");
    }
    // Made before anything is measured: one that cannot be made fails at once, not
    // after the whole unconstrained series.
    let cg = constrained
        .then(|| {
            TempCgroup::create(
                &format!("coldstart-bench-{}", std::process::id()),
                args.limits,
            )
        })
        .transpose()?;
    let mut report = serde_json::Map::new();
    let measured = measure_all(&args, cg.as_ref(), &mut report);
    if args.json && !report.is_empty() {
        // What was gathered before a failure is printed too, with the failure.
        if let Err(e) = &measured {
            report.insert("error".into(), format!("{e:#}").into());
        }
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    measured
}

/// Each setting asked for, in turn; with `--json` their figures go in `report`.
fn measure_all(
    args: &Args,
    cg: Option<&TempCgroup>,
    report: &mut serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<()> {
    if args.unconstrained {
        measure_setting(args, "unconstrained", "unconstrained", None, report)?;
    }
    if let Some(cg) = cg {
        let label = format!(
            "cgroup {} CPU, {} (joining it is not in the interval)",
            args.limits
                .cpus
                .map_or("unlimited".into(), |c| c.to_string()),
            args.limits
                .memory_bytes
                .map_or("unlimited memory".into(), cgroup::memory_shown)
        );
        measure_setting(args, "cgroup", &label, Some(cg), report)?;
    }
    Ok(())
}
