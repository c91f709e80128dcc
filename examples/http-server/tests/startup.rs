//! The example service end to end: it serves, prints its plan, reports bad settings in
//! one line with exit code 78, prewarms on the smallest stack, plans single-threaded inside a real 0.25-CPU cgroup,
//! ends in one line when a task limit refuses a worker thread, and at SIGTERM runs
//! its hooks without waiting on idle connections or a missing collector.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use cargo_coldstart::cgroup::{Limits, TempCgroup};
use cargo_coldstart::measure::{Target, run_once};

use coldstart_test_support::{Lines, Reaper, free_port, get, output_within, poll};

const SERVER: &str = env!("CARGO_BIN_EXE_http-server");
/// How long a run that should end by itself (a refused setting, a health check) may
/// take before its test fails rather than hangs: a server that took a bad setting
/// would serve on for good.
const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn serves_and_prints_the_startup_report() {
    let port = free_port();
    let mut child = Reaper(
        Command::new(SERVER)
            .env("PORT", port.to_string())
            .env("COLDSTART_LOG", "debug")
            .env("COLDSTART_METRICS_ADDR", "off")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = Lines::of(&mut child.0);
    let response = get(port);
    child.0.kill().unwrap();
    let stderr = lines.drain(Duration::from_millis(500)).to_owned();
    assert!(
        response.starts_with("HTTP/1.1 200") && response.ends_with("hello\n"),
        "{response}"
    );
    for needle in [
        "coldstart: start-up report",
        "budget",
        "plan",
        "strategy",
        "worker_threads",
        "timeline (since main) main 0us config ",
    ] {
        assert!(stderr.contains(needle), "missing `{needle}` in:\n{stderr}");
    }
    assert!(
        stderr.contains(&format!(
            "http-server: listening on http://127.0.0.1:{port}; plan "
        )),
        "{stderr}"
    );
}

/// Prewarm on the smallest stack the plan accepts, on both schedulers: it touched
/// 64 KiB of every thread's stack, and a 64 KiB stack (less the thread's own data)
/// overflowed, aborting the process while the runtime was built.
#[test]
fn prewarm_on_the_smallest_stack_serves() {
    for flavor in ["multi_thread", "current_thread"] {
        let (port, mut child) = spawn_server(
            "10s",
            &[
                ("COLDSTART_METRICS_ADDR", "off"),
                ("COLDSTART_THREAD_STACK_SIZE", "64K"),
                ("COLDSTART_PREWARM", "on"),
                ("COLDSTART_FLAVOR", flavor),
            ],
        );
        let mut lines = Lines::of(&mut child.0);
        let response = get(port);
        child.0.kill().unwrap();
        let stderr = lines.drain(Duration::from_millis(500));
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "{flavor}: {response}\n{stderr}"
        );
    }
}

#[test]
fn a_bad_variable_is_one_line_and_exit_code_78() {
    let out = output_within(
        Command::new(SERVER).env("COLDSTART_WORKER_THREADS", "lots"),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "coldstart: set COLDSTART_WORKER_THREADS to a whole number from 1 to 1024, got `lots`\n"
    );
}

#[test]
fn a_bad_configuration_file_names_its_line_and_exits_78() {
    let dir = coldstart_test_support::temp_dir("bad-file");
    std::fs::write(
        dir.join("coldstart.toml"),
        "[coldstart]\nworker_threads = 0\n",
    )
    .unwrap();
    let out = output_within(Command::new(SERVER).current_dir(&dir), LIMIT);
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "coldstart: set COLDSTART_WORKER_THREADS to a whole number from 1 to 1024, got `0` (coldstart.toml line 2, `[coldstart] worker_threads`)\n"
    );
    std::fs::write(dir.join("coldstart.toml"), "[coldstart]\nthreads = 2\n").unwrap();
    let out = output_within(Command::new(SERVER).current_dir(&dir), LIMIT);
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(
            "coldstart: coldstart.toml line 2: `[coldstart] threads` is not a setting"
        ),
        "{stderr}"
    );
    let named = |config: &str| {
        output_within(
            Command::new(SERVER)
                .current_dir(&dir)
                .env("COLDSTART_CONFIG", config),
            LIMIT,
        )
    };
    let out = named("missing.toml");
    assert_eq!(out.status.code(), Some(78));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("coldstart: missing.toml: cannot be read"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A device is refused, not read until memory runs out.
    let out = named("/dev/zero");
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "coldstart: /dev/zero: cannot be read (is a character device, not a regular file); \
         COLDSTART_CONFIG=off reads no file\n"
    );
}

/// `APP_ENV` is set for other programs too: a `config/<env>.toml` of another program's
/// is refused with what to do, and a missing one beside a `coldstart.toml` says that
/// file is not read. A missing one `COLDSTART_ENV` chose is said in any case.
#[test]
fn a_file_an_environment_name_chose_says_so() {
    let dir = coldstart_test_support::temp_dir("app-env");
    std::fs::create_dir(dir.join("config")).unwrap();
    std::fs::write(
        dir.join("config/production.toml"),
        "[database]\nurl = \"postgres://app:s3cret@db/app\"\n",
    )
    .unwrap();
    // The server in `dir`, with `vars` the only variables that choose a file: its
    // exit code and stderr.
    let start = |vars: &[(&str, &str)]| {
        let out = output_within(
            Command::new(SERVER)
                .current_dir(&dir)
                .env_remove("APP_ENV")
                .env_remove("COLDSTART_ENV")
                .env_remove("COLDSTART_CONFIG")
                .envs(vars.iter().copied()),
            LIMIT,
        );
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stderr)
    };
    let (code, stderr) = start(&[("APP_ENV", "production")]);
    assert_eq!(code, Some(78));
    assert_eq!(
        stderr,
        "coldstart: config/production.toml line 1: `[database]` is not a table coldstart reads; \
         the tables are [coldstart] and [otel] (APP_ENV=`production` chose this file; if it is \
         another program's, set COLDSTART_CONFIG to coldstart's file, or to `off`)\n"
    );
    std::fs::write(
        dir.join("coldstart.toml"),
        "[coldstart]\nstrategy = \"minimal\"\n",
    )
    .unwrap();
    // Each ends at the variable's bad value, after the file step.
    let bad = ("COLDSTART_WORKER_THREADS", "lots");
    let (code, stderr) = start(&[("APP_ENV", "staging"), bad]);
    assert_eq!(code, Some(78));
    assert!(
        stderr.starts_with(
            "coldstart: config/staging.toml not found (APP_ENV=`staging` chose it), so no file is read; coldstart.toml, which is there, is read only when no environment is named\n"
        ),
        "{stderr}"
    );
    // `COLDSTART_ENV` is coldstart's own: a file it names in vain is said with no
    // `coldstart.toml` beside it too (a misspelt environment read no file, unsaid).
    std::fs::remove_file(dir.join("coldstart.toml")).unwrap();
    let (code, stderr) = start(&[("COLDSTART_ENV", "prodution"), bad]);
    assert_eq!(code, Some(78));
    assert!(
        stderr.starts_with(
            "coldstart: config/prodution.toml not found (COLDSTART_ENV=`prodution` chose it), so no file is read\n"
        ),
        "{stderr}"
    );
    // `APP_ENV`, set for other programs too, names a file coldstart may not have:
    // unsaid where no `coldstart.toml` is passed by.
    let (code, stderr) = start(&[("APP_ENV", "staging"), bad]);
    assert_eq!(code, Some(78));
    assert!(
        stderr.starts_with("coldstart: set COLDSTART_WORKER_THREADS"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `PORT=0` listens on a port the system picks, and the start-up line names that port
/// (it said `:0`, which no client can reach).
#[test]
fn port_0_says_the_port_it_got() {
    let mut server = Reaper(
        Command::new(SERVER)
            .env("PORT", "0")
            .env("COLDSTART_METRICS_ADDR", "off")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let said = Lines::of(&mut server.0).wait_for("listening on").to_owned();
    let port: u16 = said
        .split("listening on http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {said}"));
    assert_ne!(port, 0, "{said}");
    assert!(get(port).ends_with("hello\n"));
}

#[test]
fn a_bad_port_names_the_variable() {
    let out = output_within(Command::new(SERVER).env("PORT", "http"), LIMIT);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("set PORT to a number from 0 to 65535, got `http`"),
        "{stderr}"
    );
}

/// The CPU quota alone makes the plan minimal (no memory limit, which would make it
/// minimal by itself), and the plan says the quota is why.
#[test]
fn one_thread_inside_a_quarter_cpu_cgroup() {
    if !cargo_coldstart::cgroup::can_create("one_thread_inside_a_quarter_cpu_cgroup").unwrap() {
        return;
    }
    let cg = TempCgroup::create(
        &format!("coldstart-example-{}", std::process::id()),
        Limits {
            cpus: Some(0.25),
            memory_bytes: None,
        },
    )
    .unwrap();
    let mut command = Command::new(SERVER);
    command
        .env("PORT", free_port().to_string())
        .env("COLDSTART_METRICS_ADDR", "off")
        .stderr(Stdio::piped());
    cg.join_before_exec(&mut command).unwrap();
    let mut server = Reaper(command.spawn().unwrap());
    let said = Lines::of(&mut server.0).wait_for("listening on").to_owned();
    assert!(
        said.contains("plan minimal (CPU 0.25 cores is at most 1"),
        "{said}"
    );
    drop(server);
    // What this checks is the runtime the plan built. Work after the first response
    // (deferred inits, the OTLP client resolving `localhost`) may start blocking-pool
    // threads while the harness samples; keep the exporters out of that race.
    let mut target = Target::new("http-server", SERVER);
    target
        .env
        .push(("OTEL_TRACES_EXPORTER".into(), "none".into()));
    target
        .env
        .push(("COLDSTART_METRICS_ADDR".into(), "off".into()));
    let sample = run_once(&target, Some(&cg)).unwrap();
    assert_eq!(
        sample.threads, 1,
        "minimal plan: current_thread, the main thread alone"
    );
}

/// A task limit (`pids.max`) that refuses a worker thread ends the program with one
/// line that names the limit, and exit code 71. tokio panics there; with one worker
/// already started, the panic's unwinding waited for that worker and the process hung.
#[test]
fn a_task_limit_that_refuses_a_worker_is_one_line_and_exit_code_71() {
    let test = "a_task_limit_that_refuses_a_worker_is_one_line_and_exit_code_71";
    if !cargo_coldstart::cgroup::can_create(test).unwrap() {
        return;
    }
    // 1: the main thread alone, the first worker is refused; 2: one worker starts.
    for tasks in [1, 2] {
        let name = format!("coldstart-example-tasks-{}-{tasks}", std::process::id());
        let cg = TempCgroup::with_task_limit(&name, tasks).unwrap();
        let mut command = Command::new(SERVER);
        command
            .env("PORT", free_port().to_string())
            .env("COLDSTART_WORKER_THREADS", "3")
            .env_remove("RUST_BACKTRACE")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cg.join_before_exec(&mut command).unwrap();
        let mut child = command.spawn().unwrap();
        let ended = poll(Duration::from_secs(10), || child.try_wait().unwrap());
        let Some(status) = ended else {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("pids.max {tasks}: still running after 10 s");
        };
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(status.code(), Some(71), "pids.max {tasks}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "pids.max {tasks}: {stderr}");
        for needle in [
            "coldstart: cannot build the tokio runtime: OS can't spawn worker thread",
            "3 worker threads",
            &format!("pids.max {tasks} in "),
            "COLDSTART_WORKER_THREADS",
        ] {
            assert!(
                stderr.contains(needle),
                "pids.max {tasks}: no {needle:?} in {stderr}"
            );
        }
    }
}

/// Starts the server on a free port with the given fallback timer and `vars` (no
/// `/metrics` listener unless they give one: the default port is one for all), stderr
/// piped; killed when dropped, so a failed test leaves no server behind.
fn spawn_server(fallback: &str, vars: &[(&str, &str)]) -> (u16, Reaper) {
    let port = free_port();
    let child = Command::new(SERVER)
        .env("PORT", port.to_string())
        .env("COLDSTART_FIRST_RESPONSE_FALLBACK", fallback)
        .env("COLDSTART_METRICS_ADDR", "off")
        .envs(vars.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (port, Reaper(child))
}

/// How long a test waits for a server it signalled to end before failing.
const TO_END: Duration = Duration::from_secs(30);

/// Sends `child` SIGTERM.
fn sigterm(child: &Reaper) {
    // SAFETY: kill(2) on a child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) }, 0);
}

#[test]
fn deferred_work_after_the_first_response_and_hooks_on_sigterm() {
    let (port, mut child) = spawn_server("off", &[]);
    let mut lines = Lines::of(&mut child.0);
    let before = lines.wait_for("listening on").to_owned();
    assert!(!before.contains("deferred work"), "{before}");
    assert!(get(port).ends_with("hello\n"));
    lines.wait_for("deferred work started after the first response");
    sigterm(&child);
    let seen = lines.wait_for("shutdown hook ran").to_owned();
    let status = child.wait_within(TO_END);
    assert_eq!(
        status.code(),
        Some(0),
        "graceful exit after the hook; {seen}"
    );
}

/// With a collector that answers every export 503 (retryable), SIGTERM still ends the
/// program promptly: the final flush does not wait out the exporter's retry backoff
/// (100, 200 and 400 ms plus jitter: three more attempts, which made the exit take
/// 700-1000 ms before), tries once more, and says in one line what it could not send.
/// Counted in attempts, not timed: at most two after the signal (one retry may fire as
/// the signal comes, then the flush's).
#[test]
fn with_no_collector_sigterm_does_not_wait_out_the_retry_backoff() {
    use std::io::{BufReader, Write as _};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let collector = format!("http://{}", listener.local_addr().unwrap());
    let attempts = Arc::new(AtomicUsize::new(0));
    {
        let attempts = Arc::clone(&attempts);
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let attempts = Arc::clone(&attempts);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream);
                    while coldstart_test_support::read_request(&mut reader).is_some() {
                        attempts.fetch_add(1, Ordering::AcqRel);
                        let answer =
                            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n";
                        if reader.get_mut().write_all(answer).is_err() {
                            return;
                        }
                    }
                });
            }
        });
    }
    let (port, mut child) = spawn_server("off", &[("OTEL_EXPORTER_OTLP_ENDPOINT", &collector)]);
    let mut lines = Lines::of(&mut child.0);
    lines.wait_for("listening on");
    assert!(get(port).ends_with("hello\n"));
    // The exporter starts with the deferred work, and its first export (the first
    // request's span) is answered 503 and waits to retry.
    lines.wait_for("deferred work started after the first response");
    let first = poll(Duration::from_secs(10), || {
        (attempts.load(Ordering::Acquire) >= 1).then_some(())
    });
    assert!(first.is_some(), "no export came: {}", lines.seen);
    let before = attempts.load(Ordering::Acquire);
    sigterm(&child);
    let said = lines.wait_for("traces: export failed").to_owned();
    let status = child.wait_within(TO_END);
    let after = attempts.load(Ordering::Acquire) - before;
    assert_eq!(status.code(), Some(0), "{}", lines.seen);
    assert!(said.contains("503"), "{said}");
    assert!(
        (1..=2).contains(&after),
        "{after} attempts after SIGTERM: the flush waited out the backoff, or did not try again; {}",
        lines.seen
    );
}

#[test]
fn the_fallback_timer_starts_deferred_work_without_requests() {
    let (_, mut child) = spawn_server("200ms", &[]);
    // And says what started it.
    Lines::of(&mut child.0).wait_for("deferred work started after the fallback timer");
}

#[test]
fn without_hooks_sigterm_keeps_its_default_meaning() {
    let (_, mut child) = spawn_server("off", &[]);
    Lines::of(&mut child.0).wait_for("listening on");
    sigterm(&child);
    let status = child.wait_within(TO_END);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGTERM),
        "no hook registered, no handler installed"
    );
}

/// A client that connects and never sends a request does not hold the drain until its
/// deadline: at SIGTERM the server closes that connection (it has nothing in flight)
/// and exits, here with a drain deadline of an hour, where waiting for it would keep
/// the server past the test's wait for its end.
#[test]
fn an_idle_connection_does_not_hold_the_drain() {
    use std::io::ErrorKind;
    let (port, mut child) = spawn_server(
        "off",
        &[
            ("COLDSTART_DRAIN_TIMEOUT", "1h"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ],
    );
    let mut lines = Lines::of(&mut child.0);
    lines.wait_for("listening on");
    assert!(get(port).ends_with("hello\n"));
    // Printed after the example registers its shutdown hook, which puts the signal
    // handlers in place: SIGTERM before that keeps its default effect.
    lines.wait_for("deferred work started after the first response");
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    // Accepted in order: once a later connection is answered, the idle one was
    // accepted and is being served.
    assert!(get(port).ends_with("hello\n"));
    sigterm(&child);
    idle.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut byte = [0u8; 1];
    match idle.read(&mut byte) {
        // Closed, or reset: either way the server let it go.
        Ok(0) => {}
        Err(e) if !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("the idle connection was not closed: {other:?}"),
    }
    let status = child.wait_within(TO_END);
    assert_eq!(status.code(), Some(0), "{}", lines.seen);
}

/// The image's healthcheck looks where the service listens: `BIND` and `PORT` as the
/// service reads them (it always dialled 127.0.0.1, so a service bound to one other
/// address was reported unhealthy), loopback for an unspecified `BIND`.
#[test]
fn the_healthcheck_looks_where_the_service_listens() {
    const HEALTHCHECK: &str = env!("CARGO_BIN_EXE_healthcheck");
    let port = free_port().to_string();
    let mut server = Reaper(
        Command::new(SERVER)
            .env("PORT", &port)
            .env("BIND", "127.0.0.2")
            .env("COLDSTART_METRICS_ADDR", "off")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = Lines::of(&mut server.0);
    lines.wait_for("listening on");
    let check = |vars: &[(&str, &str)]| {
        let out = output_within(
            Command::new(HEALTHCHECK)
                .env_remove("BIND")
                .env("PORT", &port)
                .envs(vars.iter().copied()),
            LIMIT,
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(check(&[("BIND", "127.0.0.2")]).0, Some(0));
    let (code, said) = check(&[]);
    assert_eq!(code, Some(1));
    assert!(
        said.contains("nothing accepts connections on 127.0.0.1:"),
        "{said}"
    );
    let (code, said) = check(&[("PORT", "0")]);
    assert_eq!(code, Some(1));
    assert!(said.contains("PORT is 0"), "{said}");
}

/// With a task limit (`pids.max` 1) that refuses every thread, a program on one
/// thread still runs its deferred inits after the first response, on the thread it
/// has, and ends cleanly at SIGTERM. tokio's blocking pool, which they ran on, panics
/// where it cannot make a thread: the deferred work ended there, and the program said
/// at its end that it had not finished.
#[test]
fn deferred_inits_run_where_no_thread_can_be_made() {
    let test = "deferred_inits_run_where_no_thread_can_be_made";
    if !cargo_coldstart::cgroup::can_create(test).unwrap() {
        return;
    }
    let name = format!("coldstart-example-deferred-{}", std::process::id());
    let cg = TempCgroup::with_task_limit(&name, 1).unwrap();
    let port = free_port();
    // Written once every deferred init has run: the sign they are done.
    let dir = coldstart_test_support::temp_dir("deferred-no-thread");
    let profile = dir.join("profile.txt");
    let mut command = Command::new(SERVER);
    command
        .env("PORT", port.to_string())
        .env("COLDSTART_PROFILE_OUT", &profile)
        .env("COLDSTART_FLAVOR", "current_thread")
        .env("COLDSTART_FIRST_RESPONSE_FALLBACK", "off")
        .env("COLDSTART_METRICS_ADDR", "off")
        .env("OTEL_TRACES_EXPORTER", "none")
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cg.join_before_exec(&mut command).unwrap();
    let mut child = Reaper(command.spawn().unwrap());
    let mut lines = Lines::of(&mut child.0);
    lines.wait_for("listening on");
    assert!(get(port).ends_with("hello\n"));
    lines.wait_for("deferred work started after the first response");
    assert!(
        poll(Duration::from_secs(10), || profile.exists().then_some(())).is_some(),
        "the deferred inits never finished: {}",
        lines.drain(Duration::from_millis(100))
    );
    sigterm(&child);
    let status = child.wait_within(TO_END);
    let rest = lines.drain(Duration::from_millis(500)).to_owned();
    assert_eq!(status.code(), Some(0), "{rest}");
    assert!(!rest.contains("panicked"), "{rest}");
    assert!(!rest.contains("did not finish"), "{rest}");
    drop(dir);
}
