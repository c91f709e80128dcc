//! A scrape or a push of a large registry makes the registry's text on a thread of its
//! own: on the runtime's thread (under `minimal`, the only one) a rendering of tens of
//! milliseconds would hold every request. The collectors still run on the runtime's
//! thread, as `register_collector` says. The first rendering (a push, whose first
//! comes at once, or a scrape) is made where it is served and finds the registry
//! large; every later one, scrape or push, is made off the runtime. What runs where
//! is seen from a collector, and from a plugin that hears the registry's report of a
//! metric it leaves out, made while it writes the text. One test: the recorder is
//! global.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::Duration;

use coldstart_bootstrap::Settings;
use coldstart_exporters::metrics::register_collector;
use coldstart_exporters::plugin::{Plugin, Reported};

/// Where each collector call ran, and where the registry wrote its text.
static COLLECTED_ON: Mutex<Vec<String>> = Mutex::new(Vec::new());
static WRITTEN_ON: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn this_thread() -> String {
    std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_owned()
}

struct Witness;

impl Plugin for Witness {
    fn name(&self) -> &str {
        "witness"
    }
    fn on_error(&self, reported: &Reported<'_>) {
        if reported.kind == "metrics-histogram-suffix" {
            WRITTEN_ON.lock().unwrap().push(this_thread());
        }
    }
}

coldstart_exporters::plugin!(WITNESS: Witness = Witness, priority = 0);

mod telemetry;

/// `GET /metrics` on `port`, the whole answer; an answer that does not come within
/// 30 s (a deadlock in the rendering) fails the test instead of hanging it.
fn scrape(port: u16) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn a_large_registry_is_rendered_off_the_runtime() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (gateway, pushes) = telemetry::gateway();
    let telemetry = telemetry::installed(vec![
        ("COLDSTART_METRICS_ADDR", format!("127.0.0.1:{port}")),
        (
            "COLDSTART_METRICS_PUSH_URL",
            format!("http://127.0.0.1:{gateway}"),
        ),
        ("COLDSTART_METRICS_PUSH_INTERVAL", "100ms".to_owned()),
        ("OTEL_TRACES_EXPORTER", "none".to_owned()),
    ]);
    telemetry::record_a_large_registry();
    // A gauge named as a histogram's own series: left out, and said as the registry
    // writes its text.
    metrics::histogram!("lag_seconds").record(0.5);
    metrics::gauge!("lag_seconds_sum").set(1.0);
    register_collector(|| COLLECTED_ON.lock().unwrap().push(this_thread()));
    let settings = Settings {
        flavor: Some(coldstart_bootstrap::Flavor::CurrentThread),
        ..Settings::NONE
    };
    coldstart_runtime::block_on(&settings, async move {
        telemetry.start_after_first_response();
        coldstart_runtime::first_request_done();
        for _ in 0..2 {
            let answer = tokio::task::spawn_blocking(move || {
                for _ in 0..200 {
                    if let Ok(answer) = std::panic::catch_unwind(|| scrape(port)) {
                        return answer;
                    }
                    std::thread::sleep(Duration::from_millis(25));
                }
                panic!("/metrics never answered on port {port}");
            })
            .await
            .unwrap();
            assert!(answer.starts_with("HTTP/1.1 200"), "{:?}", answer.get(..80));
            assert!(answer.len() > 64 << 10, "{} bytes", answer.len());
            assert!(answer.contains("tasks_total{queue=\"queue-1999\"} 1"));
        }
        // Two pushes made after both scrapes, so after the first rendering.
        tokio::task::spawn_blocking(move || {
            let wait = Duration::from_secs(10);
            while pushes.try_recv().is_ok() {}
            for _ in 0..2 {
                let size = pushes
                    .recv_timeout(wait)
                    .expect("no push within 10 s")
                    .len();
                assert!(size > 64 << 10, "a push of {size} bytes");
            }
        })
        .await
        .unwrap();
    });
    let runtime = this_thread();
    let collected = COLLECTED_ON.lock().unwrap().clone();
    assert!(collected.len() >= 4, "{collected:?}");
    assert!(collected.iter().all(|t| *t == runtime), "{collected:?}");
    let written = WRITTEN_ON.lock().unwrap().clone();
    assert!(written.len() >= 4, "{written:?}");
    assert_eq!(written[0], runtime, "{written:?}");
    assert!(
        written[1..].iter().all(|t| t == "coldstart-metrics-render"),
        "{written:?}"
    );
}
