//! Start-up of whole processes: exec to first HTTP response, and RSS and thread count
//! at that moment, over alternating runs.
//!
//! The clock starts when the child is released to `exec`: fork, and joining a cgroup
//! when one is given, happen before that and are not measured (they cost the same for
//! every binary). In a cgroup, each run waits one CFS period before it is released, so
//! no run inherits a quota that earlier runs used up. It stops when the first complete response has been read. Every child
//! is killed and reaped before the next run starts.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use crate::cgroup::TempCgroup;

mod args;
mod lambda;
mod launch;
mod progress;
mod reap;
mod response;
mod series;
pub use args::{cargo_lambda, once, only_with, package_dir, runs, whole_number};
pub use lambda::{
    Emulator, EmulatorProcess, LambdaSample, LambdaSeries, alternate_lambda, lambda_table,
    run_lambda_once, run_lambda_until, start_emulator,
};
pub(crate) use launch::FORKING;
use launch::{launch, stderr_file, wait_readable};
pub use progress::{end_progress_line, progress};
use reap::KillOnDrop;
pub(crate) use reap::{exited, sweep_strays};
use response::read_response_while;
pub(crate) use series::rotate;
pub use series::{Series, Stats, alternate, round_order, table, whole_cycles};

/// A program to measure.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its name in reports.
    pub name: String,
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Extra environment variables (`PORT` is set by the harness).
    pub env: Vec<(OsString, OsString)>,
    /// The loopback port it listens on; `None` for a free port, given in `PORT`.
    pub port: Option<u16>,
    /// The loopback address it listens on: 127.0.0.1 unless `--url` names `localhost`,
    /// whose first address (`::1` on some hosts) is the one a server binding
    /// `localhost` takes.
    pub ip: std::net::IpAddr,
    /// The path of the first request.
    pub path: String,
}

impl Target {
    /// A target that runs `program` with no arguments.
    pub fn new(name: impl Into<String>, program: impl Into<PathBuf>) -> Target {
        Target {
            name: name.into(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            port: None,
            ip: std::net::Ipv4Addr::LOCALHOST.into(),
            path: "/".to_owned(),
        }
    }
}

/// How a program ended when asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// Its exit status; `None` when it had not exited within the time given and was
    /// killed.
    pub status: Option<std::process::ExitStatus>,
    /// From SIGTERM until it had exited (or was killed).
    pub after: Duration,
}

/// One run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// From release to `exec` until the first response was read.
    pub first_response: Duration,
    /// Resident set size at first response (`VmRSS`).
    pub rss_bytes: u64,
    /// Threads at first response.
    pub threads: u32,
}

/// How long a run may take before it is a failure.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts `target` listening on a free loopback port, inside `cgroup` if given, sends
/// `GET /`, and measures. The program is killed once measured.
///
/// # Errors
///
/// The program cannot be started, exits before answering (its stderr tail is in the
/// message), never opens the port within [`RUN_TIMEOUT`], or answers with something
/// other than HTTP 200.
pub fn run_once(target: &Target, cgroup: Option<&TempCgroup>) -> anyhow::Result<Sample> {
    Ok(start(target, cgroup)?.sample)
}

/// A program that has answered its first request and still runs, for work after it
/// (load, for one). Killed and reaped when dropped, unless [`Running::terminate`]
/// ended it first.
pub struct Running {
    /// What its first request measured.
    pub sample: Sample,
    /// Where it listens.
    pub addr: SocketAddr,
    child: KillOnDrop,
    stderr_path: PathBuf,
}

impl Running {
    /// The last lines of its stderr so far.
    pub fn stderr_tail(&self) -> String {
        tail(&self.stderr_path)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.child.id()
    }

    /// Whether it has exited (and how), without waiting.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.exited().ok().flatten()
    }

    /// Sends SIGTERM, as a platform stopping it would, and waits up to `within` for
    /// it to exit (then it is killed); says how it ended.
    pub fn terminate(mut self, within: Duration) -> Exit {
        let sent = Instant::now();
        if let Ok(pid) = libc::pid_t::try_from(self.child.child.id()) {
            // SAFETY: kill(2) on our own child, which has not been reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let exits = exit_notice(self.child.child.id());
        while sent.elapsed() < within {
            if let Ok(Some(status)) = self.child.exited() {
                return Exit {
                    status: Some(status),
                    after: sent.elapsed(),
                };
            }
            let left = within.saturating_sub(sent.elapsed());
            match &exits {
                Some(fd) => {
                    wait_readable(fd, left.max(Duration::from_millis(1)));
                }
                None => std::thread::sleep(left.min(Duration::from_micros(50))),
            }
        }
        Exit {
            status: None,
            after: sent.elapsed(),
        }
    }
}

/// A descriptor that becomes readable when the process `pid` exits (a pidfd, Linux
/// 5.3 on): the exit is seen when it happens, not at the next tick of a polling loop
/// (a 1 ms loop reported every exit faster than that as 1.1 ms). `None` where the
/// kernel has none.
fn exit_notice(pid: u32) -> Option<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    // SAFETY: pidfd_open(2) on our own child, not yet reaped; the descriptor it
    // returns is owned here.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = RawFd::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: a descriptor just opened, owned by nothing else.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.stderr_path);
    }
}

/// [`run_once`], keeping the program running: see [`Running`].
///
/// # Errors
///
/// As [`run_once`].
pub fn start(target: &Target, cgroup: Option<&TempCgroup>) -> anyhow::Result<Running> {
    start_reading(target, cgroup, Reading::RssAndThreads)
}

/// [`start`] for a caller that reads neither RSS nor threads (`profile`): a program
/// that ends right after its answer is no error here, its [`Sample`]'s RSS and threads
/// 0 then.
///
/// # Errors
///
/// As [`run_once`].
pub fn start_timing(target: &Target) -> anyhow::Result<Running> {
    start_reading(target, None, Reading::TimeOnly)
}

/// What a run reads at the first response besides its time.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reading {
    RssAndThreads,
    TimeOnly,
}

fn start_reading(
    target: &Target,
    cgroup: Option<&TempCgroup>,
    reading: Reading,
) -> anyhow::Result<Running> {
    let port = match target.port {
        Some(port) => port,
        None => free_port_on(target.ip)?,
    };
    let addr = SocketAddr::new(target.ip, port);
    let (stderr, stderr_path) = stderr_file(&format!("{port}.stderr"))?;
    match measure(target, cgroup, addr, stderr, &stderr_path, reading) {
        Ok((sample, child)) => Ok(Running {
            sample,
            addr,
            child,
            stderr_path,
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&stderr_path);
            Err(e)
        }
    }
}

fn measure(
    target: &Target,
    cgroup: Option<&TempCgroup>,
    addr: SocketAddr,
    stderr: File,
    stderr_path: &std::path::Path,
    reading: Reading,
) -> anyhow::Result<(Sample, KillOnDrop)> {
    if TcpStream::connect(addr).is_ok() {
        // Its answer would be measured as the program's. A `$PORT` was free when it
        // was chosen, on this address; something may have taken it since.
        let what = match target.port {
            Some(_) => "stop it, or let each program listen on $PORT",
            None => "it took the free port chosen for this run; run again",
        };
        bail!(
            "something already listens on {addr} before {} starts; {what}",
            target.name
        );
    }
    let (mut child, start) = launch(target, cgroup, &[("PORT", addr.port().to_string())], stderr)?;
    fine_timer_slack();
    let mut stream = loop {
        let last_error = match TcpStream::connect(addr) {
            Ok(s) => break s,
            Err(e) => e,
        };
        if let Some(status) = child.exited()? {
            return Err(exited_before_answering(target, status, stderr_path));
        }
        if start.elapsed() > RUN_TIMEOUT {
            bail!(
                "{} did not open {addr} within {RUN_TIMEOUT:?} (last error: {}); its stderr ends with:\n{}",
                target.name,
                last_error,
                tail(stderr_path)
            );
        }
        // Close to the moment it listens, for the start-ups measured here (milliseconds);
        // past 100 ms, a quarter of a millisecond late at most, for a fifth of the
        // polling's CPU.
        let pause = if start.elapsed() < Duration::from_millis(100) {
            Duration::from_micros(50)
        } else {
            Duration::from_micros(250)
        };
        std::thread::sleep(pause);
    };
    // One write, sent at once: written piece by piece (`write!` on the socket writes
    // each octet of the address apart), the request went as a dozen small segments
    // within the interval, each waking the program to read part of a head.
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
        target.path,
    );
    stream.set_nodelay(true)?;
    stream.write_all(request.as_bytes())?;
    // A program that exits while it is waited for (it listened, then failed a later
    // step) ends the wait at once, and its status and stderr say why.
    let read = read_response_while(&mut stream, &mut || still_running(&mut child, target));
    let response = match read {
        Ok(response) => response,
        Err(e) => {
            // A program whose connection closed is often on its way out: its status
            // is waited for a moment.
            let deadline = Instant::now() + Duration::from_millis(200);
            while Instant::now() < deadline {
                if let Some(status) = child.exited()? {
                    return Err(exited_before_answering(target, status, stderr_path));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            return Err(e.context(format!(
                "{} sent no complete response; its stderr ends with:\n{}",
                target.name,
                tail(stderr_path)
            )));
        }
    };
    let first_response = start.elapsed();
    // Read at once, at the response; what went wrong is said after the answer is
    // checked, so that a program that answers 500 and exits is said to have answered
    // 500.
    let status = status_of(child.child.id());
    if !(response.starts_with(b"HTTP/1.") && response.get(9..12) == Some(b"200")) {
        bail!(
            "{} answered {:?}, not 200 (give --url a path it answers with 200); its stderr ends with:\n{}",
            target.name,
            String::from_utf8_lossy(&response[..response.len().min(40)]),
            tail(stderr_path)
        );
    }
    let status = match status {
        Err(_) if reading == Reading::TimeOnly => Ok((0, 0)),
        status => status,
    };
    let (rss_bytes, threads) = status.map_err(|e| {
        if matches!(child.exited(), Ok(Some(_))) {
            anyhow!(
                "{} exited right after its first response, before its RSS and threads could be read; compare measures programs that keep serving",
                target.name
            )
        } else {
            e
        }
    })?;
    let sample = Sample {
        first_response,
        rss_bytes,
        threads,
    };
    Ok((sample, child))
}

/// Makes this thread's sleeps as short as asked: with the default timer slack (50 µs)
/// each of the connect loop's 50 µs pauses took 100 µs and more, and every target's
/// first response was seen that much late on average, which pulls every ratio toward
/// 1. Timer slack is a thread's own, so it is set on the thread that polls.
fn fine_timer_slack() {
    // SAFETY: prctl(PR_SET_TIMERSLACK) takes a number and changes only this thread's
    // timer slack; it reads and writes no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// A loopback port nothing listens on at the moment of asking.
///
/// # Errors
///
/// No port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    free_port_on(std::net::Ipv4Addr::LOCALHOST.into())
}

/// [`free_port`] on `ip`: where the run connects (a port free on `127.0.0.1` may be
/// taken on `::1`).
fn free_port_on(ip: std::net::IpAddr) -> anyhow::Result<u16> {
    Ok(TcpListener::bind((ip, 0))
        .with_context(|| format!("cannot find a free port on {ip}"))?
        .local_addr()?
        .port())
}

/// An error once `child` has exited: a program that exits leaves the harness waiting
/// for its answer, and the wait stops then.
fn still_running(child: &mut KillOnDrop, target: &Target) -> anyhow::Result<()> {
    match child.exited()? {
        Some(status) => bail!("{} exited with {status}", target.name),
        None => Ok(()),
    }
}

/// The error for a program that exited, with `status`, before it answered.
fn exited_before_answering(
    target: &Target,
    status: std::process::ExitStatus,
    stderr_path: &std::path::Path,
) -> anyhow::Error {
    anyhow!(
        "{} exited with {status} before answering; its stderr ends with:\n{}",
        target.name,
        tail(stderr_path)
    )
}

/// `VmRSS` and `Threads` from `/proc/<pid>/status`.
fn status_of(pid: u32) -> anyhow::Result<(u64, u32)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_ascii_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let rss_kib = field("VmRSS:").ok_or_else(|| anyhow!("no VmRSS in /proc/{pid}/status"))?;
    let threads = field("Threads:").ok_or_else(|| anyhow!("no Threads in /proc/{pid}/status"))?;
    Ok((rss_kib * 1024, u32::try_from(threads).unwrap_or(u32::MAX)))
}

/// The last lines of the file at `path`: of its last 8 KiB, read as bytes (a program
/// may write anything there), what is not UTF-8 shown as U+FFFD.
fn tail(path: &std::path::Path) -> String {
    use std::io::{Seek, SeekFrom};
    const LAST: u64 = 8 << 10;
    let mut bytes = Vec::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let len = file.metadata().map_or(0, |m| m.len());
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(LAST)));
        let _ = file.take(LAST).read_to_end(&mut bytes);
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(10);
    let out = lines[start..].join("\n");
    if out.is_empty() {
        "(nothing)".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_that_exits_early_is_reported_with_its_stderr() {
        let mut target = Target::new("sh", "/bin/sh");
        target.args = vec!["-c".into(), "echo broken config >&2; exit 3".into()];
        let err = format!("{:#}", run_once(&target, None).unwrap_err());
        assert!(err.contains("exited with exit status: 3"), "{err}");
        assert!(err.contains("broken config"), "{err}");
        // Listening first, then failing a later step: its status and stderr too (the
        // error said only "sent no complete response", the stderr file deleted).
        let mut target = Target::new("python3", "python3");
        let program = "import os, socket, sys, time\n\
            s = socket.socket(); s.bind(('127.0.0.1', int(os.environ['PORT']))); s.listen()\n\
            time.sleep(0.3); sys.stderr.write('database unreachable\\n'); sys.exit(3)";
        target.args = vec!["-c".into(), program.into()];
        let err = format!("{:#}", run_once(&target, None).unwrap_err());
        assert!(err.contains("exited with exit status: 3"), "{err}");
        assert!(err.contains("database unreachable"), "{err}");
    }

    /// How a child ended is read without reaping it: its pid, and so the process
    /// group it led, stays its own until the drop has killed the group and reaped it.
    #[test]
    fn an_exit_is_seen_and_the_child_left_unreaped() {
        use std::os::unix::process::ExitStatusExt;
        let ended = |script: &str| {
            let mut child = std::process::Command::new("/bin/sh")
                .args(["-c", script])
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            let status = loop {
                if let Some(status) = exited(&mut child).unwrap() {
                    break status;
                }
                assert!(Instant::now() < deadline, "{script} did not end");
                std::thread::sleep(Duration::from_millis(1));
            };
            let state = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
            let state = state.rsplit(") ").next().unwrap().chars().next();
            assert_eq!(state, Some('Z'), "{script}: still a zombie, not reaped");
            assert_eq!(
                child.wait().unwrap(),
                status,
                "{script}: wait sees the same end"
            );
            // Once reaped, std's record answers.
            assert_eq!(exited(&mut child).unwrap(), Some(status));
            status
        };
        assert_eq!(ended("exit 3").code(), Some(3));
        assert_eq!(ended("kill -TERM $$").signal(), Some(libc::SIGTERM));
        let mut running = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert_eq!(exited(&mut running).unwrap(), None);
        running.kill().unwrap();
        running.wait().unwrap();
    }

    /// A program listening on `::1` (where `localhost` resolves first on some hosts,
    /// and so where a server binding `localhost` listens) is measured at the target's
    /// address; every run went to 127.0.0.1 before.
    #[test]
    fn a_program_on_the_ipv6_loopback_is_measured_there() {
        let port = free_port().unwrap();
        let mut target = Target::new("python3", "python3");
        target.args = ["-m", "http.server", &port.to_string(), "--bind", "::1"]
            .map(OsString::from)
            .to_vec();
        target.port = Some(port);
        target.ip = std::net::Ipv6Addr::LOCALHOST.into();
        let sample = run_once(&target, None).unwrap();
        assert!(sample.first_response > Duration::ZERO);
        assert!(sample.threads >= 1);
    }

    /// The polling thread's timer slack is 1 ns, not the default 50 µs that made each
    /// 50 µs pause last twice that.
    #[test]
    fn the_polling_thread_sleeps_as_short_as_asked() {
        std::thread::spawn(|| {
            // SAFETY: prctl(PR_GET_TIMERSLACK) returns this thread's slack; no memory.
            let slack = || unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) };
            fine_timer_slack();
            assert_eq!(slack(), 1);
        })
        .join()
        .unwrap();
    }

    /// A stderr that is not UTF-8 is still shown, as far as it can be.
    #[test]
    fn the_tail_of_a_stderr_that_is_not_utf8_is_shown() {
        let path = coldstart_test_support::temp_file("stderr");
        let mut text = b"x".repeat(20_000);
        text.extend_from_slice(b"\nconfig: caf\xe9 not found\n");
        std::fs::write(&path, &text).unwrap();
        let shown = tail(&path);
        assert!(shown.ends_with("config: caf\u{fffd} not found"), "{shown}");
    }

    #[test]
    fn a_missing_program_is_a_clear_error() {
        let err = format!(
            "{:#}",
            run_once(&Target::new("nope", "/nonexistent/server"), None).unwrap_err()
        );
        assert!(err.contains("cannot start /nonexistent/server"), "{err}");
    }
}
