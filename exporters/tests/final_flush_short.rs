//! A final flush given 80 ms in code exports what is queued: the margin it keeps to
//! count what it could not send was a fixed 100 ms, so it had no time left and
//! exported nothing. One test: telemetry is global.

#![allow(clippy::unwrap_used)] // a test fails loudly on a broken fixture

mod final_flush;

#[test]
fn a_short_final_flush_still_exports_what_is_queued() {
    let requests = final_flush::exports_at_the_end_of_main(std::time::Duration::from_millis(80));
    assert_eq!(requests, 1);
}
