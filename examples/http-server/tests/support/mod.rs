//! What the example's integration tests share: free ports, a raw HTTP/1.1 GET, the
//! server's stderr as lines, and finding the real tools (Prometheus, the OTLP
//! receiver's Python) with the CI rule: missing under `CI=true` fails, elsewhere the
//! test says it is skipped and why.

#![allow(dead_code, unreachable_pub)] // each test file uses its own part

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub const SERVER: &str = env!("CARGO_BIN_EXE_http-server");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` with extra header lines, waiting up to 10 s for the port to open;
/// the whole response as text.
pub fn get_with(port: u16, path: &str, headers: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("port {port} never opened: {e}"),
        }
    };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

pub fn get(port: u16) -> String {
    get_with(port, "/", "")
}

/// Polls `check` every 100 ms for up to `within`; the last value it returned.
pub fn poll<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The lines a child writes to stderr, read on a thread as they come.
pub struct Lines {
    rx: std::sync::mpsc::Receiver<String>,
    pub seen: String,
}

impl Lines {
    pub fn of(child: &mut std::process::Child) -> Lines {
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
    pub fn wait_for(&mut self, needle: &str) -> &str {
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

    /// Everything written so far, waiting up to `quiet` for more.
    pub fn drain(&mut self, quiet: Duration) -> &str {
        while let Ok(line) = self.rx.recv_timeout(quiet) {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        &self.seen
    }
}

/// A tool the test needs. Missing: under `CI` a failure, elsewhere `None` after
/// printing that `test` is skipped.
pub fn tool(test: &str, program: &str, check: &[&str]) -> Option<PathBuf> {
    let ok = Command::new(program)
        .args(check)
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(PathBuf::from(program));
    }
    let why = format!("`{program} {}` does not run here", check.join(" "));
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {why}, and CI must run it (scripts/test installs it)"
    );
    eprintln!("SKIPPED {test}: {why}; scripts/test installs it");
    None
}

/// The Python that has the OTLP receiver's packages: `COLDSTART_TEST_PYTHON`
/// (scripts/test sets it to its venv), else `python3`.
pub fn otlp_python(test: &str) -> Option<PathBuf> {
    let python = std::env::var("COLDSTART_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    tool(
        test,
        &python,
        &[
            "-c",
            "import opentelemetry.proto.collector.trace.v1.trace_service_pb2, grpc",
        ],
    )
}

/// Kills the child when dropped, so a failing test leaves no process behind.
pub struct Reaper(pub std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
