//! A cap on the shutdown hooks' deadlines (what coldstart's Lambda integration sets:
//! Lambda stops the process 500 ms after SIGTERM) cuts a hook whose own deadline is
//! longer, and a hook within it finishes. One `block_on` per process: this file's only
//! test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use coldstart_bootstrap::Settings;
use coldstart_runtime::lifecycle::cap_hook_deadlines;
use coldstart_runtime::{block_on, on_shutdown};

static QUICK_RAN: AtomicBool = AtomicBool::new(false);

#[test]
fn a_hook_longer_than_the_cap_is_cut_there() {
    let start = Instant::now();
    block_on(&Settings::NONE, async {
        cap_hook_deadlines(Duration::from_millis(200));
        on_shutdown("slow", Duration::from_secs(30), || async {
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        on_shutdown("quick", Duration::from_secs(30), || async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            QUICK_RAN.store(true, Ordering::SeqCst);
        });
    });
    let took = start.elapsed();
    assert!(took < Duration::from_secs(10), "the slow hook ran {took:?}");
    assert!(QUICK_RAN.load(Ordering::SeqCst));
}
