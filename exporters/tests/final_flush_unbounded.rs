//! A final flush given `Duration::MAX` in code (no limit) exports what is queued: the
//! hook added it to the clock and panicked, and the span was lost. One test:
//! telemetry is global.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

mod final_flush;

#[test]
fn a_final_flush_without_a_limit_exports_what_is_queued() {
    let requests = final_flush::exports_at_the_end_of_main(std::time::Duration::MAX);
    assert_eq!(requests, 1);
}
