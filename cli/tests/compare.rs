//! `cargo coldstart compare` end to end against the examples: HTTP servers
//! unconstrained and in a real cgroup (root), Lambda functions against the real
//! emulator, the error cases, and the clean-up on Ctrl-C. Time is never asserted on.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use coldstart_test_support::{TempDir, temp_dir};
use serde_json::Value;

mod support;
use support::{LAMBDA_PACKAGE, cargo_lambda, example};

const TOOL: &str = env!("CARGO_BIN_EXE_cargo-coldstart");

/// The longest a `compare` run here may take: one that hangs fails its test.
const WITHIN: Duration = Duration::from_secs(600);

fn compare(args: &[&str]) -> Output {
    coldstart_test_support::output_within(
        Command::new(TOOL)
            .arg("compare")
            .args(args)
            .env("OTEL_TRACES_EXPORTER", "none")
            .env("COLDSTART_METRICS_ADDR", "off"),
        WITHIN,
    )
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Under CI root is required (the cgroup suites must run); elsewhere the test says
/// it is skipped.
fn root_or_skip(test: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        !coldstart_test_support::in_ci(),
        "{test} needs root, and CI must run it"
    );
    coldstart_test_support::skipped(test, "creating cgroups needs root");
    false
}

#[test]
fn two_servers_compared_in_json_with_exit_behaviour() {
    let server = example("http-server");
    let server = server.to_str().unwrap();
    let out = compare(&[
        server,
        server,
        "--runs",
        "3",
        "--json",
        "--url",
        "http://127.0.0.1:$PORT/",
    ]);
    let v = json(&out);
    assert_eq!(v["mode"], "http");
    assert_eq!(v["runs"], 3);
    let targets = v["targets"].as_array().unwrap();
    assert_eq!(targets[0]["name"], "A http-server");
    assert_eq!(targets[1]["name"], "B http-server");
    for t in targets {
        let ms = &t["first_response_ms"];
        assert!(ms["min"].as_f64().unwrap() > 0.0);
        assert!(
            ms["min"].as_f64() <= ms["median"].as_f64()
                && ms["median"].as_f64() <= ms["max"].as_f64()
        );
        assert!(t["rss_mib"]["median"].as_f64().unwrap() > 0.0);
        assert!(t["threads"]["median"].as_f64().unwrap() >= 1.0);
        let exits = t["exit"].as_array().unwrap();
        assert_eq!(exits.len(), 3);
        // Each run ended on SIGTERM without being killed, with a code or the signal.
        for e in exits {
            assert_eq!(e["killed_after_timeout"], false, "{e}");
            assert!(e["code"].is_number() != e["signal"].is_number(), "{e}");
            assert!(e["ms"].as_f64().unwrap() > 0.0, "{e}");
        }
    }
    let ratio = &v["ratio_b_to_a"];
    assert!(ratio["median"].as_f64().unwrap() > 0.0);
    let (p10, p90) = (ratio["paired_p10"].as_f64(), ratio["paired_p90"].as_f64());
    assert!(p10.unwrap() <= p90.unwrap(), "{ratio}");
}

/// What a program starts outside its process group (a daemon's `setsid`) is killed
/// with it at the end of its run, as the help says: only the group was, and a daemon
/// outlived the comparison.
#[test]
fn what_a_program_starts_outside_its_group_is_killed_with_it() {
    use std::os::unix::fs::PermissionsExt as _;
    let server = example("http-server");
    let dir = temp_dir("compare-daemon");
    // A sleep of a length no other process here has: the mark to look for.
    let seconds = 900_000 + std::process::id() % 90_000;
    let script = dir.join("daemon.sh");
    let started = dir.join("started");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nsetsid sleep {seconds} &\necho $! >>{}\nexec {}\n",
            started.display(),
            server.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = script.to_str().unwrap();
    let out = compare(&[script, script, "--runs", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Each run started one (a warm-up run and a measured one of each program).
    let pids = std::fs::read_to_string(&started).unwrap();
    assert_eq!(pids.lines().count(), 4, "{pids}");
    let mark = format!("sleep\0{seconds}\0");
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| std::fs::read(p.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).into_owned())
        .filter(|c| c == &mark)
        .collect();
    assert!(left.is_empty(), "still running: {left:?}");
}

#[test]
fn the_table_names_both_and_a_program_without_a_handler_is_ended_by_the_signal() {
    let server = example("http-server");
    // python3's http.server takes its port as an argument: a fixed port via --url.
    let port = coldstart_test_support::free_port();
    let python = format!("python3 -m http.server {port} --bind 127.0.0.1");
    let out = coldstart_test_support::output_within(
        Command::new(TOOL)
            .args(["compare", server.to_str().unwrap(), &python, "--runs", "2"])
            .args(["--url", &format!("http://127.0.0.1:{port}/")])
            .env("PORT", port.to_string())
            .env("OTEL_TRACES_EXPORTER", "none")
            .env("COLDSTART_METRICS_ADDR", "off"),
        WITHIN,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("http-server"), "{text}");
    assert!(text.contains("python3"), "{text}");
    assert!(text.contains("B/A "), "{text}");
    // Two runs each, every one described: exited with a code or ended by the signal.
    for name in ["http-server", "python3"] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no exit line for {name}: {text}"));
        let counted: usize = line
            .split(", ")
            .filter_map(|part| {
                part.rsplit(": ")
                    .next()?
                    .split_whitespace()
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .sum();
        assert_eq!(counted, 2, "{line}");
        assert!(
            line.contains("exited") || line.contains("signal 15"),
            "{line}"
        );
    }
}

#[test]
fn bad_inputs_are_clear_errors() {
    let stderr = |out: Output| String::from_utf8_lossy(&out.stderr).into_owned();
    let out = compare(&["./no-such-binary", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(out).contains("`./no-such-binary` does not exist"));
    let out = compare(&["true", "true", "--memory", "lots"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(out).contains("set --memory to a size such as 64M or 1G, got `lots`"));
    let out = compare(&["true", "true", "--cpus", "-1"]);
    assert!(stderr(out).contains("set --cpus to a number of cores"));
    // A program that exits before answering: its stderr tail is shown.
    let out = compare(&["cat /no/such/file", "true", "--runs", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(out);
    assert!(
        text.contains("cat exited with exit status: 1 before answering"),
        "{text}"
    );
    assert!(text.contains("No such file"), "{text}");
    // A program that never opens the port: the timeout with the last error.
    let out = compare(&["sleep 60", "true", "--runs", "1"]);
    let text = stderr(out);
    assert!(text.contains("did not open 127.0.0.1:"), "{text}");
    assert!(text.contains("Connection refused"), "{text}");
    // Options as `--option=value`, and one mistyped with one dash, named.
    let out = compare(&["true", "true", "--runs=many"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(out).contains("set --runs to a whole number from 1 to 10000, got `many`"));
    let out = compare(&["true", "true", "-json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(out).contains("unknown option `-json` for compare"));
    let out = compare(&["true", "true", "--url", "http://127.0.0.1:0/"]);
    assert!(stderr(out).contains("set --url to http://127.0.0.1:PORT/PATH"));
    let out = compare(&["true", "true", "--cpus", "0.001"]);
    assert!(stderr(out).contains("from 0.01 to 1024"));
    let out = compare(&["true", "true", "--lambda", "--memory", "64M"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(out).contains("Lambda allows from 128M to 10240M; got 64M"));
    // A port something else already listens on: its answer would be measured.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/", taken.local_addr().unwrap().port());
    let out = compare(&["sleep 60", "true", "--runs", "1", "--url", &url]);
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(out);
    assert!(
        text.contains("something already listens on 127.0.0.1:"),
        "{text}"
    );
    // An argument that is not UTF-8 is named, not a panic.
    let out = coldstart_test_support::output_within(
        Command::new(TOOL)
            .arg("compare")
            .arg(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"/tmp/\xff"))
            .arg("true"),
        WITHIN,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(out).contains("argument 2 (/tmp/\u{fffd}) is not UTF-8"));
}

/// An executable shell script with `body` in a new directory: the directory (removed
/// when dropped) and the script's path. `$STARTED` names a file in the directory for
/// the script to list the pids of what it starts in.
fn script(name: &str, body: &str) -> (TempDir, String) {
    let dir = temp_dir(name);
    let path = dir.join(format!("{name}.sh"));
    let started = dir.join("started");
    let text = format!("#!/bin/sh\nSTARTED='{}'\n{body}", started.display());
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (dir, path.to_str().unwrap().to_owned())
}

/// The cgroups `compare` created for the process `pid`, in the v1 controllers (the
/// layout these tests need: elsewhere the answer would be empty whatever was left).
fn cgroups_of(pid: u32) -> Vec<PathBuf> {
    assert!(
        ["cpu", "memory"]
            .iter()
            .all(|c| std::path::Path::new(&format!("/sys/fs/cgroup/{c}/cgroup.procs")).exists()),
        "these tests look for cgroups in the v1 layout (/sys/fs/cgroup/cpu, /sys/fs/cgroup/memory)"
    );
    ["cpu", "memory"]
        .iter()
        .map(|c| PathBuf::from(format!("/sys/fs/cgroup/{c}/coldstart-compare-{pid}")))
        .filter(|p| p.exists())
        .collect()
}

#[test]
fn in_a_real_cgroup_and_it_is_removed_after() {
    let test = "in_a_real_cgroup_and_it_is_removed_after";
    if !root_or_skip(test) {
        return;
    }
    let server = example("http-server");
    let server = server.to_str().unwrap();
    let child = Command::new(TOOL)
        .args([
            "compare", server, server, "--runs", "2", "--json", "--cpus", "0.25", "--memory", "64M",
        ])
        .env("OTEL_TRACES_EXPORTER", "none")
        .env("COLDSTART_METRICS_ADDR", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = coldstart_test_support::wait_with_output_within(child, WITHIN);
    let v = json(&out);
    assert_eq!(v["setting"], "cgroup 0.25 CPU, 64 MiB memory");
    // In a 0.25-CPU cgroup coldstart plans one thread (current_thread).
    assert_eq!(v["targets"][0]["threads"]["median"], 1.0, "{v}");
    assert!(
        cgroups_of(pid).is_empty(),
        "left behind: {:?}",
        cgroups_of(pid)
    );
}

#[test]
fn a_cgroup_that_cannot_be_created_is_a_clear_error() {
    let test = "a_cgroup_that_cannot_be_created_is_a_clear_error";
    if !root_or_skip(test) {
        return;
    }
    // As an unprivileged user (setpriv, util-linux), no cgroup can be created: said
    // as a usage error, before anything is built or run (it was exit 1, after). The
    // tool is copied, and run from, where any user may (the target directory, under a
    // home of mode 0700, may not be).
    let (dir, tool) = coldstart_test_support::runnable_by_anyone(TOOL.as_ref());
    for (lambda, hint) in [(false, false), (true, true)] {
        let out = coldstart_test_support::output_within(
            Command::new("setpriv")
                .current_dir(&*dir)
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&tool)
                .args(["compare", "true", "true", "--memory", "512M", "--runs", "1"])
                .args(if lambda {
                    &["--lambda", "--cargo-lambda", "/bin/false"][..]
                } else {
                    &[]
                }),
            WITHIN,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("--cpus/--memory run the programs in a cgroup, which needs root"),
            "{stderr}"
        );
        assert_eq!(
            stderr.contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=MB"),
            hint,
            "{stderr}"
        );
    }
}

#[test]
fn ctrl_c_stops_the_programs_and_removes_the_cgroup() {
    stopped_by(
        "ctrl_c_stops_the_programs_and_removes_the_cgroup",
        libc::SIGINT,
    );
}

/// The terminal closed (or the SSH session dropped): the same clean-up, exit 129.
#[test]
fn a_hangup_stops_the_programs_and_removes_the_cgroup() {
    stopped_by(
        "a_hangup_stops_the_programs_and_removes_the_cgroup",
        libc::SIGHUP,
    );
}

/// Sends `signo` to `compare` in the middle of a cgroup run: it exits with 128 plus
/// the signal's number, and leaves no program, cgroup or temporary file behind.
fn stopped_by(test: &str, signo: i32) {
    if !root_or_skip(test) {
        return;
    }
    // Programs that never answer keep a run going until the signal comes; each
    // starts one of its own, which must go too.
    let (dir, wrapper) = script(
        "ctrl-c",
        "sleep 61 &\necho $! >> \"$STARTED\"\nexec sleep 60\n",
    );
    let wrapper = wrapper.as_str();
    let child = Command::new(TOOL)
        .args(["compare", wrapper, wrapper, "--runs", "5", "--cpus", "0.5"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    let running = loop {
        let procs: Vec<String> = cgroups_of(pid)
            .first()
            .and_then(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default();
        // In the cgroup before exec: wait until the program has started its own.
        match procs.first() {
            Some(p) if dir.join("started").exists() => break p.clone(),
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "no program started in the cgroup"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // SAFETY: kill(2) with a valid pid and signal.
    unsafe { libc::kill(pid as i32, signo) };
    let out = coldstart_test_support::wait_with_output_within(child, WITHIN);
    assert_eq!(
        out.status.code(),
        Some(128 + signo),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    assert!(
        cgroups_of(pid).is_empty(),
        "left behind: {:?}",
        cgroups_of(pid)
    );
    let gone = |pid: &str| {
        !PathBuf::from(format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    };
    assert!(gone(&running), "the program {running} still runs");
    let started = std::fs::read_to_string(dir.join("started")).unwrap();
    for pid in started.lines() {
        assert!(gone(pid), "{pid}, started by the program, still runs");
    }
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&format!("coldstart-measure-{pid}-")))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

/// Ctrl-C without a cgroup: what a program started outside its process group goes too
/// (the clean-up killed the registered programs' groups only).
#[test]
fn ctrl_c_without_a_cgroup_stops_what_left_the_group() {
    let (dir, wrapper) = script(
        "ctrl-c-setsid",
        "setsid sleep 62 &\necho $! >> \"$STARTED\"\nexec sleep 60\n",
    );
    let wrapper = wrapper.as_str();
    let child = Command::new(TOOL)
        .args(["compare", wrapper, wrapper, "--runs", "5"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = dir.join("started");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !started.exists() {
        assert!(Instant::now() < deadline, "no program started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) with a valid pid and signal.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = coldstart_test_support::wait_with_output_within(child, WITHIN);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for pid in std::fs::read_to_string(&started).unwrap().lines() {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            !cmdline.starts_with(b"sleep\x0062"),
            "{pid}, started outside its group, still runs"
        );
    }
}

#[test]
fn lambda_functions_against_the_emulator() {
    let Some(cargo_lambda) = cargo_lambda("lambda_functions_against_the_emulator") else {
        return;
    };
    let function = example("lambda-hello");
    let function = function.to_str().unwrap();
    let out = compare(&[
        function,
        function,
        "--lambda",
        "--runs",
        "2",
        "--warm",
        "2",
        "--json",
        "--cargo-lambda",
        &cargo_lambda,
        "--package-dir",
        LAMBDA_PACKAGE,
    ]);
    let v = json(&out);
    assert_eq!(v["mode"], "lambda");
    for t in v["targets"].as_array().unwrap() {
        let init = t["init_ms"]["median"].as_f64().unwrap();
        let answer = t["answer_ms"]["median"].as_f64().unwrap();
        assert!(
            init > 0.0 && init < answer,
            "init {init} ms, answer {answer} ms"
        );
        assert!(t["warm_ms"]["median"].as_f64().unwrap() > 0.0);
    }
    // A function that exits without answering is said with its status (as soon as it
    // has exited; the caller's wait used to run out its 10 s first).
    let out = compare(&[
        "false",
        "false",
        "--lambda",
        "--runs",
        "1",
        "--cargo-lambda",
        &cargo_lambda,
        "--package-dir",
        LAMBDA_PACKAGE,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("exited with exit status: 1 before answering"),
        "{text}"
    );
}

#[test]
fn an_emulator_that_cannot_start_is_a_clear_error() {
    let stderr = |out: Output| String::from_utf8_lossy(&out.stderr).into_owned();
    // Said as soon as it has exited, with why, not after the 30 s it is given.
    let out = compare(&["true", "true", "--lambda", "--cargo-lambda", "/bin/false"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(out);
    assert!(
        text.contains("`/bin/false lambda watch` exited with exit status: 1 before it listened"),
        "{text}"
    );
    let out = compare(&[
        "true",
        "true",
        "--lambda",
        "--package-dir",
        "/no/such/package",
    ]);
    // A usage error, said before anything starts.
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(out);
    assert!(
        text.contains("--package-dir /no/such/package: no such directory"),
        "{text}"
    );
}

/// A program given as a wrapper script starts the server it measures, and maybe more:
/// all of it ends with the run (only the wrapper was killed before), and is reaped
/// then: what came back to `compare` when the wrapper ended was left a zombie until
/// `compare` ended, one more at each run.
#[test]
fn what_a_program_starts_ends_with_its_run() {
    // Each run first notes what the runs before it started that is still there,
    // running or a zombie.
    let (dir, wrapper) = script(
        "wrapper",
        "for pid in $(cat \"$STARTED\" 2>/dev/null); do\n\
         \x20 if [ -e /proc/$pid ]; then echo $pid >> \"$STARTED.left\"; fi\n\
         done\n\
         sleep 62 &\necho $! >> \"$STARTED\"\n\
         python3 -m http.server --bind 127.0.0.1 \"$PORT\" --directory \"$(dirname \"$STARTED\")\" &\n\
         echo $! >> \"$STARTED\"\nwait\n",
    );
    let wrapper = wrapper.as_str();
    let out = compare(&[wrapper, wrapper, "--runs", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started = std::fs::read_to_string(dir.join("started")).unwrap();
    // Two each of two runs (the unrecorded first one and the one recorded) of the two.
    assert_eq!(started.lines().count(), 8, "{started}");
    all_gone(&started);
    let left = std::fs::read_to_string(dir.join("started.left"));
    assert!(left.is_err(), "left by an earlier run: {left:?}");
}

/// What a program starts in a session of its own (`setsid`: outside its process
/// group) ends with its run too when the run is in a cgroup: everything in the cgroup
/// goes.
#[test]
fn what_a_program_starts_in_its_own_session_ends_with_its_run_in_a_cgroup() {
    if !root_or_skip("what_a_program_starts_in_its_own_session_ends_with_its_run_in_a_cgroup") {
        return;
    }
    // Each run first notes the daemons of the runs before it that still run: the
    // cgroup's removal at the end would kill them too, so only this tells that each
    // run's end did. The daemon is started without the run's mark in its environment
    // (`env -i`): only the cgroup can tell it is the run's.
    let (dir, wrapper) = script(
        "setsid-wrapper",
        "for pid in $(cat \"$STARTED\" 2>/dev/null); do\n\
         \x20 if [ -e /proc/$pid ] && ! grep -q ') Z ' /proc/$pid/stat; then echo $pid >> \"$STARTED.outlived\"; fi\n\
         done\n\
         env -i setsid sleep 63 &\necho $! >> \"$STARTED\"\n\
         exec python3 -m http.server --bind 127.0.0.1 \"$PORT\" --directory \"$(dirname \"$STARTED\")\"\n",
    );
    let wrapper = wrapper.as_str();
    let out = compare(&[wrapper, wrapper, "--runs", "1", "--cpus", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started = std::fs::read_to_string(dir.join("started")).unwrap();
    assert_eq!(started.lines().count(), 4, "{started}");
    let outlived = std::fs::read_to_string(dir.join("started.outlived")).unwrap_or_default();
    assert_eq!(
        outlived, "",
        "daemons of earlier runs still ran in a later one"
    );
    all_gone(&started);
}

/// A program the cgroup's memory limit kills is named with that cause.
#[test]
fn a_run_the_memory_limit_killed_says_so() {
    if !root_or_skip("a_run_the_memory_limit_killed_says_so") {
        return;
    }
    let (_dir, hog) = script("memory-hog", "exec python3 -c 'x = bytearray(256 << 20)'\n");
    let out = compare(&[&hog, "true", "--runs", "1", "--memory", "32M"]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("the cgroup's memory limit (--memory) killed 1 process(es) during this run"),
        "{text}"
    );
}

/// Asserts every pid listed in `started` is gone (or a zombie) within 5 s.
fn all_gone(started: &str) {
    // Killed, they may take a moment to be gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    for pid in started.lines() {
        let stat = || std::fs::read_to_string(format!("/proc/{pid}/stat"));
        while stat().is_ok_and(|s| !s.contains(") Z ")) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let stat = stat();
        assert!(
            stat.as_ref().map_or(true, |s| s.contains(") Z ")),
            "{pid}, started by the program, still runs: {stat:?}"
        );
    }
}
