//! The real OTLP receiver, built on the official protobuf definitions.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{Reaper, TempDir, otlp_python, poll, temp_dir};

/// The OTLP receiver (`exporters/tests/support/otlp_receiver.py`) answering in
/// `mode`, writing the spans it accepts to a temporary file. Dropping it stops the
/// receiver and removes the file.
pub struct Collector {
    /// Where it listens, on 127.0.0.1.
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
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../exporters/tests/support/otlp_receiver.py");
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
        // Its stderr (a traceback, a port it could not bind) goes to a file the
        // failure shows; held by its `Reaper` from the start, so a receiver that
        // fails to start is not left running.
        let said = dir.join("stderr.log");
        let mut child = Reaper(
            receiver
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&said).unwrap())
                .spawn()
                .unwrap(),
        );
        // Its first line gives the port; read on a thread, so a receiver that hangs
        // before it fails the test instead of hanging it.
        let stdout = child.0.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut first = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut first);
            let _ = tx.send(first);
        });
        let first = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let Some(port) = first
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{which}=")))
            .and_then(|p| p.parse().ok())
        else {
            // Stopped first, so that all it wrote is in the file.
            drop(child);
            panic!(
                "the OTLP receiver said `{}` on stdout within 30 s, not its port; its stderr:\n{}",
                first.trim_end(),
                std::fs::read_to_string(&said).unwrap_or_default()
            )
        };
        Some(Collector {
            port,
            scheme,
            _receiver: child,
            dir,
        })
    }

    /// Its URL, without a path: what `OTEL_EXPORTER_OTLP_ENDPOINT` takes.
    pub fn endpoint(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// The spans received so far, one JSON object each.
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
