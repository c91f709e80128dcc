//! What the bench programs share.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;

use anyhow::Context;
use cargo_coldstart::measure::Target;

pub mod wrk;

/// A program built next to the running one (`target/release/NAME`).
///
/// # Errors
///
/// When it has not been built, saying how to build it.
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name(name);
    if !path.exists() {
        anyhow::bail!(
            "{} does not exist; build it first: scripts/build-bench",
            path.display()
        );
    }
    Ok(path)
}

/// Prints the init registry's time on the start-up path in nanoseconds, as
/// `init_phase_ns=N`, for the `registry` driver: ordering the registrations (plan made
/// to ordered, before the runtime is built) plus running those before serving (runtime
/// built to body entered).
pub fn print_init_phase(timeline: coldstart::Timeline) {
    use coldstart::Phase;
    let between = |from, to| {
        Some(
            timeline
                .since_main(to)?
                .saturating_sub(timeline.since_main(from)?),
        )
    };
    match between(Phase::Planned, Phase::Ordered)
        .zip(between(Phase::RuntimeBuilt, Phase::BodyEntered))
    {
        Some((order, run)) => println!("init_phase_ns={}", (order + run).as_nanos()),
        None => println!("init_phase_ns=unknown"),
    }
}

/// The target ratios are taken against: the one `--baseline` names (an error naming
/// the targets when none has that name: every ratio would print as `-`), else
/// `baseline-tokio` if a target has that name, else the last target given.
///
/// # Errors
///
/// `given` names no target.
pub fn baseline(given: Option<String>, targets: &[Target]) -> anyhow::Result<String> {
    baseline_or("baseline-tokio", given, targets)
}

/// [`baseline`], with `default` in place of `baseline-tokio`.
///
/// # Errors
///
/// `given` names no target, or two targets have one name (their rows and ratios
/// could not be told apart).
pub fn baseline_or(
    default: &str,
    given: Option<String>,
    targets: &[Target],
) -> anyhow::Result<String> {
    let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    if let Some((i, twice)) = names
        .iter()
        .enumerate()
        .find(|(i, name)| names[..*i].contains(name))
    {
        anyhow::bail!(
            "two --target are named `{twice}` (targets {} and {}); give each its own name",
            names.iter().position(|n| n == twice).unwrap_or(0) + 1,
            i + 1
        );
    }
    match given {
        Some(name) if names.contains(&name.as_str()) => Ok(name),
        Some(name) => anyhow::bail!(
            "--baseline `{name}` names no target; the targets are: {}",
            names.join(", ")
        ),
        None if names.contains(&default) => Ok(default.to_owned()),
        None => Ok(names.last().map_or_else(String::new, |n| (*n).to_owned())),
    }
}

/// The command line's arguments after the program's name, each as UTF-8: an error
/// naming the one that is not (`std::env::args` would panic on it).
///
/// # Errors
///
/// An argument that is not UTF-8.
pub fn args() -> anyhow::Result<Vec<String>> {
    std::env::args_os()
        .skip(1)
        .enumerate()
        .map(|(i, arg)| {
            arg.into_string().map_err(|arg| {
                anyhow::anyhow!(
                    "argument {} is not UTF-8: `{}`",
                    i + 1,
                    arg.to_string_lossy()
                )
            })
        })
        .collect()
}

/// `runs` rounded up to whole cycles of the harness's balanced order for `n` targets
/// ([`cargo_coldstart::measure::whole_cycles`]), said on stderr when it changes.
pub fn whole_cycles(flag: &str, runs: usize, n: usize) -> usize {
    let rounded = cargo_coldstart::measure::whole_cycles(runs, n);
    if rounded != runs {
        coldstart_bootstrap::say!(
            "{flag} {runs}: {rounded} instead, whole cycles of the balanced order for {n} targets (each then goes first, and follows each other, equally often)"
        );
    }
    rounded
}

/// `NAME=PROGRAM[,VAR=VALUE...]`: a program by path, or built next to this one. A
/// comma starts a variable only where a name in capitals and `=` follow it, so
/// `RUST_LOG=info,hyper=warn` is one value.
///
/// # Errors
///
/// A malformed spec, or a program that has not been built.
pub fn parse_target(spec: &str) -> anyhow::Result<Target> {
    let (name, rest) = spec
        .split_once('=')
        .with_context(|| format!("set --target to NAME=PROGRAM[,VAR=VALUE...], got `{spec}`"))?;
    let mut parts = split_at_variables(rest).into_iter();
    let program = parts.next().unwrap_or_default();
    if name.is_empty() || program.is_empty() {
        anyhow::bail!(
            "set --target to NAME=PROGRAM[,VAR=VALUE...], with a NAME and a PROGRAM, got `{spec}`"
        );
    }
    let path = if program.contains('/') {
        PathBuf::from(program)
    } else {
        sibling(program)?
    };
    let mut target = Target::new(name, path);
    for kv in parts {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("`{kv}` in --target is not VAR=VALUE"))?;
        target.env.push((k.into(), v.into()));
    }
    Ok(target)
}

/// `rest` cut at each comma that a variable's name in capitals (`[A-Z_][A-Z0-9_]*`)
/// and `=` follow: the commas inside a value (`RUST_LOG=info,hyper=warn`) or a path
/// stay in it.
fn split_at_variables(rest: &str) -> Vec<&str> {
    let starts_variable = |after: &str| {
        after.split_once('=').is_some_and(|(k, _)| {
            k.starts_with(|c: char| c.is_ascii_uppercase() || c == '_')
                && k.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
    };
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, _) in rest.match_indices(',') {
        if starts_variable(&rest[i + 1..]) {
            parts.push(&rest[start..i]);
            start = i + 1;
        }
    }
    parts.push(&rest[start..]);
    parts
}

pub use cargo_coldstart::measure::{progress, runs, whole_number};

/// An OTLP/HTTP endpoint that reads each request and answers 200 with an empty
/// body, on a thread per connection: the exporter's work is real, the collector's
/// is not measured. Returns its URL.
///
/// # Errors
///
/// No loopback port can be bound.
pub fn otlp_sink() -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind the OTLP sink")?;
    let url = format!("http://{}", listener.local_addr()?);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || sink_connection(stream));
        }
    });
    Ok(url)
}

/// An OTLP/HTTP collector that accepts connections and reads what is sent, and never
/// answers: the exporter's timeout is all that ends an export. Returns its URL.
///
/// # Errors
///
/// When it cannot bind a loopback port.
pub fn otlp_hang() -> anyhow::Result<String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").context("cannot bind the hanging OTLP collector")?;
    let url = format!("http://{}", listener.local_addr()?);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            // Read and discard until the exporter gives up and closes.
            std::thread::spawn(move || std::io::copy(&mut &stream, &mut std::io::sink()));
        }
    });
    Ok(url)
}

fn sink_connection(stream: TcpStream) -> Option<()> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut writer = stream;
    loop {
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().ok()?;
            }
        }
        std::io::copy(&mut (&mut reader).take(length as u64), &mut std::io::sink()).ok()?;
        writer
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")
            .ok()?;
    }
}

/// The OTLP/HTTP span exporter the eager baselines set up, with the blocking client
/// opentelemetry-otlp uses by default. That client cannot be built inside a runtime,
/// so it is built on a thread of its own, as opentelemetry-otlp itself does.
///
/// # Errors
///
/// When building the client panics or the exporter cannot be built.
pub fn eager_otlp_exporter() -> anyhow::Result<opentelemetry_otlp::SpanExporter> {
    use opentelemetry_otlp::WithHttpConfig;
    let client = std::thread::spawn(reqwest::blocking::Client::new)
        .join()
        .map_err(|_| anyhow::anyhow!("building the HTTP client panicked"))?;
    Ok(opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A comma inside a value or a path is part of it; one before `NAME=` starts a
    /// variable. `RUST_LOG=info,hyper=warn` set `RUST_LOG=info` and a variable
    /// `hyper`.
    #[test]
    fn commas_start_variables_only_before_a_name() {
        assert_eq!(
            split_at_variables("/bin/x,RUST_LOG=info,hyper=warn,OTEL_SDK_DISABLED=true"),
            [
                "/bin/x",
                "RUST_LOG=info,hyper=warn",
                "OTEL_SDK_DISABLED=true"
            ]
        );
        assert_eq!(split_at_variables("/opt/a,b/prog"), ["/opt/a,b/prog"]);
        assert_eq!(split_at_variables("http-server"), ["http-server"]);
    }

    /// `foo=` named the directory the harness is in as its program, which failed only
    /// at the warm-up run, after the cgroup was made, with no word of the syntax.
    #[test]
    fn a_target_needs_a_name_and_a_program() {
        for spec in ["foo=", "=/bin/true", "=", "foo=,RUST_LOG=info"] {
            let e = parse_target(spec).unwrap_err().to_string();
            assert!(
                e.contains("with a NAME and a PROGRAM") && e.contains(&format!("`{spec}`")),
                "{spec}: {e}"
            );
        }
        let t = parse_target("foo=/bin/true,RUST_LOG=info").unwrap();
        assert_eq!((t.name.as_str(), t.env.len()), ("foo", 1));
    }

    #[test]
    fn the_baseline_is_the_one_named_or_said_to_be_missing() {
        let targets = [
            Target::new("on", "/bin/true"),
            Target::new("off", "/bin/true"),
        ];
        let chosen = |given: Option<&str>| baseline(given.map(str::to_owned), &targets);
        assert_eq!(chosen(Some("on")).ok().as_deref(), Some("on"));
        // No `baseline-tokio` among them: the last target, not a table of `-`.
        assert_eq!(chosen(None).ok().as_deref(), Some("off"));
        let err = chosen(Some("nope")).map_err(|e| e.to_string()).unwrap_err();
        assert_eq!(
            err,
            "--baseline `nope` names no target; the targets are: on, off"
        );
        let with_tokio = [
            Target::new("on", "/bin/true"),
            Target::new("baseline-tokio", "/bin/true"),
        ];
        assert_eq!(
            baseline(None, &with_tokio).ok().as_deref(),
            Some("baseline-tokio")
        );
    }

    #[test]
    fn two_targets_of_one_name_are_refused() {
        let targets = [
            Target::new("a", "/bin/true"),
            Target::new("b", "/bin/true"),
            Target::new("a", "/bin/false"),
        ];
        let err = baseline(None, &targets).map_err(|e| e.to_string());
        assert_eq!(
            err.unwrap_err(),
            "two --target are named `a` (targets 1 and 3); give each its own name"
        );
    }
}
