//! The axum example served for real: its metrics carry axum's route template, and
//! SIGTERM drains it and ends it with exit code 0.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

use std::time::Duration;

use coldstart_test_support::{free_port, get_with, poll, start_server};

const SERVICE: &str = env!("CARGO_BIN_EXE_axum-service");

#[test]
fn metrics_carry_the_route_template_and_sigterm_drains() {
    let metrics = free_port();
    let dir = std::env::temp_dir();
    let (port, mut child, mut lines) = start_server(
        SERVICE,
        &dir,
        &[
            ("COLDSTART_METRICS_ADDR", format!("127.0.0.1:{metrics}")),
            // No collector here: the spans are made, their export is off.
            ("OTEL_TRACES_EXPORTER", "none".to_owned()),
        ],
    );
    let answer = get_with(port, "/users/42", "");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("user 42\n"), "{answer}");
    // The listener starts after the first response: polled until it answers with the
    // request's series, labelled by the template, not the path.
    let series = r#"http_requests_total{method="GET",route="/users/{id}",status="200"} 1"#;
    let scrape = poll(Duration::from_secs(10), || {
        let scrape = get_with(metrics, "/metrics", "");
        scrape.contains(series).then_some(scrape)
    });
    let scrape = scrape.unwrap_or_else(|| get_with(metrics, "/metrics", ""));
    assert!(scrape.contains(series), "{scrape}");
    assert!(!scrape.contains("/users/42"), "{scrape}");

    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(child.0.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait_within(Duration::from_secs(30));
    let stderr = lines.drain(Duration::from_millis(200)).to_owned();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("axum-service: drained"), "{stderr}");
}
