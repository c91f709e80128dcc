//! A final flush given `Duration::MAX` in code (no limit) exports what is queued: the
//! hook added it to the clock and panicked, and the span was lost. The collector is a
//! plain HTTP server that answers every request 200 and counts them. One test:
//! telemetry is global.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use coldstart_bootstrap::{Env, Settings};
use coldstart_exporters::config::Config;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};

/// Runs a `main` that ends one span and returns, with the final flush given
/// `within`; how many export requests the collector got.
fn exports_at_the_end_of_main(within: Duration) -> usize {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let counted = counted.clone();
            std::thread::spawn(move || answer_all(stream, &counted));
        }
    });
    let (mut config, errors) = Config::from(&Env::fixed([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("COLDSTART_METRICS_ADDR", "off".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "60000".to_owned()),
    ]));
    assert!(errors.is_empty(), "{errors:?}");
    config.final_flush_within = within;
    let telemetry = coldstart_exporters::install_with(config, None);
    let tracer = opentelemetry::global::tracer_provider().tracer("final-flush-test");
    coldstart_runtime::block_on(&Settings::NONE, async move {
        telemetry.start_after_first_response();
        coldstart_runtime::first_request_done();
        // Once the exporter runs: it exports at once what was queued before it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        tracer.start("queued").end();
    });
    requests.load(Ordering::SeqCst)
}

/// Answers every request on `stream` 200, counting them, until the client closes it.
fn answer_all(stream: std::net::TcpStream, counted: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        counted.fetch_add(1, Ordering::SeqCst);
        let answer =
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn a_final_flush_without_a_limit_exports_what_is_queued() {
    assert_eq!(exports_at_the_end_of_main(Duration::MAX), 1);
}
