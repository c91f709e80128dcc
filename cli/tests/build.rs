//! `cargo coldstart build` end to end: the HTTP example built with the start-up
//! profile is a working binary, the report names every setting and its size, an init
//! profile given to `build` is embedded and orders the run, and building again without
//! it rebuilds the binary with the order of the example's own `profile` argument.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    let dir = std::env::temp_dir().join(format!("coldstart-build-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
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
            "init profile {} embedded (2 needed by the first request, 1 after it)",
            given.display()
        )),
        "{report}"
    );
    let (before, _) = planned_order(Path::new(&path), None);
    assert!(before.contains("http_server::CLIENT_POOL"), "{before}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(&path)
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

    // Without it, cargo rebuilds (the variable changed) and the example's own
    // `profile = "coldstart.profile"` orders the run again.
    let (report, path) = build(&["--no-init-profile"]);
    assert!(report.contains("no init profile embedded"), "{report}");
    let (before, after) = planned_order(Path::new(&path), None);
    assert!(!before.contains("CLIENT_POOL"), "{before}");
    assert!(after.contains("http_server::CLIENT_POOL"), "{after}");
    std::fs::remove_dir_all(&dir).ok();
}
