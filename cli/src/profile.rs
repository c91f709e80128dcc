//! `cargo coldstart profile -- <command...>`: records which `#[coldstart::init]`
//! registrations a program's first request needs. The program is started with
//! `COLDSTART_PROFILE_OUT`, sent its first request (HTTP, or a Lambda event through
//! the Runtime API emulator), left running until it has written the profile, then
//! stopped; the profile is saved (default `coldstart.profile`) and shown as a table.
//!
//! Embed the result with `#[coldstart::main(profile = "coldstart.profile")]`, or
//! point `COLDSTART_PROFILE` at it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use coldstart_bootstrap::init::Profile;

use crate::compare::{apply_url, split_equals, target_of_words};
use crate::measure::{self, RUN_TIMEOUT, Target};

/// What `profile` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// The program and its arguments.
    pub target: Target,
    /// Where the profile is written.
    pub out: PathBuf,
    /// Lambda mode: the event to invoke the function with, and the emulator.
    pub lambda: Option<LambdaEvent>,
    /// How long after its first answer the program has to write the profile.
    pub wait: Duration,
}

/// `--lambda-event` settings.
#[derive(Debug, Clone)]
pub struct LambdaEvent {
    /// The event (JSON).
    pub payload: String,
    /// The `cargo-lambda` executable.
    pub cargo_lambda: PathBuf,
    /// A Cargo package directory for the emulator.
    pub package: PathBuf,
}

const NO_SEPARATOR: &str =
    "profile runs a command given after `--`: cargo coldstart profile [OPTIONS] -- <command...>";

/// Parses `profile`'s arguments (after `profile`): options, `--`, the command.
///
/// # Errors
///
/// Unknown options, missing values, a missing command or program, an unreadable event
/// file.
pub fn parse(args: &[String]) -> anyhow::Result<Options> {
    let split = args.iter().position(|a| a == "--");
    // Without `--`, every word is read as an option first: a mistyped one is named.
    let (options, command) = match split {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (args, &args[args.len()..]),
    };
    let (mut url, mut out, mut event, mut cargo_lambda, mut package) =
        (None, None, None, None, None);
    let mut wait = RUN_TIMEOUT;
    let options = split_equals(options);
    let mut it = options.iter();
    let mut seen = Vec::new();
    while let Some(arg) = it.next() {
        if arg.starts_with("--") {
            crate::measure::once(&mut seen, arg)?;
        }
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--url" => url = Some(value()?.clone()),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--lambda-event" => event = Some(PathBuf::from(value()?)),
            "--cargo-lambda" => cargo_lambda = Some(PathBuf::from(value()?)),
            "--package-dir" => package = Some(PathBuf::from(value()?)),
            "--wait" => {
                let given = value()?;
                wait = coldstart_bootstrap::plan::settings::parse_duration(given)
                    .filter(|d| !d.is_zero())
                    .with_context(|| {
                        format!(
                            "set --wait to a duration from 1ms to 1h, a whole number with `ms`, `s`, `m` or `h` (`30s`, `2m`), got `{given}`"
                        )
                    })?;
            }
            // A command without `--` before it.
            other if split.is_none() && !other.starts_with('-') => bail!("{NO_SEPARATOR}"),
            other => bail!(
                "unknown option `{other}` for profile; the options are: --url URL, --out FILE, --lambda-event FILE, --cargo-lambda PATH, --package-dir DIR, --wait DURATION"
            ),
        }
    }
    if split.is_none() {
        bail!("{NO_SEPARATOR}");
    }
    if command.is_empty() {
        bail!("no command after `--`");
    }
    // Each word as given: `sh -c 'a b'` keeps `a b` whole.
    let mut target = target_of_words(command)?;
    let for_lambda = ["--cargo-lambda", "--package-dir"];
    crate::measure::only_with(event.is_some(), "--lambda-event", &for_lambda, &seen)?;
    if let Some(url) = &url {
        if event.is_some() {
            bail!("--url is for HTTP servers; --lambda-event sends the event through the emulator");
        }
        apply_url(&mut target, url)?;
    }
    // Checked now, not after the recording: a profile recorded for nowhere is lost.
    let out = out.unwrap_or_else(|| "coldstart.profile".into());
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if out.as_os_str().is_empty() || out.is_dir() || !dir.is_dir() {
        bail!(
            "--out {}: give a file in a directory that exists",
            out.display()
        );
    }
    // A file there is replaced only if it is a profile: `--out Cargo.toml` is a slip.
    if out.exists() {
        match coldstart_bootstrap::init::profile::read_file(&out) {
            Ok(text) if Profile::parse(&text).is_ok() => {}
            Ok(_) => bail!(
                "--out {}: the file there is not an init profile, and is left as it is; give a new file or an earlier profile",
                out.display()
            ),
            Err(e) => bail!(
                "--out {}: {e}; give a new file or an earlier profile",
                out.display()
            ),
        }
    }
    let lambda = match event {
        None => None,
        Some(file) => {
            // At most 6 MB, Lambda's largest synchronous payload: a FIFO or `/dev/zero`
            // is said, not waited on or read whole.
            let payload = coldstart_bootstrap::file::read_named_text(&file, 6 << 20)
                .with_context(|| format!("cannot read the event file {}", file.display()))?;
            let package = crate::measure::package_dir(package)?;
            Some(LambdaEvent {
                payload,
                // Looked for last: the options' own errors come first.
                cargo_lambda: crate::measure::cargo_lambda(cargo_lambda)?,
                package,
            })
        }
    };
    Ok(Options {
        target,
        out,
        lambda,
        wait,
    })
}

/// Records the profile, writes it to `options.out`, and returns the table.
///
/// # Errors
///
/// The program cannot be started, does not answer, or writes no profile within
/// `options.wait` of its first response (for example because it is not built with
/// coldstart).
pub fn run(options: &Options) -> anyhow::Result<String> {
    crate::interrupt::install();
    // Named so that the Ctrl-C clean-up removes it (and what the program writes
    // beside it before renaming), and removed however the recording ends.
    let recording = crate::interrupt::temporary_file("recorded.profile");
    let _ = std::fs::remove_file(&recording);
    let _removed = RemovedOnDrop(&recording);
    let mut target = options.target.clone();
    target
        .env
        .push(("COLDSTART_PROFILE_OUT".into(), recording.clone().into()));
    let is_written = || written(&recording);
    match &options.lambda {
        None => {
            coldstart_bootstrap::say!(
                "starting {}; waiting for its first answer (at most {RUN_TIMEOUT:?})",
                target.name
            );
            // Its time alone: a program that ends right after its answer may still
            // have written its profile.
            let mut running = measure::start_timing(&target)?;
            coldstart_bootstrap::say!(
                "{} answered; waiting up to {:?} for its profile (its deferred inits run first)",
                target.name,
                options.wait
            );
            // Until the profile is there, or the program has ended without it.
            let mut ended = None;
            let ok = wait(options.wait, &mut || {
                ended = ended.or_else(|| running.exited());
                is_written() || ended.is_some()
            }) && is_written();
            let said = (!ok).then(|| running.stderr_tail());
            // One that has ended was reaped by the look at it: its pid may be
            // another process's by now, not to be signalled.
            if ended.is_none() {
                running.terminate(Duration::from_secs(5));
            }
            if let (Some(said), Some(status)) = (&said, ended) {
                bail!(
                    "{} ended ({status}) after its answer without writing a profile; its stderr ends with:\n{said}",
                    target.name
                );
            }
            if let Some(said) = said {
                bail!(
                    "{} answered but wrote no profile within {:?} of its answer, which includes its deferred inits (is it built with coldstart 0.1, and does its first request reach a FirstResponseLayer? --wait gives slow deferred inits longer); its stderr ends with:\n{said}",
                    target.name,
                    options.wait
                );
            }
        }
        Some(lambda) => {
            let (_emulator, addr) = measure::start_emulator(&lambda.cargo_lambda, &lambda.package)?;
            let emulator = measure::Emulator::new(addr)?;
            // Lambda's default, unless the command or the caller's environment sets it.
            let memory = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";
            if !target.env.iter().any(|(k, _)| k == memory) && std::env::var_os(memory).is_none() {
                target
                    .env
                    .push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), "512".into()));
            }
            coldstart_bootstrap::say!(
                "invoking {} through the emulator; waiting for its answer, then its profile",
                target.name
            );
            let unwritten = measure::run_lambda_until(&target, &emulator, &lambda.payload, || {
                wait(options.wait, &mut || is_written())
            })?;
            if let Some(said) = unwritten {
                bail!(
                    "{} answered but wrote no profile within {:?} of its answer, which includes its deferred inits (is it built with coldstart 0.1? --wait gives slow deferred inits longer); its stderr ends with:\n{said}",
                    target.name,
                    options.wait
                );
            }
        }
    }
    let text = coldstart_bootstrap::init::profile::read_file(&recording)
        .with_context(|| format!("{} wrote no profile", target.name))?;
    let profile = Profile::parse(&text)
        .map_err(|e| anyhow::anyhow!("the profile {} wrote is not valid: {e}", target.name))?;
    // The recording is removed with this run: on a failed write it goes in the error.
    // Written beside and renamed, so the file is the old profile or the new one,
    // never half of one (a full disk, Ctrl-C).
    let mut beside = options.out.as_os_str().to_owned();
    beside.push(format!(".{}.tmp", std::process::id()));
    let beside = PathBuf::from(beside);
    // Removed by a Ctrl-C between the write and the rename too.
    crate::interrupt::file_being_written(&beside);
    let written = std::fs::write(&beside, &text)
        .and_then(|()| std::fs::rename(&beside, &options.out))
        .with_context(|| {
            let _ = std::fs::remove_file(&beside);
            format!(
                "cannot write {}; the profile recorded was:\n{text}",
                options.out.display()
            )
        });
    crate::interrupt::file_written(&beside);
    written?;
    Ok(table(&profile, &options.out))
}

/// Removes its file when dropped.
struct RemovedOnDrop<'a>(&'a Path);

impl Drop for RemovedOnDrop<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

/// Whether the profile is there: coldstart writes it beside and renames it into this
/// directory, so a file there is whole. Whether it is valid is said once it is read:
/// one that does not parse (another version's) is an error of its own, not a wait
/// for a profile that will not come.
fn written(path: &Path) -> bool {
    path.exists()
}

/// Polls `done` for up to `within`.
fn wait(within: Duration, done: &mut dyn FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// The registrations in profile order: which the first request needed, and each one's
/// duration.
fn table(profile: &Profile<'_>, out: &Path) -> String {
    let mut text = format!(
        "{} registrations, written to {}\n{:<8} {:>10}  {:<6}  {}\n",
        profile.entries().len(),
        out.display(),
        "first",
        "micros",
        "kind",
        "name"
    );
    for e in profile.entries() {
        text.push_str(&format!(
            "{:<8} {:>10}  {:<6}  {}\n",
            if e.needed { "needed" } else { "later" },
            e.micros,
            e.kind,
            e.name,
        ));
    }
    let needed = profile.entries().iter().filter(|e| e.needed).count();
    text.push_str(&format!(
        // Not "before serving" and "after": a declared phase wins over the profile, and
        // only statics are placed by it (order.rs), so the counts would misreport.
        "{needed} needed by the first request, {} not; the next start defers the statics not needed, unless declared critical (COLDSTART_LOG=debug shows where each runs)\n",
        profile.entries().len() - needed
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn the_command_follows_two_dashes() {
        let o = parse(&args("--out x.profile -- /bin/sh -c true")).unwrap();
        assert_eq!(o.out, PathBuf::from("x.profile"));
        assert_eq!(o.target.program, PathBuf::from("/bin/sh"));
        assert_eq!(o.target.args.len(), 2);
        let err = |s: &str| parse(&args(s)).unwrap_err().to_string();
        assert!(err("/bin/sh").contains("after `--`"));
        assert!(err("--").contains("no command"));
        assert!(err("--bogus -- /bin/sh").contains("unknown option `--bogus`"));
        // `--wait`: a duration above 0, up to an hour; 10 s without it.
        assert_eq!(parse(&args("-- /bin/sh")).unwrap().wait, RUN_TIMEOUT);
        let o = parse(&args("--wait 2m -- /bin/sh")).unwrap();
        assert_eq!(o.wait, Duration::from_secs(120));
        for bad in ["0s", "2h", "soon", "1.5s"] {
            let said = err(&format!("--wait {bad} -- /bin/sh"));
            assert_eq!(
                said,
                format!(
                    "set --wait to a duration from 1ms to 1h, a whole number with `ms`, `s`, `m` or `h` (`30s`, `2m`), got `{bad}`"
                )
            );
        }
        // Without `--` too: the mistyped option is named, not only the missing `--`.
        assert!(err("--bogus").contains("unknown option `--bogus`"));
        assert!(err("--out x.profile --bogus").contains("unknown option `--bogus`"));
        assert!(err("--out x.profile /bin/sh").contains("after `--`"));
        assert!(
            err("--lambda-event /no/such.json -- /bin/sh").contains("cannot read the event file")
        );
        // Where the profile goes is checked before it is recorded.
        for out in ["/no/such/dir/p.profile", "/tmp", "--out="] {
            let given = if out.starts_with("--") {
                format!("{out} -- /bin/sh")
            } else {
                format!("--out {out} -- /bin/sh")
            };
            assert!(
                err(&given).contains("give a file in a directory that exists"),
                "{given}: {}",
                err(&given)
            );
        }
        // A file there that is not a profile is not replaced; an earlier profile is.
        let dir = coldstart_test_support::temp_dir("profile-out");
        let manifest = dir.join("Cargo.toml");
        std::fs::write(&manifest, "[package]\nname = \"app\"\n").unwrap();
        let given = format!("--out {} -- /bin/sh", manifest.display());
        assert!(
            err(&given).contains("the file there is not an init profile, and is left as it is"),
            "{}",
            err(&given)
        );
        // Nor is a FIFO read: said at once, as is one given as the event.
        let fifo = dir.join("fifo");
        coldstart_test_support::fifo(&fifo);
        let given = format!("--out {} -- /bin/sh", fifo.display());
        assert!(
            err(&given).contains("is a FIFO, not a regular file"),
            "{}",
            err(&given)
        );
        let given = format!("--lambda-event {} -- /bin/sh", fifo.display());
        let e = parse(&args(&given)).unwrap_err();
        assert!(
            format!("{e:#}").contains("is a FIFO, not a regular file"),
            "{e:#}"
        );
        let earlier = dir.join("coldstart.profile");
        std::fs::write(&earlier, "coldstart-profile 1\nneeded 1 fn a\n").unwrap();
        assert!(parse(&args(&format!("--out {} -- /bin/sh", earlier.display()))).is_ok());
        // Each word of the command as given, spaces and all (they were split again).
        let given = [
            "--out=y.profile",
            "--",
            "/bin/sh",
            "-c",
            "echo hello world; exit 3",
        ];
        let o = parse(&given.map(str::to_owned)).unwrap();
        assert_eq!(o.out, PathBuf::from("y.profile"));
        assert_eq!(
            o.target.args,
            ["-c", "echo hello world; exit 3"].map(std::ffi::OsString::from)
        );
    }

    #[test]
    fn the_table_says_what_moves() {
        let p = Profile::parse(
            "coldstart-profile 1\nneeded 390 static a::CONFIG\nlater 41445 async a::warm\n",
        )
        .unwrap();
        let t = table(&p, Path::new("coldstart.profile"));
        assert!(t.contains("needed          390  static  a::CONFIG"), "{t}");
        assert!(
            t.contains("1 needed by the first request, 1 not; the next start defers"),
            "{t}"
        );
    }
}
