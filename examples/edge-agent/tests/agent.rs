//! The agent end to end: with no request to answer, the fallback timer starts the
//! deferred work and the metrics listener, which then holds every sample taken before
//! it; a run that ends or is stopped before the fallback still makes its last
//! Pushgateway push; a sensor that blocks stops nothing else; inside a real 64 MiB
//! cgroup the plan is minimal; a bad setting is one line.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::process::{Command, Stdio};
use std::time::Duration;

use cargo_coldstart::cgroup::{Limits, TempCgroup};

use coldstart_test_support::{
    Lines, Reaper, TempDir, free_port, get_http10, in_ci, output_within, poll, status_within,
    wait_with_output_within,
};

const AGENT: &str = env!("CARGO_BIN_EXE_edge-agent");

/// The longest a run that ends by itself may take: one that hangs (the end of `main`
/// waiting for good) fails the test instead of hanging the suite.
const WITHIN: Duration = Duration::from_secs(60);

/// `GET /metrics`; `None` while nothing listens.
fn scrape(port: u16) -> Option<String> {
    get_http10(port, "/metrics")
}

fn value(exposition: &str, name: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// A sensor file holding `millidegrees`, for tests that must not depend on the
/// host's thermal zone (which may be missing, or there and unreadable).
fn sensor(millidegrees: &str) -> TempDir {
    let dir = coldstart_test_support::temp_dir("edge-sensor");
    std::fs::write(dir.join("temp"), millidegrees).unwrap();
    dir
}

/// `GET /metrics`, polled until it answers (the listener binds as the deferred work
/// starts, on a task of its own).
fn scrape_within(port: u16) -> String {
    poll(Duration::from_secs(10), || scrape(port)).expect("/metrics never answered")
}

/// `GET /metrics` once it shows at least `n` failed readings (at most 10 s).
fn scrape_with_read_errors(port: u16, n: f64) -> String {
    poll(Duration::from_secs(10), || {
        let page = scrape(port)?;
        value(&page, "edge_sensor_read_errors_total")
            .is_some_and(|errors| errors >= n)
            .then_some(page)
    })
    .unwrap_or_else(|| panic!("{n} failed reading(s) never counted on /metrics"))
}

/// Starts the agent `command` describes, its stderr read as it comes; killed when
/// the `Reaper` is dropped.
fn started(command: &mut Command) -> (Reaper, Lines) {
    let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
    let lines = Lines::of(&mut child);
    (Reaper(child), lines)
}

#[test]
fn the_fallback_timer_starts_deferred_work_and_metrics_keep_the_early_samples() {
    let mport = free_port();
    let (mut child, mut lines) = started(
        Command::new(AGENT)
            // No sensor, whatever the host has: the simulation.
            .env("EDGE_THERMAL_ZONE", "/no/such/zone")
            // Ten times the three cycles' 300 ms before it: room for a loaded machine.
            .env("COLDSTART_FIRST_RESPONSE_FALLBACK", "3s")
            .env("EDGE_INTERVAL", "100ms")
            .env("EDGE_CYCLES", "60")
            .env("COLDSTART_METRICS_ADDR", format!("127.0.0.1:{mport}")),
    );
    let early = lines.wait_for("cycle 3:").to_owned();
    assert!(!early.contains("deferred work"), "{early}");
    assert!(
        scrape(mport).is_none(),
        "metrics must not be served before the fallback"
    );
    let seen = lines
        .wait_for("deferred work started by the fallback timer")
        .to_owned();
    let cycles_before = seen.lines().filter(|l| l.contains(": cycle ")).count();
    assert!(cycles_before >= 3, "{seen}");
    lines.wait_for("spool opened");
    let exposition = scrape_within(mport);
    let samples = value(&exposition, "edge_samples_total").unwrap();
    assert!(
        samples >= cycles_before as f64,
        "{samples} samples, {cycles_before} cycles before the listener:\n{exposition}"
    );
    // One series whatever the source, and a flag that says which.
    assert!(
        value(&exposition, "edge_sensor_celsius").is_some(),
        "{exposition}"
    );
    assert_eq!(
        value(&exposition, "edge_sensor_simulated"),
        Some(1.0),
        "{exposition}"
    );
    // Both counters are there from the start, the one nothing has counted at 0: a
    // series that appears only at its first increment hides that increment from
    // `increase()` and `rate()`, and an alert on failed readings never fires.
    assert_eq!(
        value(&exposition, "edge_sensor_read_errors_total"),
        Some(0.0),
        "{exposition}"
    );
    let last = seen.lines().rev().find(|l| l.contains(": cycle ")).unwrap();
    assert!(last.ends_with("from simulated"), "{last}");
    // Nothing was answered: the timer's moment is `fallback`, not a first response.
    assert!(
        exposition.contains("coldstart_phase_seconds{phase=\"fallback\"}"),
        "{exposition}"
    );
    assert!(
        !exposition.contains("phase=\"first_response\""),
        "{exposition}"
    );
    let status = child.wait_within(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", lines.drain(Duration::ZERO));
}

/// Regression: the sensor was read on the runtime, whose one thread on the minimal
/// plan a read that blocks (here a FIFO nobody writes) held: the fallback timer never
/// fired and nothing was served.
#[test]
fn a_sensor_that_never_answers_is_counted_and_stops_nothing_else() {
    let dir = coldstart_test_support::temp_dir("edge-fifo");
    let fifo = dir.join("temp");
    coldstart_test_support::fifo(&fifo);
    let mport = free_port();
    let (mut child, mut lines) = started(
        Command::new(AGENT)
            .env("EDGE_SENSOR", &fifo)
            .env("EDGE_INTERVAL", "100ms")
            .env("COLDSTART_FLAVOR", "current_thread")
            .env("COLDSTART_FIRST_RESPONSE_FALLBACK", "2s")
            .env("COLDSTART_METRICS_ADDR", format!("127.0.0.1:{mport}")),
    );
    let said = lines.wait_for("no answer within 100ms").to_owned();
    let line = said.lines().last().unwrap_or_default();
    assert!(
        line.ends_with(" could not be read (no answer within 100ms); skipped"),
        "{said}"
    );
    lines.wait_for("deferred work started by the fallback timer");
    let counted = scrape_with_read_errors(mport, 2.0);
    // No reading taken, and the counter there at 0 all the same.
    assert_eq!(
        value(&counted, "edge_samples_total"),
        Some(0.0),
        "{counted}"
    );
    // One read is out at a time: the thread still waiting on the FIFO is the only one.
    let threads = std::fs::read_dir(format!("/proc/{}/task", child.0.id()))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "edge-sensor")
        })
        .count();
    assert_eq!(threads, 1, "{}", lines.drain(Duration::ZERO));
    // A signal still ends it.
    signal(&child.0, libc::SIGTERM);
    let status = child.wait_within(Duration::from_secs(30));
    assert!(
        ended_by_sigterm(status),
        "{status}: {}",
        lines.drain(Duration::ZERO)
    );
}

/// Ended by SIGTERM: by its default effect where the program has no shutdown hook,
/// or with exit 0 once the hooks ran where it has one (in a workspace-wide test build
/// the facade's features are unified, and tracing's flush is such a hook).
fn ended_by_sigterm(status: std::process::ExitStatus) -> bool {
    std::os::unix::process::ExitStatusExt::signal(&status) == Some(libc::SIGTERM)
        || status.code() == Some(0)
}

fn signal(child: &std::process::Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on a child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

/// Regression: every line was written with `eprintln!`, which panics when stderr is
/// gone (a log shipper that died, `2>&1 | head`): the agent stopped sampling, exit 101.
#[test]
fn a_stderr_nobody_reads_does_not_stop_the_agent() {
    let dir = sensor("40000\n");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = status_within(
        Command::new(AGENT)
            .env("EDGE_SENSOR", dir.join("temp"))
            .env("EDGE_INTERVAL", "50ms")
            .env("EDGE_CYCLES", "3")
            .env("COLDSTART_METRICS_ADDR", "off")
            .stderr(writer),
        WITHIN,
    );
    assert_eq!(status.code(), Some(0));
}

/// A job that pushes and is stopped before its exporters start (here SIGTERM before
/// the fallback timer) makes its last push and exits 0: the push's shutdown hook is
/// registered as the body starts. Before, the signal had its default effect: exit
/// 143 and nothing pushed.
#[test]
fn a_job_stopped_before_the_fallback_makes_its_last_push() {
    let test = "a_job_stopped_before_the_fallback_makes_its_last_push";
    let Some((_gateway, gport)) = coldstart_test_support::start_pushgateway(test) else {
        return;
    };
    let dir = sensor("40000\n");
    let (mut child, mut lines) = started(
        Command::new(AGENT)
            .env("EDGE_SENSOR", dir.join("temp"))
            .env("EDGE_INTERVAL", "50ms")
            .env("COLDSTART_FIRST_RESPONSE_FALLBACK", "1h")
            .env("COLDSTART_METRICS_ADDR", "off")
            .env(
                "COLDSTART_METRICS_PUSH_URL",
                format!("http://127.0.0.1:{gport}"),
            )
            .env("COLDSTART_METRICS_PUSH_JOB", "stopped"),
    );
    lines.wait_for("cycle 3:");
    signal(&child.0, libc::SIGTERM);
    let status = child.wait_within(Duration::from_secs(30));
    let said = lines.drain(Duration::from_millis(100)).to_owned();
    assert_eq!(status.code(), Some(0), "{said}");
    assert!(!said.contains("deferred work started"), "{said}");
    let exposition = get_http10(gport, "/metrics").unwrap();
    let series = "edge_samples_total{instance=\"\",job=\"stopped\"}";
    let pushed = value(&exposition, series).unwrap_or_else(|| panic!("{exposition}"));
    assert!(pushed >= 3.0, "{exposition}");
}

/// Regression: a job whose `main` ended before its first response (and before the
/// fallback timer) never started its exporters, so nothing was pushed and nothing
/// said so.
#[test]
fn a_run_that_ends_before_the_fallback_makes_its_last_push() {
    let test = "a_run_that_ends_before_the_fallback_makes_its_last_push";
    let Some((_gateway, gport)) = coldstart_test_support::start_pushgateway(test) else {
        return;
    };
    let dir = sensor("40000\n");
    let out = output_within(
        Command::new(AGENT)
            .env("EDGE_SENSOR", dir.join("temp"))
            .env("EDGE_INTERVAL", "50ms")
            .env("EDGE_CYCLES", "3")
            .env("COLDSTART_METRICS_ADDR", "off")
            .env(
                "COLDSTART_METRICS_PUSH_URL",
                format!("http://127.0.0.1:{gport}"),
            )
            .env("COLDSTART_METRICS_PUSH_JOB", "short-run"),
        WITHIN,
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(!said.contains("deferred work started"), "{said}");
    let exposition = get_http10(gport, "/metrics").unwrap();
    let series = "edge_samples_total{instance=\"\",job=\"short-run\"}";
    assert_eq!(value(&exposition, series), Some(3.0), "{exposition}");
}

/// Inside a real 64 MiB cgroup the plan is minimal, and the agent runs past the
/// fallback timer (the listener, the spool, the scrape) without the kernel killing
/// anything for memory.
#[test]
fn inside_a_64_mib_cgroup_the_plan_is_minimal() {
    if !cargo_coldstart::cgroup::can_create("inside_a_64_mib_cgroup_the_plan_is_minimal").unwrap() {
        return;
    }
    let cg = TempCgroup::create(
        &format!("coldstart-edge-{}", std::process::id()),
        Limits {
            cpus: None,
            memory_bytes: Some(64 << 20),
        },
    )
    .unwrap();
    let dir = sensor("40000\n");
    let mport = free_port();
    let mut command = Command::new(AGENT);
    command
        .env("EDGE_SENSOR", dir.join("temp"))
        .env("EDGE_INTERVAL", "50ms")
        .env("COLDSTART_FIRST_RESPONSE_FALLBACK", "200ms")
        .env("COLDSTART_METRICS_ADDR", format!("127.0.0.1:{mport}"));
    cg.join_before_exec(&mut command).unwrap();
    let (mut child, mut lines) = started(&mut command);
    lines.wait_for("spool opened");
    let exposition = scrape_within(mport);
    assert!(
        value(&exposition, "edge_samples_total").is_some_and(|n| n >= 1.0),
        "{exposition}"
    );
    signal(&child.0, libc::SIGTERM);
    let status = child.wait_within(Duration::from_secs(30));
    let stderr = lines.drain(Duration::from_millis(100)).to_owned();
    assert!(ended_by_sigterm(status), "{status}: {stderr}");
    assert_eq!(cg.oom_kills(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "and 64 MiB: minimal (memory 64 MiB is below 128 MiB), current_thread with 1 worker thread(s), blocking pool up to 16"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("cycle 1:"), "{stderr}");
}

/// Runs the agent with `var=value`, which it must refuse with exit 78; its last line.
fn refused(var: &str, value: impl AsRef<std::ffi::OsStr>) -> String {
    let out = output_within(Command::new(AGENT).env(var, value), WITHIN);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    stderr.lines().last().unwrap_or_default().to_owned()
}

#[test]
fn a_bad_interval_is_one_line_and_exit_78() {
    assert_eq!(
        refused("EDGE_INTERVAL", "often"),
        "edge-agent: set EDGE_INTERVAL to a duration such as 1s or 250ms (above 0, up to 1h), got `often`"
    );
}

/// Blank settings are unset, as coldstart's are (a compose file's `${CYCLES}` with
/// `CYCLES` unset stopped the agent), and spaces around a value are not part of it.
#[test]
fn blank_settings_are_unset_and_values_are_trimmed() {
    let dir = sensor("40000\n");
    let out = output_within(
        Command::new(AGENT)
            .env("EDGE_SENSOR", dir.join("temp"))
            .env("EDGE_INTERVAL", " ")
            .env("EDGE_CYCLES", " 1 ")
            .env("COLDSTART_METRICS_ADDR", "off"),
        WITHIN,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("cycle 1:"), "{stderr}");
    assert_eq!(
        refused("EDGE_CYCLES", "many"),
        "edge-agent: set EDGE_CYCLES to a whole number, got `many`"
    );
    // A path that is not UTF-8 is said to be so: it was refused as "the path of a
    // file", which it may well be.
    use std::os::unix::ffi::OsStrExt as _;
    assert_eq!(
        refused(
            "EDGE_SENSOR",
            std::ffi::OsStr::from_bytes(b"/sys/sensor-\xff")
        ),
        "edge-agent: set EDGE_SENSOR to the path of a file, in UTF-8: got `/sys/sensor-\u{fffd}`, which is not"
    );
}

/// What the agent `command` says on stderr in one cycle with no metrics listener; it
/// must end with 0 within the tests' bound.
fn one_cycle(command: &mut Command) -> String {
    let out = output_within(
        command
            .env("EDGE_CYCLES", "1")
            .env("COLDSTART_METRICS_ADDR", "off"),
        WITHIN,
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    stderr
}

/// `nan` and `inf` parse as floating-point numbers and are no reading: skipped and
/// counted as other text that is no number (they were exported as the gauge's value).
#[test]
fn a_reading_that_is_not_finite_is_skipped() {
    for text in ["nan", "inf", "-inf"] {
        let dir = sensor(&format!("{text}\n"));
        let stderr = one_cycle(Command::new(AGENT).env("EDGE_SENSOR", dir.join("temp")));
        assert!(
            stderr.contains(&format!(
                "could not be read (`{text}` is no number); skipped"
            )),
            "{stderr}"
        );
        assert!(!stderr.contains(" C from "), "{stderr}");
    }
}

/// A sensor that exists and then cannot be read (here text that is no number) is
/// skipped and counted, never replaced by a simulated reading, which a dashboard
/// could not tell from a real one.
#[test]
fn a_failed_reading_is_skipped_and_counted_never_simulated() {
    let dir = sensor("51234\n");
    let sensor = dir.join("temp");
    let mport = free_port();
    let (child, mut lines) = started(
        Command::new(AGENT)
            .env("EDGE_SENSOR", &sensor)
            .env("EDGE_INTERVAL", "100ms")
            .env("EDGE_CYCLES", "100")
            .env("COLDSTART_FIRST_RESPONSE_FALLBACK", "100ms")
            .env("COLDSTART_METRICS_ADDR", format!("127.0.0.1:{mport}")),
    );
    let first = lines
        .wait_for("cycle 1:")
        .lines()
        .last()
        .unwrap_or_default();
    assert!(first.contains("51.2 C from"), "{first}");
    // Replaced whole (a write in place could be read half done).
    let next = dir.join("next");
    std::fs::write(&next, "EIO\n").unwrap();
    std::fs::rename(&next, &sensor).unwrap();
    let failed = lines
        .wait_for("could not be read")
        .lines()
        .last()
        .unwrap_or_default();
    assert!(failed.contains("(`EIO` is no number); skipped"), "{failed}");
    // Counted, and the last good reading kept.
    let counted = scrape_with_read_errors(mport, 1.0);
    assert_eq!(
        value(&counted, "edge_sensor_celsius"),
        Some(51.234),
        "{counted}"
    );
    assert_eq!(
        value(&counted, "edge_sensor_simulated"),
        Some(0.0),
        "{counted}"
    );
    drop(child);
    let said = lines.drain(Duration::from_millis(200));
    assert!(!said.contains("simulated"), "{said}");
}

/// Without `EDGE_SENSOR` the thermal zone is read where there is one (here a
/// stand-in for the board's `thermal_zone0`).
#[test]
fn the_thermal_zone_is_read_where_there_is_one() {
    let dir = sensor("38500\n");
    let (mut child, mut lines) = started(
        Command::new(AGENT)
            .env("EDGE_THERMAL_ZONE", dir.join("temp"))
            .env_remove("EDGE_SENSOR")
            .env("EDGE_CYCLES", "1")
            .env("COLDSTART_METRICS_ADDR", "off"),
    );
    let status = child.wait_within(Duration::from_secs(30));
    let stderr = lines.drain(Duration::from_millis(100));
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cycle 1: 38.5 C from {}",
            dir.join("temp").display()
        )),
        "{stderr}"
    );
}

/// Regression: the sensor file was read whole, however long it was: `/dev/zero` (or
/// a serial device that keeps writing) grew the read thread's buffer until the board
/// ran out of memory. Past 4096 bytes it is a failed reading, said and skipped.
#[test]
fn an_endless_sensor_file_is_a_failed_reading_not_a_growing_buffer() {
    let stderr = one_cycle(
        Command::new(AGENT)
            .env("EDGE_SENSOR", "/dev/zero")
            // Short, so that a regression, which reads until the cycle stops waiting,
            // fills no more than some hundreds of MiB before the agent ends.
            .env("EDGE_INTERVAL", "250ms"),
    );
    assert!(
        stderr.contains(
            "cycle 1: /dev/zero could not be read (the reading is longer than 4096 bytes, \
             more than a sensor file holds); skipped"
        ),
        "{stderr}"
    );
}

/// A thermal zone that is there but cannot be looked at (here a path under a
/// directory the agent may not search) is the sensor, its failed readings counted and
/// said: taken for missing, it gave simulated readings on a board that has a sensor.
/// The agent runs as uid 65534 where the test is root, whom no permission stops.
#[test]
fn a_thermal_zone_that_cannot_be_looked_at_is_read_not_simulated() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    // The agent copied where any user may run it (the target directory may not be).
    let (dir, agent) = coldstart_test_support::runnable_by_anyone(AGENT.as_ref());
    let locked = dir.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::write(locked.join("temp"), "40000\n").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut command = Command::new(&agent);
    command
        .env("EDGE_THERMAL_ZONE", locked.join("temp"))
        .env_remove("EDGE_SENSOR")
        .env("EDGE_CYCLES", "1")
        .env("COLDSTART_METRICS_ADDR", "off");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        command.uid(65534).gid(65534);
    }
    let started = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    // Searchable again once the agent has run, so that the directory can be removed.
    let unlock = || std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700));
    let child = match started {
        Ok(child) => child,
        // A root that may not become another user (a user namespace that maps none).
        Err(e) if root && !in_ci() && e.kind() == std::io::ErrorKind::PermissionDenied => {
            unlock().unwrap();
            coldstart_test_support::skipped(
                "a_thermal_zone_that_cannot_be_looked_at_is_read_not_simulated",
                &format!("cannot run the agent as uid 65534 here: {e}"),
            );
            return;
        }
        Err(e) => panic!("cannot start the agent: {e}"),
    };
    let out = wait_with_output_within(child, WITHIN);
    unlock().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cycle 1: {} could not be read (Permission denied",
            locked.join("temp").display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("simulated"), "{stderr}");
}

/// A sensor file named and missing is an error, not a silent simulation.
#[test]
fn a_sensor_named_and_missing_is_one_line_and_exit_78() {
    assert_eq!(
        refused("EDGE_SENSOR", "/no/such/sensor"),
        "edge-agent: EDGE_SENSOR names /no/such/sensor, which does not exist; set it to the sensor's file, or leave it unset"
    );
}
