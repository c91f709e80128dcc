//! Work given to `after_first_request` once the shutdown has begun, with no first
//! response made, does not run: it ran at once, as if the shutdown were a first
//! response. One `block_on` per process: this file's only test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use coldstart_bootstrap::Settings;
use coldstart_runtime::{after_first_request, block_on, on_shutdown};

static RAN: AtomicBool = AtomicBool::new(false);

#[test]
fn work_after_the_first_response_does_not_start_at_the_shutdown() {
    block_on(&Settings::NONE, async {
        // The body ends with no request answered; the hooks run, and one of them
        // hands work to after the first response, then gives it time to start.
        on_shutdown("late work", Duration::from_secs(2), || async {
            drop(after_first_request(async {
                RAN.store(true, Ordering::SeqCst);
            }));
            tokio::time::sleep(Duration::from_millis(100)).await;
        });
    });
    assert!(
        !RAN.load(Ordering::SeqCst),
        "work after the first response ran with none made"
    );
}
