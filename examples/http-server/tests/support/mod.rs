//! What the examples' integration tests share (the other examples and the facade's
//! tests include this file too): free ports, a raw HTTP/1.1 GET, a child's stderr as lines, temporary
//! directories, the real OTLP receiver, and finding the real tools (Prometheus, the OTLP
//! receiver's Python) with the CI rule: missing under `CI=true` fails, elsewhere the
//! test says it is skipped and why.

#![allow(dead_code, unreachable_pub)] // each test file uses its own part

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// `GET` over HTTP/1.0 (no chunked body to decode); `None` while the port is closed.
pub fn get_http10(port: u16, path: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    stream.read_to_string(&mut out).ok()?;
    Some(out)
}

pub fn get(port: u16) -> String {
    get_with(port, "/", "")
}

/// Starts `program` on a free port (`PORT`) in the working directory `dir` with
/// `vars`, stderr piped; waits until it says it listens.
pub fn start_server(program: &str, dir: &Path, vars: &[(&str, String)]) -> (u16, Reaper, Lines) {
    start_server_without(program, dir, vars, &[])
}

/// [`start_server`], with the variables `unset` removed from what it inherits.
pub fn start_server_without(
    program: &str,
    dir: &Path,
    vars: &[(&str, String)],
    unset: &[&str],
) -> (u16, Reaper, Lines) {
    let port = free_port();
    let mut command = Command::new(program);
    for variable in unset {
        command.env_remove(variable);
    }
    let mut child = command
        .current_dir(dir)
        .env("PORT", port.to_string())
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Lines::of(&mut child);
    lines.wait_for("listening on");
    (port, Reaper(child), lines)
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

/// A real Pushgateway on a free port, answering (pushes made before it listens would
/// be lost); `None` (after saying the test is skipped) where it is missing outside CI.
/// Stopped when the `Reaper` is dropped.
pub fn start_pushgateway(test: &str) -> Option<(Reaper, u16)> {
    let gateway = tool(test, "prometheus-pushgateway", &["--version"])?;
    let port = free_port();
    let child = Command::new(gateway)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reaper = Reaper(child);
    assert!(
        poll(Duration::from_secs(10), || get_http10(port, "/metrics")).is_some(),
        "the Pushgateway never answered"
    );
    Some((reaper, port))
}

/// A real Prometheus (`program`) on a free port with `config`, its data under `dir`;
/// stopped when the `Reaper` is dropped.
pub fn start_prometheus(program: &Path, config: &Path, dir: &Path) -> (Reaper, u16) {
    let port = free_port();
    let child = Command::new(program)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (Reaper(child), port)
}

/// An instant query to the Prometheus on `port`: its JSON answer, `None` while it does
/// not answer.
pub fn prometheus_query(port: u16, query: &str) -> Option<serde_json::Value> {
    let mut encoded = String::new();
    for b in query.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                encoded.push(char::from(b));
            }
            _ => encoded.push_str(&format!("%{b:02X}")),
        }
    }
    let response = get_http10(port, &format!("/api/v1/query?query={encoded}"))?;
    serde_json::from_str(response.split_once("\r\n\r\n")?.1).ok()
}

/// Kills the child when dropped, so a failing test leaves no process behind.
pub struct Reaper(pub std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A new directory of its own (tests run in parallel in one process), removed with
/// what it holds when dropped.
pub fn temp_dir(name: &str) -> TempDir {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("coldstart-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// See [`temp_dir`].
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The OTLP receiver (`exporters/tests/support/otlp_receiver.py`) answering in
/// `mode`, writing the spans it accepts to a temporary file. Dropping it stops the
/// receiver and removes the file.
pub struct Collector {
    pub port: u16,
    scheme: &'static str,
    // Fields drop in this order: the receiver stops before its directory goes.
    _receiver: Reaper,
    dir: TempDir,
}

impl Collector {
    /// `None` (after saying the test is skipped) where the receiver's Python is
    /// missing outside CI.
    pub fn start(test: &str, mode: &str) -> Option<Collector> {
        Collector::start_with(test, mode, false, None)
    }

    /// Serving OTLP/gRPC instead of OTLP/HTTP when `grpc`; over TLS when `tls` names
    /// a directory with `server.pem`, `server.key` and `ca.pem`, requiring client
    /// certificates from that CA.
    pub fn start_with(test: &str, mode: &str, grpc: bool, tls: Option<&Path>) -> Option<Collector> {
        let python = otlp_python(test)?;
        let dir = temp_dir(&format!("otlp-{mode}"));
        // This file is included by crates at different depths of the workspace.
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|dir| dir.join("exporters/tests/support/otlp_receiver.py"))
            .find(|script| script.is_file())
            .expect("the OTLP receiver's script is in the workspace");
        let mut receiver = Command::new(python);
        receiver
            .arg(script)
            .arg("--out")
            .arg(dir.join("spans.jsonl"))
            .args(["--mode", mode]);
        let mut scheme = "http";
        if let Some(pki) = tls {
            receiver
                .arg("--tls-cert")
                .arg(pki.join("server.pem"))
                .arg("--tls-key")
                .arg(pki.join("server.key"))
                .arg("--client-ca")
                .arg(pki.join("ca.pem"));
            scheme = "https";
        }
        let which = if grpc { "grpc" } else { "http" };
        receiver.args([format!("--{which}-port"), "0".into()]);
        let mut child: Child = receiver
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{which}=")))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("receiver said `{first}`"));
        Some(Collector {
            port,
            scheme,
            _receiver: Reaper(child),
            dir,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    pub fn spans(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.join("spans.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The spans received once there are at least `n` (waiting up to 10 s).
    pub fn at_least(&self, n: usize) -> Vec<serde_json::Value> {
        poll(Duration::from_secs(10), || {
            let spans = self.spans();
            (spans.len() >= n).then_some(spans)
        })
        .unwrap_or_else(|| panic!("{n} spans never arrived: {:?}", self.spans()))
    }

    /// The span of `trace` the receiver got within 10 s.
    pub fn span_of(&self, trace: &str) -> serde_json::Value {
        poll(Duration::from_secs(10), || {
            self.spans().into_iter().find(|s| s["trace_id"] == trace)
        })
        .unwrap_or_else(|| panic!("no span of trace {trace} arrived; got {:?}", self.spans()))
    }
}
