//! The init rules, checked on a real program: `init-demo` prints each step as it runs.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use coldstart_test_support::{
    Lines, Reaper, TempFile, output_within, temp_file, wait_with_output_within,
};

/// The longest a run of a program that ends by itself may take (see [`run`]).
const WITHIN: Duration = Duration::from_secs(60);

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// The lines from `marker` on, `marker` included (none when it is missing).
    fn lines_from(&self, marker: &str) -> Vec<&str> {
        self.lines()
            .into_iter()
            .skip_while(|l| *l != marker)
            .collect()
    }

    /// Every `init ...` line, in order.
    fn inits_run(&self) -> Vec<&str> {
        self.lines()
            .into_iter()
            .filter_map(|l| l.strip_prefix("init "))
            .collect()
    }

    /// The `init ...` lines between two markers.
    fn inits_between(&self, from: Option<&str>, to: &str) -> Vec<&str> {
        let lines = self.lines();
        let start = from.map_or(0, |f| lines.iter().position(|l| *l == f).unwrap() + 1);
        let end = lines.iter().position(|l| *l == to).unwrap();
        lines[start..end]
            .iter()
            .filter_map(|l| l.strip_prefix("init "))
            .collect()
    }
}

/// `bin` with `env`, and no profile. In a `cargo test --workspace` build the facade's
/// features are unified across the workspace, so the demo may carry telemetry; its
/// exporters are switched off here, since parallel runs would compete for the
/// metrics port.
fn command(bin: &str, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(bin);
    command
        .env_remove("COLDSTART_PROFILE")
        .env_remove("COLDSTART_PROFILE_OUT")
        .env("COLDSTART_METRICS_ADDR", "off")
        .env("OTEL_TRACES_EXPORTER", "none")
        .envs(env.iter().copied());
    command
}

/// Runs [`command`] to its end, within a minute: a program that does not end (a
/// regression that hangs start-up) fails the test, where a wait without end would
/// hold the whole run until CI's own timeout.
fn run(bin: &str, env: &[(&str, &str)]) -> Run {
    let out = output_within(&mut command(bin, env), WITHIN);
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// [`command`], started with its output piped.
fn spawned(bin: &str, env: &[(&str, &str)]) -> std::process::Child {
    command(bin, env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn demo(env: &[(&str, &str)]) -> Run {
    run(env!("CARGO_BIN_EXE_init-demo"), env)
}

/// A profile file with `text`, for `COLDSTART_PROFILE`.
fn profile_file(name: &str, text: &str) -> TempFile {
    let path = temp_file(name);
    std::fs::write(&path, text).unwrap();
    path
}

const BEFORE_BY_NAME: [&str; 5] = [
    "given name",
    "init_demo::SHARED",
    "init_demo::SLOW",
    "init_demo::config",
    "init_demo::pool",
];
const AFTER_BY_NAME: [&str; 4] = [
    "init_demo::LATER",
    "init_demo::library_warm_up",
    "init_demo::must_work",
    "init_demo::report",
];

#[test]
fn without_a_profile_undeclared_work_runs_before_serving_in_name_order() {
    let r = demo(&[("DEMO_READY", "1")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.lines().contains(&"ready"), "{}", r.stdout);
    assert_eq!(r.inits_between(None, "body"), BEFORE_BY_NAME);
    assert_eq!(
        r.inits_between(Some("body"), "first response"),
        Vec::<&str>::new()
    );
    assert_eq!(
        r.inits_between(Some("first response"), "deferred done"),
        AFTER_BY_NAME
    );
    assert!(r.stderr.is_empty(), "{}", r.stderr);
}

#[test]
fn a_recorded_profile_defers_what_the_first_request_did_not_read() {
    let path = temp_file("round-trip.profile");
    let first = demo(&[
        ("DEMO_READ", "SHARED"),
        ("COLDSTART_PROFILE_OUT", path.to_str().unwrap()),
    ]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let text = std::fs::read_to_string(&path).unwrap();
    let profile = coldstart_bootstrap::init::Profile::parse(&text).unwrap();
    let needed = |n: &str| profile.get(n).unwrap().needed;
    // Read by the first request, so needed; planned early but never read, so not.
    assert!(needed("init_demo::SHARED"), "{text}");
    assert!(!needed("init_demo::SLOW"), "{text}");
    // Functions keep the phase they ran in.
    assert!(
        needed("init_demo::config") && needed("init_demo::pool"),
        "{text}"
    );
    assert!(!needed("init_demo::report"), "{text}");
    assert!(
        profile.get("init_demo::SLOW").unwrap().micros >= 30_000,
        "{text}"
    );
    assert_eq!(profile.entries().len(), 9, "{text}");

    let second = demo(&[
        ("DEMO_READ", "SHARED"),
        ("COLDSTART_PROFILE", path.to_str().unwrap()),
    ]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let before = second.inits_between(None, "body");
    assert!(!before.contains(&"init_demo::SLOW"), "{before:?}");
    assert!(before.contains(&"init_demo::SHARED"), "{before:?}");
    let after = second.inits_between(Some("first response"), "deferred done");
    assert_eq!(after[0], "init_demo::SLOW", "longest first: {after:?}");
    assert!(second.stderr.is_empty(), "{}", second.stderr);
}

/// A profile that cannot be written is one line naming the variable, the path, why,
/// and what it takes; the program ends as it would have.
#[test]
fn a_profile_that_cannot_be_written_says_what_the_variable_takes() {
    let dir = coldstart_test_support::temp_dir("profile-out-missing");
    let out = dir.join("no-such-directory").join("init.profile");
    let run = demo(&[("COLDSTART_PROFILE_OUT", out.to_str().unwrap())]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let said = format!(
        "coldstart: cannot write COLDSTART_PROFILE_OUT={}: No such file or directory (os error 2); set it to a file in a directory this process can write, or /dev/stdout\n",
        out.display()
    );
    assert_eq!(run.stderr, said);
}

/// A relative `COLDSTART_PROFILE_OUT` is the start directory's, whatever directory
/// the body moved to; a blank `COLDSTART_PROFILE` is unset (no error line).
#[test]
fn a_relative_profile_path_is_the_start_directorys() {
    let start = coldstart_test_support::temp_dir("profile-start");
    let moved = coldstart_test_support::temp_dir("profile-moved");
    let out = output_within(
        Command::new(env!("CARGO_BIN_EXE_init-demo"))
            .current_dir(&*start)
            .env("COLDSTART_PROFILE_OUT", "relative.profile")
            .env("COLDSTART_PROFILE", " ")
            .env("DEMO_CD", &*moved)
            .env("COLDSTART_METRICS_ADDR", "off")
            .env("OTEL_TRACES_EXPORTER", "none"),
        WITHIN,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert!(
        start.join("relative.profile").is_file(),
        "not where it started"
    );
    assert!(!moved.join("relative.profile").exists());
}

/// A profile file bind-mounted into the program's mount namespace (as `docker run
/// -v file:file` does) is written in place: a rename over a mount point fails
/// (`EBUSY`), and nothing was written. A link is followed, not replaced. The mount is
/// made with `unshare -m`, in a namespace of the program's own.
#[test]
fn a_bind_mounted_or_linked_profile_file_is_written_through() {
    let test = "a_bind_mounted_or_linked_profile_file_is_written_through";
    let Some(unshare) = coldstart_test_support::tool(test, "unshare", &["-m", "true"]) else {
        return;
    };
    let dir = coldstart_test_support::temp_dir("profile-mounts");
    let (source, mounted) = (dir.join("source.profile"), dir.join("mounted.profile"));
    std::fs::write(&source, "").unwrap();
    std::fs::write(&mounted, "").unwrap();
    let out = output_within(
        Command::new(unshare)
            .args([
                "-m",
                "--",
                "sh",
                "-c",
                r#"mount --bind "$1" "$2" && exec "$3""#,
                "sh",
            ])
            .args([&source, &mounted])
            .arg(env!("CARGO_BIN_EXE_init-demo"))
            .env("COLDSTART_PROFILE_OUT", &mounted)
            .env("COLDSTART_METRICS_ADDR", "off")
            .env("OTEL_TRACES_EXPORTER", "none"),
        WITHIN,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "{stderr}");
    let text = std::fs::read_to_string(&source).unwrap();
    assert!(coldstart_bootstrap::init::Profile::parse(&text).is_ok() && !text.is_empty());

    let (target, link) = (dir.join("target.profile"), dir.join("link.profile"));
    std::fs::write(&target, "").unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let r = demo(&[("COLDSTART_PROFILE_OUT", link.to_str().unwrap())]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(!std::fs::read_to_string(&target).unwrap().is_empty());
    // A link to a file not there yet: the file is made, the link stays.
    let (later, dangling) = (dir.join("later.profile"), dir.join("dangling.profile"));
    std::os::unix::fs::symlink(&later, &dangling).unwrap();
    let r = demo(&[("COLDSTART_PROFILE_OUT", dangling.to_str().unwrap())]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let kept = std::fs::symlink_metadata(&dangling).unwrap();
    assert!(kept.file_type().is_symlink());
    assert!(!std::fs::read_to_string(&later).unwrap().is_empty());
}

#[test]
fn a_mispredicted_static_initialises_once_on_demand_and_the_next_profile_corrects_it() {
    let wrong = profile_file(
        "wrong.profile",
        "coldstart-profile 1\nlater 30000 static init_demo::SLOW\nneeded 1 static init_demo::SHARED\n\
         needed 1 fn init_demo::pool\nneeded 1 fn given name\n",
    );
    let out = temp_file("corrected.profile");
    let r = demo(&[
        ("DEMO_READERS", "6"),
        ("COLDSTART_PROFILE", wrong.to_str().unwrap()),
        ("COLDSTART_PROFILE_OUT", out.to_str().unwrap()),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.inits_between(None, "body").contains(&"init_demo::SLOW"));
    assert!(
        r.stdout
            .contains("readers saw [1, 1, 1, 1, 1, 1]; SLOW initialised 1 time(s)"),
        "{}",
        r.stdout
    );
    // Already initialised by the readers: the deferred phase does not run it again.
    assert!(
        !r.inits_between(Some("first response"), "deferred done")
            .contains(&"init_demo::SLOW")
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let corrected = coldstart_bootstrap::init::Profile::parse(&text).unwrap();
    assert!(corrected.get("init_demo::SLOW").unwrap().needed);
}

#[test]
fn a_main_that_ends_before_the_first_response_says_what_it_left_undone() {
    let out = temp_file("never.profile");
    let r = demo(&[
        ("DEMO_END_EARLY", "1"),
        ("COLDSTART_PROFILE_OUT", out.to_str().unwrap()),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.inits_between(Some("body"), "end"), Vec::<&str>::new());
    assert_eq!(
        r.stderr.trim_end(),
        format!(
            "coldstart: the program ends with no first response made, so the work after it \
             never began: {} deferred init(s) did not run, COLDSTART_PROFILE_OUT was not written",
            AFTER_BY_NAME.len()
        )
    );
    assert!(!out.exists(), "no profile of a run that never answered");

    // Nothing left undone, nothing said.
    let quiet = demo(&[]);
    assert_eq!(quiet.code, 0);
    assert!(!quiet.stderr.contains("program ends"), "{}", quiet.stderr);

    // The same with a shutdown hook on one thread: the end of `main` begins the
    // shutdown, which the work after the first response waits on as well; it must
    // not take that for a first response.
    let out = temp_file("never-hooked.profile");
    let r = demo(&[
        ("DEMO_END_EARLY", "1"),
        ("DEMO_HOOK", "1"),
        ("DEMO_HOOK_MS", "300"),
        ("COLDSTART_FLAVOR", "current_thread"),
        ("COLDSTART_PROFILE_OUT", out.to_str().unwrap()),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.lines_from("end"),
        ["end", "shutdown hook ran"],
        "{}",
        r.stdout
    );
    assert!(!out.exists(), "no profile of a run that never answered");
}

/// After a signal, no deferred init starts: the one running (here the one that sent
/// the signal) finishes, the rest do not begin while the program stops.
#[test]
fn after_a_signal_no_deferred_init_starts() {
    let out = temp_file("signalled.profile");
    let r = demo(&[
        ("DEMO_TERM", "LATER"),
        ("DEMO_HOOK", "1"),
        ("DEMO_HOOK_MS", "600"),
        ("DEMO_LINGER_MS", "5000"),
        ("COLDSTART_PROFILE_OUT", out.to_str().unwrap()),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let deferred: Vec<&str> = r
        .lines_from("first response")
        .into_iter()
        .filter_map(|l| l.strip_prefix("init "))
        .collect();
    assert_eq!(deferred, ["init_demo::LATER"], "{}", r.stdout);
    assert!(r.lines().contains(&"shutdown hook ran"), "{}", r.stdout);
    assert!(
        !out.exists(),
        "no profile of a run stopped before its deferred work"
    );
}

/// The demo on both schedulers with `config` registering a hook and then sending its
/// own process SIGTERM, and `env`; each run checked to have ended 0 with the hook run
/// and no first response, then given to `check`. On `current_thread` the listener's
/// task cannot run while an init holds the one thread: the rest of the inits and the
/// body ran there.
fn signalled_by_config(env: &[(&str, &str)], check: impl Fn(&str, &Run)) {
    signalled(&[&[("DEMO_TERM", "config")], env].concat(), check);
}

/// Runs the demo with `env` and the `config` init's hook, on each scheduler, where a
/// signal comes before serving: the hook runs, the body does not, exit 0; then
/// `check`s the run.
fn signalled(env: &[(&str, &str)], check: impl Fn(&str, &Run)) {
    for flavor in ["multi_thread", "current_thread"] {
        let mut vars = vec![("DEMO_EARLY_HOOK", "1"), ("COLDSTART_FLAVOR", flavor)];
        vars.extend_from_slice(env);
        let r = demo(&vars);
        assert_eq!(r.code, 0, "{flavor}: {}", r.stderr);
        assert!(
            r.lines().contains(&"early hook ran"),
            "{flavor}: {}",
            r.stdout
        );
        assert!(
            !r.stdout.contains("first response"),
            "{flavor}: {}",
            r.stdout
        );
        check(flavor, &r);
    }
}

/// A signal while the inits before serving run, once an init has registered a
/// shutdown hook (which takes the signal): the inits after it and the body do not
/// run, the hook does, and the program ends with 0. Before, every init ran first.
#[test]
fn a_signal_before_serving_stops_the_inits_and_the_body() {
    signalled_by_config(&[], |flavor, r| {
        // By name, `config` is the fourth and `pool` the last before serving.
        assert_eq!(r.inits_run(), BEFORE_BY_NAME[..4], "{flavor}: {}", r.stdout);
        assert!(
            r.stderr.contains("a signal came before serving"),
            "{flavor}: {}",
            r.stderr
        );
    });
}

/// A signal while an async init before serving waits (for a database that does not
/// answer): the init is left where it waits, the hooks run, and the program ends with
/// 0. The signal did nothing until the init ended, here never.
#[test]
fn a_signal_while_an_async_init_waits_stops_it() {
    signalled(&[("DEMO_POOL_WAITS", "signal")], |flavor, r| {
        // `pool`, the last before serving, never got past its wait.
        assert_eq!(r.inits_run(), BEFORE_BY_NAME[..4], "{flavor}: {}", r.stdout);
    });
}

/// An init before serving that fails after a signal came (a connection retried while
/// the platform stops the program) leaves the signal's way out: the hooks run, exit 0,
/// and the failure is said. It ended with exit 70, and no hook ran.
#[test]
fn an_init_failing_after_a_signal_before_serving_keeps_the_signals_exit() {
    signalled_by_config(&[("DEMO_FAIL", "config")], |flavor, r| {
        assert!(
            r.stderr.contains(
                "coldstart: init `init_demo::config` failed: config: no such file, while stopping at a signal"
            ),
            "{flavor}: {}",
            r.stderr
        );
    });
}

/// An init before serving that waits for the first response, or for the work after
/// it (`deferred_done`), would wait for ever (nothing is served before it ends, and
/// the fallback timer starts with serving): that is said, once, naming it. This one
/// gives up its wait after 300 ms. A wait for `deferred_done` went unsaid.
#[test]
fn an_init_before_serving_that_waits_for_the_first_response_is_said() {
    for waits in ["1", "deferred"] {
        let r = demo(&[("DEMO_POOL_WAITS", waits)]);
        assert_eq!(r.code, 0, "{waits}: {}", r.stderr);
        let said = "coldstart: init `init_demo::pool` waits for the first response, which cannot come before the inits before serving end";
        assert_eq!(r.stderr.matches(said).count(), 1, "{waits}: {}", r.stderr);
        assert!(
            r.lines().contains(&"first response"),
            "{waits}: {}",
            r.stdout
        );
    }
    let quiet = demo(&[]);
    assert!(
        !quiet.stderr.contains("waits for the first response"),
        "{}",
        quiet.stderr
    );
}

/// A deferred init that waits for `deferred_done()` waits for its own end: said once,
/// naming it. Unsaid, the inits after it never started and, on a thread of its own,
/// it held the end of `main` with no word why (here the demo bounds the wait).
#[test]
fn a_deferred_init_that_waits_for_the_deferred_work_is_said() {
    // `report` is an `async fn`, polled on the runtime; `must_work` a function, run on
    // a thread of its own.
    for init in ["report", "must_work"] {
        let r = demo(&[("DEMO_AWAIT_DEFERRED", init)]);
        assert_eq!(r.code, 0, "{init}: {}", r.stderr);
        assert_eq!(
            r.stderr,
            format!(
                "coldstart: deferred init `init_demo::{init}` waits for deferred_done(), which comes only after the deferred inits, this one among them, have ended: spawn the wait (tokio::spawn) instead\n"
            )
        );
        assert!(r.lines().contains(&"deferred done"), "{init}: {}", r.stdout);
    }
    let quiet = demo(&[]);
    assert!(
        !quiet.stderr.contains("deferred_done()"),
        "{}",
        quiet.stderr
    );
}

#[test]
fn a_malformed_profile_is_one_line_and_the_default_order_is_used() {
    let bad = profile_file(
        "bad.profile",
        "coldstart-profile 1\nneeded soon fn init_demo::SLOW\n",
    );
    let r = demo(&[("COLDSTART_PROFILE", bad.to_str().unwrap())]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim_end(),
        format!(
            "coldstart: COLDSTART_PROFILE={}: line 2: expected the duration in whole microseconds, got `soon`; \
             using the default init order",
            bad.display()
        )
    );
    assert_eq!(r.inits_between(None, "body"), BEFORE_BY_NAME);

    let missing = demo(&[("COLDSTART_PROFILE", "/nonexistent/coldstart.profile")]);
    assert_eq!(missing.code, 0);
    assert!(
        missing.stderr.starts_with(
            "coldstart: COLDSTART_PROFILE=/nonexistent/coldstart.profile: No such file"
        ),
        "{}",
        missing.stderr
    );

    // An endless file is not read into memory before main.
    let endless = demo(&[("COLDSTART_PROFILE", "/dev/zero")]);
    assert_eq!(endless.code, 0, "{}", endless.stderr);
    assert_eq!(
        endless.stderr.trim_end(),
        "coldstart: COLDSTART_PROFILE=/dev/zero: is a character device, not a regular file; \
         using the default init order"
    );
    // Nor is a large regular file.
    let large = temp_file("large.profile");
    std::fs::write(&large, vec![b'#'; (4 << 20) + 1]).unwrap();
    let r = demo(&[("COLDSTART_PROFILE", large.to_str().unwrap())]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim_end(),
        format!(
            "coldstart: COLDSTART_PROFILE={}: is larger than 4 MiB, more than such a file holds; \
             using the default init order",
            large.display()
        )
    );
    // A FIFO that nobody writes to is refused; opening it for reading would wait for
    // a writer forever, before main. `timeout` ends the demo should it wait.
    let fifo = temp_file("fifo.profile");
    coldstart_test_support::fifo(&fifo);
    let mut waits = command("timeout", &[("COLDSTART_PROFILE", fifo.to_str().unwrap())]);
    let out = waits
        .args(["20", env!("CARGO_BIN_EXE_init-demo")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "coldstart: COLDSTART_PROFILE={}: is a FIFO, not a regular file; \
             using the default init order",
            fifo.display()
        )
    );

    // Set to nothing (`COLDSTART_PROFILE=${UNSET}` in a compose file): not set.
    let empty = demo(&[("COLDSTART_PROFILE", "")]);
    assert_eq!((empty.code, empty.stderr.as_str()), (0, ""));
    assert_eq!(empty.inits_between(None, "body"), BEFORE_BY_NAME);
}

#[test]
fn names_missing_from_the_profile_or_unknown_to_the_program_warn_once_and_fall_back() {
    let stale = profile_file(
        "stale.profile",
        "coldstart-profile 1\nlater 5 static init_demo::SLOW\nneeded 9 fn init_demo::removed\n",
    );
    let r = demo(&[("COLDSTART_PROFILE", stale.to_str().unwrap())]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim_end(),
        "coldstart: inits: 3 not in the profile, run before serving (the default): given name, \
         init_demo::SHARED, init_demo::pool; 1 named in the profile but not registered, ignored: init_demo::removed"
    );
    let before = r.inits_between(None, "body");
    assert_eq!(
        before,
        [
            "given name",
            "init_demo::SHARED",
            "init_demo::config",
            "init_demo::pool"
        ]
    );
}

/// A stderr nobody reads (a pipe whose reader is gone: a log shipper that died) loses
/// coldstart's line, and the program still stops with its own exit code. Rust
/// ignores SIGPIPE, so the write fails, and `eprintln!` panicked there: exit 101, the
/// failure hooks never called.
#[test]
fn a_stderr_nobody_reads_does_not_change_the_exit_code() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    // Not `output_within`, which pipes stderr to the test.
    let child = command(env!("CARGO_BIN_EXE_init-demo"), &[("DEMO_FAIL", "config")])
        .stdout(std::process::Stdio::piped())
        .stderr(writer)
        .spawn()
        .unwrap();
    let out = wait_with_output_within(child, WITHIN);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(70), "{stdout}");
    assert!(
        stdout.contains("failure hook: init_demo::config"),
        "{stdout}"
    );
}

#[test]
fn a_failing_critical_init_stops_start_up_with_one_line_and_exit_70() {
    let r = demo(&[("DEMO_FAIL", "config")]);
    assert_eq!(r.code, 70);
    assert_eq!(
        r.stderr.trim_end(),
        "coldstart: init `init_demo::config` failed: config: no such file; start-up stopped"
    );
    assert!(
        !r.stdout.contains("body"),
        "the body must not run: {}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("failure hook: init_demo::config (config: no such file)"),
        "{}",
        r.stdout
    );
    // Nothing after the failing init ran.
    assert_eq!(
        r.inits_between(
            None,
            "failure hook: init_demo::config (config: no such file)"
        ),
        [
            "given name",
            "init_demo::SHARED",
            "init_demo::SLOW",
            "init_demo::config"
        ]
    );
}

#[test]
fn a_panicking_critical_init_is_reported_by_name() {
    for (name, full) in [
        ("config", "init_demo::config"),
        ("pool", "init_demo::pool"),
        ("SLOW", "init_demo::SLOW"),
    ] {
        let r = demo(&[("DEMO_PANIC", name)]);
        assert_eq!(r.code, 70, "{}", r.stderr);
        let last = r.stderr.lines().last().unwrap();
        assert_eq!(
            last,
            format!("coldstart: init `{full}` panicked: {name} exploded; start-up stopped")
        );
        assert!(!r.stdout.contains("body"));
    }
}

#[test]
fn a_failing_deferred_init_is_reported_and_serving_continues() {
    let r = demo(&[("DEMO_FAIL", "report")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim_end(),
        "coldstart: deferred init `init_demo::report` failed: report: no such file; serving continues"
    );
    assert!(
        r.stdout.contains(
            "report init_demo::report async AfterFirstResponse needed=false ok=Some(false)"
        )
    );
    assert!(r.stdout.ends_with("end\n"), "{}", r.stdout);
}

#[test]
fn a_panicking_deferred_init_is_reported_and_serving_continues() {
    let r = demo(&[("DEMO_PANIC", "report")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Rust's own panic message comes first (the hook is the program's), then one line.
    assert_eq!(
        r.stderr.lines().last(),
        Some(
            "coldstart: deferred init `init_demo::report` panicked: report exploded; serving continues"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains(
            "report init_demo::report async AfterFirstResponse needed=false ok=Some(false)"
        ),
        "{}",
        r.stdout
    );
    assert!(r.stdout.ends_with("end\n"), "{}", r.stdout);
}

#[test]
fn a_fatal_deferred_init_stops_the_program_after_the_shutdown_hooks() {
    let r = demo(&[
        ("DEMO_FAIL", "must_work"),
        ("DEMO_LINGER_MS", "5000"),
        ("DEMO_HOOK", "1"),
        ("DEMO_READY", "1"),
    ]);
    assert_eq!(r.code, 70, "{}", r.stderr);
    // A readiness check on `deferred_done` does not turn ready while the program
    // stops.
    assert!(!r.lines().contains(&"ready"), "{}", r.stdout);
    assert!(
        r.lines().contains(&"shutdown hook ran"),
        "the hooks run before the exit: {}",
        r.stdout
    );
    assert_eq!(
        r.stderr.trim_end(),
        "coldstart: deferred init `init_demo::must_work` failed: must_work: no such file; stopping (fatal)"
    );
    assert!(
        !r.stdout.contains("end\n"),
        "the body is cancelled: {}",
        r.stdout
    );
    // The deferred init after it in the order is not started while the program stops.
    assert!(
        r.lines().contains(&"init init_demo::must_work")
            && !r.lines().contains(&"init init_demo::report"),
        "{}",
        r.stdout
    );
}

/// A fatal deferred init that fails while a signal's shutdown runs does not turn the
/// signal's exit code 0 into its own 70: the program was stopping anyway.
#[test]
fn a_fatal_deferred_init_failing_during_a_signals_shutdown_keeps_exit_code_0() {
    let r = demo(&[
        ("DEMO_FAIL", "must_work"),
        ("DEMO_TERM", "must_work"),
        ("DEMO_LINGER_MS", "5000"),
        ("DEMO_HOOK", "1"),
        ("DEMO_HOOK_MS", "1000"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "deferred init `init_demo::must_work` failed: must_work: no such file; stopping (fatal)"
        ),
        "the failure is still said: {}",
        r.stderr
    );
    assert!(r.lines().contains(&"shutdown hook ran"), "{}", r.stdout);
    assert!(
        !r.stdout.contains("end\n"),
        "the body is cancelled: {}",
        r.stdout
    );
}

/// The body returned before the fatal init failed (it failed while the shutdown hooks
/// ran): the program still stops with the init's code, not 0.
#[test]
fn a_fatal_deferred_init_failing_after_the_body_returned_still_sets_the_exit_code() {
    let r = demo(&[
        ("DEMO_FAIL", "must_work"),
        ("DEMO_RETURN_AT_ONCE", "1"),
        ("DEMO_HOOK", "1"),
        ("DEMO_HOOK_MS", "1000"),
    ]);
    assert!(
        r.stdout.contains("end\n"),
        "the body returned: {}",
        r.stdout
    );
    assert!(
        r.stderr.contains(
            "deferred init `init_demo::must_work` failed: must_work: no such file; stopping (fatal)"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(r.code, 70, "{}", r.stderr);
}

/// `main` returns while a deferred init on a thread of its own waits on a timer of the
/// runtime. The end of `main` waits for it with the runtime still running, on one
/// thread too (nothing drove the timer once `block_on` had returned, and the program
/// never ended), starts no other, and takes a fatal one's failure as the exit code.
#[test]
fn the_end_of_main_waits_for_the_deferred_init_running_with_the_runtime_running() {
    for flavor in ["current_thread", "multi_thread"] {
        let r = demo(&[
            ("COLDSTART_FLAVOR", flavor),
            ("DEMO_RETURN_AFTER_MS", "100"),
            ("DEMO_WAIT_ON_RUNTIME", "LATER"),
        ]);
        assert_eq!(r.code, 0, "{flavor}: {}", r.stderr);
        assert_eq!(
            r.lines_from("end"),
            ["end", "LATER waited on the runtime"],
            "{flavor}: no other deferred init starts: {}",
            r.stdout
        );
        assert!(
            r.stderr.contains("3 deferred init(s) did not finish"),
            "{flavor}: {}",
            r.stderr
        );

        let r = demo(&[
            ("COLDSTART_FLAVOR", flavor),
            ("DEMO_RETURN_AFTER_MS", "100"),
            ("DEMO_WAIT_ON_RUNTIME", "must_work"),
            ("DEMO_FAIL", "must_work"),
        ]);
        assert!(
            r.stderr.contains("deferred init `init_demo::must_work` failed: must_work: no such file; stopping (fatal)"),
            "{flavor}: {}",
            r.stderr
        );
        assert_eq!(r.code, 70, "{flavor}: {}", r.stderr);
        assert!(
            !r.stdout.contains("init init_demo::report"),
            "{flavor}: {}",
            r.stdout
        );
    }
}

/// SIGTERM while the end of `main` waits for a deferred init ends the program as any
/// signal after the hooks does (the first signal was taken and nothing acted on it:
/// the program went on until the init ended, or a second signal).
#[test]
fn a_signal_ends_the_wait_at_the_end_of_main() {
    use std::io::BufRead;
    // Killed when the test ends, also where an assertion fails before the signal.
    let mut child = Reaper(spawned(
        env!("CARGO_BIN_EXE_init-demo"),
        &[
            ("DEMO_RETURN_AFTER_MS", "100"),
            ("DEMO_WAIT_ON_RUNTIME", "LATER"),
            ("DEMO_WAIT_MS", "20000"),
            ("DEMO_HOOK", "1"),
        ],
    ));
    let mut stderr = Lines::of(&mut child.0);
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // Past the end of `main` and its hook (the wait begins once the hooks have run),
    // inside the init's 20 s: signalled any sooner, it would end the body instead.
    let mut seen = Vec::new();
    while !seen.iter().any(|l| l == "shutdown hook ran") {
        match lines.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("no shutdown hook within 10 s: {seen:?}"),
        }
    }
    assert!(seen.iter().any(|l| l == "end"), "{seen:?}");
    assert!(
        seen.iter().any(|l| l == "init init_demo::LATER"),
        "{seen:?}"
    );
    let pid = libc::pid_t::try_from(child.0.id()).unwrap();
    // SAFETY: kill(2) on the child this test started, not yet waited for.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = child
        .ended_within(Duration::from_secs(10))
        .unwrap_or_else(|| {
            panic!(
                "the program, sent SIGTERM while the end of main waited, did not end within 10 s"
            )
        });
    // The reader ends with the program's stdout.
    seen.extend(lines.iter());
    let said = stderr.drain(Duration::from_millis(100));
    assert_eq!(status.code(), Some(0), "{seen:?}\n{said}");
    assert!(
        !seen
            .iter()
            .any(|l| l.contains("LATER waited on the runtime")),
        "{seen:?}"
    );
}

/// A profile written when the fallback timer started the deferred work, no request
/// answered, is written and said to be so: it takes for not needed what a request
/// that came later read.
#[test]
fn a_profile_written_at_the_fallback_timer_says_so() {
    let out = temp_file("fallback.profile");
    let r = demo(&[
        ("DEMO_SILENT_MS", "400"),
        ("COLDSTART_FIRST_RESPONSE_FALLBACK", "100ms"),
        ("COLDSTART_PROFILE_OUT", out.to_str().unwrap()),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(out.exists(), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "coldstart: COLDSTART_PROFILE_OUT={} was written when the fallback timer fired, with no request answered",
            out.display()
        )),
        "{}",
        r.stderr
    );
    // After a first response, nothing of the kind.
    let out = temp_file("answered.profile");
    let r = demo(&[("COLDSTART_PROFILE_OUT", out.to_str().unwrap())]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        out.exists() && !r.stderr.contains("fallback"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_library_registers_only_when_the_program_links_it() {
    let linked = run(env!("CARGO_BIN_EXE_linked"), &[]);
    assert_eq!(linked.code, 0, "{}", linked.stderr);
    assert_eq!(
        linked.lines(),
        [
            "init init_demo::SHARED",
            "init init_demo::library_warm_up",
            "registered init_demo::SHARED",
            "registered init_demo::library_warm_up"
        ]
    );
    let unlinked = run(env!("CARGO_BIN_EXE_unlinked"), &[]);
    assert_eq!(unlinked.stdout, "0 registrations\n");
}

#[test]
fn an_embedded_profile_orders_the_run_and_the_variable_overrides_it() {
    let embedded = run(env!("CARGO_BIN_EXE_embedded"), &[]);
    assert_eq!(embedded.code, 0, "{}", embedded.stderr);
    assert_eq!(embedded.inits_between(None, "body"), Vec::<&str>::new());
    assert_eq!(
        embedded.inits_between(Some("first response"), "deferred done"),
        ["init_demo::SHARED", "init_demo::library_warm_up"]
    );
    assert!(embedded.stderr.is_empty(), "{}", embedded.stderr);

    let own = profile_file(
        "override.profile",
        "coldstart-profile 1\nneeded 1 static init_demo::SHARED\n",
    );
    let overridden = run(
        env!("CARGO_BIN_EXE_embedded"),
        &[("COLDSTART_PROFILE", own.to_str().unwrap())],
    );
    assert_eq!(overridden.code, 0, "{}", overridden.stderr);
    assert!(overridden.stderr.is_empty(), "{}", overridden.stderr);
    assert_eq!(
        overridden.inits_between(None, "body"),
        ["init_demo::SHARED"]
    );
}

/// `apart`'s two slow statics and two functions, all needed, as a profile times them.
const APART_PROFILE: &str = "coldstart-profile 1\n\
    needed 5000 static apart::LEFT\n\
    needed 5000 static apart::RIGHT\n\
    needed 10 fn apart::setup\n\
    needed 5 fn apart::then\n";

/// Runs `apart` with [`APART_PROFILE`] (written to `file`) and `env`.
fn apart_with_profile(file: &str, env: &[(&str, &str)]) -> Run {
    let path = profile_file(file, APART_PROFILE);
    let mut all = vec![("COLDSTART_PROFILE", path.to_str().unwrap())];
    all.extend_from_slice(env);
    run(env!("CARGO_BIN_EXE_apart"), &all)
}

fn sorted(lines: Vec<&str>) -> Vec<&str> {
    let mut lines = lines;
    lines.sort_unstable();
    lines
}

/// A signal while a static running apart has not finished (a connect that does not
/// answer): it is left to its thread, the hooks run, and the program ends with 0. The
/// signal waited for it, two minutes here.
#[test]
fn a_signal_leaves_a_static_running_apart_to_its_thread() {
    let r = apart_with_profile(
        "apart-hang.profile",
        &[("DEMO_HANG", "LEFT"), ("DEMO_TERM", "setup")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.lines().contains(&"hook ran"), "{}", r.stdout);
    assert!(!r.lines().contains(&"body"), "{}", r.stdout);
}

#[test]
fn statics_the_profile_times_as_slow_run_side_by_side_before_serving() {
    let r = apart_with_profile("apart.profile", &[("COLDSTART_LOG", "debug")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Each waited for the other: they ran at the same time, and the body after both.
    assert_eq!(
        sorted(r.inits_between(None, "body")),
        ["LEFT met=true", "RIGHT met=true", "setup", "then"]
    );
    assert!(
        r.stderr.contains(
            "before serving       apart::LEFT, apart::RIGHT (apart, each on a thread of its own); \
             apart::setup, apart::then"
        ),
        "{}",
        r.stderr
    );
}

/// With a task limit that refuses every thread (`pids.max` 1), the statics the profile
/// sets apart run on the thread there is, one after the other (the first gives up
/// waiting for the second, which finds it started), and start-up goes on. On tokio's blocking pool, whose spawn panicked there, the
/// process ended with 101.
#[test]
fn statics_set_apart_run_where_no_thread_can_be_made() {
    let test = "statics_set_apart_run_where_no_thread_can_be_made";
    if !cargo_coldstart::cgroup::can_create(test).unwrap() {
        return;
    }
    let name = format!("coldstart-demo-apart-{}", std::process::id());
    let cg = cargo_coldstart::cgroup::TempCgroup::with_task_limit(&name, 1).unwrap();
    let path = profile_file("apart-no-thread.profile", APART_PROFILE);
    let mut command = command(
        env!("CARGO_BIN_EXE_apart"),
        &[
            ("COLDSTART_PROFILE", path.to_str().unwrap()),
            ("COLDSTART_FLAVOR", "current_thread"),
            ("DEMO_WAIT_MS", "100"),
        ],
    );
    command.env_remove("RUST_BACKTRACE");
    cg.join_before_exec(&mut command).unwrap();
    let out = output_within(&mut command, Duration::from_secs(120));
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert_eq!(
        sorted(r.inits_between(None, "body")),
        ["LEFT met=false", "RIGHT met=true", "setup", "then"]
    );
}

#[test]
fn without_durations_the_statics_run_one_after_the_other() {
    // No profile: nothing says they are slow. The first gives up waiting.
    let r = run(env!("CARGO_BIN_EXE_apart"), &[("DEMO_WAIT_MS", "100")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.inits_between(None, "body"),
        ["LEFT met=false", "RIGHT met=true", "setup", "then"]
    );
}

#[test]
fn a_static_that_panics_apart_stops_what_runs_in_turn_and_start_up() {
    let r = apart_with_profile("apart-panic.profile", &[("DEMO_PANIC", "LEFT")]);
    assert_eq!(r.code, 70, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().last().unwrap(),
        "coldstart: init `apart::LEFT` panicked: LEFT exploded; start-up stopped"
    );
    // `then` comes after the failure and does not run; `RIGHT` finishes first (it
    // cannot be stopped), and the body never runs.
    assert_eq!(
        sorted(r.stdout.lines().collect()),
        [
            "init LEFT met=true",
            "init RIGHT done",
            "init RIGHT met=true",
            "init setup"
        ]
    );
}

/// Two failures before serving, one apart and one in turn: the first stops start-up,
/// and the other is said too (an in-turn `Err`, which no panic hook prints, was never
/// seen).
#[test]
fn every_failure_before_serving_is_said() {
    let r = apart_with_profile(
        "apart-both.profile",
        &[("DEMO_PANIC", "LEFT"), ("DEMO_FAIL", "setup")],
    );
    assert_eq!(r.code, 70, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "coldstart: init `apart::setup` failed: setup: no such file, at the same start-up"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(
        r.stderr.lines().last().unwrap(),
        "coldstart: init `apart::LEFT` panicked: LEFT exploded; start-up stopped"
    );
}

#[test]
fn a_failure_in_turn_stops_start_up_once_what_runs_apart_has_finished() {
    let r = apart_with_profile("apart-fail.profile", &[("DEMO_FAIL", "setup")]);
    assert_eq!(r.code, 70, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim_end(),
        "coldstart: init `apart::setup` failed: setup: no such file; start-up stopped"
    );
    assert_eq!(
        sorted(r.stdout.lines().collect()),
        ["init LEFT met=true", "init RIGHT met=true", "init setup"]
    );
}
