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
//!
//! A recorded init profile (`coldstart.profile` in the current directory, or the file
//! `--init-profile` names) is checked and embedded in every `#[coldstart::main]` of the
//! build through the compile-time variable `COLDSTART_EMBED_PROFILE`, which the
//! attribute reads and rustc tracks, so cargo rebuilds when it changes.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use coldstart_bootstrap::init::Profile;

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

/// The compile-time variable the attribute embeds a profile from.
pub const EMBED_VARIABLE: &str = "COLDSTART_EMBED_PROFILE";

/// The file `build` embeds when `--init-profile` names none.
pub const DEFAULT_INIT_PROFILE: &str = "coldstart.profile";

/// Which init profile to embed, from `build`'s own options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitProfile {
    /// `coldstart.profile` in the current directory, if there is one.
    Found,
    /// `--init-profile FILE`: this file, which must exist.
    Given(PathBuf),
    /// `--no-init-profile`: none, not even one the environment names.
    Off,
}

/// A profile that will be embedded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embedded {
    /// Its absolute path.
    pub path: PathBuf,
    /// Registrations the first request needed.
    pub needed: usize,
    /// Registrations it did not.
    pub later: usize,
}

/// Takes `build`'s own options (`--init-profile FILE`, `--no-init-profile`) out of
/// `args`; the rest are cargo's.
///
/// # Errors
///
/// `--init-profile` without a value, or both options.
pub fn split_args(args: &[String]) -> anyhow::Result<(InitProfile, Vec<String>)> {
    let mut choice = InitProfile::Found;
    let mut cargo = Vec::with_capacity(args.len());
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let next = match arg.as_str() {
            "--init-profile" => InitProfile::Given(PathBuf::from(
                it.next().context("--init-profile needs a file")?,
            )),
            a if a.starts_with("--init-profile=") => {
                InitProfile::Given(PathBuf::from(&a["--init-profile=".len()..]))
            }
            "--no-init-profile" => InitProfile::Off,
            // Named like one of `build`'s own, it is a typo of one: cargo would refuse
            // it without naming them.
            a if a.starts_with("--init") || a.starts_with("--no-init") => bail!(
                "`{a}` is not an option of cargo coldstart build, whose own are `--init-profile FILE` and `--no-init-profile` (the other arguments go to cargo build)"
            ),
            _ => {
                cargo.push(arg.clone());
                continue;
            }
        };
        if choice != InitProfile::Found {
            bail!("give --init-profile FILE once, or --no-init-profile, not both or twice");
        }
        choice = next;
    }
    Ok((choice, cargo))
}

/// Finds and checks the profile to embed: the one `--init-profile` names, else the
/// one the caller's `COLDSTART_EMBED_PROFILE` names, else `coldstart.profile` here.
///
/// # Errors
///
/// A file `--init-profile` or the variable names that cannot be read, or a profile
/// that does not parse (named with its line).
pub fn init_profile(choice: &InitProfile) -> anyhow::Result<Option<Embedded>> {
    init_profile_with(choice, std::env::var_os(EMBED_VARIABLE))
}

/// [`init_profile`], with the caller's `COLDSTART_EMBED_PROFILE` given.
fn init_profile_with(
    choice: &InitProfile,
    inherited: Option<std::ffi::OsString>,
) -> anyhow::Result<Option<Embedded>> {
    let path = match (choice, inherited.filter(|v| !v.is_empty())) {
        (InitProfile::Off, _) => return Ok(None),
        (InitProfile::Given(p), _) => p.clone(),
        // Named by the caller (a shell, a CI job): more particular than a file that
        // happens to be here.
        (InitProfile::Found, Some(named)) => PathBuf::from(named),
        (InitProfile::Found, None) if Path::new(DEFAULT_INIT_PROFILE).exists() => {
            PathBuf::from(DEFAULT_INIT_PROFILE)
        }
        (InitProfile::Found, None) => return Ok(None),
    };
    let text = coldstart_bootstrap::init::profile::read_file(&path)
        .with_context(|| format!("cannot read the init profile {}", path.display()))?;
    let profile = Profile::parse(&text)
        .with_context(|| format!("init profile {} is not usable", path.display()))?;
    let path =
        std::path::absolute(&path).with_context(|| format!("cannot resolve {}", path.display()))?;
    // The attribute reads the path from a variable as text: it would not embed it.
    if path.to_str().is_none() {
        bail!(
            "the init profile's path {} is not UTF-8, which the build cannot pass to the attribute; copy the profile to a path that is and give it with --init-profile",
            path.display()
        );
    }
    let needed = profile.entries().iter().filter(|e| e.needed).count();
    Ok(Some(Embedded {
        path,
        needed,
        later: profile.entries().len() - needed,
    }))
}

/// The `cargo build` arguments for `args` (cargo's, passed through).
///
/// # Errors
///
/// `--profile`, which would override the one `build` chooses, and
/// `--message-format`, which `build` needs to read what cargo built.
pub fn cargo_args(args: &[String]) -> anyhow::Result<Vec<String>> {
    if let Some(p) = args
        .iter()
        .find(|a| *a == "--profile" || a.starts_with("--profile="))
    {
        bail!(
            "`{p}`: cargo coldstart build chooses its own profile (`{PROFILE}`); run cargo build for another"
        );
    }
    if let Some(m) = args
        .iter()
        .find(|a| *a == "--message-format" || a.starts_with("--message-format="))
    {
        bail!(
            "`{m}`: cargo coldstart build reads cargo's JSON messages to find what it built and shows cargo's own diagnostics; leave --message-format out"
        );
    }
    let mut out = vec!["build".to_owned()];
    out.push(format!("--config=profile.{PROFILE}.inherits=\"release\""));
    for (key, value, _) in SETTINGS {
        out.push(format!("--config=profile.{PROFILE}.{key}={value}"));
    }
    out.extend(["--profile".to_owned(), PROFILE.to_owned()]);
    out.push("--message-format=json-render-diagnostics".to_owned());
    // `--release` (`-r`) is implied; cargo refuses it beside `--profile`.
    out.extend(
        args.iter()
            .filter(|a| !matches!(a.as_str(), "--release" | "-r"))
            .cloned(),
    );
    Ok(out)
}

/// `build`'s arguments: its own init-profile choice, and the `cargo build` arguments.
///
/// # Errors
///
/// A bad option (see [`split_args`] and [`cargo_args`]).
pub fn parse(args: &[String]) -> anyhow::Result<(InitProfile, Vec<String>)> {
    let (choice, rest) = split_args(args)?;
    Ok((choice, cargo_args(&rest)?))
}

/// Runs the build [`parse`] describes, embedding `embedded` (what [`init_profile`]
/// found for `choice`); returns what was built, then the report.
///
/// # Errors
///
/// cargo cannot be started, or the build fails (cargo's own messages are shown).
pub fn run(
    choice: &InitProfile,
    embedded: Option<Embedded>,
    cargo_args: &[String],
) -> anyhow::Result<(Vec<Built>, String)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    match (&embedded, choice) {
        (Some(e), _) => {
            command.env(EMBED_VARIABLE, &e.path);
        }
        // Empty, not unset: cargo's `[env]` fills in only unset variables, and the
        // attribute reads an empty value as none.
        (None, InitProfile::Off) => {
            command.env(EMBED_VARIABLE, "");
        }
        // Unset, also where the caller's is empty (none named: the report says so):
        // a `COLDSTART_EMBED_PROFILE` in cargo's `[env]` configuration still applies,
        // which an inherited empty value would mask.
        (None, _) => {
            command.env_remove(EMBED_VARIABLE);
        }
    }
    // cargo, and what it runs (rustc, build scripts, the linker), in a process group
    // of its own, recorded: a signal to this tool alone (`kill PID` from another shell,
    // a supervisor's stop) stops the whole build with it, which would otherwise go on
    // compiling, holding the target directory's lock. Ctrl-C reaches this tool, whose
    // clean-up kills the group.
    crate::interrupt::install();
    command
        .args(cargo_args)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // A SIGKILL to this tool (`timeout -s KILL`, a job runner killing its group, the
    // OOM killer) leaves no clean-up to run: cargo, in a group of its own, is killed
    // by the kernel when this thread, which waits for it, is gone.
    let parent = std::process::id();
    // SAFETY: between fork and exec only async-signal-safe calls (prctl, getppid), and
    // no allocation (an error from a raw code).
    unsafe {
        command.pre_exec(move || {
            // The kernel reads the signal as an `unsigned long`.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Gone already, before the line above: no death signal will come.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let output = crate::interrupt::Helper::spawn(&mut command)
        .and_then(crate::interrupt::Helper::wait_with_output)
        .with_context(|| format!("cannot run `{cargo} build`"))?;
    if !output.status.success() {
        return Err(CargoFailed(output.status).into());
    }
    let built = executables(&String::from_utf8_lossy(&output.stdout));
    if built.is_empty() {
        bail!("cargo built no binary; name one with -p or --bin");
    }
    let mut report = format!("profile `{PROFILE}` = release plus:\n");
    for (key, value, why) in SETTINGS {
        report.push_str(&format!("  {:<22} {why}\n", format!("{key} = {value}")));
    }
    // Paths under the current directory are shown relative to it.
    let here = std::env::current_dir().unwrap_or_default();
    let shown = |p: &Path| p.strip_prefix(&here).unwrap_or(p).display().to_string();
    for b in &built {
        let size = |n: u64| format!("{:.2} MB", n as f64 / 1e6);
        let versus = match b.release_bytes {
            Some(r) => format!(
                // Whatever built it last, with its own features and sources: not
                // rebuilt here, only found.
                " (the plain release build as last built: {}, {:.2}x)",
                size(r),
                b.bytes as f64 / r as f64
            ),
            None => " (no plain release build of it to compare)".to_owned(),
        };
        report.push_str(&format!("{}  {}{versus}\n", shown(&b.path), size(b.bytes)));
        if musl_without_mimalloc(&b.path) {
            report.push_str(&format!(
                "warning: {} is built for musl without mimalloc: musl's allocator served about half the requests a second of the glibc build (BENCHMARKS.md, \"Static musl builds\"); turn on coldstart's `mimalloc` feature\n",
                shown(&b.path)
            ));
        }
    }
    report.push_str(&match (&embedded, choice) {
        (Some(e), _) => format!(
            "init profile {} embedded ({} needed by the first request, {} not) in every \
             #[coldstart::main] built, in place of any profile argument; COLDSTART_PROFILE \
             still overrides it at run time\n",
            shown(&e.path),
            e.needed,
            e.later
        ),
        (None, InitProfile::Off) => {
            "no init profile embedded (--no-init-profile); profile arguments of \
             #[coldstart::main] still apply\n"
                .to_owned()
        }
        (None, _) => format!(
            "no {DEFAULT_INIT_PROFILE} in this directory and no {EMBED_VARIABLE} set, so \
             only one in cargo's [env] configuration or profile arguments of \
             #[coldstart::main] apply; record one with `cargo coldstart profile -- <command>`\n"
        ),
    });
    Ok((built, report))
}

/// Whether `path` is a program on coldstart built for a musl target (a target
/// directory named `*-musl`) without mimalloc: mimalloc's own messages are not in it.
fn musl_without_mimalloc(path: &Path) -> bool {
    let musl = path
        .components()
        .any(|c| c.as_os_str().to_string_lossy().ends_with("-musl"));
    if !musl {
        return false;
    }
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    // Every program on coldstart reads `COLDSTART_PROFILE`; one that does not (a
    // healthcheck beside the service) is none of coldstart's business.
    has(b"COLDSTART_PROFILE") && !has(b"mimalloc: error: ")
}

/// cargo ran and failed: `build` ends with cargo's own exit code (101 for a compile
/// error), or 128 plus the signal that killed it, as a shell reports one.
#[derive(Debug)]
pub struct CargoFailed(pub std::process::ExitStatus);

impl CargoFailed {
    /// The exit code to end with.
    pub fn code(&self) -> u8 {
        use std::os::unix::process::ExitStatusExt as _;
        match (self.0.code(), self.0.signal()) {
            (Some(code), _) => u8::try_from(code).unwrap_or(1),
            (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(1),
            (None, None) => 1,
        }
    }
}

impl std::fmt::Display for CargoFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cargo build failed ({})", self.0)
    }
}

impl std::error::Error for CargoFailed {}

/// The executables in cargo's JSON messages, with their sizes.
fn executables(messages: &str) -> Vec<Built> {
    messages
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        // Test harnesses (`--tests`, `--all-targets`) are not what is deployed.
        .filter(|m| m["profile"]["test"] != true)
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .map(|path| {
            let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
            let release_bytes = plain_release(&path)
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

/// Where the plain release build of `built` is: its profile's directory
/// (`target/coldstart`, `target/<triple>/coldstart`) as `release`, whatever lies
/// below it (`examples/`).
fn plain_release(built: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let parts: Vec<Component<'_>> = built.components().collect();
    // Not the file's own name (a program may be called `coldstart`).
    let at = parts[..parts.len().saturating_sub(1)]
        .iter()
        .rposition(|c| c.as_os_str() == PROFILE)?;
    let mut release = PathBuf::new();
    for (i, part) in parts.iter().enumerate() {
        release.push(if i == at {
            std::ffi::OsStr::new("release")
        } else {
            part.as_os_str()
        });
    }
    Some(release)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_release_build_is_beside_in_release() {
        for (built, release) in [
            ("/w/target/coldstart/app", "/w/target/release/app"),
            (
                "/w/target/coldstart/examples/demo",
                "/w/target/release/examples/demo",
            ),
            (
                "/w/target/aarch64-unknown-linux-musl/coldstart/app",
                "/w/target/aarch64-unknown-linux-musl/release/app",
            ),
        ] {
            assert_eq!(
                plain_release(Path::new(built)),
                Some(PathBuf::from(release))
            );
        }
        assert_eq!(
            plain_release(Path::new("/coldstart/target/coldstart/coldstart")),
            Some(PathBuf::from("/coldstart/target/release/coldstart"))
        );
        assert_eq!(plain_release(Path::new("/w/target/debug/app")), None);
    }

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
        let args = cargo_args(&["-r".into(), "--bin".into(), "x".into()]).unwrap();
        assert!(args.ends_with(&["--bin".into(), "x".into()]), "{args:?}");
        let err = cargo_args(&["--message-format".into(), "short".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("leave --message-format out"), "{err}");
    }

    #[test]
    fn build_takes_its_own_options_and_passes_the_rest_to_cargo() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let (choice, cargo) =
            split_args(&args(&["-p", "app", "--init-profile", "x.profile"])).unwrap();
        assert_eq!(choice, InitProfile::Given(PathBuf::from("x.profile")));
        assert_eq!(cargo, args(&["-p", "app"]));
        let (choice, cargo) = split_args(&args(&["--no-init-profile", "--bin", "b"])).unwrap();
        assert_eq!((choice, cargo), (InitProfile::Off, args(&["--bin", "b"])));
        let (choice, _) = split_args(&args(&["--init-profile=y"])).unwrap();
        assert_eq!(choice, InitProfile::Given(PathBuf::from("y")));
        assert_eq!(split_args(&[]).unwrap().0, InitProfile::Found);
        let both = split_args(&args(&["--init-profile", "x", "--no-init-profile"])).unwrap_err();
        assert_eq!(
            both.to_string(),
            "give --init-profile FILE once, or --no-init-profile, not both or twice"
        );
        let missing = split_args(&args(&["--init-profile"])).unwrap_err();
        assert_eq!(missing.to_string(), "--init-profile needs a file");
    }

    #[test]
    fn a_given_init_profile_must_exist_and_parse() {
        let dir = coldstart_test_support::temp_dir("build-unit");
        let missing = dir.join("none.profile");
        let err = init_profile(&InitProfile::Given(missing.clone())).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot read the init profile {}", missing.display())
        );
        let bad = dir.join("bad.profile");
        std::fs::write(&bad, "coldstart-profile 1\nsoon 1 fn a\n").unwrap();
        let err = init_profile(&InitProfile::Given(bad.clone())).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!(
                "init profile {} is not usable: line 2: expected `needed` or `later`, got `soon`",
                bad.display()
            )
        );
        let good = dir.join("good.profile");
        std::fs::write(
            &good,
            "coldstart-profile 1\nneeded 1 fn a\nlater 2 fn b\nlater 3 fn c\n",
        )
        .unwrap();
        let embedded = init_profile(&InitProfile::Given(good.clone()))
            .unwrap()
            .unwrap();
        assert_eq!((embedded.needed, embedded.later), (1, 2));
        assert!(embedded.path.is_absolute());
        assert_eq!(init_profile(&InitProfile::Off).unwrap(), None);

        // The caller's variable names the profile when no option does; the option,
        // and `--no-init-profile`, still win over it.
        let named = Some(good.clone().into_os_string());
        let found = init_profile_with(&InitProfile::Found, named.clone())
            .unwrap()
            .unwrap();
        assert_eq!(found.path, embedded.path);
        assert_eq!(
            init_profile_with(&InitProfile::Off, named.clone()).unwrap(),
            None
        );
        let err = init_profile_with(&InitProfile::Given(missing.clone()), named).unwrap_err();
        assert!(err.to_string().contains("none.profile"), "{err}");
        let missing_named = Some(missing.clone().into_os_string());
        let err = init_profile_with(&InitProfile::Found, missing_named).unwrap_err();
        assert!(err.to_string().contains("none.profile"), "{err}");
        // A FIFO nobody writes to is said, not waited on (this test would hang).
        let fifo = dir.join("fifo.profile");
        coldstart_test_support::fifo(&fifo);
        let err = init_profile_with(&InitProfile::Given(fifo), None).unwrap_err();
        assert!(
            format!("{err:#}").contains("is a FIFO, not a regular file"),
            "{err:#}"
        );
        // A path that is not UTF-8 cannot reach the attribute: said, not left out.
        use std::os::unix::ffi::OsStrExt;
        let odd = dir.join(std::ffi::OsStr::from_bytes(b"caf\xe9.profile"));
        std::fs::copy(&good, &odd).unwrap();
        let err = init_profile(&InitProfile::Given(odd)).unwrap_err();
        assert!(err.to_string().contains("is not UTF-8"), "{err}");
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
