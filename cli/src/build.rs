//! `cargo coldstart build [cargo build arguments]`: a release build tuned for start-up,
//! in a profile of its own (`coldstart`, output in `target/coldstart/`), set through
//! `cargo --config`, so the user's Cargo.toml is never edited.
//!
//! The settings were chosen by measurement (BENCHMARKS.md, "Build profile"): against
//! a plain release build of the example, whole-program LTO with one codegen unit
//! lowered RSS at first response to 0.85x and the binary from 5.0 to 3.0 MB, with time
//! to first response within noise; stripping symbols took it to 2.5 MB. The panic
//! strategy stays `unwind`: coldstart reports panicking inits and Lambda handler panics
//! by catching them, which `abort` would turn into a dead process. `opt-level = "s"`
//! lowered RSS further (0.75x) but its per-request cost was not measured, so the
//! release default stays.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// The profile `build` builds with.
pub const PROFILE: &str = "coldstart";

/// Each setting of the profile (on top of `release`), its value, and why.
pub const SETTINGS: [(&str, &str, &str); 4] = [
    (
        "lto",
        "\"fat\"",
        "whole-program LTO: RSS at first response 0.85x, binary 5.0 -> 3.0 MB (time within noise)",
    ),
    (
        "codegen-units",
        "1",
        "one unit, so LTO sees the whole program",
    ),
    (
        "strip",
        "\"symbols\"",
        "binary 3.0 -> 2.5 MB, for images and Lambda zips (no effect on start-up)",
    ),
    (
        "panic",
        "\"unwind\"",
        "kept: coldstart reports panicking inits and Lambda handler panics by catching them",
    ),
];

/// A binary that was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// Where it is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// The size of the plain release build of the same binary, when there is one.
    pub release_bytes: Option<u64>,
}

/// The `cargo build` arguments for `args` (the user's, passed through).
///
/// # Errors
///
/// `--profile`, which would override the one `build` chooses.
pub fn cargo_args(args: &[String]) -> anyhow::Result<Vec<String>> {
    if let Some(p) = args
        .iter()
        .find(|a| *a == "--profile" || a.starts_with("--profile="))
    {
        bail!(
            "`{p}`: cargo coldstart build chooses its own profile (`{PROFILE}`); run cargo build for another"
        );
    }
    let mut out = vec!["build".to_owned()];
    out.push(format!("--config=profile.{PROFILE}.inherits=\"release\""));
    for (key, value, _) in SETTINGS {
        out.push(format!("--config=profile.{PROFILE}.{key}={value}"));
    }
    out.extend(["--profile".to_owned(), PROFILE.to_owned()]);
    out.push("--message-format=json-render-diagnostics".to_owned());
    // `--release` is implied.
    out.extend(args.iter().filter(|a| *a != "--release").cloned());
    Ok(out)
}

/// Runs the build; returns what was built, then the report.
///
/// # Errors
///
/// cargo cannot be started, or the build fails (cargo's own messages are shown).
pub fn run(args: &[String]) -> anyhow::Result<(Vec<Built>, String)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(&cargo)
        .args(cargo_args(args)?)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run `{cargo} build`"))?;
    if !output.status.success() {
        bail!("cargo build failed ({})", output.status);
    }
    let built = executables(&String::from_utf8_lossy(&output.stdout));
    if built.is_empty() {
        bail!("cargo built no binary; name one with -p or --bin");
    }
    let mut report = format!("profile `{PROFILE}` = release plus:\n");
    for (key, value, why) in SETTINGS {
        report.push_str(&format!("  {:<22} {why}\n", format!("{key} = {value}")));
    }
    for b in &built {
        let size = |n: u64| format!("{:.2} MB", n as f64 / 1e6);
        let versus = match b.release_bytes {
            Some(r) => format!(
                " (plain release: {}, {:.2}x)",
                size(r),
                b.bytes as f64 / r as f64
            ),
            None => " (no plain release build of it to compare)".to_owned(),
        };
        report.push_str(&format!(
            "{}  {}{versus}\n",
            b.path.display(),
            size(b.bytes)
        ));
    }
    if Path::new("coldstart.profile").exists() {
        report.push_str(
            "coldstart.profile found: embed it with #[coldstart::main(profile = \"coldstart.profile\")] \
             (relative to the package's Cargo.toml), or set COLDSTART_PROFILE when running\n",
        );
    }
    Ok((built, report))
}

/// The executables in cargo's JSON messages, with their sizes.
fn executables(messages: &str) -> Vec<Built> {
    messages
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .map(|path| {
            let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
            let release = path
                .parent()
                .and_then(Path::parent)
                .zip(path.file_name())
                .map(|(target, name)| target.join("release").join(name));
            let release_bytes = release
                .and_then(|p| std::fs::metadata(p).ok())
                .map(|m| m.len());
            Built {
                path,
                bytes,
                release_bytes,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_is_set_on_the_command_line_and_arguments_pass_through() {
        let args = cargo_args(&["-p".into(), "http-server".into(), "--release".into()]).unwrap();
        assert_eq!(args[0], "build");
        assert!(args.contains(&"--config=profile.coldstart.lto=\"fat\"".to_owned()));
        assert!(args.contains(&"--config=profile.coldstart.inherits=\"release\"".to_owned()));
        assert!(
            args.ends_with(&["-p".into(), "http-server".into()]),
            "{args:?}"
        );
        assert!(!args.contains(&"--release".to_owned()));
        let err = cargo_args(&["--profile".into(), "dev".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("chooses its own profile"), "{err}");
    }

    #[test]
    fn executables_come_from_cargo_messages() {
        let messages = r#"{"reason":"compiler-artifact","executable":null}
{"reason":"compiler-artifact","executable":"/nonexistent/coldstart/app"}
{"reason":"build-finished","success":true}"#;
        let built = executables(messages);
        assert_eq!(built.len(), 1);
        assert_eq!(built[0].path, PathBuf::from("/nonexistent/coldstart/app"));
        assert_eq!(built[0].release_bytes, None);
    }
}
