//! The init registry's cost on the start-up path: alternating runs of `no-inits` and
//! `many-inits` (1000 empty registrations), without and with a recorded profile;
//! medians of the init phase (ordering the registrations, from the plan to the order,
//! plus running those before serving, from the runtime built to the body entered) and
//! the difference.
//!
//! ```text
//! cargo build --release -p coldstart-benches --bins
//! target/release/registry --runs 50
//! target/release/registry --runs 50 --against DIR   # also DIR's two programs, alternating
//! ```
//!
//! `--against` takes the directory of another build's `no-inits` and `many-inits` (an
//! earlier commit's `target/release`, copied away), for a before-and-after in one run.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use cargo_coldstart::measure::{Stats, round_order};
use coldstart_benches::sibling;

/// One run's init phase in microseconds.
fn phase_us(program: &Path, env: &[(&str, &Path)]) -> anyhow::Result<f64> {
    let out = Command::new(program)
        .env_remove("COLDSTART_PROFILE")
        .env_remove("COLDSTART_PROFILE_OUT")
        .envs(env.iter().map(|(k, v)| (k, v.as_os_str())))
        .output()
        .with_context(|| format!("cannot run {}", program.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ns: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("init_phase_ns="))
        .and_then(|n| n.parse().ok())
        .with_context(|| {
            format!(
                "{} printed no init phase: {stdout}{}",
                program.display(),
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    Ok(ns / 1000.0)
}

/// A temporary file, removed however the run ends (on Ctrl-C, by the interrupt
/// clean-up, which knows it by its name).
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One build's two programs.
struct Build {
    label: String,
    none: PathBuf,
    many: PathBuf,
}

impl Build {
    fn in_dir(label: &str, dir: &Path) -> anyhow::Result<Build> {
        let program = |name: &str| {
            let path = dir.join(name);
            anyhow::ensure!(path.exists(), "{} does not exist", path.display());
            Ok(path)
        };
        Ok(Build {
            label: label.to_string(),
            none: program("no-inits")?,
            many: program("many-inits")?,
        })
    }
}

fn main() -> anyhow::Result<()> {
    // Ctrl-C stops the programs started and removes the cgroups created.
    cargo_coldstart::interrupt::install();
    let usage = "usage: registry [--runs N] [--against DIR]";
    let (mut runs, mut against) = (30, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            println!(
                "{usage}\n\nDefaults: 30 runs. DIR holds another build's no-inits and many-inits."
            );
            return Ok(());
        }
        match (arg.as_str(), args.next()) {
            ("--runs", Some(n)) => {
                runs =
                    n.parse().ok().filter(|n| *n > 0).with_context(|| {
                        format!("set --runs to a whole number above 0, got `{n}`")
                    })?
            }
            ("--against", Some(dir)) => against = Some(PathBuf::from(dir)),
            ("--runs" | "--against", None) => bail!("{arg} needs a value; {usage}"),
            _ => bail!("unknown option `{arg}`; {usage}"),
        }
    }
    let mut builds = vec![Build {
        label: "this build".to_string(),
        none: sibling("no-inits")?,
        many: sibling("many-inits")?,
    }];
    if let Some(dir) = &against {
        builds.push(Build::in_dir(&dir.display().to_string(), dir)?);
    }
    let profile = Removed(cargo_coldstart::interrupt::temporary_file(
        "registry.profile",
    ));
    let profile = &profile.0;
    phase_us(&builds[0].many, &[("COLDSTART_PROFILE_OUT", profile)])?;
    anyhow::ensure!(
        profile.exists(),
        "many-inits wrote no profile to {}",
        profile.display()
    );

    let mut series = vec![[Vec::new(), Vec::new(), Vec::new()]; builds.len()];
    for i in 0..runs {
        // Each round's runs (three per build) in the balanced order the start-up
        // harness runs its targets in (`round_order`).
        for job in round_order(i, 3 * builds.len()) {
            let (b, kind) = (&builds[job / 3], job % 3);
            let phase = match kind {
                0 => phase_us(&b.none, &[])?,
                1 => phase_us(&b.many, &[])?,
                _ => phase_us(&b.many, &[("COLDSTART_PROFILE", profile)])?,
            };
            series[job / 3][kind].push(phase);
        }
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprint!("\rregistry: {}/{runs} runs", i + 1);
        } else if (i + 1) % 10 == 0 || i + 1 == runs {
            eprintln!("registry: {}/{runs} runs", i + 1);
        }
    }
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!();
    }
    println!(
        "init phase (plan to order, plus runtime built to body entered), {runs} alternating runs, microseconds"
    );
    for (b, s) in builds.iter().zip(series) {
        println!("{}", b.label);
        print_rows(s);
    }
    Ok(())
}

/// Each program's median, min and max, and its median minus the one without inits.
fn print_rows(series: [Vec<f64>; 3]) {
    let base = Stats::of(series[0].clone()).median;
    println!(
        "  {:<34} {:>8} {:>8} {:>8} {:>10}",
        "program", "median", "min", "max", "minus none"
    );
    for (name, s) in [
        "no-inits",
        "many-inits (1000, no profile)",
        "many-inits (1000, profile)",
    ]
    .iter()
    .zip(series)
    {
        let Stats {
            median: m,
            min,
            max,
        } = Stats::of(s);
        println!(
            "  {name:<34} {m:>8.1} {min:>8.1} {max:>8.1} {:>10.1}",
            m - base
        );
    }
}
