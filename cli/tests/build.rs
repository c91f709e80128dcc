//! `cargo coldstart build` end to end: the HTTP example built with the start-up
//! profile is a working binary, the report names every setting and its size, an init
//! profile given to `build` is embedded and orders the run, and building again without
//! it rebuilds the binary with the order of the example's own `profile` argument.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::path::Path;
use std::process::{Command, Stdio};

mod support;
use support::planned_order;

const TOOL: &str = env!("CARGO_BIN_EXE_cargo-coldstart");

/// Runs `cargo coldstart build -p http-server --release` plus `extra` from the
/// workspace root; returns the report and the built binary's path.
fn build(extra: &[&str]) -> (String, String) {
    let out = Command::new(TOOL)
        .args(["build", "-p", "http-server", "--release"])
        .args(extra)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = report
        .lines()
        .find(|l| l.contains("/coldstart/http-server"))
        .unwrap_or_else(|| panic!("no binary in:\n{report}"))
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    // Shown relative to the directory the build ran in.
    if std::env::var_os("CARGO_TARGET_DIR").is_none() {
        assert!(path.starts_with("target/"), "{path}");
    }
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .join(path)
        .to_string_lossy()
        .into_owned();
    (report, path)
}

#[test]
fn the_example_built_for_start_up_serves_in_the_embedded_order() {
    // A profile that says the first request needs the client pool, which the
    // example's own embedded profile places after the first response.
    let dir = coldstart_test_support::temp_dir("build-test");
    let given = dir.join("pool-first.profile");
    std::fs::write(
        &given,
        "coldstart-profile 1\nneeded 1 static http_server::CLIENT_POOL\nneeded 1 static http_server::CONFIG\nlater 1 async http_server::warm_cache\n",
    )
    .unwrap();
    let (report, path) = build(&["--init-profile", given.to_str().unwrap()]);
    for setting in [
        "lto = \"fat\"",
        "codegen-units = 1",
        "strip = \"symbols\"",
        "panic = \"unwind\"",
    ] {
        assert!(
            report.contains(setting),
            "{setting} missing from:\n{report}"
        );
    }
    let line = report
        .lines()
        .find(|l| l.contains("/coldstart/http-server"))
        .unwrap();
    assert!(line.contains(" MB"), "{line}");
    assert!(
        report.contains(&format!(
            "init profile {} embedded (2 needed by the first request, 1 not)",
            given.display()
        )),
        "{report}"
    );
    let (before, _) = planned_order(Path::new(&path), None);
    assert!(before.contains("http_server::CLIENT_POOL"), "{before}");

    let port = coldstart_test_support::free_port();
    let mut server = Command::new(&path)
        .env("PORT", port.to_string())
        .env("COLDSTART_METRICS_ADDR", "off")
        .env("OTEL_TRACES_EXPORTER", "none")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Waits up to 10 s for the port to open.
    let answer = coldstart_test_support::get(port);
    let _ = server.kill();
    let _ = server.wait();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("hello\n"), "{answer}");

    // Without it, cargo rebuilds (the variable changed) and the example's own
    // `profile = "coldstart.profile"` orders the run again.
    let (report, path) = build(&["--no-init-profile"]);
    assert!(report.contains("no init profile embedded"), "{report}");
    let (before, after) = planned_order(Path::new(&path), None);
    assert!(before.contains("http_server::CONFIG"), "{before}");
    assert!(!before.contains("CLIENT_POOL"), "{before}");
    assert!(after.contains("http_server::CLIENT_POOL"), "{after}");
}

/// A stand-in for cargo in `dir`: `CARGO=/bin/sh` run there makes the tool's `cargo
/// build ...` the shell reading the script `build` with the arguments. The script is
/// read, not executed: a file just written and executed at once can fail with "Text
/// file busy" while another test forks.
fn fake_cargo(dir: &Path, script: &str) {
    std::fs::write(dir.join("build"), script).unwrap();
}

/// `cargo coldstart build` run in `dir` with the stand-in cargo written there.
fn build_with_fake_cargo(dir: &Path) -> Command {
    let mut command = Command::new(TOOL);
    command
        .args(["build", "-p", "http-server", "--no-init-profile"])
        .current_dir(dir)
        .env("CARGO", "/bin/sh");
    command
}

/// A build cargo fails ends with cargo's code, or 128 plus the signal that killed it:
/// it was 1 for every failure. A stand-in cargo (`CARGO`, which `build` runs as cargo
/// runs it) fails as asked, without a real build.
#[test]
fn a_failed_build_ends_with_cargos_code() {
    let dir = coldstart_test_support::temp_dir("fake-cargo");
    for (script, code, said) in [
        ("exit 101", 101, "exit status: 101"),
        ("kill -9 $$", 137, "signal: 9"),
    ] {
        fake_cargo(&dir, script);
        let out = build_with_fake_cargo(&dir).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{script}: {stderr}");
        assert!(stderr.contains(said), "{script}: {stderr}");
    }
}

/// A caller's empty `COLDSTART_EMBED_PROFILE` names no profile, and cargo gets none
/// (unset), so that one in cargo's `[env]` applies, as the report says: inherited
/// empty, it masked that one while the report said it applied.
#[test]
fn an_empty_embed_variable_reaches_cargo_unset() {
    let dir = coldstart_test_support::temp_dir("fake-cargo-env");
    let seen = dir.join("seen");
    fake_cargo(
        &dir,
        &format!(
            "echo \"${{COLDSTART_EMBED_PROFILE-unset}}\" > '{}'\n",
            seen.display()
        ),
    );
    // A directory without coldstart.profile: nothing found to embed.
    let out = Command::new(TOOL)
        .args(["build", "-p", "http-server"])
        .current_dir(&dir)
        .env("CARGO", "/bin/sh")
        .env("COLDSTART_EMBED_PROFILE", "")
        .output()
        .unwrap();
    let said = std::fs::read_to_string(&seen)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(said.trim(), "unset");
}

/// A usage error, or an init profile that cannot be embedded, exits 2, as for the
/// other commands.
#[test]
fn a_usage_error_exits_2() {
    for (args, said) in [
        (&["--init-profile"][..], "--init-profile needs a file"),
        (
            &["--no-init-profiles"][..],
            "`--no-init-profiles` is not an option of cargo coldstart build",
        ),
        (
            &["--init-profle", "x.profile"][..],
            "`--init-profle` is not an option",
        ),
        (&["--profile", "dev"][..], "--profile"),
        // An init profile that is not there, or not one: the input is wrong, as
        // `compare --package-dir` or `profile --lambda-event` with a missing file.
        (
            &["--init-profile", "/nonexistent/app.profile"][..],
            "/nonexistent/app.profile",
        ),
    ] {
        let out = Command::new(TOOL).arg("build").args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(said), "{args:?}: {stderr}");
    }
}

/// A signal to the tool alone (`kill PID`, which the build's processes do not get)
/// stops the build with it: cargo and what cargo started went on compiling, holding
/// the target directory's lock, after the tool had gone. The stand-in cargo starts a
/// child of its own, as cargo starts rustc. A SIGKILL leaves the tool no clean-up:
/// the kernel kills cargo as the tool dies (what cargo started then finishes alone).
#[test]
fn a_signal_to_the_tool_stops_the_build() {
    for signal in [libc::SIGTERM, libc::SIGKILL] {
        signalled_build(signal);
    }
}

fn signalled_build(signal: i32) {
    let dir = coldstart_test_support::temp_dir("fake-cargo-signal");
    let (cargo_pid, child_pid) = (dir.join("cargo.pid"), dir.join("child.pid"));
    fake_cargo(
        &dir,
        &format!(
            "sleep 300 &\necho $! > '{}'\necho $$ > '{}'\nwait\n",
            child_pid.display(),
            cargo_pid.display()
        ),
    );
    let tool = build_with_fake_cargo(&dir)
        // What the tool says is read only where it lives to say it: the stand-in's
        // child, left running after a SIGKILL, would hold the pipe open.
        .stderr(if signal == libc::SIGKILL {
            std::process::Stdio::null()
        } else {
            std::process::Stdio::piped()
        })
        .spawn()
        .unwrap();
    let read_pid = |path: &Path| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (cargo, child) = loop {
        if let (Some(c), Some(k)) = (read_pid(&cargo_pid), read_pid(&child_pid)) {
            break (c, k);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stand-in cargo never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    // SAFETY: kill(2) on the tool this test started, not yet reaped.
    assert_eq!(unsafe { libc::kill(tool.id() as i32, signal) }, 0);
    let out =
        coldstart_test_support::wait_with_output_within(tool, std::time::Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Killed: gone, or a zombie waiting for whoever reaps it now.
    let running = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
    };
    let stopped = |pids: &[i32]| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while pids.iter().any(|&p| running(p)) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        pids.iter().all(|&p| !running(p))
    };
    if signal == libc::SIGKILL {
        use std::os::unix::process::ExitStatusExt as _;
        let cargo_stopped = stopped(&[cargo]);
        // SAFETY: kill(2) on the stand-in's child, left to finish alone (and on the
        // stand-in itself, should it still run), before anything can fail.
        unsafe {
            libc::kill(child, libc::SIGKILL);
            libc::kill(cargo, libc::SIGKILL);
        }
        assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{stderr}");
        assert!(cargo_stopped, "the stand-in cargo ({cargo}) still ran");
        return;
    }
    assert_eq!(out.status.code(), Some(128 + signal), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(!stderr.contains("cargo build failed"), "{stderr}");
    assert!(stopped(&[cargo]), "the stand-in cargo ({cargo}) still runs");
    assert!(stopped(&[child]), "its child ({child}) still runs");
}

/// A program on coldstart built for musl without mimalloc is warned of: musl's
/// allocator served about half the requests a second. Not one with mimalloc, not one
/// built for glibc, not a program that is not on coldstart. The stand-in cargo reports
/// the programs it "built" as cargo does, one JSON message each.
#[test]
fn a_musl_build_without_mimalloc_is_warned_of() {
    let dir = coldstart_test_support::temp_dir("fake-cargo-musl");
    let musl = dir.join("x86_64-unknown-linux-musl/coldstart");
    let glibc = dir.join("coldstart");
    std::fs::create_dir_all(&musl).unwrap();
    std::fs::create_dir_all(&glibc).unwrap();
    let programs = [
        (musl.join("plain"), &b"..COLDSTART_PROFILE.."[..]),
        (
            musl.join("tuned"),
            &b"..COLDSTART_PROFILE..mimalloc: error: .."[..],
        ),
        (musl.join("healthcheck"), &b"..no runtime here.."[..]),
        (glibc.join("server"), &b"..COLDSTART_PROFILE.."[..]),
    ];
    let mut script = String::new();
    for (path, bytes) in &programs {
        std::fs::write(path, bytes).unwrap();
        script.push_str(&format!(
            "echo '{{\"reason\":\"compiler-artifact\",\"profile\":{{\"test\":false}},\"executable\":\"{}\"}}'\n",
            path.display()
        ));
    }
    fake_cargo(&dir, &script);
    let out = build_with_fake_cargo(&dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let warned: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(warned.len(), 1, "{stdout}");
    assert!(
        warned[0].starts_with(
            "warning: x86_64-unknown-linux-musl/coldstart/plain is built for musl without mimalloc"
        ),
        "{stdout}"
    );
}
