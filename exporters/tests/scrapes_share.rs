//! Scrapes of a large registry that come while one is being rendered share the next
//! rendering, made after they all came: eight scrapers at once cost two renderings,
//! not eight, and each answer is still newer than its request. What is rendered is
//! seen from a collector that is slow (300 ms, so that the scrapes meet) and numbers
//! its calls in a gauge. One test: the recorder is global.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use coldstart_bootstrap::Settings;
use coldstart_exporters::metrics::register_collector;

mod telemetry;

/// The collector's calls so far.
static COLLECTED: AtomicU64 = AtomicU64::new(0);

/// `GET /metrics` on `port`, the whole answer (waiting for the listener to open).
fn scrape(port: u16) -> String {
    coldstart_test_support::get_with(port, "/metrics", "")
}

/// The collector's call number an answer was rendered with.
fn collection(answer: &str) -> u64 {
    let line = answer
        .lines()
        .find(|l| l.starts_with("collection_number "))
        .unwrap_or_else(|| panic!("no collection_number in {:?}", answer.get(..200)));
    line["collection_number ".len()..].parse().unwrap()
}

#[test]
fn scrapes_that_meet_share_one_rendering_made_after_they_came() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let telemetry = telemetry::installed(vec![
        ("COLDSTART_METRICS_ADDR", format!("127.0.0.1:{port}")),
        ("OTEL_TRACES_EXPORTER", "none".to_owned()),
    ]);
    telemetry::record_a_large_registry();
    register_collector(|| {
        let number = COLLECTED.fetch_add(1, Ordering::SeqCst) + 1;
        std::thread::sleep(Duration::from_millis(300));
        #[allow(clippy::cast_precision_loss)] // call numbers are small
        metrics::gauge!("collection_number").set(number as f64);
    });
    // Two workers: while one runs the slow collector, the other takes the scrapes in.
    let settings = Settings {
        flavor: Some(coldstart_bootstrap::Flavor::MultiThread),
        worker_threads: Some(2),
        ..Settings::NONE
    };
    coldstart_runtime::block_on(&settings, async move {
        telemetry.start_after_first_response();
        coldstart_runtime::first_request_done();
        tokio::task::spawn_blocking(move || {
            // The first scrape finds the registry large; the later ones share.
            let first = scrape(port);
            assert!(first.len() > 64 << 10, "{} bytes", first.len());
            let before = COLLECTED.load(Ordering::SeqCst);
            let scrapers: Vec<_> = (0..8)
                .map(|_| {
                    std::thread::spawn(move || {
                        let asked_after = COLLECTED.load(Ordering::SeqCst);
                        (asked_after, scrape(port))
                    })
                })
                .collect();
            let mut numbers = Vec::new();
            for scraper in scrapers {
                let (asked_after, answer) = scraper.join().unwrap();
                assert!(answer.starts_with("HTTP/1.1 200"), "{:?}", answer.get(..80));
                assert!(answer.contains("tasks_total{queue=\"queue-1999\"} 1"));
                let number = collection(&answer);
                // Rendered after the request: its collector call began after the
                // scraper last looked.
                assert!(
                    number > asked_after,
                    "call {number}, asked after {asked_after}"
                );
                numbers.push(number);
            }
            let renderings = COLLECTED.load(Ordering::SeqCst) - before;
            // Two when all eight meet the first rendering; more where a scraper's
            // thread came late on a busy machine. Each made its own before: eight.
            assert!(
                renderings <= 4,
                "{renderings} renderings for 8 scrapes: {numbers:?}"
            );
        })
        .await
        .unwrap();
    });
}
