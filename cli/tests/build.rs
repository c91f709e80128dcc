//! `cargo coldstart build` end to end: the HTTP example built with the start-up
//! profile is a working binary, smaller than its plain release build would be, and
//! the report names every setting.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TOOL: &str = env!("CARGO_BIN_EXE_cargo-coldstart");

#[test]
fn the_example_built_for_start_up_serves() {
    let out = Command::new(TOOL)
        .args(["build", "-p", "http-server", "--release"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
        .unwrap_or_else(|| panic!("no binary in:\n{report}"));
    let path = line.split_whitespace().next().unwrap();
    assert!(line.contains(" MB"), "{line}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(path)
        .env("PORT", port.to_string())
        .env("COLDSTART_METRICS_ADDR", "off")
        .env("OTEL_TRACES_EXPORTER", "none")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "the built server never listened: {e}"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("hello\n"), "{answer}");
}
