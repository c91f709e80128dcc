//! `compare`'s arguments: the options and their checks, the two programs.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::target::{apply_url, target};
use super::{Lambda, Options};
use crate::cgroup::{self, Limits};
use crate::measure;

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
    use crate::compare::find_program;
    use std::path::Path;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
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
}
