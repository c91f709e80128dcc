//! `/metrics` renders a large registry on a thread of its own: on the runtime's
//! thread (under `minimal`, the only one) a rendering of tens of milliseconds would
//! hold every request. The first scrape renders where it is served and finds the
//! registry large; the next is rendered off the runtime. A collector, run at each
//! rendering, notes the thread it runs on. One test: the recorder is global.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::Duration;

use coldstart_bootstrap::{Env, Settings};
use coldstart_exporters::config::Config;
use coldstart_exporters::metrics::register_collector;

static THREADS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// `GET /metrics` on `port`, the whole answer.
fn scrape(port: u16) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
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
    let (config, errors) = Config::from(&Env::fixed([
        ("COLDSTART_METRICS_ADDR", format!("127.0.0.1:{port}")),
        ("OTEL_TRACES_EXPORTER", "none".to_owned()),
    ]));
    assert!(errors.is_empty(), "{errors:?}");
    let telemetry = coldstart_exporters::install_with(config, None);
    // About 100 KB of exposition: past what is rendered where it is served.
    for i in 0..2000 {
        metrics::counter!("jobs_total", "queue" => format!("queue-{i}")).increment(1);
    }
    register_collector(|| {
        let name = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned();
        THREADS.lock().unwrap().push(name);
    });
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
            assert!(answer.starts_with("HTTP/1.1 200"), "{}", &answer[..80]);
            assert!(answer.contains("jobs_total{queue=\"queue-1999\"} 1"));
        }
    });
    let threads = THREADS.lock().unwrap().clone();
    assert_eq!(threads.len(), 2, "{threads:?}");
    assert_ne!(threads[0], "coldstart-metrics-render", "{threads:?}");
    assert_eq!(threads[1], "coldstart-metrics-render", "{threads:?}");
}
