//! What the exporters' telemetry tests share: telemetry installed from variables, and
//! a wait for what the export task hands on.

#![allow(dead_code)] // each test uses its own part

use std::time::{Duration, Instant};

use coldstart_bootstrap::Env;
use coldstart_exporters::Telemetry;
use coldstart_exporters::config::Config;

/// Telemetry installed from `vars`, each of which must be accepted.
pub(crate) fn installed(vars: Vec<(&str, String)>) -> Telemetry {
    let (config, errors) = Config::from(&Env::fixed(vars));
    assert!(errors.is_empty(), "{errors:?}");
    coldstart_exporters::install_with(config, None)
}

/// Records about 130 KB of text's worth of series: past the 64 KiB a rendering is
/// made where it is served (two names, each within the 2000 series a name keeps).
#[cfg(feature = "metrics")]
pub(crate) fn record_a_large_registry() {
    for i in 0..2000 {
        metrics::counter!("jobs_total", "queue" => format!("queue-{i}")).increment(1);
        metrics::counter!("tasks_total", "queue" => format!("queue-{i}")).increment(1);
    }
}

/// Waits until `done`, for 15 s at most; the test's assertions then say what came.
pub(crate) async fn until(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A Pushgateway that answers every push 200 and hands over each body, before it
/// answers: a push seen answered has been handed over.
pub(crate) fn gateway() -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (pushed, bodies) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let pushed = pushed.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let _ = pushed.send(String::from_utf8_lossy(&body).into_owned());
                    writer
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .unwrap();
                }
            });
        }
    });
    (port, bodies)
}
