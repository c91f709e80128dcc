//! The checks of the options the commands share (`compare` and `profile`; `doctor`
//! and the bench harnesses take some): each refuses a bad value with one line that
//! says what is accepted.

use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};

/// Refuses an option given twice: of two values, which one was meant is not known.
///
/// # Errors
///
/// When `arg` is in `seen` already.
pub fn once(seen: &mut Vec<String>, arg: &str) -> anyhow::Result<()> {
    if seen.iter().any(|s| s == arg) {
        bail!("{arg} is given twice; give it once");
    }
    seen.push(arg.to_owned());
    Ok(())
}

/// The emulator's package directory: `--package-dir` if given, which must be a
/// directory (said now, as a usage error, rather than after the cgroup is made),
/// else the current one.
///
/// # Errors
///
/// A given path that is not a directory.
pub fn package_dir(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(dir) if !dir.is_dir() => bail!("--package-dir {}: no such directory", dir.display()),
        Some(dir) => Ok(dir),
        None => Ok(".".into()),
    }
}

/// Refuses the options of `mode` (`--lambda`) given in `seen` without it.
///
/// # Errors
///
/// The first of `options` in `seen`, when `on` is false.
pub fn only_with(on: bool, mode: &str, options: &[&str], seen: &[String]) -> anyhow::Result<()> {
    match options.iter().find(|o| !on && seen.iter().any(|s| s == *o)) {
        Some(given) => bail!("{given} is for {mode}, which is not given"),
        None => Ok(()),
    }
}

/// The `cargo-lambda` to run: `given` (`--cargo-lambda`), else
/// `COLDSTART_TEST_CARGO_LAMBDA`, else the one on `PATH`. A path with a directory
/// (`.venv/bin/cargo-lambda`) is made absolute: the emulator starts in the package
/// directory, where a relative path would no longer lead to it.
///
/// # Errors
///
/// Where it is not an executable file, or not on `PATH`: said before anything starts.
pub fn cargo_lambda(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let program = given
        .or_else(|| std::env::var_os("COLDSTART_TEST_CARGO_LAMBDA").map(PathBuf::from))
        .unwrap_or_else(|| "cargo-lambda".into());
    let found = crate::compare::find_program(&program.to_string_lossy()).map_err(|e| {
        anyhow!("cargo-lambda: {e:#}; it comes from PyPI (`pip install cargo-lambda`), or give --cargo-lambda PATH")
    })?;
    Ok(if program.components().count() > 1 {
        std::path::absolute(&program).unwrap_or(program)
    } else {
        found
    })
}

/// The runs of each program `--runs` takes in the harnesses, 1 to 10 000, as
/// `compare` takes: a typo of many more would only run out of memory for the figures.
///
/// # Errors
///
/// Not a whole number in that range; the message names `arg` and the range.
pub fn runs(arg: &str, v: &str) -> anyhow::Result<usize> {
    v.parse()
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .with_context(|| format!("set {arg} to a whole number from 1 to 10000, got `{v}`"))
}

/// The value of `arg`, a whole number above 0.
///
/// # Errors
///
/// Anything else, naming `arg` and the value.
pub fn whole_number(arg: &str, v: &str) -> anyhow::Result<u32> {
    v.parse()
        .ok()
        .filter(|n| *n > 0)
        .with_context(|| format!("set {arg} to a whole number above 0, got `{v}`"))
}
