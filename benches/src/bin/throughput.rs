//! Throughput under `wrk`: each target is started by the start-up harness's engine
//! (`cargo_coldstart::measure::start`), answers its first request, then
//! takes `wrk` for a fixed time; every round runs each target once, in the
//! start-up harness's balanced order (`round_order`), and the table
//! shows medians of requests per second and latency percentiles, and the ratio of
//! requests per second to the baseline.
//!
//! By default it compares `examples/http-server` with full observability (metrics
//! scraped by nobody but recorded, spans exported over OTLP/HTTP to a sink in this
//! process that accepts everything) against the bare `#[tokio::main]` baseline
//! serving the same handler.
//!
//! ```text
//! scripts/build-bench
//! target/release/throughput --rounds 6 --duration 10
//! ```

use std::time::Duration;

use anyhow::{Context, bail};
use cargo_coldstart::measure::{self, Stats, Target, round_order};
use coldstart_benches::wrk::{self, Run};
use coldstart_benches::{otlp_sink, parse_target, progress, sibling, whole_number};

const HELP: &str = "\
throughput: requests per second under wrk, each round running every target once, in a balanced order

    throughput [--rounds N] [--duration SECONDS] [--connections C] [--threads T]
               [--target NAME=PROGRAM[,VAR=VALUE...]]... [--baseline NAME] [--json]

Defaults: 6 rounds of 10 s, 16 connections, 1 wrk thread; targets `on` (http-server
with metrics, tracing exported to a local OTLP sink, and the HTTP layer) and
`baseline-tokio`; ratios against --baseline (default baseline-tokio if a target has
that name, else the last target). Rounds are rounded up to whole cycles of the
balanced order (a multiple of the number of targets, twice it for an odd number). In
a VALUE, `{otlp_sink}` is the sink's URL. Needs `wrk`.
";

struct Args {
    rounds: usize,
    duration: u32,
    connections: u32,
    threads: u32,
    targets: Vec<Target>,
    /// As given; resolved by [`coldstart_benches::baseline`].
    baseline: Option<String>,
    json: bool,
}

fn parse_args(sink: &str) -> anyhow::Result<Args> {
    let mut args = Args {
        rounds: 6,
        duration: 10,
        connections: 16,
        threads: 1,
        targets: Vec::new(),
        baseline: None,
        json: false,
    };
    let mut it = coldstart_benches::args()?.into_iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--rounds" => args.rounds = whole_number(&arg, &value()?)? as usize,
            "--duration" => args.duration = whole_number(&arg, &value()?)?,
            "--connections" => args.connections = whole_number(&arg, &value()?)?,
            "--threads" => args.threads = whole_number(&arg, &value()?)?,
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
    for target in &mut args.targets {
        for (_, value) in &mut target.env {
            if let Some(v) = value.to_str().filter(|v| v.contains("{otlp_sink}")) {
                *value = v.replace("{otlp_sink}", sink).into();
            }
        }
    }
    if args.targets.is_empty() {
        let mut on = Target::new("on", sibling("http-server")?);
        on.env
            .push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), sink.into()));
        on.env
            .push(("COLDSTART_METRICS_ADDR".into(), "127.0.0.1:0".into()));
        args.targets.push(on);
        args.targets
            .push(Target::new("baseline-tokio", sibling("baseline-tokio")?));
    }
    args.baseline = Some(coldstart_benches::baseline(args.baseline, &args.targets)?);
    args.rounds = coldstart_benches::whole_cycles("--rounds", args.rounds, args.targets.len());
    Ok(args)
}

fn measure(target: &Target, args: &Args) -> anyhow::Result<Run> {
    let running = measure::start(target, None)?;
    let out = wrk::start(args.threads, args.connections, args.duration, running.addr)
        .and_then(|wrk| Ok(wrk.wait_with_output()?));
    running.terminate(Duration::from_secs(10));
    let out = out?;
    if !out.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    wrk::parse(&String::from_utf8_lossy(&out.stdout))
}

fn main() -> anyhow::Result<()> {
    // Ctrl-C stops the programs started and removes the cgroups created.
    cargo_coldstart::interrupt::install();
    let sink = otlp_sink()?;
    let args = parse_args(&sink)?;
    let n = args.targets.len();
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); n];
    let mut tick = progress("throughput");
    for round in 0..args.rounds {
        // Each round in the balanced order the start-up harness runs them in.
        for (i, t) in round_order(round, n).into_iter().enumerate() {
            runs[t].push(measure(&args.targets[t], &args)?);
            tick(round * n + i + 1, args.rounds * n);
        }
    }
    let stats = |t: usize, f: fn(&Run) -> f64| Stats::of(runs[t].iter().map(f).collect());
    let base = args
        .targets
        .iter()
        .position(|t| Some(&t.name) == args.baseline.as_ref())
        .map(|b| stats(b, |r| r.requests_per_second).median);
    let mut report = Vec::new();
    if !args.json {
        println!(
            "{} rounds of {} s, wrk -t{} -c{}\n{:<16} {:>10} {:>10} {:>10} {:>9} {:>9} {:>7}",
            args.rounds,
            args.duration,
            args.threads,
            args.connections,
            "target",
            "req/s",
            "min",
            "max",
            "p50 ms",
            "p99 ms",
            "ratio"
        );
    }
    for (t, target) in args.targets.iter().enumerate() {
        let rps = stats(t, |r| r.requests_per_second);
        let (p50, p99) = (stats(t, |r| r.p50_ms), stats(t, |r| r.p99_ms));
        let errors: u64 = runs[t].iter().map(|r| r.errors).sum();
        let ratio = base.map(|b| rps.median / b);
        if args.json {
            report.push(serde_json::json!({
                "name": target.name,
                "rounds": runs[t].len(),
                "requests_per_second": { "median": rps.median, "min": rps.min, "max": rps.max },
                "p50_ms": p50.median,
                "p99_ms": p99.median,
                "errors": errors,
                "ratio": ratio,
            }));
        } else {
            println!(
                "{:<16} {:>10.0} {:>10.0} {:>10.0} {:>9.3} {:>9.3} {:>7}",
                target.name,
                rps.median,
                rps.min,
                rps.max,
                p50.median,
                p99.median,
                ratio.map_or("-".into(), |r| format!("{r:.2}x"))
            );
        }
        if errors > 0 {
            eprintln!("throughput: {} had {errors} errors under load", target.name);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    let failed = runs.iter().flatten().any(|r| r.errors > 0);
    if failed {
        bail!("some responses under load were errors (see above)");
    }
    Ok(())
}
