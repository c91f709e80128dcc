//! `cargo coldstart compare A B`: many alternating cold starts of two programs, on the
//! measurement engine the benchmark harness uses. For HTTP servers: exec to first
//! response, RSS and threads at that moment, and how each exits on SIGTERM. For
//! Lambda functions (`--lambda`): a queued invocation at the Runtime API emulator,
//! exec to the caller's answer, init duration and warm invocations.
//!
//! It never leaves a process or a cgroup behind, also on Ctrl-C (see
//! [`crate::interrupt`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cgroup::{self, Limits, TempCgroup};
use crate::measure::{self, Exit, Sample, Series, Stats, Target};

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

/// A program or command as given: a path, or a name on `PATH`, then its arguments.
///
/// # Errors
///
/// An empty command, or a program that does not exist.
pub fn target(spec: &str) -> anyhow::Result<Target> {
    let words: Vec<&str> = spec.split_whitespace().collect();
    target_of_words(&words)
}

/// A program and its arguments, each word as given (no splitting at spaces).
///
/// # Errors
///
/// No words, or a program that does not exist.
pub fn target_of_words<S: AsRef<str>>(words: &[S]) -> anyhow::Result<Target> {
    let mut words = words.iter().map(AsRef::as_ref);
    let program = words
        .next()
        .filter(|p| !p.is_empty())
        .context("the command is empty: give a program, and its arguments after it")?;
    let path = find_program(program)?;
    let base = |p: &str| {
        Path::new(p)
            .file_name()
            .map_or_else(|| p.to_owned(), |n| n.to_string_lossy().into_owned())
    };
    let args: Vec<String> = words.map(Into::into).collect();
    // A wrapper such as `qemu-aarch64 path/to/app` is named after both.
    let name = match args.iter().find(|a| executable(Path::new(a.as_str()))) {
        Some(inner) => format!("{} {}", base(program), base(inner)),
        None => base(program),
    };
    let mut target = Target::new(name, path);
    target.args = args.into_iter().map(Into::into).collect();
    Ok(target)
}

pub(crate) fn find_program(program: &str) -> anyhow::Result<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return match std::fs::metadata(&path) {
            Err(_) => {
                bail!("`{program}` does not exist (build it first, or give the path to the binary)")
            }
            Ok(m) if !m.is_file() => {
                bail!("`{program}` is not a file (give the path to a program)")
            }
            Ok(_) if !executable(&path) => {
                bail!("`{program}` is not executable (chmod +x, or give the program that runs it)")
            }
            Ok(_) => Ok(path),
        };
    }
    // As a shell looks: the first executable file of that name on PATH.
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
        .with_context(|| {
            // As a shell: a name without a `/` is looked for on PATH only.
            if std::path::Path::new(program).is_file() {
                format!("`{program}` is not on PATH; give the file here as `./{program}`")
            } else {
                format!("`{program}` is not a file and not on PATH")
            }
        })
}

/// Whether `path` is a file this process may execute.
fn executable(path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) on a valid C string.
    path.is_file() && unsafe { libc::access(c_path.as_ptr(), libc::X_OK) } == 0
}

/// Applies `--url`: `http://127.0.0.1:PORT/path`, where `PORT` is a number (the
/// program listens there) or `$PORT` (a free port, given to it in `PORT`).
///
/// # Errors
///
/// Anything else, saying what is accepted.
pub fn apply_url(target: &mut Target, url: &str) -> anyhow::Result<()> {
    let bad = || {
        anyhow::anyhow!(
            "set --url to http://127.0.0.1:PORT/PATH (PORT a number or $PORT), got `{url}`"
        )
    };
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = authority.rsplit_once(':').ok_or_else(bad)?;
    target.ip = match host {
        "127.0.0.1" => std::net::Ipv4Addr::LOCALHOST.into(),
        // Where a server that binds `localhost` listens: the name's first address.
        "localhost" => std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 0))
            .ok()
            .and_then(|mut all| all.next())
            .map(|a| a.ip())
            .with_context(|| format!("--url {url}: `localhost` resolves to no address here"))?,
        _ => bail!("--url must be on this machine (127.0.0.1 or localhost), got `{url}`"),
    };
    target.port = match port {
        "$PORT" => None,
        "" => bail!(
            "{}; the port is empty, as where a shell replaced an unquoted $PORT with nothing: quote it ('$PORT'), or leave --url out, whose port is $PORT",
            bad()
        ),
        p => Some(p.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?),
    };
    // Sent as it is on the request line: a space or a line break would make another
    // request, or other headers.
    if path
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        bail!("--url {url}: the path has a space or a control character; percent-encode it (%20)");
    }
    target.path = if path.is_empty() {
        "/".into()
    } else {
        path.into()
    };
    Ok(())
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

/// Parses `compare`'s arguments (after `compare`).
///
/// # Errors
///
/// Unknown options, missing values, bad numbers, sizes or URLs, missing programs.
pub fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut programs = Vec::new();
    let (mut runs, mut cpus, mut memory, mut url, mut json) = (20, None, None, None, false);
    let (mut lambda, mut cargo_lambda, mut package, mut warm) = (false, None, None, 5);
    if let Some(flag) = args
        .iter()
        .find(|a| a.starts_with("--json=") || a.starts_with("--lambda="))
    {
        let name = flag.split_once('=').map_or(flag.as_str(), |(n, _)| n);
        bail!("{name} takes no value, got `{flag}`");
    }
    let args = split_equals(args);
    let mut it = args.iter();
    let mut seen = Vec::new();
    while let Some(arg) = it.next() {
        if arg == "--" {
            // What follows is programs, even if it begins with `-`.
            programs.extend(it.by_ref().cloned());
            break;
        }
        if arg.starts_with("--") {
            measure::once(&mut seen, arg)?;
        }
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--runs" => runs = count(arg, value()?, RUNS, "")?,
            "--cpus" => cpus = Some(cgroup::parse_cpus(value()?)?),
            "--memory" => memory = Some(cgroup::parse_size(value()?)?),
            "--url" => url = Some(value()?.clone()),
            "--json" => json = true,
            "--lambda" => lambda = true,
            "--cargo-lambda" => cargo_lambda = Some(PathBuf::from(value()?)),
            "--package-dir" => package = Some(PathBuf::from(value()?)),
            "--warm" => warm = count(arg, value()?, WARM, " of warm invocations")?,
            other if other.starts_with('-') => bail!(
                "unknown option `{other}` for compare; the options are: --runs N, --cpus X, --memory SIZE, --url URL, --json, --lambda, --cargo-lambda PATH, --package-dir DIR, --warm N"
            ),
            program => programs.push(program.to_owned()),
        }
    }
    let for_lambda = ["--cargo-lambda", "--package-dir", "--warm"];
    measure::only_with(lambda, "--lambda", &for_lambda, &seen)?;
    if let Some(bytes) = memory.filter(|_| !lambda) {
        cgroup::check_memory(bytes)?;
    }
    let [a, b] = programs.as_slice() else {
        let after = args
            .iter()
            .position(|a| a == "--")
            .map_or(&[][..], |i| &args[i + 1..]);
        if after.len() > 2 && after[2..].iter().any(|a| a.starts_with('-')) {
            let extra: Vec<String> = after[2..].iter().map(|a| format!("`{a}`")).collect();
            bail!(
                "compare takes two programs, A and B; after `--` every word is a program, and {} came after them: put options before `--`",
                extra.join(", ")
            );
        }
        bail!(
            "compare takes two programs, A and B (got {}); see --help",
            programs.len()
        );
    };
    let (mut a, mut b) = (target(a)?, target(b)?);
    if let Some(url) = &url {
        if lambda {
            bail!("--url is for HTTP servers; with --lambda the event goes through the emulator");
        }
        apply_url(&mut a, url)?;
        apply_url(&mut b, url)?;
    }
    let limits = (cpus.is_some() || memory.is_some()).then_some(Limits {
        cpus,
        memory_bytes: memory,
    });
    let package = measure::package_dir(package)?;
    let lambda = match lambda {
        false => None,
        true => {
            let memory_mb = lambda_memory(
                memory,
                std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").ok(),
            )?;
            Some(Lambda {
                // Looked for last: the options' own errors come first.
                cargo_lambda: measure::cargo_lambda(cargo_lambda)?,
                package,
                warm,
                memory_mb,
            })
        }
    };
    Ok(Options {
        a,
        b,
        runs,
        limits,
        json,
        lambda,
    })
}

/// The runs of each program `--runs` takes (at most a day of runs at a few seconds
/// each; a typo of many more would only run out of memory for its figures).
const RUNS: std::ops::RangeInclusive<usize> = 1..=10_000;
/// The warm invocations per run `--warm` takes.
const WARM: std::ops::RangeInclusive<usize> = 0..=1_000;

/// The value `v` of the count option `arg`, within `range`; `of` says what it counts.
fn count(
    arg: &str,
    v: &str,
    range: std::ops::RangeInclusive<usize>,
    of: &str,
) -> anyhow::Result<usize> {
    v.parse()
        .ok()
        .filter(|n| range.contains(n))
        .with_context(|| {
            format!(
                "set {arg} to a whole number{of} from {} to {}, got `{v}`",
                range.start(),
                range.end()
            )
        })
}

/// The memory sizes Lambda allows, in MB.
const LAMBDA_MEMORY_MB: std::ops::RangeInclusive<u64> = 128..=10240;

/// `--option=value` as `--option value`, as `build` takes them too.
pub fn split_equals(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    for arg in args {
        match arg.split_once('=') {
            Some((option, value)) if option.starts_with("--") => {
                out.push(option.to_owned());
                out.push(value.to_owned());
            }
            _ => out.push(arg.clone()),
        }
    }
    out
}

/// The functions' memory size for `--lambda`, in MB: `--memory` (which also limits the
/// cgroup), else the caller's `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (`inherited`; no cgroup,
/// so no root needed), else 512.
///
/// # Errors
///
/// A size Lambda does not take: not whole MB, or outside 128 to 10240 MB.
fn lambda_memory(memory: Option<u64>, inherited: Option<String>) -> anyhow::Result<u64> {
    let (mb, from) = match (memory, inherited.filter(|v| !v.trim().is_empty())) {
        (Some(bytes), _) if bytes % (1 << 20) != 0 => bail!(
            "with --lambda, --memory is also the function's memory size, which Lambda takes in whole MB; got {bytes} bytes"
        ),
        (Some(bytes), _) => (bytes >> 20, "--memory"),
        (None, Some(v)) => match v.trim().parse() {
            Ok(mb) => (mb, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
            Err(_) => bail!(
                "with --lambda, AWS_LAMBDA_FUNCTION_MEMORY_SIZE is the functions' memory size, a whole number of MB from 128 to 10240; got `{v}`"
            ),
        },
        (None, None) => return Ok(512),
    };
    if !LAMBDA_MEMORY_MB.contains(&mb) {
        bail!(
            "with --lambda, {from} is also the function's memory size, which Lambda allows from 128M to 10240M; got {mb}M"
        );
    }
    Ok(mb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    /// `--url` with `localhost` measures at the name's first address, where a server
    /// binding `localhost` listens; 127.0.0.1 is itself; other hosts are refused.
    #[test]
    fn a_url_on_localhost_goes_to_its_first_address() {
        let mut target = Target::new("t", "/bin/true");
        apply_url(&mut target, "http://localhost:8080/health").unwrap();
        let first = std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 0))
            .unwrap()
            .next()
            .unwrap();
        assert_eq!(target.ip, first.ip());
        assert_eq!((target.port, target.path.as_str()), (Some(8080), "/health"));
        apply_url(&mut target, "http://127.0.0.1:$PORT").unwrap();
        assert_eq!(target.ip, std::net::IpAddr::from([127, 0, 0, 1]));
        assert!(apply_url(&mut target, "http://example.com:80/").is_err());
    }

    /// Without `--memory`, the caller's `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` sets the
    /// functions' size (no cgroup, no root); `--memory` wins; both are checked.
    #[test]
    fn the_lambda_memory_size_comes_from_memory_or_the_callers_variable() {
        let given = |v: &str| Some(v.to_owned());
        assert_eq!(lambda_memory(None, None).unwrap(), 512);
        assert_eq!(lambda_memory(None, given("1769")).unwrap(), 1769);
        assert_eq!(lambda_memory(Some(256 << 20), given("1769")).unwrap(), 256);
        assert_eq!(lambda_memory(None, given(" ")).unwrap(), 512);
        assert_eq!(
            lambda_memory(None, given("lots")).unwrap_err().to_string(),
            "with --lambda, AWS_LAMBDA_FUNCTION_MEMORY_SIZE is the functions' memory size, a whole number of MB from 128 to 10240; got `lots`"
        );
        assert_eq!(
            lambda_memory(None, given("64")).unwrap_err().to_string(),
            "with --lambda, AWS_LAMBDA_FUNCTION_MEMORY_SIZE is also the function's memory size, which Lambda allows from 128M to 10240M; got 64M"
        );
        assert!(
            lambda_memory(Some((1 << 20) + 1), None)
                .unwrap_err()
                .to_string()
                .contains("whole MB")
        );
    }

    #[test]
    fn a_program_is_named_after_its_file_and_a_wrapper_after_both() {
        let t = target("/bin/sh /bin/true --flag").unwrap();
        assert_eq!(t.name, "sh true");
        assert_eq!(
            t.args,
            ["/bin/true", "--flag"].map(std::ffi::OsString::from)
        );
        assert_eq!(target("/bin/true").unwrap().name, "true");
        assert_eq!(target("/bin/echo hello").unwrap().name, "echo");
        // An argument that is a path but not a program leaves the name alone.
        assert_eq!(target("/bin/cat /no/such/file").unwrap().name, "cat");
        assert_eq!(target("/bin/cat /etc/passwd").unwrap().name, "cat");
    }

    #[test]
    fn bad_inputs_are_named() {
        let err = |s: &str| parse(&args(s)).unwrap_err().to_string();
        assert!(err("/bin/true").contains("two programs"));
        assert!(err("/nope/a /bin/true").contains("`/nope/a` does not exist"));
        assert!(err("/tmp /bin/true").contains("`/tmp` is not a file"));
        let plain = coldstart_test_support::temp_file("not-a-program");
        std::fs::write(&plain, "text").unwrap();
        let e = err(&format!("{} /bin/true", plain.display()));
        assert!(e.contains("is not executable"), "{e}");
        let injected = [
            "/bin/true",
            "/bin/true",
            "--url",
            "http://127.0.0.1:$PORT/a\r\nx: y",
        ];
        let e = parse(&injected.map(str::to_owned)).unwrap_err().to_string();
        assert!(e.contains("a space or a control character"), "{e}");
        assert!(
            err("/bin/true /bin/true --runs 0")
                .contains("--runs to a whole number from 1 to 10000, got `0`")
        );
        assert!(err("/bin/true /bin/true --cpus many").contains("--cpus"));
        assert!(err("/bin/true /bin/true --memory 64X").contains("--memory"));
        assert!(err("/bin/true /bin/true --url ftp://x").contains("set --url to"));
        // `$PORT` the shell expanded to nothing.
        let e = err("/bin/true /bin/true --url http://127.0.0.1:/");
        assert!(
            e.contains("set --url to") && e.contains("quote it ('$PORT')"),
            "{e}"
        );
        // A name without a `/` is looked for on PATH only, as a shell does; a file of
        // that name here is said to need `./`.
        let e = find_program("Cargo.toml").unwrap_err().to_string();
        assert!(e.contains("give the file here as `./Cargo.toml`"), "{e}");
        let e = find_program("no-such-program-here")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a file and not on PATH"), "{e}");
        assert!(err("/bin/true /bin/true --url http://10.0.0.1:80/").contains("on this machine"));
        assert!(err("/bin/true /bin/true --frobnicate").contains("unknown option `--frobnicate`"));
        assert!(err("/bin/true /bin/true --runs").contains("--runs needs a value"));
        assert!(
            err("/bin/true /bin/true --runs 1000000000")
                .contains("--runs to a whole number from 1 to 10000, got `1000000000`")
        );
        assert!(
            err("/bin/true /bin/true --lambda --warm 18446744073709551615")
                .contains("--warm to a whole number of warm invocations from 0 to 1000")
        );
        assert_eq!(
            err("/bin/true /bin/true --json=false"),
            "--json takes no value, got `--json=false`"
        );
        assert_eq!(
            err("/bin/true /bin/true --lambda --package-dir /no/such/dir"),
            "--package-dir /no/such/dir: no such directory"
        );
        assert!(
            err("/bin/true /bin/true --lambda --memory 200000K")
                .contains("Lambda takes in whole MB; got 204800000 bytes")
        );
        // Options after the two programs that follow `--` are programs too: said so.
        let e = err("-- /bin/true /bin/true --runs 5");
        assert!(
            e.contains("`--runs`, `5` came after them: put options before `--`"),
            "{e}"
        );
        let after_dashes = parse(&args("--runs 3 -- /bin/true /bin/false")).unwrap();
        assert_eq!(
            (
                after_dashes.a.program.as_path(),
                after_dashes.b.program.as_path()
            ),
            (Path::new("/bin/true"), Path::new("/bin/false"))
        );
        assert_eq!(
            err("/bin/true /bin/true --runs 10 --runs=50"),
            "--runs is given twice; give it once"
        );
        for lambda_only in ["--warm 3", "--cargo-lambda x", "--package-dir ."] {
            let option = lambda_only.split(' ').next().unwrap();
            assert_eq!(
                err(&format!("/bin/true /bin/true {lambda_only}")),
                format!("{option} is for --lambda, which is not given")
            );
        }
        assert!(
            err("/bin/true /bin/true --memory 64").contains("--memory is 64 bytes"),
            "a size without its unit"
        );
        assert!(err("/bin/true /bin/true --lambda --warm x").contains("from 0 to 1000, got `x`"));
        let o = parse(&args(
            "/bin/true /bin/true --lambda --warm 0 --cargo-lambda /bin/true",
        ))
        .unwrap();
        assert_eq!(o.lambda.unwrap().warm, 0);
        // A relative path with a directory (a venv's) is made absolute: the emulator
        // starts in the package's directory. Any executable stands in for it here; the
        // tests run in the package's directory.
        let o = parse(&args(
            "/bin/true /bin/true --lambda --cargo-lambda ../scripts/test",
        ))
        .unwrap();
        let path = o.lambda.unwrap().cargo_lambda;
        assert!(
            path.is_absolute() && path.ends_with("scripts/test"),
            "{path:?}"
        );
        // One that is not there is said before anything starts.
        let e = err("/bin/true /bin/true --lambda --cargo-lambda /no/cargo-lambda");
        assert!(
            e.contains("cargo-lambda: `/no/cargo-lambda` does not exist"),
            "{e}"
        );
        assert!(e.contains("pip install cargo-lambda"), "{e}");
    }

    #[test]
    fn urls_and_commands() {
        let o = parse(&args(
            "/bin/true true --url http://127.0.0.1:8080/health --memory 64M",
        ))
        .unwrap();
        assert_eq!((o.a.port, o.a.path.as_str()), (Some(8080), "/health"));
        assert_eq!(o.b.program, find_program("true").unwrap());
        assert_eq!(o.limits.unwrap().memory_bytes, Some(64 << 20));
        let o = parse(&args("/bin/true /bin/true --url http://localhost:$PORT")).unwrap();
        assert_eq!((o.a.port, o.a.path.as_str()), (None, "/"));
    }

    #[test]
    fn paired_ratio_spread() {
        let (lo, hi) = paired_ratios(&[1.0, 2.0, 4.0, 1.0], &[2.0, 2.0, 2.0, 1.0]);
        assert_eq!((lo, hi), (0.5, 2.0));
        assert_eq!(paired_ratios(&[], &[]), (0.0, 0.0));
    }
}
