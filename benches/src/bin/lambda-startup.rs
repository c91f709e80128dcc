//! The Lambda start-up harness: whole processes against the real Runtime API emulator
//! (`cargo lambda watch --only-lambda-apis`), alternating runs. Per run: an
//! invocation is queued, the function is released to `exec`, and the harness records
//! its init duration (exec to its first `/next`, seen by a recording proxy), the
//! caller's time to the answer, RSS at the answer, and `--warm` warm invocations.
//! Uses the measurement engine of `cargo-coldstart`.
//!
//! ```text
//! cargo build --release -p lambda-hello
//! cargo build --release -p coldstart-benches --bins
//! target/release/lambda-startup --runs 30
//! ```
//!
//! Build lambda-hello on its own: built together with the benches, cargo would unify
//! the baselines' lambda_runtime features into it.

use std::path::PathBuf;

use anyhow::{Context, bail};
use cargo_coldstart::cgroup::{self, Limits, TempCgroup};
use cargo_coldstart::measure::{self, Emulator, LambdaSeries, Target};
use coldstart_benches::{otlp_sink, parse_target, progress, runs, sibling, whole_number};

const HELP: &str = "\
lambda-startup: cold starts of Lambda functions against the Runtime API emulator

    lambda-startup [--runs N] [--warm K] [--memory-mb MB] [--cpus X]
                   [--cargo-lambda PATH] [--target NAME=PROGRAM[,VAR=VALUE...]]...
                   [--baseline NAME] [--json]

Defaults: 30 runs each of lambda-hello, baseline-lambda and baseline-lambda-eager
(found next to this executable), 5 warm invocations per run,
AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512, spans exported to an in-process OTLP sink.
--cpus runs each function in a cgroup with that CPU quota (root only), as Lambda's
memory-based share would. cargo-lambda: --cargo-lambda, else
COLDSTART_TEST_CARGO_LAMBDA, else the one on PATH. Ratios are against --baseline
(default baseline-lambda if a target has that name, else the last target). Runs are
rounded up to whole cycles of the balanced order (a multiple of the number of
targets, twice it for an odd number).
";

struct Args {
    runs: usize,
    warm: usize,
    memory_mb: u32,
    cpus: Option<f64>,
    cargo_lambda: PathBuf,
    targets: Vec<Target>,
    /// As given; resolved by [`coldstart_benches::baseline`].
    baseline: Option<String>,
    json: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        runs: 30,
        warm: 5,
        memory_mb: 512,
        cpus: None,
        cargo_lambda: std::env::var_os("COLDSTART_TEST_CARGO_LAMBDA")
            .map_or_else(|| PathBuf::from("cargo-lambda"), PathBuf::from),
        targets: Vec::new(),
        baseline: None,
        json: false,
    };
    let mut it = coldstart_benches::args()?.into_iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--runs" => args.runs = runs(&arg, &value()?)?,
            "--warm" => args.warm = whole_number(&arg, &value()?)? as usize,
            "--memory-mb" => args.memory_mb = whole_number(&arg, &value()?)?,
            "--cpus" => args.cpus = Some(cgroup::parse_cpus(&value()?)?),
            "--cargo-lambda" => args.cargo_lambda = value()?.into(),
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
        for name in ["lambda-hello", "baseline-lambda", "baseline-lambda-eager"] {
            args.targets.push(Target::new(name, sibling(name)?));
        }
    }
    args.baseline = Some(coldstart_benches::baseline_or(
        "baseline-lambda",
        args.baseline,
        &args.targets,
    )?);
    args.runs = coldstart_benches::whole_cycles("--runs", args.runs, args.targets.len());
    Ok(args)
}

fn series_json(series: &[LambdaSeries]) -> serde_json::Value {
    let stats =
        |s: measure::Stats| serde_json::json!({ "median": s.median, "min": s.min, "max": s.max });
    serde_json::Value::Array(
        series
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name,
                    "runs": s.samples.len(),
                    "init_ms": stats(s.init_ms()),
                    "answer_ms": stats(s.answer_ms()),
                    "warm_ms": s.warm_ms().map(stats),
                    "rss_mib": stats(s.rss_mib()),
                })
            })
            .collect(),
    )
}

fn main() -> anyhow::Result<()> {
    // Ctrl-C stops the programs started and removes the cgroups created.
    cargo_coldstart::interrupt::install();
    let mut args = parse_args()?;
    let sink = otlp_sink()?;
    // Unless a target sets them itself (`--target big=...,AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1769`):
    // added after its own, these would win.
    for target in &mut args.targets {
        let defaults = [
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                args.memory_mb.to_string(),
            ),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", sink.clone()),
        ];
        for (variable, value) in defaults {
            if !target.env.iter().any(|(k, _)| k == variable) {
                target.env.push((variable.into(), value.into()));
            }
        }
    }
    let package = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/lambda-hello");
    let (_emulator, addr) = measure::start_emulator(&args.cargo_lambda, package.as_ref())?;
    let emulator = Emulator::new(addr)?;
    let cg = match args.cpus {
        Some(cpus) if cgroup::can_create("--cpus")? => Some(TempCgroup::create(
            &format!("coldstart-lambda-bench-{}", std::process::id()),
            Limits {
                cpus: Some(cpus),
                memory_bytes: Some(u64::from(args.memory_mb) << 20),
            },
        )?),
        _ => None,
    };
    let label = match args.cpus {
        Some(c) if cg.is_some() => format!("cgroup {c} CPU, {} MiB", args.memory_mb),
        _ => "unconstrained".to_owned(),
    };
    let series = measure::alternate_lambda(
        &args.targets,
        &emulator,
        args.runs,
        args.warm,
        cg.as_ref(),
        progress(&label),
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&series_json(&series))?);
    } else {
        println!(
            "{label}, AWS_LAMBDA_FUNCTION_MEMORY_SIZE={}, {} alternating runs each, {} warm invocations per run\n{}",
            args.memory_mb,
            args.runs,
            args.warm,
            measure::lambda_table(&series, args.baseline.as_deref().unwrap_or_default())
        );
    }
    Ok(())
}
