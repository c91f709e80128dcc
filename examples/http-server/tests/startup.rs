//! The example service end to end: it serves, prints its plan, reports bad settings in
//! one line with exit code 78, and plans single-threaded inside a real 0.25-CPU cgroup.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cargo_coldstart::cgroup::{Limits, TempCgroup};
use cargo_coldstart::measure::{Target, run_once};

const SERVER: &str = env!("CARGO_BIN_EXE_http-server");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("server never listened: {e}"),
        }
    };
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serves_and_prints_the_startup_report() {
    let port = free_port();
    let mut child = Command::new(SERVER)
        .env("PORT", port.to_string())
        .env("COLDSTART_LOG", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let response = get(port);
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200") && response.ends_with("hello\n"),
        "{response}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "coldstart: start-up report",
        "budget",
        "plan",
        "strategy",
        "worker_threads",
        "timeline (since main) main 0us probe",
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

#[test]
fn a_bad_variable_is_one_line_and_exit_code_78() {
    let out = Command::new(SERVER)
        .env("COLDSTART_WORKER_THREADS", "lots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "coldstart: set COLDSTART_WORKER_THREADS to a whole number from 1 to 1024, got `lots`\n"
    );
}

#[test]
fn a_bad_port_names_the_variable() {
    let out = Command::new(SERVER).env("PORT", "http").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("set PORT to a number from 0 to 65535, got `http`"),
        "{stderr}"
    );
}

#[test]
fn one_thread_inside_a_quarter_cpu_cgroup() {
    if !cargo_coldstart::cgroup::can_create("one_thread_inside_a_quarter_cpu_cgroup").unwrap() {
        return;
    }
    let cg = TempCgroup::create(
        &format!("coldstart-example-{}", std::process::id()),
        Limits {
            cpus: Some(0.25),
            memory_bytes: Some(64 << 20),
        },
    )
    .unwrap();
    let sample = run_once(&Target::new("http-server", SERVER), Some(&cg)).unwrap();
    assert_eq!(
        sample.threads, 1,
        "minimal plan: current_thread, no workers"
    );
    assert!(sample.rss_bytes < 64 << 20);
}

/// Starts the server on a free port with the given fallback timer, stderr piped.
fn spawn_server(fallback: &str) -> (u16, std::process::Child) {
    let port = free_port();
    let child = Command::new(SERVER)
        .env("PORT", port.to_string())
        .env("COLDSTART_FIRST_RESPONSE_FALLBACK", fallback)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (port, child)
}

/// The lines a child writes to stderr, read on a thread as they come.
struct Lines {
    rx: std::sync::mpsc::Receiver<String>,
    seen: String,
}

impl Lines {
    fn of(child: &mut std::process::Child) -> Lines {
        use std::io::BufRead;
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: String::new(),
        }
    }

    /// Waits (at most 10 s) for a line containing `needle`; returns all seen so far.
    fn wait_for(&mut self, needle: &str) -> &str {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                    if line.contains(needle) {
                        return &self.seen;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("`{needle}` never appeared; stderr was:\n{}", self.seen);
    }
}

#[test]
fn deferred_work_after_the_first_response_and_hooks_on_sigterm() {
    let (port, mut child) = spawn_server("off");
    let mut lines = Lines::of(&mut child);
    let before = lines.wait_for("listening on").to_owned();
    assert!(!before.contains("deferred work"), "{before}");
    assert!(get(port).ends_with("hello\n"));
    lines.wait_for("deferred work started after the first response");
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let seen = lines.wait_for("shutdown hook ran").to_owned();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "graceful exit after the hook; {seen}"
    );
}

#[test]
fn the_fallback_timer_starts_deferred_work_without_requests() {
    let (_, mut child) = spawn_server("200ms");
    Lines::of(&mut child).wait_for("deferred work started after the first response");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn without_hooks_sigterm_keeps_its_default_meaning() {
    let (_, mut child) = spawn_server("off");
    Lines::of(&mut child).wait_for("listening on");
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGTERM),
        "no hook registered, no handler installed"
    );
}
